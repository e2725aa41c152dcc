"""Records deleted from a pending run (issue #21, item 4): masks/init.npz comes back from the run's seed when the
run resumes, identical to the one it started with; snapshots that cannot come back are named."""

import shutil

import numpy as np
import pytest

from dstbench import store
from dstbench.config import RunConfig
from dstbench.train.group import run_group
from dstbench.train.loop import run
from dstbench.train.trainer import Trainer

from .group_helpers import member_configs

FAST = dict(model="small_mlp", dataset="digits", epochs=3, batch_size=64, lr=0.05, progress=False, density=0.3,
            update_period=5, train_subset=640)  # 10 steps per epoch


def cfg(**kw):
    return RunConfig(**{**FAST, **kw})


def stopped_after_epoch_one(trainer, monkeypatch, start):
    original = trainer._train_epoch

    def dies(self, *args):
        original(self, *args)
        raise KeyboardInterrupt  # after the epoch's records and checkpoint

    monkeypatch.setattr(trainer, "_train_epoch", dies)
    with pytest.raises(KeyboardInterrupt):
        start()
    monkeypatch.setattr(trainer, "_train_epoch", original)


def same(a, b):
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_deleted_masks_of_a_pending_run_come_back_and_lost_snapshots_are_named(tmp_path, monkeypatch, caplog):
    config = cfg(mask_snapshot_steps=(3, 25))
    folder = store.RunDir(tmp_path / "r")
    stopped_after_epoch_one(Trainer, monkeypatch, lambda: run(config, folder.path))
    started_with = folder.masks("init")
    assert folder.mask_tags() == ["init", "step_0000003"]
    shutil.rmtree(folder.path / store.MASKS)
    with caplog.at_level("WARNING"):
        summary = run(config, folder.path)
    assert summary["status"] == "done"
    assert f"{folder.mask_path('init')} was missing; written again from the run's seed" in caplog.text
    assert "1 mask snapshots of steps before the checkpoint are gone" in caplog.text
    assert "step_0000003.npz; delete" in caplog.text and "checkpoint.pt to train the run again" in caplog.text
    same(folder.masks("init"), started_with)
    assert folder.mask_tags() == ["final", "init", "step_0000025"]  # a later snapshot is taken as usual
    straight = store.RunDir(tmp_path / "straight")
    run(config, straight.path)
    same(folder.masks("final"), straight.masks("final"))
    same(folder.masks("init"), straight.masks("init"))


def test_a_run_group_restores_its_members_initial_masks_too(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DSTBENCH_GROUP_CHECKPOINT_SECONDS", "0")
    configs = member_configs("small_mlp", [dict(density=0.1, update_period=10, seed=0),
                                           dict(density=0.2, update_period=7, seed=1)], snapshots=False, epochs=2)
    dirs = [tmp_path / "g" / c.run_id() for c in configs]
    stopped_after_epoch_one(Trainer, monkeypatch, lambda: run_group(configs, dirs, tmp_path / "groups"))
    first = store.RunDir(dirs[1])
    started_with = first.masks("init")
    shutil.rmtree(first.path / store.MASKS)
    with caplog.at_level("WARNING"):
        run_group(configs, dirs, tmp_path / "groups")
    assert f"{first.mask_path('init')} was missing" in caplog.text
    same(first.masks("init"), started_with)
