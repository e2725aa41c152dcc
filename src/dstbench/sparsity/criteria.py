"""Pruning criteria: score functions over weights, higher = keep.

A criterion has the signature ``fn(weight, grad, active, *, generator, **params) -> scores`` where all tensors
have one shape, `grad` is the mini-batch loss gradient (None for criteria that do not need it) and `active` marks
the weights that may be pruned. A criterion registered with ``needs_momentum=True`` also gets ``momentum=``, the
optimizer's first-moment buffer. Inputs may be one layer or several layers flattened and concatenated (global
pruning), so a criterion must treat its input as a set of weights, not rely on a layer's shape. Only the scores of
active weights matter; they must be finite. The engine removes the lowest-scoring active weights; ties go to the
lower index.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from dstbench.sparsity.registry import Range, Registry, needs
from dstbench.vocab import CRITERION_DISPLAY_NAMES

CRITERIA = Registry("pruning criterion")

EPS = 1e-8


def register_criterion(name: str, fn=None, *, needs_grad: bool = False, needs_momentum: bool = False,
                       overwrite: bool = False, label: str | None = None):
    """Register a pruning criterion (decorator). See the module docstring for the signature. `label` is its name in
    the report's figures and tables (default: `name`)."""
    if label:
        CRITERION_DISPLAY_NAMES[name] = label
    return CRITERIA.register(name, fn, needs=needs(grad=needs_grad, momentum=needs_momentum), overwrite=overwrite)


def list_criteria() -> list[str]:
    return CRITERIA.names()


@register_criterion("magnitude")
def magnitude(weight: Tensor, grad: Tensor | None, active: Tensor, *, generator: torch.Generator) -> Tensor:
    """|w|."""
    return weight.abs()


@register_criterion("mest", needs_grad=True)
def mest(
    weight: Tensor, grad: Tensor, active: Tensor, *, generator: torch.Generator,
    lam: Annotated[float, Range(ge=0.0)] = 1.0,
) -> Tensor:
    """|w| + lam * |g| (MEST): the gradient as a hint of where the weight is heading."""
    return weight.abs() + lam * grad.abs()


@register_criterion("sensitivity", needs_grad=True)
def sensitivity(weight: Tensor, grad: Tensor, active: Tensor, *, generator: torch.Generator) -> Tensor:
    """|g| / (|w| + eps)."""
    return grad.abs() / (weight.abs() + EPS)


@register_criterion("reciprocal_sensitivity", needs_grad=True)
def reciprocal_sensitivity(weight: Tensor, grad: Tensor, active: Tensor, *, generator: torch.Generator) -> Tensor:
    """|w| / (|g| + eps) (the paper's RSensitivity): large, stable weights score high."""
    return weight.abs() / (grad.abs() + EPS)


@register_criterion("snip", needs_grad=True)
def snip(weight: Tensor, grad: Tensor, active: Tensor, *, generator: torch.Generator) -> Tensor:
    """|w * g|: the first-order Taylor estimate of the loss change when w is removed."""
    return (weight * grad).abs()


@register_criterion("random")
def random(weight: Tensor, grad: Tensor | None, active: Tensor, *, generator: torch.Generator) -> Tensor:
    """Uniform scores from the engine's seeded generator (drawn on the CPU so every device agrees)."""
    return torch.rand(weight.shape, generator=generator).to(weight.device)


def _rank_within(values: Tensor, members: Tensor) -> Tensor:
    """For each member, its 0-based position when members are sorted by `values` ascending (ties by index).

    Sorts the members only (at density 0.1, a tenth of the layer); non-members get 0.
    """
    index = members.reshape(-1).nonzero().squeeze(1)  # ascending, so a stable sort breaks ties by index
    order = torch.argsort(values.reshape(-1)[index], stable=True)
    ranks = torch.zeros(values.numel(), dtype=torch.long, device=values.device)
    ranks[index[order]] = torch.arange(index.numel(), device=values.device)
    return ranks.reshape(values.shape)


@register_criterion("set")
def set_(weight: Tensor, grad: Tensor | None, active: Tensor, *, generator: torch.Generator) -> Tensor:
    """SET: prune the smallest positive weights and the negative weights closest to zero in equal shares.

    Removal order alternates: 1st smallest non-negative, 1st negative closest to zero, 2nd smallest non-negative,
    ... so removing k weights takes ceil(k/2) from the non-negative side and floor(k/2) from the negative side,
    and when one side runs out the other makes up the rest. Zero weights count as the smallest non-negative ones.
    The score is the position in that order (first removed = lowest score).
    """
    w = weight.detach().float()
    positive = active & (w >= 0)
    negative = active & (w < 0)
    pos_rank = _rank_within(w, positive)
    neg_rank = _rank_within(-w, negative)
    order = torch.where(positive, 2 * pos_rank, 2 * neg_rank + 1)
    return order.to(torch.float64)
