"""EfficientNet-B0 (Tan & Le 2019) in the layout of PyTorch's reference model, which the paper trained.

MBConv blocks with squeeze-and-excitation and SiLU, the standard B0 stage table, a 1x1 head to 1280 channels,
dropout 0.2 before the classifier and stochastic depth rising linearly to 0.2 over the blocks. At 1000 classes
it has the standard 5,288,548 parameters; at 64x64 (Tiny-ImageNet) the last feature map is 2x2.

`EfficientNet.from_torchvision_state(state)` renames the tensors of a torchvision `efficientnet_b0` state dict
(e.g. the published ImageNet weights, efficientnet_b0_rwightman-7f5810bc.pth) to this model's names, so
`--init-from` can fine-tune from it (the paper's appendix H); the layouts are the same tensor for tensor.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dstbench.models.registry import register

# One row per stage: expansion ratio, kernel size, stride of the first block, output channels, blocks.
_B0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
_STEM = 32
_HEAD = 1280


def _conv_bn_silu(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.SiLU(),
    )


def stochastic_depth(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero the whole residual branch of each example with probability `p`, scaling survivors by 1/(1-p)."""
    if not training or p == 0.0:
        return x
    keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(1.0 - p)
    return x * keep.div_(1.0 - p)


class SqueezeExcitation(nn.Module):
    """Channel gates: global average pool -> 1x1 conv -> SiLU -> 1x1 conv -> sigmoid, times the input."""

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.expand(F.silu(self.reduce(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(gate)


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand] -> depthwise kxk -> squeeze-excitation -> 1x1 project (no activation).

    The squeeze width is a quarter of the block's input channels. The residual connection (with stochastic
    depth) exists when the block keeps the shape.
    """

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int, drop_prob: float):
        super().__init__()
        hidden = c_in * expand
        self.expand = _conv_bn_silu(c_in, hidden, 1) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn_silu(hidden, hidden, kernel, stride=stride, groups=hidden)
        self.se = SqueezeExcitation(hidden, max(1, c_in // 4))
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.residual:
            out = stochastic_depth(out, self.drop_prob, self.training) + x
        return out


class EfficientNet(nn.Module):
    """Stem conv 3x3 stride 2 -> MBConv stages -> 1x1 head -> global average pool -> dropout -> linear."""

    def __init__(
        self,
        stages: tuple[tuple[int, int, int, int, int], ...],
        in_channels: int,
        num_classes: int,
        head_dropout: float,
        stochastic_depth: float,
    ):
        super().__init__()
        self.stages = tuple(tuple(stage) for stage in stages)
        self.stem = _conv_bn_silu(in_channels, _STEM, 3, stride=2)
        total = sum(stage[-1] for stage in stages)
        blocks: list[nn.Module] = []
        c_in = _STEM
        for expand, kernel, stride, c_out, repeats in stages:
            for index in range(repeats):
                # The drop probability rises linearly with the block's position in the network.
                drop = stochastic_depth * len(blocks) / total
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if index == 0 else 1, drop))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = _conv_bn_silu(c_in, _HEAD, 1)
        self.dropout = nn.Dropout(head_dropout) if head_dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(_HEAD, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # PyTorch's reference initialisation: Kaiming-normal fan-out convs with zero biases, BN 1/0, and a
        # linear layer uniform in +-1/sqrt(classes) with zero bias.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.out_features)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    @staticmethod
    def is_torchvision_state(state: dict[str, torch.Tensor]) -> bool:
        """Whether `state` is laid out as torchvision's EfficientNet (`features.0.0.weight`, ...)."""
        return "features.0.0.weight" in state and "classifier.1.weight" in state

    def from_torchvision_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A torchvision EfficientNet state dict (same stage table) under this model's names.

        torchvision keeps the stem in `features.0`, stage s's block b in `features.s.b.block` (its parts in order:
        [1x1 expand], depthwise, squeeze-excitation `fc1`/`fc2`, project), the 1x1 head in the last `features`
        entry, and the linear layer in `classifier.1`. Raises KeyError on a tensor it cannot place.
        """
        names = {"features.0.": "stem.", f"features.{len(self.stages) + 1}.": "head.", "classifier.1.": "classifier."}
        index = 0
        for stage, (expand, *_rest, repeats) in enumerate(self.stages, start=1):
            parts = (["expand"] if expand != 1 else []) + ["depthwise", "se", "project"]
            for block in range(repeats):
                for position, part in enumerate(parts):
                    source = f"features.{stage}.{block}.block.{position}."
                    if part == "se":
                        names[source + "fc1."] = f"blocks.{index}.se.reduce."
                        names[source + "fc2."] = f"blocks.{index}.se.expand."
                    else:
                        names[source] = f"blocks.{index}.{part}."
                index += 1
        converted = {}
        for key, tensor in state.items():
            prefix = max((p for p in names if key.startswith(p)), key=len, default=None)
            if prefix is None:
                raise KeyError(f"torchvision EfficientNet tensor {key!r} has no place in this model "
                               f"(another stage table or another model?)")
            converted[names[prefix] + key[len(prefix):]] = tensor
        return converted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))


@register("efficientnet_b0", input_shape=(3, 64, 64), num_classes=200, dataset="tinyimagenet")
def efficientnet_b0(
    *,
    in_channels: int,
    input_size: tuple[int, int],
    num_classes: int,
    head_dropout: float = 0.2,
    stochastic_depth: float = 0.2,
) -> EfficientNet:
    """EfficientNet-B0 (5,288,548 parameters at 1000 classes) for Tiny-ImageNet at 64x64.

    `head_dropout` (before the classifier) and `stochastic_depth` (the largest drop probability, reached by the
    last block) default to PyTorch's reference values, which the paper used.
    """
    for option, value in (("head_dropout", head_dropout), ("stochastic_depth", stochastic_depth)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"efficientnet_b0: {option} must be in [0, 1), got {value}")
    return EfficientNet(_B0_STAGES, in_channels, num_classes, head_dropout, stochastic_depth)
