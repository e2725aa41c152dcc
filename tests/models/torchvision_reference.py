"""torchvision as a test-only reference for the EfficientNet conversion, when it is installed.

Install it without its dependencies (`pip install --no-deps torchvision==<the release for this torch>`): its
model code is pure Python. A torchvision wheel built for CUDA cannot load its compiled operators against a CPU
torch, and its import then fails while registering fake kernels for those operators (nms, roi_align, ...); the
models need none of them, so that one module is replaced by an empty one before importing.
"""

from __future__ import annotations

import sys
import types


def import_torchvision_models():
    """`torchvision.models`, or None when torchvision is not installed."""
    try:
        import torchvision.models as models  # noqa: PLC0415
        return models
    except ImportError:
        return None
    except RuntimeError:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        import torchvision.models as models  # noqa: PLC0415
        return models


def randomise_batch_norm(model, seed: int) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics (fresh ones are 1 and 0)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.weight.data, module.bias.data, module.running_mean):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
