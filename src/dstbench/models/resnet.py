"""ResNet-50 for ImageNet (He et al. 2016) in the common PyTorch layout: bottleneck blocks with the stride in
the 3x3 convolution ("v1.5"), 1x1-conv + BN projection shortcuts, 25,557,032 parameters at 1000 classes.

The paper quotes 25,502,912: that is the same network without its biases and batch-norm parameters (54,120),
i.e. the weights a sparse model sparsifies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dstbench.models.registry import register

_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # bottleneck width, blocks, stride
_EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride here) -> 1x1 expand, each with BN, ReLU after the first two and after the sum."""

    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        c_out = width * _EXPANSION
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.downsample(x))


class ResNet(nn.Module):
    """conv 7x7/2 -> BN -> ReLU -> max-pool 3x3/2 -> four bottleneck stages -> global average pool -> fc."""

    def __init__(self, stages: tuple[tuple[int, int, int], ...], in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        c_in = 64
        layers: list[nn.Module] = []
        for width, blocks, stride in stages:
            stage: list[nn.Module] = []
            for index in range(blocks):
                stage.append(Bottleneck(c_in, width, stride if index == 0 else 1))
                c_in = width * _EXPANSION
            layers.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # The standard ResNet initialisation (also the paper's code): Kaiming-normal fan-out convs, BN 1/0;
        # the linear layer keeps PyTorch's default.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = F.adaptive_avg_pool2d(self.layers(x), 1)
        return self.fc(torch.flatten(x, 1))


@register("resnet50", input_shape=(3, 224, 224), num_classes=1000, dataset="imagenet")
def resnet50(*, in_channels: int, input_size: tuple[int, int], num_classes: int) -> ResNet:
    """ResNet-50 (25,557,032 parameters at 1000 classes) for ImageNet at 224x224.

    Global average pooling makes it work at any input size (at 32x32 the last feature map is 1x1).
    """
    return ResNet(_STAGES, in_channels, num_classes)
