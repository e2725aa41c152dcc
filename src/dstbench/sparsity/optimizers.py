"""What the engine must know of an optimizer, in one place: its per-weight state, its momentum, and whether
masking gradients alone keeps inactive weights at exactly zero."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

# For SGD, Adam and AdamW a weight that is zero, with zero state and a zero gradient, stays exactly zero through
# the step (weight decay of 0 is 0; Adam's 0 / (sqrt(0) + eps) is 0). Subclasses may change the step: not listed.
_EXACT_UNDER_GRADIENT_MASKING = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


class OptimizerState:
    """A view of a torch optimizer's state for the engine."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.exact_gradient_masking = type(optimizer) in _EXACT_UNDER_GRADIENT_MASKING
        if isinstance(optimizer, torch.optim.SGD):
            has_momentum = any(g.get("momentum", 0) > 0 for g in optimizer.param_groups)
            self.momentum_key = "momentum_buffer" if has_momentum else None
        elif isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
            self.momentum_key = "exp_avg"
        else:
            self.momentum_key = None

    def weight_state(self, param: nn.Parameter) -> list[Tensor]:
        """The per-weight state of `param` (momentum, Adam's moments, ...): what masking must reach."""
        return [v for v in self.optimizer.state.get(param, {}).values()
                if isinstance(v, Tensor) and v.shape == param.shape]

    def check_momentum(self) -> None:
        """Raise unless the optimizer keeps a momentum a rule could read."""
        if self.momentum_key is None:
            raise ValueError(
                f"momentum-based rules need SGD with momentum > 0, Adam or AdamW; got {type(self.optimizer).__name__}"
            )

    def momentum(self, param: nn.Parameter) -> Tensor:
        """The first-moment buffer of `param` (SGD's momentum buffer, Adam's m)."""
        self.check_momentum()
        value = self.optimizer.state.get(param, {}).get(self.momentum_key)
        if not isinstance(value, Tensor):
            raise RuntimeError(
                f"a momentum-based rule needs the optimizer's {self.momentum_key!r}, which does not exist before "
                "its first step: take at least one optimizer step before the first topology update"
            )
        return value


class SliceOptimizerState(OptimizerState):
    """The state of weights that are slices of larger parameters (a run group's members, `dstbench.train.group`).

    `slices` maps each slice parameter (by `id`) to the optimizer's parameter it is part of and the index that
    cuts it out (``stacked[index]`` is a view). Every state tensor of a slice is the same cut of the stacked
    state, so masking it or reading its momentum reaches the optimizer's own memory.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, slices: Mapping[int, tuple[nn.Parameter, object]]):
        super().__init__(optimizer)
        self.slices = dict(slices)

    def _cut(self, param: nn.Parameter) -> tuple[nn.Parameter, object]:
        try:
            return self.slices[id(param)]
        except KeyError:
            raise KeyError(f"a parameter of shape {tuple(param.shape)} is not a slice of this optimizer's") from None

    def weight_state(self, param: nn.Parameter) -> list[Tensor]:
        stacked, index = self._cut(param)
        return [value[index] for value in super().weight_state(stacked)]

    def momentum(self, param: nn.Parameter) -> Tensor:
        stacked, index = self._cut(param)
        return super().momentum(stacked)[index]
