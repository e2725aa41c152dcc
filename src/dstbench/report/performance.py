"""Report kinds about accuracy and training: accuracy vs density (fig. 1, 12, 22), vs update period (fig. 5, 16),
ITOP (fig. 11), critical-difference ranks (fig. 3), loss gap (fig. 4), learning curves (fig. 23-30), global vs
local pruning (fig. 15), MEST lambda (fig. 7) and sensitivity vs reciprocal sensitivity (fig. 8).

Each kind takes a `Context` and returns items; what it cannot compute becomes a `Note` saying why.
"""

from __future__ import annotations

from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd

from dstbench.analysis.aggregate import (
    curves,
    free_fields,
    loss_gap,
    parse_rule,
    setting_fields,
    sort_criteria,
    summarize,
)
from dstbench.analysis.structure import PanelKey
from dstbench.report import tables
from dstbench.report.context import (
    Context,
    FigureItem,
    Item,
    Note,
    counts_caption,
    method_colour,
    method_label,
    method_order,
    panel_groups,
)
from dstbench.report.plots import (
    Line,
    Panel,
    Point,
    Stat,
    collapsed,
    line_figure,
    loss_gap_figure,
    scatter_figure,
)
from dstbench.report.style import (
    axis_label,
    colour,
    criterion_label,
    lower_first,
    metric_label,
    panel_title,
    scale,
    value_label,
)

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LOG_FIELDS = frozenset({"density", "update_period", "batch_size", "update_batch_size"})


def metric_vs(ctx: Context, kind: str, x: str, metric: str, title: str, *, baselines: bool = True,
              colours: dict[str, str] | None = None, note: str = "") -> list[Item]:
    """Mean +- std of `metric` against field `x`, lines per criterion, static and dense as dashed baselines.

    Where `x` takes a single value (e.g. fig. 2: one density), each criterion is a bar instead. `colours`
    overrides the palette for some methods (e.g. a colour ramp over MEST's lambda); `note` ends the caption.
    """
    dst = ctx.runs[ctx.runs["mode"] == "dst"]
    if dst.empty:
        return [Note(f"{title}: the experiment has no finished DST runs")]
    single = dst[x].nunique(dropna=True) < 2
    panels, items, counts = [], [], []
    for i, (key, group) in enumerate(panel_groups(ctx.runs, exclude=(x, "prune"))):
        panel, summary = _metric_panel(group, key, metric, x, baselines, colours or {})
        panels.append(replace(panel, as_bars=single, title=panel.title or value_label(x, dst[x].iloc[0]))
                      if single else panel)
        counts.extend(summary["n"])
        level_text = "; ".join(f"{lv.label}: {lv.mean:.2f}" + (f" ± {lv.std:.2f}" if np.isfinite(lv.std) else "")
                               + f" ({lv.n})" for lv in panel.levels)
        table = tables.from_summary(
            summary, "method", x, title=f"{title}: {panel_title(key) or ctx.experiment}", scale=scale(metric),
            row_label=method_label, column_label=lambda v: value_label(x, v).split("=")[-1],
            row_order=method_order(summary["method"].unique()))
        items.append(ctx.table(f"{kind}_{i + 1}", table, note=level_text))
    paths = line_figure(panels, ctx.stem(kind))
    against = f"at {value_label(x, dst[x].iloc[0])}" if single else f"against {lower_first(axis_label(x))}"
    baseline_text = "; dashed: " + " and ".join(shown_baselines(panels)) if shown_baselines(panels) else ""
    caption = (f"{metric_label(metric)} {against}: mean ± std over seeds ({counts_caption(counts)}){baseline_text}. "
               f"{collapsed_caption(panels, x)}{note}").strip()
    return [FigureItem(title, caption, tuple(paths)), *items]


