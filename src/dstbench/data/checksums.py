"""Digests of files and bytes, and the check that tells a user when a local copy is not the official file.

Loading never refuses a copy whose checksum differs (a user may hold a re-encoded or re-compressed copy on
purpose); it warns, naming both sums. Downloads are strict: see `dstbench.data.download`.
"""

from __future__ import annotations

import hashlib
import warnings
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


def warn_if_unofficial(what: str, algorithm: str, actual: str, expected: str | tuple[str, ...]) -> bool:
    """Warn when `actual` is none of the official sums; return whether it matched.

    `what` names the file for the message; `expected` may list several accepted sums (e.g. the published md5 of a
    .gz and the one of its decompressed content).
    """
    accepted = (expected,) if isinstance(expected, str) else expected
    if actual in accepted:
        return True
    warnings.warn(
        f"{what}: {algorithm} {actual} does not match the official {algorithm} {' or '.join(accepted)}; "
        "loading it anyway as a local copy (results may differ from published numbers). "
        "Download the official files with `dstbench data download NAME --root DIR` if this is unexpected.",
        ChecksumMismatchWarning,
        stacklevel=3,
    )
    return False
