"""One look for every figure: a colour per criterion, readable names, paper-size fonts, PNG + SVG output.

Figures are built on `matplotlib.figure.Figure` directly (never pyplot), so no display backend or global figure
state is involved: reports build the same on a headless server and in parallel.
"""

from __future__ import annotations

import hashlib
import logging
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from dstbench.analysis.aggregate import parse_rule
from dstbench.vocab import CRITERION_DISPLAY_NAMES

log = logging.getLogger(__name__)

# Okabe-Ito and Tol colours: distinguishable with colour-blindness and in grey print.
PALETTE: dict[str, str] = {
    "magnitude": "#0072B2",
    "set": "#E69F00",
    "mest": "#009E73",
    "reciprocal_sensitivity": "#CC79A7",
    "sensitivity": "#882255",
    "snip": "#D55E00",
    "random": "#7F7F7F",
    "static": "#56B4E9",  # the paper draws static sparse training in light blue
    "dense": "#000000",
}
EXTRA_COLOURS = ("#44AA99", "#AA4499", "#117733", "#332288", "#DDCC77", "#661100", "#6699CC", "#999933",
                 "#AA4466", "#4B0092")
CRITERION_LABELS = {
    "magnitude": "Magnitude", "set": "SET", "mest": "MEST", "snip": "SNIP", "sensitivity": "Sensitivity",
    "reciprocal_sensitivity": "RSensitivity", "random": "Random", "init": "Init",
}
PARAMETER_LABELS = {"lam": "λ"}
MODEL_LABELS = {
    "small_mlp": "small-MLP", "large_mlp": "large-MLP", "small_cnn": "small-CNN", "lenet5_caffe": "LeNet5-Caffe",
    "resnet56": "ResNet-56", "vgg16_bn": "VGG-16", "efficientnet_b0": "EfficientNet-B0", "resnet50": "ResNet-50",
}
DATASET_LABELS = {
    "higgs": "Higgs", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion_mnist": "FashionMNIST",
    "fashionmnist": "FashionMNIST", "tiny_imagenet": "Tiny-ImageNet", "imagenet": "ImageNet",
    "synthetic_tabular": "synthetic table (Higgs-shaped)",
}
FIELD_LABELS = {
    "density": "density", "update_period": "update period Δt (steps)", "batch_size": "batch size",
    "update_batch_size": "update batch size", "schedule": "prune-fraction schedule", "dropout": "dropout",
    "prune_fraction": "prune fraction ρ", "epoch": "epoch",
}
METRIC_LABELS = {
    "best_val_test_acc": "Test accuracy (%)", "final_test_acc": "Final test accuracy (%)",
    "best_val_acc": "Validation accuracy (%)", "final_val_acc": "Final validation accuracy (%)",
    "val_acc": "Validation accuracy (%)", "test_acc": "Test accuracy (%)", "final_itop": "ITOP ratio",
    "itop": "ITOP ratio", "loss_gap": "Loss gap (val − train)", "train_loss": "Training loss",
    "val_loss": "Validation loss",
}
PERCENT_METRICS = frozenset({"best_val_test_acc", "final_test_acc", "best_val_acc", "final_val_acc", "val_acc",
                             "test_acc", "train_acc"})
STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "svg.fonttype": "none", "savefig.bbox": "tight", "font.family": "DejaVu Sans",
}


# PNG resolution; figures are made at it, so that their text is measured as saved.
DPI = 150
# The widest figure (inches). Shown 1000 px wide (a laptop) a figure this wide at 150 dpi keeps 8 pt text at some 8
# CSS pixels; wider grids get narrower panels, not smaller text.
MAX_WIDTH = 10.5


def colour(name: str) -> str:
    """The colour of a criterion or baseline; the same name gets the same colour in every figure and report."""
    if name in PALETTE:
        return PALETTE[name]
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return EXTRA_COLOURS[digest % len(EXTRA_COLOURS)]


def criterion_label(name: str) -> str:
    """"reciprocal_sensitivity" -> "RSensitivity", "mest:lam=0.5" -> "MEST (λ=0.5)", "mest:lam=1.0" -> "MEST (λ=1)";
    a criterion registered with a label by that label; other names as given."""
    try:
        base, params = parse_rule(name)
    except ValueError:
        return name
    label = CRITERION_DISPLAY_NAMES.get(base) or CRITERION_LABELS.get(base, base)
    if not params:
        return label
    shown = (f"{PARAMETER_LABELS.get(k, k)}={v:g}" if isinstance(v, float) else f"{PARAMETER_LABELS.get(k, k)}={v}"
             for k, v in params.items())
    return f"{label} ({', '.join(shown)})"


