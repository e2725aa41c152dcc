"""Growth rules: score functions over inactive weights, higher = grow first.

Signature: ``fn(weight, grad, candidates, *, generator, momentum, **params) -> scores``. `grad` is the mini-batch
loss gradient (dense: inactive weights have one too), `momentum` the optimizer's first-moment buffer (None when the
rule does not declare it needs one), `candidates` marks the weights that may be grown. A rule with no preference
returns None: the engine then grows a uniform random choice among the candidates, from its seeded generator.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dstbench.sparsity.registry import Registry, needs

GROWTH = Registry("growth rule")


def register_growth(name: str, fn=None, *, needs_grad: bool = False, needs_momentum: bool = False,
                    overwrite: bool = False):
    """Register a growth rule (decorator). See the module docstring for the signature."""
    return GROWTH.register(name, fn, needs=needs(grad=needs_grad, momentum=needs_momentum), overwrite=overwrite)


def list_growth() -> list[str]:
    return GROWTH.names()


@register_growth("random")
def random(weight: Tensor, grad: Tensor | None, candidates: Tensor, *, generator: torch.Generator,
           momentum: Tensor | None) -> None:
    """Uniform among candidates (an exact count is grown, unlike per-element Bernoulli draws)."""
    return None


@register_growth("gradient", needs_grad=True)
def gradient(weight: Tensor, grad: Tensor, candidates: Tensor, *, generator: torch.Generator,
             momentum: Tensor | None) -> Tensor:
    """|g| (RigL): the inactive weights whose loss gradient is largest."""
    return grad.abs()


@register_growth("momentum", needs_momentum=True)
def momentum(weight: Tensor, grad: Tensor | None, candidates: Tensor, *, generator: torch.Generator,
             momentum: Tensor) -> Tensor:
    """|m| (SNFS-style): the inactive weights with the largest optimizer momentum (SGD buffer or Adam's m)."""
    return momentum.abs()
