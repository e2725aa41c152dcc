"""Report kinds about structure (paper sec. 5.4, appendix K): Jaccard of first-update prune sets (fig. 6a, 17,
20), of end masks (fig. 6b, 21), over time (fig. 18), and weights retained or removed by all criteria (fig. 19)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from dstbench.analysis.jaccard import JaccardMatrix, OverTime
from dstbench.analysis.structure import EndMasks, Study, end_mask_study, first_update_study, over_time_study
from dstbench.report import tables
from dstbench.report.context import Context, FigureItem, Item, Note
from dstbench.report.diagrams import heatmap_figure, retained_figure
from dstbench.report.plots import Line, Panel, line_figure
from dstbench.report.style import colour, criterion_label, panel_title, split_common

# What J_r is measured over, and why it moves with the density (a reader sees 0.06 at D 0.2 and 0.34 at D 1).
J_R_TEXT = ("J_r, in each title, is the chance level: the Jaccard index between the sets that random pruning removes "
            "(the same share ρ of each layer's active weights) in runs of different seeds, averaged over seed pairs "
            "and layers. Two independent random choices of a share p of a layer's weights overlap by p / (2 − p), "
            "and here p = ρ × the layer's density: J_r is about 0.33 at D 1 and ρ 0.5, and about 0.05 at D 0.2 "
            "(ERK's uneven layer densities move it a little).")


def _dst(ctx: Context) -> pd.DataFrame:
    return ctx.runs[ctx.runs["mode"] == "dst"]


def _study(ctx: Context, name: str, compute: Callable[[], Study]) -> Study:
    """Each study reads its files once per section, whichever kinds need it."""
    if name not in ctx.cache:
        ctx.cache[name] = compute()
    return ctx.cache[name]


def first_update_study_of(ctx: Context) -> Study:
    step = ctx.option("first_update_jaccard", "probe_step")
    return _study(ctx, "first_update", lambda: first_update_study(_dst(ctx), ctx.results.run_dir,
                                                                   None if step is None else int(step)))


def end_mask_study_of(ctx: Context) -> Study:
    return _study(ctx, "end_masks", lambda: end_mask_study(_dst(ctx), ctx.results.run_dir))


def first_update_jaccard(ctx: Context) -> list[Item]:
    study = first_update_study_of(ctx)
    notes = [Note(f"First-update Jaccard: {n}") for n in study.notes]
    if not study.panels:
        return notes or [Note("First-update Jaccard: no run of this experiment has probe files")]
    wanted = ctx.option("first_update_jaccard", "fraction")
    main, every = [], []
    for key, matrices in study.panels.items():
        fraction = _pick_fraction(matrices, wanted)
        title = panel_title(key) or ctx.experiment
        main.append((f"{title}, ρ = {fraction:g}", matrices[fraction]))
        every += [(f"{title}, ρ = {f:g}", m) for f, m in matrices.items()]
    seeds = int(max(m.count.max() for _, m in every))
    items: list[Item] = [FigureItem(
        "Jaccard index of the sets chosen for removal at the first update",
        f"Mean over {seeds} seeds per layer, then over layers (appendix K). {J_R_TEXT}",
        tuple(heatmap_figure(main, ctx.stem("first_update_jaccard"))))]
    if len(every) > len(main):
        items.append(FigureItem("First-update Jaccard for each prune fraction ρ", "As above, for every probed ρ.",
                                tuple(heatmap_figure(every, ctx.stem("first_update_jaccard_fractions")))))
    items.append(FigureItem("Standard deviation of the first-update Jaccard index",
                            "Std over seeds for each layer, averaged over layers.",
                            tuple(heatmap_figure(main, ctx.stem("first_update_jaccard_std"), std=True))))
    for i, (title, matrix) in enumerate(main):
        items.append(ctx.table(f"first_update_jaccard_{i + 1}", _matrix_table(title, matrix)))
    return items + notes


def end_mask_jaccard(ctx: Context) -> list[Item]:
    study = end_mask_study_of(ctx)
    notes = [Note(f"End-mask Jaccard: {n}") for n in study.notes]
    if not study.panels:
        return notes or [Note("End-mask Jaccard: no run of this experiment has init and final masks")]
    main = [(panel_title(key) or ctx.experiment, result.matrix) for key, result in study.panels.items()]
    seeds = int(max(m.count.max() for _, m in main))
    items: list[Item] = [
        FigureItem("Jaccard index between end masks from the same initial mask",
                   f"Mean over layers per seed, then over {seeds} seeds (appendix K). Row 'Init': each end mask "
                   "against its own initial mask. J_init: mean pairwise index of initial masks of different seeds.",
                   tuple(heatmap_figure(main, ctx.stem("end_mask_jaccard")))),
        FigureItem("Standard deviation of the end-mask Jaccard index", "Std over seeds.",
                   tuple(heatmap_figure(main, ctx.stem("end_mask_jaccard_std"), std=True))),
    ]
    for i, (title, matrix) in enumerate(main):
        items.append(ctx.table(f"end_mask_jaccard_{i + 1}", _matrix_table(title, matrix)))
    return items + notes


def retained_by_all(ctx: Context) -> list[Item]:
    study = end_mask_study_of(ctx)
    shown = [(key, r) for key, r in study.panels.items() if isinstance(r, EndMasks) and len(r.retained_by_all)]
    if not shown:
        return [Note("Retained by all: needs end masks of at least two criteria from the same seed"),
                *[Note(f"Retained by all: {n}") for n in study.notes]]
    common, keys = split_common([key for key, _ in shown])  # e.g. one density and growth: said once, below
    entries = [(panel_title(key) or ctx.experiment, r.retained_by_all, r.removed_by_all)
               for key, (_, r) in zip(keys, shown, strict=True)]
    paths = retained_figure(entries, ctx.stem("retained_by_all"))
    where = f"All bars: {panel_title(common)}. " if common else ""
    return [FigureItem("Weights retained and removed by all criteria",
                       f"{where}Blue: weights kept by every criterion / weights kept; pink: weights removed by every "
                       "criterion / weights removed. Mean ± std over seeds; layers kept dense are left out.",
                       tuple(paths))]


def jaccard_over_time(ctx: Context) -> list[Item]:
    fraction = ctx.option("jaccard_over_time", "fraction")
    study = _study(ctx, "over_time", lambda: over_time_study(_dst(ctx), ctx.results.run_dir,
                                                              None if fraction is None else float(fraction)))
    notes = [Note(f"Jaccard over time: {n}") for n in study.notes]
    if not study.panels:
        return notes or [Note("Jaccard over time: no run of this experiment has probe files")]
    items: list[Item] = []
    for i, (key, result) in enumerate(study.panels.items()):
        paths = line_figure(_over_time_panels(result), ctx.stem(f"jaccard_over_time_{i + 1}"))
        items.append(FigureItem(
            f"Jaccard over time: {panel_title(key) or ctx.experiment}",
            "Each panel is a run trained with the named criterion; lines compare what each other criterion would "
            "prune from that run's state with what its own criterion would prune (not symmetric). Mean ± std "
            f"over seeds ({int(result.count.max())} per point at most).", tuple(paths)))
    return items + notes


def _over_time_panels(result: OverTime) -> list[Panel]:
    steps = np.array(result.steps, dtype=float)
    panels = []
    for r, own in enumerate(result.rows):
        lines = tuple(Line(criterion_label(other), colour(other), steps, result.mean[r, c], result.std[r, c],
                           result.count[r, c])
                      for c, other in enumerate(result.columns) if other != own and result.count[r, c].any())
        panels.append(Panel(f"trained with {criterion_label(own)}", "Step", "Jaccard index", lines))
    return panels


def _pick_fraction(matrices: dict[float, JaccardMatrix], wanted: object) -> float:
    if wanted is not None and float(wanted) in matrices:
        return float(wanted)
    return 0.5 if 0.5 in matrices else max(matrices)


def _matrix_table(title: str, matrix: JaccardMatrix) -> tables.Table:
    labels = tuple(criterion_label(name) for name in matrix.labels)
    reference = "" if np.isnan(matrix.reference) else f"; {matrix.reference_name} = {matrix.reference:.3f}"
    return tables.Table(f"Jaccard index, {title}{reference}", "criterion", "against", labels, labels,
                        matrix.mean, matrix.std, matrix.count, marked=False, digits=3)
