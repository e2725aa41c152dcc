"""DST at density 1.0 and updates of full-density layers (the paper's code prunes and regrows those too)."""

import pytest
import torch
from torch import nn

from dstbench import DST

W = torch.tensor([[0.5, -0.1], [0.3, 2.0], [-0.05, 1.0]])  # |w| ascending: -0.05 (4), -0.1 (1), 0.3 (2), ...


def one_layer():
    model = nn.Sequential(nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(W)
    return model


def a_step(model, opt, dst, grad):
    """One optimizer step (lr 0: the weights stay as set; momentum still fills) and one engine step."""
    opt.zero_grad()
    for p in model.parameters():
        p.grad = grad.expand_as(p).clone()
    opt.step()
    dst.step()


def test_density_one_without_an_update_period_is_dense_training():
    model = one_layer()
    dst = DST(model, torch.optim.SGD(model.parameters(), lr=0.1), density=1.0)
    assert dst.update_period == 0 and dst.prune_fraction() == 0.0 and dst.density() == 1.0


def test_dst_at_density_one_prunes_the_lowest_and_regrows_them_at_zero():
    model = one_layer()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    dst = DST(model, opt, density=1.0, prune="magnitude", grow="random", update_period=2, prune_fraction=0.5,
              schedule="constant", total_steps=10)
    # would_prune at density 1.0: ceil(0.5 * 6) = 3 weights, the three smallest |w|
    expected = torch.zeros(3, 2, dtype=torch.bool)
    expected.view(-1)[[4, 1, 2]] = True
    assert torch.equal(dst.would_prune("magnitude", 0.5)["0.weight"], expected)
    grad = torch.full((3, 2), 0.25)
    a_step(model, opt, dst, grad)  # step 1: no update, the weights and masks stay
    assert torch.equal(model[0].weight, W) and dst.masks["0.weight"].all()
    a_step(model, opt, dst, grad)  # step 2: an update; random growth can only take the three just pruned
    weight, momentum = model[0].weight, opt.state[model[0].weight]["momentum_buffer"]
    assert torch.equal(weight, torch.where(expected, 0.0, W))
    assert torch.all(momentum[expected] == 0) and torch.all(momentum[~expected] != 0)
    assert dst.masks["0.weight"].all() and dst.density() == 1.0
    assert dst.history == [dict(step=2, layer="0.weight", prune_fraction=0.5, pruned=3, grown=3, active=6)]


def test_dst_at_density_one_with_gradient_growth_regrows_the_pruned_too():
    model = one_layer()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    dst = DST(model, opt, density=1.0, prune="magnitude", grow="gradient", update_period=1, prune_fraction=0.5,
              schedule="constant", total_steps=10)
    a_step(model, opt, dst, torch.arange(6.0).view(3, 2))
    assert dst.masks["0.weight"].all() and int((model[0].weight == 0).sum()) == 3


def capped_model():
    # ERK at density 0.2: the first layer ends near 0.17, the 40 -> 2 classifier is capped at density 1
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(100, 40, bias=False), nn.ReLU(), nn.Linear(40, 2, bias=False))


@pytest.mark.parametrize("update_full_layers", [False, True])
def test_full_density_layers_take_part_in_updates_only_when_asked(update_full_layers):
    model = capped_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    dst = DST(model, opt, density=0.2, prune="magnitude", grow="random", update_period=1, prune_fraction=0.25,
              schedule="constant", total_steps=10, update_full_layers=update_full_layers)
    assert dst.layer_densities()["2.weight"] == 1.0
    head = model[2].weight.detach().clone()
    k = 20  # ceil(0.25 * 80)
    smallest = torch.zeros(80, dtype=torch.bool)
    smallest[head.abs().view(-1).argsort()[:k]] = True
    smallest = smallest.view(2, 40)
    probe = dst.would_prune("magnitude", 0.25)["2.weight"]
    assert torch.equal(probe, smallest if update_full_layers else torch.zeros_like(smallest))
    a_step(model, opt, dst, torch.ones(1))
    layers = {h["layer"]: h for h in dst.history}
    assert dst.masks["2.weight"].all() and dst.layer_densities()["2.weight"] == 1.0
    if update_full_layers:  # the reference code's behaviour: the k smallest restart at 0, with zeroed momentum
        assert layers["2.weight"] == dict(step=1, layer="2.weight", prune_fraction=0.25, pruned=k, grown=k,
                                          active=80)
        assert torch.equal(model[2].weight, torch.where(smallest, 0.0, head))
        assert torch.all(opt.state[model[2].weight]["momentum_buffer"][smallest] == 0)
    else:  # dstbench's default: a layer with nothing inactive is left alone
        assert "2.weight" not in layers and torch.equal(model[2].weight, head)
    assert "0.weight" in layers
