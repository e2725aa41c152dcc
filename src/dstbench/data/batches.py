"""Fast mini-batches from tensors held in memory on the model's device.

Images stay uint8 until a batch is formed; the batch is gathered by index, augmented on tensors (see
`dstbench.data.augment`) and normalised as float32 (`(x / pixel_scale - mean) / std`, as one multiply and one
add). Each epoch's randomness is drawn at once on a CPU `torch.Generator` seeded with (seed, epoch): the
shuffle (a permutation) and every sample's augmentation move (one integer per position in the epoch). The draws
go to the data's device in one asynchronous copy per epoch, so a batch costs no host round trip, and the stream
is the same on every device: a CUDA run sees exactly the batches of a CPU run with the same seed. The whole
stream is a function of (seed, epoch, batch): `state_dict()` is those three numbers, and a run resumed from it
mid-epoch sees bit-identical batches without replaying anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from dstbench.data.augment import Augmentation, BatchAugmenter

_MASK64 = (1 << 64) - 1
_PERMUTATION_STREAM, _AUGMENT_STREAM = 0, 1


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_seed(*values: int) -> int:
    """A 63-bit seed from several integers; nearby inputs give unrelated seeds (unlike seed + epoch)."""
    state = 0
    for value in values:
        state = _splitmix64(state ^ (value & _MASK64))
    return state >> 1


class Normalize:
    """`(x / pixel_scale - mean) / std` per channel (images) or feature (tables), as a multiply and an add."""

    def __init__(
        self, mean: Sequence[float] | None, std: Sequence[float] | None, pixel_scale: float,
        ndim: int, device: torch.device,
    ) -> None:
        mean_t = torch.tensor(mean if mean is not None else [0.0], dtype=torch.float64)
        std_t = torch.tensor(std if std is not None else [1.0], dtype=torch.float64)
        shape = (1, -1) + (1,) * (ndim - 2)
        self.identity = mean is None and std is None and pixel_scale == 1.0
        self.scale = (1.0 / (pixel_scale * std_t)).to(torch.float32).view(shape).to(device)
        self.shift = (-mean_t / std_t).to(torch.float32).view(shape).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity and not x.is_floating_point() and x.dtype != torch.uint8:
            return x.clone()  # token ids (integers wider than uint8's pixels) stay integers
        if self.identity:  # a copy, so that a caller writing into the batch never changes the data set
            return x.to(torch.float32, copy=True)
        # Two in-place passes on a fresh float copy: several times faster on CPU than one broadcasting addcmul.
        # The copy matters for float data: an unshuffled batch is a view of the data set, and `to()` would
        # return that very view, so normalising it in place would rewrite the data set at every pass.
        return x.to(torch.float32, copy=True).mul_(self.scale).add_(self.shift)


class Batches:
    """Epochs of (x, y) mini-batches; iterate once per epoch.

    Iterating yields the rest of the current epoch (all of it unless resumed mid-epoch), then advances to the
    next. `len()` is the number of batches per epoch; the last one is partial unless `drop_last`.
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *,
        shuffle: bool = True, augmentation: Augmentation | None = None, seed: int = 0,
        mean: Sequence[float] | None = None, std: Sequence[float] | None = None, pixel_scale: float = 1.0,
        drop_last: bool = False, device: torch.device | str | None = None, channels_last: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if drop_last and len(x) < batch_size:
            raise ValueError(f"drop_last with batch_size {batch_size} > {len(x)} samples leaves no batch")
        self.device = torch.device(device) if device is not None else x.device
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        active = augmentation is not None and (augmentation.crop_padding > 0 or augmentation.hflip)
        if active and x.ndim != 4:
            raise ValueError(f"crop/flip augmentation needs (N, C, H, W) images, got shape {tuple(x.shape)}")
        self.augmentation = augmentation if active else None
        self._augment = BatchAugmenter(augmentation, tuple(x.shape[1:]), self.device) if active else None
        self._source = self._augment.source(self.x) if self._augment else self.x
        self.channels_last = channels_last and x.ndim == 4
        self.normalize = Normalize(mean, std, pixel_scale, x.ndim, self.device)
        self.seed, self.epoch, self.batch = seed, 0, 0
        self.num_samples = len(x)  # samples per epoch, a dropped last partial batch included
        self._num_batches = len(x) // batch_size if drop_last else math.ceil(len(x) / batch_size)
        self._generator = torch.Generator()  # on the CPU whatever the device: one stream everywhere
        self._draws: tuple[int, torch.Tensor | None, torch.Tensor | None] | None = None  # (epoch, order, moves)

    def __len__(self) -> int:
        return self._num_batches

    def state_dict(self) -> dict[str, Any]:
        """Where the stream stands: the next batch is batch `batch` of epoch `epoch` for this `seed`."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch,
                "num_samples": self.num_samples, "batch_size": self.batch_size, "drop_last": self.drop_last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where `state_dict()` was taken; refuses a state of other data or batch size."""
        for key in ("num_samples", "batch_size", "drop_last"):
            if state[key] != getattr(self, key):
                raise ValueError(f"cannot resume: saved {key}={state[key]} but this stream has "
                                 f"{getattr(self, key)}")
        if not 0 <= state["batch"] <= len(self):
            raise ValueError(f"cannot resume at batch {state['batch']}: an epoch has {len(self)} batches")
        self.seed, self.epoch, self.batch = int(state["seed"]), int(state["epoch"]), int(state["batch"])

    def _epoch_draws(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """This epoch's permutation and augmentation moves on the device (None where unused), drawn once."""
        if self._draws is None or self._draws[0] != self.epoch:
            order = moves = None
            if self.shuffle:
                self._generator.manual_seed(derive_seed(self.seed, self.epoch, _PERMUTATION_STREAM))
                order = _upload(torch.randperm(self.num_samples, generator=self._generator), self.device)
            if self._augment is not None:
                self._generator.manual_seed(derive_seed(self.seed, self.epoch, _AUGMENT_STREAM))
                moves = _upload(self._augment.draw(self.num_samples, self._generator), self.device)
            self._draws = (self.epoch, order, moves)
        return self._draws[1], self._draws[2]

    def epoch_plan(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The current epoch's rows in the order its batches take them (batch i: rows [i * batch_size, ...)) and
        their augmentation moves (None without augmentation), on the device. With `gather` and `end_epoch`, a
        trainer forms several streams' batches at once (`dstbench.train.feed`)."""
        order, moves = self._epoch_draws()
        if order is None:
            order = torch.arange(self.num_samples, device=self.device)
        return order, moves

    def gather(self, rows: torch.Tensor, moves: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of the data's `rows` with augmentation `moves` (a plan's slices, or several plans' slices
        together: any number of rows), as `__iter__` forms it."""
        return self._form(self._source.index_select(0, rows), self.y.index_select(0, rows), moves)

    def _form(self, x: torch.Tensor, y: torch.Tensor, moves: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of the source as a batch: augmented, normalised, in the batch's memory format."""
        if self._augment is not None:
            x = self._augment(x, moves)
        x = self.normalize(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def end_epoch(self) -> None:
        """Mark the current epoch's batches handed out (formed elsewhere from its `epoch_plan`): the stream goes
        on at the next epoch, as after iterating it."""
        self.epoch, self.batch = self.epoch + 1, 0

    def _make(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        order, moves = self._epoch_draws()
        start, stop = index * self.batch_size, min((index + 1) * self.batch_size, self.num_samples)
        moves = None if moves is None else moves[start:stop]
        if order is None:  # unshuffled: the rows are a slice (a view, no gather)
            return self._form(self._source[start:stop], self.y[start:stop], moves)
        return self.gather(order[start:stop], moves)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while self.batch < self._num_batches:
            index = self.batch
            self.batch += 1  # counted as consumed once handed out: a checkpoint after the step resumes after it
            yield self._make(index)
        self.end_epoch()


def _upload(draws: torch.Tensor, device: torch.device) -> torch.Tensor:
    """CPU draws on `device`: through pinned memory and without waiting on a GPU, a plain copy elsewhere."""
    if device.type != "cuda":
        return draws.to(device)
    return draws.pin_memory().to(device, non_blocking=True)
