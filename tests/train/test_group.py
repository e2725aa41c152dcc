"""Run groups (`dstbench.train.group`, issue #11): a member is its solo run, a failing member fails alone, groups
split on a memory budget, resume bit-identically, and sweeps group (or not) as asked."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from dstbench import store, vocab
from dstbench.cli import main
from dstbench.config import RunConfig
from dstbench.models.fusion import estimated_group_bytes
from dstbench.sparsity import register_criterion
from dstbench.train.group import run_group
from dstbench.train.grouping import CHECKPOINT_ENV, MEMORY_ENV, GroupError, check_compatible, solo_reason
from dstbench.train.loop import run
from dstbench.train.recipes import resolve_config
from dstbench.train.setup import build_for, load_data
from dstbench.train.trainer import Trainer
from dstbench.weights import encode, read_final_weights

from .group_helpers import (
    MEMBERS,
    assert_member_is_solo,
    member_configs,
    model_state,
    same_masks,
    steps_per_epoch,
    without_time,
)


@register_criterion("test_group_raises", overwrite=True)
def _raises(weight, grad, active, *, generator):
    raise RuntimeError("boom in the test criterion")


def _dirs(root, configs):
    return [root / c.run_id() for c in configs]


def _solo(tmp_root, configs):
    for config, folder in zip(configs, _dirs(tmp_root, configs), strict=True):
        run(config, folder)
    return tmp_root


@pytest.fixture(scope="module", params=["small_mlp", "small_cnn"])
def exact_group(request, tmp_path_factory):
    """The seven-member group (exact kernels) and each member's solo run."""
    root = tmp_path_factory.mktemp(f"group-{request.param}")
    configs = member_configs(request.param)
    summaries = run_group(configs, _dirs(root / "g", configs), root / "groups", kernels="exact")
    _solo(root / "s", configs)
    return request.param, configs, summaries, root


def test_each_member_equals_its_solo_run(exact_group):
    model, configs, summaries, root = exact_group
    assert len(configs) >= 6 and {c.mode for c in configs} == {"dst", "dense", "static"}
    spe = steps_per_epoch(model)
    first_row = store.RunDir(root / "s" / configs[0].run_id()).metrics()[0]
    assert first_row["step"] == spe  # the snapshot of step spe + 1 is the mask at the end of epoch 1
    for config, summary in zip(configs, summaries, strict=True):
        member, solo = root / "g" / config.run_id(), root / "s" / config.run_id()
        assert summary["status"] == "done"
        assert summary["group"]["size"] == len(configs)
        assert summary["group"]["amortised_seconds"] == pytest.approx(summary["group"]["shared_seconds"]
                                                                      / len(configs))
        if config.mode != "dense":  # snapshots after the first update and at the end of epoch 1, init and final
            tags = set(store.RunDir(solo).mask_tags())
            assert {"init", "final", f"step_{spe + 1:07d}"} <= tags
            if config.update_period:
                assert f"step_{config.update_period + 1:07d}" in tags
                assert store.RunDir(solo).history()  # there were updates in epoch 1
        assert_member_is_solo(member, solo, exact_eval=True)
        assert store.read_json(member / vocab.GROUP_FILE)["size"] == len(configs)
    assert not list((root / "groups").glob("*/checkpoint.pt"))  # deleted at the end


def test_active_counts_per_layer_match_the_densities(exact_group):
    model, configs, _, root = exact_group
    for config in configs:
        folder = store.RunDir(root / "g" / config.run_id())
        if config.mode == "dense":
            assert not {"init", "final"} & set(folder.mask_tags())
            continue
        init, final = folder.masks("init"), folder.masks("final")
        for name in init:  # every update keeps each layer's count, and the count is the solo run's
            assert int(final[name].sum()) == int(init[name].sum())
        solo = store.RunDir(root / "s" / config.run_id()).masks("final")
        assert {n: int(m.sum()) for n, m in final.items()} == {n: int(m.sum()) for n, m in solo.items()}
        total = sum(m.size for m in final.values())
        assert sum(int(m.sum()) for m in final.values()) == pytest.approx(config.density * total, abs=len(final))
        assert folder.summary()["final_density"] == pytest.approx(config.density, abs=0.01)


