"""What a resolved config is checked against (`dstbench.train.checks`): the model built on the meta device names
the same sparse layers as the model built for real, and the checks cost one build per model, not one per run."""

import types

import pytest

import dstbench.data
import dstbench.models
from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.sparsity import sparse_parameters
from dstbench.train import resolve_config
from dstbench.train.checks import _sparse_layers
from dstbench.train.setup import build_for

BUILT_HERE = [m for m in dstbench.models.list_models() if "model_path" not in dstbench.models.info(m).options]


@pytest.mark.parametrize("model", BUILT_HERE)
def test_the_meta_model_names_the_sparse_layers_of_the_real_one(model):
    dataset = dstbench.models.info(model).dataset
    data = dstbench.data.info(dataset)
    real = build_for(RunConfig(model=model, dataset=dataset),
                     types.SimpleNamespace(num_outputs=data.num_classes, input_shape=data.input_shape))
    assert _sparse_layers(model, dataset, 0.0, 0.0, False) == tuple(sparse_parameters(real))


def test_dense_layers_are_named_by_module_or_weight_and_checked_once_per_model():
    _sparse_layers.cache_clear()
    for seed in range(20):
        resolve_config(RunConfig(model="small_cnn", dataset="cifar10", seed=seed,
                                 dense_layers=("conv1", "classifier.weight")))
    assert _sparse_layers.cache_info().misses == 1
    with pytest.raises(UserError, match=r"dense layer 'conv9' is not a sparse weight; valid: conv1.weight, "):
        resolve_config(RunConfig(model="small_cnn", dataset="cifar10", dense_layers=("conv9",)))


@pytest.mark.parametrize(("optimizer", "momentum", "ok"), [("sgd", 0.9, True), ("sgd", 0.0, False),
                                                           ("adam", None, True), ("adamw", None, True)])
def test_momentum_rules_need_an_optimizer_that_keeps_momentum(optimizer, momentum, ok):
    config = RunConfig(model="small_mlp", dataset="digits", density=0.5, grow="momentum", optimizer=optimizer,
                       momentum=momentum, nesterov=False)
    if ok:
        resolve_config(config)
    else:
        with pytest.raises(UserError, match="grow = 'momentum' reads the optimizer's momentum"):
            resolve_config(config)
        with pytest.raises(UserError, match="probe_criteria = 'momentum_probe'"):
            _with_momentum_criterion(config)


def _with_momentum_criterion(config):
    from dstbench.sparsity import register_criterion
    from dstbench.sparsity.criteria import CRITERIA

    @register_criterion("momentum_probe", needs_momentum=True, overwrite=True)
    def momentum_probe(weight, grad, active, *, generator, momentum):
        return momentum.abs()

    try:
        resolve_config(config.replace(grow="random", probe_every=10, probe_criteria=("momentum_probe",)))
    finally:
        CRITERIA._rules.pop("momentum_probe")
