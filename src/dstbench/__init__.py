"""dstbench: dynamic sparse training and the benchmark for its pruning and growth criteria.

The engine's names are re-exported here (`dstbench.DST`, `dstbench.register_criterion`, ...); they are
imported on first use so that `import dstbench` and the CLI start quickly.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_ENGINE_NAMES = {
    "DST",
    "SparsityConfig",
    "list_criteria",
    "list_distributions",
    "list_growth",
    "list_schedules",
    "register_criterion",
    "register_growth",
    "register_schedule",
}
_SUBPACKAGES = {"sparsity", "models", "data", "train", "experiments", "analysis", "report", "store", "config"}

__all__ = sorted(_ENGINE_NAMES | _SUBPACKAGES | {"__version__"})


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        return getattr(importlib.import_module("dstbench.sparsity"), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"dstbench.{name}")
    raise AttributeError(f"module 'dstbench' has no attribute {name!r}")
