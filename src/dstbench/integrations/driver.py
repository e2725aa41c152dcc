"""The one `DST`, stepped by a training framework's own optimizer step (Lightning, the Hugging Face Trainer).

A framework owns the loop: it may run the backward inside ``optimizer.step(closure)`` (Lightning), accumulate
gradients, all-reduce them (DDP), unscale them and skip a step whose gradients overflowed (AMP). So the engine runs
driven (``DST(..., driven=True)``): the framework's "gradients are final" hook calls `before_optimizer_step`
(which masks them, as the engine's own hook would), and a post-step hook on the torch optimizer calls
`DST.step_taken` right after every optimizer step that really happened, before anything zeroes the gradients.
Steps, schedule, updates and masking are the engine's; nothing of its step logic is repeated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dstbench.sparsity import DST, SparsityConfig, sparse_parameters
from dstbench.sparsity.optimizers import OptimizerState


class DrivenDST:
    """A driven `DST` over `model` and the torch `optimizer`, restored from `state` (a `DST.state_dict`) if given."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, config: SparsityConfig,
                 state: Mapping[str, Any] | None = None):
        # Building the engine masks the weights and their optimizer state with a fresh initial mask. A resumed
        # model's weights (and, in the Trainer, its optimizer state) were loaded before, masked by the checkpoint's
        # masks: they are put back once the checkpoint's masks are.
        loaded = []
        if state is not None:
            view = OptimizerState(optimizer)
            loaded = [(t, t.detach().clone()) for p in sparse_parameters(model).values()
                      for t in (p.data, *view.weight_state(p))]
        self.dst = DST(model, optimizer, config, driven=True)
        if state is not None:
            self.dst.load_state_dict(state)
            with torch.no_grad():
                for tensor, value in loaded:
                    tensor.copy_(value)
        self._ready = False
        self._hook = optimizer.register_step_post_hook(self._stepped)

    def before_optimizer_step(self) -> None:
        """The gradients are final (after backward, all-reduce, unscaling): mask them unless an update is due."""
        self.dst.mask_gradients()
        self._ready = True

    def _stepped(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self._ready:
            raise RuntimeError(
                "the optimizer stepped without the framework's before-optimizer-step hook, so the inactive weights' "
                "gradients were not masked; step the optimizer through the framework (for Lightning's manual "
                "optimization: self.optimizers().step(), not the torch optimizer)")
        self._ready = False
        self.dst.step_taken()

    def close(self) -> None:
        """Stop following the optimizer (the masks and weights stay as they are)."""
        self._hook.remove()
