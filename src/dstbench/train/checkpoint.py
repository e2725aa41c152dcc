"""Checkpoints: written atomically, read with `weights_only=True` (no arbitrary unpickling)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dstbench import store
from dstbench.errors import UserError
from dstbench.models.efficientnet import EfficientNet
from dstbench.weights import final_weights_path, read_weights


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    store.atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which and what to do
        raise UserError(
            f"cannot read checkpoint {path}: {exc}. Delete it to restart this run from scratch"
        ) from exc


def load_pretrained(model: nn.Module, path: str | Path, data_root: str | Path | None = None) -> list[str]:
    """Load weights from a local file (a run's final weights, our checkpoint, a plain state dict), safely.

    Tensors whose shapes differ from the model's (a classifier for another number of classes) are skipped and
    keep their fresh initialisation, as in the paper's fine-tuning study (appendix H). A torchvision
    EfficientNet state dict (the published ImageNet weights) is renamed for dstbench's EfficientNet first.
    A relative path that does not exist is looked for under `data_root` too; a run folder means its final
    weights. Returns the skipped keys.
    """
    path = Path(path)
    if not path.exists() and not path.is_absolute() and data_root is not None and (Path(data_root) / path).exists():
        path = Path(data_root) / path
    if not path.exists():
        where = f" (nor under the data root {data_root})" if data_root is not None else ""
        raise FileNotFoundError(f"--init-from {path}: no such file{where}")
    if path.is_dir():
        path = final_weights_path(path)
    state = read_weights(path)
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    elif "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if isinstance(model, EfficientNet) and EfficientNet.is_torchvision_state(state):
        state = model.from_torchvision_state(state)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not usable:
        raise UserError(f"--init-from {path}: none of its tensors fit this model (names or shapes differ)")
    skipped = sorted(k for k in own if k not in usable)
    model.load_state_dict(usable, strict=False)
    return skipped