def shown_baselines(panels: list[Panel]) -> list[str]:
    """The baselines drawn dashed in any panel (static, dense...), in the order first drawn."""
    names = [line.label for p in panels for line in p.lines if line.dashed] + [lv.label for p in panels
                                                                                  for lv in p.levels]
    return list(dict.fromkeys(names))


def collapsed_caption(panels: list[Panel], x: str) -> str:
    """What the figure leaves below its cut axes (`plots.collapsed`), or ""."""
    low = [(p.title, c) for p in panels for c in collapsed(p)]
    if not low:
        return ""
    shown = "; ".join(f"{c.label} in {title or 'the panel'} at {value_label(x, c.x)}: {c.mean:.1f}"
                      for title, c in low)
    return (f"▼: a mean far below the others (collapsed), drawn at the bottom of a cut axis so that the other lines "
            f"stay apart ({shown}). ")


def _metric_panel(group: pd.DataFrame, key: PanelKey, metric: str, x: str, baselines: bool,
                  colours: dict[str, str]) -> tuple[Panel, pd.DataFrame]:
    """One panel's lines (criteria; static where it varies along x) and levels (baselines fixed along x)."""
    factor = scale(metric)
    lines, levels, summaries = [], [], []
    for method in method_order(group["method"].unique()):
        rows = group[group["method"] == method]
        mode = rows["mode"].iloc[0]
        if mode != "dst" and not baselines:
            continue
        if x in free_fields(mode):
            s = summarize(rows, metric, [])
            if not s.empty:
                levels.append(Stat(method_label(method), method_colour(method), s["mean"][0] * factor,
                                    s["std"][0] * factor, int(s["n"][0])))
            continue
        s = summarize(rows, metric, [x])
        if s.empty:
            continue
        lines.append(Line(method_label(method), colours.get(method, method_colour(method)), s[x].to_numpy(float),
                          s["mean"].to_numpy(float) * factor, s["std"].to_numpy(float) * factor,
                          s["n"].to_numpy(int), dashed=mode != "dst"))
        summaries.append(s.assign(method=method))
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(
        columns=["method", x, "mean", "std", "n"])
    panel = Panel(panel_title(key), axis_label(x), metric_label(metric), tuple(lines), tuple(levels),
                  log_x=x in LOG_FIELDS, cut_collapsed=True)
    return panel, summary


def accuracy_vs_density(ctx: Context) -> list[Item]:
    metric = ctx.option("accuracy_vs_density", "metric", "best_val_test_acc")
    return metric_vs(ctx, "accuracy_vs_density", "density", metric, "Accuracy vs density")


def criteria_table(ctx: Context) -> list[Item]:
    """The paper's tables 5 and 6: criteria (rows) x density (columns, highest first), one table per panel (e.g.
    per growth rule), mean (std) over runs, the best of each density bold and the second underlined."""
    metric = ctx.option("criteria_table", "metric", "best_val_test_acc")
    items: list[Item] = []
    for i, (key, group) in enumerate(panel_groups(ctx.runs, exclude=("density", "prune"))):
        s = summarize(group[group["mode"] == "dst"], metric, ["method", "density"])
        table = tables.from_summary(
            s, "method", "density", title=f"{metric_label(metric)}: {panel_title(key) or ctx.experiment}",
            scale=scale(metric), row_label=method_label, column_label=lambda v: f"{v:g}",
            row_order=method_order(s["method"].unique()), column_order=sorted(s["density"].unique(), reverse=True),
            paper_form=True)
        items.append(ctx.table(f"criteria_table_{i + 1}", table))
    return items or [Note("criteria_table: the experiment has no finished DST runs")]


def batch_size(ctx: Context) -> list[Item]:
    metric = ctx.option("batch_size", "metric", "best_val_test_acc")
    dst = ctx.runs[ctx.runs["mode"] == "dst"]
    x = "density" if not dst.empty and dst["density"].nunique() > 1 else "batch_size"
    return metric_vs(ctx, "batch_size", x, metric, "Accuracy per batch size")


