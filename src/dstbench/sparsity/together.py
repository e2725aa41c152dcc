"""Topology updates of one engine or of many at once: the engines whose update falls on one step (a run group's
members, `dstbench.train.trainer`) select once per layer over all their scores, and count once for all their
history. A lone engine's update (`DST._update`) is this code with one engine.

The result is each engine's own update, bit for bit. A selection's result is unique (the k lowest eligible scores,
ties to the lower flat index: `select_lowest`), so one selection over R engines' stacked scores, each row with its
own k (`select_lowest_rows`), is the R selections; a selection of one row takes `select_lowest` itself. Everything
that draws random numbers (the random criterion, random growth, fresh initialisation, a user rule's draws) runs
per engine, on its own generator, in the engine's own order: all its layers' pruning scores, then layer by layer
its growth and its new weights. Global pruning, excluded regrowth (`regrow_just_pruned=False`), momentum rules and
full layers are batched exactly like the rest: a global ranking is one row over an engine's concatenated layers.

Host syncs per update step: one for the finite check, one for the pruned counts under global pruning, one for the
history counts, whatever the number of engines and layers; per layer, one copy of the eligible masks of uniform
growth to the host, where the generators draw (`choose_uniform` then syncs with nothing). Besides these, a
selection of one row takes `select_lowest` (which syncs), and criteria that sync themselves do (SET's ranks).

An engine whose update raises (NaN weights, a rule's error) stops where it would have stopped alone, with the
history rows of the layers it finished; the others update on. The error is returned, not raised, so that a driver
fails that engine alone.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from dstbench.sparsity.layers import verify_masks_match_across_ranks
from dstbench.sparsity.masks import choose_uniform, prune_count, select_lowest, select_lowest_rows

if TYPE_CHECKING:
    from dstbench.sparsity.engine import DST, _Layer


class _Update:
    """One engine's update in progress; `error` is what stopped it (None: going on)."""

    def __init__(self, dst: DST, fraction: float):
        self.dst, self.fraction = dst, fraction
        self.error: Exception | None = None
        self.layers = {layer.name: layer for layer in dst._updatable()}
        self.jobs: list[_Job] = []
        self.pruned: dict[str, Tensor] = {}
        self.n_lost: dict[str, int] = {}
        self.counts: list[tuple[str, Tensor]] = []  # per finished layer: pruned, grown, active (on the device)

    def fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error


class _Job:
    """One selection: the `k` lowest `scores` among `eligible` (`n_eligible` of them: counts are exact), for
    `owner`; selected into `chosen`."""

    def __init__(self, owner: _Update | None, key: Hashable, scores: Tensor, eligible: Tensor, k: int,
                 n_eligible: int):
        self.owner, self.key, self.scores, self.eligible, self.k = owner, key, scores, eligible, k
        self.n_eligible = n_eligible
        self.chosen: Tensor | None = None


def _select(jobs: list[_Job]) -> None:
    """Fill every job's `chosen`: the jobs of one key, shape and device at once (`select_lowest_rows`), a job
    alone by `select_lowest`."""
    groups: dict[tuple[Any, ...], list[_Job]] = {}
    for job in jobs:
        groups.setdefault((job.key, tuple(job.scores.shape), str(job.scores.device)), []).append(job)
    for group in groups.values():
        if len(group) == 1:
            job = group[0]
            job.chosen = select_lowest(job.scores, job.eligible, job.k)
            continue
        dtype = functools.reduce(torch.promote_types, [job.scores.dtype for job in group])  # exact: order kept
        scores = torch.stack([job.scores.reshape(-1).to(dtype) for job in group])
        eligible = torch.stack([job.eligible.reshape(-1) for job in group])
        chosen = select_lowest_rows(scores, eligible, [job.k for job in group], [job.n_eligible for job in group])
        for job, row in zip(group, chosen, strict=True):
            job.chosen = row.reshape(job.scores.shape)


def _select_for(jobs: list[_Job]) -> None:
    """`_select` of the jobs of engines still going on; an error fails the engines of all of them."""
    jobs = [job for job in jobs if job.owner.error is None]
    try:
        _select(jobs)
    except Exception as exc:
        for job in jobs:
            job.owner.fail(exc)


def _live(updates: list[_Update]) -> list[_Update]:
    return [u for u in updates if u.error is None]


# ------------------------------------------------------------------------------------------------ pruning

def _prune_jobs(owner: _Update | None, dst: DST, rule: Any, fn: Any, fraction: float, generator: torch.Generator,
                use_global: bool) -> list[_Job]:
    """The selections of the weights `rule` prunes: one per updatable layer, or one over all of them (global:
    the lowest ``sum_l ceil(fraction * count_l)`` of their concatenated scores)."""
    layers = dst._updatable()
    if use_global and len(layers) > 1:
        scores, active = dst._scores(rule, fn, layers, generator)
        k = sum(prune_count(fraction, layer.count) for layer in layers)
        return [_Job(owner, tuple(layer.name for layer in layers), scores, active, k,
                     sum(layer.count for layer in layers))]
    jobs = []
    for layer in layers:
        scores, active = dst._scores(rule, fn, [layer], generator)
        jobs.append(_Job(owner, layer.name, scores, active, prune_count(fraction, layer.count), layer.count))
    return jobs


