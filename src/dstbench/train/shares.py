"""The members' shares of the tensors the one trainer steps (`dstbench.train.trainer`): K members' float masks,
gradients, weights and optimizer state live stacked (a lone member's are its plain model's own), and each member's
engine sees its share through views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dstbench.sparsity.layers import sparse_parameters
from dstbench.train.members import Member


class Shares:
    """Gradient masking over all members at once, a member's gradients shown to its engine at its events, the
    gradients of members that train one by one gathered into the stacked ones, and a failed member frozen."""

    def __init__(self, layout: Any, model: nn.Module, one_by_one: bool):
        self.layout, self.one_by_one = layout, one_by_one
        self.params = dict(model.named_parameters())
        self.masks: dict[str, Tensor] = {}  # parameter name -> float mask of the (stacked) weights
        self._masking: list[tuple[nn.Parameter, Tensor, str]] = []
        self._exposed: set[int] = set()
        # one by one: each member's parameter, its share of the stacked gradient, and that stacked gradient
        self._grads = {id(p): torch.zeros_like(p) for p in model.parameters()} if one_by_one else {}
        self._grad_shares: dict[int, list[tuple[nn.Parameter, Tensor, Tensor]]] = {}

    def mask_buffers(self, member: Member) -> dict[str, Tensor]:
        """Where member's engine writes its float masks: its shares of the stacked masks."""
        buffers = {}
        for name in sparse_parameters(member.model):
            if name not in self.masks:
                self.masks[name] = torch.ones_like(self.params[name])
            buffers[name] = self.layout.share(self.masks[name], name, member.k)
        if self.one_by_one:
            self._grad_shares[member.k] = [
                (param, self._grads[id(fused)][index], self._grads[id(fused)])
                for param in member.model.parameters() for fused, index in [self.layout.slices[id(param)]]]
        return buffers

    def watch(self, members: Sequence[Member]) -> None:
        """After the engines exist: mask the gradients of the layers some member masks."""
        masked = {name for m in members for name in m.dst.float_masks}
        self._masking = [(self.params[name], self.masks[name], name) for name in sorted(masked)]

    @torch.no_grad()
    def mask_gradients(self, due: list[Member], size: int) -> None:
        """Zero inactive weights' gradients: one fused multiply, except the shares of the `due` members, which
        update after this step (gradient growth reads their dense gradient; their engine masks after the update)."""
        grads = [(p.grad, mask, name) for p, mask, name in self._masking if p.grad is not None]
        if not grads or len(due) == size:
            return
        kept = [[self.layout.share(g, name, m.k).clone() for m in due] for g, _, name in grads] if due else []
        torch._foreach_mul_([g for g, _, _ in grads], [mask for _, mask, _ in grads])
        for (g, _, name), saved in zip(grads, kept, strict=False):
            for member, share in zip(due, saved, strict=True):
                self.layout.share(g, name, member.k).copy_(share)

    def expose(self, member: Member, clear: bool = False) -> None:
        """Give a group member's parameters their shares of the stacked gradients (views), or take them away (a
        lone member's parameters are the optimizer's own)."""
        if len(self.layout.members) == 1 or clear != (member.k in self._exposed):
            return
        (self._exposed.discard if clear else self._exposed.add)(member.k)
        for param in member.model.parameters():
            stacked, index = self.layout.slices[id(param)]
            param.grad = None if clear or stacked.grad is None else stacked.grad[index]

    def gather(self, members: Sequence[Member]) -> None:
        """One by one: the `members`' gradients into their shares of the stacked gradients, theirs cleared for the
        next backward; a parameter no member's loss reached keeps no gradient, as in a solo run."""
        sources, shares, reached = [], [], set()
        for member in members:
            for param, share, grad in self._grad_shares[member.k]:
                if param.grad is not None:
                    sources.append(param.grad)
                    shares.append(share)
                    reached.add(id(grad))
                param.grad = None
        torch._foreach_copy_(shares, sources)
        for param in self.params.values():
            if id(self._grads[id(param)]) in reached:
                param.grad = self._grads[id(param)]

    @torch.no_grad()
    def freeze(self, member: Member) -> None:
        """Zero a member's share of everything (weights, statistics, optimizer state, masks, gradients): with its
        loss dropped its gradients are exactly zero, and the share stays zero, finite, and out of the others' way."""
        buffers = [b for n, b in member.model.named_buffers() if not n.endswith("num_batches_tracked")]  # shared
        for tensor in [*member.model.parameters(), *buffers]:
            tensor.zero_()
        for param in member.model.parameters():
            for value in member.dst.optimizer_state.weight_state(param):
                value.zero_()
        for name, mask in self.masks.items():
            self.layout.share(mask, name, member.k).zero_()
        for _, share, _ in self._grad_shares.get(member.k, []):
            share.zero_()