def update_period(ctx: Context) -> list[Item]:
    metric = ctx.option("update_period", "metric", "best_val_acc")
    return metric_vs(ctx, "update_period", "update_period", metric, "Accuracy vs update period")


def schedules(ctx: Context) -> list[Item]:
    """Fig. 16: update period per schedule (panels), and the best update period of each criterion per setting.

    Appendix J asks whether the schedule or batch size moves the best update period; the table answers it.
    The figure is left out when the section also has the update_period kind, which draws the same panels.
    """
    metric = ctx.option("schedules", "metric", "best_val_acc")
    with_figure = "update_period" not in (ctx.options.get("kinds") or [])
    items = metric_vs(ctx, "schedules", "update_period", metric, "Update period per prune-fraction schedule") \
        if with_figure else []
    dst = ctx.runs[ctx.runs["mode"] == "dst"]
    if dst.empty or dst["update_period"].nunique() < 2:
        return items or [Note("Schedules: needs finished DST runs at two or more update periods")]
    fields = setting_fields(dst, exclude={"prune", "update_period"})
    s = summarize(dst, metric, ["prune", *fields, "update_period"])
    best = s.loc[s.groupby(["prune", *fields], dropna=False)["mean"].idxmax()]
    best = best.assign(setting=[panel_title(tuple((f, row[f]) for f in fields)) or "all"
                                for _, row in best.iterrows()])
    table = tables.from_summary(best.assign(mean=best["update_period"], std=np.nan), "prune", "setting",
                                title=f"Update period Δt with the best {lower_first(metric_label(metric))}", marked=False,
                                row_label=criterion_label, row_order=sort_criteria(best["prune"].unique()),
                                digits=0)
    return items + [ctx.table("best_update_period", table)]


def itop(ctx: Context) -> list[Item]:
    return metric_vs(ctx, "itop", "update_period", "final_itop", "ITOP at the end of training vs update period",
                     baselines=False)


def loss_gap_kind(ctx: Context) -> list[Item]:
    """Fig. 4: validation minus training loss per epoch for each method, and the accuracy each reaches."""
    metrics = ctx.metrics()
    if not {"train_loss", "val_loss"} <= set(metrics.columns) or metrics.empty:
        return [Note("Loss gap: no per-epoch train_loss and val_loss in metrics.parquet for these runs")]
    gap = loss_gap(metrics)
    metric = ctx.option("loss_gap", "metric", "best_val_test_acc")
    items: list[Item] = []
    for i, (key, group) in enumerate(panel_groups(ctx.runs, exclude=("prune",))):
        lines, bars = _curve_lines(gap, group, "loss_gap"), []
        for method in method_order(group["method"].unique()):
            s = summarize(group[group["method"] == method], metric, [])
            if not s.empty:
                bars.append(Stat(method_label(method), method_colour(method), s["mean"][0] * scale(metric),
                                s["std"][0] * scale(metric), int(s["n"][0])))
        panel = Panel(panel_title(key) or "Loss gap", "Epoch", metric_label("loss_gap"), tuple(lines))
        paths = loss_gap_figure(panel, bars, metric_label(metric), ctx.stem(f"loss_gap_{i + 1}"))
        caption = (f"Left: validation minus training loss, mean ± std over seeds "
                   f"({counts_caption([ln.n for ln in lines])}). Right: {lower_first(metric_label(metric))}.")
        items.append(FigureItem(f"Loss gap: {panel_title(key) or ctx.experiment}", caption, tuple(paths)))
    return items or [Note("Loss gap: the experiment has no finished DST runs")]


