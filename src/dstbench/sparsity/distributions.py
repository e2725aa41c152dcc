"""Layer densities: how a target overall density is spread over the sparse layers.

Every distribution returns one density per layer; `exact_counts` turns them into whole numbers of active weights
so that the overall count equals round(target * total) within one weight per layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Annotated

from dstbench.sparsity.registry import Range, Registry

DISTRIBUTIONS = Registry("distribution")

Shapes = Mapping[str, Sequence[int]]


def list_distributions() -> list[str]:
    return DISTRIBUTIONS.names()


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _solve_with_dense_cap(
    shapes: Shapes, density: float, raw: Mapping[str, float], dense: set[str]
) -> dict[str, float]:
    """Densities eps * raw[l], with layers that would exceed 1 made dense and eps solved again.

    The total number of active weights is fixed: sum_l d_l n_l = density * sum_l n_l. Layers in `dense` (and
    layers the loop caps) contribute n_l; the rest share what is left in proportion to raw[l] * n_l.
    """
    total = sum(_numel(s) for s in shapes.values())
    budget = density * total
    dense = set(dense)
    while True:
        dense_count = sum(_numel(shapes[n]) for n in dense)
        free = {n: raw[n] * _numel(s) for n, s in shapes.items() if n not in dense}
        if not free:
            return {n: 1.0 for n in shapes}
        eps = (budget - dense_count) / sum(free.values())
        if eps <= 0:
            raise ValueError(
                f"density {density} is too low to keep layers {sorted(dense)} dense: they alone hold "
                f"{dense_count} of the {budget:.0f} weights the target allows"
            )
        over = {n for n in free if eps * raw[n] > 1.0}
        if not over:
            return {n: (1.0 if n in dense else eps * raw[n]) for n in shapes}
        dense |= over


@DISTRIBUTIONS.register("uniform")
def uniform(shapes: Shapes, density: float, *, dense: frozenset[str] = frozenset()) -> dict[str, float]:
    """The same density in every layer (layers kept dense are paid for by the others)."""
    return _solve_with_dense_cap(shapes, density, {n: 1.0 for n in shapes}, set(dense))


def _er_raw(shape: Sequence[int]) -> float:
    n_out, n_in = shape[0], shape[1]
    return (n_in + n_out) / (n_in * n_out)


def _erk_raw(shape: Sequence[int], power: float) -> float:
    return (sum(shape) / _numel(shape)) ** power


@DISTRIBUTIONS.register("er")
def erdos_renyi(shapes: Shapes, density: float, *, dense: frozenset[str] = frozenset()) -> dict[str, float]:
    """Erdős-Rényi: d_l proportional to (n_in + n_out) / (n_in * n_out); kernel sizes are ignored."""
    return _solve_with_dense_cap(shapes, density, {n: _er_raw(s) for n, s in shapes.items()}, set(dense))


@DISTRIBUTIONS.register("erk")
def erdos_renyi_kernel(
    shapes: Shapes, density: float, *, power: Annotated[float, Range(gt=0.0)] = 1.0,
    dense: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """ER-Kernel: d_l proportional to (sum of the weight's dimensions / their product) ** power.

    For a 2-D weight this is ER; for a conv weight it adds the kernel's height and width.
    """
    raw = {n: _erk_raw(s, power) for n, s in shapes.items()}
    return _solve_with_dense_cap(shapes, density, raw, set(dense))


def layer_densities(
    distribution: str, shapes: Shapes, density: float, *, dense: frozenset[str] = frozenset(), power: float = 1.0
) -> dict[str, float]:
    """Densities of the named distribution (``"erk"``, ``"erk:power=2"``, ...), after checking the target.

    `power` is the ERK exponent where the distribution string does not set one.
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if not shapes:
        raise ValueError("no sparse layers to distribute a density over")
    rule, fn, params = DISTRIBUTIONS.resolve(distribution)
    if "power" in rule.parameters() and "power" not in params:
        fn = partial(fn, power=power)
    return fn(shapes, density, dense=dense)


def exact_counts(shapes: Shapes, densities: Mapping[str, float]) -> dict[str, int]:
    """Whole numbers of active weights per layer: at least one per layer, at most all of them."""
    counts = {}
    for name, shape in shapes.items():
        n = _numel(shape)
        counts[name] = min(n, max(1, round(densities[name] * n)))
    return counts
