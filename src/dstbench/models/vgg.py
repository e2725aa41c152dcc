"""VGG-16 with batch norm, adapted to 32x32 inputs as in the paper's code (after Liu et al. 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dstbench.models.common import require_positive
from dstbench.models.registry import register

# VGG-16's thirteen 3x3 convolutions; "M" is a 2x2 max-pool. The fifth pool is left out: on CIFAR the last map
# is 2x2 and global average pooling reduces it to the 512 features of the classifier.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


class VGG(nn.Module):
    """(conv 3x3 -> BN -> ReLU) per number in `config`, 2x2 max-pool per "M", global average pool, one linear."""

    def __init__(self, config: tuple[int | str, ...], in_channels: int, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                width = int(item)
                layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # As in the paper's code: Kaiming-normal (fan-in, ReLU gain) weights, zero biases, BN weight 1, bias 0.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


@register("vgg16_bn", input_shape=(3, 32, 32), num_classes=100, dataset="cifar100")
def vgg16_bn(*, in_channels: int, input_size: tuple[int, int], num_classes: int) -> VGG:
    """VGG-16 with batch norm for CIFAR: 13 bias-free convs, global average pool, linear 512 -> classes
    (14,770,212 parameters at 100 classes). Inputs need at least 16x16 (four 2x2 max-pools)."""
    pools = _VGG16.count("M")
    require_positive("vgg16_bn", input_size, (input_size[0] >> pools, input_size[1] >> pools),
                     f"{pools} 2x2 max-pools need inputs of at least {2 ** pools}x{2 ** pools}")
    return VGG(_VGG16, in_channels, num_classes)
