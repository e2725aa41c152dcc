import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dstbench.experiments import SpecError, list_specs, load_spec, select_runs
from dstbench.experiments.spec import REPORT_KINDS, parse_spec, spec_path
from dstbench.train import resolve_config

from .helpers import small_spec

CRITERIA = ["set", "magnitude", "mest:lam=1.0", "snip", "reciprocal_sensitivity"]  # canonical rule strings
DENSITIES = [0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]
FIG1_PAIRS = [("small_mlp", "higgs"), ("lenet5_caffe", "fashionmnist"), ("large_mlp", "cifar10"),
              ("small_cnn", "cifar10"), ("resnet56", "cifar10"), ("resnet56", "cifar100"),
              ("vgg16_bn", "cifar100"), ("efficientnet_b0", "tinyimagenet")]


def load(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_spec(path)


def error(tmp_path, text):
    with pytest.raises(SpecError) as info:
        load(tmp_path, text)
    return str(info.value)


# --- the built-in specs ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def expanded():
    return {name: load_spec(name).expand() for name in list_specs()}


def test_every_paper_figure_and_the_quick_specs_are_built_in():
    names = set(list_specs())
    assert {"fig1", "fig2", "fig4", "fig5", "fig6a", "fig6b", "fig7", "fig8", "fig11", "fig12", "fig13", "fig15",
            "fig14", "fig16", "fig17", "fig18", "fig19", "quick-fig1", "quick-fig5", "quick-fig6"} <= names


def test_every_built_in_spec_loads_expands_and_names_valid_report_kinds(expanded):
    for name, runs in expanded.items():
        spec = load_spec(name)
        assert spec.name == name and runs, name
        assert spec.report["kinds"] and set(spec.report["kinds"]) <= set(REPORT_KINDS), name
        assert len({r.run_id for r in runs}) == len(runs)
        assert all(r.config == resolve_config(r.config) for r in runs)  # resolved: recipe fields filled in


def test_fig1_per_pair_is_11_densities_x_5_criteria_x_2_growths_x_5_seeds_plus_dense_and_static(expanded):
    runs = expanded["fig1"]
    for model, dataset in FIG1_PAIRS:
        pair = select_runs(runs, {"model": [model], "dataset": [dataset]})
        arms = Counter(r.arm for r in pair)
        assert arms == {"dst": 11 * 5 * 2 * 5, "dense": 5, "static": 11 * 5}, (model, dataset)
        dst = [r.config for r in pair if r.arm == "dst"]
        assert {c.density for c in dst} == set(DENSITIES) and {c.prune for c in dst} == set(CRITERIA)
        assert {c.grow for c in dst} == {"random", "gradient"} and {c.seed for c in dst} == set(range(5))
        assert all(c.update_period == 800 and c.prune_fraction == 0.5 and c.schedule == "cosine" for c in dst)
        assert all(c.mode == "static" for c in (r.config for r in pair if r.arm == "static"))
        assert all(c.mode == "dense" for c in (r.config for r in pair if r.arm == "dense"))
    assert len(runs) == 8 * 610


def test_paper_hyperparameters_of_the_other_figures(expanded):
    fig2 = [r.config for r in expanded["fig2"] if r.arm == "dst"]
    assert {(c.model, c.dataset, c.density, c.grow) for c in fig2} == {("resnet50", "imagenet", 0.2, "gradient")}
    assert len(fig2) == 5 * 3 and fig2[0].batch_size == 256
    fig5 = [r.config for r in expanded["fig5"] if r.arm == "dst"]
    assert sorted({c.update_period for c in fig5}) == [25 * 2**i for i in range(9)]
    assert {c.density for c in fig5} == {0.1, 0.2} and {c.model for c in fig5} == {"large_mlp", "small_cnn", "resnet56"}
    probes = [r.config for r in expanded["fig6a"]]
    assert len(probes) == 3 * 2 * 5 and all(c.probe_steps == (800,) for c in probes)
    assert {c.density for c in probes} == {1.0, 0.2}  # Table 3's 1.0, and 0.2 as the authors' specs also ran
    assert {r.run_id for r in expanded["fig17"]} == {r.run_id for r in expanded["fig6a"]}
    assert all(c.probe_fractions == (0.5, 0.25, 0.125, 0.0625) for c in probes)
    assert all(set(c.probe_criteria) == set(CRITERIA) | {"random"} for c in probes)
    assert {r.run_id for r in expanded["fig6b"]} <= {r.run_id for r in expanded["fig1"]}  # shared run folders
    assert {r.run_id for r in expanded["fig11"]} <= {r.run_id for r in expanded["fig5"]}
    fig4 = [r.config for r in expanded["fig4"] if r.arm == "dst"]
    assert {c.density for c in fig4} == {0.5, 1.0} and {c.grow for c in fig4} == {"random"}
    dense = [r.config for r in expanded["fig4"] if r.arm == "dense"]
    assert {(c.dropout, c.input_dropout) for c in dense} == {(0.0, 0.0), (0.05, 0.05)}
    assert all(c.update_period == 0 for c in dense)
    assert load_spec("fig5").report["metric"] == "best_val_acc"  # the caption: validation accuracy
    fig14 = expanded["fig14"]
    scratch = {r.run_id for r in fig14 if r.arm in ("scratch", "dense")}
    assert scratch <= {r.run_id for r in expanded["fig1"]}  # from scratch = the fig1 runs
    tuned = [r.config for r in fig14 if r.arm == "finetuned"]
    assert len(tuned) == 11 * 5 * 2 * 5 and {c.init_from for c in tuned} == {"efficientnet_b0_rwightman-7f5810bc.pth"}
    assert {(c.weight_decay, c.nesterov, c.lr) for c in tuned} == {(1e-3, False, 0.01)}
    assert {c.prune for r in expanded["fig7"] for c in [r.config]} >= {"magnitude", "mest:lam=0.1"}
    fig12 = [r.config for r in expanded["fig12"] if r.arm == "batch1024"]
    assert {(c.batch_size, c.lr, c.update_period) for c in fig12} == {(1024, 0.08, 100)}
    assert {r.config.update_batch_size for r in expanded["fig13"] if r.arm == "update_batch1024"} == {1024}
    fig15 = [r.config for r in expanded["fig15"]]
    assert {c.global_pruning for c in fig15} == {True, False} and "set" not in {c.prune for c in fig15}
    assert {c.schedule for r in expanded["fig16"] for c in [r.config]} == {"cosine", "linear:every=600,factor=0.99", "constant"}
    assert {r.config.probe_every for r in expanded["fig18"]} == {3200}


def test_full_layers_pairs_fig1s_runs_with_their_full_layer_twins(expanded):
    runs = [r.config for r in expanded["full-layers"]]
    assert len(runs) == 3 * 2 * 2 * 4 * 2 * 3
    assert {(c.model, c.dataset) for c in runs} == {("small_mlp", "higgs"), ("lenet5_caffe", "fashionmnist"),
                                                    ("small_cnn", "cifar10")}
    assert {c.density for c in runs} == {0.05, 0.1} and {c.seed for c in runs} == {0, 1, 2}
    assert {c.prune for c in runs} == {"magnitude", "set", "snip", "reciprocal_sensitivity"}
    assert {c.grow for c in runs} == {"random", "gradient"} and {c.update_full_layers for c in runs} == {True, False}
    assert all(c.update_period == 800 and c.prune_fraction == 0.5 and c.schedule == "cosine" for c in runs)
    fixed = {r.run_id for r in expanded["full-layers"] if not r.config.update_full_layers}
    assert len(fixed) == len(runs) // 2 and fixed <= {r.run_id for r in expanded["fig1"]}  # fig1's own runs
    for name, base in (("study-full-layers", "study-fig1"), ("study-full-layers-cnn", "study-fig1")):
        mini = expanded[name]
        assert len(mini) == 4 * 2 * 2 * 2 * 3, name
        fixed = {r.run_id for r in mini if not r.config.update_full_layers}
        assert len(fixed) == len(mini) // 2 and fixed <= {r.run_id for r in expanded[base]}, name
        spec = load_spec(name)
        assert spec.report["paired_difference"] == {"field": "update_full_layers", "alpha": 0.05}, name


def test_the_field_option_names_a_boolean_run_config_field(tmp_path):
    head = '[base]\nmodel = "small_mlp"\ndataset = "digits"\n'
    spec = load(tmp_path, head + '[report.paired_difference]\nfield = "global_pruning"\n')
    assert spec.report["paired_difference"] == {"field": "global_pruning"}
    msg = error(tmp_path, head + '[report.paired_difference]\nfield = "density"\n')
    assert "[report.paired_difference] field = 'density': not a boolean RunConfig field" in msg
    assert "update_full_layers" in msg
    msg = error(tmp_path, head + '[report]\nfield = "update_ful_layers"\n')
    assert "[report] field = 'update_ful_layers'" in msg


def test_quick_specs_use_the_embedded_data_sets_and_few_epochs(expanded):
    for name in ("quick-fig1", "quick-fig5", "quick-fig6"):
        configs = [r.config for r in expanded[name]]
        assert {c.dataset for c in configs} <= {"digits", "breast_cancer"}, name
        assert max(c.epochs for c in configs) <= 5 and max(c.update_period for c in configs) <= 80, name
        assert len(configs) <= 150, name


# --- expansion ---------------------------------------------------------------------------------------------------

def test_grid_is_a_cartesian_product_with_the_last_key_fastest(tmp_path):
    spec = load(tmp_path, """
[base]
model = "small_mlp"
dataset = "digits"
[grid]
density = [0.1, 0.2]
seed = [0, 1, 2]
""")
    runs = spec.expand()
    assert [(r.config.density, r.config.seed) for r in runs] == list(itertools.product([0.1, 0.2], [0, 1, 2]))
    assert {r.arm for r in runs} == {"main"} and spec.name == "s"


def test_cases_set_several_keys_at_once(tmp_path):
    spec = load(tmp_path, """
[grid]
cases = [{model = "small_mlp", dataset = "digits"}, {model = "small_cnn", dataset = "cifar10"}]
seed = [0, 1]
""")
    assert [(r.config.model, r.config.dataset, r.config.seed) for r in spec.expand()] == [
        ("small_mlp", "digits", 0), ("small_mlp", "digits", 1), ("small_cnn", "cifar10", 0), ("small_cnn", "cifar10", 1)]


def test_groups_take_the_spec_base_their_own_base_and_only_their_grid(tmp_path):
    spec = small_spec(tmp_path)
    runs = spec.expand()
    dense = [r for r in runs if r.arm == "dense"]
    assert len(runs) == 2 * 3 + 1 and len(dense) == 1
    assert dense[0].config.density == 1.0 and dense[0].config.epochs == 3 and dense[0].config.model == "small_mlp"


def test_a_run_two_arms_produce_is_listed_once_under_the_first(tmp_path):
    spec = load(tmp_path, """
arm = "a"
[base]
model = "small_mlp"
dataset = "digits"
[grid]
seed = [0, 1]
[arms.b]
grid = {seed = [1, 2]}
""")
    assert [(r.arm, r.config.seed) for r in spec.expand()] == [("a", 0), ("a", 1), ("b", 2)]
    assert spec.size() == 4


def test_recipe_defaults_are_filled_in_and_explicit_values_win(tmp_path):
    spec = load(tmp_path, """
[base]
model = "resnet56"
dataset = "cifar10"
[grid]
lr = [0.05]
""")
    config = spec.expand()[0].config
    assert config.lr == 0.05 and config.epochs == 200 and config.weight_decay == 1e-4


def test_efficientnet_recipe_is_the_authors_runs_and_the_texts_reading_is_a_named_variant():
    from dstbench.config import RunConfig

    runs = resolve_config(RunConfig(model="efficientnet_b0", dataset="tinyimagenet"))
    assert (runs.weight_decay, runs.nesterov, runs.lr_gamma, runs.lr, runs.epochs) == (1e-3, False, 0.1, 0.01, 100)
    text = resolve_config(RunConfig(model="efficientnet_b0", dataset="tinyimagenet", recipe="efficientnet_b0:text"))
    assert (text.weight_decay, text.nesterov, text.lr_gamma, text.lr, text.epochs) == (1e-4, True, 0.001, 0.01, 100)
    assert text.run_id() != runs.run_id()
    with pytest.raises(ValueError, match=r"unknown recipe 'b0'; valid: .*efficientnet_b0:text"):
        resolve_config(RunConfig(model="efficientnet_b0", dataset="tinyimagenet", recipe="b0"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seeds=st.lists(st.integers(0, 50), min_size=1, max_size=4, unique=True),
       densities=st.lists(st.sampled_from([0.05, 0.1, 0.2, 0.5, 0.9]), min_size=1, max_size=3, unique=True),
       prunes=st.lists(st.sampled_from(CRITERIA), min_size=1, max_size=3, unique=True))
def test_expansion_has_one_run_per_grid_point(tmp_path, seeds, densities, prunes):
    spec = parse_spec({"base": {"model": "small_mlp", "dataset": "digits"},
                       "grid": {"seed": seeds, "density": densities, "prune": prunes}}, "p.toml")
    runs = spec.expand()
    assert len(runs) == len(seeds) * len(densities) * len(prunes)
    assert {(r.config.seed, r.config.density, r.config.prune) for r in runs} == set(
        itertools.product(seeds, densities, prunes))


# --- validation: messages name the file, the key and the valid values --------------------------------------------

def test_unknown_top_level_key(tmp_path):
    msg = error(tmp_path, 'nmae = "x"\n')
    assert "s.toml" in msg and "'nmae'" in msg and "valid keys: name, description" in msg


def test_unknown_field_in_base_and_grid(tmp_path):
    msg = error(tmp_path, '[base]\ndensty = 0.1\n')
    assert "s.toml" in msg and "[base]" in msg and "'densty'" in msg and "density" in msg and "update_period" in msg
    msg = error(tmp_path, '[grid]\nsed = [1]\n')
    assert "[grid]" in msg and "'sed'" in msg and "seed" in msg


def test_bad_values_name_the_key_and_the_rule(tmp_path):
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n[grid]\ndensity = [0.1, 2.0]\n')
    assert "s.toml" in msg and "[grid] density = 2.0" in msg and "less than or equal to 1" in msg
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\noptimizer = "lion"\n')
    assert "[base] optimizer = 'lion'" in msg and "'sgd'" in msg and "'adamw'" in msg


def test_unknown_rule_names_list_the_registered_ones(tmp_path):
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n[grid]\nprune = ["magnitude", "magnitdue"]\n')
    assert "[grid] prune = 'magnitdue'" in msg and "reciprocal_sensitivity" in msg and "snip" in msg
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\nprune = "mest:lamda=2"\n')
    assert "lamda" in msg and "lam (default 1.0)" in msg
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n[arms.g]\ngrid = {grow = ["rigl"]}\n')
    assert "[arms.g] grid grow = 'rigl'" in msg and "gradient" in msg


def test_empty_and_non_list_grids(tmp_path):
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n[grid]\nseed = []\n')
    assert "[grid] seed is an empty list" in msg
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n[grid]\nseed = 3\n')
    assert "[grid] seed must be a list" in msg


def test_report_kinds_are_checked(tmp_path):
    msg = error(tmp_path, '[base]\nmodel = "m"\ndataset = "d"\n[report]\nkinds = ["acuracy"]\n')
    assert "'acuracy'" in msg and "accuracy_vs_density" in msg and "critical_difference" in msg


def test_arms_need_unique_names_and_no_key_twice(tmp_path):
    assert "unique" in error(tmp_path, 'arm = "a"\n[grid]\nseed = [0]\n[arms.a]\ngrid = {seed = [1]}\n')
    assert "must be a non-empty name" in error(tmp_path, '[arms."a b"]\ngrid = {seed = [0]}\n')
    assert "'seed' is set in both [grid] and its base" in error(tmp_path, '[base]\nseed = 1\n[grid]\nseed = [0]\n')
    msg = error(tmp_path, '[arms.a]\nbse = {seed = 1}\n')
    assert "[arms.a]" in msg and "'bse'" in msg and "valid keys: description, base, grid" in msg


@pytest.mark.parametrize(("text", "new"), [('group = "dst"\n[grid]\nseed = [0]\n', "'group' is now arm = NAME"),
                                           ('[[groups]]\nname = "a"\n', "'groups' is now [arms.NAME] tables")])
def test_spec_files_from_before_the_rename_fail_naming_the_new_key(tmp_path, text, new):
    msg = error(tmp_path, text)
    assert new in msg and "\n" not in msg


def test_model_level_rules_name_the_arm(tmp_path):
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n[grid]\nprobe_steps = [[800]]\n')
    assert "arm 'main'" in msg and "probe_criteria" in msg


def test_invalid_toml_and_unknown_names(tmp_path):
    assert "not valid TOML" in error(tmp_path, "name = \n")
    with pytest.raises(FileNotFoundError, match="fig1.*quick-fig1"):
        spec_path("fig99")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        spec_path(tmp_path / "missing.toml")


# --- one canonical form per rule (issue #14.3) and one validation path (issue #9.2) ------------------------------

def test_rule_aliases_map_to_one_run_id(tmp_path):
    spec = load(tmp_path, """
[base]
model = "small_mlp"
dataset = "digits"
density = 0.1
[grid]
prune = ["mest", "mest:", " mest", "mest:lam=1.0", "mest:lam=1"]
""")
    runs = spec.expand()
    assert len(runs) == 1 and runs[0].config.prune == "mest:lam=1.0"


def test_bad_rule_parameters_fail_at_load_naming_the_parameter_and_the_rule(tmp_path):
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n[grid]\nprune = ["mest:lam=abc"]\n')
    assert "[grid] prune = 'mest:lam=abc'" in msg and "'mest'" in msg and "lam = 'abc'" in msg and "float" in msg
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\ndistribution = "erk:pwr=2"\n')
    assert "distribution" in msg and "pwr" in msg


def test_distribution_parameters_are_the_erk_power_field(tmp_path):
    spec = load(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\ndensity = 0.1\n'
                          '[grid]\ndistribution = ["erk:power=2", "erk"]\n')
    configs = [r.config for r in spec.expand()]
    assert [(c.distribution, c.erk_power) for c in configs] == [("erk", 2.0), ("erk", 1.0)]
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\nerk_power = 3.0\n'
                          'distribution = "erk:power=2"\n')
    assert "erk_power" in msg and "set one of them" in msg


def test_unknown_models_and_data_sets_fail_at_load(tmp_path):
    msg = error(tmp_path, '[base]\nmodel = "small_mpl"\ndataset = "digits"\n')
    assert "[base] model = 'small_mpl'" in msg and "small_mlp" in msg
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\n[grid]\ndataset = ["digits", "digts"]\n')
    assert "[grid] dataset = 'digts'" in msg and "breast_cancer" in msg


@pytest.mark.parametrize("key", ["x", "facet", "series", "split", "compare", "reference"])
def test_report_keys_nothing_reads_are_rejected(tmp_path, key):
    msg = error(tmp_path, f'[base]\nmodel = "small_mlp"\ndataset = "digits"\n[report]\n{key} = "density"\n')
    assert f"unknown key {key!r} in [report]" in msg and "metric" in msg


def test_report_options_per_kind(tmp_path):
    spec = load(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n'
                          '[report]\nmetric = "best_val_acc"\n[report.critical_difference]\nalpha = 0.1\n')
    assert spec.report["critical_difference"] == {"alpha": 0.1}
    msg = error(tmp_path, '[base]\nmodel = "small_mlp"\ndataset = "digits"\n[report.critical_difference]\nx = 1\n')
    assert "[report.critical_difference]" in msg and "'x'" in msg


def test_dense_baselines_are_dense_and_the_first_update_studies_run_dst_at_density_one(expanded):
    # density 1.0 with an update period is DST on the dense network: a baseline must not inherit one
    for name, runs in expanded.items():
        for run in runs:
            if run.arm and run.arm.startswith("dense"):
                assert run.config.mode == "dense", (name, run.arm, run.config.update_period)
    for name in ("fig6a", "fig17"):
        at_one = [r for r in expanded[name] if r.config.density == 1.0]
        assert at_one and all(r.config.mode == "dst" and r.config.probe_criteria for r in at_one)
