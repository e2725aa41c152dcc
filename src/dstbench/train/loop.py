"""One training run, top to bottom: data, model, optimizer, DST, epochs, evaluation, checkpoints, summary.

`run(config, run_dir)` is the only entry point. It owns the run folder while it trains (the claim a sweep worker
takes: a second process on the folder is refused) and checks that it still does before every write. It is
resumable: a checkpoint is written atomically after every epoch, and a run started again in the same folder
continues from it and ends bit-identical (on CPU) to a run that was never interrupted. A finished run returns
its summary at once; it keeps its final weights (model.npz) and masks, and drops the checkpoint unless
`keep_checkpoints`.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dstbench import store, vocab
from dstbench.config import RunConfig
from dstbench.data.registry import data_root
from dstbench.errors import UserError
from dstbench.experiments.claims import Claim, ClaimLostError, hold_run_folder
from dstbench.plugins import load_plugins
from dstbench.sparsity import DST
from dstbench.train.checkpoint import load_checkpoint, load_pretrained, save_checkpoint
from dstbench.train.distributed import Distributed, is_launch_main
from dstbench.train.progress import Progress
from dstbench.train.recipes import resolve_config
from dstbench.train.records import (  # noqa: F401  (DamagedRunError: raised from here for callers of run)
    DamagedRunError,
    RunRecords,
    better,
    epoch_row,
    new_best,
    probe,
    probe_due,
    summary_of,
)
from dstbench.train.setup import (
    build_for,
    load_data,
    make_optimizer,
    make_scheduler,
    pick_device,
    sparsity_config,
)


class ConfigMismatchError(UserError):
    """The run folder holds a run with another config; nothing is overwritten."""


def run(config: RunConfig, run_dir: Path | str, *, retry_failed: bool = False) -> dict[str, Any]:
    """Train (or resume, or return) the run described by `config` in `run_dir`; return its summary.

    A failed run returns its summary unless `retry_failed`, which trains it again (resuming its checkpoint).
    """
    load_plugins()
    config = resolve_config(config)
    folder = store.RunDir(run_dir)
    # Under torchrun, rank 0 owns the folder for all ranks (only it writes).
    owner = hold_run_folder(folder.path) if is_launch_main() else contextlib.nullcontext()
    with owner as claim:
        _write_config(folder, config)
        summary = folder.summary()
        if summary is not None:
            if not (retry_failed and folder.status() == vocab.FAILED):
                return summary
            folder.file(store.SUMMARY).unlink()
        dist = Distributed.from_env(config)
        try:
            return _Trainer(config, folder, dist, claim).fit()
        except KeyboardInterrupt:
            if claim is not None and claim.lost.is_set():
                raise ClaimLostError(f"{folder.path}: another process took this run over (it judged this one "
                                     "dead); stopped and wrote nothing more") from None
            raise
        finally:
            dist.close()


def _write_config(folder: store.RunDir, config: RunConfig) -> None:
    """Write config.json, or check that the one there describes the same run.

    A damaged config.json in a folder named by this config's run id is rewritten: the name proves which run the
    folder holds (a sweep's runs/<run_id>). Elsewhere it is an error, since nothing says what the folder held.
    """
    path = folder.file(store.CONFIG)
    if path.exists():
        try:
            existing = RunConfig.model_validate(store.read_json(path))
        except ValueError as exc:  # not JSON, or not a valid config
            if folder.run_id != config.run_id():
                raise UserError(f"{path} is damaged ({str(exc).splitlines()[0]}); restore it, or delete the run "
                                "folder to train the run again") from None
            store.atomic_write_json(path, config.model_dump(mode="json"))
            return
        if existing.run_id() != config.run_id():
            theirs, ours = existing.identity(), config.identity()
            diff = sorted(k for k in ours if theirs.get(k) != ours.get(k))
            raise ConfigMismatchError(
                f"{folder.path} holds a run with a different config (differs in: {', '.join(diff)}); "
                "choose another --out folder or delete that run"
            )
        return
    folder.path.mkdir(parents=True, exist_ok=True)
    store.atomic_write_json(path, config.model_dump(mode="json"))


class _Trainer:
    """A run's pieces and its epochs. `data` replaces the config's data set (benchmarks on synthetic data)."""

    def __init__(self, config: RunConfig, folder: store.RunDir, dist: Distributed, claim: Claim | None = None,
                 data: Any = None):
        self.config, self.folder, self.dist, self.claim = config, folder, dist, claim
        self.records = RunRecords(config, folder, claim)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.device = dist.device if dist.enabled else pick_device(config.device)
        torch.manual_seed(config.seed)
        self.data = data if data is not None else load_data(config)
        self.model = build_for(config, self.data).to(self.device)
        if config.init_from:
            load_pretrained(self.model, config.init_from, data_root(config.data_root))
        self.channels_last = self.device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = dist.wrap(self.model)
        self.optimizer = make_optimizer(self.model, config)
        self.train_batches = self.data.batches(
            "train", config.batch_size, seed=config.seed, device=self.device, channels_last=self.channels_last
        )
        self.eval_sets = {
            split: self.data.eval_batches(split, device=self.device, channels_last=self.channels_last)
            for split in ("val", "test")
        }
        self.steps_per_epoch = len(self.train_batches)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = make_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.dst = DST(self.model, self.optimizer, sparsity_config(config, self.total_steps))
        self.update_batches = (
            self.data.batches("train", config.update_batch_size, seed=config.seed + 1, device=self.device,
                              channels_last=self.channels_last)
            if config.update_batch_size else None
        )
        self.epoch = 0
        self.last_row: dict[str, Any] = {}
        self.elapsed = 0.0  # seconds of the epochs trained so far, across restarts
        self.best = new_best()
        self.snapshot_steps = set(config.mask_snapshot_steps)

    # ------------------------------------------------------------------------------------------------- run

    def fit(self) -> dict[str, Any]:
        started = time.time()
        self._restore_or_start()
        progress = Progress(self.config, self.steps_per_epoch, enabled=self.dist.is_main)
        try:
            while self.epoch < self.config.epochs:
                row = self._train_epoch(progress)
                progress.epoch_done(row)
                if not math.isfinite(row["train_loss"]):
                    return self._finish(started, "failed", f"training loss became {row['train_loss']} in epoch "
                                        f"{row['epoch']}: lower the learning rate or check the data")
        except FloatingPointError as exc:
            return self._finish(started, "failed", str(exc))
        finally:
            progress.close()
        return self._finish(started, "done", None)

    def _restore_or_start(self) -> None:
        path = self.folder.file(store.CHECKPOINT)
        if path.exists():
            state = load_checkpoint(path)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.dst.load_state_dict(state["dst"])
            self.train_batches.load_state_dict(state["batches"])
            if self.update_batches is not None:
                self.update_batches.load_state_dict(state["update_batches"])
            torch.set_rng_state(state["torch_rng"])
            self.epoch, self.best = int(state["epoch"]), dict(state["best"])
            self.last_row, self.elapsed = dict(state["last_row"]), float(state["elapsed"])
            if self.dist.is_main:
                self.records.resume(self.epoch, int(state["history_rows"]))
        elif self.dist.is_main:
            self.records.start(self.dst.masks)

    def _train_epoch(self, progress: Progress) -> dict[str, Any]:
        t0 = time.time()
        self.net.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen = 0
        history_before = len(self.dst.history)
        for x, y in self.train_batches:
            x, y = self.dist.shard(x), self.dist.shard(y)
            loss, out = self.train_step(x, y)
            with torch.no_grad():
                loss_sum += loss.detach() * len(y)
                correct += self._correct(out.detach(), y)
            seen += len(y)
            progress.step(loss)
        self.epoch += 1
        train_loss = float(loss_sum) / seen
        val_loss, val_acc = self._evaluate(self.eval_sets["val"])
        test_loss, test_acc = self._evaluate(self.eval_sets["test"])
        row = epoch_row(self.dst, epoch=self.epoch, train_loss=train_loss, train_acc=float(correct) / seen,
                        val=(val_loss, val_acc), test=(test_loss, test_acc), lr=self.optimizer.param_groups[0]["lr"],
                        seconds=time.time() - t0)
        self.last_row, self.elapsed = row, self.elapsed + row["seconds"]
        self.best = better(self.best, self.epoch, val_acc, test_acc)
        if self.dist.is_main:
            self.records.epoch(row, self.dst.history[history_before:])
            self._checkpoint()
        return row

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step and DST step on a batch; returns the loss and the outputs, still on the device.

        Between topology updates (and probes or snapshots) nothing here waits for the device: no host sync.
        """
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.net(x)
            loss = self._loss(out, y)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self._before_dst_step()
        self.dst.step()
        return loss, out

    def _before_dst_step(self) -> None:
        """Work that must see the state the topology update will see: probes, snapshots, a larger-batch grad."""
        step = self.dst.steps + 1
        if self.update_batches is not None and self.dst.update_due():
            self._gradient_on_update_batch()
        if probe_due(self.config, step):
            probed = probe(self.config, self.dst, step)
            if self.dist.is_main:
                store.save_probe(self.folder.probe_path(step), probed)
        if step in self.snapshot_steps and self.dist.is_main:
            self.records.snapshot(step, self.dst.masks)

    def _gradient_on_update_batch(self) -> None:
        """Appendix G: the gradient the update reads comes from one larger batch, not the training batch."""
        batch = next(iter(self.update_batches), None) or next(iter(self.update_batches))  # epoch wrap-around
        x, y = (self.dist.shard(t) for t in batch)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self._loss(self.net(x), y)
        loss.backward()

    # ----------------------------------------------------------------------------------------- evaluation

    def _autocast(self) -> torch.autocast:
        """bfloat16 autocast when the config asks for AMP: no loss scaling needed, parameters stay float32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = out.float()  # the loss and the metrics in float32 whatever the autocast
        if self.data.task == "binary":
            return F.binary_cross_entropy_with_logits(out.reshape(-1), y.float())
        return F.cross_entropy(out, y, label_smoothing=self.config.label_smoothing)

    def _correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.data.task == "binary":
            return ((out.reshape(-1) > 0).long() == y).sum()
        return (out.argmax(1) == y).sum()

    @torch.no_grad()
    def _evaluate(self, batches: Any) -> tuple[float, float]:
        self.net.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen = 0
        for x, y in batches:
            with self._autocast():
                out = self.model(x)
            loss_sum += self._loss(out, y) * len(y)
            correct += self._correct(out, y)
            seen += len(y)
        if seen == 0:
            return float("nan"), float("nan")
        return float(loss_sum) / seen, float(correct) / seen

    # -------------------------------------------------------------------------------------------- writing

    def _checkpoint(self) -> None:
        save_checkpoint(self.folder.file(store.CHECKPOINT), {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "dst": self.dst.state_dict(),
            "batches": self.train_batches.state_dict(),
            "update_batches": self.update_batches.state_dict() if self.update_batches is not None else None,
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "best": self.best,
            "last_row": self.last_row,
            "elapsed": self.elapsed,
            "history_rows": len(self.dst.history),
        })

    def _finish(self, started: float, status: str, reason: str | None) -> dict[str, Any]:
        summary = summary_of(self.config, status, reason, epochs=self.epoch, dst=self.dst, model=self.model,
                             last_row=self.last_row, best=self.best, wall_seconds=self.elapsed or time.time() - started)
        if self.dist.is_main:
            self.records.finish(summary, epoch=self.epoch, history_rows=len(self.dst.history), masks=self.dst.masks,
                                model=self.model)
            if status == vocab.DONE and not self.config.keep_checkpoints:
                self.folder.file(store.CHECKPOINT).unlink(missing_ok=True)  # the optimizer state is most of a run
        self.dist.barrier()
        return summary
