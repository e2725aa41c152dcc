"""The captured step on a GPU (`dstbench.train.capture`, issue #19): replays make no host sync between updates,
captured runs equal eager ones within a stated tolerance for every criterion and growth rule with exact densities
and updates on the same steps, a run killed mid-epoch resumes exactly, bf16 autocast captures, and what cannot be
captured runs eagerly with one line saying why. Marker `gpu`: skipped without CUDA; `benchmarks/gpu_check.py`
runs them.

Tolerance: a captured step launches the eager step's kernels, but its optimizer is the fused one (the rate a
tensor), whose rounding may differ from the foreach kernels' in the last bit; losses agree to 1e-4 relative and
weights to 1e-4 absolute after an epoch, and every mask has exactly its layer's count."""

from __future__ import annotations

import pytest
import torch

from dstbench import store
from dstbench.config import RunConfig
from dstbench.train import resolve_config
from dstbench.train.trainer import Trainer
from dstbench.weights import read_final_weights

pytestmark = pytest.mark.gpu

RULES = [(prune, grow) for prune in ("set", "magnitude", "mest", "snip", "reciprocal_sensitivity")
         for grow in ("random", "gradient")]


def _configs(model="small_mlp", members=None, **extra):
    base = dict(model=model, dataset="digits", batch_size=32, lr=0.05, epochs=2, progress=False, device="cuda",
                **extra)
    members = members or [dict(density=0.1, prune="magnitude", grow="gradient", update_period=7, seed=0)]
    return [resolve_config(RunConfig(**base, **m)) for m in members]


def _trainer(tmp_path, configs, name, **kwargs):
    folders = [store.RunDir(tmp_path / name / c.run_id()) for c in configs]
    group = tmp_path / name / "group" if len(configs) > 1 else None
    checkpoint = (group or tmp_path / name) / store.CHECKPOINT
    return Trainer(configs, folders, checkpoint, group_dir=group, **kwargs)


def _exact_densities(trainer):
    for member in trainer.members:
        for layer in member.dst.layers:
            assert int(member.dst.masks[layer.name].sum()) == layer.count
            assert int((layer.param != 0).sum()) <= layer.count


@pytest.mark.parametrize("model,size", [("small_mlp", 1), ("small_cnn", 1), ("small_mlp", 8), ("small_cnn", 4)])
def test_captured_steps_make_no_host_sync_between_updates(tmp_path, model, size):
    members = [dict(density=0.1, prune="magnitude", grow="random", update_period=11, seed=k) for k in range(size)]
    trainer = _trainer(tmp_path, _configs(model, members), "run")
    assert trainer.step_mode == "captured"
    trainer._restore_or_start()
    replays = 0
    try:
        for _ in range(2 * trainer.steps_per_epoch):
            quiet = (trainer._graph.graph is not None and trainer.steps + 1 < trainer._next_event
                     and trainer.feed.full_next)
            torch.cuda.set_sync_debug_mode("error" if quiet else "default")
            trainer.train_step()
            replays += quiet
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.step_mode == "captured" and replays > trainer.steps_per_epoch
    trainer._engines_to(trainer.steps)
    _exact_densities(trainer)


@pytest.mark.parametrize("prune,grow", RULES)
def test_a_captured_run_equals_the_eager_run_within_tolerance(tmp_path, prune, grow):
    members = [dict(density=0.2, prune=prune, grow=grow, update_period=9, seed=3)]
    eager = _trainer(tmp_path, _configs(members=members, capture="off"), "eager")
    captured = _trainer(tmp_path, _configs(members=members), "captured")
    assert (eager.step_mode, captured.step_mode) == ("eager", "captured")
    eager.fit()
    captured.fit()
    assert captured.step_mode == "captured"
    _exact_densities(captured)
    ra, rb = eager.members[0].folder, captured.members[0].folder
    assert [r["step"] for r in ra.history()] == [r["step"] for r in rb.history()]  # updates on the same steps
    for x, y in zip(ra.metrics(), rb.metrics(), strict=True):
        assert y["train_loss"] == pytest.approx(x["train_loss"], rel=1e-4)
    wa, wb = read_final_weights(ra.path), read_final_weights(rb.path)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-4) for k in wa)


def test_a_captured_run_killed_mid_epoch_resumes_exactly(tmp_path, monkeypatch):
    members = [dict(density=0.1, prune="magnitude", grow="gradient", update_period=7, seed=k) for k in range(3)]
    configs = _configs("small_cnn", members, epochs=3)
    straight = _trainer(tmp_path, configs, "straight")
    straight.fit()
    broken = _trainer(tmp_path, configs, "broken", checkpoint_seconds=0.0)
    original, calls = Trainer.train_step, []

    def killed(self, batches=None):
        calls.append(1)
        if len(calls) == broken.steps_per_epoch + broken.steps_per_epoch // 2:  # in the middle of epoch 2
            raise KeyboardInterrupt
        return original(self, batches)

    monkeypatch.setattr(Trainer, "train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        broken.fit()
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = _trainer(tmp_path, configs, "broken", checkpoint_seconds=0.0)
    resumed.fit()
    assert resumed.step_mode == "captured"
    for a, b in zip(straight.members, resumed.members, strict=True):
        wa, wb = read_final_weights(a.folder.path), read_final_weights(b.folder.path)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        assert a.folder.history() == b.folder.history()


def test_bf16_autocast_captures_with_finite_losses_and_exact_densities(tmp_path):
    trainer = _trainer(tmp_path, _configs("small_cnn", amp=True), "bf16")
    (summary,) = trainer.fit()
    assert trainer.step_mode == "captured" and summary["status"] == "done"
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in trainer.members[0].folder.metrics())
    _exact_densities(trainer)


def test_what_cannot_be_captured_runs_eagerly_and_says_why(tmp_path, capsys):
    members = [dict(density=0.1, seed=k) for k in range(2)]
    trainer = _trainer(tmp_path, _configs("small_mlp", members), "exact", kernels="exact")
    assert trainer.step_mode == "eager"
    err = capsys.readouterr().err
    assert "runs eagerly" in err and "one after the other" in err and "one after the other" in trainer.capture_reason
    off = _trainer(tmp_path, _configs(capture="off"), "off")
    assert off.step_mode == "eager" and capsys.readouterr().err == ""
