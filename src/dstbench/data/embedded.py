"""Small data sets bundled with scikit-learn, for quick studies and tests that need no download.

`digits`: 1,797 8x8 grey images of digits (values 0..16), 10 classes, kept as uint8 and scaled by 16.
`breast_cancer`: 569 rows, 30 features, binary; a stand-in for Higgs. Unlike Higgs its features are not
pre-scaled (they span 0.05 to 4,000), so they are standardised with the training split's mean and std.
`synthetic_tabular`: a synthetic table with Higgs' shape (24 features, 2 classes) made by scikit-learn's
`make_classification` with a fixed seed: 20,000 rows, 16 informative and redundant features, 8 Gaussian clusters
per class, 10% of the labels flipped. It is harder than breast_cancer (a dense small MLP reaches about 82% in
three epochs where breast_cancer gives 99% at every density) and sparser networks do measurably worse (about
72% at density 0.05), so the criteria have room to differ. Unscaled, as Higgs in the paper's code. Synthetic: it says nothing about Higgs.
All use a stratified 70/15/15 split with random_state 42, fixed across training seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, make_classification

from dstbench.data.locate import channel_stats
from dstbench.data.splits import ArraySplit, DataSplits, stratified_three_way

SPLIT_SEED = 42
VAL_FRACTION = TEST_FRACTION = 0.15
SYNTHETIC_ROWS = 20_000


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


def synthetic_table(generator_seed: int = 0, rows: int = SYNTHETIC_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """The `synthetic_tabular` rows: (rows, 24) float32 features and int64 labels 0/1, a function of the seed."""
    x, y = make_classification(
        n_samples=rows, n_features=24, n_informative=12, n_redundant=4, n_classes=2, n_clusters_per_class=8,
        flip_y=0.1, class_sep=1.0, random_state=generator_seed,
    )
    return x.astype(np.float32), y.astype(np.int64)


def load_synthetic_tabular(root: Path | None = None, *, generator_seed: int = 0) -> DataSplits:
    """A synthetic Higgs-shaped table (see the module), generated in memory (`root` is unused: no files)."""
    x, y = synthetic_table(generator_seed)
    train, val, test = _three_splits(x, y)
    return DataSplits(
        name="synthetic_tabular", task="binary", num_classes=2, input_shape=(x.shape[1],),
        train=train, val=val, test=test, classes=("0", "1"),
        notes=f"synthetic: scikit-learn make_classification (24 features, 8 clusters per class, 10% labels "
              f"flipped, random_state {generator_seed}), {len(y):,} rows; stratified 70/15/15, random_state 42; "
              f"unscaled",
    )
