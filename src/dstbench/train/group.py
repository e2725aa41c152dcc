"""Run groups: K runs of one architecture and recipe trained as one fused model (`dstbench.models.fusion`).

Member k *is* the solo run of its config:

- its model is built with its seed before fusion, so it starts from the solo run's weights, and its engine
  (the ordinary `DST`, one per member, over views of the member's share of the fused weights) draws the solo
  run's initial mask;
- it reads its own batch stream (its seed's shuffle and augmentation), concatenated with the others' on dim 1;
- the loss is the sum of the members' mean losses, so each member's gradient is its solo gradient;
- gradient masking is one fused multiply over the stacked gradients and the optimizer steps the stacked tensors
  once; SGD, Adam and AdamW are elementwise with shared hyperparameters, so each member sees its solo step;
- its topology updates are its own engine's, reading its views of the weights, gradients and optimizer state.

Arithmetic differs from solo only in rounding where a batched kernel sums in another order (`fusion`).

Every member writes an ordinary run folder (`RunRecords`), plus ``group.json`` naming its group. The group's
checkpoint, ``<group dir>/checkpoint.pt``, is written atomically after the members' records of an epoch, once
`CHECKPOINT_SECONDS` passed since the last one; rerunning the same group resumes it bit-identically (CPU). A member whose loss turns NaN or inf, or
whose topology update raises, fails alone: it gets its failed summary, its share is zeroed and frozen, and the
others train on unchanged (members never mix, so their results are those of a group without it).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dstbench import store, vocab
from dstbench.config import RunConfig
from dstbench.data.registry import data_root
from dstbench.errors import UserError
from dstbench.experiments.claims import Claim, hold_run_folder
from dstbench.models.fusion import (
    Fusion,
    FusionError,
    estimated_group_bytes,
    fuse,
)
from dstbench.plugins import load_plugins
from dstbench.sparsity import DST
from dstbench.sparsity.layers import sparse_parameters
from dstbench.sparsity.optimizers import SliceOptimizerState
from dstbench.train.checkpoint import load_checkpoint, load_pretrained, save_checkpoint
from dstbench.train.loop import _write_config
from dstbench.train.recipes import resolve_config
from dstbench.train.records import RunRecords, better, epoch_row, new_best, probe, probe_due, summary_of
from dstbench.train.setup import (
    build_for,
    load_data,
    make_optimizer,
    make_scheduler,
    pick_device,
    sparsity_config,
)

CHECKPOINT = "checkpoint.pt"
# A group checkpoints after an epoch once this many seconds passed since its last checkpoint (0: every epoch):
# a killed group loses at most about that much work, and groups of tiny epochs do not spend their time saving.
CHECKPOINT_SECONDS = 30.0
CHECKPOINT_ENV = "DSTBENCH_GROUP_CHECKPOINT_SECONDS"


class GroupError(UserError):
    """These runs cannot train as one group; the message says why and what to do."""


def group_id(run_ids: Sequence[str]) -> str:
    """A group's id: a hash of its members' run ids (order-free, so the same runs form the same group)."""
    return hashlib.sha256("|".join(sorted(run_ids)).encode()).hexdigest()[:16]


def solo_reason(config: RunConfig) -> str | None:
    """Why a run cannot be a group member (it trains solo), or None if it can."""
    if config.dropout or config.input_dropout:
        return "dropout draws from one random stream shared by the members"
    if config.update_batch_size:
        return "a larger-batch update gradient (update_batch_size) needs a forward pass of its own"
    return None


def check_compatible(configs: Sequence[RunConfig]) -> None:
    """Raise GroupError unless `configs` can train as one group."""
    if not configs:
        raise GroupError("a run group needs at least one run")
    for config in configs:
        reason = solo_reason(config)
        if reason is not None:
            raise GroupError(f"run {config.run_id()} cannot join a run group: {reason}; train it solo")
    keys = [vocab.group_key(c.model_dump(mode="json")) for c in configs]
    for config, key in zip(configs[1:], keys[1:], strict=True):
        if key != keys[0]:
            first, other = configs[0].model_dump(mode="json"), config.model_dump(mode="json")
            diff = sorted(k for k in first if k not in vocab.GROUP_FREE and first[k] != other[k])
            raise GroupError(f"runs {configs[0].run_id()} and {config.run_id()} differ in {', '.join(diff)}; the "
                             f"members of a group may differ only in {', '.join(sorted(vocab.GROUP_FREE))}")


class _Member:
    """One run of a group: its config, folder, engine, batches and records."""

    def __init__(self, k: int, config: RunConfig, folder: store.RunDir, claim: Claim | None, writes: bool):
        self.k, self.config, self.folder = k, config, folder
        self.records = RunRecords(config, folder, claim)
        self.writes = writes  # False: finished elsewhere; trained along (frozen), never written
        self.failed: str | None = None
        self.summary: dict[str, Any] | None = None
        self.best = new_best()
        self.last_row: dict[str, Any] = {}
        self.history_start = 0
        self.snapshot_steps = set(config.mask_snapshot_steps)
        self.init_skipped: list[str] = []  # tensors not loaded from init_from (init_partial)
        self.model: nn.Module
        self.dst: DST
        self.batches: Any

    @property
    def live(self) -> bool:
        return self.writes and self.failed is None


class GroupTrainer:
    """Train `configs` (compatible, resolved) as one group into `folders`; checkpoint in `group_dir`.

    `claims[k]` is the claim of member k's folder (None: not held by this process); `writes[k]` False marks a
    member whose run is finished already: it is trained along (the group's shape stays the one checkpointed)
    but never written. `data` replaces the config's data set (benchmarks).
    """

    def __init__(self, configs: Sequence[RunConfig], folders: Sequence[store.RunDir], group_dir: Path | str, *,
                 claims: Sequence[Claim | None] | None = None, writes: Sequence[bool] | None = None,
                 data: Any = None, kernels: str = "auto"):
        check_compatible(configs)
        size = len(configs)
        claims = list(claims) if claims is not None else [None] * size
        writes = list(writes) if writes is not None else [True] * size
        self.config = configs[0]  # what all members share
        self.group_dir = Path(group_dir)
        self.id = group_id([c.run_id() for c in configs])
        self.members = [_Member(k, c, f, claims[k], writes[k])
                        for k, (c, f) in enumerate(zip(configs, folders, strict=True))]
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        self.device = pick_device(self.config.device)
        self.data = data if data is not None else load_data(self.config)
        models = []
        for member in self.members:  # each member's weights are its solo run's: same seed, same draws
            torch.manual_seed(member.config.seed)
            model = build_for(member.config, self.data)
            if member.config.init_from:
                member.init_skipped = load_pretrained(model, member.config.init_from,
                                                      data_root(member.config.data_root),
                                                      partial=member.config.init_partial)
            models.append(model)
        self.rng_state = torch.get_rng_state()
        self.channels_last = self.device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in models[0].modules())
        try:
            self.kernels = kernels_for(kernels, self.device)
            self.fusion: Fusion = fuse(models, kernels=self.kernels, device=self.device,
                                       memory_format=torch.channels_last if self.channels_last else None)
        except FusionError as exc:
            raise GroupError(f"model {self.config.model!r} cannot be fused: {exc}") from exc
        self.model = self.fusion.model
        self.optimizer = make_optimizer(self.model, self.config)
        self.eval_sets = {
            split: self.data.eval_batches(split, device=self.device, channels_last=self.channels_last)
            for split in ("val", "test")
        }
        state = SliceOptimizerState(self.optimizer, self.fusion.slices)
        self.masks = {}  # fused parameter name -> float mask of the stacked weights (ones where nothing is masked)
        fused_params = dict(self.model.named_parameters())
        for member, view in zip(self.members, self.fusion.members, strict=True):
            member.model = view
            member.batches = self.data.batches("train", member.config.batch_size, seed=member.config.seed,
                                               device=self.device, channels_last=self.channels_last)
        self.steps_per_epoch = len(self.members[0].batches)
        self.total_steps = self.steps_per_epoch * self.config.epochs
        self.scheduler = make_scheduler(self.optimizer, self.config, self.steps_per_epoch)
        for member in self.members:
            names = list(sparse_parameters(member.model))
            buffers = {}
            for name in names:
                if name not in self.masks:
                    self.masks[name] = torch.ones_like(fused_params[name])
                buffers[name] = self.fusion.share(self.masks[name], name, member.k)
            member.dst = DST(member.model, state, sparsity_config(member.config, self.total_steps), driven=True,
                             mask_buffers=buffers)
        masked = {name for m in self.members for name in m.dst.float_masks}
        self._masking = [(fused_params[name], self.masks[name], name) for name in sorted(masked)]
        self.live = torch.tensor([m.live for m in self.members], device=self.device)
        self.epoch = 0
        self.elapsed = 0.0
        self.checkpoint_seconds = float(os.environ.get(CHECKPOINT_ENV, CHECKPOINT_SECONDS))
        self._last_checkpoint = time.time()
        self._exposed: set[int] = set()
        # Refuse a model whose forward mixes members: compare on random inputs (own generator: no run's draws move)
        example = torch.randn((size, 2, *self.data.input_shape), generator=torch.Generator().manual_seed(0))
        try:
            self.fusion.check(example.to(self.device))
        except FusionError as exc:
            raise GroupError(f"model {self.config.model!r} cannot be fused: {exc}") from exc

    # ------------------------------------------------------------------------------------------------- run

    def fit(self) -> list[dict[str, Any] | None]:
        """Train to the end (or resume); returns each member's summary (None for members not written here)."""
        self._restore_or_start()
        while self.epoch < self.config.epochs and any(m.live for m in self.members):
            self._train_epoch()
        for member in self.members:
            if member.live:
                self._finish(member, vocab.DONE, None)
        if not self.config.keep_checkpoints and all(m.summary is not None or not m.writes for m in self.members):
            (self.group_dir / CHECKPOINT).unlink(missing_ok=True)
        return [m.summary for m in self.members]

    def _restore_or_start(self) -> None:
        path = self.group_dir / CHECKPOINT
        if path.exists():
            state = load_checkpoint(path, advice="delete it to train this run group again from the start")
            if [m["run_id"] for m in state["members"]] != [m.config.run_id() for m in self.members]:
                raise GroupError(f"{path} holds another group's checkpoint; delete it to train this group afresh")
            for member in self.members:  # the masks as built, before the checkpoint's replace them
                if member.writes:
                    member.records.restore_init_masks(member.dst.masks)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            self.epoch, self.elapsed = int(state["epoch"]), float(state["elapsed"])
            for member, saved in zip(self.members, state["members"], strict=True):
                member.dst.load_state_dict(saved["dst"])
                member.batches.load_state_dict(saved["batches"])
                member.best, member.last_row = dict(saved["best"]), dict(saved["last_row"])
                if saved["failed"] is not None:
                    member.failed = saved["failed"]
                    self._freeze(member)
                elif member.writes:
                    member.records.resume(self.epoch, len(member.dst.history))
        else:
            torch.set_rng_state(self.rng_state)
            for member in self.members:
                if member.writes:
                    member.records.start(member.dst.masks)
        for member in self.members:
            if not member.writes:
                self._freeze(member)
            elif member.failed is None:
                member.records.own("group.json")
                store.atomic_write_json(member.folder.file(vocab.GROUP_FILE), {
                    "id": self.id, "size": len(self.members), "index": member.k,
                    "members": [m.config.run_id() for m in self.members], "dir": str(self.group_dir.absolute()),
                })

    def _train_epoch(self) -> None:
        t0 = time.time()
        self.model.train()
        size = len(self.members)
        loss_sum = torch.zeros(size, device=self.device)
        correct = torch.zeros(size, device=self.device)
        seen = 0
        for member in self.members:
            member.history_start = len(member.dst.history)
        for batches in zip(*(m.batches for m in self.members), strict=True):
            xs, ys = zip(*batches, strict=True)
            y = torch.stack(ys, dim=1)
            losses, out = self.train_step(xs, y)
            with torch.no_grad():
                loss_sum += losses.detach() * y.shape[0]
                correct += self._correct(out.detach(), y)
            seen += y.shape[0]
        self.epoch += 1
        seconds = time.time() - t0
        # divided on the host, in double precision, as a solo run does
        train_loss = [v / seen for v in loss_sum.tolist()]
        train_acc = [v / seen for v in correct.tolist()]
        val = self._evaluate(self.eval_sets["val"])
        test = self._evaluate(self.eval_sets["test"])
        self.elapsed += seconds
        lr = self.optimizer.param_groups[0]["lr"]
        for member in self.members:
            if not member.live:
                continue
            k = member.k
            row = epoch_row(member.dst, epoch=self.epoch, train_loss=train_loss[k], train_acc=train_acc[k],
                            val=(val[0][k], val[1][k]), test=(test[0][k], test[1][k]), lr=lr, seconds=seconds)
            member.last_row = row
            member.best = better(member.best, self.epoch, val[1][k], test[1][k])
            member.records.epoch(row, member.dst.history[member.history_start:])
        last = self.epoch >= self.config.epochs
        if (self.config.keep_checkpoints if last
                else time.time() - self._last_checkpoint >= self.checkpoint_seconds):
            self._checkpoint()
        for member in self.members:
            if member.live and not math.isfinite(member.last_row["train_loss"]):
                self._fail(member, f"training loss became {member.last_row['train_loss']} in epoch {self.epoch}: "
                                   "lower the learning rate or check the data")

    def train_step(self, xs: Sequence[torch.Tensor], y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One fused optimizer step and every member's DST step; `xs` are the members' batches, `y` their labels
        stacked as (B, K). Returns the members' losses (K,) and the fused outputs, on the device; no host sync
        between topology updates."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp):
            out = self.model(self.fusion.inputs(xs))
            losses = self._losses(self.fusion.outputs(out), y)
        torch.where(self.live, losses, torch.zeros_like(losses)).sum().backward()
        self._mask_gradients()
        self.optimizer.step()
        self.scheduler.step()
        for member in self.members:
            if not member.live:
                continue
            try:
                self._before_dst_step(member)
                due = member.dst.update_due()
                if due:
                    self._expose_gradients(member)
                member.dst.step_taken()
            except Exception as exc:
                reason = str(exc) if isinstance(exc, FloatingPointError) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, FloatingPointError):
                    print(f"dstbench: run {member.config.run_id()} failed in its group:\n{traceback.format_exc()}",
                          file=sys.stderr)
                self._fail(member, reason)
            finally:
                self._expose_gradients(member, clear=True)
        return losses, out

    # --------------------------------------------------------------------------------------- member state

    @torch.no_grad()
    def _mask_gradients(self) -> None:
        """Zero inactive weights' gradients: one fused multiply, except the shares of members that update after
        this step (gradient growth reads their dense gradient; their engine masks after the update)."""
        grads = [(p.grad, mask, name) for p, mask, name in self._masking if p.grad is not None]
        if not grads:
            return
        due = [m.k for m in self.members if m.live and m.dst.update_due()]
        kept = [[self.fusion.share(g, name, k).clone() for k in due] for g, _, name in grads] if due else []
        torch._foreach_mul_([g for g, _, _ in grads], [mask for _, mask, _ in grads])
        for (g, _, name), saved in zip(grads, kept, strict=False):
            for k, share in zip(due, saved, strict=True):
                self.fusion.share(g, name, k).copy_(share)

    def _expose_gradients(self, member: _Member, clear: bool = False) -> None:
        """Give member's parameters their share of the fused gradients (views), or take them away."""
        if clear != (member.k in self._exposed):
            return
        (self._exposed.discard if clear else self._exposed.add)(member.k)
        for param in member.model.parameters():
            stacked, index = self.fusion.slices[id(param)]
            param.grad = None if clear or stacked.grad is None else stacked.grad[index]

    def _before_dst_step(self, member: _Member) -> None:
        """Probes and mask snapshots of the step about to be taken, as a solo run takes them."""
        config, step = member.config, member.dst.steps + 1
        if probe_due(config, step):
            self._expose_gradients(member)
            store.save_probe(member.folder.probe_path(step), probe(config, member.dst, step))
        if step in member.snapshot_steps:
            member.records.snapshot(step, member.dst.masks)

    def _fail(self, member: _Member, reason: str) -> None:
        self._finish(member, vocab.FAILED, reason)
        member.failed = reason
        self._freeze(member)

    @torch.no_grad()
    def _freeze(self, member: _Member) -> None:
        """Zero a member's share of everything (weights, statistics, optimizer state, masks) and drop its loss:
        its gradients are then exactly zero and the share stays zero, finite, and out of the others' way."""
        k = member.k
        self.live[k] = False
        buffers = [b for n, b in member.model.named_buffers() if not n.endswith("num_batches_tracked")]  # shared
        for tensor in [*member.model.parameters(), *buffers]:
            tensor.zero_()
        for param in member.model.parameters():
            for value in member.dst.optimizer_state.weight_state(param):
                value.zero_()
        for name, mask in self.masks.items():
            self.fusion.share(mask, name, k).zero_()

    # ----------------------------------------------------------------------------------------- evaluation

    def _losses(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The members' mean losses (K,) of their outputs (B, K, C) against labels (B, K), in float32.

        Exact kernels compute each member's loss as its solo run does (one reduction per member), so that its
        gradient is bit-identical too; batched ones reduce all members at once.
        """
        out = out.float()
        binary = self.data.task == "binary"
        if self.kernels == "exact":
            if binary:
                return torch.stack([F.binary_cross_entropy_with_logits(out[:, k].reshape(-1).contiguous(),
                                                                       y[:, k].float())
                                    for k in range(out.shape[1])])
            return torch.stack([F.cross_entropy(out[:, k].contiguous(), y[:, k],
                                                label_smoothing=self.config.label_smoothing)
                                for k in range(out.shape[1])])
        if binary:
            return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float(), reduction="none").mean(0)
        return F.cross_entropy(out.permute(0, 2, 1), y, reduction="none",
                               label_smoothing=self.config.label_smoothing).mean(0)

    def _correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.fusion.outputs(out)
        if self.data.task == "binary":
            return ((out.squeeze(-1) > 0).long() == y).sum(0)
        return (out.argmax(2) == y).sum(0)

    @torch.no_grad()
    def _evaluate(self, batches: Any) -> tuple[list[float], list[float]]:
        """Every member's mean loss and accuracy on a split, in one fused pass per batch."""
        self.model.eval()
        size = len(self.members)
        loss_sum = torch.zeros(size, device=self.device)
        correct = torch.zeros(size, device=self.device)
        seen = 0
        for x, y in batches:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp):
                out = self.model(self.fusion.inputs([x] * size))
            labels = y.unsqueeze(1).expand(-1, size)
            loss_sum += self._losses(self.fusion.outputs(out), labels) * len(y)
            correct += self._correct(out, labels)
            seen += len(y)
        if seen == 0:
            return [float("nan")] * size, [float("nan")] * size
        return [v / seen for v in loss_sum.tolist()], [v / seen for v in correct.tolist()]

    # -------------------------------------------------------------------------------------------- writing

    def _checkpoint(self) -> None:
        self._last_checkpoint = time.time()
        self.group_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.group_dir / CHECKPOINT, {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "members": [{
                "run_id": m.config.run_id(), "dst": m.dst.state_dict(), "batches": m.batches.state_dict(),
                "best": m.best, "last_row": m.last_row, "failed": m.failed,
            } for m in self.members],
        })

    def _finish(self, member: _Member, status: str, reason: str | None) -> None:
        size = len(self.members)
        group = {"id": self.id, "size": size, "shared_seconds": self.elapsed,
                 "amortised_seconds": self.elapsed / size}
        member.summary = summary_of(member.config, status, reason, epochs=self.epoch, dst=member.dst,
                                    model=member.model, last_row=member.last_row, best=member.best,
                                    wall_seconds=self.elapsed / size, group=group, init_skipped=member.init_skipped)
        member.records.finish(member.summary, epoch=self.epoch, history_rows=len(member.dst.history),
                              masks=member.dst.masks, model=member.model)


