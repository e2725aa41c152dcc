"""Prune-fraction schedules: rho_t as a function of the step.

Signature: ``fn(step, *, initial, total, **params) -> float`` where `initial` is the configured prune fraction and
`total` the step at which updates end (T).
"""

from __future__ import annotations

import math
from typing import Annotated

from dstbench.sparsity.registry import Range, Registry

SCHEDULES = Registry("schedule")


def register_schedule(name: str, fn=None, *, overwrite: bool = False):
    return SCHEDULES.register(name, fn, overwrite=overwrite)


def list_schedules() -> list[str]:
    return SCHEDULES.names()


@register_schedule("cosine")
def cosine(step: int, *, initial: float, total: int) -> float:
    """rho_t = rho / 2 * (1 + cos(pi * t / T)), the paper's schedule (no floor), 0 from T on."""
    if total <= 0 or step >= total:
        return 0.0
    return 0.5 * initial * (1.0 + math.cos(math.pi * step / total))


@register_schedule("constant")
def constant(step: int, *, initial: float, total: int) -> float:
    return initial


@register_schedule("linear")
def linear(step: int, *, initial: float, total: int, factor: Annotated[float, Range(gt=0.0, le=1.0)] = 0.99,
           every: Annotated[int, Range(gt=0)] = 600) -> float:
    """The paper's "linear" schedule: rho multiplied by `factor` every `every` steps (a step decay)."""
    return initial * factor ** (step // every)
