import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dstbench.analysis.jaccard import (
    end_mask_matrix,
    first_update_matrix,
    jaccard_over_time,
    jaccard_per_layer,
    layer_jaccard,
    mean_jaccard,
    reference_jaccard,
    retained_removed_by_all,
)

T, F = True, False


def b(*values):
    return np.array(values, dtype=bool)


def test_layer_jaccard_is_intersection_over_union():
    # intersection {1}, union {0, 1, 2}
    assert layer_jaccard(b(T, T, F, F), b(F, T, T, F)) == pytest.approx(1 / 3)
    assert layer_jaccard(b(T, F), b(T, F)) == 1.0
    assert layer_jaccard(b(T, F), b(F, T)) == 0.0


def test_layer_with_nothing_to_compare_is_nan():
    assert math.isnan(layer_jaccard(b(F, F), b(F, F)))  # nothing pruned by either
    assert math.isnan(layer_jaccard(b(T, T), b(T, T)))  # a layer kept dense by both masks


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shapes"):
        layer_jaccard(b(T, F), b(T, F, F))


def test_mean_over_layers_skips_layers_without_content():
    a = {"l1": b(T, T, F, F), "l2": b(T, F), "dense": b(T, T)}
    c = {"l1": b(F, T, T, F), "l2": b(T, F), "dense": b(T, T)}
    assert jaccard_per_layer(a, c)["l2"] == 1.0
    assert mean_jaccard(a, c) == pytest.approx((1 / 3 + 1.0) / 2)


def test_layers_must_agree():
    with pytest.raises(ValueError, match="only in the first \\['x'\\]"):
        mean_jaccard({"x": b(T), "y": b(T)}, {"y": b(T)})


@given(arrays(bool, 12), arrays(bool, 12))
def test_jaccard_is_symmetric_and_bounded(x, y):
    value = layer_jaccard(x, y)
    other = layer_jaccard(y, x)
    assert (math.isnan(value) and math.isnan(other)) or (value == other and 0.0 <= value <= 1.0)


@given(arrays(bool, 10, elements=st.booleans()).filter(lambda a: a.any() and not a.all()))
def test_set_with_itself_is_one(x):
    assert layer_jaccard(x, x) == 1.0


def test_reference_is_mean_over_pairs():
    s1, s2, s3 = {"l": b(T, T, F, F)}, {"l": b(T, F, T, F)}, {"l": b(F, F, T, T)}
    # J(s1,s2)=1/3, J(s1,s3)=0, J(s2,s3)=1/3
    assert reference_jaccard([s1, s2, s3]) == pytest.approx(2 / 9)
    assert math.isnan(reference_jaccard([s1]))


def test_first_update_means_over_seeds_per_layer_then_over_layers():
    # Two seeds, two layers. Layer "a" has J(m, s) = 1 in seed 0, 0 in seed 1;
    # layer "b" has J = 1/3 in seed 0 and is empty for both criteria in seed 1 (nothing to compare).
    seed0 = {"m": {"a": b(T, F), "b": b(T, T, F, F)}, "s": {"a": b(T, F), "b": b(F, T, T, F)}}
    seed1 = {"m": {"a": b(T, F), "b": b(F, F, F, F)}, "s": {"a": b(F, T), "b": b(F, F, F, F)}}
    matrix = first_update_matrix([seed0, seed1], ["m", "s"])
    # per layer over seeds: a -> 0.5, b -> 1/3 ; then over layers
    assert matrix.value("m", "s") == pytest.approx((0.5 + 1 / 3) / 2)
    assert matrix.value("s", "m") == matrix.value("m", "s")
    assert matrix.value("m", "m") == 1.0
    # std per layer: a -> std(1, 0) = sqrt(0.5); b -> one value -> nan, left out of the average
    assert matrix.std[0, 1] == pytest.approx(math.sqrt(0.5))
    assert matrix.count[0, 1] == 2


def test_end_masks_mean_over_layers_per_seed_then_over_seeds():
    # seed 0: layer a J=1, layer b J=0 -> 0.5 ; seed 1: layer a J=1/3, layer b J=1 -> 2/3
    seed0 = {"m": {"a": b(T, F), "b": b(T, F)}, "s": {"a": b(T, F), "b": b(F, T)}}
    seed1 = {"m": {"a": b(T, T, F, F), "b": b(T, F)}, "s": {"a": b(F, T, T, F), "b": b(T, F)}}
    matrix = end_mask_matrix([seed0, seed1], ["m", "s", "init"])
    assert matrix.value("m", "s") == pytest.approx((0.5 + 2 / 3) / 2)
    assert matrix.std[0, 1] == pytest.approx(np.std([0.5, 2 / 3], ddof=1))
    # "init" is in neither sample: no value, no count
    assert math.isnan(matrix.value("m", "init")) and matrix.count[0, 2] == 0


def test_over_time_is_not_symmetric():
    own_m = {100: {"m": {"l": b(T, T, F, F)}, "s": {"l": b(T, F, F, F)}}}
    own_s = {100: {"m": {"l": b(F, F, T, T)}, "s": {"l": b(F, F, F, T)}},
             200: {"m": {"l": b(T, F, F, F)}, "s": {"l": b(T, F, F, F)}}}
    result = jaccard_over_time([("m", own_m), ("s", own_s)])
    assert result.rows == ("m", "s") and result.steps == (100, 200)
    m, s = 0, 1
    assert result.mean[m, s, 0] == pytest.approx(0.5)  # {0} vs {0,1}
    assert result.mean[s, m, 0] == pytest.approx(0.5)  # {3} vs {2,3}
    assert result.mean[s, m, 1] == 1.0
    assert math.isnan(result.mean[m, s, 1]) and result.count[m, s, 1] == 0


def test_over_time_needs_own_criterion():
    with pytest.raises(ValueError, match="lacks the run's own criterion 'm'"):
        jaccard_over_time([("m", {5: {"s": {"l": b(T, F)}}})])


def test_retained_and_removed_by_all():
    m1 = {"l": b(T, T, F, F, F, F), "dense": b(T, T)}
    m2 = {"l": b(T, F, T, F, F, F), "dense": b(T, T)}
    # kept by both: {0} of 2 kept each; removed by both: {3, 4, 5} of 4 removed each; "dense" is left out
    assert retained_removed_by_all([m1, m2]) == (pytest.approx(0.5), pytest.approx(0.75))


def test_retained_needs_two_masks():
    with pytest.raises(ValueError, match="at least two"):
        retained_removed_by_all([{"l": b(T)}])