def learning_curves(ctx: Context) -> list[Item]:
    """Fig. 23-30 (and fig. 2 right): per-epoch metrics per criterion, one panel per density.

    The spec's ``curves`` option names the per-epoch metrics (default: validation accuracy), one figure each.
    """
    names = ctx.options.get("learning_curves", {}).get("curves") if isinstance(
        ctx.options.get("learning_curves"), dict) else None
    names = list(names or ctx.options.get("curves") or ["val_acc"])
    metrics = ctx.metrics()
    items: list[Item] = []
    for metric in names:
        if metrics.empty or metric not in metrics.columns:
            items.append(Note(f"Learning curves: metrics.parquet has no {metric!r} for these runs"))
            continue
        for i, (key, group) in enumerate(panel_groups(ctx.runs, exclude=("prune", "density"))):
            panels = []
            for density in sorted(group.loc[group["mode"] == "dst", "density"].unique()):
                at = group[(group["mode"] == "dense") | (group["density"] == density)]
                panels.append(Panel(value_label("density", density), "Epoch", metric_label(metric),
                                    tuple(_curve_lines(metrics, at, metric))))
            paths = line_figure(panels, ctx.stem(f"learning_curves_{metric}_{i + 1}"), ncols=4)
            counts = [n for p in panels for ln in p.lines for n in ln.n]
            items.append(FigureItem(f"Learning curves: {panel_title(key) or ctx.experiment}",
                                    f"{metric_label(metric)} per epoch, mean ± std over seeds "
                                    f"({counts_caption(counts)}).", tuple(paths)))
    return items or [Note("Learning curves: the experiment has no finished DST runs")]


def _curve_lines(metrics: pd.DataFrame, runs: pd.DataFrame, value: str) -> list[Line]:
    data = curves(metrics, runs, value, ["method"])
    factor = scale(value)
    lines = []
    for method in method_order(data["method"].unique()):
        s = data[data["method"] == method]
        lines.append(Line(method_label(method), method_colour(method), s["epoch"].to_numpy(float),
                          s["mean"].to_numpy(float) * factor, s["std"].to_numpy(float) * factor,
                          s["n"].to_numpy(int), dashed=method in ("static",) or method.startswith("dense")))
    return lines


def global_vs_local(ctx: Context) -> list[Item]:
    """Fig. 15: each criterion and density as a point, local-pruning accuracy (x) vs global (y)."""
    metric = ctx.option("global_vs_local", "metric", "best_val_test_acc")
    dst = ctx.runs[ctx.runs["mode"] == "dst"]
    if dst.empty or dst["global_pruning"].nunique() < 2:
        return [Note("Global vs local: needs finished DST runs with both global_pruning = true and false")]
    items: list[Item] = []
    factor = scale(metric)
    for i, (key, group) in enumerate(panel_groups(dst, exclude=("prune", "density", "global_pruning"))):
        s = summarize(group, metric, ["prune", "density", "global_pruning"])
        pivot = s.pivot_table(index=["prune", "density"], columns="global_pruning", values="mean")
        densities = sorted(s["density"].unique())
        points = [Point(f"{criterion_label(p)}, {value_label('density', d)}", colour(p),
                        MARKERS[densities.index(d) % len(MARKERS)], row[False] * factor, row[True] * factor,
                        float("nan"), float("nan"))
                  for (p, d), row in pivot.iterrows() if {False, True} <= set(row.dropna().index)]
        if not points:
            items.append(Note(f"Global vs local, {panel_title(key)}: no criterion and density has both settings"))
            continue
        title = panel_title(key) or ctx.experiment
        paths = scatter_figure(points, title=title, xlabel=f"{metric_label(metric)}, local pruning",
                               ylabel=f"{metric_label(metric)}, global pruning", stem=ctx.stem(f"global_vs_local_{i + 1}"))
        items.append(FigureItem(f"Global vs local pruning: {title}",
                                "Mean over seeds; points above the diagonal: global pruning did better.", tuple(paths)))
        s = s.assign(method=[f"{p}|{'global' if g else 'local'}" for p, g in zip(s["prune"], s["global_pruning"],
                                                                                   strict=True)])
        table = tables.from_summary(s, "method", "density", title=f"Global vs local: {title}", scale=factor,
                                    row_label=lambda m: f"{criterion_label(m.split('|')[0])} ({m.split('|')[1]})")
        items.append(ctx.table(f"global_vs_local_{i + 1}", table))
    return items


