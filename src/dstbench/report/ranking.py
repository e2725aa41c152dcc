"""The critical-difference kind (fig. 3): average ranks of the criteria over settings, for all densities and
split at a density (0.2 in the paper), with the Friedman / Iman-Davenport tests, the Nemenyi CD and the pairwise
Wilcoxon-Holm alternative."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dstbench.analysis.aggregate import setting_fields
from dstbench.analysis.ranks import (
    average_ranks,
    block_scores,
    critical_difference,
    friedman_test,
    nonsignificant_groups,
    wilcoxon_holm,
)
from dstbench.report import tables
from dstbench.report.context import Context, FigureItem, Item, Note
from dstbench.report.diagrams import CDPanel, cd_figure
from dstbench.report.style import criterion_label


def subsets(dst: pd.DataFrame, splits: list[float]) -> list[tuple[str, pd.DataFrame]]:
    """All runs, and for each split with runs on both sides, those at or below it and those above (fig. 3a-c)."""
    out = [("all densities", dst)]
    for split in splits:
        low, high = dst[dst["density"] <= split], dst[dst["density"] > split]
        if len(low) and len(high):  # a split with one empty side repeats "all densities"
            out += [(f"densities ≤ {split:g}", low), (f"densities > {split:g}", high)]
    return out


def critical_difference_kind(ctx: Context) -> list[Item]:
    metric = ctx.option("critical_difference", "metric", "best_val_test_acc")
    alpha = float(ctx.option("critical_difference", "alpha", 0.05))
    splits = [float(v) for v in ctx.option("critical_difference", "density_splits", [0.2])]
    dst = ctx.runs[ctx.runs["mode"] == "dst"]
    if dst.empty or dst["prune"].nunique() < 2:
        return [Note("Critical difference: needs finished DST runs of at least two criteria")]
    blocks = setting_fields(dst, exclude={"prune"})
    panels, notes, stats, rank_columns = [], [], [], {}
    wilcoxon_items: list[Item] = []
    for name, part in subsets(dst, splits):
        scores, dropped = block_scores(part, metric, blocks)
        if dropped:
            notes.append(Note(f"Critical difference ({name}): {len(dropped)} setting(s) left out because some "
                              f"criterion has no finished run there: {_blocks_text(blocks, dropped)}"))
        if scores.shape[0] < 1 or scores.shape[1] < 2:
            notes.append(Note(f"Critical difference ({name}): no setting has every criterion; nothing to rank"))
            continue
        ranks = average_ranks(scores)
        k, n = scores.shape[1], scores.shape[0]
        cd = critical_difference(k, n, alpha)
        panels.append(CDPanel(name, ranks, cd, tuple(nonsignificant_groups(ranks, cd)), n))
        rank_columns[name] = (ranks, n)
        stats.append(_friedman_text(name, scores))
        if n >= 2 and name == "all densities":
            wilcoxon_items.append(ctx.table("wilcoxon_holm", _wilcoxon_table(scores, alpha)))
    if not panels:
        return notes
    paths = cd_figure(panels, ctx.stem("critical_difference"))
    caption = (f"Average rank of each criterion by {metric} (mean over seeds) within each setting of "
               f"{', '.join(blocks) or 'the experiment'}; rank 1 is best. Criteria joined by a thick bar are not "
               f"significantly different (Nemenyi, α = {alpha:g}). " + " ".join(stats))
    items: list[Item] = [FigureItem("Critical difference diagrams", caption, tuple(paths))]
    items.append(ctx.table("average_ranks", _rank_table(rank_columns)))
    return items + wilcoxon_items + notes


def _friedman_text(name: str, scores: pd.DataFrame) -> str:
    try:
        result = friedman_test(scores)
    except ValueError as exc:
        return f"{name.capitalize()}: no Friedman test ({exc})."
    return (f"{name.capitalize()}: Friedman χ² = {result.statistic:.2f}, p = {result.pvalue:.3g}; Iman-Davenport "
            f"F = {result.iman_davenport:.2f}, p = {result.iman_davenport_pvalue:.3g} "
            f"(N = {result.n_blocks} settings, k = {result.n_criteria} criteria).")


def _rank_table(columns: dict[str, tuple[pd.Series, int]]) -> tables.Table:
    criteria = list(next(iter(columns.values()))[0].index)
    for ranks, _ in columns.values():
        criteria += [c for c in ranks.index if c not in criteria]
    shape = (len(criteria), len(columns))
    mean, n = np.full(shape, np.nan), np.zeros(shape, dtype=int)
    for j, (ranks, blocks) in enumerate(columns.values()):
        for i, c in enumerate(criteria):
            if c in ranks.index:
                mean[i, j], n[i, j] = ranks[c], blocks
    return tables.Table("Average rank (lower is better; n: settings ranked)", "criterion", "subset",
                        tuple(criterion_label(c) for c in criteria), tuple(columns), mean, np.full(shape, np.nan),
                        n, higher_is_better=False)


def _wilcoxon_table(scores: pd.DataFrame, alpha: float) -> tables.Table:
    result = wilcoxon_holm(scores, alpha)
    rows = tuple(f"{criterion_label(a)} vs {criterion_label(b)}" for a, b in zip(result["a"], result["b"],
                                                                              strict=True))
    mean = result[["mean_difference", "p", "p_holm"]].to_numpy(float)
    n = np.full(mean.shape, len(scores), dtype=int)
    return tables.Table(f"Pairwise Wilcoxon signed-rank tests over settings, Holm-corrected (α = {alpha:g}); "
                        "difference = first minus second", "pair", "statistic", rows,
                        ("mean difference", "p", "p (Holm)"), mean, np.full(mean.shape, np.nan), n,
                        marked=False, digits=4)


def _blocks_text(fields: list[str], dropped: list[tuple]) -> str:
    shown = ["(" + ", ".join(f"{f}={v}" for f, v in zip(fields, key, strict=False)) + ")" for key in dropped[:5]]
    return ", ".join(shown) + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else "")
