"""Checkpoints: written atomically, read with `weights_only=True` (no arbitrary unpickling)."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dstbench import store
from dstbench.errors import UserError
from dstbench.models.efficientnet import EfficientNet
from dstbench.vocab import FINAL_MODEL
from dstbench.weights import final_weights_path, read_weights, unreadable_cause

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    store.atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, *, advice: str | None = None) -> dict[str, Any]:
    """The checkpoint at `path`, loaded safely; a file that cannot be read raises a UserError that says why in
    words ("truncated", "not a checkpoint") and gives `advice` (default: for a run's own resume checkpoint)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which and what to do
        advice = advice or "delete it to train this run again from the start"
        raise UserError(f"cannot read checkpoint {path}: {unreadable_cause(Path(path), exc)}; {advice}") from exc


def _shown(names: list[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_pretrained(model: nn.Module, path: str | Path, data_root: str | Path | None = None, *,
                    partial: bool = False) -> list[str]:
    """Load weights from a local file (a run's final weights, our checkpoint, a plain state dict) or a finished
    run's folder, safely.

    The file must fit the model: every tensor of the model, no other, each of the model's shape. With `partial`
    (``init_partial``: a new classifier for another number of classes, as in the paper's fine-tuning study,
    appendix H) the tensors that do not fit are skipped and keep their fresh initialisation, and a warning lists
    them. A torchvision EfficientNet state dict (the published ImageNet weights) is renamed for dstbench's
    EfficientNet first. A relative path that does not exist is looked for under `data_root` too. Returns the
    skipped keys (the model's tensors that were not loaded).
    """
    path = Path(path)
    if not path.exists() and not path.is_absolute() and data_root is not None and (Path(data_root) / path).exists():
        path = Path(data_root) / path
    if not path.exists():
        where = f" (nor under the data root {data_root})" if data_root is not None else ""
        raise FileNotFoundError(f"--init-from {path}: no such file{where}")
    if path.is_dir():  # a finished run's folder: its final weights
        final = final_weights_path(path)
        if not final.is_file():
            raise UserError(f"--init-from {path} is a folder without {FINAL_MODEL}; give a finished run's folder, "
                            f"its {FINAL_MODEL}, or a file of a state dict")
        path = final
    state = read_weights(path, advice=f"--init-from needs a finished run's {FINAL_MODEL} or a state dict saved "
                                      "with torch.save; check the path")
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    elif "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if isinstance(model, EfficientNet) and EfficientNet.is_torchvision_state(state):
        state = model.from_torchvision_state(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {_shape(state[k])} vs {tuple(own[k].shape)}" for k in own
                  if k in state and _shape(state[k]) != tuple(own[k].shape)]
    usable = {k: v for k, v in state.items() if k in own and _shape(v) == tuple(own[k].shape)}
    problems = "; ".join(f"{what} {len(names)}: {_shown(names)}" for what, names in (
        ("missing", missing), ("unexpected", unexpected), ("of another shape (file vs model)", mismatched)) if names)
    if not usable:
        raise UserError(f"--init-from {path}: none of its tensors fit this model ({problems}); give the weights "
                        "of the same model")
    skipped = sorted(k for k in own if k not in usable)
    if problems and not partial:
        raise UserError(f"--init-from {path} does not fit this model: {len(usable)} of the model's {len(own)} tensors fit; "
                        f"{problems}. Give the weights of the same model, or set init_partial = true "
                        "(--init-partial) to load only the tensors that fit and keep the others fresh")
    if skipped or unexpected:
        log.warning("--init-from %s: loaded %d of the model's %d tensors; kept fresh: %s%s", path, len(usable),
                    len(own), _shown(skipped) or "none",
                    f"; not used from the file: {_shown(unexpected)}" if unexpected else "")
    model.load_state_dict(usable, strict=False)
    return skipped


def _shape(value: Any) -> tuple[int, ...] | str:
    return tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
