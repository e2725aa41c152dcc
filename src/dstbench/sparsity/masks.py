"""Pure tensor operations on masks: exact random masks and deterministic top-k selection."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def random_mask(shape: torch.Size | tuple[int, ...], count: int, generator: torch.Generator,
                device: torch.device | str = "cpu") -> Tensor:
    """A bool mask with exactly `count` True entries placed uniformly at random (drawn on the CPU)."""
    numel = math.prod(shape)
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[torch.randperm(numel, generator=generator)[:count]] = True
    return mask.reshape(shape).to(device)


def select_lowest(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """The `k` eligible entries with the lowest scores, as a bool mask; ties go to the lower flat index.

    `k` must not exceed the number of eligible entries (callers know that count exactly). A selection, not a
    sort: the k-th smallest score splits the entries in linear time, and only ties at that score are ordered.
    """
    flat = torch.where(eligible, scores, torch.full_like(scores, float("inf"))).reshape(-1)
    if k <= 0:
        return torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    threshold = torch.kthvalue(flat, k).values
    chosen = flat < threshold
    missing = k - int(chosen.sum())
    if missing > 0:
        ties = torch.nonzero(flat == threshold).reshape(-1)[:missing]
        chosen[ties] = True
    return chosen.reshape(scores.shape)


def select_highest(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """The `k` eligible entries with the highest scores; ties go to the lower flat index."""
    return select_lowest(-scores, eligible, k)


def prune_count(fraction: float, active: int) -> int:
    """ceil(fraction * active), robust to floating-point noise (0.5 * 100 is 50, not 51)."""
    return min(active, math.ceil(fraction * active - 1e-9))
