"""Horizontal fusion: K models of one architecture trained as one model (the network of a run group).

Each member's activations occupy their own block of the channel (or feature) dimension, dimension 1:

- an input is the members' batches concatenated on dimension 1: ``(B, K*C, H, W)`` or ``(B, K*F)``;
- a linear layer is one batched matmul over the K weight matrices (`FusedLinear`, weight ``(K, out, in)``);
- a convolution is one grouped convolution (weight ``(K*out, in/groups, kh, kw)``, ``groups*K``);
- a batch norm runs over the K*C channels, so each member keeps its own statistics;
- activations, pooling, flattening and residual sums act on every channel alike and need no change.

So a model's own ``forward`` runs unchanged on the fused layers; the output is ``(B, K*classes)``, member k's
logits in block k. `Fusion.check` holds every model to it: a forward that mixes across the blocks of its
layout (a softmax or a sum over channels with batched kernels; a statistic over the batch with exact ones, below)
is caught by comparing the fused output with each member's own forward, and refused.

Every member keeps a module of its own architecture whose parameters and buffers are *views* of its block of
the fused tensors (`Fusion.members`): the DST engine runs on that module exactly as on a solo run, saving it
writes a solo run's state dict, and whatever the optimizer does to the fused tensors its view sees.

Two kinds of kernels (`KERNELS`):

- ``"batched"``: one batched matmul / grouped convolution / batch norm per layer, the fast path on a GPU. The
  arithmetic is each member's, but the rounding may differ from the solo kernel's by a few units in the last
  place where the batched kernel sums in another order; training amplifies that, so after some epochs a member
  is a statistically equivalent run, not a bit-identical one, and a mask may differ in a near-tie.
- ``"exact"``: the members' batches are stacked on dim 0 instead (``(K*B, C, H, W)``: every per-example
  operation of a forward still applies), and each fused layer calls the solo kernel once per member on its
  contiguous block. On CPU a member is then bit-identical to its solo run. The members still share one forward, one
  backward, one optimizer step and one training loop, which is where small models spend their time on a CPU.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KERNELS = ("batched", "exact")
_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# Leaf modules without state that act on every channel alike (the forward check still guards them).
_CHANNELWISE = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.Hardswish,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d, nn.Flatten,
)


class FusionError(ValueError):
    """These models cannot be fused (different architectures, or a layer fusion does not know)."""


def _members(x: Tensor, members: int) -> list[Tensor]:
    """The members' batches of an activation in the exact layout (stacked on dim 0): contiguous views."""
    return list(x.chunk(members, dim=0))


