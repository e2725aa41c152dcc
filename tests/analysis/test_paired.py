"""Paired differences and their tests, against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from dstbench.analysis.paired import NO_TEST, SIGN, WILCOXON, pair_runs, paired_test


def test_few_differing_pairs_take_the_exact_sign_test():
    # 5 of 5 up: P = 2 * (1/2)^5
    result = paired_test([0.01, 0.02, 0.03, 0.04, 0.05])
    assert (result.test, result.n, result.positive, result.negative) == (SIGN, 5, 5, 0)
    assert result.pvalue == pytest.approx(0.0625)
    assert result.mean == pytest.approx(0.03) and result.std == pytest.approx(math.sqrt(0.001 / 4))
    # 5 up, 1 down: P(X >= 5) = (6 + 1) / 64, two-sided 14 / 64
    assert paired_test([1, 2, 3, 4, 5, -6]).pvalue == pytest.approx(14 / 64)


def test_zero_differences_count_as_pairs_but_carry_no_sign():
    result = paired_test([0.01, 0.0, 0.02])
    assert (result.n, result.positive, result.negative, result.test) == (3, 2, 0, SIGN)
    assert result.mean == pytest.approx(0.01) and result.std == pytest.approx(0.01)  # sqrt((0 + 1e-4 + 1e-4) / 2)
    assert result.pvalue == pytest.approx(0.5)  # 2 of 2 up: 2 * 1/4


def test_ten_or_more_differing_pairs_take_the_wilcoxon_signed_rank_test():
    # 10 distinct magnitudes, all up: only 1 of the 2^10 sign patterns has W- = 0; two-sided 2 / 1024
    up = np.arange(1, 11) * 0.01
    result = paired_test(up)
    assert (result.test, result.statistic) == (WILCOXON, 0.0)
    assert result.pvalue == pytest.approx(2 / 1024)
    # the smallest one down: W- = 1, reached by W- = 0 and W- = 1 (one pattern each): two-sided 4 / 1024
    mixed = up.copy()
    mixed[0] = -mixed[0]
    result = paired_test(mixed)
    assert (result.statistic, result.positive, result.negative) == (1.0, 9, 1)
    assert result.pvalue == pytest.approx(4 / 1024)
    # zeros are left out before choosing: 10 zeros and 9 nonzero pairs are still a sign test
    assert paired_test([0.0] * 10 + list(up[:9])).test == SIGN


def test_no_pairs_and_no_difference():
    empty = paired_test([])
    assert (empty.n, empty.test) == (0, NO_TEST) and math.isnan(empty.pvalue) and math.isnan(empty.mean)
    same = paired_test([0.0, 0.0, 0.0])
    assert (same.n, same.test, same.pvalue, same.mean) == (3, NO_TEST, 1.0, 0.0)
    one = paired_test([0.5])
    assert one.n == 1 and math.isnan(one.std) and one.pvalue == 1.0  # 1 of 1 up: two-sided 2 * 1/2


def runs(rows):
    columns = ["run_id", "model", "dataset", "prune", "density", "dropout", "seed", "update_full_layers", "acc"]
    return pd.DataFrame(rows, columns=columns)


def test_runs_pair_seed_by_seed_on_everything_but_the_field():
    table = runs([
        ("a", "mlp", "t", "snip", 0.1, np.nan, 0, False, 0.70),
        ("b", "mlp", "t", "snip", 0.1, np.nan, 0, True, 0.75),
        ("c", "mlp", "t", "snip", 0.1, np.nan, 1, False, 0.60),
        ("d", "mlp", "t", "snip", 0.1, np.nan, 1, True, 0.58),
        ("e", "mlp", "t", "set", 0.1, np.nan, 0, True, 0.90),  # its false twin is missing
        ("f", "mlp", "t", "set", 0.2, np.nan, 0, False, 0.80),  # another density: no partner either
    ])
    pairs, unpaired = pair_runs(table, "update_full_layers", "acc")
    assert unpaired == 2
    assert list(pairs["seed"]) == [0, 1] and set(pairs["prune"]) == {"snip"}
    assert pairs["off"].tolist() == [0.70, 0.60] and pairs["on"].tolist() == [0.75, 0.58]
    assert pairs["difference"].to_numpy() == pytest.approx([0.05, -0.02])
    assert pairs["dropout"].isna().all()  # a missing value is a value: those runs still pair


def test_repeats_of_one_side_are_averaged_and_the_field_must_be_boolean():
    table = runs([
        ("a", "mlp", "t", "snip", 0.1, 0.0, 0, False, 0.70),
        ("b", "mlp", "t", "snip", 0.1, 0.0, 0, True, 0.80),
        ("c", "mlp", "t", "snip", 0.1, 0.0, 0, True, 0.90),  # a repeat differing only in what it recorded
    ])
    pairs, unpaired = pair_runs(table, "update_full_layers", "acc")
    assert unpaired == 0 and pairs["difference"].to_numpy() == pytest.approx([0.15])
    with pytest.raises(ValueError, match="'density' is not a boolean field"):
        pair_runs(table, "density", "acc")
    with pytest.raises(ValueError, match="no field 'amp'"):
        pair_runs(table, "amp", "acc")
