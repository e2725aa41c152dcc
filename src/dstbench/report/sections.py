"""One report section per experiment: which analyses apply (the spec's `kinds`, or inferred from what varies),
their figures and tables, an overview of every condition, and what is missing (unfinished or failed runs)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dstbench.analysis.aggregate import (
    COMPARED_FIELDS,
    CONDITION_FIELDS,
    free_fields,
    parse_rule,
    setting_fields,
    summarize,
)
from dstbench.analysis.results import Results
from dstbench.report import paired, performance, ranking, similarity, tables
from dstbench.report.about import describe
from dstbench.report.context import Context, Item, Note, TableItem, method_label, method_order, with_methods
from dstbench.report.style import metric_label, scale, value_label

KINDS: dict[str, Callable[[Context], list[Item]]] = {
    "accuracy_vs_density": performance.accuracy_vs_density,
    "critical_difference": ranking.critical_difference_kind,
    "loss_gap": performance.loss_gap_kind,
    "update_period": performance.update_period,
    "itop": performance.itop,
    "first_update_jaccard": similarity.first_update_jaccard,
    "end_mask_jaccard": similarity.end_mask_jaccard,
    "jaccard_over_time": similarity.jaccard_over_time,
    "retained_by_all": similarity.retained_by_all,
    "mest_lambda": performance.mest_lambda,
    "sensitivity_vs_reciprocal": performance.sensitivity_vs_reciprocal,
    "global_vs_local": performance.global_vs_local,
    "learning_curves": performance.learning_curves,
    "schedules": performance.schedules,
    "batch_size": performance.batch_size,
    "paired_difference": paired.paired_difference,
    "criteria_table": performance.criteria_table,
}
OVERVIEW_METRICS = ("best_val_test_acc", "final_test_acc", "final_itop")

@dataclass
class Section:
    experiment: str
    kinds: list[str]
    inferred: bool
    done: int
    missing: pd.DataFrame  # run_id, group, status, reason
    items: list[Item] = field(default_factory=list)
    about: list[str] = field(default_factory=list)  # what the section shows (models, data, settings, paper)
    cache: dict[str, Any] = field(default_factory=dict)


def kinds_for(results: Results, experiment: str) -> tuple[list[str], bool]:
    """The spec's report kinds, or (when it names none) those inferred from the runs; and whether inferred."""
    given = results.options(experiment).get("kinds")
    if given:
        return [str(k) for k in given], False
    return infer_kinds(results.done(experiment), results), True


def infer_kinds(runs: pd.DataFrame, results: Results) -> list[str]:
    """Analyses that make sense for these runs, read from what varies and what files they recorded."""
    dst = runs[runs["mode"] == "dst"] if not runs.empty else runs
    if dst.empty:
        return ["loss_gap"] if len(runs) and runs["mode"].nunique() > 1 else []
    varying = set(setting_fields(dst))
    criteria = set(dst["prune"])
    kinds = []
    if "density" in varying:
        kinds.append("accuracy_vs_density")
    if len(criteria) >= 3 and varying - {"prune"}:
        kinds.append("critical_difference")
    if "update_period" in varying:
        kinds += ["update_period", "itop"]
    if "global_pruning" in varying:
        kinds.append("global_vs_local")
    if len({parse_rule(c)[1].get("lam") for c in criteria if c.startswith("mest")}) >= 2:
        kinds.append("mest_lambda")
    if {"sensitivity", "reciprocal_sensitivity"} <= criteria:
        kinds.append("sensitivity_vs_reciprocal")
    if "probe_steps" in dst and (dst["probe_steps"].astype(str) != "[]").any():
        kinds.append("first_update_jaccard")
    if "probe_every" in dst and (dst["probe_every"].fillna(0) > 0).any():
        kinds.append("jaccard_over_time")
    if len(criteria) >= 2 and any(results.run_dir(r).mask_path("final").exists() for r in dst["run_id"]):
        kinds += ["end_mask_jaccard", "retained_by_all"]
    if (runs["mode"] == "dense").any() and "dropout" in runs and runs["dropout"].nunique() > 1:
        kinds.append("loss_gap")
    if not results.metrics.empty and "density" in varying:
        kinds.append("learning_curves")
    return kinds


