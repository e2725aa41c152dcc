"""The paper's small ConvNet (appendix A.1, table 2), after Chollet's Deep Learning with Python, section 8.2.3."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dstbench.models.common import conv_output_size, require_positive
from dstbench.models.pooling import max_pool2x2
from dstbench.models.registry import register


class SmallCNN(nn.Module):
    """Three 3x3 ReLU convolutions (32, 64, 128 channels) with 2x2 max-pooling between them, global average
    pooling and one linear layer."""

    def __init__(self, in_channels: int, num_classes: int, padding: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=padding)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=padding)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=padding)
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = max_pool2x2(F.relu(self.conv1(x)))
        x = max_pool2x2(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _final_map_size(size: int, padding: int) -> int:
    size = conv_output_size(conv_output_size(size, 3, padding=padding), 2, stride=2)
    size = conv_output_size(conv_output_size(size, 3, padding=padding), 2, stride=2)
    return conv_output_size(size, 3, padding=padding)


@register("small_cnn", input_shape=(3, 32, 32), num_classes=10, dataset="cifar10")
def small_cnn(*, in_channels: int, input_size: tuple[int, int], num_classes: int, padding: int = 1) -> SmallCNN:
    """Small CNN, conv 32-64-128 3x3 + linear (94,538 parameters) for CIFAR-10.

    `padding` 1 follows the paper's text; the paper's code used 0 (feature maps 30-15-13-6-4 on CIFAR-10). The
    parameter count is the same either way.
    """
    if padding not in (0, 1):
        raise ValueError(f"small_cnn: padding must be 0 or 1, got {padding}")
    sizes = (_final_map_size(input_size[0], padding), _final_map_size(input_size[1], padding))
    require_positive("small_cnn", input_size, sizes, f"three 3x3 convolutions (padding {padding}) and two 2x2 "
                     "max-pools leave no feature map")
    return SmallCNN(in_channels, num_classes, padding)
