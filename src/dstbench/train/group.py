"""Run groups: K runs of one architecture and recipe trained as one fused model by the one trainer
(`dstbench.train.trainer`), split to fit the memory, each writing an ordinary run folder.

Every member's folder gets ``group.json`` naming its group; the group's checkpoint is
``<groups dir>/<group id>/checkpoint.pt`` (`grouping.group_checkpoint`), written once `grouping.CHECKPOINT_SECONDS`
passed since the last one; rerunning the same group resumes it bit-identically (CPU).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dstbench import store
from dstbench.claims import Claim, hold_run_folder
from dstbench.config import RunConfig
from dstbench.plugins import load_plugins
from dstbench.train.grouping import (
    check_compatible,
    checkpoint_seconds,
    group_checkpoint,
    memory_budget,
    split_for_memory,
)
from dstbench.train.loop import write_config
from dstbench.train.recipes import resolve_config
from dstbench.train.setup import load_data, pick_device
from dstbench.train.trainer import Trainer


def run_group(configs: Sequence[RunConfig], run_dirs: Sequence[Path | str], groups_dir: Path | str, *,
              claims: Sequence[Claim | None] | None = None, data: Any = None, kernels: str = "auto",
              budget: int | None = None) -> list[dict[str, Any] | None]:
    """Train (or resume) `configs` as run groups into `run_dirs`; return the members' summaries.

    The runs are split into groups whose estimated memory fits `budget` (default `memory_budget`); a group that
    still runs out of memory is split in two and retried, with a line on stderr saying so. Members whose folders
    hold a summary already are not trained again (they ride along, frozen, so that a checkpointed group keeps its
    shape). Without `claims`, each member's folder is claimed here, as `run` does.
    """
    load_plugins()
    configs = [resolve_config(c) for c in configs]
    check_compatible(configs)
    folders = [store.RunDir(d) for d in run_dirs]
    groups_dir = Path(groups_dir)
    with contextlib.ExitStack() as stack:
        if claims is None:
            claims = [stack.enter_context(hold_run_folder(f.path)) for f in folders]
        for config, folder in zip(configs, folders, strict=True):
            write_config(folder, config)
        if all(f.summary() is not None for f in folders):
            return [f.summary() for f in folders]
        data = data if data is not None else load_data(configs[0])
        members = list(zip(configs, folders, claims, strict=True))
        if group_checkpoint(groups_dir, [c.run_id() for c in configs]).exists():
            chunks = [members]  # a checkpointed group keeps its shape
        else:
            device = pick_device(configs[0].device)
            budget = budget if budget is not None else memory_budget(device)
            captured = device.type == "cuda" and configs[0].capture == "auto"  # a graph's memory besides eager's
            sizes = [len(c) for c in split_for_memory(configs, data, budget, captured=captured)]
            chunks = [members[sum(sizes[:i]):sum(sizes[:i + 1])] for i in range(len(sizes))]
            if len(chunks) > 1:
                print(f"dstbench: {len(configs)} runs of {configs[0].model} would not fit the memory budget "
                      f"({budget / 1e9:.2f} GB) as one group; training them as {len(chunks)} groups of up to "
                      f"{sizes[0]}", file=sys.stderr)
        for chunk in chunks:
            _fit_splitting(chunk, groups_dir, data, kernels)
    return [f.summary() for f in folders]


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _fit_splitting(members: list[tuple[RunConfig, store.RunDir, Claim | None]], groups_dir: Path, data: Any,
                   kernels: str) -> None:
    """Fit one group; on running out of memory, split it in two and fit each half (a single run fails)."""
    configs, folders, claims = (list(x) for x in zip(*members, strict=True))
    writes = [f.summary() is None for f in folders]
    if not any(writes):
        return
    checkpoint = group_checkpoint(groups_dir, [c.run_id() for c in configs])
    try:
        Trainer(configs, folders, checkpoint, group_dir=checkpoint.parent, claims=claims, writes=writes, data=data,
                kernels=kernels, checkpoint_seconds=checkpoint_seconds()).fit()
    except Exception as exc:
        if not _out_of_memory(exc) or len(members) == 1:
            raise
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        half = len(members) // 2
        print(f"dstbench: a group of {len(members)} runs of {configs[0].model} ran out of memory; splitting it "
              f"into groups of {half} and {len(members) - half} and starting them again", file=sys.stderr)
        for part in (members[:half], members[half:]):
            _fit_splitting(part, groups_dir, data, kernels)