def _pruned(dst: DST, jobs: list[_Job]) -> dict[str, Tensor]:
    """The weights the selected `jobs` remove, per layer (none in a layer no job covers)."""
    pruned = {layer.name: torch.zeros_like(dst.masks[layer.name]) for layer in dst.layers}
    for job in jobs:
        if isinstance(job.key, tuple):  # global: one row over the layers, split back
            layers = [layer for layer in dst.layers if layer.name in job.key]
            for layer, part in zip(layers, job.chosen.split([la.param.numel() for la in layers]), strict=True):
                pruned[layer.name] = part.reshape(layer.param.shape)
        else:
            pruned[job.key] = job.chosen
    return pruned


def select_pruned(dst: DST, rule: Any, fn: Any, fraction: float, generator: torch.Generator,
                  use_global: bool) -> dict[str, Tensor]:
    """The weights criterion `rule` (`fn`, its bound function) prunes from one engine's current state, per layer
    (what `DST.would_prune` probes); draws from `generator`; changes nothing else."""
    jobs = _prune_jobs(None, dst, rule, fn, fraction, generator, use_global)
    _select(jobs)
    return _pruned(dst, jobs)


def _count_lost(updates: list[_Update]) -> None:
    """Each layer's number of pruned weights: the prune count (local), or counted in the masks (global: one host
    sync for all engines)."""
    counted = []
    for u in updates:
        if u.dst.config.global_pruning:
            counted += [(u, name, u.pruned[name].count_nonzero()) for name in u.layers]
        else:
            u.n_lost = {name: prune_count(u.fraction, layer.count) for name, layer in u.layers.items()}
    if counted:
        for (u, name, _), n in zip(counted, torch.stack([c for _, _, c in counted]).tolist(), strict=True):
            u.n_lost[name] = n


# ------------------------------------------------------------------------------------------------- growth

def _grow(u: _Update, layer: _Layer) -> tuple[list[tuple[Tensor, int]], list[_Job]]:
    """Layer's growth: the uniform choices that make it (eligible, count), where the rule has no scores, or the
    selections that choose it by the rule's scores."""
    dst, name = u.dst, layer.name
    old, lost, n_lost = dst.masks[name], u.pruned[name], u.n_lost[name]
    weight = layer.param.detach()
    grad = layer.param.grad.detach() if layer.param.grad is not None else None
    momentum = dst.optimizer_state.momentum(layer.param) if "momentum" in dst.grow_rule.needs else None
    # Just-pruned weights may regrow at once; or, if excluded, only a layer too dense to supply n_lost weights
    # that were inactive before this update takes the remainder from them, so the layer's count stays exact.
    inactive = layer.param.numel() - layer.count
    if dst.config.regrow_just_pruned:
        candidates, supply, n_candidates = ~(old & ~lost), n_lost, inactive + n_lost
    else:
        candidates, supply, n_candidates = ~old, min(n_lost, inactive), inactive
    scores = dst._grow_fn(weight, grad, candidates, generator=dst.generator, momentum=momentum)
    if scores is None:
        return [(candidates, supply)] + ([(lost, n_lost - supply)] if n_lost > supply else []), []
    lowest = -scores  # the highest scores (`select_highest`)
    jobs = [_Job(u, name, lowest, candidates, supply, n_candidates)]
    if n_lost > supply:
        jobs.append(_Job(u, name, lowest, lost, n_lost - supply, n_lost))
    return [], jobs


def _choose_for(draws: list[tuple[_Update, Tensor, int]]) -> list[Tensor | None]:
    """The uniform choices `draws` (engine, eligible, count), each from its engine's generator in the engine's
    order (None: it failed the engine). They are made on the host, where the generators draw: the eligible masks
    go there in one copy and the choices come back in one (on a GPU two transfers, not several syncs a choice)."""
    if not draws:
        return []
    host = torch.stack([eligible.reshape(-1) for _, eligible, _ in draws]).cpu()
    chosen = [_guarded(u, choose_uniform, row, k, u.dst.generator) for (u, _, k), row in zip(draws, host, strict=True)]
    back = torch.stack([torch.zeros_like(row) if c is None else c for c, row in zip(chosen, host, strict=True)])
    back = back.to(draws[0][1].device)
    return [None if c is None else row.reshape(eligible.shape)
            for c, row, (_, eligible, _) in zip(chosen, back, draws, strict=True)]


def _renew(u: _Update, layer: _Layer, grown: Tensor) -> None:
    """Layer's new mask: pruned out, grown in, the grown weights initialised; its history counts kept."""
    dst, name = u.dst, layer.name
    lost = u.pruned[name]
    new = (dst.masks[name] & ~lost) | grown
    dst._init_grown(layer, grown)
    dst.masks[name] = new
    dst.ever_active[name] |= new
    # counted from the masks, not restated from n_lost: a check, not an echo
    u.counts.append((name, torch.stack([lost.count_nonzero(), grown.count_nonzero(), new.count_nonzero()])))


