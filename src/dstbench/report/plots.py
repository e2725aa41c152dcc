"""Line, bar and scatter figures: accuracy or ITOP against density, update period or epoch, loss gap, global vs
local. Every function takes data that is already averaged over seeds and writes a PNG and an SVG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator

from dstbench.report.style import axes_width, new_figure, save, styled, wrap

# A mean is "collapsed" (e.g. a criterion at chance while the others train) when it lies below the median of the
# other lines at its x by more than COLLAPSE_FACTOR times their spread there, and below the lowest of the other
# means by more than COLLAPSE_SPAN times their whole range: drawn to scale, it would squeeze the other lines into
# a third of the axis or less.
COLLAPSE_FACTOR = 3.0
COLLAPSE_SPAN = 2.0


@dataclass(frozen=True)
class Line:
    """One series: mean over seeds at each x, its std (nan = one seed: no band) and the seeds behind it."""

    label: str
    colour: str
    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray
    dashed: bool = False


@dataclass(frozen=True)
class Stat:
    """One labelled mean ± std over n runs: drawn as a horizontal reference (the dense model) or as a bar."""

    label: str
    colour: str
    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    ylabel: str
    lines: tuple[Line, ...]
    levels: tuple[Stat, ...] = ()
    log_x: bool = False
    vlines: tuple[float, ...] = ()
    as_bars: bool = False  # one x value only: each line's value as a bar, levels as dashed lines across
    cut_collapsed: bool = False  # leave collapsed means below the axis (`collapsed`); for a few x values only


@dataclass(frozen=True)
class Point:
    """A scatter point with error bars, e.g. one criterion at one density: local (x) vs global (y) pruning."""

    label: str
    colour: str
    marker: str
    x: float
    y: float
    xerr: float
    yerr: float


@dataclass(frozen=True)
class Collapsed:
    """A mean drawn below the cut axis, marked ▼ at the axis' bottom with its value."""

    label: str
    colour: str
    x: float
    mean: float


def collapsed(panel: Panel) -> list[Collapsed]:
    """The means of `panel` left below its axis, so that the axis fits the other lines (see COLLAPSE_FACTOR)."""
    if not panel.cut_collapsed or panel.as_bars or len(panel.lines) < 3:
        return []
    at: dict[float, list[tuple[int, float]]] = {}
    for i, line in enumerate(panel.lines):
        for x, mean in zip(line.x, line.mean, strict=True):
            if np.isfinite(mean):
                at.setdefault(float(x), []).append((i, float(mean)))
    candidates = []
    for x, values in sorted(at.items()):
        for i, mean in values:
            others = np.array([m for j, m in values if j != i])
            if len(others) >= 2 and float(np.median(others)) - mean > COLLAPSE_FACTOR * float(np.ptp(others)):
                candidates.append((i, x, mean))
    low = {(i, x) for i, x, _ in candidates}
    healthy = [m for x, values in at.items() for i, m in values if (i, x) not in low]
    healthy += [lv.mean for lv in panel.levels]
    if not candidates or not healthy:
        return []
    floor, span = min(healthy), max(healthy) - min(healthy)
    return [Collapsed(panel.lines[i].label, panel.lines[i].colour, x, mean) for i, x, mean in candidates
            if floor - mean > COLLAPSE_SPAN * span]


def line_figure(panels: Sequence[Panel], stem: Path, *, ncols: int = 3) -> list[Path]:
    """A grid of line panels with std bands and dashed reference levels; one shared legend below."""
    with styled():
        fig, axes = new_figure(len(panels), ncols=ncols)
        for ax, panel in zip(axes, panels, strict=True):
            _draw_panel(ax, panel)
        _shared_legend(fig, axes)
        return save(fig, stem)


def loss_gap_figure(gap: Panel, bars: Sequence[Stat], ylabel: str, stem: Path) -> list[Path]:
    """Fig. 4: the loss gap over epochs (left) and the accuracy each method reaches (right)."""
    with styled():
        fig, (left, right) = new_figure(2, ncols=2)
        _draw_panel(left, gap)
        _draw_bars(right, bars, ylabel, "Accuracy reached")
        _shared_legend(fig, [left])
        return save(fig, stem)


def scatter_figure(points: Sequence[Point], *, title: str, xlabel: str, ylabel: str, stem: Path) -> list[Path]:
    """Fig. 15: paired results as points with the diagonal y = x (above it: y's setting is better)."""
    with styled():
        fig, (ax,) = new_figure(1, width=4.0, height=3.6)
        for p in points:
            ax.errorbar(p.x, p.y, xerr=_finite(p.xerr), yerr=_finite(p.yerr), fmt=p.marker, color=p.colour,
                        label=p.label, markersize=6, capsize=2, linewidth=0.8)
        values = [v for p in points for v in (p.x, p.y)]
        low, high = min(values), max(values)
        pad = 0.05 * (high - low or 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], linestyle="--", color="0.6", linewidth=1,
                label="y = x")
        ax.set(title=wrap(title, axes_width(ax)), xlabel=xlabel, ylabel=ylabel, xlim=(low - pad, high + pad),
               ylim=(low - pad, high + pad))
        ax.set_aspect("equal")
        ax.legend(loc="upper left", frameon=False)
        return save(fig, stem)


