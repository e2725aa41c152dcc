"""Structural similarity of sparse connectivity: the Jaccard index of paper eq. 1 and the studies built on it.

Every comparison works on ``{layer: bool array}`` dicts (masks, or the sets a criterion would prune). The index is
computed per layer and averaged over layers (eq. 1). A layer with nothing to compare (both sets empty, or both
masks full: a layer the density distribution kept dense is never pruned by anyone) is left out of that average,
so it cannot pull every pair towards 1.

The order of averaging differs between the paper's studies (appendix K) and both are implemented here:
the first-update study averages over seeds per layer and then over layers (its std is per layer, then averaged);
the end-mask study averages over layers per seed and then over seeds (its std is over seeds).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

LayerSets = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class JaccardMatrix:
    """A symmetric (or, over time, row-major) table of Jaccard indices between named sets of weights."""

    labels: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    reference: float = float("nan")
    reference_name: str = ""

    def value(self, a: str, b: str) -> float:
        return float(self.mean[self.labels.index(a), self.labels.index(b)])


def layer_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a and b| / |a or b| of two bool arrays of one layer; nan where there is nothing to compare."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare sets of shapes {a.shape} and {b.shape}: they come from different layers")
    union = int(np.count_nonzero(a | b))
    if union == 0 or (a.all() and b.all()):
        return float("nan")
    return int(np.count_nonzero(a & b)) / union


def jaccard_per_layer(a: LayerSets, b: LayerSets) -> dict[str, float]:
    """The index of each layer the two dicts share; both must name the same layers."""
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise ValueError(f"the sets name different layers: only in the first {only_a}, only in the second {only_b}")
    return {name: layer_jaccard(a[name], b[name]) for name in sorted(a)}


def mean_jaccard(a: LayerSets, b: LayerSets) -> float:
    """Paper eq. 1: the per-layer index averaged over the layers that have something to compare."""
    values = np.array(list(jaccard_per_layer(a, b).values()), dtype=float)
    return _nanmean(values)


def reference_jaccard(sets: Sequence[LayerSets]) -> float:
    """Mean pairwise eq. 1 over sets from different initialisations: the overlap expected by chance.

    With random-criterion prune sets this is the paper's J_r (fig. 6a); with initial masks it is J_init (fig. 6b).
    Fewer than two sets give nan: there is no pair.
    """
    values = [mean_jaccard(x, y) for x, y in itertools.combinations(sets, 2)]
    return _nanmean(np.array(values, dtype=float))


def first_update_matrix(samples: Sequence[Mapping[str, LayerSets]], criteria: Sequence[str]) -> JaccardMatrix:
    """Jaccard between the sets each criterion would prune from one network state (fig. 6a, 17, 20).

    `samples` holds one entry per seed: ``{criterion: {layer: would-prune mask}}``. As in appendix K, the mean is
    taken over seeds for each layer and then over layers; the std is taken over seeds for each layer and then
    averaged over layers. A criterion missing from a seed leaves that seed out of its cells.
    """
    layers = _layers_of(samples)
    k, n_layers = len(criteria), len(layers)
    per_seed = np.full((len(samples), k, k, n_layers), np.nan)
    for s, sample in enumerate(samples):
        for (i, a), (j, b) in itertools.product(enumerate(criteria), repeat=2):
            if a in sample and b in sample:
                per_layer = jaccard_per_layer(sample[a], sample[b])
                per_seed[s, i, j] = [per_layer.get(name, np.nan) for name in layers]
    present = ~np.isnan(per_seed)
    count = present.any(axis=3).sum(axis=0)
    mean = _nanmean(_nanmean(per_seed, axis=0), axis=2)
    std = _nanmean(_nanstd(per_seed, axis=0), axis=2)
    return JaccardMatrix(tuple(criteria), mean, std, count)


def end_mask_matrix(samples: Sequence[Mapping[str, LayerSets]], names: Sequence[str]) -> JaccardMatrix:
    """Jaccard between end masks of runs that started from one initial mask (fig. 6b, 21).

    `samples` holds one entry per seed: ``{name: {layer: mask}}``, where names are criteria and may include
    ``"init"`` for the shared initial mask. As in appendix K, eq. 1 is averaged over layers for each seed and the
    mean and std are then taken over seeds.
    """
    k = len(names)
    per_seed = np.full((len(samples), k, k), np.nan)
    for s, sample in enumerate(samples):
        for (i, a), (j, b) in itertools.product(enumerate(names), repeat=2):
            if a in sample and b in sample:
                per_seed[s, i, j] = mean_jaccard(sample[a], sample[b])
    count = (~np.isnan(per_seed)).sum(axis=0)
    return JaccardMatrix(tuple(names), _nanmean(per_seed, axis=0), _nanstd(per_seed, axis=0), count)


@dataclass(frozen=True)
class OverTime:
    """J(run criterion's would-prune set, other criterion's would-prune set) at each probe step (fig. 18)."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    steps: tuple[int, ...]
    mean: np.ndarray  # [row, column, step]
    std: np.ndarray
    count: np.ndarray


