"""How the one trainer sees K >= 1 members: their inputs, labels and outputs (B, K, C), and their losses.

A lone member trains on its plain model (`Plain`, the fused layout's methods as identities); K > 1 on the fused
model (`dstbench.models.fusion.Fusion`). Exact kernels compute each member's loss as a solo run does, one
reduction per member, so that its gradient is bit-identical; batched ones reduce all members at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Plain:
    """The layout of one member: its plain model, unfused."""

    kernels = "exact"

    def __init__(self, model: nn.Module):
        self.model, self.members = model, [model]

    def inputs(self, batches: Sequence[Tensor]) -> Tensor:
        return batches[0]

    def labels(self, labels: Sequence[Tensor]) -> Tensor:
        return labels[0].unsqueeze(1)

    def outputs(self, out: Tensor) -> Tensor:
        return out.unsqueeze(1)

    def share(self, fused: Tensor, name: str, k: int) -> Tensor:
        return fused


def kernels_for(kernels: str, device: torch.device) -> str:
    """"auto": exact kernels on a CPU (bit-identical members), batched ones on a GPU (the fast path)."""
    if kernels == "auto":
        return "batched" if device.type == "cuda" else "exact"
    return kernels


def member_losses(out: Tensor, y: Tensor, *, binary: bool, exact: bool,
                  label_smoothing: float | None) -> list[Tensor] | Tensor:
    """The members' mean losses of their outputs (B, K, C) against labels (B, K), in float32: a list of K
    scalars with `exact` kernels, else one (K,) tensor."""
    out = out.float()
    if exact:
        if binary:
            return [F.binary_cross_entropy_with_logits(out[:, k].reshape(-1).contiguous(), y[:, k].float())
                    for k in range(out.shape[1])]
        return [F.cross_entropy(out[:, k].contiguous(), y[:, k], label_smoothing=label_smoothing)
                for k in range(out.shape[1])]
    if binary:
        return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float(), reduction="none").mean(0)
    return F.cross_entropy(out.permute(0, 2, 1), y, reduction="none", label_smoothing=label_smoothing).mean(0)


def stacked(losses: list[Tensor] | Tensor) -> Tensor:
    """`member_losses` as one (K,) tensor."""
    return torch.stack(losses) if isinstance(losses, list) else losses


def correct(out: Tensor, y: Tensor, *, binary: bool) -> Tensor:
    """The members' correct predictions (K,) among outputs (B, K, C) against labels (B, K)."""
    if binary:
        return ((out.squeeze(-1) > 0).long() == y).sum(0)
    return (out.argmax(2) == y).sum(0)