class FusedLinear(nn.Module):
    """K linear layers as one batched matmul (or, `exact`, K solo matmuls): input ``(..., K*in)``, output
    ``(..., K*out)``."""

    def __init__(self, members: int, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None, exact: bool = False):
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.exact = exact
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(members, out_features, device=device, dtype=dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if self.exact:
            biases = [None] * self.members if self.bias is None else list(self.bias)
            return torch.cat([F.linear(block, w, b) for block, w, b in
                              zip(_members(x, self.members), self.weight, biases, strict=True)])
        lead = x.shape[:-1]
        x = x.reshape(-1, self.members, self.in_features).transpose(0, 1)  # (K, N, in)
        weight = self.weight.transpose(1, 2)
        if self.bias is None:
            out = torch.bmm(x, weight)
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), x, weight)
        return out.transpose(0, 1).reshape(*lead, self.members * self.out_features)

    def extra_repr(self) -> str:
        return (f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class _ExactConv:
    """A grouped convolution that runs as K solo convolutions (mixed into the Conv class it fuses)."""

    members: int

    def forward(self, x: Tensor) -> Tensor:
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[x.dim() - 2]
        groups = self.groups // self.members
        weights = self.weight.chunk(self.members)
        biases = [None] * self.members if self.bias is None else list(self.bias.chunk(self.members))
        return torch.cat([conv(block, w, b, self.stride, self.padding, self.dilation, groups)
                          for block, w, b in zip(_members(x, self.members), weights, biases, strict=True)])


class _ExactNorm:
    """A batch norm over K*C channels that runs as K solo batch norms (mixed into the BatchNorm class)."""

    members: int

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        else:
            factor = 0.0 if self.momentum is None else self.momentum
        use_batch = self.training or self.running_mean is None

        def chunks(t: Tensor | None) -> list[Tensor | None]:
            return [None] * self.members if t is None else list(t.chunk(self.members))

        parts = zip(_members(x, self.members), chunks(self.running_mean), chunks(self.running_var),
                    chunks(self.weight), chunks(self.bias), strict=True)
        return torch.cat([F.batch_norm(block, mean, var, w, b, use_batch, factor, self.eps)
                          for block, mean, var, w, b in parts])


_EXACT_CLASSES: dict[type, type] = {}


def _exact_class(cls: type, mixin: type) -> type:
    if cls not in _EXACT_CLASSES:
        _EXACT_CLASSES[cls] = type(f"Exact{cls.__name__}", (mixin, cls), {})
    return _EXACT_CLASSES[cls]


def _copy_members(fused: nn.Module, layers: Sequence[nn.Module], join: Any) -> None:
    """The members' weights and biases joined (stacked or concatenated) into the fused layer's."""
    with torch.no_grad():
        fused.weight.copy_(join([layer.weight for layer in layers]))
        if fused.bias is not None:
            fused.bias.copy_(join([layer.bias for layer in layers]))


def _fuse_linear(layers: Sequence[nn.Linear], exact: bool) -> tuple[nn.Module, dict[str, str]]:
    first = layers[0]
    fused = FusedLinear(len(layers), first.in_features, first.out_features, first.bias is not None,
                        device=first.weight.device, dtype=first.weight.dtype, exact=exact)
    _copy_members(fused, layers, torch.stack)
    return fused, {"weight": "stack", "bias": "stack"}


def _fuse_conv(layers: Sequence[nn.Module], exact: bool) -> tuple[nn.Module, dict[str, str]]:
    first, k = layers[0], len(layers)
    if exact and first.padding_mode != "zeros":
        raise FusionError(f"exact kernels support zero-padded convolutions only, not padding_mode="
                          f"{first.padding_mode!r}; use batched kernels")
    cls = _exact_class(type(first), _ExactConv) if exact else type(first)
    fused = cls(
        first.in_channels * k, first.out_channels * k, first.kernel_size, stride=first.stride,
        padding=first.padding, dilation=first.dilation, groups=first.groups * k, bias=first.bias is not None,
        padding_mode=first.padding_mode, device=first.weight.device, dtype=first.weight.dtype,
    )
    fused.members = k
    _copy_members(fused, layers, torch.cat)
    return fused, {"weight": "cat", "bias": "cat"}


def _fuse_norm(layers: Sequence[nn.Module], exact: bool) -> tuple[nn.Module, dict[str, str]]:
    first, k = layers[0], len(layers)
    cls = _exact_class(type(first), _ExactNorm) if exact else type(first)
    fused = cls(first.num_features * k, eps=first.eps, momentum=first.momentum, affine=first.affine,
                        track_running_stats=first.track_running_stats)
    state = {}
    for name, value in first.state_dict().items():
        if name == "num_batches_tracked":
            state[name] = value.clone()
        else:
            state[name] = torch.cat([layer.state_dict()[name] for layer in layers])
    fused.load_state_dict(state)
    fused.members = k
    layout = {name: "cat" for name in state}
    layout["num_batches_tracked"] = "shared"
    return fused, layout


def _fuser(module: nn.Module):
    if type(module) is nn.Linear:
        return _fuse_linear
    if type(module) in _CONV_TYPES:
        return _fuse_conv
    if type(module) in _NORM_TYPES:
        return _fuse_norm
    return None


def _check_stateless(name: str, module: nn.Module) -> None:
    if isinstance(module, nn.Dropout | nn.Dropout1d | nn.Dropout2d | nn.AlphaDropout):
        if module.p > 0:
            raise FusionError(
                f"{name}: dropout (p={module.p}) draws from one random stream, so a fused member would not see "
                "its solo run's dropout masks; train runs with dropout solo (group size 1)")
        return
    own = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
    if own:
        raise FusionError(
            f"{name or 'the model'} ({type(module).__name__}) holds {', '.join(n for n, _ in own)}, and fusion knows "
            "Linear, Conv and BatchNorm layers only; train this model solo (group size 1)")


@dataclass
class Fusion:
    """A fused model and, for each member, a module of the solo architecture made of views of its share."""

    model: nn.Module
    members: list[nn.Module]
    # id(member parameter) -> (fused parameter, index): ``fused[index]`` is that member's share, a view
    slices: dict[int, tuple[nn.Parameter, Any]] = field(default_factory=dict)
    # fused parameter name -> its K indices, one per member
    indices: dict[str, list[Any]] = field(default_factory=dict)

    kernels: str = "batched"

    @property
    def size(self) -> int:
        return len(self.members)

    def inputs(self, batches: Sequence[Tensor]) -> Tensor:
        """The members' batches as one fused input: on dim 1 (channel blocks) for batched kernels, on dim 0
        (batch blocks, each member's contiguous) for exact ones."""
        batches = list(batches)
        if self.kernels != "exact":
            return torch.cat(batches, dim=1)
        first = batches[0]
        if first.dim() < 2 or first.stride(0) != first[0].numel() or any(b.stride() != first.stride() for b in batches):
            return torch.cat(batches)
        # Each member's block keeps its batch's strides (an image batch of one channel may come channels_last):
        # kernels choose their algorithm by the strides, and a member must run the solo run's.
        out = torch.empty_strided((sum(len(b) for b in batches), *first.shape[1:]), first.stride(),
                                  dtype=first.dtype, device=first.device)
        start = 0
        for batch in batches:
            out[start:start + len(batch)].copy_(batch)
            start += len(batch)
        return out

    def labels(self, labels: Sequence[Tensor]) -> Tensor:
        """The members' labels as ``(B, K)``, the layout of `outputs`."""
        return torch.stack(list(labels), dim=1)

    def outputs(self, out: Tensor) -> Tensor:
        """A fused output as ``(B, K, C)``: member k's outputs are ``[:, k]``."""
        if self.kernels == "exact":
            return out.reshape(self.size, -1, out.shape[-1]).transpose(0, 1)
        return out.reshape(out.shape[0], self.size, -1)

    def share(self, fused: Tensor, name: str, k: int) -> Tensor:
        """Member k's block of a tensor shaped like fused parameter `name` (a gradient, a mask, a state)."""
        return fused[self.indices[name][k]]

    def rebind(self) -> None:
        """Point the member modules at the fused tensors again (after the fused model moved device or layout)."""
        fused_params = dict(self.model.named_parameters())
        fused_buffers = dict(self.model.named_buffers())
        self.slices.clear()
        for k, member in enumerate(self.members):
            for module_name, module in member.named_modules():
                prefix = f"{module_name}." if module_name else ""
                for pname, param in list(module._parameters.items()):
                    if param is None:
                        continue
                    full = prefix + pname
                    stacked = fused_params[full]
                    index = self.indices[full][k]
                    view = nn.Parameter(stacked.detach()[index], requires_grad=param.requires_grad)
                    module._parameters[pname] = view
                    self.slices[id(view)] = (stacked, index)
                for bname, buf in list(module._buffers.items()):
                    if buf is None:
                        continue
                    full = prefix + bname
                    index = self.indices[full][k]
                    module._buffers[bname] = fused_buffers[full] if index is None else fused_buffers[full][index]

    def check(self, example: Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> None:
        """Compare the fused forward with every member's own forward on `example` (K inputs stacked on dim 0);
        raise FusionError if a member's block differs: the model's forward mixes members."""
        modules = [*self.model.modules(), *(m for member in self.members for m in member.modules())]
        modes = [m.training for m in modules]
        for module in modules:
            module.training = False
        try:
            with torch.no_grad():
                try:
                    fused = self.outputs(self.model(self.inputs(list(example))).float())
                except (RuntimeError, ValueError) as exc:  # a forward whose shapes only work unfused
                    raise FusionError(
                        f"the fused {type(self.model).__name__} cannot run its members' inputs ({exc}): its forward "
                        "mixes the members' channels; train it solo (group size 1)") from exc
                for k, member in enumerate(self.members):
                    solo = member(example[k]).float().reshape(fused.shape[0], -1)
                    worst = float((fused[:, k] - solo).abs().max())
                    scale = float(solo.abs().max())
                    if not worst <= rtol * scale + atol:  # relative to the outputs' scale (NaN fails too)
                        raise FusionError(
                            f"the fused {type(self.model).__name__} does not compute what its members do (member "
                            f"{k} differs by up to {worst:.3g} on outputs of scale {scale:.3g}): its forward mixes "
                            "the members' channels; train it solo (group size 1)")
        finally:
            for module, mode in zip(modules, modes, strict=True):
                module.training = mode


def fuse(models: Sequence[nn.Module], *, kernels: str = "batched", device: torch.device | str | None = None,
         memory_format: torch.memory_format | None = None) -> Fusion:
    """Fuse `models` (same architecture, any weights) into one, with `kernels` of `KERNELS`; see the module
    docstring.

    The fused model is moved to `device` (and `memory_format`) before the member views are taken, so the
    members' modules see the fused model's memory wherever it lives.
    """
    if not models:
        raise FusionError("a group needs at least one model")
    if kernels not in KERNELS:
        raise FusionError(f"unknown kernels {kernels!r}; valid: {', '.join(KERNELS)}")
    first = models[0]
    structure = [(name, type(m), tuple((n, tuple(t.shape)) for n, t in m.state_dict(keep_vars=True).items()))
                 for name, m in first.named_modules()]
    for k, model in enumerate(models[1:], start=1):
        other = [(name, type(m), tuple((n, tuple(t.shape)) for n, t in m.state_dict(keep_vars=True).items()))
                 for name, m in model.named_modules()]
        if other != structure:
            raise FusionError(f"model {k} has another architecture than model 0 (layers, types or shapes differ)")
    fused = copy.deepcopy(first)
    indices: dict[str, list[Any]] = {}
    count = len(models)
    for name, module in first.named_modules():
        fuser = _fuser(module)
        if fuser is None:
            _check_stateless(name, module)
            continue
        layers = [model.get_submodule(name) for model in models]
        new, layout = fuser(layers, kernels == "exact")
        parent_name, _, child = name.rpartition(".")
        if not name:  # the model is a single fusible layer
            fused = new
        else:
            setattr(fused.get_submodule(parent_name) if parent_name else fused, child, new)
        prefix = f"{name}." if name else ""
        for tname, tensor in module.state_dict(keep_vars=True).items():
            how = layout[tname]
            if how == "stack":
                indices[prefix + tname] = list(range(count))
            elif how == "cat":
                width = tensor.shape[0]
                indices[prefix + tname] = [slice(k * width, (k + 1) * width) for k in range(count)]
            else:
                indices[prefix + tname] = [None] * count
    unfused = sorted(set(dict(fused.named_parameters())) - set(indices))
    if unfused:
        raise FusionError(f"parameters {', '.join(unfused)} are outside the layers fusion knows (Linear, Conv, "
                          "BatchNorm); train this model solo (group size 1)")
    if device is not None or memory_format is not None:
        fused = fused.to(device=device, memory_format=memory_format or torch.preserve_format)
    members = list(models)
    fusion = Fusion(fused, members, indices=indices, kernels=kernels)
    fusion.rebind()
    for member in members:  # a member view on the fused device; its own old tensors are freed
        member.train(fused.training)
    return fusion


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of a model's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def estimated_group_bytes(model: nn.Module, example: Tensor, members: int, batch_size: int,
                          optimizer_slots: int = 1, captured: bool = False) -> int:
    """A group's training memory for K = `members`: weights, gradients, masks and optimizer state (K times one
    model's), plus the activations of one batch measured by a forward pass of one model on `example`. A
    `captured` step (a CUDA graph) keeps its gradients and activations in the graph's own memory, beside those of
    the eager steps at updates (the allocator keeps both reserved): counted twice.

    Activations are estimated from the outputs of every leaf module (what autograd keeps for the backward),
    scaled to `batch_size` and K. An estimate, not a bound: the allocator's slack and workspaces come on top.
    """
    weights = parameter_bytes(model)
    activation = 0

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal activation
        if isinstance(output, Tensor):
            activation += output.numel() * output.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    per_example = activation / max(1, example.shape[0])
    per_member = weights * (3 + optimizer_slots + captured) + math.ceil(per_example * batch_size * 2 * (1 + captured))
    return members * per_member
