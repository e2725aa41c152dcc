"""Training: the paper's recipes, the training loop, checkpoints and DDP."""

from dstbench.train.recipes import RECIPES, recipe_for, resolve_config

__all__ = ["RECIPES", "recipe_for", "resolve_config"]
