"""The members' training batches, formed together: each step's K batches are one gather on the device.

A member's batch stream (`dstbench.data.batches.Batches`) is a function of its seed and the epoch: the epoch's
permutation and augmentation moves (`epoch_plan`). At the start of an epoch the feed stacks the members' plans once
into a static (K, full batches, B) tensor of rows; step i's batches are then rows[:, i], picked by a step counter that
lives on the device (`cursor`; eager steps alone read them by the host's count), gathered, augmented and
normalised for all members in one pass (`Batches.gather`).
Nothing in a full batch's step depends on a host value, so the step can be captured in a CUDA graph and replayed
(`dstbench.train.capture`); the last, partial batch of an epoch is sliced on the host. The values are those of each
member's own stream, bit for bit: gathering and normalising are elementwise, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dstbench.data.batches import Batches


class Feed:
    """Epoch after epoch of K streams' batches (same data, batch size and augmentation; own seeds)."""

    def __init__(self, streams: Sequence[Batches], device: torch.device):
        first = streams[0]
        self.streams, self.size, self.batch_size = list(streams), len(streams), first.batch_size
        self.steps = len(first)  # batches per epoch
        self.full = first.num_samples // first.batch_size  # the full batches (static shapes)
        self.rows = torch.zeros((self.size, self.full, self.batch_size), dtype=torch.long, device=device)
        self.moves = self.rows.clone() if first.augmentation is not None else None
        self.cursor = torch.zeros(1, dtype=torch.long, device=device)  # the next full batch, on the device
        self.by_cursor = False  # read full batches by the device counter (a captured step's) or by the host's
        self.index = self.steps  # the next batch of the epoch, on the host (at the end: a new epoch starts)
        self._tail: tuple[Tensor, Tensor | None] | None = None

    @staticmethod
    def fits(streams: Sequence[object]) -> bool:
        """Whether the streams can be fed together: in-memory streams of one data set and batch shape (a streamed
        data set's loader, or text, forms its own batches)."""
        if not all(type(s) is Batches for s in streams):
            return False
        first = streams[0]
        return all((s.num_samples, s.batch_size, s.drop_last, s.augmentation, s.channels_last)
                   == (first.num_samples, first.batch_size, first.drop_last, first.augmentation, first.channels_last)
                   for s in streams)

    @property
    def full_next(self) -> bool:
        """Whether the next batch is a full one (read by the counter on the device)."""
        return self.index < self.full or self.index == self.steps and self.full > 0

    def ready(self) -> None:
        """At the end of an epoch, start the next (the members' plans stacked before any step of it)."""
        if self.index == self.steps:
            self.start_epoch()

    def start_epoch(self) -> None:
        """Stack the members' plans of their current epoch; the counters at the streams' batch (0, unless resumed
        mid-epoch)."""
        plans = [stream.epoch_plan() for stream in self.streams]
        cut = self.full * self.batch_size
        self.rows.copy_(torch.stack([order[:cut] for order, _ in plans]).view_as(self.rows))
        if self.moves is not None:
            self.moves.copy_(torch.stack([moves[:cut] for _, moves in plans]).view_as(self.moves))
        tail_moves = None if self.moves is None else torch.cat([moves[cut:] for _, moves in plans])
        self._tail = (torch.cat([order[cut:] for order, _ in plans]), tail_moves)
        self.index = self.streams[0].batch
        self.cursor.fill_(self.index)

    def take(self) -> tuple[list[Tensor], list[Tensor]]:
        """The next step's batches: each member's inputs and labels. Host work only between epochs."""
        self.ready()
        if self.index < self.full and self.by_cursor:
            rows = self.rows.index_select(1, self.cursor).reshape(-1)
            moves = None if self.moves is None else self.moves.index_select(1, self.cursor).reshape(-1)
            self.cursor.add_(1)
            per_member = self.batch_size
        elif self.index < self.full:  # eager steps only: a view, two tensor operations fewer a step
            rows = self.rows[:, self.index].reshape(-1)
            moves = None if self.moves is None else self.moves[:, self.index].reshape(-1)
            per_member = self.batch_size
        else:
            rows, moves = self._tail
            per_member = rows.numel() // self.size
        x, y = self.streams[0].gather(rows, moves)
        return list(x.unflatten(0, (self.size, per_member)).unbind(0)), list(y.view(self.size, per_member).unbind(0))

    def taken(self) -> None:
        """The batch from `take` (or a captured step's gather) was trained on: count it; after an epoch's last
        batch every member's stream goes on at its next epoch, as if it had been iterated (the streams' own
        counters are brought up to date only then: checkpoints are taken at the ends of epochs)."""
        self.index += 1
        if self.index == self.steps:
            for stream in self.streams:
                stream.end_epoch()