def value_label(field: str, value: object) -> str:
    """A panel-title fragment for one configuration field."""
    if field == "model":
        return MODEL_LABELS.get(str(value), str(value))
    if field == "dataset":
        return DATASET_LABELS.get(str(value), str(value))
    if field == "grow":
        return f"{value} growth"
    if field == "prune":
        return criterion_label(str(value))
    if field == "density":
        return f"D={_number(value)}"
    if field == "update_period":
        return f"Δt={_number(value)}"
    if field == "global_pruning":
        return "global pruning" if bool(value) else "local pruning"
    if field == "update_full_layers":
        return "full layers updated" if bool(value) else "full layers fixed"
    return f"{FIELD_LABELS.get(field, field)}={_number(value)}"


def panel_title(key: tuple[tuple[str, object], ...]) -> str:
    """'large-MLP / CIFAR-10, random growth, D=0.1' from (field, value) pairs; model and dataset joined."""
    values = dict(key)
    head = " / ".join(value_label(f, values[f]) for f in ("model", "dataset") if f in values)
    rest = [value_label(f, v) for f, v in key if f not in ("model", "dataset")]
    return ", ".join([head, *rest] if head else rest)


def split_common(keys: list[tuple[tuple[str, object], ...]]) -> tuple[tuple[tuple[str, object], ...],
                                                                       list[tuple[tuple[str, object], ...]]]:
    """The (field, value) pairs all `keys` share, and each key without them: say the shared part once."""
    common = tuple(pair for pair in keys[0] if all(pair in key for key in keys[1:])) if len(keys) > 1 else ()
    return common, [tuple(pair for pair in key if pair not in common) for key in keys]


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def lower_first(text: str) -> str:
    """'Test accuracy (%)' -> 'test accuracy (%)' mid-sentence; 'ITOP ratio' and 'Δt' keep their capitals."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def axis_label(field: str) -> str:
    label = FIELD_LABELS.get(field, field)
    return label[:1].upper() + label[1:]


def scale(metric: str) -> float:
    """Accuracies are stored as fractions and shown in percent."""
    return 100.0 if metric in PERCENT_METRICS else 1.0


@contextmanager
def styled() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(n_panels: int, *, ncols: int = 3, width: float = 3.4, height: float = 2.7) -> tuple[Figure, list]:
    """A figure with one axes per panel in a grid of at most `ncols` columns (paper column-sized panels)."""
    cols = max(1, min(ncols, n_panels))
    rows = max(1, -(-n_panels // cols))
    width = min(width, MAX_WIDTH / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained", dpi=DPI)
    FigureCanvasAgg(fig)  # a canvas of its own (no pyplot): its renderer measures text for `overlapping_text`
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write `stem`.png (DPI) and `stem`.svg; return both paths. Text that overlaps other text is logged as a
    warning (a layout this module failed to fit, e.g. for very long names)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=DPI)
    for problem in overlapping_text(fig, laid_out=True):
        log.warning("figure %s: %s", paths[0].name, problem)
    fig.savefig(paths[1])
    return paths


def wrap(text: str, width_inches: float, fontsize: float = 9.0) -> str:
    """`text` broken into lines that fit `width_inches` at `fontsize` (an average character is 0.6 em wide)."""
    chars = max(12, int(width_inches * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False)) if len(text) > chars else text


def axes_width(ax: Axes) -> float:
    """The width in inches a title of `ax` may take: 90% of its grid column(s), leaving room between titles."""
    spec = ax.get_subplotspec()
    share = len(spec.colspan) / spec.get_gridspec().ncols if spec is not None else ax.get_position().width
    return 0.9 * float(ax.get_figure().get_figwidth()) * share


def overlapping_text(fig: Figure, *, laid_out: bool = False) -> list[str]:
    """Drawn text (titles, labels, tick labels, legend entries, annotations) that overlaps other text or another
    panel's plot area (a neighbour, a colour bar): "'a' overlaps 'b'". Rotated text is compared as the rotated box
    it is; touching edges (a pixel) do not count. `laid_out`: just saved at its own dpi, so no layout pass needed."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()  # one, cached: a renderer made per text costs more than the drawing
    if not laid_out:
        fig.draw_without_rendering()  # the layout, at the figure's own dpi, which the extents are measured in
    boxes = [(repr(t.get_text()), owner, _corners(t, renderer)) for t, owner in _drawn_texts(fig)]
    areas = [(ax, _box_corners(ax.get_window_extent(renderer))) for ax in fig.axes
             if ax.get_visible() and ax.axison]
    problems = []
    for i, j in _candidates([box for _, _, box in boxes], [box for _, _, box in boxes], same=True):
        if _polygons_overlap(boxes[i][2], boxes[j][2]):
            problems.append(f"{boxes[i][0]} overlaps {boxes[j][0]}")
    for i, j in _candidates([box for _, _, box in boxes], [area for _, area in areas]):
        if boxes[i][1] is not areas[j][0] and _polygons_overlap(boxes[i][2], areas[j][1]):
            problems.append(f"{boxes[i][0]} overlaps the plot area of {_name(areas[j][0])}")
    return problems


