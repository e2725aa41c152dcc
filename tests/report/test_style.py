import re

from dstbench.report.style import PALETTE, colour, criterion_label, panel_title, value_label


def test_known_criteria_have_fixed_distinct_colours():
    known = ["magnitude", "set", "mest", "reciprocal_sensitivity", "sensitivity", "snip", "random", "static", "dense"]
    assert len({colour(name) for name in known}) == len(known)
    assert colour("magnitude") == PALETTE["magnitude"]


def test_unknown_criteria_get_deterministic_further_colours():
    first = colour("my_rule")
    assert first == colour("my_rule")
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", first)
    assert first not in PALETTE.values()
    assert len({colour(f"rule{i}") for i in range(20)}) > 3


def test_nice_labels():
    assert criterion_label("reciprocal_sensitivity") == "RSensitivity"
    assert criterion_label("mest:lam=0.5") == "MEST (λ=0.5)"
    assert criterion_label("mest:lam=1.0") == "MEST (λ=1)"  # canonical rule strings carry their defaults
    assert criterion_label("set") == "SET"
    assert criterion_label("my_rule:a=1,b=2") == "my_rule (a=1, b=2)"
    assert criterion_label("odd:thing") == "odd:thing"


def test_panel_titles_join_model_and_dataset():
    key = (("dataset", "cifar10"), ("grow", "random"), ("model", "large_mlp"), ("density", 0.1))
    assert panel_title(key) == "large-MLP / CIFAR-10, random growth, D=0.1"
    assert panel_title(()) == ""
    assert value_label("update_period", 800) == "Δt=800"
    assert value_label("global_pruning", True) == "global pruning"


def test_a_criterion_registered_with_a_label_is_shown_by_it():
    from dstbench.sparsity import register_criterion

    @register_criterion("test_labelled_rule", overwrite=True, label="Labelled")
    def labelled(weight, grad, active, *, generator, lam: float = 1.0):
        return weight.abs()

    assert criterion_label("test_labelled_rule") == "Labelled"
    assert criterion_label("test_labelled_rule:lam=0.5") == "Labelled (λ=0.5)"
    assert criterion_label("test_unlabelled_rule") == "test_unlabelled_rule"
