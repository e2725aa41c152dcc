import os
import pickle

import numpy as np
import pytest

from dstbench.data.cifar_pickle import read_batch, read_meta, safe_unpickle
from dstbench.data.errors import DataFormatError

from .formats import cifar_batch_bytes, cifar_images


@pytest.mark.parametrize("protocol", [2, 4])
def test_reads_a_batch_pickled_like_cifar(protocol):
    images = cifar_images(3, 7)
    x, y = read_batch(cifar_batch_bytes(images, [1, 2, 9], protocol=protocol), "batch")
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == [1, 2, 9] and y.dtype == np.int64


def test_accepts_the_numpy1_module_name_of_old_pickles():
    data = cifar_batch_bytes(cifar_images(2), [0, 1])
    old = data.replace(b"numpy._core.multiarray\n_reconstruct", b"numpy.core.multiarray\n_reconstruct")
    assert old != data
    x, _ = read_batch(old, "batch")
    np.testing.assert_array_equal(x, cifar_images(2))


def test_meta_gives_class_names():
    data = pickle.dumps({b"label_names": [b"cat", b"dog"]}, protocol=2)
    assert read_meta(data, "meta", "label_names") == ["cat", "dog"]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_refuses_a_pickle_that_calls_os_system(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({b"data": _Exploit(marker), b"labels": []}, protocol=2)
    with pytest.raises(DataFormatError, match=r"data_batch_1: .*forbidden global (posix|os|nt)\.system"):
        read_batch(data, "cifar-10-batches-py/data_batch_1")
    assert not marker.exists()


def test_refuses_object_arrays():
    data = pickle.dumps({b"data": np.array([1, "x"], dtype=object), b"labels": []}, protocol=2)
    with pytest.raises(DataFormatError, match="object arrays are not allowed"):
        safe_unpickle(data, "batch")


def test_a_pickle_that_is_not_a_batch_is_named():
    with pytest.raises(DataFormatError, match=r"test_batch: not a CIFAR batch: expected keys 'data' and 'lab"):
        read_batch(pickle.dumps({b"images": []}, protocol=2), "test_batch")
    with pytest.raises(DataFormatError, match=r"test_batch: not a CIFAR batch: expected a pickled dict, found li"):
        read_batch(pickle.dumps([1, 2], protocol=2), "test_batch")


def test_wrong_shapes_are_named():
    data = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2)
    with pytest.raises(DataFormatError, match=r"'data' must be an N x 3072 uint8 array"):
        read_batch(data, "b")
    data = cifar_batch_bytes(cifar_images(2), [0])
    with pytest.raises(DataFormatError, match=r"'labels' must hold 2 integer labels"):
        read_batch(data, "b")


def test_garbage_bytes_name_the_file():
    with pytest.raises(DataFormatError, match=r"data_batch_3: not a readable CIFAR pickle"):
        read_batch(b"\x80\x02}q\x00(X", "data_batch_3")
