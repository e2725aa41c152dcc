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
