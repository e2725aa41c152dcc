"""The DST object: masks over a model's weights, kept exact through training and updated by prune-and-grow.

Order of a training step: ``loss.backward()`` -> ``optimizer.step()`` -> ``dst.step()``. Every criterion sees the
same state: the weights after the optimizer step and the mini-batch gradient the backward left in ``.grad``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dstbench.sparsity.config import SparsityConfig
from dstbench.sparsity.criteria import CRITERIA
from dstbench.sparsity.distributions import exact_counts, layer_densities
from dstbench.sparsity.growth import GROWTH
from dstbench.sparsity.layers import SPARSE_LAYER_TYPES, match_dense_layers, sparse_parameters
from dstbench.sparsity.masks import magnitude_masks, random_mask
from dstbench.sparsity.optimizers import OptimizerState
from dstbench.sparsity.registry import RuleSpec
from dstbench.sparsity.schedules import SCHEDULES
from dstbench.sparsity.together import finite_errors, select_pruned, update_together


@dataclass
class _Layer:
    name: str
    param: nn.Parameter
    count: int  # active weights, fixed for the whole run
    updatable: bool  # takes part in updates: sparse layers; full ones at density 1.0 or with update_full_layers

    @property
    def masked(self) -> bool:
        """Whether some weights are inactive (a full layer's mask is all ones between updates)."""
        return self.count < self.param.numel()


class DST:
    """Dynamic (or static, or dense) sparse training of any `nn.Module`.

    ``density=1.0`` trains densely and ``update_period=0`` keeps the initial mask (static sparse training), so
    baselines share this code path. The exact rules are in docs/update-rules.md.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | OptimizerState,
                 config: SparsityConfig | None = None, *, driven: bool = False,
                 mask_buffers: Mapping[str, Tensor] | None = None, **options: Any):
        """`config` holds the options (see `SparsityConfig`); keyword `options` build one or override its fields:
        ``DST(model, opt, density=0.1, prune="snip")`` or ``DST(model, opt, SparsityConfig(density=0.1))``.

        ``driven=True`` is for a driver that steps many engines over one optimizer (a run group,
        `dstbench.train.group`): `optimizer` may then be an `OptimizerState` (a view of the driver's optimizer),
        the engine installs no optimizer hooks, the driver masks the gradients with `float_masks` before each
        optimizer step (except for an engine whose `update_due()`) and calls `step_taken()` after it.
        `mask_buffers` are where the float masks live (views into the driver's stacked masks): one tensor per
        layer name, shaped like the weight; the engine writes them, the driver reads them.
        """
        if config is None:
            config = SparsityConfig(**options)
        elif options:
            config = dataclasses.replace(config, **options)
        self.config = config
        self.model = model
        if isinstance(optimizer, OptimizerState):
            if not driven:
                raise TypeError("DST takes a torch optimizer; an OptimizerState only with driven=True")
            self.optimizer, self.optimizer_state = optimizer.optimizer, optimizer
        else:
            self.optimizer, self.optimizer_state = optimizer, OptimizerState(optimizer)
        self.driven = driven
        self._mask_buffers = dict(mask_buffers or {})
        self.update_period = config.update_period if config.updates else 0
        self.end_step = config.last_update_step
        self.generator = torch.Generator().manual_seed(config.seed)
        self.prune_rule, self._prune_fn, _ = CRITERIA.resolve(config.prune)
        self.grow_rule, self._grow_fn, _ = GROWTH.resolve(config.grow)
        self.schedule_rule, self._schedule_fn, _ = SCHEDULES.resolve(config.schedule)
        if "momentum" in self.prune_rule.needs | self.grow_rule.needs:
            self.optimizer_state.check_momentum()

        params = sparse_parameters(model)
        if not params:
            raise ValueError(
                f"{type(model).__name__} has no trainable Linear or Conv weights to make sparse; "
                f"DST works on {', '.join(t.__name__ for t in SPARSE_LAYER_TYPES)} layers"
            )
        dense = match_dense_layers(params, config.dense_layers)
        shapes = {n: tuple(p.shape) for n, p in params.items()}
        densities = layer_densities(config.distribution, shapes, config.density, dense=frozenset(dense),
                                    power=config.erk_power)
        counts = exact_counts(shapes, densities)
        if config.init_mask == "random":
            masks = {n: random_mask(p.shape, counts[n], self.generator, p.device) for n, p in params.items()}
        else:  # the loaded weights' largest magnitudes; global ranking decides the layers' counts itself
            masks = magnitude_masks(params, counts, global_=config.init_mask == "global_magnitude")
            counts = {n: int(m.count_nonzero()) for n, m in masks.items()}
        full_too = config.update_full_layers or config.density >= 1.0
        self.layers = [_Layer(n, p, counts[n], full_too or counts[n] < p.numel()) for n, p in params.items()]
        self._masked = [layer for layer in self.layers if layer.masked]  # fixed for the run; read every step
        self.masks: dict[str, Tensor] = masks
        self.ever_active = {n: m.clone() for n, m in self.masks.items()}
        self.history: list[dict[str, Any]] = []
        self.steps = 0
        self._float_masks: dict[str, Tensor] = {}
        self._refresh_float_masks()
        self.apply_masks()
        self._update_next = self.update_due()
        self._optimizer_steps = 0  # optimizer steps since the last `step()`, counted by the hook below
        if driven:  # the driver masks gradients (if exact) and says when a step was taken
            self._grad_hook = self._step_hook = None
            self._masks_gradients = self.optimizer_state.exact_gradient_masking
        else:
            self._grad_hook = self._install_gradient_masking()
            self._step_hook = self.optimizer.register_step_post_hook(self._count_optimizer_step)
            self._masks_gradients = self._grad_hook is not None

    # ----------------------------------------------------------------------------------------------- queries

    def density(self) -> float:
        """Active sparse weights / all sparse weights (exact: layer counts never change)."""
        return sum(layer.count for layer in self.layers) / sum(layer.param.numel() for layer in self.layers)

    def layer_densities(self) -> dict[str, float]:
        return {layer.name: layer.count / layer.param.numel() for layer in self.layers}

    def itop(self) -> float:
        """In-time over-parametrisation: weights active at least once / all sparse weights (one host sync)."""
        explored = torch.stack([m.count_nonzero() for m in self.ever_active.values()]).sum()
        return float(explored) / sum(layer.param.numel() for layer in self.layers)

    def prune_fraction(self, step: int | None = None) -> float:
        """The schedule's prune fraction at `step` (default: the current step)."""
        step = self.steps if step is None else step
        if not self.update_period:
            return 0.0
        return float(self._schedule_fn(step, initial=self.config.prune_fraction, total=self.end_step))

    def update_due(self) -> bool:
        """Whether the next `step()` call prunes and regrows (lets a loop prepare a larger-batch gradient)."""
        nxt = self.steps + 1
        return bool(self.update_period) and nxt % self.update_period == 0 and nxt <= self.end_step

    def next_update(self, after: int) -> int | None:
        """The first step after step `after` that prunes and regrows, or None if none does."""
        if not self.update_period:
            return None
        step = (after // self.update_period + 1) * self.update_period
        return step if step <= self.end_step else None

    # ------------------------------------------------------------------------------------------------ steps

    def step(self) -> None:
        """Call after ``optimizer.step()``: update the topology when due, and keep inactive weights at zero.

        With gradient masking on (see `_install_gradient_masking`) inactive weights never move, so ordinary steps
        cost nothing here; after an update, or without gradient masking, weights and optimizer state are masked.

        Exactly one optimizer step must have happened since the last call (several backward passes before it are
        fine: gradient accumulation). A step the optimizer skipped because its gradients hold inf or NaN (what
        ``GradScaler`` does) is skipped here too: the schedule does not advance and no update reads those
        gradients. Anything else is a wrong order and raises.
        """
        if self.driven:
            raise RuntimeError("a driven engine is stepped by its driver: call step_taken() after the optimizer step")
        taken, self._optimizer_steps = self._optimizer_steps, 0
        if taken != 1:
            if taken == 0 and self._optimizer_skipped_step():
                return
            raise RuntimeError(
                f"dst.step() found {taken} optimizer steps since its last call; it must follow exactly one. "
                "The order of a training step is loss.backward() -> optimizer.step() -> dst.step() "
                "(with gradient accumulation: several backward passes, then one optimizer.step(), then dst.step())"
            )
        self.step_taken()

    def step_taken(self) -> None:
        """The step after exactly one optimizer step: what `step()` does once it has checked the order. A driver
        (``driven=True``) calls it directly; it must have masked the gradients before that optimizer step. A
        driver of many engines may step them together instead (`dstbench.sparsity.together.step_together`)."""
        updated = self._begin_step()
        if updated:
            self._update(self.prune_fraction())
        self._end_step(updated)

    def _begin_step(self) -> bool:
        """`step_taken`'s first half: count the step; whether it updates the topology."""
        self.steps += 1
        return self._update_next

    def _end_step(self, updated: bool) -> None:
        """`step_taken`'s second half, after the update (if `updated`): mask where needed, look ahead."""
        if updated or not self._masks_gradients:
            self.apply_masks()
        self._update_next = self.update_due()

    def steps_taken(self, count: int) -> None:
        """`count` steps that update nothing, at once: what as many `step_taken()` calls do. For a driver that
        visits its engines only at their updates; the gradient masking must keep inactive weights at zero alone."""
        update = self.next_update(self.steps)
        if count < 0 or (update is not None and update <= self.steps + count) or not self._masks_gradients:
            raise RuntimeError(f"steps_taken({count}) at step {self.steps}: only steps before the next update "
                               f"({update}), with exact gradient masking, can be taken at once")
        self.steps += count
        self._update_next = self.update_due()

    @property
    def float_masks(self) -> Mapping[str, Tensor]:
        """The masks of the layers with inactive weights, as the weights' dtype (what gradients are multiplied
        by); a layer without inactive weights has none."""
        return self._float_masks

    def _install_gradient_masking(self) -> Any:
        """Zero inactive weights' gradients right before each optimizer step, except before a topology update.

        Where that keeps inactive weights exactly zero (`OptimizerState.exact_gradient_masking`), one fused multiply
        over the gradients replaces masking weights and state after every step. It runs as an optimizer pre-step
        hook: after every backward pass (gradient accumulation) and after DistributedDataParallel has reduced the
        gradients, so it is exact under DDP too. Before an update the gradient is left dense: gradient growth reads
        it, and `step()` masks weights and state after that update. For other optimizers `step()` masks weights
        and state every step instead.
        """
        if not self.optimizer_state.exact_gradient_masking:
            return None
        return self.optimizer.register_step_pre_hook(self.mask_gradients)

    @torch.no_grad()
    def mask_gradients(self, *_hook_args: Any) -> None:
        """Zero the inactive weights' gradients, unless the next step updates the topology (it reads them dense):
        the optimizer pre-step hook above, and what a driven engine's driver calls once the gradients are final
        (`dstbench.integrations`: after a framework's backward, reduction and unscaling)."""
        if self._update_next:
            return
        grads, masks = [], []
        for layer in self._masked:
            if layer.param.grad is not None:
                grads.append(layer.param.grad)
                masks.append(self._float_masks[layer.name])
        if grads:
            torch._foreach_mul_(grads, masks)

    def _count_optimizer_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._optimizer_steps += 1

    def _optimizer_skipped_step(self) -> bool:
        """Whether the optimizer's gradients hold inf or NaN, the one reason to skip a step (one host sync, taken
        only when no optimizer step was counted)."""
        grads = [p.grad for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        return bool(grads) and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())

    def remove(self) -> None:
        """Detach the engine's hooks from the optimizer (the masks stay as they are)."""
        for hook in (self._grad_hook, self._step_hook):
            if hook is not None:
                hook.remove()
        self._grad_hook = self._step_hook = None
        self._masks_gradients = False

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero inactive weights and their optimizer state (one fused multiply per group of tensors)."""
        weights, masks, states, state_masks = [], [], [], []
        for layer in self._masked:
            mask = self._float_masks[layer.name]
            weights.append(layer.param.data)
            masks.append(mask)
            for value in self.optimizer_state.weight_state(layer.param):
                states.append(value)
                state_masks.append(mask if value.dtype == mask.dtype else mask.to(value.dtype))
        if weights:
            torch._foreach_mul_(weights, masks)
        if states:
            torch._foreach_mul_(states, state_masks)

    def would_prune(self, criterion: RuleSpec, fraction: float | None = None,
                    global_pruning: bool | None = None) -> dict[str, Tensor]:
        """The weights `criterion` would remove from the current state, per layer; changes nothing.

        Uses the current weights and ``.grad``; `fraction` defaults to the schedule's current value. Random
        choices come from a copy of the engine's generator, so probing never changes the run.
        """
        rule, fn, _ = CRITERIA.resolve(criterion)
        fraction = self.prune_fraction() if fraction is None else fraction
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"prune fraction must be in [0, 1), got {fraction}")
        generator = torch.Generator().set_state(self.generator.get_state())
        self._check_finite(need_grad="grad" in rule.needs)
        use_global = self.config.global_pruning if global_pruning is None else global_pruning
        return select_pruned(self, rule, fn, fraction, generator, use_global)

    # ------------------------------------------------------------------------------------------- internals

    def _updatable(self) -> list[_Layer]:
        return [layer for layer in self.layers if layer.updatable]


    def _finite_tensors(self, need_grad: bool) -> list[tuple[str, str, Tensor]]:
        """What must be finite for an update: (layer, "weights" or "gradient", tensor); raises if a gradient a
        rule needs is missing."""
        tensors = [(layer.name, "weights", layer.param) for layer in self._updatable()]
        if need_grad:
            for layer in self._updatable():
                if layer.param.grad is None:
                    raise RuntimeError(
                        f"a gradient-based rule needs {layer.name}.grad, which is None: call loss.backward() "
                        "before the step that updates the topology (and don't zero the gradients in between)"
                    )
                tensors.append((layer.name, "gradient", layer.param.grad))
        return tensors

    def _check_finite(self, need_grad: bool) -> None:
        error = finite_errors([self], [need_grad])[0]
        if error is not None:
            raise error

    def _scores(self, rule, fn, layers: list[_Layer], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A criterion's scores over `layers` (one layer as it is, several flattened and concatenated) and the
        active mask they cover."""
        def cat(ts: list[Tensor]) -> Tensor:
            return torch.cat([t.reshape(-1) for t in ts]) if len(layers) > 1 else ts[0]

        weight = cat([layer.param.detach() for layer in layers])
        grads = [layer.param.grad for layer in layers]
        grad = cat([g.detach() for g in grads]) if all(g is not None for g in grads) else None
        active = cat([self.masks[layer.name] for layer in layers])
        extra = {}
        if "momentum" in rule.needs:
            extra["momentum"] = cat([self.optimizer_state.momentum(layer.param) for layer in layers])
        return fn(weight, grad, active, generator=generator, **extra), active

    def _update(self, fraction: float) -> None:
        """Prune and regrow every updatable layer (`dstbench.sparsity.together`, with this engine alone)."""
        error = update_together([self], [fraction])[0]
        if error is not None:
            raise error

    def _init_grown(self, layer: _Layer, grown: Tensor) -> None:
        """Grown weights start at 0 (or a fresh draw) with zeroed optimizer state."""
        param = layer.param
        if self.config.grow_init == "fresh":
            fan_in = param[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            fresh = (torch.rand(param.shape, generator=self.generator) * 2 - 1).mul_(bound).to(param)
            param.data.copy_(torch.where(grown, fresh, param.data))
        else:
            param.data.masked_fill_(grown, 0.0)
        for value in self.optimizer_state.weight_state(param):
            value.masked_fill_(grown, 0)

    def _refresh_float_masks(self) -> None:
        """Masks as the weights' dtype and memory layout (channels_last too), ready to multiply into them; written
        in place, into the driver's `mask_buffers` where given."""
        for layer in self._masked:
            target = self._float_masks.get(layer.name)
            if target is None:
                target = self._mask_buffers.get(layer.name)
                if target is None:
                    target = torch.empty_like(layer.param)
                self._float_masks[layer.name] = target
            target.copy_(self.masks[layer.name])

    # ---------------------------------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: masks, step, ever-active masks, generator state, history."""
        return {
            "steps": self.steps,
            "masks": {n: m.cpu() for n, m in self.masks.items()},
            "ever_active": {n: m.cpu() for n, m in self.ever_active.items()},
            "generator": self.generator.get_state(),
            "history": list(self.history),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        names = [layer.name for layer in self.layers]
        if sorted(state["masks"]) != sorted(names):
            raise ValueError(f"checkpoint masks are for layers {sorted(state['masks'])}, this model has {sorted(names)}")
        for layer in self.layers:
            mask = state["masks"][layer.name]
            if tuple(mask.shape) != tuple(layer.param.shape) or int(mask.sum()) != layer.count:
                raise ValueError(
                    f"checkpoint mask of {layer.name} has shape {tuple(mask.shape)} and {int(mask.sum())} active "
                    f"weights; this run expects {tuple(layer.param.shape)} and {layer.count}"
                )
            device = layer.param.device
            self.masks[layer.name] = mask.to(device=device, dtype=torch.bool)
            self.ever_active[layer.name] = state["ever_active"][layer.name].to(device=device, dtype=torch.bool)
        self.steps = int(state["steps"])
        self.generator.set_state(state["generator"])
        self.history = list(state["history"])
        self._refresh_float_masks()
        self.apply_masks()
        self._update_next = self.update_due()
