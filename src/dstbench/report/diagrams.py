"""Jaccard heatmaps (fig. 6, 17, 20, 21), retained/removed-by-all bars (fig. 19) and critical-difference
diagrams (fig. 3). Each function writes a PNG and an SVG and returns their paths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from dstbench.analysis.jaccard import JaccardMatrix
from dstbench.report.style import axes_width, criterion_label, new_figure, save, styled, wrap

RETAINED_COLOUR = "#4C72B0"  # the paper's blue for "retained by all"
REMOVED_COLOUR = "#E78AC3"  # and pink for "removed by all"


@dataclass(frozen=True)
class CDPanel:
    """One critical-difference diagram: average ranks, the CD, the groups joined by bars, the block count."""

    title: str
    ranks: pd.Series
    cd: float
    groups: tuple[tuple[str, ...], ...]
    n_blocks: int


def heatmap_figure(matrices: Sequence[tuple[str, JaccardMatrix]], stem: Path, *, std: bool = False) -> list[Path]:
    """Annotated Jaccard matrices, one panel each; the title gives the chance reference (J_r or J_init)."""
    with styled():
        size = max(len(m.labels) for _, m in matrices)
        side = 1.0 + 0.55 * size
        fig, axes = new_figure(len(matrices), ncols=2, width=side + 0.8, height=side + 0.3)
        for ax, (title, matrix) in zip(axes, matrices, strict=True):
            _heatmap(ax, title, matrix, std, side)
        return save(fig, stem)


def _heatmap(ax: Axes, title: str, matrix: JaccardMatrix, std: bool, side: float) -> None:
    values = matrix.std if std else matrix.mean
    top = 1.0 if not std else max(0.05, float(np.nanmax(values)) if np.isfinite(values).any() else 0.05)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="Blues" if not std else "Oranges", vmin=0.0, vmax=top)
    labels = [criterion_label(name) for name in matrix.labels]
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels)
    ax.grid(False)
    for i, j in np.ndindex(values.shape):
        value = values[i, j]
        text = "–" if not np.isfinite(value) else f"{value:.2f}"
        dark = np.isfinite(value) and value > 0.6 * top
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    reference = "" if np.isnan(matrix.reference) else f"  ({matrix.reference_name} = {matrix.reference:.2f})"
    ax.set_title(wrap(f"{title}{reference}", side))  # over the matrix only: the colour bar is beside it
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="std of Jaccard index" if std else "Jaccard index")


def retained_figure(entries: Sequence[tuple[str, np.ndarray, np.ndarray]], stem: Path) -> list[Path]:
    """Per panel: share of kept weights kept by all criteria, and of removed weights removed by all (mean +- std)."""
    with styled():
        per_entry = 1.8
        fig, (ax,) = new_figure(1, width=max(3.4, per_entry * len(entries) + 1.0), height=2.9)
        positions = np.arange(len(entries))
        for offset, index, colour, name in ((-0.2, 1, RETAINED_COLOUR, "retained by all"),
                                            (0.2, 2, REMOVED_COLOUR, "removed by all")):
            means = np.array([np.nanmean(e[index]) if len(e[index]) else np.nan for e in entries])
            stds = np.array([np.nanstd(e[index], ddof=1) if len(e[index]) > 1 else 0.0 for e in entries])
            ax.bar(positions + offset, 100 * means, width=0.4, yerr=100 * stds, color=colour, capsize=3, label=name)
            for x, m in zip(positions + offset, means, strict=True):
                if np.isfinite(m):
                    ax.text(x, 100 * m + 1, f"{100 * m:.0f}%", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(positions, [f"{wrap(e[0], 0.9 * per_entry, 8)}\n(n={len(e[1])} seeds)" for e in entries])
        ax.set(ylabel="Share of weights (%)", ylim=(0, 110))
        ax.legend(frameon=False, loc="upper right")
        ax.grid(axis="x", visible=False)
        return save(fig, stem)


def cd_figure(panels: Sequence[CDPanel], stem: Path) -> list[Path]:
    """Critical-difference diagrams (Demsar 2006): criteria at their average rank, bars join groups within CD."""
    with styled():
        height = max(1.6, 0.9 + 0.28 * max(len(p.ranks) for p in panels))
        fig, axes = new_figure(len(panels), ncols=1, width=6.4, height=height)
        for ax, panel in zip(axes, panels, strict=True):
            _cd_panel(ax, panel)
        return save(fig, stem)


def _cd_panel(ax: Axes, panel: CDPanel) -> None:
    ranks = panel.ranks.sort_values(kind="stable")
    k = len(ranks)
    low, high = 1, max(k, 2)
    half = (k + 1) // 2
    base = 0.25 + 0.07 * len(panel.groups)  # label lines start below the group bars
    depth = base + 0.28 * max(half, k - half)
    ax.set_xlim(low - 0.1 * k, max(high, low + panel.cd) + 0.1 * k)
    ax.set_ylim(depth + 0.1, -0.6)
    ax.axis("off")
    ax.hlines(0, low, high, color="black", linewidth=1)
    for r in range(low, high + 1):
        ax.vlines(r, -0.08, 0.0, color="black", linewidth=1)
        ax.text(r, -0.12, str(r), ha="center", va="bottom", fontsize=8)
    ax.hlines(-0.4, low, low + panel.cd, color="black", linewidth=1.5)
    ax.vlines([low, low + panel.cd], -0.44, -0.36, color="black", linewidth=1)
    ax.text(low + panel.cd / 2, -0.46, f"CD = {panel.cd:.2f}", ha="center", va="bottom", fontsize=8)
    for i, (name, rank) in enumerate(ranks.items()):
        left = i < half
        level = base + 0.28 * (i if left else k - 1 - i)
        end = low - 0.05 * k if left else high + 0.05 * k
        ax.plot([rank, rank, end], [0, level, level], color="0.25", linewidth=0.8)
        ax.text(end + (-0.03 if left else 0.03) * k, level, f"{criterion_label(str(name))} ({rank:.2f})",
                ha="right" if left else "left", va="center", fontsize=8)
    for g, group in enumerate(panel.groups):
        y = 0.12 + 0.07 * g
        ax.hlines(y, ranks[list(group)].min() - 0.03, ranks[list(group)].max() + 0.03, color="black", linewidth=3)
    ax.set_title(wrap(f"{panel.title} (N = {panel.n_blocks} settings): average rank, lower is better",
                      axes_width(ax)), fontsize=9)
