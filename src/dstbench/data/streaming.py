"""Image folders too large for memory (ImageNet), streamed through a torch DataLoader with worker processes.

The interface is that of `Batches`: iterate once per epoch, `len()`, `state_dict()` / `load_state_dict()`.
The sampler runs in the main process and hands each worker (index, epoch) pairs; every image's random crop and
flip come from a numpy generator seeded with (seed, epoch, index). So batches do not depend on the number of
workers, and resuming mid-epoch skips the consumed batches without decoding them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dstbench.data.batches import Normalize, derive_seed
from dstbench.data.images import eval_transform, open_rgb, train_transform


@dataclass(frozen=True)
class ImageFolderSplit:
    """One split of an image-folder data set: file paths, their labels, and the class names (folder names)."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int]) -> ImageFolderSplit:
        """The samples at `indices`, in that order."""
        return ImageFolderSplit(tuple(self.paths[i] for i in indices), tuple(self.labels[i] for i in indices),
                                self.classes)


class _TransformedImages(Dataset):
    def __init__(self, split: ImageFolderSplit, train: bool, size: int, resize: int, seed: int) -> None:
        self.split, self.train, self.size, self.resize, self.seed = split, train, size, resize, seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, epoch = item
        image = open_rgb(self.split.paths[index])
        if self.train:
            rng = np.random.default_rng(derive_seed(self.seed, epoch, index))
            pixels = train_transform(image, self.size, rng)
        else:
            pixels = eval_transform(image, self.size, self.resize)
        return torch.from_numpy(np.ascontiguousarray(pixels)), self.split.labels[index]


class _EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, epoch) for one epoch, from batch `start` on; `epoch` and `start` are set before use."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int) -> None:
        self.n, self.batch_size, self.shuffle, self.drop_last, self.seed = n, batch_size, shuffle, drop_last, seed
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        full = self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)
        return full - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 0))
            order = torch.randperm(self.n, generator=generator).tolist()
        else:
            order = list(range(self.n))
        for b in range(self.start, self.start + len(self)):
            yield [(i, self.epoch) for i in order[b * self.batch_size:(b + 1) * self.batch_size]]


class StreamingBatches:
    """Epochs of normalised (x, y) batches decoded by DataLoader workers and moved to `device`."""

    def __init__(
        self, split: ImageFolderSplit, batch_size: int, *, train: bool, shuffle: bool | None = None,
        seed: int = 0, mean: Sequence[float], std: Sequence[float], image_size: int = 224, resize: int = 256,
        drop_last: bool = False, device: torch.device | str | None = None, channels_last: bool = False,
        num_workers: int = 8,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device or "cpu")
        self.batch_size, self.drop_last, self.channels_last = batch_size, drop_last, channels_last
        self.seed, self.epoch, self.batch = seed, 0, 0
        shuffle = train if shuffle is None else shuffle
        self._sampler = _EpochBatchSampler(len(split), batch_size, shuffle, drop_last, seed)
        self._loader = DataLoader(
            _TransformedImages(split, train, image_size, resize, seed), batch_sampler=self._sampler,
            num_workers=num_workers, pin_memory=self.device.type == "cuda",
            persistent_workers=num_workers > 0,
        )
        self.normalize = Normalize(mean, std, 255.0, 4, self.device)
        self.num_samples = len(split)

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """Where the stream stands: the next batch is batch `batch` of epoch `epoch` for this `seed`."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch,
                "num_samples": self.num_samples, "batch_size": self.batch_size, "drop_last": self.drop_last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where `state_dict()` was taken."""
        for key in ("num_samples", "batch_size", "drop_last", "seed"):
            if state[key] != getattr(self, key):
                raise ValueError(f"cannot resume: saved {key}={state[key]} but this stream has "
                                 f"{getattr(self, key)}")
        if not 0 <= state["batch"] <= len(self):
            raise ValueError(f"cannot resume at batch {state['batch']}: an epoch has {len(self)} batches")
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self._sampler.epoch, self._sampler.start = self.epoch, self.batch
        for pixels, labels in self._loader:
            self.batch += 1
            x = self.normalize(pixels.to(self.device, non_blocking=True))
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, labels.to(self.device, non_blocking=True)
        self.epoch, self.batch = self.epoch + 1, 0
