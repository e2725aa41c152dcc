"""Ready-made sweep hooks that copy a finished run into an experiment tracker.

Use one with `dstbench sweep SPEC --out DIR --hook dstbench.experiments.trackers:tensorboard`. A hook is called by
the worker after each finished run with the run folder and its summary; the run folder stays the record, and a
hook that fails is logged without touching the run's result. To log while runs train, use ``--track`` instead
(`dstbench.trackers`); this hook replays a finished run's records through the same tracker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dstbench import store
from dstbench.trackers import Trackers


def tensorboard(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write the run's per-epoch metrics, its topology updates and its summary to ``<run_dir>/tensorboard``.

    Needs the `tracking` extra (``pip install "dstbench[tracking]"``). Writing is idempotent: the folder is
    replaced, so a rerun of the hook never duplicates points. Returns the folder.
    """
    run = store.RunDir(run_dir)
    trackers = Trackers(["tensorboard"], run.path, summary.get("run_id", run.run_id))
    trackers.start(run.config())
    history, last_step = run.history(), 0
    for row in run.metrics():
        trackers.epoch(row, [h for h in history if last_step < h["step"] <= row["step"]])
        last_step = row["step"]
    trackers.finish(summary)
    return run.path / "tensorboard"
