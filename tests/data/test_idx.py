import gzip
import struct

import numpy as np
import pytest

from dstbench.data.errors import DataFormatError
from dstbench.data.idx import parse_idx, read_idx

from .formats import idx_bytes


def test_parses_header_and_values():
    data = bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 2, 3) + bytes([1, 2, 3, 4, 5, 6])
    array = parse_idx(data, "x")
    assert array.dtype == np.uint8 and array.shape == (2, 3)
    assert array.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert array.flags.writeable


def test_big_endian_int32_values_come_back_native():
    data = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", -1, 70000)
    array = parse_idx(data, "x")
    assert array.tolist() == [-1, 70000] and array.dtype.isnative


@pytest.mark.parametrize("compressed", [True, False])
def test_reads_gzip_and_raw_files_alike(tmp_path, compressed):
    images = np.arange(2 * 28 * 28, dtype=np.int64).astype(np.uint8).reshape(2, 28, 28)
    path = tmp_path / "images"
    data = idx_bytes(images)
    path.write_bytes(gzip.compress(data) if compressed else data)
    np.testing.assert_array_equal(read_idx(path), images)


def test_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(b"\x08\x03\x00\x00" + bytes(8))
    with pytest.raises(DataFormatError, match=r"labels: not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("trim, extra", [(1, b""), (0, b"\x00")])
def test_size_mismatch_names_the_file_and_shapes(tmp_path, trim, extra):
    data = idx_bytes(np.zeros((3, 4), dtype=np.uint8))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(data[: len(data) - trim] + extra)
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte: IDX size mismatch.*\(3, 4\)"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path):
    packed = gzip.compress(idx_bytes(np.zeros((50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataFormatError, match=r"t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        read_idx(path)