def build_section(results: Results, experiment: str, out: Path) -> Section:
    """Every figure and table of one experiment; a kind that fails becomes a note, the others still render."""
    kinds, inferred = kinds_for(results, experiment)
    runs = results.done(experiment)
    section = Section(experiment, kinds, inferred, len(runs), results.not_done(experiment),
                      about=describe(results, experiment, runs))
    if runs.empty:
        section.items.append(Note("No finished run: nothing to plot yet."))
        return section
    options = results.options(experiment)
    baselines = options.get("baselines")  # the baseline modes figures show; all where the spec names none
    unknown = sorted(set(baselines or ()) - {"static", "dense"})
    if unknown:
        section.items.append(Note(f"Report option baselines names {unknown}, ignored; valid: static, dense"))
    shown = runs if baselines is None else runs[(runs["mode"] == "dst") | runs["mode"].isin(baselines)]
    ctx = Context(results, experiment, shown, options, out, section.cache)
    section.items.extend(caveats(runs))
    for kind in kinds:
        if kind not in KINDS:
            section.items.append(Note(f"Unknown report kind {kind!r}; valid kinds: {', '.join(KINDS)}"))
            continue
        try:
            section.items.extend(KINDS[kind](ctx))
        except Exception as exc:  # one broken analysis must not take the rest of the report down
            where = traceback.extract_tb(exc.__traceback__)[-1]
            section.items.append(Note(f"{kind}: could not be computed ({type(exc).__name__}: {exc}; at "
                                      f"{Path(where.filename).name}:{where.lineno})"))
    section.items.append(overview(ctx, runs))
    return section


def caveats(runs: pd.DataFrame) -> list[Note]:
    """What limits the comparison: runs that differ in more than the compared fields, or a single seed."""
    notes = []
    other = [f for f in setting_fields(runs) if f not in COMPARED_FIELDS]
    if other:
        notes.append(Note(f"Runs of this experiment also differ in {', '.join(other)}; figures keep them apart "
                          "in separate panels instead of averaging them together."))
    fields = [f for f in CONDITION_FIELDS if f in runs]
    if runs.groupby(fields, dropna=False).size().max() == 1:
        notes.append(Note("Every condition has a single run (one seed): no standard deviations, and ranks and "
                          "tests rest on one run per setting."))
    return notes


def overview(ctx: Context, runs: pd.DataFrame) -> TableItem:
    """Every condition of the experiment (runs differing only in seed) with its main numbers and run count."""
    runs = with_methods(runs)
    fields = setting_fields(runs, exclude={"prune"})
    rows = runs.groupby(["method", *fields], dropna=False, sort=False).ngroup()
    runs = runs.assign(condition=rows)
    labels, keys = {}, {}
    methods = method_order(runs["method"].unique())
    for _, row in runs.drop_duplicates("condition").iterrows():
        shown = [f for f in fields if not _irrelevant(row, f)]
        labels[row["condition"]] = ", ".join([method_label(row["method"]), *(value_label(f, row[f]) for f in shown)])
        # numbers sort as numbers (update period 5, 10, 20, 40, 80; not 10, 20, 40, 5, 80)
        keys[row["condition"]] = (methods.index(row["method"]), *(_sort_key(row[f]) for f in fields))
    metrics = [m for m in OVERVIEW_METRICS if m in runs]
    order = sorted(labels, key=lambda c: keys[c])
    shape = (len(order), len(metrics))
    mean, std, n = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=int)
    for j, metric in enumerate(metrics):
        s = summarize(runs, metric, ["condition"]).set_index("condition")
        for i, c in enumerate(order):
            if c in s.index:
                factor = scale(metric)
                mean[i, j], std[i, j], n[i, j] = s.loc[c, "mean"] * factor, s.loc[c, "std"] * factor, s.loc[c, "n"]
    table = tables.Table(f"All conditions of {ctx.experiment}: mean ± std over seeds (runs)", "condition",
                         "metric", tuple(labels[c] for c in order), tuple(metric_label(m) for m in metrics),
                         mean, std, n, marked=False)
    return ctx.table("overview", table, collapsed=True)


def _sort_key(value: object) -> tuple[int, float, str]:
    """Missing values last, numbers (and booleans) by value, anything else by its text."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return (2, 0.0, "")
    if isinstance(value, bool | int | float | np.number):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _irrelevant(row: pd.Series, field_name: str) -> bool:
    """Fields a baseline ignores are left out of its label (a static run has no growth criterion)."""
    return field_name in free_fields(row["mode"])
