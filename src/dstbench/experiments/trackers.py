"""Ready-made sweep hooks that copy a finished run into an experiment tracker.

Use one with `dstbench sweep SPEC --out DIR --hook dstbench.experiments.trackers:tensorboard`. A hook is called by
the worker after each finished run with the run folder and its summary; the run folder stays the record, and a
hook that fails is logged without touching the run's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dstbench import store

# Per-epoch keys written as scalars (the rest of metrics.jsonl is bookkeeping).
SCALARS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "prune_fraction",
           "density", "itop", "seconds")


def tensorboard(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write the run's per-epoch metrics and its summary to ``<run_dir>/tensorboard`` (TensorBoard event files).

    Needs the `tracking` extra (``pip install "dstbench[tracking]"``). Writing is idempotent: the folder is
    replaced, so a rerun of the hook never duplicates points. Returns the folder.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ImportError(
            'the tensorboard hook needs the tensorboard package: pip install "dstbench[tracking]"'
        ) from exc
    import shutil

    run = store.RunDir(run_dir)
    folder = run.path / "tensorboard"
    shutil.rmtree(folder, ignore_errors=True)
    config = run.config()
    with SummaryWriter(log_dir=str(folder)) as writer:
        for row in run.metrics():
            for key in SCALARS:
                if isinstance(row.get(key), (int, float)):
                    writer.add_scalar(key, row[key], global_step=int(row["epoch"]))
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in config.items()
                   if v is not None}
        final = {f"hparam/{k}": float(summary[k]) for k in ("best_val_test_acc", "final_test_acc", "final_itop")
                 if isinstance(summary.get(k), (int, float))}
        writer.add_hparams(hparams, final, run_name=".")
    return folder