def test_batched_kernels_match_solo_within_tolerance(tmp_path):
    configs = member_configs("small_mlp")
    run_group(configs, _dirs(tmp_path / "g", configs), tmp_path / "groups", kernels="batched")
    _solo(tmp_path / "s", configs)
    for config in configs:
        g, s = store.RunDir(tmp_path / "g" / config.run_id()), store.RunDir(tmp_path / "s" / config.run_id())
        assert g.summary()["status"] == "done"
        for a, b in zip(g.metrics(), s.metrics(), strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        if config.mode == "dense":
            continue
        # the initial mask and the mask after the first update are the solo run's; later masks may differ in a
        # near-tie (batched kernels round differently, and training amplifies it), so they are not asserted
        for tag in ["init"] + ([f"step_{config.update_period + 1:07d}"] if config.update_period else []):
            ma, mb = g.masks(tag), s.masks(tag)
            assert all((ma[n] == mb[n]).all() for n in mb), tag


def test_a_member_whose_update_raises_fails_alone(tmp_path, capsys):
    members = [MEMBERS[0], dict(density=0.2, prune="test_group_raises", grow="random", update_period=5, seed=9),
               MEMBERS[1], MEMBERS[3]]
    configs = member_configs("small_mlp", members, snapshots=False)
    summaries = run_group(configs, _dirs(tmp_path / "g", configs), tmp_path / "groups")
    bad = summaries[1]
    assert bad["status"] == "failed"
    assert bad["reason"] == "RuntimeError: boom in the test criterion"
    assert "boom in the test criterion" in capsys.readouterr().err
    assert store.RunDir(tmp_path / "g" / configs[1].run_id()).status() == "failed"
    good = [c for k, c in enumerate(configs) if k != 1]
    _solo(tmp_path / "s", good)
    for config in good:  # the others are their solo runs, i.e. a group without the failed member
        assert_member_is_solo(tmp_path / "g" / config.run_id(), tmp_path / "s" / config.run_id())
    assert all(s["group"]["size"] == 4 for s in summaries)


def test_a_group_whose_every_member_fails_in_an_update_stops(tmp_path, capsys):
    members = [dict(density=0.2, prune="test_group_raises", grow="random", update_period=5, seed=s) for s in (7, 8)]
    configs = member_configs("small_mlp", members, snapshots=False)
    summaries = run_group(configs, _dirs(tmp_path / "g", configs), tmp_path / "groups")
    assert [s["status"] for s in summaries] == ["failed", "failed"]
    assert [s["steps"] for s in summaries] == [5, 5]  # both failed in their first update, at step 5
    assert not list((tmp_path / "groups").glob("*/checkpoint.pt"))


def test_a_member_whose_loss_turns_nan_fails_alone(tmp_path, monkeypatch):
    configs = member_configs("small_mlp", [MEMBERS[0], MEMBERS[3], MEMBERS[1]], snapshots=False)
    original = Trainer._train_epoch

    def poisons_member_one_after_epoch_one(self):
        if self.epoch == 1:  # member 1 (static: no update reads its weights) gets an inf weight
            with torch.no_grad():
                next(self.members[1].model.parameters()).view(-1)[0] = float("inf")
        return original(self)

    monkeypatch.setattr(Trainer, "_train_epoch", poisons_member_one_after_epoch_one)
    summaries = run_group(configs, _dirs(tmp_path / "g", configs), tmp_path / "groups")
    assert summaries[1]["status"] == "failed"
    assert summaries[1]["reason"].startswith("training loss became nan in epoch 2")
    assert [r["epoch"] for r in store.RunDir(tmp_path / "g" / configs[1].run_id()).metrics()] == [1, 2]
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    good = [configs[0], configs[2]]
    _solo(tmp_path / "s", good)
    for config in good:
        assert_member_is_solo(tmp_path / "g" / config.run_id(), tmp_path / "s" / config.run_id())


def _per_member_bytes(config):
    data = load_data(config)
    model = build_for(config, data)
    slots = 1 if config.optimizer == "sgd" else 2
    return estimated_group_bytes(model, torch.zeros((2, *data.input_shape)), 1, config.batch_size,
                                 optimizer_slots=slots)


def test_a_memory_budget_splits_the_group(tmp_path, capsys):
    configs = member_configs("small_mlp", MEMBERS[:5], snapshots=False, epochs=1)
    budget = int(2.5 * _per_member_bytes(configs[0]))  # two members fit
    summaries = run_group(configs, _dirs(tmp_path / "g", configs), tmp_path / "groups", budget=budget)
    assert "would not fit the memory budget" in capsys.readouterr().err
    assert [s["group"]["size"] for s in summaries] == [2, 2, 2, 2, 1]
    assert len({s["group"]["id"] for s in summaries}) == 3
    _solo(tmp_path / "s", configs)
    for config in configs:
        assert_member_is_solo(tmp_path / "g" / config.run_id(), tmp_path / "s" / config.run_id())


SPEC = """
name = "grouped"
description = "run groups in a sweep"
arm = "dst"

[base]
model = "small_mlp"
dataset = "digits"
epochs = 1
update_period = 10
{base}

[grid]
density = [0.1, 0.2]
seed = [0, 1]
{more}
"""


def _spec(tmp_path, base="", more=""):
    path = tmp_path / "grouped.toml"
    path.write_text(SPEC.format(base=base, more=more))
    return path


def _summaries(out):
    return {p.parent.name: store.read_json(p) for p in (out / store.RUNS).glob("*/summary.json")}


def test_the_sweep_splits_groups_on_the_memory_env_var(tmp_path, monkeypatch, capsys):
    spec = _spec(tmp_path)
    config = resolve_config(RunConfig(model="small_mlp", dataset="digits", epochs=1))
    monkeypatch.setenv(MEMORY_ENV, str(2.5 * _per_member_bytes(config) / 1e9))
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--group-size", "4", "--workers", "0",
                 "--no-progress"]) == 0
    assert "would not fit the memory budget" in capsys.readouterr().err
    summaries = _summaries(out)
    assert len(summaries) == 4 and all(s["status"] == "done" for s in summaries.values())
    assert sorted(s["group"]["size"] for s in summaries.values()) == [2, 2, 2, 2]
    monkeypatch.setenv(MEMORY_ENV, "lots")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "bad"), "--group-size", "4", "--workers", "0",
                 "--no-progress"]) != 0
    assert f"{MEMORY_ENV}='lots' is not a number of gigabytes" in capsys.readouterr().err


