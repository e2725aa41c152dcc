"""Training: the paper's recipes, the training loop, checkpoints and DDP."""

from dstbench.train.recipes import RECIPES, VARIANTS, recipe_for, resolve_config

__all__ = ["RECIPES", "VARIANTS", "recipe_for", "resolve_config"]
