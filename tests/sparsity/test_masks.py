"""Selection and uniform choice on masks: exact, ties by index, and as cheap on large layers as on small ones."""

import itertools
import math
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dstbench.sparsity.masks import _kth_smallest, choose_uniform, select_highest, select_lowest


def stable_lowest(scores, eligible, k):
    keyed = torch.where(eligible, scores, torch.tensor(float("inf")))
    expected = torch.zeros(scores.numel(), dtype=torch.bool)
    expected[torch.argsort(keyed.reshape(-1), stable=True)[:k]] = True
    return expected.reshape(scores.shape)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), levels=st.sampled_from([2, 7, 1000, 0]),
       eligible_share=st.sampled_from([0.02, 0.1, 0.5, 0.9, 1.0]), k_share=st.floats(0.0, 1.0))
def test_large_selection_equals_a_stable_sort(seed, levels, eligible_share, k_share):
    # Layers large enough for the sampled bound, few or many eligible entries, scores with many ties (levels
    # distinct values) or none (levels 0): the selection is the stable sort's, whatever path it takes.
    g = torch.Generator().manual_seed(seed)
    n = 70_000 + seed % 5000
    scores = torch.randn(n, generator=g) if levels == 0 else torch.randint(levels, (n,), generator=g).float()
    eligible = torch.rand(n, generator=g) < eligible_share
    k = round(k_share * int(eligible.sum()))
    assert torch.equal(select_lowest(scores, eligible, k), stable_lowest(scores, eligible, k))
    chosen = select_highest(scores, eligible, k)
    assert torch.equal(chosen, stable_lowest(-scores, eligible, k))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), levels=st.sampled_from([1, 3, 50, 0]), k_share=st.floats(0.0, 0.3))
def test_kth_smallest_is_exact(seed, levels, k_share):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(100_000, generator=g) if levels == 0 else torch.randint(levels, (100_000,), generator=g)
    values = values.float()
    k = max(1, round(k_share * values.numel()))
    assert _kth_smallest(values, k) == torch.kthvalue(values, k).values


def test_selection_keeps_the_shape():
    scores = torch.arange(12.0).reshape(3, 4)
    assert select_lowest(scores, torch.ones(3, 4, dtype=torch.bool), 2).tolist()[0] == [True, True, False, False]
    assert select_lowest(scores, torch.ones(3, 4, dtype=torch.bool), 0).shape == (3, 4)


@settings(max_examples=100, deadline=None)
@given(eligible=st.lists(st.booleans(), min_size=1, max_size=60), data=st.data())
def test_uniform_choice_takes_exactly_k_eligible(eligible, data):
    eligible = torch.tensor(eligible)
    k = data.draw(st.integers(0, int(eligible.sum())))
    seed = data.draw(st.integers(0, 2**31 - 1))
    chosen = choose_uniform(eligible, k, torch.Generator().manual_seed(seed))
    assert int(chosen.sum()) == k and not (chosen & ~eligible).any()
    assert torch.equal(chosen, choose_uniform(eligible, k, torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("share, k", [(0.9, 150_000), (0.02, 30_000), (0.02, 3), (0.0005, 1)])
def test_uniform_choice_on_a_large_layer(share, k):
    g = torch.Generator().manual_seed(0)
    eligible = torch.rand(2000, 1500, generator=g) < share
    chosen = choose_uniform(eligible, k, g)
    assert chosen.shape == eligible.shape and int(chosen.sum()) == k and not (chosen & ~eligible).any()


def chi_square(counts, cells, draws):
    expected = draws / cells
    return sum((counts.get(c, 0) - expected) ** 2 / expected for c in range(cells))


@pytest.mark.parametrize("entries", [9, 40])
def test_every_subset_is_equally_likely(entries):
    # 7 eligible entries (of 9: drawn by position; of 40: drawn by rank), k = 2 (drawn directly) and k = 5 (the
    # complement of 2): 21 subsets each. The statistic of a uniform choice has mean 20 and standard deviation
    # about 6.3; 60 is far in the tail.
    eligible = torch.zeros(entries, dtype=torch.bool)
    eligible[torch.tensor([0, 2, 3, 4, 5, 7, 8]) * (entries // 9)] = True
    positions = eligible.nonzero().squeeze(1).tolist()
    g = torch.Generator().manual_seed(0)
    for k in (2, 5):
        subsets = {s: i for i, s in enumerate(itertools.combinations(positions, k))}
        draws = 4200
        counts = Counter(subsets[tuple(choose_uniform(eligible, k, g).nonzero().squeeze(1).tolist())]
                         for _ in range(draws))
        assert len(subsets) == math.comb(7, k) and chi_square(counts, len(subsets), draws) < 60
