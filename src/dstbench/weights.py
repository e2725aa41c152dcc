"""Model weights on disk without their inactive zeros, read back as the exact dense state dict.

One format for a run's final weights (``model.npz``) and for `dstbench export`: a NumPy ``.npz`` archive (read with
``allow_pickle=False``, so nothing is unpickled; readable without dstbench) holding, for each state-dict entry NAME:

- ``dtype|NAME``: the torch dtype's name (a dtype NumPy lacks, bfloat16, is stored as the integer of its width);
- a dense entry: ``dense|NAME``, the array as it is;
- a sparse entry: ``mask|NAME`` its mask bit-packed as in ``masks/*.npz`` (`store.pack_masks`, with
  ``mask|NAME|shape``) and ``values|NAME``, the entries under the mask in flat (C) order.

plus ``format``. A weight is stored sparse when the caller gives its mask and the mask is not full; every entry
outside the mask must be zero (that is what "without its inactive zeros" means: nothing is dropped but zeros). Read
back, every value is equal and every active entry bit-identical; an inactive zero comes back as +0.0 whatever its
sign was (masking a negative weight by multiplying leaves -0.0, which equals 0.0 in every computation).

`read_weights` is the one reader of final weights: it also reads the dense torch files earlier runs wrote
(``model.pt``) and plain state dicts, always with ``weights_only=True``.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dstbench import store
from dstbench.errors import UserError
from dstbench.vocab import FINAL_MODEL, LEGACY_FINAL_MODEL

FORMAT = "dstbench-weights/1"
_SEP = "|"
# Torch dtypes NumPy has no type for, stored bit for bit as the integer of the same width.
_RAW = {torch.bfloat16: torch.int16}


def _array(tensor: Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype in _RAW:
        tensor = tensor.view(_RAW[tensor.dtype])
    return tensor.numpy()


def _tensor(array: np.ndarray, dtype_name: str) -> Tensor:
    dtype = getattr(torch, dtype_name.removeprefix("torch."))
    tensor = torch.from_numpy(np.array(array))  # a copy: the archive's buffer is read-only
    return tensor.view(dtype) if dtype in _RAW else tensor


def encode(state: Mapping[str, Tensor], masks: Mapping[str, Tensor | np.ndarray] | None = None) -> bytes:
    """The archive's bytes for `state`, the weights named in `masks` stored as their active entries only.

    Raises ValueError if a mask's shape differs from its weight's or a weight is non-zero outside its mask.
    """
    masks = dict(masks or {})
    unknown = sorted(set(masks) - set(state))
    if unknown:
        raise ValueError(f"masks for {', '.join(unknown)}, which the state dict does not hold")
    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT)}
    for name, tensor in state.items():
        arrays[f"dtype{_SEP}{name}"] = np.array(str(tensor.dtype))
        value = _array(tensor)
        mask = masks.get(name)
        if mask is not None:
            mask = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
            mask = mask.astype(bool, copy=False)
            if mask.shape != value.shape:
                raise ValueError(f"the mask of {name} has shape {mask.shape}, the weight {value.shape}")
            if mask.all():
                mask = None
        if mask is None:
            arrays[f"dense{_SEP}{name}"] = value
            continue
        if np.any(_array(tensor.float() if tensor.dtype in _RAW else tensor)[~mask] != 0):  # -0.0 counts as zero
            raise ValueError(f"{name} has non-zero weights outside its mask; apply the mask first")
        arrays[f"values{_SEP}{name}"] = value[mask]
        arrays.update(store.pack_masks({f"mask{_SEP}{name}": mask}))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save_weights(path: Path | str, state: Mapping[str, Tensor],
                 masks: Mapping[str, Tensor | np.ndarray] | None = None) -> None:
    """Write `state` to `path` (atomically) in this module's format; see `encode`."""
    store.atomic_write_bytes(Path(path), encode(state, masks))


def is_sparse_file(path: Path | str) -> bool:
    """Whether `path` is an archive of this format (not a torch file, which is a zip archive too)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "format.npy" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def read_weights(path: Path | str, *, advice: str | None = None) -> dict[str, Tensor]:
    """The exact dense state dict stored in `path`: this module's format, or a torch file (``weights_only``).
    A file that cannot be read raises a UserError saying why in words, then `advice` (what to do, for the file's
    role), if given."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if is_sparse_file(path):
            return _decode(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file (torch raises several kinds): say which
        tail = f"; {advice}" if advice else ""
        raise UserError(f"cannot read weights {path}: {unreadable_cause(path, exc)}{tail}") from None


def unreadable_cause(path: Path, exc: BaseException) -> str:
    """Why `path` could not be loaded, from the file's first bytes rather than the loader's internal message."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        size = path.stat().st_size
    except IsADirectoryError:
        return "it is a folder, not a file"
    except OSError as error:
        return error.strerror or str(error)
    if size == 0:
        return "the file is empty"
    if head == b"PK\x03\x04":  # the zip container torch.save and numpy's .npz write
        if not zipfile.is_zipfile(path):
            return f"the file is truncated ({size} bytes: its end is missing; a copy or a write cut short)"
        return f"the file is damaged ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if isinstance(exc, pickle.UnpicklingError) and head[:1] == b"\x80":
        return "it holds Python objects other than tensors, which are not loaded (weights_only, for safety)"
    return "not a checkpoint (not a file torch.save wrote)"


def _decode(path: Path) -> dict[str, Tensor]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    if str(arrays.pop("format")) != FORMAT:
        raise ValueError(f"unknown format {arrays.get('format')!r}, expected {FORMAT}")
    masks = store.unpack_masks({k: v for k, v in arrays.items() if k.startswith("mask" + _SEP)})
    state = {}
    for key, dtype_name in arrays.items():
        kind, _, name = key.partition(_SEP)
        if kind != "dtype":
            continue
        if f"dense{_SEP}{name}" in arrays:
            state[name] = _tensor(arrays[f"dense{_SEP}{name}"], str(dtype_name))
            continue
        mask = masks[f"mask{_SEP}{name}"]
        values = arrays[f"values{_SEP}{name}"]
        dense = np.zeros(mask.shape, dtype=values.dtype)
        dense[mask] = values
        state[name] = _tensor(dense, str(dtype_name))
    return state


def final_weights_path(run_dir: Path | str) -> Path:
    """Where a run folder keeps its final weights: ``model.npz``, or ``model.pt`` in folders of earlier versions."""
    run = Path(run_dir)
    legacy = run / LEGACY_FINAL_MODEL
    return legacy if legacy.exists() and not (run / FINAL_MODEL).exists() else run / FINAL_MODEL


def read_final_weights(run_dir: Path | str) -> dict[str, Tensor]:
    """The exact dense state dict of a finished run's final weights (either file name)."""
    path = final_weights_path(run_dir)
    if not path.exists():
        raise UserError(f"{run_dir} has no final weights ({FINAL_MODEL}): is the run finished? "
                        "(`dstbench status` tells)")
    return read_weights(path)
