"""The DST engine: masks, layer densities, pruning criteria, growth rules and prune-fraction schedules.

Pure PyTorch: no files, no training loop, no printing.
"""

from dstbench.sparsity.config import SparsityConfig
from dstbench.sparsity.criteria import CRITERIA, list_criteria, register_criterion
from dstbench.sparsity.distributions import DISTRIBUTIONS, exact_counts, layer_densities
from dstbench.sparsity.engine import DST
from dstbench.sparsity.growth import GROWTH, list_growth, register_growth
from dstbench.sparsity.layers import SPARSE_LAYER_TYPES, sparse_parameters
from dstbench.sparsity.registry import parse_rule
from dstbench.sparsity.schedules import SCHEDULES, list_schedules, register_schedule


def list_distributions() -> list[str]:
    return DISTRIBUTIONS.names()


__all__ = [
    "CRITERIA",
    "DISTRIBUTIONS",
    "DST",
    "GROWTH",
    "SCHEDULES",
    "SPARSE_LAYER_TYPES",
    "SparsityConfig",
    "exact_counts",
    "layer_densities",
    "list_criteria",
    "list_distributions",
    "list_growth",
    "list_schedules",
    "parse_rule",
    "register_criterion",
    "register_growth",
    "register_schedule",
    "sparse_parameters",
]
