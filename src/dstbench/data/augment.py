"""Training augmentation on whole batches of uint8 image tensors: no per-sample Python, no host round trip.

A random crop with zero padding and a horizontal flip move pixels without changing them, so a sample's output is
a gather from its own pixels. There are only 2 * (2p + 1)^2 distinct moves (vertical and horizontal offset in
0..2p, flipped or not), so the gather index of every move is computed once (`crop_flip_table`), and a batch
looks its samples' indices up and does one `gather`. Pixels that come from the padding point at a sentinel zero
appended to each channel (`with_sentinel`), so they become the normalised black, -mean/std, exactly as when
padding before normalising. With reflect padding (`padding_mode="reflect"`, the paper's code on CIFAR-10) a pixel
of the padding points at the image pixel it mirrors (the edge itself not repeated), so no sentinel is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PADDING_MODES = ("zero", "reflect")


@dataclass(frozen=True)
class Augmentation:
    """What is done to training batches.

    `crop_padding` > 0: random crop of the original size from the image padded by that many pixels, with zeros
    (`padding_mode="zero"`) or by reflection about the edge pixels (`"reflect"`, as numpy's and torch's
    "reflect"); `hflip`: horizontal flip with probability 1/2; `random_resized_crop`: output size of the
    random-resized crop (streamed data sets only, applied per image while decoding).
    """

    crop_padding: int = 0
    hflip: bool = False
    random_resized_crop: int | None = None
    padding_mode: str = "zero"

    def __post_init__(self) -> None:
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode {self.padding_mode!r}; valid: {', '.join(PADDING_MODES)}")

    def describe(self) -> str:
        """A short human description, e.g. for the run log."""
        parts = []
        if self.random_resized_crop:
            parts.append(f"random-resized crop {self.random_resized_crop}")
        if self.crop_padding:
            parts.append(f"random crop with {self.crop_padding}-pixel {self.padding_mode} padding")
        if self.hflip:
            parts.append("horizontal flip")
        return " + ".join(parts) or "none"


def with_sentinel(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images as (N, C, H*W + 1): each channel's pixels followed by one zero."""
    n, c = x.shape[:2]
    return torch.cat([x.reshape(n, c, -1), x.new_zeros(n, c, 1)], dim=2)


def crop_flip_table(height: int, width: int, padding: int, device: torch.device | None = None,
                    padding_mode: str = "zero") -> torch.Tensor:
    """Gather indices (2 * (2p+1)^2, H*W) into the `with_sentinel` layout, one row per move.

    Row `(dy * (2p + 1) + dx) * 2 + flip` maps output pixel (i, j) to input pixel (dy - p + i, dx - p + j'),
    with j' = W - 1 - j when flipped. A pixel in the padding maps to the sentinel H*W ("zero"), or is mirrored
    into the image, -r for r < 0 and 2(H-1) - r for r >= H ("reflect"; needs p < H and p < W).
    """
    span = 2 * padding + 1
    dy = torch.arange(span, device=device).view(span, 1, 1, 1, 1)
    dx = torch.arange(span, device=device).view(1, span, 1, 1, 1)
    flip = torch.tensor([False, True], device=device).view(1, 1, 2, 1, 1)
    i = torch.arange(height, device=device).view(1, 1, 1, height, 1)
    j = torch.arange(width, device=device).view(1, 1, 1, 1, width)
    rows = dy - padding + i
    cols = dx - padding + torch.where(flip, width - 1 - j, j)
    if padding_mode == "reflect":
        if padding >= min(height, width):
            raise ValueError(f"reflect padding {padding} needs images larger than it, got {height}x{width}")
        rows = torch.where(rows < 0, -rows, torch.where(rows >= height, 2 * (height - 1) - rows, rows))
        cols = torch.where(cols < 0, -cols, torch.where(cols >= width, 2 * (width - 1) - cols, cols))
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    index = torch.where(inside, rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1), height * width)
    return index.reshape(span * span * 2, height * width)


def crop_flip_batch(source: torch.Tensor, table: torch.Tensor, moves: torch.Tensor,
                    shape: tuple[int, int, int]) -> torch.Tensor:
    """Apply each sample's move to a (B, C, H*W [+ 1]) batch; returns (B, C, H, W)."""
    b, (c, h, w) = source.shape[0], shape
    index = table.index_select(0, moves).unsqueeze(1).expand(b, c, h * w)
    return source.gather(2, index).view(b, c, h, w)


class BatchAugmenter:
    """Random crop and/or flip for batches of one data set.

    `source(x)` is what batches are gathered from (with the zero sentinel when cropping); `draw(n, generator)`
    picks `n` samples' moves on the CPU generator (one uniform integer each, the same on every device), and
    `__call__` applies moves to a batch of rows of the source.
    """

    def __init__(self, augmentation: Augmentation, sample_shape: tuple[int, int, int], device: torch.device):
        if augmentation.random_resized_crop:
            raise ValueError("random-resized crop is applied per image by the streaming loader, not on batches")
        self.padding, self.hflip, self.shape = augmentation.crop_padding, augmentation.hflip, sample_shape
        self.table = crop_flip_table(sample_shape[1], sample_shape[2], self.padding, device,
                                     augmentation.padding_mode)
        self.sentinel = self.padding > 0 and augmentation.padding_mode == "zero"
        self.num_moves = (2 * self.padding + 1) ** 2 * (2 if self.hflip else 1)

    def source(self, x: torch.Tensor) -> torch.Tensor:
        """The data in the layout `__call__` expects; a copy only when zero padding needs the sentinel."""
        return with_sentinel(x) if self.sentinel else x.flatten(2)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` moves, as table rows. Row r is offset r // 2, flipped when r is odd: uniform rows are uniform,
        independent offsets and flips. Without flipping, only the even rows."""
        draw = torch.randint(0, self.num_moves, (n,), generator=generator)
        return draw if self.hflip else draw * 2

    def __call__(self, batch: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
        return crop_flip_batch(batch, self.table, moves, self.shape)
