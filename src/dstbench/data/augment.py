"""Training augmentation on whole batches of uint8 image tensors: no per-sample Python, no host round trip.

Random crop with zero padding and the horizontal flip are one gather: each output pixel (row i, column j) of
sample b reads padded pixel (dy_b + i, dx_b + j) or, when b is flipped, (dy_b + i, dx_b + W - 1 - j). Padding
happens in uint8 before normalisation, so padded pixels become the normalised black, -mean/std, exactly as when
padding a PIL image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """What is done to training batches.

    `crop_padding` > 0: random crop of the original size from the image zero-padded by that many pixels;
    `hflip`: horizontal flip with probability 1/2; `random_resized_crop`: output size of the random-resized crop
    (streamed data sets only, applied per image while decoding).
    """

    crop_padding: int = 0
    hflip: bool = False
    random_resized_crop: int | None = None

    def describe(self) -> str:
        """A short human description, e.g. for the run log."""
        parts = []
        if self.random_resized_crop:
            parts.append(f"random-resized crop {self.random_resized_crop}")
        if self.crop_padding:
            parts.append(f"random crop with {self.crop_padding}-pixel zero padding")
        if self.hflip:
            parts.append("horizontal flip")
        return " + ".join(parts) or "none"


def flip_batch(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the samples of (B, C, H, W) `x` where the (B,) bool `flip` is set."""
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def crop_flip_batch(x: torch.Tensor, padding: int, offsets: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Crop each sample of (B, C, H, W) `x` from its zero-padded version at `offsets` (B, 2: dy, dx in
    [0, 2*padding]) and mirror it where `flip` (B,) is set."""
    b, c, h, w = x.shape
    padded_w = w + 2 * padding
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = offsets[:, :1] + torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device).expand(b, w)
    cols = torch.where(flip.view(-1, 1), w - 1 - cols, cols) + offsets[:, 1:]
    index = (rows.unsqueeze(2) * padded_w + cols.unsqueeze(1)).view(b, 1, h * w).expand(b, c, h * w)
    return padded.flatten(2).gather(2, index).view(b, c, h, w)


def augment_batch(x: torch.Tensor, augmentation: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Apply `augmentation` to a (B, C, H, W) batch, drawing its randomness from `generator` on x's device.

    Draw order (fixed, so results are reproducible): flips, then crop offsets.
    """
    if augmentation.random_resized_crop:
        raise ValueError("random-resized crop is applied per image by the streaming loader, not on batches")
    b = x.shape[0]
    flip = (
        torch.rand(b, generator=generator, device=x.device) < 0.5
        if augmentation.hflip
        else torch.zeros(b, dtype=torch.bool, device=x.device)
    )
    if augmentation.crop_padding:
        span = 2 * augmentation.crop_padding + 1
        offsets = torch.randint(0, span, (b, 2), generator=generator, device=x.device)
        return crop_flip_batch(x, augmentation.crop_padding, offsets, flip)
    return flip_batch(x, flip) if augmentation.hflip else x
