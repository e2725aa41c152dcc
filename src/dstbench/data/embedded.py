"""Small data sets bundled with scikit-learn, for quick studies and tests that need no download.

`digits`: 1,797 8x8 grey images of digits (values 0..16), 10 classes, kept as uint8 and scaled by 16.
`breast_cancer`: 569 rows, 30 features, binary; a stand-in for Higgs. Unlike Higgs its features are not
pre-scaled (they span 0.05 to 4,000), so they are standardised with the training split's mean and std.
Both use a stratified 70/15/15 split with random_state 42, fixed across training seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits

from dstbench.data.locate import channel_stats
from dstbench.data.splits import ArraySplit, DataSplits, stratified_three_way

SPLIT_SEED = 42
VAL_FRACTION = TEST_FRACTION = 0.15


def _three_splits(x: np.ndarray, y: np.ndarray) -> tuple[ArraySplit, ArraySplit, ArraySplit]:
    train, val, test = stratified_three_way(y, VAL_FRACTION, TEST_FRACTION, SPLIT_SEED)
    make = ArraySplit.from_numpy
    return make(x[train], y[train]), make(x[val], y[val]), make(x[test], y[test])


def load_digits_images(root: Path | None = None) -> DataSplits:
    """scikit-learn's digits as (1, 8, 8) uint8 images with values 0..16 (`root` is unused: no files)."""
    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    train, val, test = _three_splits(x, y)
    mean, std = channel_stats(train.x.numpy(), 16.0)
    return DataSplits(
        name="digits", task="multiclass", num_classes=10, input_shape=(1, 8, 8), train=train, val=val, test=test,
        mean=mean, std=std, pixel_scale=16.0, classes=tuple(str(d) for d in range(10)),
        notes="scikit-learn load_digits; stratified 70/15/15, random_state 42; pixels / 16, then the training "
              "split's mean/std",
    )


def load_breast_cancer_table(root: Path | None = None) -> DataSplits:
    """scikit-learn's breast cancer table, standardised per feature with training statistics (`root` is
    unused: no files)."""
    bunch = load_breast_cancer()
    x = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    train, val, test = _three_splits(x, y)
    features = train.x.numpy().astype(np.float64)
    return DataSplits(
        name="breast_cancer", task="binary", num_classes=2, input_shape=(x.shape[1],),
        train=train, val=val, test=test,
        mean=tuple(features.mean(axis=0).tolist()), std=tuple(features.std(axis=0).tolist()),
        classes=tuple(str(c) for c in bunch.target_names),
        notes="scikit-learn load_breast_cancer (a stand-in for Higgs); stratified 70/15/15, random_state 42; "
              "features standardised with the training split's mean/std",
    )
