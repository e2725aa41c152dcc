import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dstbench.sparsity import CRITERIA, GROWTH, list_criteria, parse_rule, register_criterion
from dstbench.sparsity.masks import prune_count, select_highest, select_lowest
from dstbench.sparsity.registry import Range

G = torch.Generator().manual_seed(0)


def pruned(name, w, g=None, k=2, active=None):
    w = torch.tensor(w, dtype=torch.float32)
    g = None if g is None else torch.tensor(g, dtype=torch.float32)
    active = torch.ones_like(w, dtype=torch.bool) if active is None else torch.tensor(active)
    _, fn, _ = CRITERIA.resolve(name)
    return select_lowest(fn(w, g, active, generator=G), active, k).tolist()


def test_magnitude_prunes_smallest_absolute_values():
    assert pruned("magnitude", [0.5, -0.1, 0.2, -0.9], k=2) == [False, True, True, False]


def test_magnitude_ties_go_to_the_lower_index():
    assert pruned("magnitude", [0.3, -0.3, 0.3, 0.3], k=2) == [True, True, False, False]


def test_inactive_weights_are_never_pruned():
    assert pruned("magnitude", [0.0, 0.5, 0.1], k=1, active=[False, True, True]) == [False, False, True]


def test_mest_adds_lambda_times_gradient():
    w, g = [0.1, 0.2, 0.3], [1.0, 0.0, 0.0]
    # lam=1: scores 1.1, 0.2, 0.3 -> prune index 1; lam=0 is magnitude -> prune index 0
    assert pruned("mest", w, g, k=1) == [False, True, False]
    assert pruned("mest:lam=0", w, g, k=1) == [True, False, False]
    assert pruned(("mest", {"lam": 0.15}), w, g, k=1) == [False, True, False]  # 0.25, 0.2, 0.3


def test_snip_is_product_of_magnitudes():
    # |w*g| = 0.2, 0.03, 0.5
    assert pruned("snip", [2.0, -0.3, 0.5], [0.1, 0.1, -1.0], k=1) == [False, True, False]


def test_sensitivity_and_reciprocal_are_opposite_orders():
    w, g = [1.0, 0.5, 2.0], [0.1, 1.0, 0.4]
    # |g|/|w| = 0.1, 2.0, 0.2 ; |w|/|g| = 10, 0.5, 5
    assert pruned("sensitivity", w, g, k=1) == [True, False, False]
    assert pruned("reciprocal_sensitivity", w, g, k=1) == [False, True, False]


def test_zero_gradients_and_zero_weights_give_finite_scores():
    w = torch.tensor([0.0, 1.0, 0.0, 2.0])
    g = torch.zeros(4)
    active = torch.ones(4, dtype=torch.bool)
    for name in ("sensitivity", "reciprocal_sensitivity", "snip", "mest"):
        scores = CRITERIA.get(name).fn(w, g, active, generator=G)
        assert torch.isfinite(scores).all(), name
    # zero gradient: reciprocal sensitivity keeps large weights (1e8, 2e8) and prunes the zeros
    assert pruned("reciprocal_sensitivity", w.tolist(), g.tolist(), k=2) == [True, False, True, False]
    # zero gradient: sensitivity scores are all 0 -> ties by index
    assert pruned("sensitivity", w.tolist(), g.tolist(), k=2) == [True, True, False, False]


def test_set_takes_half_from_each_sign():
    w = [0.5, -0.4, 0.1, -0.05, 0.3, -0.9]
    # k=4: 2 smallest positive (0.1, 0.3) and 2 negative closest to zero (-0.05, -0.4)
    assert pruned("set", w, k=4) == [False, True, True, True, True, False]
    # k=3: ceil(3/2)=2 positive, 1 negative
    assert pruned("set", w, k=3) == [False, False, True, True, True, False]


def test_set_all_positive_and_all_negative_layers():
    assert pruned("set", [0.4, 0.1, 0.3, 0.2], k=2) == [False, True, False, True]
    assert pruned("set", [-0.4, -0.1, -0.3, -0.2], k=2) == [False, True, False, True]


def test_set_one_side_too_small_other_makes_up():
    # one negative weight, k=4: it goes, plus the 3 smallest positives
    assert pruned("set", [0.4, 0.1, -0.3, 0.2, 0.9], k=4) == [True, True, True, True, False]


def test_set_differs_from_the_reference_bug():
    # The released code removed every negative weight but the k-1 most negative ones. True SET with k=2 removes
    # exactly one positive and one negative weight.
    w = [-0.1, -0.2, -0.3, -0.4, 0.5, 0.6]
    assert pruned("set", w, k=2) == [True, False, False, False, True, False]  # -0.1 and 0.5


def _true_set(w: list[float], active: list[bool], k: int) -> list[bool]:
    """The definition, by hand: alternate the smallest non-negative and the negative closest to zero (ties by
    index) until k are removed; a side that runs out leaves the rest to the other."""
    positive = sorted((v, i) for i, v in enumerate(w) if active[i] and v >= 0)
    negative = sorted((-v, i) for i, v in enumerate(w) if active[i] and v < 0)
    removed, turn = set(), 0
    while len(removed) < k:
        side = positive if (turn % 2 == 0 and positive) or not negative else negative
        removed.add(side.pop(0)[1])
        turn += 1
    return [i in removed for i in range(len(w))]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.integers(-4, 4), min_size=1, max_size=40), data=st.data())