def jaccard_over_time(runs: Sequence[tuple[str, Mapping[int, Mapping[str, LayerSets]]]]) -> OverTime:
    """Per run: (its own criterion, {step: {criterion: would-prune sets}}) -> mean and std over runs per cell.

    The relation is not symmetric: row r is a run trained with criterion r, column c is what c would prune from
    that run's state, compared with what r itself would prune there. Runs of one criterion are seeds.
    """
    rows = tuple(sorted({own for own, _ in runs}))
    columns = tuple(sorted({c for _, probes in runs for sets in probes.values() for c in sets}))
    steps = tuple(sorted({step for _, probes in runs for step in probes}))
    values: dict[tuple[int, int, int], list[float]] = {}
    for own, probes in runs:
        for step, sets in probes.items():
            if own not in sets:
                raise ValueError(f"the probe at step {step} lacks the run's own criterion {own!r}; "
                                 f"it holds {sorted(sets)} (add {own!r} to probe_criteria)")
            for c, other in sets.items():
                key = (rows.index(own), columns.index(c), steps.index(step))
                values.setdefault(key, []).append(mean_jaccard(sets[own], other))
    shape = (len(rows), len(columns), len(steps))
    mean, std, count = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=int)
    for key, vals in values.items():
        arr = np.array(vals, dtype=float)
        mean[key], std[key], count[key] = _nanmean(arr), _nanstd(arr), int(np.count_nonzero(~np.isnan(arr)))
    return OverTime(rows, columns, steps, mean, std, count)


def retained_removed_by_all(masks: Sequence[LayerSets]) -> tuple[float, float]:
    """(weights kept by every mask / weights kept, weights removed by every mask / weights removed) (fig. 19).

    `masks` are the end masks of all criteria from one seed. The denominators are the mean number of kept and of
    removed weights per mask (equal for every criterion at exact density). Layers full in every mask are left
    out: no criterion could remove anything there.
    """
    if len(masks) < 2:
        raise ValueError(f"retained-by-all needs the end masks of at least two criteria, got {len(masks)}")
    layers = [name for name in sorted(masks[0]) if not all(np.asarray(m[name]).all() for m in masks)]
    if not layers:
        return float("nan"), float("nan")
    stacked = [np.stack([np.asarray(m[name], dtype=bool).ravel() for m in masks]) for name in layers]
    kept_by_all = sum(int(s.all(axis=0).sum()) for s in stacked)
    removed_by_all = sum(int((~s).all(axis=0).sum()) for s in stacked)
    kept = np.mean([sum(int(s[i].sum()) for s in stacked) for i in range(len(masks))])
    removed = np.mean([sum(int((~s[i]).sum()) for s in stacked) for i in range(len(masks))])
    return (kept_by_all / kept if kept else float("nan"), removed_by_all / removed if removed else float("nan"))


def _layers_of(samples: Sequence[Mapping[str, LayerSets]]) -> list[str]:
    return sorted({name for sample in samples for sets in sample.values() for name in sets})


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """nanmean without the 'mean of empty slice' warning: an all-nan slice is simply nan."""
    values = np.asarray(values, dtype=float)
    count = np.sum(~np.isnan(values), axis=axis)
    total = np.nansum(values, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(result) if np.ndim(result) == 0 else result


def _nanstd(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Sample std (ddof=1) ignoring nan; nan where fewer than two values exist."""
    values = np.asarray(values, dtype=float)
    count = np.sum(~np.isnan(values), axis=axis)
    mean = _nanmean(values, axis=axis)
    centred = values - (np.expand_dims(mean, axis) if axis is not None else mean)
    squares = np.nansum(centred**2, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.where(count > 1, np.sqrt(squares / np.maximum(count - 1, 1)), np.nan)
    return float(result) if np.ndim(result) == 0 else result
