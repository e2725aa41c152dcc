"""A member of the one trainer (`dstbench.train.trainer`): one run's config, folder, records, engine, batches and
results so far, its checkpoint entry, and the steps at which it needs work of its own."""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from dstbench import store
from dstbench.claims import Claim
from dstbench.config import RunConfig
from dstbench.sparsity import DST
from dstbench.train.records import RunRecords, new_best


class Member:
    """One run of the trainer's K. `writes` False: finished elsewhere; trained along (frozen), never written."""

    def __init__(self, k: int, config: RunConfig, folder: store.RunDir, claim: Claim | None, writes: bool):
        self.k, self.config, self.folder = k, config, folder
        self.records = RunRecords(config, folder, claim)
        self.writes = writes
        self.failed: str | None = None
        self.summary: dict[str, Any] | None = None
        self.best = new_best()
        self.last_row: dict[str, Any] = {}
        self.snapshot_steps = set(config.mask_snapshot_steps)
        self.init_skipped: list[str] = []  # tensors not loaded from init_from (init_partial)
        self.model: nn.Module
        self.dst: DST
        self.batches: Any
        self.update_batches: Any = None
        self.next_event: float = math.inf  # the next step at which it needs work of its own (`event_after`)

    @property
    def live(self) -> bool:
        return self.writes and self.failed is None

    def event_after(self, step: int) -> float:
        """The first step after `step` at which this run updates its topology, probes or snapshots its masks: the
        steps its engine must see one by one (between them it takes `DST.steps_taken` at once)."""
        config = self.config
        steps = [s for s in self.snapshot_steps if s > step]
        update = self.dst.next_update(step)
        if update is not None:
            steps.append(update)
        if config.probe_criteria:
            steps += [s for s in config.probe_steps if s > step]
            if config.probe_every:
                steps.append((step // config.probe_every + 1) * config.probe_every)
        return min(steps, default=math.inf)

    def state_dict(self) -> dict[str, Any]:
        """Its entry in the trainer's checkpoint."""
        return {"run_id": self.config.run_id(), "dst": self.dst.state_dict(), "batches": self.batches.state_dict(),
                "update_batches": self.update_batches.state_dict() if self.update_batches is not None else None,
                "best": self.best, "last_row": self.last_row, "failed": self.failed}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.dst.load_state_dict(saved["dst"])
        self.batches.load_state_dict(saved["batches"])
        if self.update_batches is not None:  # only a lone member has one
            self.update_batches.load_state_dict(saved["update_batches"])
        self.best, self.last_row, self.failed = dict(saved["best"]), dict(saved["last_row"]), saved["failed"]


def one_layout(state: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    """A checkpoint in the trainer's layout: a solo run's checkpoint of the trainer before it (dstbench 0b7bb13
    and earlier: the run's entries at the top) gets them as its one member's."""
    if "members" in state:
        return state
    member = {key: state[key] for key in ("dst", "batches", "update_batches", "best", "last_row")}
    return {**state, "members": [{**member, "run_id": config.run_id(), "failed": None}]}
