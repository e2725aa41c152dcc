"""Tiny files in the real on-disk formats, written by the tests themselves."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in IDX format: 00 00 08 ndim, big-endian dims, values."""
    assert array.dtype == np.uint8
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_fashion(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> dict[str, np.ndarray]:
    """Four FashionMNIST IDX files; image i of a split is filled with the value i (so rows are identifiable)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": np.repeat(np.arange(n_train, dtype=np.uint8), 784).reshape(n_train, 28, 28),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": np.full((n_test, 28, 28), 200, dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


def cifar_batch_bytes(images: np.ndarray, labels: list[int], label_key: str = "labels",
                      protocol: int = 2) -> bytes:
    """A batch as CIFAR's pickles hold it: bytes keys, N x 3072 uint8 data, a list of int labels."""
    return pickle.dumps({b"batch_label": b"test batch", label_key.encode(): labels,
                         b"data": images.reshape(len(images), -1), b"filenames": [b"x.png"] * len(images)},
                        protocol=protocol)


def cifar_images(n: int, offset: int = 0) -> np.ndarray:
    """n images whose pixels all equal (offset + index) % 256, so each row is identifiable."""
    return np.repeat((np.arange(n) + offset).astype(np.uint8), 3072).reshape(n, 3, 32, 32)


def write_cifar10(root: Path, per_batch: int = 4, as_tar: bool = False) -> Path:
    """A CIFAR-10 folder (cifar-10-batches-py/) or archive: 5 x per_batch training, per_batch test images."""
    files = {}
    for b in range(5):
        files[f"data_batch_{b + 1}"] = cifar_batch_bytes(cifar_images(per_batch, b * per_batch),
                                                         [(b * per_batch + i) % 10 for i in range(per_batch)])
    files["test_batch"] = cifar_batch_bytes(cifar_images(per_batch, 100), [i % 10 for i in range(per_batch)])
    files["batches.meta"] = pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)],
                                          b"num_vis": 3072}, protocol=2)
    return _write_members(root, "cifar-10-batches-py", "cifar-10-python.tar.gz", files, as_tar)


def write_cifar100(root: Path, n_train: int = 20, n_test: int = 5, as_tar: bool = True) -> Path:
    files = {
        "train": cifar_batch_bytes(cifar_images(n_train), [i * 5 % 100 for i in range(n_train)], "fine_labels"),
        "test": cifar_batch_bytes(cifar_images(n_test, 50), [99] * n_test, "fine_labels"),
        "meta": pickle.dumps({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, protocol=2),
    }
    return _write_members(root, "cifar-100-python", "cifar-100-python.tar.gz", files, as_tar)


def _write_members(root: Path, folder: str, archive: str, files: dict[str, bytes], as_tar: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if not as_tar:
        (root / folder).mkdir(exist_ok=True)
        for name, data in files.items():
            (root / folder / name).write_bytes(data)
        return root / folder
    with tarfile.open(root / archive, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return root / archive


def write_jpeg(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, quality=95)


def write_tiny_imagenet(root: Path, classes: int = 3, per_class: int = 10, val_per_class: int = 2) -> Path:
    """tiny-imagenet-200/ with wnids.txt, train/<wnid>/images/*.JPEG and val/ with val_annotations.txt."""
    folder = root / "tiny-imagenet-200"
    wnids = [f"n0000{c}" for c in range(classes)]
    (folder).mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for c, wnid in enumerate(wnids):
        for i in range(per_class):
            write_jpeg(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", (80 * c, 10 * i, 0))
        for i in range(val_per_class):
            name = f"val_{c * val_per_class + i}.JPEG"
            write_jpeg(folder / "val" / "images" / name, (80 * c, 0, 200))
            lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


def write_imagenet(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    """imagenet/{train,val}/<wnid>/*.JPEG with images of assorted sizes."""
    folder = root / "imagenet"
    for split, count in (("train", per_class), ("val", 2)):
        for c in range(classes):
            for i in range(count):
                path = folder / split / f"n1000{c}" / f"img_{i}.JPEG"
                write_jpeg(path, (100 * c, 50, 25 * i), (40 + 8 * i, 30))
    return folder
