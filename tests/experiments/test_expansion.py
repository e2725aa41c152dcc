"""Expanding a spec once, and applying a selection (``--only``) while expanding (issue #21.7): the work done is
counted in configs built, not timed."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dstbench.experiments import spec as spec_module
from dstbench.experiments.selection import select_runs
from dstbench.experiments.spec import parse_spec
from dstbench.experiments.sweep import plan_sweeps

from .helpers import small_spec


@pytest.fixture
def built(monkeypatch):
    """Counts of configs validated (`_validate_config`) and of runs built (resolved, with a run id)."""
    counts = {"validated": 0, "runs": 0}
    validate, planned = spec_module._validate_config, spec_module._planned

    def counting_validate(*args):
        counts["validated"] += 1
        return validate(*args)

    def counting_planned(*args):
        counts["runs"] += 1
        return planned(*args)

    monkeypatch.setattr(spec_module, "_validate_config", counting_validate)
    monkeypatch.setattr(spec_module, "_planned", counting_planned)
    return counts


def big_spec():
    """100,000 grid points: 1,000 seeds x 20 densities x 5 criteria, plus a dense arm of 1,000 seeds."""
    return parse_spec({
        "name": "big", "arm": "dst", "base": {"model": "small_mlp", "dataset": "digits", "epochs": 1},
        "grid": {"seed": list(range(1000)), "density": [round(0.05 * i, 2) for i in range(1, 21)],
                 "prune": ["set", "magnitude", "mest", "snip", "reciprocal_sensitivity"]},
        "arms": {"dense": {"base": {"density": 1.0}, "grid": {"seed": list(range(1000))}}},
    }, "big.toml")


def test_a_selection_of_a_big_spec_builds_only_the_runs_it_selects(built):
    spec = big_spec()
    assert spec.size() == 101_000
    built["validated"] = 0  # loading validated each axis value once
    runs = spec.expand({"seed": [7, 8], "arm": ["dst"], "prune": ["snip"]})
    assert len(runs) == 2 * 20 and {(r.config.seed, r.config.prune, r.arm) for r in runs} == {
        (7, "snip", "dst"), (8, "snip", "dst")}
    assert built["runs"] == 40  # the dense arm is skipped whole, the other seeds and criteria never built
    assert built["validated"] <= 40 + 1 + 1000 + 20 + 5  # + one probe per axis value of the selected arm


def test_a_selection_of_a_key_no_axis_sets_is_checked_on_every_run(built, tmp_path):
    spec = small_spec(tmp_path)  # epochs in the base: every run has 3
    assert len(spec.expand({"epochs": [3]})) == 7 and built["runs"] == 7
    built["runs"] = 0
    assert spec.expand({"lr": [123.0]}) == [] and built["runs"] == 7  # a recipe value: known once resolved


def test_a_sweep_plan_builds_each_run_once(built, tmp_path):
    spec = small_spec(tmp_path)
    (plan,) = plan_sweeps([spec], tmp_path / "out", only={"density": [0.2]})
    assert built["runs"] == spec.size() == 7  # once for the record's listing and the selection together
    assert len(plan.runs) == 7 and len(plan.selected) == 3
    built["runs"] = 0
    (dry,) = plan_sweeps([spec], tmp_path / "out", only={"density": [0.2]}, listing=False)
    assert built["runs"] == 3 and dry.runs is None and [r.run_id for r in dry.selected] == [
        r.run_id for r in plan.selected]


def test_a_value_no_selected_run_has_is_named_with_the_values_that_exist(tmp_path):
    spec = small_spec(tmp_path)
    with pytest.raises(ValueError, match=r"no run of spec 'small' has arm = 'static'; its values: dense, dst"):
        plan_sweeps([spec], tmp_path / "out", only={"arm": ["static"]}, listing=False)
    with pytest.raises(ValueError, match=r"a spec's groups are now its arms: arm=NAME"):
        spec.expand({"group": ["dst"]})
    # a value that exists, only not together with the rest of the selection, selects nothing and is no error
    (plan,) = plan_sweeps([spec], tmp_path / "out", only={"arm": ["dense"], "density": [0.1]}, listing=False)
    assert plan.selected == []


SEEDS, DENSITIES, PRUNES = [0, 1, 2], [0.1, 0.2, 0.5], ["set", "mest", "mest:lam=0.5"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seeds=st.lists(st.sampled_from(SEEDS + [9]), max_size=2),
       densities=st.lists(st.sampled_from(DENSITIES + [1.0]), max_size=2),
       prunes=st.lists(st.sampled_from(["set", "mest:lam=1.0", "mest:lam=0.5", "mest"]), max_size=2),
       arms=st.lists(st.sampled_from(["dst", "dense", "again", "nosuch"]), max_size=2))
def test_selecting_while_expanding_equals_selecting_every_grid_point(seeds, densities, prunes, arms):
    spec = parse_spec({
        "arm": "dst", "base": {"model": "small_mlp", "dataset": "digits", "epochs": 1},
        "grid": {"seed": SEEDS, "cases": [{"density": d} for d in DENSITIES], "prune": PRUNES},
        "arms": {"dense": {"base": {"density": 1.0, "update_period": 0}, "grid": {"seed": SEEDS}},
                 "again": {"base": {"prune": "mest"}, "grid": {"seed": [2, 0], "density": [0.5]}}},  # dst's too
    }, "p.toml")
    only = {k: v for k, v in (("seed", seeds), ("density", densities), ("prune", prunes), ("arm", arms)) if v}
    every = [spec_module._planned(spec, arm, values) for arm in spec.arms for values in arm.combinations()]
    wanted: dict = {}
    for run in select_runs(every, only):  # each run id once, under the first arm that produces it and is wanted
        wanted.setdefault(run.run_id, run)
    assert [(r.arm, r.run_id) for r in spec.expand(only)] == [(r.arm, r.run_id) for r in wanted.values()]
    listing, selected = spec.listing(only)
    assert [(r.arm, r.run_id) for r in selected] == [(r.arm, r.run_id) for r in wanted.values()]
    assert listing == {r.run_id: r.arm for r in reversed(every)} and list(listing) == list(dict.fromkeys(
        r.run_id for r in every))
