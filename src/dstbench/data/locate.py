"""Finding a data set's files under a data root, the error when they are not there, and small shared helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dstbench.data.errors import DataNotFoundError

ROOT_ENV = "DSTBENCH_DATA_ROOT"


def default_root() -> Path:
    """`$DSTBENCH_DATA_ROOT`, else `~/.cache/dstbench/data`."""
    return Path(os.environ.get(ROOT_ENV) or Path.home() / ".cache" / "dstbench" / "data")


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """The data root to use: the given one, or the default."""
    return Path(root).expanduser() if root is not None else default_root()


def not_found(name: str, root: Path, missing: list[str], hint: str = "") -> DataNotFoundError:
    """The error for a root without the data: which files are missing and how to get them."""
    how = hint or f"get them with `dstbench data download {name} --root {root}`"
    return DataNotFoundError(
        f"{name}: data not found under {root}: missing {', '.join(missing)}; {how} "
        f"(or point root= or ${ROOT_ENV} at the folder that holds them)"
    )


def channel_stats(images: np.ndarray, pixel_scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of (N, C, H, W) uint8 images divided by `pixel_scale`.

    Computed from a 256-bin histogram per channel: exact, and without a float copy of the whole data set.
    """
    means, stds = [], []
    levels = np.arange(256, dtype=np.float64) / pixel_scale
    for channel in range(images.shape[1]):
        pixels = torch.from_numpy(np.ascontiguousarray(images[:, channel])).view(-1)
        counts = torch.bincount(pixels, minlength=256).numpy().astype(np.float64)
        total = counts.sum()
        mean = float(counts @ levels / total)
        means.append(mean)
        stds.append(float(np.sqrt(counts @ (levels - mean) ** 2 / total)))
    return tuple(means), tuple(stds)


def last_fraction(n: int, fraction: float) -> int:
    """How many of `n` training samples the trailing validation split takes (6,000 of 60,000 at 0.1)."""
    count = round(n * fraction)
    if not 0 < count < n:
        raise ValueError(f"a validation fraction of {fraction} of {n} samples leaves an empty split")
    return count