def mest_lambda(ctx: Context) -> list[Item]:
    """Fig. 7: MEST for each lambda (magnitude = lambda 0) against density, coloured from small to large lambda."""
    metric = ctx.option("mest_lambda", "metric", "best_val_test_acc")
    is_mest = ctx.runs["prune"].map(lambda p: p == "magnitude" or p.split(":")[0] == "mest")
    runs = ctx.runs[(ctx.runs["mode"] != "dst") | is_mest]
    # name every MEST run by its lambda ("mest" -> "mest:lam=1") so lines sort and read by lambda
    runs = runs.assign(prune=[p if p == "magnitude" or m != "dst" else f"mest:lam={_lambda(p):g}"
                              for p, m in zip(runs["prune"], runs["mode"], strict=True)])
    criteria = runs.loc[runs["mode"] == "dst", "prune"].unique()
    lams = sorted({_lambda(p) for p in criteria})
    if len(lams) < 2:
        return [Note("MEST λ: needs finished DST runs of MEST at two or more λ (or MEST and magnitude)")]
    ramp = matplotlib.colormaps["viridis"]
    colours = {p: matplotlib.colors.to_hex(ramp(0.9 * lams.index(_lambda(p)) / (len(lams) - 1))) for p in criteria}
    note = f"Magnitude is MEST with λ = 0; colours run from small (dark) to large (light) λ: {lams}."
    return metric_vs(replace(ctx, runs=runs, cache={}), "mest_lambda", "density", metric, "MEST for different λ",
                     colours=colours, note=note)


def _lambda(prune: str) -> float:
    base, params = parse_rule(prune)  # rule strings are canonical: every MEST run names its lambda
    return 0.0 if base == "magnitude" else float(params["lam"])


def sensitivity_vs_reciprocal(ctx: Context) -> list[Item]:
    """Fig. 8: sensitivity and reciprocal sensitivity against density (left) and during training (right)."""
    metric = ctx.option("sensitivity_vs_reciprocal", "metric", "best_val_test_acc")
    runs = ctx.runs[ctx.runs["prune"].isin(["sensitivity", "reciprocal_sensitivity"]) | (ctx.runs["mode"] != "dst")]
    dst = runs[runs["mode"] == "dst"]
    if dst["prune"].nunique() < 2:
        return [Note("Sensitivity vs reciprocal: needs finished DST runs of both sensitivity and "
                     "reciprocal_sensitivity")]
    wanted = float(ctx.option("sensitivity_vs_reciprocal", "curve_density", 0.2))
    densities = sorted(dst["density"].unique())
    at = min(densities, key=lambda d: abs(d - wanted))
    metrics = ctx.metrics()
    panels = []
    for key, group in panel_groups(runs, exclude=("density", "prune")):
        left, _ = _metric_panel(group, key, metric, "density", True, {})
        panels.append(Panel(left.title or "Accuracy vs density", left.xlabel, left.ylabel, left.lines, left.levels,
                            log_x=True, vlines=(at,)))
        chosen = group[(group["mode"] == "dst") & (group["density"] == at)]
        panels.append(Panel(f"{value_label('density', at)}", "Epoch", metric_label("val_acc"),
                            tuple(_curve_lines(metrics, chosen, "val_acc")) if not metrics.empty else ()))
    paths = line_figure(panels, ctx.stem("sensitivity_vs_reciprocal"), ncols=2)
    return [FigureItem("Sensitivity vs reciprocal sensitivity",
                       f"Left: {lower_first(metric_label(metric))} against density (dotted: the density on the right). "
                       "Right: validation accuracy during training. Mean ± std over seeds.", tuple(paths))]
