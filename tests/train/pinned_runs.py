"""The solo runs `test_pinned.py` pins, and the fingerprint of a finished run folder.

`python tests/train/pinned_runs.py` trains them and prints their fingerprints as Python literals: that is how the
values in `test_pinned.py` were recorded (on the trainer of commit 0b7bb13, before the one-trainer change).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dstbench import store
from dstbench.config import RunConfig

BASE = dict(epochs=2, batch_size=32, lr=0.05, num_threads=1, progress=False, device="cpu")

# Criteria and growth rules, SGD / Adam / AdamW, label smoothing, a binary task, the update batch, probes and
# snapshots, fresh growth init with momentum growth, dropout, AMP (bfloat16 autocast on the CPU).
PINNED = {
    "magnitude-random": dict(model="small_mlp", dataset="digits", density=0.1, prune="magnitude", grow="random",
                             update_period=10, seed=0),
    "set-gradient-adam-smoothing": dict(model="small_mlp", dataset="digits", density=0.2, prune="set",
                                        grow="gradient", update_period=7, optimizer="adam", lr=0.01,
                                        label_smoothing=0.1, seed=1),
    "snip-binary-update-batch": dict(model="small_mlp", dataset="breast_cancer", density=0.3, prune="snip",
                                     grow="gradient", update_period=5, update_batch_size=128, seed=2),
    "cnn-probes-snapshots": dict(model="small_cnn", dataset="digits", density=0.2, prune="magnitude",
                                 grow="gradient", update_period=10, probe_criteria=("magnitude", "snip"),
                                 probe_every=20, mask_snapshot_steps=(11, 41), seed=3),
    "mest-momentum-adamw-fresh": dict(model="small_mlp", dataset="digits", density=0.1, prune="mest",
                                      grow="momentum", grow_init="fresh", update_period=10, optimizer="adamw",
                                      lr=0.01, seed=4),
    "dropout-sensitivity": dict(model="small_mlp", dataset="digits", density=0.2, prune="sensitivity",
                                update_period=10, dropout=0.1, seed=5),
    "amp-global": dict(model="small_mlp", dataset="digits", density=0.1, update_period=10, amp=True,
                       global_pruning=True, seed=6),
}


def pinned_config(name: str) -> RunConfig:
    return RunConfig(**{**BASE, **PINNED[name]})


def _digest(parts: list[Any]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _arrays(named: dict[str, np.ndarray]) -> list[Any]:
    return [x for name in sorted(named) for x in (name, np.ascontiguousarray(named[name]).tobytes())]


def _final_weights(run: store.RunDir) -> dict[str, torch.Tensor]:
    """The run's final weights with every zero a positive zero: a dense model.pt (0b7bb13, where the values were
    recorded) keeps the -0.0 that masking a negative weight leaves, the sparse model.npz stores no inactive
    value at all; the two are equal as numbers, and this compares them as numbers."""
    dense = run.path / "model.pt"
    if dense.exists():
        weights = torch.load(dense, weights_only=True)
    else:
        from dstbench.weights import read_final_weights

        weights = read_final_weights(run.path)
    return {k: torch.where(v == 0, torch.zeros_like(v), v) if v.is_floating_point() else v
            for k, v in weights.items()}


def fingerprint(folder: Path) -> dict[str, Any]:
    """The run's metrics (without timings), its update history, masks, probes and final weights: the rows'
    losses and accuracies as numbers, everything else as short sha256 digests."""
    run = store.RunDir(folder)
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in run.metrics()]
    weights = _final_weights(run)
    probes = []
    for step in run.probe_steps():
        for (criterion, fraction), masks in sorted(store.load_probe(run.probe_path(step)).items()):
            probes += [step, criterion, fraction, *_arrays(masks)]
    return {
        "run_id": run.summary()["run_id"],
        "losses": [(r["train_loss"], r["val_loss"], r["test_loss"]) for r in rows],
        "accuracies": [(r["train_acc"], r["val_acc"], r["test_acc"]) for r in rows],
        "rows": _digest(rows),
        "history": _digest(run.history()),
        "masks": {tag: _digest(_arrays(run.masks(tag))) for tag in run.mask_tags()},
        "probes": _digest(probes),
        "weights": _digest(_arrays({k: v.numpy() for k, v in weights.items()})),
    }


if __name__ == "__main__":
    import sys
    import tempfile

    from dstbench.train.loop import run as train

    print(f"# torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in sys.argv[1:] or PINNED:
            train(pinned_config(name), Path(tmp) / name)
            print(f"{name!r}: {fingerprint(Path(tmp) / name)!r},")
