"""The paper's eight architectures behind one registry (appendix A.1).

    model = dstbench.models.build("lenet5_caffe", num_classes=10)
    dstbench.models.list()           # ['efficientnet_b0', 'large_mlp', 'lenet5_caffe', ...]
    dstbench.models.info("resnet56") # default input (3, 32, 32), 10 classes, CIFAR-10

All models return logits (no softmax). Sizes adapt to the data set through `build`'s keywords; see
`dstbench.models.registry` for the builder conventions that `register` expects of user models.
"""

from __future__ import annotations

from dstbench.models import efficientnet, lenet, mlp, resnet, resnet_cifar, roberta, small_cnn, vgg  # noqa: F401  (register)
from dstbench.models.registry import ModelInfo, build, info, list_models, register

list = list_models  # noqa: A001  (the public name is dstbench.models.list, like timm's list_models)

__all__ = ["ModelInfo", "build", "info", "list", "list_models", "register"]
