"""Shared pieces of the run-group tests: member configs, solo references and folder comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dstbench import store
from dstbench.config import RunConfig
from dstbench.train.recipes import resolve_config
from dstbench.train.setup import load_data
from dstbench.weights import read_final_weights

BASE = dict(dataset="digits", epochs=2, batch_size=32, lr=0.05, num_threads=1, progress=False, device="cpu")

# Both growth rules, all five criteria, DST on the dense network, a dense and a static run, global pruning, seeds.
MEMBERS = [
    dict(density=0.1, prune="magnitude", grow="random", update_period=10, seed=0),
    dict(density=0.2, prune="set", grow="gradient", update_period=7, seed=1),
    dict(density=1.0, update_period=0, seed=2),  # dense
    dict(density=0.1, update_period=0, seed=3),  # static
    dict(density=0.3, prune="snip", grow="gradient", update_period=10, seed=4, global_pruning=True),
    dict(density=0.1, prune="mest", grow="random", update_period=5, seed=5),
    dict(density=1.0, prune="reciprocal_sensitivity", grow="gradient", update_period=10, seed=6),  # DST, dense
]


def steps_per_epoch(model: str, batch_size: int = 32, dataset: str = "digits") -> int:
    data = load_data(RunConfig(model=model, dataset=dataset, batch_size=batch_size))
    return len(data.batches("train", batch_size, seed=0))


def member_configs(model: str, members=MEMBERS, snapshots: bool = True, **extra) -> list[RunConfig]:
    """Resolved configs of `members`; with `snapshots`, masks are snapshotted right after each member's first
    update (the snapshot of step s is the mask step s trains with) and at the end of epoch 1."""
    spe = steps_per_epoch(model, BASE["batch_size"]) if snapshots else 0
    configs = []
    for m in members:
        period = m.get("update_period") or 0
        snap = tuple(sorted({period + 1, spe + 1} if period else {spe + 1}))
        kw = {**BASE, **extra, **m}
        if snapshots:
            kw["mask_snapshot_steps"] = snap
        configs.append(resolve_config(RunConfig(model=model, **kw)))
    return configs


def without_time(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def model_state(folder: Path) -> dict[str, torch.Tensor]:
    return read_final_weights(folder)


def same_masks(a: store.RunDir, b: store.RunDir) -> None:
    assert a.mask_tags() == b.mask_tags()
    for tag in b.mask_tags():
        ma, mb = a.masks(tag), b.masks(tag)
        assert ma.keys() == mb.keys(), tag
        for name in mb:
            assert np.array_equal(ma[name], mb[name]), (tag, name)


def assert_member_is_solo(member: Path, solo: Path, exact_eval: bool = True) -> None:
    """Bit-identical (CPU, exact kernels): metrics, history, masks at every tag, probes, weights and config."""
    g, s = store.RunDir(member), store.RunDir(solo)
    assert g.summary()["status"] == s.summary()["status"] == "done"
    gm, sm = g.metrics(), s.metrics()
    assert len(gm) == len(sm)
    for a, b in zip(gm, sm, strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) <= 1e-4 * abs(b["train_loss"])
        for key in ("train_loss", "train_acc", "test_acc", "val_acc"):
            assert a[key] == b[key], key
        # small_cnn: evaluation losses differ from solo in the last float32 digits (`exact_eval=False`; see
        # test_group.py's xfail); everything else in the rows is bit-identical.
        for key in ("val_loss", "test_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-6), key
    loose = ("seconds",) if exact_eval else ("seconds", "val_loss", "test_loss")
    assert [{k: v for k, v in r.items() if k not in loose} for r in gm] == [
        {k: v for k, v in r.items() if k not in loose} for r in sm]
    assert g.history() == s.history()
    same_masks(g, s)
    assert g.probe_steps() == s.probe_steps()
    for step in s.probe_steps():
        pg, ps = g.probe(step), s.probe(step)
        assert pg.keys() == ps.keys()
        assert all(np.array_equal(pg[key][name], ps[key][name]) for key in ps for name in ps[key]), step
    wa, wb = model_state(member), model_state(solo)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wb)
    assert json.loads((Path(member) / "config.json").read_text()) == json.loads((Path(solo) / "config.json")
                                                                                  .read_text())
