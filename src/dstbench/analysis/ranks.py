"""Ranking criteria over many settings and testing whether the ranks differ (paper fig. 3; Demsar 2006).

The input is a score table: one row per block (a setting such as model, dataset, growth and density), one column
per criterion, each cell the mean accuracy over seeds. Within a block the best criterion gets rank 1 and ties
share the average of their ranks. The Friedman test asks whether any ranks differ; the Nemenyi critical
difference says how far two average ranks must be apart to differ at level alpha; the pairwise Wilcoxon
signed-rank test with Holm's correction is the alternative Benavoli et al. (2016) recommend.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats


def block_scores(
    df: pd.DataFrame, metric: str, blocks: Sequence[str], criterion: str = "prune"
) -> tuple[pd.DataFrame, list[tuple]]:
    """Mean of `metric` over seeds per (block, criterion), as blocks x criteria; plus the incomplete blocks dropped.

    A block lacking any criterion (a failed or missing run) cannot be ranked fairly against the others and is
    dropped; the dropped block keys are returned so the caller can say so.
    """
    if df.empty:
        return pd.DataFrame(), []
    keys = list(blocks)
    means = df.groupby(keys + [criterion], dropna=False)[metric].mean()
    table = means.unstack(criterion) if keys else means.to_frame().T
    complete = table.notna().all(axis=1)
    dropped = [idx if isinstance(idx, tuple) else (idx,) for idx in table.index[~complete]]
    return table[complete].sort_index(axis=1), dropped


def rank_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Ranks within each block (row): 1 = highest score, ties get the average of the ranks they span."""
    ranks = np.apply_along_axis(lambda row: stats.rankdata(-row, method="average"), 1, scores.to_numpy(float))
    return pd.DataFrame(ranks, index=scores.index, columns=scores.columns)


def average_ranks(scores: pd.DataFrame) -> pd.Series:
    """Average rank of each criterion over the blocks, best (lowest) first."""
    if scores.empty:
        raise ValueError("no complete block to rank: every block lacks at least one criterion's result")
    return rank_table(scores).mean(axis=0).sort_values(kind="stable")


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float
    pvalue: float
    iman_davenport: float
    iman_davenport_pvalue: float
    n_blocks: int
    n_criteria: int


def friedman_test(scores: pd.DataFrame) -> FriedmanResult:
    """Friedman's chi-square over the blocks (scipy) and the less conservative Iman-Davenport F.

    F = (N-1) chi2 / (N(k-1) - chi2) with (k-1, (k-1)(N-1)) degrees of freedom (Demsar 2006, sec. 3.2.2).
    """
    n, k = scores.shape
    if k < 3 or n < 2:
        raise ValueError(f"the Friedman test needs at least 3 criteria and 2 blocks, got {k} criteria, {n} blocks")
    chi2, p = stats.friedmanchisquare(*scores.to_numpy(float).T)
    denominator = n * (k - 1) - chi2
    if denominator <= 0:
        f_stat, f_p = float("inf"), 0.0
    else:
        f_stat = (n - 1) * chi2 / denominator
        f_p = float(stats.f.sf(f_stat, k - 1, (k - 1) * (n - 1)))
    return FriedmanResult(float(chi2), float(p), float(f_stat), f_p, n, k)


@lru_cache(maxsize=64)
def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_alpha of the Nemenyi test: the studentized range quantile for k groups and infinite df, over sqrt(2)."""
    if k < 2:
        raise ValueError(f"the Nemenyi test compares at least 2 criteria, got {k}")
    return float(stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0))


def critical_difference(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi CD = q_alpha * sqrt(k (k+1) / (6 N)): average ranks further apart than this differ."""
    if n_blocks < 1:
        raise ValueError(f"the critical difference needs at least one block, got {n_blocks}")
    return nemenyi_q(k, alpha) * float(np.sqrt(k * (k + 1) / (6.0 * n_blocks)))


def nonsignificant_groups(ranks: pd.Series, cd: float) -> list[tuple[str, ...]]:
    """Maximal runs of criteria (in rank order) whose ranks lie within `cd`: the thick bars of a CD diagram."""
    ordered = ranks.sort_values(kind="stable")
    names, values = list(ordered.index), ordered.to_numpy(float)
    spans = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and values[j + 1] - values[i] <= cd:
            j += 1
        if j > i and not any(s <= i and j <= e for s, e in spans):
            spans.append((i, j))
    return [tuple(names[s : e + 1]) for s, e in spans]


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1); nan stays nan."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p[index]))
        adjusted[index] = running
    return adjusted


def wilcoxon_holm(scores: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Pairwise Wilcoxon signed-rank tests over blocks, Holm-corrected; one row per pair of criteria.

    Pairs whose scores are equal in every block get p = 1 (no evidence of a difference).
    """
    rows = []
    for a, b in itertools.combinations(scores.columns, 2):
        x, y = scores[a].to_numpy(float), scores[b].to_numpy(float)
        if np.allclose(x, y):
            statistic, p = float("nan"), 1.0
        else:
            result = stats.wilcoxon(x, y)
            statistic, p = float(result.statistic), float(result.pvalue)
        rows.append({"a": a, "b": b, "statistic": statistic, "p": p, "mean_difference": float(np.mean(x - y))})
    table = pd.DataFrame(rows, columns=["a", "b", "statistic", "p", "mean_difference"])
    table["p_holm"] = holm(table["p"].to_numpy()) if len(table) else []
    table["significant"] = table["p_holm"] < alpha
    return table
