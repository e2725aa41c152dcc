import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dstbench.config import RunConfig
from dstbench.sparsity import SparsityConfig
from dstbench.sparsity.config import engine_options, option_types
from dstbench.train.setup import sparsity_config

ENGINE_ONLY = {"total_steps"}  # what the trainer computes, not a user's choice


def test_every_engine_option_is_a_run_config_field_of_its_type_and_default():
    """The engine options are declared once (`SparsityConfig`); RunConfig's fields are derived from them."""
    options = set(engine_options()) - ENGINE_ONLY
    assert options <= set(RunConfig.model_fields)
    for name in options:
        field = RunConfig.model_fields[name]
        want = option_types()[name]
        if name in ("prune", "grow", "schedule"):  # a rule or (name, params) for the engine; canonical text here
            want = str
        if name == "update_period":  # None in the engine means what RunConfig fills in from the density
            want, default = int, 800
        else:
            default = engine_options()[name].default
        assert field.annotation == want, name
        assert field.default == default, name


BOUNDED = [n for n, f in engine_options().items() if f.metadata.get("bounds") and n not in ENGINE_ONLY]
CHOICES = [n for n, t in option_types().items() if typing.get_origin(t) is typing.Literal]


@given(name=st.sampled_from(BOUNDED),
       value=st.one_of(st.floats(-2, 2), st.integers(-3, 1000), st.sampled_from([float("inf"), float("nan")])))
def test_run_configs_and_the_engine_accept_the_same_values(name, value):
    engine_ok = run_ok = True
    try:
        SparsityConfig(**{name: value}, total_steps=1000)
    except ValueError:
        engine_ok = False
    try:
        RunConfig(model="small_mlp", dataset="digits", **{name: value})
    except ValidationError:
        run_ok = False
    if option_types()[name] in (int, int | None) and isinstance(value, float) and not value.is_integer():
        return  # pydantic refuses a fraction for an int; the engine's dataclass does not check types
    assert engine_ok == run_ok, (name, value)


@pytest.mark.parametrize("name", CHOICES)
def test_options_with_choices_refuse_the_same_values(name):
    for value in typing.get_args(option_types()[name]):
        SparsityConfig(**{name: value}, density=0.5, total_steps=10)
        RunConfig(model="small_mlp", dataset="digits", **{name: value})
    with pytest.raises(ValueError, match=f"{name} = 'nosuch': must be one of"):
        SparsityConfig(**{name: "nosuch"}, total_steps=10)
    with pytest.raises(ValidationError):
        RunConfig(model="small_mlp", dataset="digits", **{name: "nosuch"})


def test_the_engine_options_come_from_the_run_config():
    config = RunConfig(model="small_mlp", dataset="digits", density=0.2, prune="mest:lam=0.5", grow="gradient",
                       update_period=7, end_step=50, seed=3, global_pruning=True, dense_layers=("layers.0",),
                       regrow_just_pruned=False, grow_init="fresh", erk_power=0.5, schedule="constant",
                       distribution="er", prune_fraction=0.3)
    assert sparsity_config(config, total_steps=100) == SparsityConfig(
        density=0.2, distribution="er", erk_power=0.5, prune="mest:lam=0.5", grow="gradient", update_period=7,
        prune_fraction=0.3, schedule="constant", total_steps=100, end_step=50, seed=3, global_pruning=True,
        dense_layers=("layers.0",), regrow_just_pruned=False, grow_init="fresh")


