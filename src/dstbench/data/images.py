"""Image files: decoding with PIL, and the ImageNet training and evaluation transforms in PIL + numpy.

The transforms are the standard ones (random-resized crop with scale 0.08..1 and aspect 3/4..4/3, ten tries then
a centre crop; horizontal flip; resize the shorter side then centre crop), written here so that no torchvision is
needed. Each sample's randomness comes from its own `numpy` generator, so a batch is the same whatever worker
process decodes it.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dstbench.data.errors import DataFormatError

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def open_rgb(path: Path) -> Image.Image:
    """The image at `path` as RGB (grey and CMYK images exist in ImageNet and Tiny-ImageNet)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataFormatError(f"{path}: not a readable image ({exc})") from exc


def to_chw(image: Image.Image) -> np.ndarray:
    """A PIL image as a (3, H, W) uint8 array."""
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def decode_fixed_size(paths: list[Path], size: int, workers: int = 4) -> np.ndarray:
    """Decode same-sized images into one (N, 3, size, size) uint8 array; PIL releases the GIL, so threads help."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def fill(i: int) -> None:
        image = open_rgb(paths[i])
        if image.size != (size, size):
            raise DataFormatError(f"{paths[i]}: image is {image.size[0]}x{image.size[1]}, expected {size}x{size}")
        out[i] = to_chw(image)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(fill, range(len(paths))))
    return out


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def random_resized_box(
    width: int, height: int, rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(left, top, w, h) of a random crop covering `scale` of the area with aspect ratio in `ratio`."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def train_transform(image: Image.Image, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random-resized crop to size x size, then a horizontal flip with probability 1/2."""
    left, top, w, h = random_resized_box(image.width, image.height, rng)
    crop = image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return to_chw(crop)


def eval_transform(image: Image.Image, size: int, resize: int) -> np.ndarray:
    """Resize the shorter side to `resize`, then take the centre size x size crop."""
    factor = resize / min(image.width, image.height)
    width, height = max(size, round(image.width * factor)), max(size, round(image.height * factor))
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    left, top = (width - size) // 2, (height - size) // 2
    return to_chw(image.crop((left, top, left + size, top + size)))