def test_an_interrupted_group_resumes_bit_identically(tmp_path, monkeypatch):
    monkeypatch.setenv(CHECKPOINT_ENV, "0")  # a checkpoint after every epoch
    configs = member_configs("small_mlp", MEMBERS[:4], snapshots=False, epochs=3)
    run_group(configs, _dirs(tmp_path / "straight", configs), tmp_path / "groups-straight")
    original = Trainer._train_epoch

    def dies_after_epoch_one(self):
        original(self)
        raise KeyboardInterrupt  # after the epoch's records and checkpoint, like a kill between epochs

    monkeypatch.setattr(Trainer, "_train_epoch", dies_after_epoch_one)
    with pytest.raises(KeyboardInterrupt):
        run_group(configs, _dirs(tmp_path / "broken", configs), tmp_path / "groups")
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    assert len(list((tmp_path / "groups").glob("*/checkpoint.pt"))) == 1
    for config in configs:
        folder = store.RunDir(tmp_path / "broken" / config.run_id())
        assert folder.summary() is None and [r["epoch"] for r in folder.metrics()] == [1]
    with open(tmp_path / "broken" / configs[0].run_id() / store.METRICS, "a") as f:
        f.write('{"epoch": 2, "trunc')  # a half-written line of the interrupted process
    summaries = run_group(configs, _dirs(tmp_path / "broken", configs), tmp_path / "groups")
    assert all(s["status"] == "done" and s["epochs"] == 3 for s in summaries)
    assert not list((tmp_path / "groups").glob("*/checkpoint.pt"))
    for config in configs:
        a, b = store.RunDir(tmp_path / "broken" / config.run_id()), store.RunDir(tmp_path / "straight"
                                                                                 / config.run_id())
        assert without_time(a.metrics()) == without_time(b.metrics())
        assert a.history() == b.history()
        same_masks(a, b)
        wa, wb = model_state(a.path), model_state(b.path)
        assert all(torch.equal(wa[k], wb[k]) for k in wb)


def test_keep_checkpoints_keeps_the_group_checkpoint(tmp_path):
    configs = member_configs("small_mlp", MEMBERS[:2], snapshots=False, epochs=1, keep_checkpoints=True)
    run_group(configs, _dirs(tmp_path / "g", configs), tmp_path / "groups")
    assert len(list((tmp_path / "groups").glob("*/checkpoint.pt"))) == 1
    # a finished group trains nothing again
    before = [(tmp_path / "g" / c.run_id() / store.METRICS).read_text() for c in configs]
    run_group(configs, _dirs(tmp_path / "g", configs), tmp_path / "groups")
    assert [(tmp_path / "g" / c.run_id() / store.METRICS).read_text() for c in configs] == before


def test_incompatible_runs_are_refused():
    a, b = member_configs("small_mlp", [MEMBERS[0], MEMBERS[1]], snapshots=False)
    with pytest.raises(GroupError, match="differ in lr"):
        check_compatible([a, b.replace(lr=0.1)])
    dropout = a.replace(dropout=0.1)
    assert "dropout" in solo_reason(dropout)
    with pytest.raises(GroupError, match="cannot join a run group"):
        check_compatible([a, dropout])


def test_group_size_one_in_the_spec_trains_solo(tmp_path):
    spec = _spec(tmp_path, more="\n[execution]\ngroup_size = 1\n")
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    summaries = _summaries(out)
    assert len(summaries) == 4 and all(s["group"] is None for s in summaries.values())
    assert not (out / vocab.GROUPS).exists()


