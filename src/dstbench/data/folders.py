"""Image-folder data sets: Tiny-ImageNet (decoded once into memory and cached) and ImageNet (streamed).

Tiny-ImageNet: `tiny-imagenet-200/train/<wnid>/images/*.JPEG` and `val/images` labelled by
`val/val_annotations.txt`. As in the paper, its labelled val/ folder is the test split (the official test images
have no labels), and a stratified 10% of train (random_state 42, fixed) is the validation split: 90k/10k/10k.
Augmentation: horizontal flips only. Normalised, as in the paper's code, with ImageNet's mean and std
(`preprocessing="paper"`), or with the training split's own statistics (`"exact"`).

ImageNet: `imagenet/train/<wnid>/*.JPEG`, `imagenet/val/<wnid>/*.JPEG`. The paper evaluates on the official
validation set and never uses the test set, so val/ serves as both the validation and the test split.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from dstbench.data.augment import Augmentation
from dstbench.data.cache import cached
from dstbench.data.errors import DataFormatError
from dstbench.data.images import decode_fixed_size, list_images
from dstbench.data.locate import channel_stats, not_found
from dstbench.data.sources import IMAGENET_INSTRUCTIONS, TINY_IMAGENET_DIR
from dstbench.data.splits import ArraySplit, DataSplits, check_preprocessing, stratified_holdout
from dstbench.data.streaming import ImageFolderSplit

TINY_SIZE = 64
TINY_VAL_FRACTION = 0.1
SPLIT_SEED = 42
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def tiny_folder(root: Path) -> Path:
    for folder in (root / TINY_IMAGENET_DIR, root):
        if (folder / "train").is_dir() and (folder / "val" / "val_annotations.txt").is_file():
            return folder
    raise not_found("tinyimagenet", root, [f"{TINY_IMAGENET_DIR}/train/<wnid>/images/*.JPEG",
                                            f"{TINY_IMAGENET_DIR}/val/val_annotations.txt"])


def _tiny_listing(folder: Path) -> tuple[list[str], list[Path], list[int], list[Path], list[int]]:
    """Class ids, training files and labels, and val files and labels."""
    wnids_file = folder / "wnids.txt"
    if wnids_file.is_file():
        classes = [line.strip() for line in wnids_file.read_text().splitlines() if line.strip()]
    else:
        classes = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir())
    index = {wnid: i for i, wnid in enumerate(classes)}
    train_paths, train_labels = [], []
    for wnid in classes:
        images = folder / "train" / wnid / "images"
        if not images.is_dir():
            raise DataFormatError(f"{images}: missing training folder for class {wnid} (listed in wnids.txt)")
        files = list_images(images)
        train_paths += files
        train_labels += [index[wnid]] * len(files)
    val_paths, val_labels = [], []
    annotations = folder / "val" / "val_annotations.txt"
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DataFormatError(
                f"{annotations}:{number}: expected 'file<TAB>wnid...' with a known wnid: {line!r}")
        val_paths.append(folder / "val" / "images" / fields[0])
        val_labels.append(index[fields[1]])
    return classes, train_paths, train_labels, val_paths, val_labels


def _listing_key(paths: list[Path], classes: list[str]) -> str:
    # Hashing 120k files would cost what decoding them does; names, sizes and mtimes identify the copy.
    digest = hashlib.sha256("\n".join(classes).encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_tinyimagenet(root: Path, *, cache: bool = True, workers: int = os.cpu_count() or 1,
                      preprocessing: str = "paper") -> DataSplits:
    """Tiny-ImageNet decoded into (N, 3, 64, 64) uint8 arrays (cached as .npy after the first load)."""
    check_preprocessing(preprocessing)
    folder = tiny_folder(root)
    classes, train_paths, train_labels, val_paths, val_labels = _tiny_listing(folder)
    if not train_paths:
        raise not_found("tinyimagenet", root, [f"{TINY_IMAGENET_DIR}/train/<wnid>/images/*.JPEG"])

    def decode() -> tuple[dict[str, np.ndarray], dict]:
        return {"train_x": decode_fixed_size(train_paths, TINY_SIZE, workers),
                "train_y": np.asarray(train_labels, dtype=np.int64),
                "test_x": decode_fixed_size(val_paths, TINY_SIZE, workers),
                "test_y": np.asarray(val_labels, dtype=np.int64)}, {}

    key = _listing_key(train_paths + val_paths, classes)
    arrays, _ = cached(f"tinyimagenet-{key[:16]}", folder, decode, enabled=cache)
    x, y = arrays["train_x"], arrays["train_y"]
    train, val = stratified_holdout(y, TINY_VAL_FRACTION, SPLIT_SEED)
    if preprocessing == "paper":
        mean, std, how = IMAGENET_MEAN, IMAGENET_STD, "ImageNet's mean/std (the paper's code)"
    else:
        mean, std = channel_stats(x[train], 255.0)
        how = "per-channel mean/std of the training split"
    return DataSplits(
        name="tinyimagenet", task="multiclass", num_classes=len(classes), input_shape=(3, TINY_SIZE, TINY_SIZE),
        train=ArraySplit.from_numpy(x[train], y[train]), val=ArraySplit.from_numpy(x[val], y[val]),
        test=ArraySplit.from_numpy(arrays["test_x"], arrays["test_y"]),
        mean=mean, std=std, pixel_scale=255.0, augmentation=Augmentation(hflip=True), classes=tuple(classes),
        notes="test = the official val/ images; validation = a stratified 10% of train (random_state 42); "
              f"{how}; horizontal flips only",
    )


def _class_folders(folder: Path) -> tuple[list[str], list[Path], list[int]]:
    classes = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    paths, labels = [], []
    for label, wnid in enumerate(classes):
        files = list_images(folder / wnid)
        paths += files
        labels += [label] * len(files)
    return classes, paths, labels


def imagenet_folder(root: Path) -> Path:
    """The folder with ImageNet's train/ and val/ under `root`."""
    folder = next((f for f in (root / "imagenet", root) if (f / "train").is_dir() and (f / "val").is_dir()), None)
    if folder is None:
        raise not_found("imagenet", root, ["imagenet/train/<wnid>/*.JPEG", "imagenet/val/<wnid>/*.JPEG"],
                        hint="ImageNet needs an account; see `dstbench data download imagenet` for the steps")
    return folder


