"""Pure tensor operations on masks: exact random masks, deterministic top-k selection, uniform choices."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def random_mask(shape: torch.Size | tuple[int, ...], count: int, generator: torch.Generator,
                device: torch.device | str = "cpu") -> Tensor:
    """A bool mask with exactly `count` True entries placed uniformly at random (drawn on the CPU)."""
    numel = math.prod(shape)
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[torch.randperm(numel, generator=generator)[:count]] = True
    return mask.reshape(shape).to(device)


def select_lowest(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """The `k` eligible entries with the lowest scores, as a bool mask; ties go to the lower flat index.

    `k` must not exceed the number of eligible entries (callers know that count exactly). Nothing is sorted: the
    k-th smallest eligible score splits the entries, and only ties at that score are ordered. A few eligible
    entries (pruning: the active tenth of a layer) are gathered first; many (growth) are selected in place, the
    others counted as +inf. Either way the order of the entries is their flat index order.
    """
    flat_scores, flat_eligible = scores.reshape(-1), eligible.reshape(-1)
    if k <= 0:
        return torch.zeros_like(eligible, dtype=torch.bool)
    index = None
    if 4 * int(flat_eligible.count_nonzero()) < flat_eligible.numel():
        index = flat_eligible.nonzero().squeeze(1)
        values = flat_scores[index]
    else:
        values = torch.where(flat_eligible, flat_scores, torch.full_like(flat_scores, float("inf")))
    threshold = _kth_smallest(values, k)
    lowest = values < threshold
    missing = k - int(lowest.count_nonzero())
    if missing > 0:  # ties at the threshold; an ineligible entry's +inf is no tie of an eligible +inf score
        ties = values == threshold if index is not None else (values == threshold) & flat_eligible
        lowest[ties.nonzero().squeeze(1)[:missing]] = True
    if index is not None:
        lowest = torch.zeros_like(flat_eligible, dtype=torch.bool).index_fill_(0, index[lowest], True)
    return lowest.reshape(scores.shape)


def select_highest(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """The `k` eligible entries with the highest scores; ties go to the lower flat index."""
    return select_lowest(-scores, eligible, k)


def select_lowest_rows(scores: Tensor, eligible: Tensor, ks: list[int],
                       eligible_counts: list[int] | None = None) -> Tensor:
    """`select_lowest` of each row of `scores` (R, n) with its own count ``ks[r]``, at once and without a host
    sync: the same masks (the selection is unique: the k lowest eligible scores, ties to the lower index).

    `eligible_counts`, each row's exact number of eligible entries where the caller knows it: when all rows have
    the same few (under a quarter: pruning's active weights), they are gathered first, as `select_lowest` does.
    """
    rows, n = scores.shape
    if eligible_counts is not None and len(set(eligible_counts)) == 1 and 4 * eligible_counts[0] < n:
        few = eligible_counts[0]
        if few == 0:
            return torch.zeros_like(eligible)
        index = torch.nonzero_static(eligible, size=rows * few)[:, 1].reshape(rows, few)  # ascending per row
        return torch.zeros_like(eligible).scatter_(1, index, _lowest_rows(scores.gather(1, index), None, ks))
    return _lowest_rows(scores, eligible, ks)


def _lowest_rows(scores: Tensor, eligible: Tensor | None, ks: list[int]) -> Tensor:
    """`select_lowest_rows` in place (`eligible` None: all are). Each row's k-th smallest eligible score
    (ineligible entries count as +inf) splits it: the entries under it are taken, and of those at it, the
    eligible ones in index order until the row has k. Rows that share a count share one batched k-th value (a
    grid's members usually all do)."""
    values = scores if eligible is None else torch.where(eligible, scores, torch.full_like(scores, float("inf")))
    k = torch.tensor(ks, device=scores.device).unsqueeze(1)
    counts = sorted(set(ks))
    if len(counts) == 1:
        threshold = torch.kthvalue(values, max(counts[0], 1), dim=1, keepdim=True).values
    else:
        threshold = torch.empty((len(ks), 1), dtype=scores.dtype, device=scores.device)
        for count in counts:
            rows = torch.tensor([r for r, c in enumerate(ks) if c == count], device=scores.device)
            threshold[rows] = torch.kthvalue(values[rows], max(count, 1), dim=1, keepdim=True).values
    lower = values < threshold  # all eligible: an ineligible +inf is under no threshold
    ties = values == threshold if eligible is None else eligible & (values == threshold)
    missing = k - lower.sum(1, keepdim=True)
    return (lower | (ties & (ties.cumsum(1, dtype=torch.int32) <= missing))) & (k > 0)


def _kth_smallest(values: Tensor, k: int) -> Tensor:
    """The k-th smallest of `values` (1-based), exact.

    When k is a small part of many values (growth: a few percent of a layer's inactive weights), the k smallest
    lie under the k'-th smallest of a strided sample, for k' a little above the sample's share of k; selecting
    among the values under that bound is exact and costs a fraction of selecting among all. If fewer than k lie
    under it but k lie at or under it, the bound is the answer (many ties, e.g. zero gradients). A sample that
    misjudges the bound only costs the full selection.
    """
    n = values.numel()
    if n >= 1 << 16 and k <= n // 4:
        sample = values[:: n // 16384]
        expected = k * sample.numel() / n
        rank = min(sample.numel(), math.ceil(expected + 4 * math.sqrt(expected) + 8))
        bound = torch.kthvalue(sample, rank).values
        under = values[values < bound]
        if under.numel() >= k:
            return torch.kthvalue(under, k).values
        if int((values == bound).count_nonzero()) >= k - under.numel():
            return bound
    return torch.kthvalue(values, k).values


def choose_uniform(eligible: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """`k` of the eligible entries, each k-subset equally likely, as a bool mask (drawn from the CPU generator).

    Costs about k random draws, not one per entry: positions are drawn with replacement, and the eligible ones
    not yet chosen join, round after round; a round with more new positions than needed keeps a uniform subset of
    them. (A round's distinct new positions are a uniform subset of the unchosen eligible ones given their number,
    so the union is uniform.) Choosing more than half the eligible entries chooses the rest instead. A few
    eligible entries are gathered first and drawn by their rank, so that draws rarely miss.
    """
    flat = eligible.reshape(-1)
    numel, n = flat.numel(), int(flat.count_nonzero())
    index = flat.nonzero().squeeze(1) if 4 * n < numel else None
    space = numel if index is None else n
    complement = k > n // 2
    target = n - k if complement else k
    taken = torch.zeros(space, dtype=torch.bool, device=flat.device)
    have = 0
    while have < target:
        need = target - have
        draws = math.ceil((need + need // 8) * space / (n - have)) + 32
        new = torch.randint(space, (draws,), generator=generator).to(flat.device)
        new = new[~taken[new] if index is not None else flat[new] & ~taken[new]]
        new = torch.unique(new)
        if new.numel() > need:
            new = new[torch.randperm(new.numel(), generator=generator).to(flat.device)[:need]]
        taken[new] = True
        have += new.numel()
    if index is not None:
        taken = torch.zeros_like(flat).index_fill_(0, index[~taken if complement else taken], True)
    elif complement:
        taken = flat & ~taken
    return taken.reshape(eligible.shape)


def prune_count(fraction: float, active: int) -> int:
    """ceil(fraction * active), robust to floating-point noise (0.5 * 100 is 50, not 51)."""
    return min(active, math.ceil(fraction * active - 1e-9))


def magnitude_masks(weights: dict[str, Tensor], counts: dict[str, int], *, global_: bool = False) -> dict[str, Tensor]:
    """Masks that keep the largest-magnitude weights (one-shot magnitude pruning of loaded weights).

    Layer-wise (``global_=False``): each layer keeps exactly ``counts[name]`` of its largest ``|w|``.
    Global (SMC-Bench's one-shot magnitude pruning): the layers that `counts` leaves full stay full, and all other
    layers together keep exactly as many weights as `counts` gives them in total, chosen by one ranking of ``|w|``
    across them; each layer then holds however many of those it has. Ties go to the lower flat index (of the
    layers concatenated in the order of `weights`), so the counts are exact whatever the values.
    """
    scores = {name: w.detach().abs() for name, w in weights.items()}
    if not global_:
        return {name: select_highest(s, torch.ones_like(s, dtype=torch.bool), counts[name])
                for name, s in scores.items()}
    masks = {name: torch.ones_like(s, dtype=torch.bool) for name, s in scores.items() if counts[name] == s.numel()}
    ranked = [name for name in scores if name not in masks]
    if ranked:
        flat = torch.cat([scores[name].reshape(-1).float() for name in ranked])
        keep = select_highest(flat, torch.ones_like(flat, dtype=torch.bool), sum(counts[n] for n in ranked))
        for name, part in zip(ranked, keep.split([scores[n].numel() for n in ranked]), strict=True):
            masks[name] = part.reshape(scores[name].shape)
    return {name: masks[name] for name in weights}