def kernels_for(kernels: str, device: torch.device) -> str:
    """"auto": exact kernels on a CPU (bit-identical members), batched ones on a GPU (the fast path)."""
    if kernels == "auto":
        return "batched" if device.type == "cuda" else "exact"
    return kernels


# "auto" group sizes per model: the most runs of one model worth fusing. Set for a GPU, where a small model's
# step is bound by launches and Python, so K members cost little more than one; NOT yet measured there
# (benchmarks/run_groups.py --device cuda does it). On a CPU fusion neither helps nor hurts a step much (README,
# "Run groups"); groups there save per-run overhead. Models not listed (the ImageNet ones, user models) train solo
# under "auto"; an explicit size fuses any model fusion accepts. Memory may lower the size (`split_for_memory`).
AUTO_GROUP_SIZE = {"small_mlp": 256, "large_mlp": 16, "lenet5_caffe": 32, "small_cnn": 32, "resnet56": 16,
                   "vgg16_bn": 8}
# Share of the free device memory (or of the available RAM on a CPU) a group may plan to use.
MEMORY_SHARE = 0.8
MEMORY_ENV = "DSTBENCH_GROUP_MEMORY_GB"  # a fixed budget instead (GB), e.g. for a node shared with others


def group_limit(config: RunConfig, group_size: int | str) -> int:
    """The most runs like `config` to fuse for a sweep's `group_size` (1: solo)."""
    if solo_reason(config) is not None:
        return 1
    if group_size == vocab.AUTO:
        return AUTO_GROUP_SIZE.get(config.model, 1)
    return int(group_size)


