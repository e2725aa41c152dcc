"""Engines updated together equal the same engines updated one by one, bit for bit; a failing one fails alone;
and the host syncs of an update step do not grow with the number of engines."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dstbench import DST
from dstbench.sparsity.masks import select_lowest, select_lowest_rows
from dstbench.sparsity.together import step_together

from .helpers import cnn, mlp

CRITERIA = ["magnitude", "set", "mest", "snip", "sensitivity", "reciprocal_sensitivity", "random"]
GROWTH = ["random", "gradient", "momentum"]


# --------------------------------------------------------------------------------------- batched selection

def stable_lowest(scores, eligible, k):
    """The first k eligible entries in a stable sort by score (+inf scores too: eligible before ineligible)."""
    by_score = torch.argsort(scores, stable=True)
    order = by_score[torch.argsort(~eligible[by_score], stable=True)]
    expected = torch.zeros(scores.numel(), dtype=torch.bool)
    expected[order[:k]] = True
    return expected

def test_rows_select_by_hand():
    scores = torch.tensor([[3.0, 1.0, 2.0, 1.0], [0.0, 5.0, 5.0, 4.0]])
    eligible = torch.tensor([[True, True, True, True], [False, True, True, True]])
    chosen = select_lowest_rows(scores, eligible, [2, 2])
    # row 0: the two 1.0s; row 1: 0.0 is not eligible, so 4.0 and the first 5.0
    assert chosen.tolist() == [[False, True, False, True], [False, True, False, True]]
    chosen = select_lowest_rows(scores, eligible, [3, 0])
    assert chosen.tolist() == [[False, True, True, True], [False, False, False, False]]


def test_an_ineligible_entry_is_no_tie_of_an_eligible_inf_score():
    # More than a quarter eligible: selected in place, the ineligible entry counted as +inf like the eligible ones
    inf = float("inf")
    scores, eligible = torch.tensor([0.0, inf, inf, 1.0]), torch.tensor([False, True, True, True])
    assert select_lowest(scores, eligible, 3).tolist() == [False, True, True, True]
    assert select_lowest_rows(scores[None], eligible[None], [3]).tolist() == [[False, True, True, True]]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 6), n=st.integers(1, 300),
       levels=st.sampled_from([1, 3, 20, 0]), share=st.sampled_from([0.05, 0.3, 1.0]), data=st.data())
def test_rows_equal_one_selection_each(seed, rows, n, levels, share, data):
    # scores with many ties (few levels) or none, some +inf, some -0.0 beside 0.0; each row its own k
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(rows, n, generator=g) if levels == 0 else torch.randint(levels, (rows, n), generator=g) - 1.0
    scores[torch.rand(rows, n, generator=g) < 0.05] = float("inf")
    scores[scores == 0] *= torch.where(torch.rand(rows, n, generator=g) < 0.5, -1.0, 1.0)[scores == 0]
    eligible = torch.rand(rows, n, generator=g) < share
    if data.draw(st.booleans()):  # rows of one eligible count: gathered first when few
        eligible = eligible[:1].expand(rows, n)
    counts = [int(e.sum()) for e in eligible]
    ks = [data.draw(st.integers(0, c)) for c in counts]
    for chosen in (select_lowest_rows(scores, eligible, ks), select_lowest_rows(scores, eligible, ks, counts)):
        for r in range(rows):
            assert torch.equal(chosen[r], select_lowest(scores[r], eligible[r], ks[r]))
            assert torch.equal(chosen[r], stable_lowest(scores[r], eligible[r], ks[r]))


# ------------------------------------------------------------------------------------------ the engines

def member(arch, seed, options):
    model = mlp(seed=seed) if arch == "mlp" else cnn(seed=seed)
    if options.pop("adam"):
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt, DST(model, opt, driven=True, seed=seed, total_steps=12, **options)


def forward_backward(model, opt, dst, step, arch):
    g = torch.Generator().manual_seed(1000 * dst.config.seed + step)
    x = torch.randn((8, 12) if arch == "mlp" else (8, 1, 6, 6), generator=g)
    y = torch.randint(0, 3, (8,), generator=g)
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    dst.mask_gradients()  # what a driver does (not before an update: the update reads the dense gradient)
    opt.step()


def state(model, opt, dst):
    return dict(masks=dst.masks, ever=dst.ever_active, history=dst.history, steps=dst.steps,
                generator=dst.generator.get_state(), floats=dict(dst.float_masks), model=model.state_dict(),
                opt=[dict(s) for s in opt.state.values()], next=dst.update_due())


def assert_same(a, b):
    if isinstance(a, torch.Tensor):  # bit for bit: NaN (a member trains on until its update) and -0.0 too
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a.reshape(-1).contiguous().view(torch.uint8), b.reshape(-1).contiguous().view(torch.uint8))
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


option_sets = st.fixed_dictionaries({
    "density": st.sampled_from([0.1, 0.3, 0.7, 1.0]), "prune": st.sampled_from(CRITERIA),
    "grow": st.sampled_from(GROWTH), "update_period": st.sampled_from([1, 2, 3]),
    "global_pruning": st.booleans(), "regrow_just_pruned": st.booleans(), "grow_init": st.sampled_from(["zero", "fresh"]),
    "update_full_layers": st.booleans(), "adam": st.booleans(), "prune_fraction": st.sampled_from([0.3, 0.5, 0.9]),
})


@settings(max_examples=30, deadline=None)
@given(arch=st.sampled_from(["mlp", "cnn"]), options=st.lists(option_sets, min_size=1, max_size=5),
       nan_at=st.none() | st.tuples(st.integers(0, 4), st.integers(1, 6)))
def test_together_equals_one_by_one(arch, options, nan_at):
    """K engines of one architecture, each with its own options (criterion, growth, density, update period, global
    pruning, excluded regrowth, fresh initialisation, full layers, optimizer), stepped one by one or together
    for 6 steps (updates on the same steps and on different ones): the same masks, weights, optimizer state,
    history and generator states; one engine's NaN weights fail it alone, with the same error."""
    alone = [member(arch, k, dict(o)) for k, o in enumerate(options)]
    together = [member(arch, k, dict(o)) for k, o in enumerate(options)]
    failed = set()
    for step in range(1, 7):
        for group in (alone, together):
            for k, (model, opt, dst) in enumerate(group):
                if k not in failed:
                    forward_backward(model, opt, dst, step, arch)
                    if nan_at == (k, step):
                        dst.layers[0].param.data[0] = float("nan")
        expected = []
        for k, (_, _, dst) in enumerate(alone):
            if k in failed:
                continue
            try:
                dst.step_taken()
                expected.append(None)
            except FloatingPointError as exc:
                expected.append(str(exc))
        live = [k for k in range(len(options)) if k not in failed]
        errors = step_together([together[k][2] for k in live])
        assert [None if e is None else str(e) for e in errors] == expected
        assert all(e is None or isinstance(e, FloatingPointError) for e in errors)
        failed |= {k for k, e in zip(live, errors, strict=True) if e is not None}
        for k in live:
            if k not in failed:
                assert_same(state(*alone[k]), state(*together[k]))
    for k, (_, _, dst) in enumerate(together):
        if k not in failed:  # layer densities stay exact
            assert all(int(dst.masks[layer.name].sum()) == layer.count for layer in dst.layers)


