"""LeNet-5 as in Caffe's MNIST example: no padding, so the feature maps are smaller than in LeCun's LeNet-5."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dstbench.models.common import conv_output_size, require_positive
from dstbench.models.pooling import max_pool2x2
from dstbench.models.registry import register


def _feature_side(size: int) -> int:
    """Side of the map after conv 5x5 -> max-pool 2 -> conv 5x5 -> max-pool 2 (28 -> 24 -> 12 -> 8 -> 4)."""
    for _ in range(2):
        size = conv_output_size(conv_output_size(size, 5), 2, stride=2)
    return size


class LeNet5Caffe(nn.Module):
    """conv 20 5x5 -> ReLU -> max-pool 2 -> conv 50 5x5 -> ReLU -> max-pool 2 -> fc 500 -> ReLU -> fc."""

    def __init__(self, in_channels: int, input_size: tuple[int, int], num_classes: int):
        super().__init__()
        height, width = (_feature_side(s) for s in input_size)
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * height * width, 500)
        self.classifier = nn.Linear(500, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = max_pool2x2(F.relu(self.conv1(x)))
        x = max_pool2x2(F.relu(self.conv2(x)))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.classifier(x)


@register("lenet5_caffe", input_shape=(1, 28, 28), num_classes=10, dataset="fashionmnist")
def lenet5_caffe(*, in_channels: int, input_size: tuple[int, int], num_classes: int) -> LeNet5Caffe:
    """LeNet-5-Caffe, conv 20-50 5x5 + fc 800-500-10 (431,080 parameters at 28x28) for FashionMNIST.

    The first fully connected layer has 50 * h * w inputs for the final h x w map, so it follows the input size
    (800 at 28x28, 1250 at 32x32); inputs need at least 16x16.
    """
    sides = (_feature_side(input_size[0]), _feature_side(input_size[1]))
    require_positive("lenet5_caffe", input_size, sides, "two unpadded 5x5 convolutions and two 2x2 max-pools need "
                     "inputs of at least 16x16")
    return LeNet5Caffe(in_channels, input_size, num_classes)
