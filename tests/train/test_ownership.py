"""A run has one owner (issue #14): the claim of `dstbench train`, its checks before writing, resume records, and
what a finished run keeps on disk (issue #9.7)."""

import json
import os
import stat
import time

import pytest
import torch

from dstbench import store
from dstbench.claims import (
    ClaimLostError,
    Owner,
    RunInUseError,
    read_claim,
    run_folder_claim_path,
    try_claim,
)
from dstbench.config import RunConfig
from dstbench.experiments.worker import write_failed
from dstbench.train import resolve_config
from dstbench.train.loop import DamagedRunError, run
from dstbench.train.trainer import Trainer
from dstbench.weights import read_final_weights

FAST = dict(model="small_mlp", dataset="digits", epochs=2, batch_size=64, lr=0.05, progress=False, density=0.3,
            update_period=5)


def cfg(**kw):
    return RunConfig(**{**FAST, **kw})


def foreign_claim(path, **fields):
    """A live claim of a process on another machine, as it would have written it."""
    now = time.time()
    content = {"host": "node17", "boot": "b", "pidns": "p", "pid": 4242, "worker": "node17:4242:w", "token": "t",
               "attempt": 1, "claimed_at": now - 60, "heartbeat": now, "heartbeat_s": 30.0, "stale_after": 600.0,
               **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    return path


def test_a_second_train_on_the_folder_is_refused_naming_the_owner(tmp_path):
    folder = tmp_path / "dup"
    foreign_claim(run_folder_claim_path(folder))
    with pytest.raises(RunInUseError, match=r"dup is being trained by host node17, pid 4242 .*since .*heartbeat"):
        run(cfg(), folder)
    assert sorted(p.name for p in folder.iterdir()) == [".claim.json"]  # no config, no metrics
    assert read_claim(run_folder_claim_path(folder))["worker"] == "node17:4242:w"


def test_train_into_a_sweep_run_folder_respects_the_live_sweep_claim(tmp_path):
    config = resolve_config(cfg())
    folder = tmp_path / "sweep" / store.RUNS / config.run_id()
    claim = foreign_claim(tmp_path / "sweep" / "claims" / f"{config.run_id()}.json")
    assert run_folder_claim_path(folder) == claim.absolute()
    with pytest.raises(RunInUseError, match="node17"):
        run(config, folder)
    assert not folder.exists()


def test_the_trainer_keeps_the_claim_its_worker_holds(tmp_path):
    config = resolve_config(cfg(epochs=1))
    out = tmp_path / "sweep"
    held = try_claim(out, config.run_id(), Owner.current("worker"), on_lost=None).claim
    try:
        assert run(config, out / store.RUNS / config.run_id())["status"] == "done"
        assert held.owned()  # still the worker's: the trainer neither took nor released it
    finally:
        held.release()
    assert not (out / "claims" / f"{config.run_id()}.json").exists()


def test_a_standalone_run_releases_its_claim(tmp_path):
    run(cfg(epochs=1), tmp_path / "r")
    assert not run_folder_claim_path(tmp_path / "r").exists()


def test_a_run_whose_claim_was_taken_over_stops_before_writing(tmp_path, monkeypatch):
    folder = tmp_path / "r"
    original = Trainer._evaluate

    def taken_over_in_epoch_two(self, batches):
        if self.epoch == 2:  # another process judged us dead and claimed the run
            path = run_folder_claim_path(folder)
            path.unlink()
            foreign_claim(path)
        return original(self, batches)

    monkeypatch.setattr(Trainer, "_evaluate", taken_over_in_epoch_two)
    with pytest.raises(ClaimLostError, match="another process took this run over"):
        run(cfg(), folder)
    assert [r["epoch"] for r in store.RunDir(folder).metrics()] == [1]
    assert store.RunDir(folder).summary() is None
    assert read_claim(run_folder_claim_path(folder))["host"] == "node17"  # theirs, left in place


def _interrupted_after_epoch(folder, monkeypatch, epochs=3, stop=2):
    original = Trainer._train_epoch

    def dies(self):
        original(self)
        if self.epoch == stop:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_epoch", dies)
    with pytest.raises(KeyboardInterrupt):
        run(cfg(epochs=epochs), folder)
    monkeypatch.setattr(Trainer, "_train_epoch", original)


def test_resume_refuses_when_the_metrics_were_emptied(tmp_path, monkeypatch):
    folder = tmp_path / "r"
    _interrupted_after_epoch(folder, monkeypatch)
    (folder / store.METRICS).write_text("")
    with pytest.raises(DamagedRunError, match=r"metrics.jsonl holds 0 rows but the checkpoint has trained 2"):
        run(cfg(epochs=3), folder)
    assert store.RunDir(folder).summary() is None  # never done with epochs missing
    (folder / store.CHECKPOINT).unlink()  # the fix the message names: train again from the start
    summary = run(cfg(epochs=3), folder)
    assert summary["status"] == "done" and [r["epoch"] for r in store.RunDir(folder).metrics()] == [1, 2, 3]


def test_resume_refuses_when_history_lines_are_missing(tmp_path, monkeypatch):
    folder = tmp_path / "r"
    _interrupted_after_epoch(folder, monkeypatch)
    lines = (folder / store.HISTORY).read_text().splitlines(keepends=True)
    (folder / store.HISTORY).write_text("".join(lines[:-1]))
    with pytest.raises(DamagedRunError, match="history.jsonl"):
        run(cfg(epochs=3), folder)


def test_a_finished_run_keeps_its_model_and_masks_and_drops_its_checkpoint(tmp_path):
    folder = store.RunDir(tmp_path / "r")
    run(cfg(), folder.path)
    assert not folder.file(store.CHECKPOINT).exists()
    weights = read_final_weights(folder.path)
    assert set(weights) == {k for k in weights if "." in k} and all(torch.is_tensor(v) for v in weights.values())
    assert folder.mask_tags() == ["final", "init"]
    masks = folder.masks("final")
    for name, mask in masks.items():  # the saved weights are the masked ones
        assert not weights[name][~torch.from_numpy(mask)].any()
    kept = store.RunDir(tmp_path / "kept")
    run(cfg(keep_checkpoints=True), kept.path)
    assert kept.file(store.CHECKPOINT).exists()
    assert kept.config()["keep_checkpoints"] is True  # an execution field: same run id
    assert resolve_config(cfg(keep_checkpoints=True)).run_id() == resolve_config(cfg()).run_id()


def test_a_finished_runs_model_seeds_a_fine_tuning_run(tmp_path):
    run(cfg(epochs=1), tmp_path / "pre")
    summary = run(cfg(epochs=1, init_from=str(tmp_path / "pre" / store.FINAL_MODEL)), tmp_path / "fine")
    assert summary["status"] == "done"


def test_a_failed_run_is_trained_again_only_when_asked(tmp_path, monkeypatch):
    folder = tmp_path / "r"
    _interrupted_after_epoch(folder, monkeypatch, epochs=2, stop=1)
    config = resolve_config(cfg())
    write_failed(folder, config, "RuntimeError: out of memory", 1.0)
    assert run(cfg(), folder)["status"] == "failed"
    summary = run(cfg(), folder, retry_failed=True)
    assert summary["status"] == "done" and [r["epoch"] for r in store.RunDir(folder).metrics()] == [1, 2]


def test_a_damaged_config_is_rewritten_only_where_the_folder_name_proves_the_run(tmp_path):
    config = resolve_config(cfg(epochs=1))
    named = tmp_path / store.RUNS / config.run_id()
    named.mkdir(parents=True)
    (named / store.CONFIG).write_text('{"model": "small_')
    assert run(config, named)["status"] == "done"
    assert store.RunDir(named).config() == config.model_dump(mode="json")
    other = tmp_path / "mine"
    other.mkdir()
    (other / store.CONFIG).write_text("[1, 2")
    with pytest.raises(ValueError, match=r"mine/config.json is damaged .*delete the run folder"):
        run(config, other)


def test_files_are_written_readable_by_others_under_the_umask(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    run(cfg(epochs=1), tmp_path / "r")
    for name in (store.SUMMARY, store.CONFIG, store.FINAL_MODEL):
        assert stat.S_IMODE((tmp_path / "r" / name).stat().st_mode) == 0o666 & ~mask, name


def test_rows_written_before_the_first_checkpoint_are_dropped_on_restart(tmp_path, monkeypatch):
    # a full disk can stop a run after epoch 1's metrics line and before its first checkpoint
    folder = tmp_path / "r"

    def disk_full(path, state):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("dstbench.train.trainer.save_checkpoint", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run(cfg(), folder)
    assert [r["epoch"] for r in store.RunDir(folder).metrics()] == [1]
    monkeypatch.undo()
    assert run(cfg(), folder)["status"] == "done"
    assert [r["epoch"] for r in store.RunDir(folder).metrics()] == [1, 2]


def test_a_sweep_rewrites_a_pending_runs_damaged_config_from_the_spec(tmp_path):
    from dstbench.experiments import load_spec, run_sweep

    spec_path = tmp_path / "one.toml"
    spec_path.write_text('[base]\nmodel = "small_mlp"\ndataset = "digits"\nepochs = 1\nbatch_size = 64\n'
                         'density = 0.3\n[grid]\nseed = [0]\n')
    spec = load_spec(spec_path)
    (run_id,) = [r.run_id for r in spec.expand()]
    folder = store.RunDir(tmp_path / "out" / store.RUNS / run_id)
    folder.path.mkdir(parents=True)
    folder.file(store.CONFIG).write_text('{"model": ')  # a crash or a hand edit left it broken
    result = run_sweep(spec, tmp_path / "out", workers=0, progress=False)
    assert result.ok and result.counts.done == 1
    assert RunConfig.model_validate(folder.config()).run_id() == run_id
