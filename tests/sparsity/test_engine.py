import copy

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from dstbench import DST
from dstbench.sparsity import list_criteria, list_growth, sparse_parameters

from .helpers import cnn, mlp, train_step

CRITERIA = ["magnitude", "set", "mest", "sensitivity", "reciprocal_sensitivity", "snip", "random"]


def make(model=None, opt="sgd", **kw):
    model = model or mlp()
    if opt == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    kw.setdefault("density", 0.3)
    kw.setdefault("total_steps", 100)
    return model, optimizer, DST(model, optimizer, **kw)


def assert_masked_and_state_zero(model, opt, dst):
    params = dict(model.named_parameters())
    for name, mask in dst.masks.items():
        p = params[name]
        assert torch.all(p[~mask] == 0), name
        for value in opt.state.get(p, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == p.shape:
                assert torch.all(value[~mask] == 0), name


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(2, 24), min_size=2, max_size=4),
    density=st.floats(0.05, 0.95),
    prune=st.sampled_from(CRITERIA),
    grow=st.sampled_from(["random", "gradient", "momentum"]),
    fraction=st.floats(0.0, 0.95),
    global_pruning=st.booleans(),
    regrow=st.booleans(),
    opt=st.sampled_from(["sgd", "adamw"]),
    seed=st.integers(0, 3),
)
def test_every_update_keeps_exact_counts_and_zeros(sizes, density, prune, grow, fraction, global_pruning, regrow,
                                                   opt, seed):
    sizes = [*sizes, 3]
    model, optimizer, dst = make(
        mlp(sizes, seed), opt, density=density, prune=prune, grow=grow, prune_fraction=fraction,
        schedule="constant", update_period=1, global_pruning=global_pruning, regrow_just_pruned=regrow, seed=seed,
    )
    counts = {n: int(m.sum()) for n, m in dst.masks.items()}
    gen = torch.Generator().manual_seed(seed)
    train_step(model, optimizer, None, gen, in_shape=(sizes[0],))
    for _ in range(3):
        old = {n: m.clone() for n, m in dst.masks.items()}
        would = dst.would_prune(prune)  # the same state and generator state as the update below
        dst.step()
        for name, new in dst.masks.items():
            assert int(new.sum()) == counts[name]
            pruned = would[name]
            assert torch.all(old[name][pruned]), "pruned weights were active"
            assert torch.all(new[old[name] & ~pruned]), "weights not pruned stay active"
            if not regrow and int((~old[name]).sum()) >= int(pruned.sum()):
                assert not torch.any(new & pruned), "just-pruned weights are not regrown when excluded"
        assert_masked_and_state_zero(model, optimizer, dst)
        train_step(model, optimizer, None, gen, in_shape=(sizes[0],))
    assert {n: int(m.sum()) for n, m in dst.masks.items()} == counts


def test_initial_masks_are_exact_and_weights_zeroed():
    model, opt, dst = make(density=0.2)
    expected = {"0.weight": 12 * 16, "2.weight": 16 * 8, "4.weight": 8 * 3}
    assert set(dst.masks) == set(expected)
    assert dst.density() == pytest.approx(sum(int(m.sum()) for m in dst.masks.values()) / sum(expected.values()))
    assert abs(dst.density() - 0.2) * sum(expected.values()) <= len(expected)
    assert_masked_and_state_zero(model, opt, dst)