def _guarded(u: _Update, fn: Any, *args: Any) -> Any:
    """`fn(*args)`, or None with `u` failed by its error."""
    try:
        return fn(*args)
    except Exception as exc:
        u.fail(exc)
        return None


# --------------------------------------------------------------------------------------------- the update

def finite_errors(engines: Sequence[DST], need_grad: Sequence[bool]) -> list[Exception | None]:
    """Per engine, the error its update raises before anything changes: NaN or inf in an updatable layer's weights
    (or its gradient, where `need_grad`), or a gradient missing; one host sync for all engines."""
    errors: list[Exception | None] = [None] * len(engines)
    checked = []
    for i, (dst, grad) in enumerate(zip(engines, need_grad, strict=True)):
        try:
            checked.append((i, dst._finite_tensors(grad)))
        except RuntimeError as exc:
            errors[i] = exc
    # min and max are finite iff every value is (NaN propagates): one pass, not two
    flags = [torch.isfinite(torch.stack(torch.aminmax(t))).all() for _, tensors in checked for _, _, t in tensors]
    if flags and not bool(torch.stack(flags).all()):
        bad = iter((~torch.stack(flags)).tolist())
        for i, tensors in checked:
            failed = [(name, what) for (name, what, _), b in zip(tensors, [next(bad) for _ in tensors], strict=True) if b]
            if failed:
                name, what = failed[0]
                errors[i] = FloatingPointError(
                    f"NaN or inf in the {what} of {name} at step {engines[i].steps}: the topology update would be "
                    "meaningless (lower the learning rate or check the loss)"
                )
    return errors


@torch.no_grad()
def update_together(engines: Sequence[DST], fractions: Sequence[float]) -> list[Exception | None]:
    """What `DST._update` does for each engine at its prune fraction, all at once; per engine, the exception its
    update raised (None: updated). An engine appears once."""
    updates = [_Update(dst, fraction) for dst, fraction in zip(engines, fractions, strict=True)]
    need_grad = ["grad" in dst.prune_rule.needs | dst.grow_rule.needs for dst in engines]
    for u, error in zip(updates, finite_errors(engines, need_grad), strict=True):
        if error is not None:
            u.fail(error)
    for u in _live(updates):  # all of an engine's pruning scores first, as alone (the random criterion draws)
        dst = u.dst
        u.jobs = _guarded(u, _prune_jobs, u, dst, dst.prune_rule, dst._prune_fn, u.fraction, dst.generator,
                          dst.config.global_pruning) or []
    _select_for([job for u in updates for job in u.jobs])
    for u in _live(updates):
        u.pruned = _pruned(u.dst, u.jobs)
    _count_lost(_live(updates))
    for name in dict.fromkeys(layer.name for u in updates for layer in u.dst.layers):  # one order: the model's
        growing = [u for u in _live(updates) if name in u.layers]
        grown: dict[int, Tensor | None] = {id(u): None for u in growing}
        draws: list[tuple[_Update, Tensor, int]] = []
        jobs: list[_Job] = []
        for u in growing:
            uniform, more = _guarded(u, _grow, u, u.layers[name]) or ([], [])
            draws += [(u, eligible, k) for eligible, k in uniform]
            jobs += more
        chosen = [(u, c) for (u, _, _), c in zip(draws, _choose_for(draws), strict=True)]
        _select_for(jobs)
        chosen += [(job.owner, job.chosen) for job in jobs]
        for u, part in chosen:
            if u.error is None:
                before = grown[id(u)]
                grown[id(u)] = part if before is None else before | part
        for u in _live(growing):
            _guarded(u, _renew, u, u.layers[name], grown[id(u)])
    _write_history(updates)
    for u in _live(updates):
        _guarded(u, verify_masks_match_across_ranks, u.dst.masks, u.dst.steps)
        u.dst._refresh_float_masks()
    return [u.error for u in updates]


def _write_history(updates: list[_Update]) -> None:
    """One history row per finished layer (those of a failed engine too, as alone): one host sync for all."""
    counts = [c for u in updates for _, c in u.counts]
    if not counts:
        return
    values = iter(torch.stack(counts).tolist())
    for u in updates:
        for name, _ in u.counts:
            pruned, grown, active = next(values)
            u.dst.history.append(dict(step=u.dst.steps, layer=name, prune_fraction=u.fraction, pruned=pruned,
                                      grown=grown, active=active))


def step_together(engines: Sequence[DST]) -> list[Exception | None]:
    """What `DST.step_taken()` does for each engine (a driven engine's step after exactly one optimizer step),
    with the topology updates due at this step done together (`update_together`). Per engine, the exception its
    step raised (None: stepped), so that a driver fails that engine alone; the others have stepped."""
    due = [dst._begin_step() for dst in engines]
    updating = [dst for dst, d in zip(engines, due, strict=True) if d]
    errors = update_together(updating, [dst.prune_fraction() for dst in updating])
    error_of = {id(dst): error for dst, error in zip(updating, errors, strict=True)}
    result = []
    for dst, d in zip(engines, due, strict=True):
        error = error_of.get(id(dst))
        if error is None:
            dst._end_step(d)
        result.append(error)
    return result
