"""The paper's fully connected networks (appendix A.1, table 2): ReLU MLPs that flatten their input."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dstbench.models.registry import register


def _dropout(p: float) -> nn.Module:
    # Identity when p == 0, so a model without dropout has no Dropout module at all.
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return nn.Dropout(p) if p > 0 else nn.Identity()


class MLP(nn.Module):
    """Flatten -> [input dropout] -> (Linear -> ReLU -> dropout) per hidden width -> Linear.

    The hidden layers are `hidden.0`, `hidden.1`, ... and the output layer is `classifier`; the names do not
    depend on whether dropout is used, so masks and checkpoints carry over between the two.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
    ):
        super().__init__()
        widths = [in_features, *hidden]
        self.input_dropout = _dropout(input_dropout)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.dropout = _dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(torch.flatten(x, 1))
        for layer in self.hidden:
            x = self.dropout(torch.relu(layer(x)))
        return self.classifier(x)


@register("small_mlp", input_shape=(24,), num_classes=1, dataset="higgs")
def small_mlp(*, in_features: int, num_classes: int, dropout: float = 0.0, input_dropout: float = 0.0) -> MLP:
    """Small MLP 24-256-256-1 (72,449 parameters) for Higgs; one logit for binary cross-entropy."""
    return MLP(in_features, (256, 256), num_classes, dropout, input_dropout)


@register("large_mlp", input_shape=(3, 32, 32), num_classes=10, dataset="cifar10")
def large_mlp(*, in_features: int, num_classes: int, dropout: float = 0.0, input_dropout: float = 0.0) -> MLP:
    """Large MLP 3072-1024-512-10 (3,676,682 parameters) for CIFAR-10.

    The paper's dropout baseline (fig. 4, p = 0.05) dropped the input too: ``dropout=0.05, input_dropout=0.05``.
    """
    return MLP(in_features, (1024, 512), num_classes, dropout, input_dropout)