def test_set_equals_its_definition(values, data):
    w = [v / 4 for v in values]  # small integers: many ties and zeros
    active = data.draw(st.lists(st.booleans(), min_size=len(w), max_size=len(w)))
    k = data.draw(st.integers(0, sum(active)))
    assert pruned("set", w, k=k, active=active) == _true_set(w, active, k)


def test_random_is_seeded():
    active = torch.ones(100, dtype=torch.bool)
    w = torch.randn(100)
    a = CRITERIA.get("random").fn(w, None, active, generator=torch.Generator().manual_seed(3))
    b = CRITERIA.get("random").fn(w, None, active, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_growth_rules_pick_largest():
    w = torch.zeros(4)
    g = torch.tensor([0.1, -0.9, 0.5, 0.0])
    cand = torch.tensor([True, False, True, True])
    _, fn, _ = GROWTH.resolve("gradient")
    assert select_highest(fn(w, g, cand, generator=G, momentum=None), cand, 1).tolist() == [False, False, True, False]
    _, fn, _ = GROWTH.resolve("momentum")
    m = torch.tensor([-3.0, 0.0, 1.0, 2.0])
    assert select_highest(fn(w, None, cand, generator=G, momentum=m), cand, 2).tolist() == [True, False, False, True]


def test_prune_count_is_ceil_without_float_noise():
    assert prune_count(0.5, 100) == 50
    assert prune_count(0.3, 10) == 3
    assert prune_count(0.31, 10) == 4
    assert prune_count(0.0, 10) == 0


def test_spec_parsing_and_errors():
    assert parse_rule("mest:lam=0.5") == ("mest", {"lam": 0.5})
    assert parse_rule(("mest", {"lam": 2})) == ("mest", {"lam": 2})
    with pytest.raises(ValueError, match="valid: magnitude, mest, random"):
        CRITERIA.resolve("magnitud")
    with pytest.raises(ValueError, match="lam"):
        CRITERIA.resolve("mest:alpha=1")
    with pytest.raises(ValueError, match="key=value"):
        CRITERIA.resolve("mest:lam")


def test_user_registered_criterion():
    @register_criterion("test_neg_magnitude", overwrite=True)
    def neg_magnitude(weight, grad, active, *, generator, scale: float = 1.0):
        return -scale * weight.abs()

    assert "test_neg_magnitude" in list_criteria()
    assert pruned("test_neg_magnitude:scale=2", [0.1, 0.9, 0.5], k=1) == [False, True, False]
    with pytest.raises(ValueError, match="already registered"):
        register_criterion("test_neg_magnitude", neg_magnitude)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-3, 3), min_size=1, max_size=40), data=st.data())
def test_selection_equals_a_stable_sort(values, data):
    scores = torch.tensor(values, dtype=torch.float32)
    eligible = torch.tensor(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))))
    k = data.draw(st.integers(0, int(eligible.sum())))
    keyed = torch.where(eligible, scores, torch.tensor(float("inf")))
    expected = torch.zeros(len(values), dtype=torch.bool)
    expected[torch.argsort(keyed, stable=True)[:k]] = True
    assert torch.equal(select_lowest(scores, eligible, k), expected)


@given(low=st.floats(-10, 10), high=st.floats(-10, 10), value=st.floats(allow_nan=True, allow_infinity=True))
def test_a_range_holds_exactly_the_finite_values_between_its_bounds(low, high, value):
    finite = math.isfinite(value)
    assert (value in Range(gt=low, le=high)) == (finite and low < value <= high)
    assert (value in Range(ge=low, lt=high)) == (finite and low <= value < high)
    assert (value in Range()) == finite


def test_a_rule_declares_its_parameters_ranges_and_the_engine_and_run_configs_check_them():
    from typing import Annotated

    from dstbench.config import canonical_rule

    @register_criterion("test_ranged", overwrite=True)
    def ranged(weight, grad, active, *, generator, k: Annotated[int, Range(ge=1, le=3)] = 2):
        return weight.abs()

    try:
        assert CRITERIA.get("test_ranged").ranges == {"k": Range(ge=1, le=3)}
        assert canonical_rule("prune", "test_ranged") == "test_ranged:k=2"
        for bad, says in (("test_ranged:k=4", "parameter k = 4 must be >= 1 and <= 3 (default 2)"),
                          ("test_ranged:k=1.5", "parameter k = 1.5 must be a finite int"),
                          ("test_ranged:j=1", "has no parameter j; its parameters: k (default 2)")):
            with pytest.raises(ValueError, match=re.escape(says)):
                canonical_rule("prune", bad)
            with pytest.raises(ValueError, match=re.escape(says)):
                CRITERIA.resolve(bad)
    finally:
        CRITERIA._rules.pop("test_ranged")
