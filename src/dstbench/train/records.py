"""What a run writes into its folder, and when: one class for solo runs and for the members of a run group.

Order, which resuming relies on: the initial masks, then per epoch its metrics row and its topology-update rows,
then the checkpoint (the trainer's), and at the end the final masks, model.npz and summary.json last. Every write
first checks that this process still owns the run (its claim).
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import dstbench
from dstbench import store, vocab
from dstbench.claims import Claim
from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.sparsity import DST
from dstbench.trackers import Trackers
from dstbench.weights import save_weights

log = logging.getLogger(__name__)


class DamagedRunError(UserError):
    """The run folder's records disagree with its checkpoint; nothing is marked done."""


def masks_numpy(masks: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    return {n: m.cpu().numpy() for n, m in masks.items()}


def new_best() -> dict[str, Any]:
    return {"best_val_acc": -math.inf, "best_val_epoch": 0, "best_val_test_acc": float("nan")}


def better(best: dict[str, Any], epoch: int, val_acc: float, test_acc: float) -> dict[str, Any]:
    """`best` updated with this epoch's accuracies if its validation accuracy is higher."""
    if val_acc > best["best_val_acc"]:
        return {"best_val_acc": val_acc, "best_val_epoch": epoch, "best_val_test_acc": test_acc}
    return best


def epoch_row(dst: DST, *, epoch: int, train_loss: float, train_acc: float, val: tuple[float, float],
              test: tuple[float, float], lr: float, seconds: float) -> dict[str, Any]:
    """One metrics.jsonl row, the engine's state read after the epoch."""
    return vocab.metrics_row(
        epoch=epoch, step=dst.steps, train_loss=train_loss, train_acc=train_acc, val_loss=val[0], val_acc=val[1],
        test_loss=test[0], test_acc=test[1], lr=lr, prune_fraction=dst.prune_fraction(), density=dst.density(),
        itop=dst.itop(), seconds=seconds,
    )


def summary_of(config: RunConfig, status: str, reason: str | None, *, epochs: int, dst: DST, model: nn.Module,
               last_row: Mapping[str, Any], best: Mapping[str, Any], wall_seconds: float,
               group: Mapping[str, Any] | None = None, init_skipped: Sequence[str] = ()) -> dict[str, Any]:
    """summary.json of a finished (or failed) run; `group` says which run group trained it, if one did, and
    `init_skipped` which tensors an `init_partial` run kept fresh instead of loading them from `init_from`."""
    extra = {"group": dict(group)} if group is not None else {}
    if config.init_from:
        extra["init_skipped"] = list(init_skipped)
    return vocab.summary_record(
        status, reason, config.run_id(), config.model_dump(mode="json"),
        epochs=epochs,
        steps=dst.steps,
        final_test_acc=last_row.get("test_acc"),
        final_val_acc=last_row.get("val_acc"),
        final_train_loss=last_row.get("train_loss"),
        final_val_loss=last_row.get("val_loss"),
        **{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in best.items()},
        final_itop=dst.itop(),
        final_density=dst.density(),
        wall_seconds=wall_seconds,
        params_total=sum(p.numel() for p in model.parameters()),
        params_sparse=sum(m.numel() for m in dst.masks.values()),
        params_active=int(sum(int((p != 0).sum()) for p in model.parameters())),
        versions={
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "dstbench": dstbench.__version__,
        },
        **extra,
    )


def probe_due(config: RunConfig, step: int) -> bool:
    """Whether `config` probes its criteria at `step` (its probe_steps, or every probe_every steps)."""
    return bool(config.probe_criteria) and (
        step in config.probe_steps or bool(config.probe_every and step % config.probe_every == 0))


def probe(config: RunConfig, dst: DST, step: int) -> dict[tuple[str, float], dict[str, np.ndarray]]:
    """What each probed criterion would prune at `step`, at each probed fraction (default: the schedule's)."""
    fractions = config.probe_fractions or (dst.prune_fraction(step),)
    return {(criterion, float(f)): masks_numpy(dst.would_prune(criterion, f))
            for criterion in config.probe_criteria for f in fractions}


class RunRecords:
    """The writes of one run into its folder, each after checking the claim (`claim` None: not held here)."""

    def __init__(self, config: RunConfig, folder: store.RunDir, claim: Claim | None = None):
        self.config, self.folder, self.claim = config, folder, claim
        self.trackers = Trackers(config.track, folder.path, config.run_id())  # live logging (none by default)

    def own(self, what: str) -> None:
        """Stop before writing `what` if another process took this run over."""
        if self.claim is not None:
            self.claim.check(what)

    def start(self, masks: Mapping[str, Tensor]) -> None:
        """A run starting from scratch: drop rows of an attempt that died before its first checkpoint (a full
        disk), save the initial masks."""
        self.own("the first records")
        for name in (store.METRICS, store.HISTORY):
            if self.folder.file(name).exists():
                store.truncate_jsonl(self.folder.file(name), 0)
        if self.config.mode != vocab.DENSE:
            store.save_masks(self.folder.mask_path("init"), masks_numpy(masks))
        self.trackers.start(self.config.model_dump(mode="json"))

    def restore_init_masks(self, masks: Mapping[str, Tensor]) -> None:
        """Before a resuming run loads its checkpoint: write masks/init.npz again if it is gone (deleted, say).

        The engine as built before the checkpoint replaces its masks holds the very masks the run started with:
        the same seed draws them the same way (the resume tests check it)."""
        path = self.folder.mask_path("init")
        if self.config.mode == vocab.DENSE or path.exists():
            return
        self.own("the initial masks")
        store.save_masks(path, masks_numpy(masks))
        log.warning("%s was missing; written again from the run's seed (the masks it started with)", path)

    def resume(self, epoch: int, history_rows: int) -> None:
        """A run resuming a checkpoint of `epoch` epochs: its records must reach that far; later rows go. Mask
        snapshots of steps before the checkpoint that are gone cannot be rebuilt: a warning names them."""
        self.check(epoch, history_rows)
        self.own("resuming")
        store.truncate_jsonl(self.folder.file(store.METRICS), epoch)
        store.truncate_jsonl(self.folder.file(store.HISTORY), history_rows)
        metrics = self.folder.metrics()
        steps = int(metrics[epoch - 1].get("step") or 0) if epoch else 0
        lost = [self.folder.mask_path(f"step_{s:07d}") for s in sorted(self.config.mask_snapshot_steps)
                if s <= steps and not self.folder.mask_path(f"step_{s:07d}").exists()]
        if lost:
            log.warning("%s: %d mask snapshots of steps before the checkpoint are gone and cannot be rebuilt from "
                        "it: %s; delete %s to train the run again from the start and record them", self.folder.path,
                        len(lost), ", ".join(p.name for p in lost), self.folder.file(store.CHECKPOINT))
        self.trackers.start(self.config.model_dump(mode="json"), resumed_step=steps)

    def epoch(self, row: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> None:
        self.own(f"epoch {row['epoch']}'s metrics")
        store.append_jsonl(self.folder.file(store.METRICS), [row])
        store.append_jsonl(self.folder.file(store.HISTORY), history)
        self.trackers.epoch(row, history)

    def snapshot(self, step: int, masks: Mapping[str, Tensor]) -> None:
        store.save_masks(self.folder.mask_path(f"step_{step:07d}"), masks_numpy(masks))

    def finish(self, summary: Mapping[str, Any], *, epoch: int, history_rows: int, masks: Mapping[str, Tensor],
               model: nn.Module) -> None:
        """The final masks and weights of a finished run, then its summary (last: it marks the run finished)."""
        self.own("the summary")
        if summary["status"] == vocab.DONE:
            self.check(epoch, history_rows)  # never done with epochs missing from the records
            if self.config.mode != vocab.DENSE:
                store.save_masks(self.folder.mask_path("final"), masks_numpy(masks))
            # sparse weights without their inactive zeros: a finished study's folder is mostly final weights
            sparse = masks if self.config.mode != vocab.DENSE else None
            save_weights(self.folder.file(store.FINAL_MODEL), model.state_dict(), sparse)
        store.atomic_write_json(self.folder.file(store.SUMMARY), summary)
        self.trackers.finish(summary)

    def check(self, epoch: int, history_rows: int) -> None:
        """Refuse to resume when metrics.jsonl or history.jsonl lack rows the checkpoint has trained."""
        for name, have, want in ((store.METRICS, len(self.folder.metrics()), epoch),
                                 (store.HISTORY, len(self.folder.history()), history_rows)):
            if have < want:
                raise DamagedRunError(
                    f"{self.folder.file(name)} holds {have} rows but the checkpoint has trained {want}: the records "
                    f"were cut short or edited, and cannot be rebuilt. Restore the file, or delete "
                    f"{self.folder.file(store.CHECKPOINT)} to train this run again from the start")