def _candidates(first: list[np.ndarray], second: list[np.ndarray], *, same: bool = False) -> list[tuple[int, int]]:
    """Index pairs whose upright bounding boxes overlap (all pairs at once; the exact test then runs on these only).
    With `same`, each unordered pair of one list once."""
    if not first or not second:
        return []
    low_a, high_a = np.array([p.min(axis=0) for p in first]), np.array([p.max(axis=0) for p in first])
    low_b, high_b = np.array([p.min(axis=0) for p in second]), np.array([p.max(axis=0) for p in second])
    hit = ((low_a[:, None, :] < high_b[None, :, :]) & (low_b[None, :, :] < high_a[:, None, :])).all(axis=2)
    if same:
        hit = np.triu(hit, k=1)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(hit), strict=True)]


def _name(ax: Axes) -> str:
    return repr(ax.get_title()) if ax.get_title() else repr(ax.get_label() or "a panel")


def _box_corners(box: object) -> np.ndarray:
    return np.array([[box.x0 + 1, box.y0 + 1], [box.x1 - 1, box.y0 + 1], [box.x1 - 1, box.y1 - 1],
                     [box.x0 + 1, box.y1 - 1]])


def _drawn_texts(fig: Figure) -> list[tuple[Text, Axes | None]]:
    """Every drawn text with the panel it belongs to (None: the figure's, e.g. the shared legend)."""
    texts: list[tuple[Text, Axes | None]] = [(t, None) for t in fig.texts]
    texts += [(t, None) for legend in fig.legends for t in legend.get_texts()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        own = [ax.title, *ax.texts]
        if ax.axison:
            own += [ax.xaxis.label, ax.yaxis.label, *_tick_labels(ax.xaxis), *_tick_labels(ax.yaxis)]
        if ax.get_legend() is not None:
            own += ax.get_legend().get_texts()
        texts += [(t, ax) for t in own]
    return [(t, ax) for t, ax in texts if t.get_visible() and t.get_text().strip()]


def _corners(text: Text, renderer: RendererAgg) -> np.ndarray:
    """The four corners (pixels) of `text`'s box, turned by its rotation about the centre, shrunk by a pixel."""
    box = text.get_window_extent(renderer)
    centre = np.array([box.x0 + box.width / 2, box.y0 + box.height / 2])
    rotation = float(text.get_rotation())
    if rotation % 90 == 0:  # upright or on its side: the box is exact
        width, height, angle = box.width, box.height, 0.0
    else:
        text.set_rotation(0)  # the unturned size; a turned box keeps its centre
        flat = text.get_window_extent(renderer)
        text.set_rotation(rotation)
        width, height, angle = flat.width, flat.height, np.radians(rotation)
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [max(width - 2, 0) / 2, max(height - 2, 0) / 2]
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return half @ turn.T + centre


def _polygons_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test of two convex quadrilaterals: they overlap unless some edge normal separates them."""
    for poly in (a, b):
        for k in range(4):
            edge = poly[(k + 1) % 4] - poly[k]
            normal = np.array([-edge[1], edge[0]])
            if not normal.any():
                return False  # a degenerate (empty) box overlaps nothing
            pa, pb = a @ normal, b @ normal
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


def _tick_labels(axis: Axis) -> list[Text]:
    """The tick labels drawn: those of ticks inside the view (matplotlib keeps labels of ticks outside it)."""
    low, high = sorted(axis.get_view_interval())
    span = high - low
    labels = []
    for minor in (False, True):
        for loc, label in zip(axis.get_ticklocs(minor=minor), axis.get_ticklabels(minor=minor), strict=False):
            if low - 1e-9 * span <= loc <= high + 1e-9 * span:
                labels.append(label)
    return labels


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
