"""What `dstbench.data.load` returns: the three splits of a data set and everything a trainer needs to use them.

`DataSplits.batches(...)` is the one way to iterate: in-memory splits give `Batches`, streamed image folders give
`StreamingBatches`; both have the same interface. Splits hold raw values (uint8 images, unscaled features);
normalisation with `mean`/`std` happens per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from dstbench.data.augment import Augmentation
from dstbench.data.batches import Batches
from dstbench.data.streaming import ImageFolderSplit, StreamingBatches
from dstbench.errors import UserError

SPLIT_NAMES = ("train", "val", "test")
# "paper": the normalisation and augmentation of the paper's code for that data set (the default);
# "exact": each set normalised with its own training statistics, crops padded with zeros.
PREPROCESSINGS = ("paper", "exact")


def check_preprocessing(value: str) -> None:
    if value not in PREPROCESSINGS:
        raise ValueError(f"preprocessing {value!r}; valid: {', '.join(PREPROCESSINGS)}")


@dataclass(frozen=True)
class ArraySplit:
    """One in-memory split: `x` (N, ...) uint8 images or float32 features, `y` (N,) int64 labels."""

    x: torch.Tensor
    y: torch.Tensor
    _copies: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.y)

    def on(self, device: torch.device | str | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) on `device`, copied there once: the training, update and evaluation streams share it."""
        if device is None:
            return self.x, self.y
        key = torch.device(device)
        if key.type == "cuda" and key.index is None:
            key = torch.device("cuda", torch.cuda.current_device())
        if key == self.x.device:
            return self.x, self.y
        if key not in self._copies:
            self._copies[key] = (self.x.to(key), self.y.to(key))
        return self._copies[key]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]

    def subset(self, indices: Sequence[int]) -> ArraySplit:
        """The samples at `indices`, in that order."""
        rows = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return ArraySplit(self.x[rows], self.y[rows])

    @staticmethod
    def from_numpy(x: np.ndarray, y: np.ndarray) -> ArraySplit:
        """Tensors sharing memory with the arrays (copied first if they are read-only)."""
        return ArraySplit(torch.from_numpy(np.require(x, requirements="CW")),
                          torch.from_numpy(np.require(y, dtype=np.int64, requirements="CW")))


Split = ArraySplit | ImageFolderSplit


@dataclass(frozen=True)
class DataSplits:
    """A loaded data set.

    `task` is "binary" (train one logit with binary cross-entropy; `num_outputs` is 1), "multiclass", or
    "multiple_choice" (one score per choice, trained as multiclass over the choices; inputs are token ids).
    `mean`/`std` (per channel or feature; None = no normalisation) and `pixel_scale` (255 for 8-bit images) are
    applied to every batch; `augmentation` to training batches only.
    """

    name: str
    task: Literal["binary", "multiclass", "multiple_choice"]
    num_classes: int
    input_shape: tuple[int, ...]
    train: Split
    val: Split
    test: Split
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pixel_scale: float = 1.0
    augmentation: Augmentation | None = None
    classes: tuple[str, ...] = ()
    notes: str = ""
    streaming: dict[str, int] = field(default_factory=dict)

    @property
    def num_outputs(self) -> int:
        """Logits the model should produce: 1 for a binary task, else one per class."""
        return 1 if self.task == "binary" else self.num_classes

    def split(self, name: str) -> Split:
        """`train`, `val` or `test`."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Samples per split."""
        return {name: len(self.split(name)) for name in SPLIT_NAMES}

    def batches(
        self, split: str = "train", batch_size: int = 128, *, seed: int = 0,
        device: torch.device | str | None = None, shuffle: bool | None = None, augment: bool | None = None,
        drop_last: bool = False, channels_last: bool = False, num_workers: int = 8,
    ) -> Batches | StreamingBatches:
        """Mini-batches of a split. The training split is shuffled and augmented by default, the others not.

        `num_workers` only matters for streamed data sets (ImageNet).
        """
        data = self.split(split)
        training = split == "train"
        shuffle = training if shuffle is None else shuffle
        augment = training if augment is None else augment
        if isinstance(data, ImageFolderSplit):
            return StreamingBatches(
                data, batch_size, train=augment, shuffle=shuffle, seed=seed,
                mean=self.mean or (0.0,), std=self.std or (1.0,),
                drop_last=drop_last, device=device, channels_last=channels_last, num_workers=num_workers,
                **self.streaming,
            )
        x, y = data.on(device)
        return Batches(
            x, y, batch_size, shuffle=shuffle, augmentation=self.augmentation if augment else None,
            seed=seed, mean=self.mean, std=self.std, pixel_scale=self.pixel_scale, drop_last=drop_last,
            device=device, channels_last=channels_last,
        )

    def eval_batches(
        self, split: str = "val", batch_size: int = 1024, *, device: torch.device | str | None = None,
        channels_last: bool = False, num_workers: int = 8,
    ) -> Batches | StreamingBatches:
        """An evaluation pass: in order, no augmentation, large batches."""
        return self.batches(split, batch_size, device=device, shuffle=False, augment=False,
                            channels_last=channels_last, num_workers=num_workers)


def stratified_holdout(labels: np.ndarray, fraction: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the kept samples and of a held-out `fraction`, stratified by label."""
    kept, held = train_test_split(np.arange(len(labels)), test_size=fraction, stratify=labels,
                                  random_state=random_state)
    return np.sort(kept), np.sort(held)


def stratified_three_way(
    labels: np.ndarray, val_fraction: float, test_fraction: float, random_state: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted train/val/test indices, each stratified by label (scikit-learn's splitter, fixed random state)."""
    train, rest = stratified_holdout(labels, val_fraction + test_fraction, random_state)
    val_in_rest, test_in_rest = stratified_holdout(labels[rest], test_fraction / (val_fraction + test_fraction),
                                                   random_state)
    return train, rest[val_in_rest], rest[test_in_rest]


def check_subset(n: int, size: int) -> None:
    """A `train_subset` of `size` out of a training split of `n` is possible (a UserError otherwise)."""
    if not 0 < size <= n:
        raise UserError(f"train_subset must be between 1 and the training split's size {n}, got {size}")


def random_subset(n: int, size: int, seed: int) -> np.ndarray:
    """`size` distinct indices out of `n`, uniformly at random with `seed`, in increasing order."""
    check_subset(n, size)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
