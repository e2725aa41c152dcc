"""Resolving a config against its recipe (the tables are `dstbench.recipes`): the defaults it leaves as None
filled in, and the result checked against its model and optimizer."""

from __future__ import annotations

from dstbench.config import RunConfig
from dstbench.recipes import DATASET_RECIPES, DEFAULT_RECIPE, RECIPES, VARIANTS, named_recipe, recipe_for

__all__ = ["DATASET_RECIPES", "DEFAULT_RECIPE", "RECIPES", "VARIANTS", "named_recipe", "recipe_for", "resolve_config"]


def resolve_config(config: RunConfig) -> RunConfig:
    """Fill every recipe field left as None with the model's default on its data set (or the named `recipe`'s); explicit
    values win. The result is checked against its model and optimizer (`checks.check_resolved`)."""
    import dstbench.data
    from dstbench.train.checks import check_resolved

    dataset = dstbench.data.info(config.dataset).name  # the canonical name of an alias ("Fashion-MNIST")
    defaults = named_recipe(config.recipe) if config.recipe else recipe_for(config.model, dataset)
    changes = {k: v for k, v in defaults.items() if getattr(config, k) is None}
    resolved = config.replace(**changes) if changes else config
    check_resolved(resolved)
    return resolved
