"""A trained sparse model as a sparse file, and what its sparsity saves, layer by layer.

`export_run(run_dir, out)` writes a finished run's final weights, `export_model(model, masks, out)` any model's
(masks from a `DST`, e.g. a callback's ``callback.dst.masks``), in the format of `dstbench.weights` (values plus
bit-packed masks; `dstbench.weights.read_weights` gives back the exact dense state dict). Both return the
per-layer table: shape, density, non-zeros (the weights under the mask, stored as values), and forward FLOPs per
sample dense and sparse. FLOPs count each multiply-accumulate of a Linear or Conv weight as 2 (biases, norms and
activations are not counted), over one sample's forward pass: a weight applied at P output positions (a
convolution's output pixels, a sequence's tokens) costs 2 x weights x P dense and 2 x non-zeros x P sparse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dstbench import store
from dstbench.errors import UserError
from dstbench.sparsity.layers import SPARSE_LAYER_TYPES
from dstbench.weights import read_final_weights, save_weights


@dataclass(frozen=True)
class LayerRow:
    name: str
    shape: tuple[int, ...]
    nonzeros: int
    dense_flops: int | None  # per sample; None without a sample to run
    sparse_flops: int | None

    @property
    def density(self) -> float:
        return self.nonzeros / max(1, _numel(self.shape))


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _positions(model: nn.Module, sample: Any) -> dict[str, int]:
    """Output positions per sample of each Linear/Conv weight, from one forward pass of `sample` (batch of one)."""
    positions: dict[str, int] = {}
    names = {id(m): name for name, m in model.named_modules()}
    hooks = []

    def record(module: nn.Module, args: Any, output: Tensor) -> None:
        channels = module.out_features if isinstance(module, nn.Linear) else module.out_channels
        positions[f"{names[id(module)]}.weight" if names[id(module)] else "weight"] = output.numel() // channels

    for module in model.modules():
        if isinstance(module, SPARSE_LAYER_TYPES):
            hooks.append(module.register_forward_hook(record))
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(sample)
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return positions


def layer_table(model: nn.Module, masks: Mapping[str, Tensor], sample: Any = None) -> list[LayerRow]:
    """One row per Linear/Conv weight of `model` (dense ones too); FLOPs from a forward pass of `sample` (one
    sample, batch dimension included), or None without one."""
    positions = _positions(model, sample) if sample is not None else {}
    rows = []
    for name, module in model.named_modules():
        if not isinstance(module, SPARSE_LAYER_TYPES):
            continue
        key = f"{name}.weight" if name else "weight"
        weight = module.weight
        nonzeros = int(masks[key].count_nonzero()) if key in masks else weight.numel()
        p = positions.get(key)
        rows.append(LayerRow(key, tuple(weight.shape), nonzeros, None if p is None else 2 * weight.numel() * p,
                             None if p is None else 2 * nonzeros * p))
    return rows


def format_table(rows: list[LayerRow]) -> str:
    """The table as text, with a total row (density of all listed weights, FLOPs summed)."""
    def flops(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    header = f"{'layer':<32} {'shape':<18} {'density':>8} {'non-zeros':>11} {'dense FLOPs':>14} {'sparse FLOPs':>14}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.name:<32} {'x'.join(map(str, r.shape)):<18} {r.density:>8.4f} {r.nonzeros:>11,} "
                     f"{flops(r.dense_flops):>14} {flops(r.sparse_flops):>14}")
    weights, nonzeros = sum(_numel(r.shape) for r in rows), sum(r.nonzeros for r in rows)
    known = all(r.dense_flops is not None for r in rows)
    dense = sum(r.dense_flops for r in rows) if known else None
    sparse = sum(r.sparse_flops for r in rows) if known else None
    lines.append("-" * len(header))
    lines.append(f"{'total':<32} {'':<18} {nonzeros / max(1, weights):>8.4f} {nonzeros:>11,} {flops(dense):>14} "
                 f"{flops(sparse):>14}")
    return "\n".join(lines)


def export_model(model: nn.Module, masks: Mapping[str, Tensor], out: Path | str, sample: Any = None) -> list[LayerRow]:
    """Write `model`'s weights to `out` without the zeros outside `masks` (inactive weights must be zero, as
    `DST` keeps them), and return the per-layer table (FLOPs need `sample`, one input with its batch dimension)."""
    save_weights(out, model.state_dict(), masks)
    return layer_table(model, masks, sample)


def _run_model(run_dir: Path) -> tuple[nn.Module, Any]:
    """The run's model, built as its trainer built it, and one zero input of its data set's shape."""
    import dstbench.data
    from dstbench.config import RunConfig
    from dstbench.train.setup import build_for

    config = RunConfig.model_validate(store.RunDir(run_dir).config())
    info = dstbench.data.info(config.dataset)

    class Shape:  # what build_for reads of a data set: its input shape and outputs, without loading it
        input_shape = info.input_shape
        num_outputs = 1 if info.task == "binary" else info.num_classes

    model = build_for(config, Shape())
    if info.task == "multiple_choice":  # token ids: (choices, tokens)
        length = config.max_length or info.input_shape[-1]
        sample = torch.zeros((1, info.input_shape[0], length), dtype=torch.long)
    else:
        sample = torch.zeros((1, *info.input_shape))
    return model, sample


def export_run(run_dir: Path | str, out: Path | str) -> list[LayerRow]:
    """Write a finished run's final weights to `out` (its final masks folded in; a dense run stays dense) and
    return the per-layer table."""
    run = store.RunDir(run_dir)
    if run.status() != store.status_of({"status": "done"}):
        raise UserError(f"{run.path} is not a finished run (status: {run.status()}); export a run whose "
                        "summary says done")
    state = read_final_weights(run.path)
    masks = ({n: torch.from_numpy(m) for n, m in run.masks("final").items()} if "final" in run.mask_tags() else {})
    model, sample = _run_model(run.path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"{run.path}: its weights do not fit the model its config builds ({exc})") from None
    return export_model(model, masks, out, sample)
