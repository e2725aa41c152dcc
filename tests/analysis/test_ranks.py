import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dstbench.analysis.ranks import (
    average_ranks,
    block_scores,
    critical_difference,
    friedman_test,
    holm,
    nemenyi_q,
    nonsignificant_groups,
    rank_table,
    wilcoxon_holm,
)


def scores(rows, columns=("A", "B", "C")):
    return pd.DataFrame(rows, columns=list(columns))


def test_hand_computed_rank_table_with_ties():
    table = scores([[0.9, 0.8, 0.7], [0.8, 0.8, 0.9], [0.7, 0.9, 0.8]])
    assert rank_table(table).to_numpy().tolist() == [[1, 2, 3], [2.5, 2.5, 1], [3, 1, 2]]
    ranks = average_ranks(table)
    assert list(ranks.index) == ["B", "C", "A"]
    assert ranks.to_dict() == pytest.approx({"A": 6.5 / 3, "B": 5.5 / 3, "C": 2.0})


def test_average_ranks_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no complete block"):
        average_ranks(pd.DataFrame())


@pytest.mark.parametrize(("k", "published"), [(3, 2.343), (5, 2.728), (10, 3.164)])
def test_nemenyi_q_matches_published_critical_values(k, published):
    assert nemenyi_q(k, 0.05) == pytest.approx(published, abs=1e-3)  # tables give 3 decimals


def test_nemenyi_q_alpha_010_for_five_criteria():
    assert nemenyi_q(5, 0.10) == pytest.approx(2.459, abs=1e-3)  # Demsar 2006, table 5(b)


def test_critical_difference_of_demsars_example():
    # Demsar 2006, sec. 3.2.4: four classifiers on 14 data sets, CD = 2.569 * sqrt(4*5/(6*14)) = 1.25
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)
    assert critical_difference(5, 10) == pytest.approx(2.728 * math.sqrt(30 / 60), abs=1e-3)


def test_critical_difference_rejects_bad_counts():
    with pytest.raises(ValueError, match="at least 2 criteria"):
        nemenyi_q(1)
    with pytest.raises(ValueError, match="at least one block"):
        critical_difference(3, 0)


def test_friedman_matches_scipy_and_demsars_formula_without_ties():
    table = scores([[0.9, 0.8, 0.7], [0.7, 0.9, 0.8], [0.95, 0.85, 0.6], [0.9, 0.7, 0.8], [0.8, 0.75, 0.7]])
    result = friedman_test(table)
    chi2, p = stats.friedmanchisquare(*table.to_numpy().T)
    assert (result.statistic, result.pvalue) == pytest.approx((chi2, p))
    n, k = table.shape
    r = average_ranks(table).to_numpy()
    demsar = 12 * n / (k * (k + 1)) * (np.sum(r**2) - k * (k + 1) ** 2 / 4)
    assert result.statistic == pytest.approx(demsar)
    f = (n - 1) * demsar / (n * (k - 1) - demsar)
    assert result.iman_davenport == pytest.approx(f)
    assert result.iman_davenport_pvalue == pytest.approx(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))
    assert (result.n_blocks, result.n_criteria) == (5, 3)


def test_friedman_needs_three_criteria_and_two_blocks():
    with pytest.raises(ValueError, match="at least 3 criteria and 2 blocks, got 2 criteria"):
        friedman_test(scores([[1, 2], [2, 1]], columns=("A", "B")))


def test_groups_within_the_critical_difference():
    ranks = pd.Series({"D": 3.0, "A": 1.0, "C": 2.6, "B": 1.5})
    assert nonsignificant_groups(ranks, 1.2) == [("A", "B"), ("B", "C"), ("C", "D")]
    assert nonsignificant_groups(ranks, 2.5) == [("A", "B", "C", "D")]
    assert nonsignificant_groups(ranks, 0.1) == []


def test_holm_hand_computed():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    out = holm([float("nan"), 0.02])
    assert math.isnan(out[0]) and out[1] == pytest.approx(0.02)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_holm_is_monotone_and_not_below_raw(p):
    adjusted = holm(p)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= -1e-12)
    assert np.all(adjusted >= np.asarray(p) - 1e-12) and np.all(adjusted <= 1.0)


def test_wilcoxon_holm_matches_scipy():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, size=10)
    table = pd.DataFrame({"A": base + 0.02, "B": base + rng.normal(0, 0.01, 10), "C": base})
    result = wilcoxon_holm(table)
    assert list(zip(result["a"], result["b"], strict=True)) == [("A", "B"), ("A", "C"), ("B", "C")]
    raw = [stats.wilcoxon(table[a], table[b]).pvalue for a, b in [("A", "B"), ("A", "C"), ("B", "C")]]
    assert result["p"].tolist() == pytest.approx(raw)
    assert result["p_holm"].tolist() == pytest.approx(holm(raw).tolist())
    assert bool(result.loc[1, "significant"])  # A beats C by 0.02 in all ten blocks


def test_wilcoxon_of_identical_columns_is_not_significant():
    table = scores([[0.5, 0.5, 0.4], [0.6, 0.6, 0.7], [0.7, 0.7, 0.6]])
    row = wilcoxon_holm(table).iloc[0]
    assert row["p"] == 1.0 and not row["significant"]


def test_block_scores_average_seeds_and_drop_incomplete_blocks():
    df = pd.DataFrame(
        [
            ("m", 0.1, "a", 0, 0.5), ("m", 0.1, "a", 1, 0.7), ("m", 0.1, "b", 0, 0.4),
            ("m", 0.2, "a", 0, 0.8),  # criterion b missing at density 0.2
        ],
        columns=["model", "density", "prune", "seed", "acc"],
    )
    table, dropped = block_scores(df, "acc", ["model", "density"])
    assert table.to_dict("index") == {("m", 0.1): {"a": pytest.approx(0.6), "b": pytest.approx(0.4)}}
    assert dropped == [("m", 0.2)]


def test_block_scores_without_block_fields_is_one_block():
    df = pd.DataFrame({"prune": ["a", "a", "b"], "seed": [0, 1, 0], "acc": [0.5, 0.7, 0.4]})
    table, dropped = block_scores(df, "acc", [])
    assert table.shape == (1, 2) and dropped == []
    assert table.iloc[0].tolist() == pytest.approx([0.6, 0.4])
