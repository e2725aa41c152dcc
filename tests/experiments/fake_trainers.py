"""Fake trainers for the sweep tests: no torch, deterministic, and they leave the files the real trainer leaves.

`steady` follows the trainer contract: config.json at start, one metrics line and one atomic checkpoint per
"epoch", summary.json last; it resumes from its checkpoint and returns a finished summary at once. Every start
and finish is appended to ``OUT/fake-events.log`` so tests can count them. Marker files make it misbehave once:
``OUT/fake-kill/<run_id>.epoch.<e>`` kills the process (SIGKILL) after epoch e's metrics line;
``OUT/fake-kill/<run_id>.checkpoint.<e>`` kills it inside epoch e's checkpoint write (data written, not yet
renamed into place). ``FAKE_SLEEP`` (seconds per epoch) makes runs take time.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from unittest import mock

from dstbench import store
from dstbench.config import RunConfig

EVENTS = "fake-events.log"


def out_of(run_dir: Path) -> Path:
    return Path(run_dir).parent.parent


def log_event(run_dir: Path, event: str) -> None:
    with open(out_of(run_dir) / EVENTS, "a", encoding="utf-8") as f:
        f.write(f"{event} {Path(run_dir).name} {os.getpid()}\n")


def events(out: Path) -> list[tuple[str, str]]:
    path = Path(out) / EVENTS
    if not path.exists():
        return []
    return [tuple(line.split()[:2]) for line in path.read_text().splitlines()]


def _marker(run_dir: Path, point: str, epoch: int) -> Path:
    return out_of(run_dir) / "fake-kill" / f"{Path(run_dir).name}.{point}.{epoch}"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def value_after(config: RunConfig, epoch: int, previous: float) -> float:
    """A deterministic 'training' step: depends on the config, the epoch and the previous value."""
    return (previous * 1.7 + epoch + config.seed * 0.31 + config.density * 10) % 97.0


def steady(config: RunConfig, run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    folder = store.RunDir(run_dir)
    summary = folder.summary()
    if summary is not None and summary.get("status") == "done":
        return summary
    log_event(run_dir, "start")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not folder.file(store.CONFIG).exists():
        store.atomic_write_json(folder.file(store.CONFIG), config.model_dump(mode="json"))
    epoch, value = 0, 0.0
    if folder.file(store.CHECKPOINT).exists():
        state = json.loads(folder.file(store.CHECKPOINT).read_bytes())
        epoch, value = state["epoch"], state["value"]
    store.truncate_jsonl(folder.file(store.METRICS), epoch)
    epochs = config.epochs or 3
    sleep = float(os.environ.get("FAKE_SLEEP", "0"))
    for e in range(epoch + 1, epochs + 1):
        value = value_after(config, e, value)
        if sleep:
            time.sleep(sleep)
        store.append_jsonl(folder.file(store.METRICS), [{"epoch": e, "step": e * 10, "train_loss": 1.0 / e,
                                                         "val_loss": 1.5 / e, "test_acc": value / 97.0}])
        marker = _marker(run_dir, "epoch", e)
        if marker.exists():
            marker.unlink()
            _die()
        marker = _marker(run_dir, "checkpoint", e)
        data = json.dumps({"epoch": e, "value": value}).encode()
        if marker.exists():
            marker.unlink()
            with mock.patch.object(store.os, "replace", side_effect=lambda *a: _die()):
                store.atomic_write_bytes(folder.file(store.CHECKPOINT), data)
        store.atomic_write_bytes(folder.file(store.CHECKPOINT), data)
    summary = {
        "status": "done", "reason": None, "run_id": run_dir.name, "config": config.model_dump(mode="json"),
        "epochs": epochs, "steps": epochs * 10, "final_test_acc": value / 97.0, "best_val_epoch": epochs,
        "wall_seconds": 0.01, "versions": {"python": "3"},
    }
    store.atomic_write_json(folder.file(store.SUMMARY), summary)
    log_event(run_dir, "finish")
    return summary


def flaky(config: RunConfig, run_dir: Path) -> dict:
    """Seed 1 raises and seed 2 diverges (a NaN loss: a failed summary), until ``OUT/fixed`` exists."""
    fixed = (out_of(run_dir) / "fixed").exists()
    if not fixed and config.seed == 1:
        log_event(run_dir, "start")
        raise RuntimeError("boom in the data loader")
    if not fixed and config.seed == 2:
        log_event(run_dir, "start")
        summary = {"status": "failed", "reason": "the training loss is nan at epoch 2", "run_id": run_dir.name,
                   "config": config.model_dump(mode="json"), "final_train_loss": math.nan}
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        store.atomic_write_json(Path(run_dir) / store.SUMMARY, summary)
        return summary
    return steady(config, run_dir)


def silent(config: RunConfig, run_dir: Path) -> dict:
    """Returns without writing a summary (a broken trainer)."""
    log_event(run_dir, "start")
    return {}


def until_interrupted(config: RunConfig, run_dir: Path) -> dict:
    """Runs until something interrupts it (a lost claim does); gives up after 10 s."""
    log_event(run_dir, "start")
    deadline = time.time() + 10
    while time.time() < deadline:
        time.sleep(0.01)
    return steady(config, run_dir)


def record_hook(run_dir: Path, summary: dict) -> None:
    """A tracker hook that notes which runs it saw and how they ended."""
    log_event(run_dir, f"hook-{summary.get('status')}")


def broken_hook(run_dir: Path, summary: dict) -> None:
    raise RuntimeError("the tracker is down")
