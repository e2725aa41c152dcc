"""The paired_difference kind: does one boolean config field matter? Runs differing only in that field (the
spec's ``[report.paired_difference] field``, e.g. ``update_full_layers``) are paired seed by seed; per model and
data set, and over all of them, the mean difference (true minus false) with its std, the number of pairs and a
paired test (dstbench.analysis.paired); then one plain sentence: the field matters, or does not, at the chosen
alpha (option ``alpha``, default 0.05), judged on all pairs together."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from dstbench.analysis.aggregate import CONDITION_FIELDS
from dstbench.analysis.paired import MIN_WILCOXON, NO_TEST, PairedTest, pair_runs, paired_test
from dstbench.analysis.ranks import holm
from dstbench.report import tables
from dstbench.report.context import Context, Item, Note
from dstbench.report.style import lower_first, metric_label, panel_title, scale

KIND = "paired_difference"
ALL = "all"


@dataclass(frozen=True)
class GroupResult:
    """The pairs of one model and data set (or of all, title ALL): their test and its Holm-corrected p-value."""

    title: str
    test: PairedTest
    p_holm: float = float("nan")  # corrected across the groups; nan for ALL or a single group


@dataclass(frozen=True)
class Analysis:
    field: str
    metric: str
    alpha: float
    groups: tuple[GroupResult, ...]  # per model and data set, then ALL
    unpaired: int

    @property
    def sentence(self) -> str:
        significant = tuple(g.title for g in self.groups[:-1] if g.p_holm < self.alpha)  # nan is never below
        return verdict(self.groups[-1].test, self.field, self.metric, self.alpha, significant)


def analyse(ctx: Context) -> Analysis | str:
    """The paired comparison of the section's DST runs, or why there is none."""
    metric = ctx.option(KIND, "metric", "best_val_test_acc")
    alpha = float(ctx.option(KIND, "alpha", 0.05))
    dst = ctx.runs[ctx.runs["mode"] == "dst"].drop_duplicates("run_id")
    field = ctx.option(KIND, "field") or only_boolean_field(dst)
    if field is None:
        return ("name the boolean field whose two values to compare, e.g. [report.paired_difference] "
                "field = \"update_full_layers\"")
    pairs, unpaired = pair_runs(dst, field, metric)
    if pairs.empty:
        return f"no two finished DST runs differ only in {field}"
    return Analysis(field, metric, alpha, tuple(compare(pairs)), unpaired)


def paired_difference(ctx: Context) -> list[Item]:
    analysis = analyse(ctx)
    if isinstance(analysis, str):
        return [Note(f"Paired difference: {analysis}")]
    items: list[Item] = [ctx.table(KIND, table(analysis), note=analysis.sentence)]
    if analysis.unpaired:
        items.append(Note(f"Paired difference: {analysis.unpaired} condition(s) and seed(s) have a finished run "
                          f"with only one value of {analysis.field}; left out."))
    return items


def compare(pairs: pd.DataFrame, by: tuple[str, ...] = ("model", "dataset")) -> list[GroupResult]:
    """A result per value of `by` (p-values Holm-corrected across them when there are several), then ALL."""
    keys = [f for f in by if f in pairs.columns]
    groups = []
    for key, group in (pairs.groupby(keys, dropna=False, sort=True) if keys else []):
        key = key if isinstance(key, tuple) else (key,)
        groups.append(GroupResult(panel_title(tuple(zip(keys, key, strict=True))), paired_test(group["difference"])))
    if len(groups) > 1:
        corrected = holm([g.test.pvalue for g in groups])
        groups = [replace(g, p_holm=float(p)) for g, p in zip(groups, corrected, strict=True)]
    return [*groups, GroupResult(ALL, paired_test(pairs["difference"]))]


def verdict(test: PairedTest, field: str, metric: str, alpha: float,
            significant_groups: tuple[str, ...] = ()) -> str:
    """One sentence: whether `field` matters at `alpha`, by how much and on how many pairs. When it does not
    overall, the groups where it does on their own (Holm-corrected) are named."""
    if test.n == 0:
        return f"No pair of runs differs only in {field}: nothing says whether it matters."
    matters = bool(np.isfinite(test.pvalue) and test.pvalue < alpha)
    factor = scale(metric)
    unit = " points" if factor == 100.0 else ""
    what = lower_first(metric_label(metric).split(" (")[0])
    sentence = (f"At α = {alpha:g}, {field} {'matters' if matters else 'does not matter'}: with {field} = true, "
                f"{what} changes by {test.mean * factor:+.2f}{unit} on average ({test.n} pairs, {p_text(test)})")
    if significant_groups and not matters:
        sentence += f", though it does for {', '.join(significant_groups)} on its own (Holm-corrected)"
    return sentence + "."


def p_text(test: PairedTest) -> str:
    """'Wilcoxon signed-rank p = 0.0123', 'sign test p = 0.125' or 'no pair differs'."""
    if test.test == NO_TEST:
        return "no pair differs"
    return f"{test.test} p = {test.pvalue:.3g}"


def table(analysis: Analysis) -> tables.Table:
    """Rows: the groups and ALL; columns: the mean difference ± std (pairs), p and Holm's p."""
    factor = scale(analysis.metric)
    groups = analysis.groups
    mean = np.array([[g.test.mean * factor, g.test.pvalue, g.p_holm] for g in groups], dtype=float)
    std = np.full_like(mean, np.nan)
    std[:, 0] = [g.test.std * factor for g in groups]
    n = np.zeros(mean.shape, dtype=int)
    n[:, 0] = [g.test.n for g in groups]
    tests = sorted({g.test.test for g in groups} - {NO_TEST})
    title = (f"{metric_label(analysis.metric)}: {analysis.field} = true minus false, mean ± std over pairs "
             f"(pairs); p: {' or '.join(tests) or 'no test'}, two-sided (the sign test below {MIN_WILCOXON} "
             f"differing pairs)" + (", Holm-corrected across the groups" if len(groups) > 2 else ""))
    return tables.Table(title, "model / data set", "statistic", tuple(g.title for g in groups),
                        ("difference", "p", "p (Holm)"), mean, std, n, marked=False, digits=4)


def only_boolean_field(dst: pd.DataFrame) -> str | None:
    """The one condition field of these runs that holds both true and false, if exactly one does."""
    candidates = [f for f in CONDITION_FIELDS if f in dst.columns and dst[f].dtype == bool
                  and set(dst[f].tolist()) == {True, False}]
    return candidates[0] if len(candidates) == 1 else None