def test_a_bad_group_size_is_a_clear_error(tmp_path, capsys):
    spec = _spec(tmp_path)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--group-size", "abc", "--workers", "0",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--group-size" in err and "abc" in err and "Traceback" not in err


def test_a_run_with_dropout_trains_solo_in_a_grouped_sweep(tmp_path):
    spec = _spec(tmp_path, more='\n[arms.dropout]\nbase = {dropout = 0.1}\ngrid = {seed = [0]}\n')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--group-size", "8", "--workers", "0",
                 "--no-progress"]) == 0
    summaries = _summaries(out)
    assert len(summaries) == 5 and all(s["status"] == "done" for s in summaries.values())
    with_dropout = [s for s in summaries.values() if s["config"]["dropout"]]
    assert len(with_dropout) == 1 and with_dropout[0]["group"] is None
    grouped = [s for s in summaries.values() if not s["config"]["dropout"]]
    assert [s["group"]["size"] for s in grouped] == [4] * 4


def test_member_eval_losses_are_bit_identical_to_solo(exact_group):
    model, configs, _, root = exact_group
    if model != "small_cnn":
        pytest.skip("small_mlp: asserted by test_each_member_equals_its_solo_run")
    for config in configs:
        g, s = store.RunDir(root / "g" / config.run_id()), store.RunDir(root / "s" / config.run_id())
        assert without_time(g.metrics()) == without_time(s.metrics())


class _MixesMembers(torch.nn.Module):
    """A forward that adds the sum over features: fine solo and with exact kernels (members in batch blocks),
    wrong with batched ones (members in feature blocks)."""

    def __init__(self, in_features, num_classes):
        super().__init__()
        self.fc1 = torch.nn.Linear(in_features, 16)
        self.fc2 = torch.nn.Linear(16, num_classes)

    def forward(self, x):
        h = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(h + h.sum(1, keepdim=True))


def test_a_model_that_mixes_members_is_refused_with_a_group_error(tmp_path, monkeypatch):
    from dstbench import models
    from dstbench.models import registry
    from dstbench.models.fusion import FusionError

    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))  # the test's model leaves with the test

    @models.register("test_group_mixes", input_shape=(64,), num_classes=10, overwrite=True)
    def _build(*, in_features: int, num_classes: int) -> torch.nn.Module:
        return _MixesMembers(in_features, num_classes)

    configs = [RunConfig(model="test_group_mixes", dataset="digits", epochs=1, density=0.5, seed=s,
                         progress=False, num_threads=1) for s in (0, 1)]
    try:  # batched kernels put the members in feature blocks, which the sum mixes
        run_group(configs, _dirs(tmp_path / "g", configs), tmp_path / "groups", kernels="batched")
    except GroupError as exc:
        assert "mixes the members" in str(exc)
    except FusionError as exc:
        raise AssertionError(f"FusionError escaped run_group: {exc}") from exc
    else:
        raise AssertionError("a model that mixes its members was fused")


def test_a_members_model_file_holds_its_own_weights_only(tmp_path):
    """A member's weights are views into the group's fused ones: its model.npz must hold its own weights only."""
    configs = member_configs("small_mlp", MEMBERS[:4], snapshots=False, epochs=1)
    dirs = _dirs(tmp_path / "g", configs)
    run_group(configs, dirs, tmp_path / "groups")
    for d in dirs:  # the file is what its own weights encode to, not the group's
        masks = store.RunDir(d).masks("final") if "final" in store.RunDir(d).mask_tags() else None
        own = encode(read_final_weights(d), masks)
        assert (d / store.FINAL_MODEL).stat().st_size < 1.1 * len(own)


def test_a_group_leaves_out_runs_another_live_worker_holds(tmp_path):
    from dstbench.claims import Owner, claim_path
    from dstbench.experiments.spec import load_spec
    from dstbench.experiments.worker import WorkerJob, _group_members

    job = WorkerJob(out=str(tmp_path), specs=(load_spec(str(_spec(tmp_path))),), group_size=8)
    runs = job.runs()
    assert len(runs) == 4
    me = Owner.current("other")
    for held, pid in ((runs[1], os.getpid()), (runs[2], _dead_pid())):  # a live holder, and a dead one's claim
        path = claim_path(tmp_path, held.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"host": me.host, "boot": me.boot, "pidns": me.pidns, "pid": pid,
                                    "worker": "other", "heartbeat": time.time(), "claimed_at": time.time()}))
    members, resumed = _group_members(job, runs[0], runs)
    assert not resumed and [m.run_id for m in members] == [runs[0].run_id, runs[2].run_id, runs[3].run_id]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