def test_hand_computed_update_magnitude_with_gradient_growth():
    model = nn.Linear(4, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    dst = DST(model, opt, density=0.5, distribution="uniform", prune="magnitude", grow="gradient",
              update_period=1, prune_fraction=0.5, schedule="constant", total_steps=10)
    with torch.no_grad():
        dst.masks["weight"] = torch.tensor([[True, True, False, False]])
        dst._refresh_float_masks()
        model.weight.copy_(torch.tensor([[0.3, -0.1, 0.0, 0.0]]))
    model.weight.grad = torch.tensor([[0.0, 0.0, 0.2, -0.7]])
    opt.step()  # lr 0: the weights stay as set
    dst.step()
    # prune ceil(0.5 * 2) = 1: the smallest |w| (-0.1); grow 1: largest |g| among inactive (-0.7 at index 3)
    assert dst.masks["weight"].tolist() == [[True, False, False, True]]
    assert model.weight.tolist() == [[pytest.approx(0.3), 0.0, 0.0, 0.0]]
    assert dst.history == [dict(step=1, layer="weight", prune_fraction=0.5, pruned=1, grown=1, active=2)]


def test_global_pruning_picks_lowest_across_layers_but_keeps_layer_counts():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    dst = DST(model, opt, density=0.5, distribution="uniform", prune="magnitude", grow="random",
              update_period=1, prune_fraction=0.5, schedule="constant", total_steps=10, global_pruning=True)
    with torch.no_grad():
        dst.masks["0.weight"] = torch.tensor([[True, True], [False, False]])
        dst.masks["1.weight"] = torch.tensor([[True, True], [False, False]])
        dst._refresh_float_masks()
        model[0].weight.copy_(torch.tensor([[0.01, 0.02], [0.0, 0.0]]))
        model[1].weight.copy_(torch.tensor([[0.5, 0.6], [0.0, 0.0]]))
    pruned = dst.would_prune("magnitude")
    # k = ceil(.5*2) + ceil(.5*2) = 2 lowest overall: both in layer 0
    assert pruned["0.weight"].tolist() == [[True, True], [False, False]]
    assert not pruned["1.weight"].any()
    opt.step()
    dst.step()
    assert int(dst.masks["0.weight"].sum()) == 2 and int(dst.masks["1.weight"].sum()) == 2
    assert dst.masks["1.weight"].tolist() == [[True, True], [False, False]]
    assert [h["pruned"] for h in dst.history] == [2, 0]


def test_same_seed_is_bit_identical():
    def run():
        model, opt, dst = make(mlp(seed=1), density=0.25, prune="snip", grow="random", update_period=3, seed=7)
        gen = torch.Generator().manual_seed(0)
        for _ in range(20):
            train_step(model, opt, dst, gen)
        return model, dst

    (m1, d1), (m2, d2) = run(), run()
    for n in d1.masks:
        assert torch.equal(d1.masks[n], d2.masks[n])
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p1, p2)


def test_resume_from_state_dict_equals_uninterrupted_run():
    kw = dict(density=0.3, prune="random", grow="random", update_period=4, seed=3)
    model, opt, dst = make(mlp(seed=2), **kw)
    gen = torch.Generator().manual_seed(5)
    for _ in range(10):
        train_step(model, opt, dst, gen)
    saved = copy.deepcopy((model.state_dict(), opt.state_dict(), dst.state_dict(), gen.get_state()))
    for _ in range(15):
        train_step(model, opt, dst, gen)

    model2, opt2, dst2 = make(mlp(seed=99), **{**kw, "seed": 3})
    model2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    dst2.load_state_dict(saved[2])
    gen2 = torch.Generator().set_state(saved[3])
    for _ in range(15):
        train_step(model2, opt2, dst2, gen2)
    for n in dst.masks:
        assert torch.equal(dst.masks[n], dst2.masks[n])
    for p1, p2 in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    assert dst.history == dst2.history and dst.itop() == dst2.itop()


def test_same_seed_gives_same_initial_mask_across_criteria():
    masks = [make(mlp(), density=0.2, prune=c, seed=4)[2].masks for c in CRITERIA]
    for other in masks[1:]:
        assert all(torch.equal(masks[0][n], other[n]) for n in other)


