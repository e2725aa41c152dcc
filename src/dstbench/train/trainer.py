"""The one trainer: K >= 1 runs of one architecture and recipe, top to bottom (data, models, optimizer, engines,
epochs, evaluation, checkpoints, summaries).

K = 1 is a solo run on its plain model (under DDP too). K > 1 is a run group: the members' models fused into one
(`dstbench.models.fusion`), and member k *is* the solo run of its config:

- its model is built with its seed before fusion, so it starts from the solo run's weights, and its engine (the
  ordinary `DST`, one per member, over views of its share of the fused weights) draws the solo run's mask;
- it reads its own batch stream (its seed's shuffle and augmentation);
- the loss is the sum of the members' mean losses, so each member's gradient is its solo gradient;
- gradient masking is one fused multiply over the stacked gradients and the optimizer steps the stacked tensors
  once; SGD, Adam and AdamW are elementwise with shared hyperparameters, so each member sees its solo step;
- its topology updates are its own engine's, reading its views of the weights, gradients and optimizer state.

With exact kernels (the default on a CPU) a member is bit-identical to its solo run: members that share no state
run their solo forward and backward one after the other (`one_by_one`), others the fused model's exact layers;
batched kernels (a GPU's default) differ in rounding only (`fusion`). A training step is one method over all
members (`train_step`); per-member Python runs after it only where a member has work of its own: a topology
update, a probe, a mask snapshot (`Member.event_after`). The step itself is `dstbench.train.stepping` (mixed in);
on CUDA a step without such work is one CUDA graph replay (`dstbench.train.capture`), and the members' batches are
formed together on the device (`dstbench.train.feed`).

Every member writes an ordinary run folder (`RunRecords`). The checkpoint (one file for all members) is written
atomically after the members' records of an epoch, once `checkpoint_seconds` passed since the last one; a run
started again resumes it bit-identically (CPU). A member whose loss turns NaN or inf fails with its reason; in a
group, so does one whose topology update raises: it gets its failed summary, its share is zeroed and frozen, and
the others train on unchanged (members never mix). A solo run lets such an error propagate (the caller records it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dstbench import store, vocab
from dstbench.claims import Claim
from dstbench.config import RunConfig
from dstbench.data.registry import data_root
from dstbench.models.fusion import Fusion, FusionError, fuse
from dstbench.sparsity import DST
from dstbench.sparsity.optimizers import OptimizerState, SliceOptimizerState
from dstbench.train import capture
from dstbench.train.capture import StepGraph
from dstbench.train.checkpoint import load_checkpoint, load_pretrained, save_checkpoint
from dstbench.train.distributed import Distributed
from dstbench.train.feed import Feed
from dstbench.train.grouping import GroupError, check_compatible, group_id
from dstbench.train.layout import Plain, correct, kernels_for, stacked
from dstbench.train.members import Member, one_layout
from dstbench.train.progress import Progress
from dstbench.train.records import better, epoch_row, summary_of
from dstbench.train.setup import (
    build_for,
    learning_rate,
    load_data,
    make_optimizer,
    make_scheduler,
    optimizer_kernels,
    pick_device,
    sparsity_config,
)
from dstbench.train.shares import Shares
from dstbench.train.stepping import Stepping


class Trainer(Stepping):
    """Train `configs` (resolved; compatible if several) into `folders`.

    `checkpoint` is the checkpoint file. `group_dir` set: the runs are a run group (each member's folder names it
    in group.json and its summary); else one run, whose failed update raises. `claims[k]` is the claim of member
    k's folder (None: not held here); `writes[k]` False marks a run finished already: it is trained along (the
    group's shape stays the one checkpointed) but never written. `data` replaces the config's data set
    (benchmarks); `kernels` are the fused model's (`kernels_for`). `step_mode` overrides the config's `capture`:
    "capturable" runs the captured step eagerly (the CPU tests compare it with the eager step), "eager" or
    "captured" (`dstbench.train.capture`).
    """

    def __init__(self, configs: Sequence[RunConfig], folders: Sequence[store.RunDir], checkpoint: Path, *,
                 group_dir: Path | None = None, claims: Sequence[Claim | None] | None = None,
                 writes: Sequence[bool] | None = None, dist: Distributed | None = None, data: Any = None,
                 kernels: str = "auto", checkpoint_seconds: float = 0.0, step_mode: str | None = None):
        size = len(configs)
        if size > 1:
            check_compatible(configs)
        self.config = configs[0]  # what all members share
        self.dist = dist or Distributed(enabled=False)
        if self.dist.enabled and size > 1:
            raise GroupError("a run group trains in one process; DDP trains one run")
        self.checkpoint_path, self.group_dir = Path(checkpoint), group_dir
        self.checkpoint_seconds = checkpoint_seconds
        claims = list(claims) if claims is not None else [None] * size
        writes = list(writes) if writes is not None else [True] * size
        self.members = [Member(k, c, f, claims[k], writes[k])
                        for k, (c, f) in enumerate(zip(configs, folders, strict=True))]
        self.id = group_id([c.run_id() for c in configs])
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        self.device = self.dist.device if self.dist.enabled else pick_device(self.config.device)
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
        self.rng_state = torch.get_rng_state()  # training draws (dropout) start here, as in a solo run
        self.channels_last = self.device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in models[0].modules())
        self.layout: Plain | Fusion
        if size == 1:
            layout_format = torch.channels_last if self.channels_last else torch.preserve_format
            self.layout = Plain(models[0].to(self.device, memory_format=layout_format))
        else:
            try:
                self.layout = fuse(models, kernels=kernels_for(kernels, self.device), device=self.device,
                                   memory_format=torch.channels_last if self.channels_last else None)
            except FusionError as exc:
                raise GroupError(f"model {self.config.model!r} cannot be fused: {exc}") from exc
        self.kernels = self.layout.kernels  # a lone member computes its loss as exactly as a solo run always did
        self.model = self.layout.model
        self.net = self.dist.wrap(self.model)
        for member, view in zip(self.members, self.layout.members, strict=True):
            member.model = view
            member.batches = self._batches(member.config.batch_size, member.config.seed)
            if member.config.update_batch_size:
                member.update_batches = self._batches(member.config.update_batch_size, member.config.seed + 1)
        self.eval_sets = {split: self.data.eval_batches(split, device=self.device, channels_last=self.channels_last)
                          for split in ("val", "test")}
        self.steps_per_epoch = len(self.members[0].batches)
        self.total_steps = self.steps_per_epoch * self.config.epochs
        # Exact kernels, members that share no state (no batch-norm counter): each member runs the solo forward
        # and backward on its own module, one member after the other as solo runs do (a CPU's caches then hold
        # one member's activations, not K's), and its gradients are copied into the stacked ones.
        shared = any(index is None for indices in getattr(self.layout, "indices", {}).values() for index in indices)
        self.one_by_one = size > 1 and self.kernels == "exact" and not shared
        streams = [m.batches for m in self.members]
        self.feed = Feed(streams, self.device) if Feed.fits(streams) else None
        self.step_mode = self._step_mode(step_mode)
        if self.feed is not None:
            self.feed.by_cursor = self.step_mode != "eager"
        self.optimizer = make_optimizer(self.model, self.config)
        self.scheduler = make_scheduler(self.optimizer, self.config, self.steps_per_epoch)
        self._fused = self.step_mode != "eager" and capture.fused_optimizer(self.device)
        optimizer_kernels(self.optimizer, fused=self._fused, device=self.device)
        state = OptimizerState(self.optimizer) if size == 1 else SliceOptimizerState(self.optimizer,
                                                                                     self.layout.slices)
        # The engines are driven: this trainer masks gradients (one multiply over all members) and steps them.
        self.shares = Shares(self.layout, self.model, self.one_by_one)
        for member in self.members:
            member.dst = DST(member.model, state, sparsity_config(member.config, self.total_steps), driven=True,
                             mask_buffers=self.shares.mask_buffers(member))
        self.shares.watch(self.members)
        self.live = torch.tensor([m.live for m in self.members], device=self.device)
        self._loss_sum = torch.zeros(size, device=self.device)  # the epoch's, summed over samples, per member
        self._hits = torch.zeros(size, device=self.device)
        self._graph = StepGraph(self._captured_step, self.device) if self.step_mode == "captured" else None
        self.epoch = self.steps = 0
        self._next_event = math.inf  # the first step at which a member has work of its own
        self._live_members = size
        self.elapsed = 0.0  # seconds of the epochs trained so far, across restarts
        self._last_checkpoint = time.time()
        self.progress = Progress(self.config, self.steps_per_epoch, enabled=size == 1 and self.dist.is_main)
        if size > 1:  # refuse a model whose forward mixes members (own generator: no run's draws move)
            example = torch.randn((size, 2, *self.data.input_shape), generator=torch.Generator().manual_seed(0))
            try:
                self.layout.check(example.to(self.device))
            except FusionError as exc:
                raise GroupError(f"model {self.config.model!r} cannot be fused: {exc}") from exc

    def _batches(self, batch_size: int, seed: int) -> Any:
        return self.data.batches("train", batch_size, seed=seed, device=self.device, channels_last=self.channels_last)

    # ------------------------------------------------------------------------------------------------- run

    def fit(self) -> list[dict[str, Any] | None]:
        """Train to the end (or resume); returns each member's summary (None for members not written here)."""
        started = time.time()
        self._restore_or_start()
        try:
            while self.epoch < self.config.epochs and any(m.live for m in self.members):
                self._train_epoch()
        finally:
            self.progress.close()
        for member in self.members:
            if member.live:
                self._finish(member, vocab.DONE, None, started)
        if not self.config.keep_checkpoints and all(m.summary is not None or not m.writes for m in self.members):
            self.checkpoint_path.unlink(missing_ok=True)  # the optimizer state is most of a run
        self.dist.barrier()
        return [m.summary for m in self.members]

    def _restore_or_start(self) -> None:
        if self.checkpoint_path.exists():
            for member in self.members:  # the masks as built, before the checkpoint's replace them
                if member.writes and self.dist.is_main:
                    member.records.restore_init_masks(member.dst.masks)
            advice = None if self.group_dir is None else "delete it to train this run group again from the start"
            state = one_layout(load_checkpoint(self.checkpoint_path, advice=advice), self.members[0].config)
            if [m["run_id"] for m in state["members"]] != [m.config.run_id() for m in self.members]:
                raise GroupError(f"{self.checkpoint_path} holds another group's checkpoint; delete it to train "
                                 "this group afresh")
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            optimizer_kernels(self.optimizer, fused=self._fused, device=self.device)  # whichever step saved it
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            self.epoch, self.elapsed = int(state["epoch"]), float(state["elapsed"])
            for member, saved in zip(self.members, state["members"], strict=True):
                member.load_state_dict(saved)
                if member.failed is not None:
                    self._freeze(member)
                elif member.writes and self.dist.is_main:
                    member.records.resume(self.epoch, len(member.dst.history))
        else:
            torch.set_rng_state(self.rng_state)
            for member in self.members:
                if member.writes and self.dist.is_main:
                    member.records.start(member.dst.masks)
        self.steps = self.epoch * self.steps_per_epoch  # checkpoints are taken at the ends of epochs
        self._schedule()
        for member in self.members:
            if not member.writes:
                self._freeze(member)
            elif member.failed is None and self.group_dir is not None:
                member.records.own("group.json")
                store.atomic_write_json(member.folder.file(vocab.GROUP_FILE), {
                    "id": self.id, "size": len(self.members), "index": member.k,
                    "members": [m.config.run_id() for m in self.members], "dir": str(self.group_dir.absolute()),
                })

    def _train_epoch(self) -> None:
        """One epoch of every member, its evaluation, its records, and the checkpoint when due."""
        t0 = time.time()
        for module in (self.net, *(m.model for m in self.members)):
            module.train()
        self._loss_sum.zero_()
        self._hits.zero_()
        seen = 0
        history_start = [len(m.dst.history) for m in self.members]
        for batches in self._epoch_batches():
            if not self._live_members:  # the last one failed in this epoch: nothing left to train
                break
            losses, _, y = self.train_step(batches)
            seen += y.shape[0]
            self.progress.step(losses)
        self.epoch += 1
        self._engines_to(self.steps)
        seconds = time.time() - t0
        # divided on the host, in double precision
        train_loss = [v / seen for v in self._loss_sum.tolist()]
        train_acc = [v / seen for v in self._hits.tolist()]
        val = self._evaluate(self.eval_sets["val"])
        test = self._evaluate(self.eval_sets["test"])
        self.elapsed += seconds
        lr = learning_rate(self.scheduler)
        for member in self.members:
            if not member.live:
                continue
            k = member.k
            row = epoch_row(member.dst, epoch=self.epoch, train_loss=train_loss[k], train_acc=train_acc[k],
                            val=(val[0][k], val[1][k]), test=(test[0][k], test[1][k]), lr=lr, seconds=seconds)
            member.last_row = row
            member.best = better(member.best, self.epoch, val[1][k], test[1][k])
            self.progress.epoch_done(row)
            if self.dist.is_main:
                member.records.epoch(row, member.dst.history[history_start[k]:])
        last = self.epoch >= self.config.epochs
        if self.dist.is_main and (self.config.keep_checkpoints if last
                                  else time.time() - self._last_checkpoint >= self.checkpoint_seconds):
            self._checkpoint()
        for member in self.members:
            if member.live and not math.isfinite(member.last_row["train_loss"]):
                self._fail(member, f"training loss became {member.last_row['train_loss']} in epoch {self.epoch}: "
                                   "lower the learning rate or check the data")

    # ------------------------------------------------------------------------------------- member events

    def _events(self, step: int) -> list[Member]:
        """The live members with work of their own at `step`, their engines brought to the step before it."""
        if step < self._next_event:
            return []
        visiting = [m for m in self.members if m.live and m.next_event == step]
        for member in visiting:
            member.dst.steps_taken(step - 1 - member.dst.steps)
        return visiting

    def _engines_to(self, step: int) -> None:
        """Bring every live member's engine to `step` (between events they are not stepped one by one)."""
        for member in self.members:
            if member.live:
                member.dst.steps_taken(step - member.dst.steps)

    def _schedule(self) -> None:
        """Every member's next event after the current step."""
        for member in self.members:
            member.next_event = member.event_after(self.steps)
        self._first_event()

    def _first_event(self) -> None:
        live = [m for m in self.members if m.live]
        self._live_members = len(live)
        self._next_event = min((m.next_event for m in live), default=math.inf)

    # --------------------------------------------------------------------------------------- member state

    def _fail(self, member: Member, reason: str) -> None:
        self._finish(member, vocab.FAILED, reason)
        member.failed = reason
        self._freeze(member)
        self._first_event()

    def _freeze(self, member: Member) -> None:
        self.live[member.k] = False
        self.shares.freeze(member)

    # ----------------------------------------------------------------------------------------- evaluation

    @torch.no_grad()
    def _evaluate(self, batches: Any) -> tuple[list[float], list[float]]:
        """Every member's mean loss and accuracy on a split, in one pass per batch."""
        for module in (self.model, *(m.model for m in self.members)):
            module.eval()
        size = len(self.members)
        loss_sum = torch.zeros(size, device=self.device)
        hits = torch.zeros(size, device=self.device)
        seen = 0
        for x, y in batches:
            with self._autocast():
                if self.one_by_one:  # the solo forward of each member
                    out = torch.stack([member.model(x) for member in self.members], dim=1)
                else:
                    out = self.layout.outputs(self.model(self.layout.inputs([x] * size)))
            labels = y.unsqueeze(1).expand(-1, size)
            loss_sum += stacked(self._losses(out, labels)) * len(y)
            hits += correct(out, labels, binary=self.data.task == "binary")
            seen += len(y)
        if seen == 0:
            return [float("nan")] * size, [float("nan")] * size
        return [v / seen for v in loss_sum.tolist()], [v / seen for v in hits.tolist()]

    # -------------------------------------------------------------------------------------------- writing

    def _checkpoint(self) -> None:
        self._last_checkpoint = time.time()
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        optimizer = self.optimizer.state_dict()
        for group in optimizer["param_groups"]:  # a float rate, whichever step (eager or captured) resumes
            group["lr"] = float(group["lr"])
        save_checkpoint(self.checkpoint_path, {
            "model": self.model.state_dict(),
            "optimizer": optimizer,
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "members": [m.state_dict() for m in self.members],
        })

    def _finish(self, member: Member, status: str, reason: str | None, started: float | None = None) -> None:
        size = len(self.members)
        wall = self.elapsed / size or (time.time() - started if started is not None else 0.0)
        group = None if self.group_dir is None else {"id": self.id, "size": size, "shared_seconds": self.elapsed,
                                                     "amortised_seconds": self.elapsed / size}
        member.summary = summary_of(member.config, status, reason, epochs=self.epoch, dst=member.dst,
                                    model=member.model, last_row=member.last_row, best=member.best,
                                    wall_seconds=wall, group=group,
                                    init_skipped=member.init_skipped)
        if self.dist.is_main:
            member.records.finish(member.summary, epoch=self.epoch, history_rows=len(member.dst.history),
                                  masks=member.dst.masks, model=member.model)
