import dataclasses

from dstbench.config import RunConfig
from dstbench.sparsity import SparsityConfig
from dstbench.train.setup import sparsity_config


def test_every_engine_option_is_a_run_config_field():
    options = {f.name for f in dataclasses.fields(SparsityConfig)} - {"total_steps"}
    assert options <= set(RunConfig.model_fields)


def test_the_engine_options_come_from_the_run_config():
    config = RunConfig(model="small_mlp", dataset="digits", density=0.2, prune="mest:lam=0.5", grow="gradient",
                       update_period=7, end_step=50, seed=3, global_pruning=True, dense_layers=("layers.0",),
                       regrow_just_pruned=False, grow_init="fresh", erk_power=0.5, schedule="constant",
                       distribution="er", prune_fraction=0.3)
    assert sparsity_config(config, total_steps=100) == SparsityConfig(
        density=0.2, distribution="er", erk_power=0.5, prune="mest:lam=0.5", grow="gradient", update_period=7,
        prune_fraction=0.3, schedule="constant", total_steps=100, end_step=50, seed=3, global_pruning=True,
        dense_layers=("layers.0",), regrow_just_pruned=False, grow_init="fresh")
