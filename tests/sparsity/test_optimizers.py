"""The engine's view of optimizers: per-weight state, momentum (for growth rules and criteria), exact masking."""

import pytest
import torch
from torch import nn

from dstbench import DST
from dstbench.sparsity import register_criterion
from dstbench.sparsity.optimizers import OptimizerState

OPTIMIZERS = {
    "sgd": (lambda ps: torch.optim.SGD(ps, lr=0.0, momentum=0.5), "momentum_buffer", 0.5),
    "adam": (lambda ps: torch.optim.Adam(ps, lr=0.0), "exp_avg", 0.9),
}


@register_criterion("test_momentum_magnitude", needs_momentum=True, overwrite=True)
def momentum_magnitude(weight, grad, active, *, generator, momentum):
    return momentum.abs()


def one_layer_with_momentum(opt_name, buffer, **kw):
    """A 1x6 layer with weights 3 active weights, whose optimizer's first moment reads `decay * buffer` after the
    next (zero-gradient, zero-learning-rate) step."""
    make_opt, key, _ = OPTIMIZERS[opt_name]
    model = nn.Linear(6, 1, bias=False)
    opt = make_opt(model.parameters())
    model.weight.grad = torch.zeros_like(model.weight)
    opt.step()  # creates the state
    dst = DST(model, opt, density=0.5, distribution="uniform", update_period=1, prune_fraction=0.5,
              schedule="constant", total_steps=10, **kw)
    with torch.no_grad():
        dst.masks["weight"] = torch.tensor([[True, True, True, False, False, False]])
        dst._refresh_float_masks()
        model.weight.copy_(torch.tensor([[0.3, -0.1, 0.5, 0.0, 0.0, 0.0]]))
        opt.state[model.weight][key].copy_(torch.tensor([buffer]))
    model.weight.grad = torch.zeros_like(model.weight)
    return model, opt, dst


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_momentum_growth_through_the_engine(opt_name):
    model, opt, dst = one_layer_with_momentum(opt_name, [0.9, 0.0, 5.0, 0.2, -0.7, 0.1], grow="momentum")
    opt.step()
    dst.step()
    # prune ceil(0.5 * 3) = 2 by magnitude: -0.1 and 0.3. Grow 2 by |momentum| among all but the kept 0.5:
    # 0.9 (the just-pruned index 0) and -0.7 (index 4); gradient growth (all zero) would take indices 0 and 1.
    assert dst.masks["weight"].tolist() == [[True, False, True, False, True, False]]
    assert model.weight.tolist() == [[0.0, 0.0, 0.5, 0.0, 0.0, 0.0]]
    momentum = opt.state[model.weight][OPTIMIZERS[opt_name][1]]
    decay = OPTIMIZERS[opt_name][2]
    torch.testing.assert_close(momentum, torch.tensor([[0.0, 0.0, 5.0 * decay, 0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_a_criterion_can_read_momentum(opt_name):
    model, opt, dst = one_layer_with_momentum(opt_name, [0.9, 0.0, 5.0, 0.2, -0.7, 0.1],
                                              prune="test_momentum_magnitude", regrow_just_pruned=False)
    assert dst.would_prune("test_momentum_magnitude")["weight"].tolist() == [[True, True, False, False, False,
                                                                              False]]
    opt.step()
    dst.step()
    assert int(dst.masks["weight"].sum()) == 3 and dst.masks["weight"][0, 2]
    assert not dst.masks["weight"][0, :2].any()


def test_momentum_rules_need_an_optimizer_with_momentum():
    model = nn.Linear(4, 2)
    for opt in (torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.Adagrad(model.parameters())):
        for rule in (dict(grow="momentum"), dict(prune="test_momentum_magnitude")):
            with pytest.raises(ValueError, match="SGD with momentum > 0, Adam or AdamW"):
                DST(model, opt, density=0.5, total_steps=10, **rule)


def test_momentum_before_the_first_step_is_named():
    model = nn.Linear(4, 2)
    state = OptimizerState(torch.optim.AdamW(model.parameters()))
    with pytest.raises(RuntimeError, match="'exp_avg'.*first step"):
        state.momentum(model.weight)


def test_exact_gradient_masking_only_for_plain_sgd_adam_adamw():
    params = list(nn.Linear(2, 2).parameters())

    class MySGD(torch.optim.SGD):
        pass

    exact = {cls: OptimizerState(cls(params, lr=0.1)).exact_gradient_masking
             for cls in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, MySGD)}
    assert exact == {torch.optim.SGD: True, torch.optim.Adam: True, torch.optim.AdamW: True,
                     torch.optim.RMSprop: False, MySGD: False}


def test_weight_state_is_every_weight_shaped_tensor():
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), amsgrad=True)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = OptimizerState(opt).weight_state(model.weight)
    assert len(state) == 3 and all(v.shape == model.weight.shape for v in state)  # exp_avg, exp_avg_sq, max
