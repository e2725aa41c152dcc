import pytest

from dstbench import store
from dstbench.experiments.trackers import tensorboard


def test_tensorboard_hook_writes_every_epoch(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run = tmp_path / "runs" / "abc"
    store.atomic_write_json(run / store.CONFIG, {"model": "small_mlp", "density": 0.1, "probe_steps": []})
    store.append_jsonl(run / store.METRICS, [
        {"epoch": e, "step": 10 * e, "train_loss": 1.0 / e, "val_acc": 0.5 + e / 10, "itop": 0.1 * e}
        for e in (1, 2, 3)
    ])
    summary = {"status": "done", "best_val_test_acc": 0.8, "final_test_acc": 0.79, "final_itop": 0.3}
    folder = tensorboard(run, summary)
    tensorboard(run, summary)  # idempotent: a second call replaces, never duplicates
    acc = event_accumulator.EventAccumulator(str(folder))
    acc.Reload()
    assert [e.value for e in acc.Scalars("train_loss")] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [e.step for e in acc.Scalars("val_acc")] == [10, 20, 30]  # the optimizer step, as live tracking logs
