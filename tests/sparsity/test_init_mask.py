"""The initial mask from the loaded weights: magnitude (layer-wise) and global magnitude keep exactly the largest."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dstbench.sparsity import DST, SparsityConfig
from dstbench.sparsity.layers import sparse_parameters
from dstbench.sparsity.masks import magnitude_masks

from .helpers import mlp, train_step


def test_layer_wise_magnitude_by_hand():
    w = {"a": torch.tensor([[0.5, -3.0], [2.0, 0.1]]), "b": torch.tensor([1.0, -1.0, 0.2, 7.0])}
    masks = magnitude_masks(w, {"a": 2, "b": 2})
    assert masks["a"].tolist() == [[False, True], [True, False]]
    assert masks["b"].tolist() == [True, False, False, True]  # |1| = |-1|: the tie goes to the lower index


def test_global_magnitude_by_hand():
    # 4 of the 8 weights of a and b together: 7, -3, 2, then one of the two 1s (the lower index, in a's then b's
    # order: b[0]); c is full (its count is its size) and stays full, out of the ranking.
    w = {"a": torch.tensor([[0.5, -3.0], [2.0, 0.1]]), "c": torch.tensor([0.0, 0.0]),
         "b": torch.tensor([1.0, -1.0, 0.2, 7.0])}
    masks = magnitude_masks(w, {"a": 2, "c": 2, "b": 2}, global_=True)
    assert masks["a"].tolist() == [[False, True], [True, False]]
    assert masks["b"].tolist() == [True, False, False, True]
    assert masks["c"].tolist() == [True, True]
    masks = magnitude_masks(w, {"a": 3, "c": 2, "b": 1}, global_=True)  # same total: same choice
    assert masks["a"].tolist() == [[False, True], [True, False]] and list(masks) == ["a", "c", "b"]


layer_shapes = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(shapes=layer_shapes, seed=st.integers(0, 2**31 - 1), share=st.floats(0.0, 1.0), ties=st.booleans())
def test_magnitude_masks_keep_exactly_the_largest(shapes, seed, share, ties):
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for i, shape in enumerate(shapes):
        w = torch.randn(shape, generator=g)
        weights[f"l{i}"] = w.round() if ties else w  # many equal magnitudes
    counts = {n: round(share * w.numel()) for n, w in weights.items()}

    local = magnitude_masks(weights, counts)
    for name, w in weights.items():
        mask = local[name]
        assert int(mask.sum()) == counts[name]
        if 0 < counts[name] < w.numel():  # every kept weight is at least as large as every dropped one
            assert w.abs()[mask].min() >= w.abs()[~mask].max()

    glob = magnitude_masks(weights, counts, global_=True)
    full = [n for n, w in weights.items() if counts[n] == w.numel()]
    ranked = [n for n in weights if n not in full]
    assert all(bool(glob[n].all()) for n in full)
    assert sum(int(glob[n].sum()) for n in ranked) == sum(counts[n] for n in ranked)
    kept = torch.cat([weights[n].abs()[glob[n]] for n in ranked] + [torch.empty(0)])
    dropped = torch.cat([weights[n].abs()[~glob[n]] for n in ranked] + [torch.empty(0)])
    if kept.numel() and dropped.numel():
        assert kept.min() >= dropped.max()


@pytest.mark.parametrize("init_mask", ["magnitude", "global_magnitude"])
def test_the_engine_starts_from_the_largest_weights_and_keeps_its_counts(init_mask):
    model = mlp(sizes=(12, 32, 16, 3))
    before = {n: p.detach().clone() for n, p in sparse_parameters(model).items()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    dst = DST(model, opt, SparsityConfig(density=0.3, distribution="uniform", update_period=3, total_steps=12,
                                         init_mask=init_mask))
    total = sum(w.numel() for w in before.values())
    assert sum(layer.count for layer in dst.layers) == round(0.3 * 32 * 12) + round(0.3 * 16 * 32) + round(0.3 * 48)
    expected = magnitude_masks(before, {layer.name: layer.count for layer in dst.layers},
                               global_=init_mask == "global_magnitude")
    for name, mask in dst.masks.items():
        assert torch.equal(mask, expected[name])
        assert torch.equal(dict(model.named_parameters())[name].detach(), before[name] * mask)  # pruned to zero
    counts = {layer.name: layer.count for layer in dst.layers}
    assert dst.density() == pytest.approx(sum(counts.values()) / total)
    g = torch.Generator().manual_seed(0)
    start = {n: m.clone() for n, m in dst.masks.items()}
    for _ in range(12):
        train_step(model, opt, dst, g)
    assert {n: int(m.sum()) for n, m in dst.masks.items()} == counts
    assert any(not torch.equal(start[n], dst.masks[n]) for n in start)  # the updates moved the topology


def test_a_global_magnitude_layer_may_end_up_with_another_count_than_uniform():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[1].weight.fill_(0.01)
    dst = DST(model, torch.optim.SGD(model.parameters(), lr=0.1), density=0.5, distribution="uniform",
              update_period=0, init_mask="global_magnitude")
    assert [layer.count for layer in dst.layers] == [16, 0]  # the total is the distribution's (16 of 32)
    assert dst.density() == 0.5


def test_unknown_init_mask_is_refused():
    with pytest.raises(ValueError, match="init_mask = 'largest': must be one of 'random', 'magnitude', 'global_ma"):
        SparsityConfig(density=0.5, init_mask="largest")
