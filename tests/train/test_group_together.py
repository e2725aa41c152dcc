"""A run group's members that update on the same step update together (`dstbench.sparsity.together`), and each
is still its solo run; one whose weights turn NaN right before such an update fails alone, with the engine's
error."""

import dstbench.train.stepping as stepping_module
from dstbench import store
from dstbench.train.group import run_group
from dstbench.train.loop import run

from .group_helpers import assert_member_is_solo, member_configs

MEMBERS = [  # one update period: every update step is every member's
    dict(density=0.1, prune="magnitude", grow="random", update_period=6, seed=0),
    dict(density=0.2, prune="set", grow="gradient", update_period=6, seed=1),
    dict(density=0.3, prune="snip", grow="gradient", update_period=6, seed=2, global_pruning=True),
    dict(density=0.1, prune="random", grow="random", update_period=6, seed=3, grow_init="fresh"),
]


def test_members_update_together_and_equal_their_solo_runs(tmp_path, monkeypatch):
    configs = member_configs("small_mlp", MEMBERS, epochs=1)
    sizes, original = [], stepping_module.step_together

    def counted(engines):
        sizes.append(len(engines))
        return original(engines)

    monkeypatch.setattr(stepping_module, "step_together", counted)
    summaries = run_group(configs, [tmp_path / "g" / c.run_id() for c in configs], tmp_path / "groups")
    assert [s["status"] for s in summaries] == ["done"] * 4
    assert sizes and set(sizes) == {4}  # every visit is all four members' update (snapshots fall on updates + 1)
    monkeypatch.undo()
    for config in configs:
        run(config, tmp_path / "s" / config.run_id())
        assert_member_is_solo(tmp_path / "g" / config.run_id(), tmp_path / "s" / config.run_id())


def test_a_member_with_nan_weights_at_a_joint_update_fails_alone(tmp_path, monkeypatch):
    configs = member_configs("small_mlp", MEMBERS, snapshots=False, epochs=1)
    original = stepping_module.step_together

    def poisons_member_two(engines):
        if len(engines) == 4 and engines[0].steps == 11:  # right before the second update, at step 12
            engines[2].layers[0].param.data.view(-1)[0] = float("nan")
        return original(engines)

    monkeypatch.setattr(stepping_module, "step_together", poisons_member_two)
    summaries = run_group(configs, [tmp_path / "g" / c.run_id() for c in configs], tmp_path / "groups")
    assert [s["status"] for s in summaries] == ["done", "done", "failed", "done"]
    assert summaries[2]["reason"].startswith("NaN or inf in the weights of hidden.0.weight at step 12")
    assert summaries[2]["steps"] == 12
    assert store.RunDir(tmp_path / "g" / configs[2].run_id()).status() == "failed"
    monkeypatch.undo()
    for k in (0, 1, 3):  # the others are their solo runs
        run(configs[k], tmp_path / "s" / configs[k].run_id())
        assert_member_is_solo(tmp_path / "g" / configs[k].run_id(), tmp_path / "s" / configs[k].run_id())
