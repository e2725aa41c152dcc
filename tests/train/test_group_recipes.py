"""A run group's member is its solo run, bit for bit on a CPU, whatever the recipe and the engine features: SGD,
Adam and AdamW, momentum growth, fresh growth init, probes, label smoothing and --init-from (issue #18)."""

import pytest
import torch

from dstbench import store
from dstbench.train.group import run_group
from dstbench.train.loop import run
from dstbench.weights import read_final_weights

from .group_helpers import assert_member_is_solo, member_configs

PROBES = dict(probe_criteria=("magnitude", "snip"), probe_every=15, probe_fractions=(0.3,))
# Momentum growth and fresh growth init, with and without probes, next to a static and a dense member.
FEATURES = [
    dict(density=0.1, prune="magnitude", grow="momentum", update_period=8, seed=0, **PROBES),
    dict(density=0.2, prune="mest", grow="gradient", grow_init="fresh", update_period=6, seed=1),
    dict(density=0.1, prune="set", grow="momentum", grow_init="fresh", update_period=10, seed=2),
    dict(density=0.1, update_period=0, seed=3, **PROBES),
    dict(density=1.0, update_period=0, seed=4),
]
RECIPES = {
    "sgd-smoothing": dict(label_smoothing=0.1),
    "adam": dict(optimizer="adam", lr=0.005),
    "adamw-smoothing": dict(optimizer="adamw", lr=0.005, weight_decay=0.01, label_smoothing=0.05),
}


def _group_and_solo(root, configs):
    dirs = [root / "g" / c.run_id() for c in configs]
    summaries = run_group(configs, dirs, root / "groups", kernels="exact")
    assert all(s["status"] == "done" for s in summaries)
    for config in configs:
        run(config, root / "s" / config.run_id())
    for config in configs:
        assert_member_is_solo(root / "g" / config.run_id(), root / "s" / config.run_id())


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_members_equal_their_solo_runs_under_each_optimizer(recipe, tmp_path):
    configs = member_configs("small_mlp", FEATURES, **RECIPES[recipe])
    assert {c.optimizer for c in configs} == {RECIPES[recipe].get("optimizer", "sgd")}
    _group_and_solo(tmp_path, configs)
    probed = store.RunDir(tmp_path / "g" / configs[0].run_id())
    assert probed.probe_steps() and probed.history()  # the features ran: probes written, updates taken


def test_members_equal_their_solo_runs_from_pretrained_weights(tmp_path):
    pretrained = tmp_path / "pretrained.pt"
    source = member_configs("small_mlp", FEATURES[:1], snapshots=False, epochs=1)[0]
    run(source, tmp_path / "source")
    torch.save(read_final_weights(tmp_path / "source"), pretrained)
    members = [{**m, "init_mask": "magnitude"} if m["density"] < 1 else m for m in FEATURES[1:]]
    configs = member_configs("small_mlp", members, init_from=str(pretrained))
    _group_and_solo(tmp_path / "from", configs)
    weights = torch.load(pretrained, weights_only=True)
    for config in configs[:-1]:  # each member's first mask kept the pretrained weights' largest magnitudes
        init = store.RunDir(tmp_path / "from" / "g" / config.run_id()).masks("init")
        for name, mask in init.items():
            kept, magnitude = torch.from_numpy(mask), weights[name].abs()
            if not kept.all():  # a layer the distribution keeps dense has nothing to compare
                assert magnitude[kept].min() >= magnitude[~kept].max(), name