def _draw_panel(ax: Axes, panel: Panel) -> None:
    if panel.as_bars:
        bars = [Stat(ln.label, ln.colour, float(ln.mean[0]), float(ln.std[0]), int(ln.n[0])) for ln in panel.lines]
        _draw_bars(ax, bars, panel.ylabel, panel.title)
        for level in panel.levels:
            ax.axhline(level.mean, color=level.colour, linestyle="--", linewidth=1.2, label=level.label)
        return
    for line in panel.lines:
        order = np.argsort(line.x, kind="stable")
        x, mean, std = line.x[order], line.mean[order], line.std[order]
        ax.plot(x, mean, color=line.colour, label=line.label, linestyle="--" if line.dashed else "-",
                marker=None if line.dashed or len(x) > 30 else "o", markersize=3.5, linewidth=1.4)
        band = np.isfinite(std)
        if band.any():
            ax.fill_between(x[band], (mean - std)[band], (mean + std)[band], color=line.colour, alpha=0.15,
                            linewidth=0)
    for level in panel.levels:
        ax.axhline(level.mean, color=level.colour, linestyle="--", linewidth=1.2, label=level.label)
        if np.isfinite(level.std):
            ax.axhspan(level.mean - level.std, level.mean + level.std, color=level.colour, alpha=0.08, linewidth=0)
    for x in panel.vlines:
        ax.axvline(x, color="0.4", linestyle=":", linewidth=1)
    if panel.log_x:
        ax.set_xscale("log")
        _tick_at_data(ax, panel.lines)
    elif all(float(v).is_integer() for line in panel.lines for v in line.x):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and steps
    _cut_below(ax, panel, collapsed(panel))
    ax.set(title=wrap(panel.title, axes_width(ax)), xlabel=panel.xlabel, ylabel=panel.ylabel)


def _cut_below(ax: Axes, panel: Panel, low: Sequence[Collapsed]) -> None:
    """Fit the y axis to the lines that did not collapse; mark each collapsed mean ▼ at the bottom, with its value."""
    if not low:
        return
    cut = {(c.label, c.x) for c in low}
    ys = [v for line in panel.lines for x, m, s in zip(line.x, line.mean, line.std, strict=True)
          if (line.label, float(x)) not in cut and np.isfinite(m)
          for v in ((m - s, m + s) if np.isfinite(s) else (m,))]
    ys += [lv.mean for lv in panel.levels]
    bottom, top = min(ys), max(ys)
    pad = 0.08 * (top - bottom or 1.0)
    ax.set_ylim(bottom - 2.5 * pad, top + pad)  # room at the bottom for the marks
    for c in low:
        ax.plot([c.x], [bottom - 2.5 * pad], marker="v", color=c.colour, markersize=6, clip_on=False, zorder=5)
    # One label per criterion, its values in x order, each criterion on its own line: labels of neighbouring
    # points (two densities, or two criteria at one density) would otherwise print over each other.
    labels = list(dict.fromkeys(c.label for c in low))
    for row, label in enumerate(labels):
        points = sorted((c for c in low if c.label == label), key=lambda c: c.x)
        first = points[0]
        right = ax.transAxes.inverted().transform(ax.transData.transform((first.x, bottom)))[0] > 0.5
        values = ", ".join(f"{c.mean:.1f}" for c in points)
        ax.annotate(f"{label} {values}", (first.x, bottom - 2.5 * pad), xytext=(-5 if right else 5, 3 + 9 * row),
                    textcoords="offset points", ha="right" if right else "left", va="bottom", fontsize=7,
                    color=first.colour)


def _tick_at_data(ax: Axes, lines: Sequence[Line]) -> None:
    """Label a log axis at the values actually run (densities, periods), not at powers of ten."""
    xs = sorted({float(v) for line in lines for v in line.x})
    if 0 < len(xs) <= 12:
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(xs, [f"{v:g}" for v in xs], rotation=45 if len(xs) > 6 else 0)


def _draw_bars(ax: Axes, bars: Sequence[Stat], ylabel: str, title: str) -> None:
    positions = np.arange(len(bars))
    means = np.array([b.mean for b in bars])
    ax.bar(positions, means, yerr=[_finite(b.std) for b in bars], color=[b.colour for b in bars], capsize=3)
    ax.set_xticks(positions, [f"{b.label}\n(n={b.n})" for b in bars], rotation=45, ha="right")
    if len(means):
        spread = float(means.max() - means.min()) or abs(float(means.max())) * 0.05 or 1.0
        ax.set_ylim(float(means.min()) - 1.5 * spread, float(means.max()) + spread)
    ax.set(ylabel=ylabel, title=wrap(title, axes_width(ax)))
    ax.grid(axis="x", visible=False)


def _shared_legend(fig: Figure, axes: Sequence[Axes]) -> None:
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(5, len(handles)), frameon=False)


def _finite(value: float) -> float:
    return value if np.isfinite(value) else 0.0