def memory_budget(device: torch.device) -> int:
    """Bytes a group may plan to use on `device`: `MEMORY_ENV` if set, else a share of what is free."""
    fixed = os.environ.get(MEMORY_ENV)
    if fixed:
        try:
            return int(float(fixed) * 1e9)
        except ValueError:
            raise UserError(f"{MEMORY_ENV}={fixed!r} is not a number of gigabytes") from None
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * MEMORY_SHARE)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(int(info["MemAvailable"].split()[0]) * 1024 * MEMORY_SHARE)
    except (OSError, KeyError, ValueError):
        return 1 << 62  # unknown: no limit from here (an out-of-memory error still splits the group)


def split_for_memory(configs: Sequence[RunConfig], data: Any, budget: int) -> list[list[RunConfig]]:
    """`configs` in consecutive chunks whose estimated memory (`estimated_group_bytes`) fits `budget`."""
    config = configs[0]
    model = build_for(config, data)
    example = torch.zeros((2, *data.input_shape))
    slots = 1 if config.optimizer == "sgd" else 2
    per_member = estimated_group_bytes(model, example, 1, config.batch_size, optimizer_slots=slots)
    size = max(1, min(len(configs), budget // max(1, per_member)))
    return [list(configs[i:i + size]) for i in range(0, len(configs), size)]


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def run_group(configs: Sequence[RunConfig], run_dirs: Sequence[Path | str], groups_dir: Path | str, *,
              claims: Sequence[Claim | None] | None = None, data: Any = None, kernels: str = "auto",
              budget: int | None = None) -> list[dict[str, Any] | None]:
    """Train (or resume) `configs` as run groups into `run_dirs`; return the members' summaries.

    Each group's checkpoint goes to ``groups_dir/<group id>/``. The runs are split into groups whose estimated
    memory fits `budget` (default `memory_budget`); a group that still runs out of memory is split in two and
    retried, with a line on stderr saying so. Members whose folders hold a summary already are not trained
    again (they ride along, frozen, so that a checkpointed group keeps its shape). Without `claims`, each
    member's folder is claimed here, as `run` does.
    """
    load_plugins()
    configs = [resolve_config(c) for c in configs]
    check_compatible(configs)
    folders = [store.RunDir(d) for d in run_dirs]
    with contextlib.ExitStack() as stack:
        if claims is None:
            claims = [stack.enter_context(hold_run_folder(f.path)) for f in folders]
        for config, folder in zip(configs, folders, strict=True):
            _write_config(folder, config)
        if all(f.summary() is not None for f in folders):
            return [f.summary() for f in folders]
        data = data if data is not None else load_data(configs[0])
        members = list(zip(configs, folders, claims, strict=True))
        resumed = _checkpointed(configs, Path(groups_dir))
        if resumed:
            chunks = [members]  # a checkpointed group keeps its shape
        else:
            budget = budget if budget is not None else memory_budget(pick_device(configs[0].device))
            sizes = [len(c) for c in split_for_memory(configs, data, budget)]
            chunks = [members[sum(sizes[:i]):sum(sizes[:i + 1])] for i in range(len(sizes))]
            if len(chunks) > 1:
                print(f"dstbench: {len(configs)} runs of {configs[0].model} would not fit the memory budget "
                      f"({budget / 1e9:.2f} GB) as one group; training them as {len(chunks)} groups of up to "
                      f"{sizes[0]}", file=sys.stderr)
        for chunk in chunks:
            _fit_splitting(chunk, Path(groups_dir), data, kernels)
    return [f.summary() for f in folders]


def _checkpointed(configs: Sequence[RunConfig], groups_dir: Path) -> bool:
    return (groups_dir / group_id([c.run_id() for c in configs]) / CHECKPOINT).exists()


def _fit_splitting(members: list[tuple[RunConfig, store.RunDir, Claim | None]], groups_dir: Path, data: Any,
                   kernels: str) -> None:
    """Fit one group; on running out of memory, split it in two and fit each half (a single run fails)."""
    configs, folders, claims = (list(x) for x in zip(*members, strict=True))
    writes = [f.summary() is None for f in folders]
    if not any(writes):
        return
    gid = group_id([c.run_id() for c in configs])
    try:
        GroupTrainer(configs, folders, groups_dir / gid, claims=claims, writes=writes, data=data,
                     kernels=kernels).fit()
    except Exception as exc:
        if not _out_of_memory(exc) or len(members) == 1:
            raise
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        half = len(members) // 2
        print(f"dstbench: a group of {len(members)} runs of {configs[0].model} ran out of memory; splitting it "
              f"into groups of {half} and {len(members) - half} and starting them again", file=sys.stderr)
        for part in (members[:half], members[half:]):
            _fit_splitting(part, groups_dir, data, kernels)
