"""CIFAR's "python version" batches, read with an allow-list unpickler.

The batches are pickled dicts (`data`: N x 3072 uint8, channel-major; `labels` or `fine_labels`). Plain `pickle`
would run whatever callable a tampered file names, so we resolve only the few globals that genuine batches
reference: numpy's array reconstruction (under its numpy 1 and numpy 2 module names), `numpy.dtype` (object
dtypes refused) and `_codecs.encode` (how Python 3 pickles bytes at protocol 2; latin-1 only). Any other global
is refused with an error that names the file and the global. The result is then checked to be a CIFAR batch.
"""

from __future__ import annotations

import codecs
import io
import pickle
from typing import Any

import numpy as np

from dstbench.data.errors import DataFormatError

_RECONSTRUCT_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode is allowed only for latin-1 text, not {encoding!r}")
    return text.encode("latin1")


def _empty_array(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    # numpy pickles an array as "make an empty ndarray, then __setstate__ it"; only plain ndarrays are allowed.
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"array subtype {subtype!r} is not allowed")
    return np.empty(0, dtype=np.uint8)


def _plain_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed (they can hold arbitrary pickled objects)")
    return dtype


_ALLOWED: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    **{(module, "_reconstruct"): _empty_array for module in _RECONSTRUCT_MODULES},
}


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"forbidden global {module}.{name} (a CIFAR batch references only numpy arrays and bytes)"
            ) from None


def safe_unpickle(data: bytes, source: str) -> Any:
    """Unpickle `data` with the allow list; Python 2 strings come back as bytes. `source` names the file."""
    try:
        return _AllowListUnpickler(io.BytesIO(data), encoding="bytes").load()
    except DataFormatError:
        raise
    except Exception as exc:  # a corrupt pickle can fail in many ways; all mean the same to the user
        raise DataFormatError(f"{source}: not a readable CIFAR pickle: {exc}") from exc


def _str_keys(obj: Any, source: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DataFormatError(f"{source}: not a CIFAR batch: expected a pickled dict, found {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def read_batch(data: bytes, source: str, label_key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one pickled batch.

    `label_key` is `labels` for CIFAR-10 and `fine_labels` for CIFAR-100.
    """
    batch = _str_keys(safe_unpickle(data, source), source)
    if "data" not in batch or label_key not in batch:
        raise DataFormatError(
            f"{source}: not a CIFAR batch: expected keys 'data' and {label_key!r}, found {sorted(batch)}"
        )
    images, labels = batch["data"], batch[label_key]
    is_array = isinstance(images, np.ndarray) and images.dtype == np.uint8
    if not is_array or images.ndim != 2 or images.shape[1] != 3072:
        found = f"{type(images).__name__} {getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}"
        raise DataFormatError(f"{source}: 'data' must be an N x 3072 uint8 array, found {found}")
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or labels.dtype.kind not in "iu":
        raise DataFormatError(
            f"{source}: {label_key!r} must hold {images.shape[0]} integer labels, "
            f"found {labels.dtype} {labels.shape}"
        )
    return images.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_meta(data: bytes, source: str, key: str) -> list[str]:
    """The class names stored under `key` in a batches.meta / meta file (`label_names`, `fine_label_names`)."""
    meta = _str_keys(safe_unpickle(data, source), source)
    names = meta.get(key)
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise DataFormatError(f"{source}: not a CIFAR meta file: no list of class names under {key!r}")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
