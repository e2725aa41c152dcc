"""Digests of files and bytes, and the check that tells a user when a local copy is not the official file.

Loading never refuses a copy whose checksum differs (a user may hold a re-encoded or re-compressed copy on
purpose); it warns, naming both sums. Downloads are strict: see `dstbench.data.download`.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

from dstbench.data.errors import ChecksumMismatchWarning

_CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in 1 MiB chunks so that large archives never sit in memory twice."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_digest(data: bytes, algorithm: str = "sha256") -> str:
    """The hex digest of bytes already in memory (e.g. a decompressed IDX file)."""
    return hashlib.new(algorithm, data).hexdigest()


# The local copies this process has already warned about: a data set loaded again (by every run a worker trains)
# warns once per process, not once per load and file.
_WARNED: set[tuple[str, tuple[tuple[str, str], ...]]] = set()


def warn_if_unofficial(dataset: str, algorithm: str,
                       files: Sequence[tuple[str, str, str | tuple[str, ...]]]) -> bool:
    """Warn when a file's sum is none of its official ones; return whether all matched.

    `files` holds (what, actual, expected) per file of `dataset`: `what` names the file for the message and
    `expected` may list several accepted sums (e.g. the published md5 of a .gz and the one of its decompressed
    content). One warning names the first unofficial file and counts the others; the same copy warns once per
    process.
    """
    unofficial = [(what, actual, (expected,) if isinstance(expected, str) else tuple(expected))
                  for what, actual, expected in files
                  if actual not in ((expected,) if isinstance(expected, str) else expected)]
    if not unofficial:
        return True
    key = (dataset, tuple((what, actual) for what, actual, _ in unofficial))
    if key in _WARNED:
        return False
    _WARNED.add(key)
    what, actual, accepted = unofficial[0]
    others = f" (and {len(unofficial) - 1} more of its files)" if len(unofficial) > 1 else ""
    warnings.warn(
        f"{what}: {algorithm} {actual} does not match the official {algorithm} {' or '.join(accepted)}{others}; "
        f"loading this {dataset} anyway as a local copy (results may differ from published numbers). "
        f"Download the official files with `dstbench data download {dataset} --root DIR` if this is unexpected.",
        ChecksumMismatchWarning,
        stacklevel=3,
    )
    return False
