"""The IDX format of MNIST and FashionMNIST, plain or gzip-compressed.

An IDX file is two zero bytes, a type code, the number of dimensions, one big-endian int32 per dimension, then
the values in C order. We check all of it: a wrong magic, a truncated body or trailing bytes is an error that
names the file, never a silently misshaped array.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from dstbench.data.errors import DataFormatError

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_maybe_gzip(path: Path) -> bytes:
    """The content of `path`, decompressed if it is gzip (decided by its first bytes, not its name)."""
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataFormatError(
            f"{path}: corrupt or truncated gzip file ({exc}); delete it and download again") from exc


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """The array stored in IDX bytes; `source` names the file in errors."""
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _TYPES:
        raise DataFormatError(
            f"{source}: not an IDX file (magic {data[:4].hex() or 'empty'}; expected 0000 then a type code "
            f"{', '.join(f'{code:02x}' for code in _TYPES)} and the number of dimensions)"
        )
    dtype, ndim = _TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataFormatError(f"{source}: IDX header truncated or without dimensions ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataFormatError(
            f"{source}: IDX size mismatch: header says shape {shape} ({expected} bytes), file has "
            f"{len(data)} bytes (truncated or corrupt; delete it and download again)"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def read_idx(path: Path) -> np.ndarray:
    """The array in an IDX file, `.gz` or not."""
    return parse_idx(read_maybe_gzip(path), str(path))