def test_would_prune_changes_nothing():
    model, opt, dst = make(density=0.3, prune="random", update_period=5)
    gen = torch.Generator().manual_seed(0)
    train_step(model, opt, dst, gen)
    before = copy.deepcopy((dst.state_dict(), model.state_dict()))
    a = dst.would_prune("random", 0.5)
    b = dst.would_prune("random", 0.5)
    assert all(torch.equal(a[n], b[n]) for n in a)
    after = (dst.state_dict(), model.state_dict())
    assert torch.equal(before[0]["generator"], after[0]["generator"])
    assert all(torch.equal(before[1][k], after[1][k]) for k in after[1])
    assert {n: int(m.sum()) for n, m in a.items()} == {n: -(-int(dst.masks[n].sum()) // 2) for n in a}


def test_static_and_dense_share_the_code_path():
    model, opt, static = make(density=0.3, update_period=0)
    initial = {n: m.clone() for n, m in static.masks.items()}
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        train_step(model, opt, static, gen)
    assert all(torch.equal(initial[n], static.masks[n]) for n in initial)
    assert static.history == [] and static.itop() == pytest.approx(static.density())

    dense_model, dense_opt, dense = make(mlp(seed=3), density=1.0)
    plain_model = mlp(seed=3)
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for _ in range(5):
        train_step(dense_model, dense_opt, dense, g1)
        train_step(plain_model, plain_opt, None, g2)
    assert dense.density() == 1.0 and dense.itop() == 1.0
    for p1, p2 in zip(dense_model.parameters(), plain_model.parameters(), strict=True):
        assert torch.equal(p1, p2)


def test_itop_grows_with_updates():
    model, opt, dst = make(density=0.2, prune="magnitude", grow="random", update_period=2)
    start = dst.itop()
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        train_step(model, opt, dst, gen)
    assert start == pytest.approx(dst.density()) and dst.itop() > start


def test_schedule_and_end_step():
    _, _, dst = make(density=0.3, update_period=10, prune_fraction=0.5, schedule="cosine", total_steps=100)
    assert dst.prune_fraction(0) == pytest.approx(0.5)
    assert dst.prune_fraction(50) == pytest.approx(0.25)
    assert dst.prune_fraction(100) == 0.0
    _, _, lin = make(density=0.3, update_period=10, schedule="linear:factor=0.5,every=10", total_steps=100)
    assert [lin.prune_fraction(s) for s in (0, 9, 10, 25)] == [0.5, 0.5, 0.25, 0.125]
    model, opt, early = make(density=0.3, update_period=2, end_step=4, total_steps=100)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        train_step(model, opt, early, gen)
    assert sorted({h["step"] for h in early.history}) == [2, 4]


@pytest.mark.parametrize("layer, fan_in", [(nn.Linear(100, 50), 100), (nn.Conv2d(6, 40, 3), 54)])
def test_fresh_init_draws_grown_weights_uniformly_within_the_layer_bound(layer, fan_in):
    torch.manual_seed(0)
    model = nn.Sequential(layer)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    dst = DST(model, opt, density=0.2, distribution="uniform", grow="random", update_period=1, total_steps=10,
              schedule="constant", grow_init="fresh", regrow_just_pruned=False)
    with torch.no_grad():
        layer.weight.mul_(10)  # kept weights now lie far outside the fresh range
    before, old = layer.weight.detach().clone(), dst.masks["0.weight"].clone()
    layer.weight.grad = torch.zeros_like(layer.weight)
    opt.step()
    dst.step()
    new = dst.masks["0.weight"]
    grown, kept = new & ~old, new & old
    bound = 1 / fan_in**0.5
    fresh = layer.weight.detach()[grown]
    assert fresh.numel() == dst.history[0]["grown"] > 200
    assert torch.all(fresh.abs() <= bound) and torch.all(fresh != 0)
    assert abs(float(fresh.abs().mean()) - bound / 2) < 0.1 * bound  # uniform on (-bound, bound): mean |w| = bound/2
    assert 0.4 < float((fresh > 0).float().mean()) < 0.6
    assert torch.equal(layer.weight.detach()[kept], before[kept]) and torch.all(layer.weight.detach()[~new] == 0)
    assert torch.all(opt.state[layer.weight]["momentum_buffer"][grown] == 0)


def hand_set_layer(regrow_just_pruned):
    """A 1x4 layer at density 3/4: weights 0.3, -0.1, 0.5 active, the last inactive; gradient growth."""
    model = nn.Linear(4, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    dst = DST(model, opt, density=0.75, distribution="uniform", prune="magnitude", grow="gradient",
              update_period=1, prune_fraction=0.5, schedule="constant", total_steps=10,
              regrow_just_pruned=regrow_just_pruned)
    with torch.no_grad():
        dst.masks["weight"] = torch.tensor([[True, True, True, False]])
        dst._refresh_float_masks()
        model.weight.copy_(torch.tensor([[0.3, -0.1, 0.5, 0.0]]))
    model.weight.grad = torch.tensor([[0.2, 0.9, 0.0, 0.05]])
    opt.step()
    dst.step()
    return model, dst


def test_excluding_just_pruned_weights_falls_back_to_them_in_a_nearly_dense_layer():
    # prune ceil(0.5 * 3) = 2 by magnitude: -0.1 and 0.3. One weight was inactive (index 3): it grows; the other
    # comes from the just-pruned ones, by largest |g|: index 1 (0.9), which restarts at 0.
    model, dst = hand_set_layer(regrow_just_pruned=False)
    assert dst.masks["weight"].tolist() == [[False, True, True, True]]
    assert model.weight.tolist() == [[0.0, 0.0, 0.5, 0.0]]
    assert dst.history == [dict(step=1, layer="weight", prune_fraction=0.5, pruned=2, grown=2, active=3)]
    # regrowing allowed: the two largest |g| among all but the kept 0.5 are the just-pruned indices 1 and 0
    model, dst = hand_set_layer(regrow_just_pruned=True)
    assert dst.masks["weight"].tolist() == [[True, True, True, False]]
    assert model.weight.tolist() == [[0.0, 0.0, 0.5, 0.0]]


def test_conv_layers_are_sparse_and_updates_work():
    model, opt, dst = make(cnn(), density=0.2, prune="set", grow="gradient", update_period=2)
    assert set(dst.masks) == {"0.weight", "2.weight", "5.weight"}
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        train_step(model, opt, dst, gen, in_shape=(1, 6, 6))
    assert_masked_and_state_zero(model, opt, dst)


def test_transformer_from_torch_nn():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True, dropout=0.0)
    model = nn.Sequential(nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False),
                          nn.Flatten(), nn.Linear(16 * 5, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dst = DST(model, opt, density=0.3, prune="magnitude", grow="gradient", update_period=2, total_steps=20)
    sparse = set(dst.masks)
    assert {n for n in sparse if n.endswith("linear1.weight")} and {n for n in sparse if "out_proj" in n}
    assert not any("in_proj" in n for n in sparse)  # a raw Parameter of MultiheadAttention, not a Linear
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        train_step(model, opt, dst, gen, in_shape=(5, 16))
    assert_masked_and_state_zero(model, opt, dst)


def test_shared_and_frozen_weights():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = nn.Linear(8, 8)
            self.b.weight = self.a.weight  # tied: one parameter, one mask
            self.frozen = nn.Linear(8, 8)
            self.frozen.weight.requires_grad_(False)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.frozen(self.b(torch.relu(self.a(x)))))

    model = Tied()
    assert list(sparse_parameters(model)) == ["a.weight", "head.weight"]
    frozen_before = model.frozen.weight.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    dst = DST(model, opt, density=0.5, update_period=1, total_steps=10, distribution="uniform")
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        train_step(model, opt, dst, gen, in_shape=(8,))
    assert torch.equal(model.frozen.weight, frozen_before)
    assert torch.all(model.b.weight[~dst.masks["a.weight"]] == 0)


def test_dense_layers_option():
    # 12x16 + 16x8 + 8x3 = 344 weights; density 0.75 -> 258; layers 0 and 4 dense hold 216, layer 2 gets 42
    model, opt, dst = make(density=0.75, dense_layers=["0", "4.weight"], distribution="uniform")
    assert dst.layer_densities() == {"0.weight": 1.0, "2.weight": 42 / 128, "4.weight": 1.0}
    with pytest.raises(ValueError, match="valid: 0.weight, 2.weight, 4.weight"):
        make(density=0.3, dense_layers=["nope"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prune="magnitudes"), "valid: magnitude"),
        (dict(grow="rigl"), "valid: gradient, momentum, random"),
        (dict(schedule="exp"), "valid: constant, cosine, linear"),
        (dict(distribution="gauss"), "valid: er, erk, uniform"),
        (dict(density=0.0), "density = 0.0: must be > 0.0 and <= 1.0"),
        (dict(density=1.2), "density = 1.2: must be > 0.0 and <= 1.0"),
        (dict(prune_fraction=1.0), "prune_fraction = 1.0: must be >= 0.0 and < 1.0"),
        (dict(prune_fraction=-0.1), "prune_fraction = -0.1: must be >= 0.0 and < 1.0"),
        (dict(schedule="linear:every=0"), "schedule 'linear': parameter every = 0 must be > 0"),
        (dict(prune="mest:lam=-0.5"), "parameter lam = -0.5 must be >= 0.0"),
        (dict(erk_power=float("inf")), "erk_power = inf: must be > 0.0"),
        (dict(total_steps=None), "total_steps"),
        (dict(grow_init="xavier"), "grow_init"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_model_without_sparse_weights():
    model = nn.Sequential(nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="no trainable Linear or Conv"):
        DST(model, torch.optim.SGD(model.parameters(), lr=0.1), density=0.5, total_steps=10)


def test_gradient_rule_before_backward():
    model, opt, dst = make(density=0.3, prune="snip", update_period=1)
    opt.step()  # no gradients: the optimizer leaves every weight alone
    with pytest.raises(RuntimeError, match=r"needs 0.weight.grad, which is None"):
        dst.step()


@pytest.mark.parametrize("where", ["weights", "gradient"])
def test_nan_at_update_is_an_error(where):
    model, opt, dst = make(density=0.3, prune="mest", update_period=1)
    gen = torch.Generator().manual_seed(0)
    train_step(model, opt, None, gen)
    target = model[2].weight if where == "weights" else model[2].weight.grad
    with torch.no_grad():
        target[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=f"NaN or inf in the {where} of 2.weight"):
        dst.step()


def test_momentum_growth_needs_a_momentum_optimizer():
    model = mlp()
    with pytest.raises(ValueError, match="SGD with momentum > 0, Adam or AdamW"):
        DST(model, torch.optim.Adagrad(model.parameters()), density=0.3, grow="momentum", total_steps=10)


def test_registries_list_the_paper_rules():
    assert {"magnitude", "set", "mest", "sensitivity", "reciprocal_sensitivity", "snip", "random"} <= set(
        list_criteria())
    assert list_growth() == ["gradient", "momentum", "random"]


def test_load_state_dict_rejects_another_model():
    _, _, dst = make(density=0.3)
    _, _, other = make(mlp((12, 10, 3)), density=0.3)
    with pytest.raises(ValueError, match="checkpoint mask"):
        other.load_state_dict(dst.state_dict())


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_inactive_weights_stay_zero_between_updates(opt):
    # Between updates the engine masks gradients instead of weights; inactive weights must still be exactly 0.
    model, optimizer, dst = make(density=0.2, opt=opt, prune="magnitude", grow="gradient", update_period=4)
    assert dst._grad_hook is not None
    gen = torch.Generator().manual_seed(0)
    for step in range(1, 13):
        train_step(model, optimizer, dst, gen)
        assert_masked_and_state_zero(model, optimizer, dst)
        if step % 4 != 0 and step % 4 != 3:  # before an update the gradient stays dense for gradient growth
            params = dict(model.named_parameters())
            assert all(torch.all(params[n].grad[~m] == 0) for n, m in dst.masks.items())


def test_other_optimizers_fall_back_to_masking_weights():
    model = mlp()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.9)
    dst = DST(model, opt, density=0.3, update_period=3, total_steps=30)
    assert dst._grad_hook is None
    gen = torch.Generator().manual_seed(0)
    for _ in range(7):
        train_step(model, opt, dst, gen)
        assert_masked_and_state_zero(model, opt, dst)
