"""A cache of parsed arrays as `.npy` files, so that slow sources (pickled CIFAR batches, thousands of JPEGs, a
large ARFF) are parsed once.

An entry is a folder `<cache>/<key>/` with one `.npy` per array and `manifest.json` (array names and metadata such
as the source's checksum). The key includes the source's checksum, so a changed source is parsed again. Entries
are written into a temporary folder and renamed into place: a crash leaves no half-written entry, and two
processes filling the same entry at once both end with a complete one. The cache lives next to the data
(`<data folder>/.dstbench-cache`); where that folder is read-only, under `$DSTBENCH_CACHE` or
`~/.cache/dstbench`. Arrays are loaded with `allow_pickle=False`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Bump when the parsed layout changes, so that old entries are not mistaken for new ones.
CACHE_FORMAT = 1

Arrays = dict[str, np.ndarray]
Meta = dict[str, Any]


def user_cache_dir() -> Path:
    """Where entries go when the data's own folder is read-only."""
    return Path(os.environ.get("DSTBENCH_CACHE") or Path.home() / ".cache" / "dstbench")


def _writable(folder: Path) -> bool:
    # A folder without write bits is read-only by intent, even for root (whom os.access never refuses).
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)


def cache_dir_near(data_dir: Path) -> Path:
    """`data_dir/.dstbench-cache` if it can be written there, else the user cache folder."""
    near = data_dir / ".dstbench-cache"
    if near.is_dir() and _writable(near):
        return near
    if not near.exists() and _writable(data_dir):
        return near
    return user_cache_dir()


def read_entry(entry: Path) -> tuple[Arrays, Meta] | None:
    """The arrays and metadata of a complete entry, or None if there is none (or it is unreadable)."""
    manifest = entry / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        info = json.loads(manifest.read_text())
        arrays = {name: np.load(entry / f"{name}.npy", allow_pickle=False) for name in info["arrays"]}
    except (OSError, ValueError, KeyError):
        return None
    return arrays, info.get("meta", {})


def write_entry(entry: Path, arrays: Arrays, meta: Meta) -> None:
    """Write an entry atomically; a concurrent writer that finished first wins, and ours is discarded."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the entry should be as readable as the data
    try:
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (staging / "manifest.json").write_text(json.dumps({"arrays": sorted(arrays), "meta": meta}))
        try:
            os.replace(staging, entry)
        except OSError:
            if not (entry / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cached(
    key: str, data_dir: Path, build: Callable[[], tuple[Arrays, Meta]], *, enabled: bool = True
) -> tuple[Arrays, Meta]:
    """The entry `key` near `data_dir`, built with `build()` and stored if missing.

    A cache that cannot be written (full disk, no permission anywhere) is not an error: the parsed arrays are
    returned all the same.
    """
    if not enabled:
        return build()
    entry = cache_dir_near(data_dir) / f"{key}-v{CACHE_FORMAT}"
    found = read_entry(entry)
    if found is not None:
        return found
    arrays, meta = build()
    try:
        write_entry(entry, arrays, meta)
    except OSError:
        pass
    return arrays, meta
