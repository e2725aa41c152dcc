"""The DST engine: masks, layer densities, pruning criteria, growth rules and prune-fraction schedules.

Pure PyTorch: no files, no training loop, no printing. Names are imported on first use, so that the engine's
option declarations (`dstbench.sparsity.config`, read by `dstbench.config`) load without torch.
"""

from __future__ import annotations

from dstbench.lazy import lazy_exports

_NAMES = {
    "SparsityConfig": "config",
    "CRITERIA": "criteria",
    "list_criteria": "criteria",
    "register_criterion": "criteria",
    "DISTRIBUTIONS": "distributions",
    "exact_counts": "distributions",
    "layer_densities": "distributions",
    "list_distributions": "distributions",
    "DST": "engine",
    "GROWTH": "growth",
    "list_growth": "growth",
    "register_growth": "growth",
    "SPARSE_LAYER_TYPES": "layers",
    "sparse_parameters": "layers",
    "parse_rule": "registry",
    "SCHEDULES": "schedules",
    "list_schedules": "schedules",
    "register_schedule": "schedules",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_exports(__name__, _NAMES)