def _lrs(config, steps_per_epoch):
    import torch

    from dstbench.train import resolve_config
    from dstbench.train.setup import make_optimizer, make_scheduler

    config = resolve_config(config)
    opt = make_optimizer(torch.nn.Linear(2, 2), config)
    scheduler = make_scheduler(opt, config, steps_per_epoch)
    lrs = []
    for _ in range(config.epochs * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return opt, lrs


def test_smc_benchs_warmup_in_steps_then_linear_decay_to_zero():
    # 2 epochs of 5 steps, 2 warm-up steps: 1/2, 2/2 of the peak, then (10 - s) / 8 for s = 2..9
    config = RunConfig(model="roberta_large", dataset="commonsense_qa", epochs=2, lr=0.8, warmup_steps=2)
    opt, lrs = _lrs(config, 5)
    expected = [0.4, 0.8] + [0.8 * (10 - s) / 8 for s in range(2, 10)]
    assert [round(v, 12) for v in lrs] == [round(v, 12) for v in expected]
    group = opt.param_groups[0]
    assert type(opt).__name__ == "AdamW" and group["betas"] == (0.9, 0.98) and group["eps"] == 1e-6
    assert group["weight_decay"] == 0.01


def test_step_decay_is_unchanged_by_the_new_fields():
    config = RunConfig(model="small_mlp", dataset="digits", epochs=4, lr=1.0)  # milestones 0.5, 0.75, x0.1
    _, lrs = _lrs(config, 1)
    assert [round(v, 12) for v in lrs] == [1.0, 1.0, 0.1, 0.01]


def test_recorded_runs_keep_their_ids_when_fields_are_added():
    """Run 9e6a48935aadd4a8 was recorded (study-small-fig1) before init_mask, warmup_steps, lr_decay, adam_betas,
    adam_eps and max_length existed: at the values it had, those fields stay out of its id (vocab.ID_NEUTRAL)."""
    from dstbench.train.recipes import resolve_config

    config = RunConfig(model="small_mlp", dataset="breast_cancer", density=0.1, prune="set", update_period=5,
                       epochs=4, batch_size=32, lr=0.05)
    assert resolve_config(config).run_id() == "9e6a48935aadd4a8"
    assert resolve_config(config.replace(init_mask="magnitude")).run_id() != "9e6a48935aadd4a8"


@pytest.mark.parametrize(("fields", "run_id"), [
    (dict(model="small_mlp", dataset="digits", density=0.2, prune="mest:lam=0.5", grow="gradient", update_period=7,
          end_step=50, seed=3, global_pruning=True, dense_layers=("classifier",), regrow_just_pruned=False,
          grow_init="fresh", erk_power=0.5, schedule="linear:every=100", distribution="er", prune_fraction=0.3,
          update_full_layers=True, init_mask="magnitude", batch_size=128, lr=0.01), "8e42b806d1cde5ca"),
    (dict(model="lenet5_caffe", dataset="fashionmnist", density=0.05, grow="momentum", optimizer="adam", lr=0.001),
     "e3051be06ec3d6b2"),
    (dict(model="small_cnn", dataset="cifar10", density=1.0), "f5851dbbd1ecca8e"),
])
def test_run_ids_of_every_engine_option_are_those_recorded_before_the_options_were_declared_once(fields, run_id):
    """Ids computed on 0b7bb13, before RunConfig derived its engine fields from SparsityConfig."""
    from dstbench.train.recipes import resolve_config

    assert resolve_config(RunConfig(**fields)).run_id() == run_id


def test_the_foreach_optimizers_step_exactly_as_the_single_tensor_ones():
    import copy

    import torch

    from dstbench.train.setup import make_optimizer

    for optimizer, extra in (("sgd", {}), ("adam", {"adam_betas": (0.9, 0.98)}), ("adamw", {"adam_eps": 1e-6})):
        config = RunConfig(model="small_cnn", dataset="digits", optimizer=optimizer, lr=0.05, momentum=0.9,
                           nesterov=optimizer == "sgd", weight_decay=5e-4, **extra)
        torch.manual_seed(0)
        ours = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.Flatten(), torch.nn.Linear(288, 10))
        reference = copy.deepcopy(ours)
        fast = make_optimizer(ours, config)
        assert fast.defaults["foreach"] is True
        slow = copy.deepcopy(fast)  # the same optimizer over the copy's parameters, one tensor at a time
        slow.param_groups[0]["params"] = list(reference.parameters())
        slow.param_groups[0]["foreach"] = False
        g = torch.Generator().manual_seed(1)
        for _ in range(20):
            for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
                a.grad = torch.randn(a.shape, generator=g)
                b.grad = a.grad.clone()
            fast.step()
            slow.step()
        for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
            assert torch.equal(a, b), optimizer
