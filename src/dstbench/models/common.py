"""Shape arithmetic shared by the convolutional families, so that a too-small input fails at build time
with a message that says why, instead of deep inside the first forward pass."""

from __future__ import annotations


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Length of one spatial side after a convolution or pooling window (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def require_positive(model: str, input_size: tuple[int, int], sizes: tuple[int, int], why: str) -> None:
    """Raise a ValueError naming `model` and `input_size` when the feature map `sizes` has vanished."""
    if min(sizes) < 1:
        height, width = input_size
        raise ValueError(f"model {model!r} cannot take {height}x{width} inputs: {why}")
