"""ResNet-56 for CIFAR (He et al. 2016, section 4.2): 3 stages of 9 basic blocks with 16, 32 and 64 channels.

Where a block changes shape, the shortcut is a 1x1 convolution (stride 2, no bias) followed by batch norm
("option B"). This is the variant with the paper's 855,770 parameters at 10 classes; the parameter-free
"option A" shortcut (zero padding) would give 853,018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dstbench.models.registry import register

_WIDTHS = (16, 32, 64)


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """conv 3x3 (16) -> BN -> ReLU -> three stages of `blocks_per_stage` blocks -> global average pool -> fc."""

    def __init__(self, blocks_per_stage: int, in_channels: int, num_classes: int):
        super().__init__()
        self.conv = _conv3x3(in_channels, _WIDTHS[0])
        self.bn = nn.BatchNorm2d(_WIDTHS[0])
        blocks: list[nn.Module] = []
        c_in = _WIDTHS[0]
        for stage, width in enumerate(_WIDTHS):
            for index in range(blocks_per_stage):
                blocks.append(BasicBlock(c_in, width, stride=2 if stage > 0 and index == 0 else 1))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # As in the paper's code: Kaiming-normal (fan-in, ReLU gain) for every conv and linear weight; biases
        # keep PyTorch's default; batch norm starts at weight 1, bias 0.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register("resnet56", input_shape=(3, 32, 32), num_classes=10, dataset="cifar10")
def resnet56(*, in_channels: int, input_size: tuple[int, int], num_classes: int) -> CifarResNet:
    """ResNet-56 for CIFAR, 1x1-conv + BN projection shortcuts (855,770 parameters at 10 classes).

    Global average pooling makes it work at any input size; the paper trains it on CIFAR-10 and CIFAR-100.
    """
    return CifarResNet(blocks_per_stage=9, in_channels=in_channels, num_classes=num_classes)
