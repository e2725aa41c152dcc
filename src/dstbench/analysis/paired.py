"""Paired comparisons: runs that differ only in one boolean config field (e.g. ``update_full_layers``).

Two runs form a pair when every condition field but `field` and the seed are equal and one has `field` true,
the other false; their difference is the metric of the true run minus that of the false one. A paired test then
asks whether the differences are centred on zero: the Wilcoxon signed-rank test (scipy) when at least
`MIN_WILCOXON` pairs differ, else the exact sign test (a binomial test on how many differences are positive),
which needs no ranks: with few pairs, and the ties that accuracies on small test sets make, the signed-rank
test's normal approximation is poor. Pairs whose difference is zero carry no sign and are left out of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from dstbench.analysis.aggregate import CONDITION_FIELDS

MIN_WILCOXON = 10  # fewer nonzero differences: the sign test
WILCOXON, SIGN, NO_TEST = "Wilcoxon signed-rank", "sign test", "no test"


@dataclass(frozen=True)
class PairedTest:
    """The differences of one set of pairs: their mean, sample std, signs, and a two-sided paired test."""

    n: int  # pairs
    mean: float  # mean difference (true minus false); nan without pairs
    std: float  # sample std of the differences; nan below two pairs
    positive: int
    negative: int
    test: str  # WILCOXON, SIGN, or NO_TEST (no pair, or no pair differs)
    statistic: float
    pvalue: float  # nan without pairs; 1 when no pair differs


def boolean_values(runs: pd.DataFrame, field: str) -> pd.Series:
    """`field` of each run as a bool; a ValueError when it is no column or holds anything but true and false."""
    if field not in runs.columns:
        raise ValueError(f"the runs have no field {field!r}")
    values = runs[field]
    bad = sorted({repr(v) for v in values if not isinstance(v, (bool, np.bool_))})
    if bad:
        raise ValueError(f"{field!r} is not a boolean field: it holds {', '.join(bad[:5])}")
    return values.astype(bool)


def pair_runs(runs: pd.DataFrame, field: str, metric: str) -> tuple[pd.DataFrame, int]:
    """The pairs of `runs` differing only in `field`: one line per (condition without `field`, seed) with both
    sides, holding the key fields, ``off`` and ``on`` (the metric with `field` false and true) and
    ``difference`` (on minus off). Also the number of runs left without a partner (their other side missing or
    unfinished). Repeats of one side (runs differing only in recorded fields) are averaged."""
    values = boolean_values(runs, field)
    data = runs.assign(**{field: values}).dropna(subset=[metric])
    keys = [f for f in (*CONDITION_FIELDS, "seed") if f in data.columns and f != field]
    columns = [*keys, "off", "on", "difference"]
    if data.empty:
        return pd.DataFrame(columns=columns), 0
    # missing values are grouping values too: a field one model lacks must not drop its runs
    sides = data.groupby([*keys, field], dropna=False, sort=True)[metric].mean().unstack(field)
    for side in (False, True):
        if side not in sides.columns:
            sides[side] = np.nan
    complete = sides[False].notna() & sides[True].notna()
    unpaired = int((~complete).sum())
    both = sides[complete]
    pairs = both.index.to_frame(index=False)
    pairs["off"], pairs["on"] = both[False].to_numpy(float), both[True].to_numpy(float)
    pairs["difference"] = pairs["on"] - pairs["off"]
    return pairs[columns], unpaired


def paired_test(differences: Sequence[float] | np.ndarray, min_wilcoxon: int = MIN_WILCOXON) -> PairedTest:
    """Mean, std and signs of `differences` and the two-sided paired test (see the module's docstring)."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    std = float(d.std(ddof=1)) if n > 1 else float("nan")
    nonzero = d[~np.isclose(d, 0.0, rtol=0.0, atol=1e-12)]
    positive, negative = int((nonzero > 0).sum()), int((nonzero < 0).sum())
    if n == 0:
        return PairedTest(0, mean, std, 0, 0, NO_TEST, float("nan"), float("nan"))
    if not len(nonzero):
        return PairedTest(n, mean, std, 0, 0, NO_TEST, float("nan"), 1.0)
    if len(nonzero) < min_wilcoxon:
        result = stats.binomtest(positive, positive + negative, 0.5)
        return PairedTest(n, mean, std, positive, negative, SIGN, float(positive), float(result.pvalue))
    result = stats.wilcoxon(nonzero)
    return PairedTest(n, mean, std, positive, negative, WILCOXON, float(result.statistic), float(result.pvalue))
