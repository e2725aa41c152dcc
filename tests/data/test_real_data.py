"""The real data sets where this machine has them (slow: they parse tens of megabytes)."""

import warnings
from pathlib import Path

import pytest
import torch

import dstbench.data as data
from dstbench.data.errors import ChecksumMismatchWarning

FASHION = Path("/usr/share/datasets/fashion-mnist")
CIFAR10_COPY = Path("/work/shared/data/cifar10-jpeg-q75")

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_real_fashionmnist_counts_balance_and_official_content():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChecksumMismatchWarning)  # Debian's .gz differ, their content must not
        splits = data.load("fashionmnist", root=FASHION)
    assert splits.sizes() == {"train": 54_000, "val": 6_000, "test": 10_000}
    labels = torch.cat([splits.train.y, splits.val.y])
    assert torch.bincount(labels).tolist() == [6_000] * 10
    assert torch.bincount(splits.test.y).tolist() == [1_000] * 10
    x, _ = next(iter(splits.batches("train", 512, seed=0)))
    assert x.shape == (512, 1, 28, 28) and x.min() >= -1 - 1e-6 and x.max() <= 1 + 1e-6


@pytest.mark.skipif(not (CIFAR10_COPY / "cifar-10-python.tar.gz").is_file(), reason="no local CIFAR-10 copy")
def test_real_cifar10_copy_counts_and_balance():
    with pytest.warns(ChecksumMismatchWarning, match="c58f30108f718f92721af3b95e74349a"):  # the lossy copy
        splits = data.load("cifar10", root=CIFAR10_COPY)
    assert splits.sizes() == {"train": 45_000, "val": 5_000, "test": 10_000}
    labels = torch.cat([splits.train.y, splits.val.y])
    assert torch.bincount(labels).tolist() == [5_000] * 10
    assert torch.bincount(splits.test.y).tolist() == [1_000] * 10
    assert splits.mean == pytest.approx((0.491, 0.482, 0.447), abs=0.01)
    x, _ = next(iter(splits.batches("train", 256, seed=0)))
    assert x.shape == (256, 3, 32, 32) and abs(x.mean().item()) < 0.3
