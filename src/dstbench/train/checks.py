"""What a resolved run config is checked against before anything is written: the model it builds and the
optimizer it steps. `RunConfig` checks every value on its own; these need the model's layers or the recipe's
optimizer. `resolve_config` calls `check_resolved`, so `dstbench train`, spec expansion (sweeps, dry runs,
workers) and the trainers all refuse the same mistakes, as one line each, instead of failing mid-training.
"""

from __future__ import annotations

import functools
import types

import torch
from torch import nn

from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.vocab import parse_rule


def check_resolved(config: RunConfig) -> None:
    """Raise a UserError naming the value and the fix for what the run would only find out once started."""
    _check_model(config)
    _check_momentum(config)
    if config.train_subset is not None:
        import dstbench.data
        from dstbench.data.splits import check_subset

        check_subset(dstbench.data.info(config.dataset).split_sizes[0], config.train_subset)


def _check_model(config: RunConfig) -> None:
    import dstbench.data
    import dstbench.models

    info = dstbench.models.info(config.model)
    try:
        info.build_kwargs(tuple(dstbench.data.info(config.dataset).input_shape))
    except ValueError as exc:
        raise UserError(f"model {config.model!r} does not fit data set {config.dataset!r}: {exc}") from None
    if not (config.dense_layers or config.dropout or config.input_dropout or config.gradient_checkpointing):
        return  # nothing else the model's builder could refuse: no model is built
    if "model_path" in info.options:
        return  # a pretrained model is built from its files: checked when the run builds it
    names = _sparse_layers(config.model, config.dataset, config.dropout, config.input_dropout,
                           config.gradient_checkpointing)
    from dstbench.sparsity.layers import match_dense_layers

    try:
        match_dense_layers(names, config.dense_layers)
    except ValueError as exc:
        raise UserError(f"dense_layers of model {config.model!r}: {exc}") from None


@functools.lru_cache(maxsize=256)
def _sparse_layers(model: str, dataset: str, dropout: float, input_dropout: float,
                   gradient_checkpointing: bool) -> tuple[str, ...]:
    """The names of the model's sparse weights, from the model built on the meta device (no memory, no init)."""
    import dstbench.data
    from dstbench.sparsity import sparse_parameters
    from dstbench.train.setup import build_for

    data = dstbench.data.info(dataset)
    # The output width does not change the layer names: the class count stands in for a binary task's one logit.
    shapes = types.SimpleNamespace(num_outputs=data.num_classes, input_shape=tuple(data.input_shape))
    config = RunConfig(model=model, dataset=dataset, dropout=dropout, input_dropout=input_dropout,
                       gradient_checkpointing=gradient_checkpointing)
    try:
        with torch.device("meta"), _NoRandomFills():
            built = build_for(config, shapes)
    except (ValueError, TypeError) as exc:  # the builder refuses an option (dropout on a model without it, ...)
        raise UserError(f"model {model!r}: {exc}") from None
    return tuple(sparse_parameters(built))


class _NoRandomFills(torch.overrides.TorchFunctionMode):
    """Skips the random fills of weight initialisation: a meta tensor holds no values, and `normal_` on the meta
    device imports torch._dynamo (3 s, once per process) for nothing."""

    FILLS = frozenset({"normal_", "uniform_", "bernoulli_", "exponential_", "random_", "erfinv_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 (torch's protocol)
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in self.FILLS:  # Tensor.normal_(self, ...) or nn.init.normal_(tensor=...)
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def _check_momentum(config: RunConfig) -> None:
    """The recipe's optimizer must be one torch builds, and a rule that reads its momentum needs one that keeps
    one (as the engine decides)."""
    import dstbench.sparsity as sparsity

    keeps_momentum = _keeps_momentum(tuple((f, getattr(config, f)) for f in _OPTIMIZER_FIELDS))
    rules = [("prune", config.prune, sparsity.CRITERIA), ("grow", config.grow, sparsity.GROWTH)]
    rules += [("probe_criteria", c, sparsity.CRITERIA) for c in config.probe_criteria]
    for field, rule, registry in rules:
        if "momentum" in registry.get(parse_rule(rule)[0]).needs and not keeps_momentum:
            raise UserError(f"{field} = {rule!r} reads the optimizer's momentum, which {config.optimizer} with "
                            f"momentum {config.momentum} does not keep: set momentum > 0 (--momentum 0.9), use "
                            f"adam or adamw, or another rule")


# The fields `setup.make_optimizer` reads: the optimizer is built once per combination of them, not per run.
_OPTIMIZER_FIELDS = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "adam_betas", "adam_eps")


@functools.lru_cache(maxsize=256)
def _keeps_momentum(fields: tuple[tuple[str, object], ...]) -> bool:
    """Whether the optimizer of these `_OPTIMIZER_FIELDS` values keeps a momentum; a UserError if torch refuses
    to build it."""
    from dstbench.sparsity.optimizers import OptimizerState
    from dstbench.train.setup import make_optimizer

    try:
        optimizer = make_optimizer(nn.Linear(1, 1), RunConfig.model_construct(**dict(fields)))
    except ValueError as exc:  # e.g. "Nesterov momentum requires a momentum and zero dampening"
        shown = ", ".join(f"{k} = {v!r}" for k, v in fields if v is not None)
        raise UserError(f"torch refuses the optimizer {shown}: {exc}; change the value it names") from None
    return OptimizerState(optimizer).momentum_key is not None
