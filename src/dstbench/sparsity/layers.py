"""Which weights of a model DST makes sparse, and a check that every process holds the same masks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

SPARSE_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


# A model may name submodules (prefixes of `named_modules` names) whose weights stay dense and out of the density,
# as a tuple attribute of this name: e.g. a pretrained transformer's classification head (see models/roberta.py).
DENSE_MODULES_ATTRIBUTE = "dst_dense_modules"


def sparse_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights DST makes sparse: those of Linear and Conv layers that are trained, in parameter order.

    A weight shared by several modules appears once (under its first name); frozen weights
    (``requires_grad=False``) stay dense and out of the density, since nothing could regrow them, and so do the
    weights of the modules the model lists in its `dst_dense_modules` attribute.
    """
    dense = tuple(getattr(model, DENSE_MODULES_ATTRIBUTE, ()))
    eligible = {
        id(m.weight)
        for name, m in model.named_modules()
        if isinstance(m, SPARSE_LAYER_TYPES) and isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
        and not any(name == d or name.startswith(d + ".") for d in dense)
    }
    return {name: p for name, p in model.named_parameters() if id(p) in eligible}


def match_dense_layers(names: Iterable[str], dense_layers: Iterable[str]) -> set[str]:
    """The sparse weights (of `names`, `sparse_parameters`' keys) that `dense_layers` keep dense: a layer is named
    by its module (``"classifier"``) or its weight (``"classifier.weight"``). Raises ValueError naming the first
    name that matches none, and the valid ones."""
    names = list(names)
    dense = set()
    for name in dense_layers:
        matches = {p for p in names if p == name or p == f"{name}.weight"}
        if not matches:
            raise ValueError(f"dense layer {name!r} is not a sparse weight; valid: {', '.join(names)}")
        dense |= matches
    return dense


def verify_masks_match_across_ranks(masks: Mapping[str, Tensor], step: int) -> None:
    """Under torch.distributed, check every rank chose the same masks (they must: same grads and seed).

    One fingerprint per mask, reduced with MIN and MAX: a few integers on the wire, at update steps only.
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    local = torch.stack([_fingerprint(m) for m in masks.values()])
    low, high = local.clone(), local.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if not torch.equal(low, high):
        raise RuntimeError(
            f"masks differ across ranks after the update at step {step}: the ranks' weights, gradients "
            "or seeds are not identical (wrap the model in DistributedDataParallel and use one seed)"
        )


def _fingerprint(mask: Tensor) -> Tensor:
    """An order-sensitive fingerprint of a mask (positions weighted by a fixed pseudo-random sequence)."""
    flat = mask.reshape(-1).to(torch.int64)
    weights = (torch.arange(flat.numel(), device=mask.device, dtype=torch.int64) * 2654435761) % 1000003
    return (flat * weights).sum()