def test_a_nan_member_fails_alone():
    engines = [member("mlp", k, dict(density=0.3, prune="magnitude", grow="gradient", update_period=1,
                                     adam=False))
               for k in range(3)]
    for model, opt, dst in engines:
        forward_backward(model, opt, dst, 1, "mlp")
    engines[1][2].layers[1].param.data[2, 3] = float("nan")
    errors = step_together([dst for _, _, dst in engines])
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], FloatingPointError) and "weights of 2.weight at step 1" in str(errors[1])
    assert [len(dst.history) for _, _, dst in engines] == [3, 0, 3]


def test_host_syncs_do_not_grow_with_the_engines(monkeypatch):
    """Magnitude pruning and gradient growth: an update step of 2 engines and of 6 converts as many tensors to
    Python values (the finite check and the history counts), not 6/2 times as many."""
    counted = []
    for name in ("tolist", "item", "__bool__", "__int__", "__float__"):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, _original=original, **kwargs):
            counted[-1] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    for size in (2, 6):
        engines = [member("mlp", k, dict(density=0.3, prune="magnitude", grow="gradient", update_period=1,
                                         adam=False)) for k in range(size)]
        for model, opt, dst in engines:
            forward_backward(model, opt, dst, 1, "mlp")
        counted.append(0)
        assert step_together([dst for _, _, dst in engines]) == [None] * size
    assert counted == [2, 2]


@pytest.mark.parametrize("grow", ["random", "gradient"])
def test_one_engine_steps_as_step_taken(grow):
    a, b = (member("cnn", 3, dict(density=0.3, grow=grow, update_period=2, adam=False)) for _ in range(2))
    for step in range(1, 7):
        for model, opt, dst in (a, b):
            forward_backward(model, opt, dst, step, "cnn")
        a[2].step_taken()
        assert step_together([b[2]]) == [None]
        assert_same(state(*a), state(*b))
    assert len(a[2].history) == 3 * 3  # updates at steps 2, 4, 6 of three layers
