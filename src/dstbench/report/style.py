"""One look for every figure: a colour per criterion, readable names, paper-size fonts, PNG + SVG output.

Figures are built on `matplotlib.figure.Figure` directly (never pyplot), so no display backend or global figure
state is involved: reports build the same on a headless server and in parallel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from dstbench.analysis.aggregate import parse_rule

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


def colour(name: str) -> str:
    """The colour of a criterion or baseline; the same name gets the same colour in every figure and report."""
    if name in PALETTE:
        return PALETTE[name]
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return EXTRA_COLOURS[digest % len(EXTRA_COLOURS)]


def criterion_label(name: str) -> str:
    """"reciprocal_sensitivity" -> "RSensitivity", "mest:lam=0.5" -> "MEST (λ=0.5)", "mest:lam=1.0" -> "MEST (λ=1)";
    unknown names as given."""
    try:
        base, params = parse_rule(name)
    except ValueError:
        return name
    label = CRITERION_LABELS.get(base, base)
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


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


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
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write `stem`.png (150 dpi) and `stem`.svg; return both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