def load_imagenet(root: Path, *, image_size: int = 224, resize: int = 256) -> DataSplits:
    """ImageNet as lists of files, decoded and augmented by DataLoader workers while training."""
    folder = imagenet_folder(root)
    classes, train_paths, train_labels = _class_folders(folder / "train")
    val_classes, val_paths, val_labels = _class_folders(folder / "val")
    if val_classes != classes:
        raise DataFormatError(
            f"{folder / 'val'}: its class folders differ from train/'s ({len(val_classes)} vs {len(classes)}); "
            f"val/ must be sorted into one folder per class.\n{IMAGENET_INSTRUCTIONS}"
        )
    if not train_paths or not val_paths:
        raise not_found("imagenet", root, ["imagenet/train/<wnid>/*.JPEG", "imagenet/val/<wnid>/*.JPEG"],
                        hint="ImageNet needs an account; see `dstbench data download imagenet` for the steps")
    train = ImageFolderSplit(tuple(train_paths), tuple(train_labels), tuple(classes))
    val = ImageFolderSplit(tuple(val_paths), tuple(val_labels), tuple(classes))
    return DataSplits(
        name="imagenet", task="multiclass", num_classes=len(classes), input_shape=(3, image_size, image_size),
        train=train, val=val, test=val, mean=IMAGENET_MEAN, std=IMAGENET_STD, pixel_scale=255.0,
        augmentation=Augmentation(hflip=True, random_resized_crop=image_size), classes=tuple(classes),
        notes=f"val/ is both the validation and the test split (as in the paper); train: random-resized crop "
              f"{image_size} + flip; eval: resize {resize}, centre crop {image_size}",
        streaming={"image_size": image_size, "resize": resize},
    )
