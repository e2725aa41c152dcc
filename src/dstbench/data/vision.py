"""FashionMNIST (IDX files) and CIFAR-10/100 (pickled batches, extracted or inside the .tar.gz).

Splits follow the paper's code: the last 10% of the official training set is the validation split (FashionMNIST
54k/6k/10k, CIFAR 45k/5k/10k), the official test set is the test split.

Preprocessing ("paper", the default) is that of the paper's code: FashionMNIST normalised with mean and std 0.5;
CIFAR-10 with the widely copied constants mean 0.4914/0.4822/0.4465, std 0.2023/0.1994/0.2010 (not the data's
standard deviation, about 0.25: inputs come out 1.2-1.3 times wider) and random crops from a reflect-padded
image; CIFAR-100 with its own published statistics and crops from a zero-padded image. "exact" normalises every
set with the per-channel mean/std of its own training split and pads CIFAR crops with zeros. Validation and test
images are never augmented (the paper's code augments its CIFAR-10 validation images like training images; we
don't: a validation score should not be noisy). docs/preprocessing.md measures what each choice changes.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dstbench.data import sources
from dstbench.data.augment import Augmentation
from dstbench.data.cache import cached
from dstbench.data.checksums import bytes_digest, file_digest, warn_if_unofficial
from dstbench.data.cifar_pickle import read_batch, read_meta
from dstbench.data.errors import DataFormatError
from dstbench.data.idx import parse_idx, read_maybe_gzip
from dstbench.data.locate import channel_stats, last_fraction, not_found
from dstbench.data.splits import ArraySplit, DataSplits, check_preprocessing

VAL_FRACTION = 0.1
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def fashion_files(root: Path, system_fallback: bool) -> dict[str, Path]:
    folders = [root, root / sources.FASHION_MNIST_DIR, root / "FashionMNIST" / "raw", root / "fashionmnist"]
    if system_fallback:
        folders.append(SYSTEM_FASHION_MNIST)
    best: tuple[Path, dict[str, Path | None]] | None = None  # the folder holding most of the files
    for folder in folders:
        found = {name: next((p for p in (folder / f"{name}.gz", folder / name) if p.is_file()), None)
                 for name in sources.FASHION_MNIST_FILES}
        if all(found.values()):
            return found  # type: ignore[return-value]
        if any(found.values()) and (best is None or sum(map(bool, found.values())) > sum(map(bool, best[1].values()))):
            best = (folder, found)
    if best is not None:  # some of the files are there: name the ones that are not
        folder, found = best
        where = folder.relative_to(root) if folder.is_relative_to(root) else folder
        missing = [f"{where}/{name}.gz" if str(where) != "." else f"{name}.gz" for name, p in found.items() if p is None]
        raise not_found("fashionmnist", root, missing)
    wanted = [f"{sources.FASHION_MNIST_DIR}/{name}.gz" for name in sources.FASHION_MNIST_FILES]
    raise not_found("fashionmnist", root, wanted)


def _read_fashion_file(path: Path) -> tuple[np.ndarray, str]:
    """The file's array and the sha256 of its decompressed content."""
    content = read_maybe_gzip(path)
    return parse_idx(content, str(path)), bytes_digest(content)


def load_fashionmnist(root: Path, *, system_fallback: bool = False, preprocessing: str = "paper") -> DataSplits:
    """FashionMNIST from its four IDX files (`.gz` or not) under `root`, `root/fashion-mnist` or similar.

    `preprocessing`: "paper" (mean and std 0.5) or "exact" (the training split's own mean/std)."""
    check_preprocessing(preprocessing)
    paths = fashion_files(root, system_fallback)
    read = {name: _read_fashion_file(path) for name, path in paths.items()}
    warn_if_unofficial("fashionmnist", "sha256", [(f"{paths[name]} (decompressed)", digest,
                                                  sources.FASHION_MNIST_FILES[name][1])
                                                 for name, (_, digest) in read.items()])
    arrays = {name: array for name, (array, _) in read.items()}
    train_x, train_y = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    test_x, test_y = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    for images, labels, what in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(images) != len(labels):
            raise DataFormatError(f"{paths[f'{what}-images-idx3-ubyte']}: FashionMNIST {what} files disagree: "
                                  f"images {images.dtype} {images.shape}, labels {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataFormatError(f"{paths[f'{what}-labels-idx1-ubyte']}: labels outside 0..9")
    n_val = last_fraction(len(train_x), VAL_FRACTION)
    train_x, test_x = train_x[:, None], test_x[:, None]
    if preprocessing == "paper":
        mean, std, how = (0.5,), (0.5,), "normalised with mean 0.5, std 0.5 (the paper's code)"
    else:
        mean, std = channel_stats(train_x[:-n_val], 255.0)
        how = "normalised with the 54,000 training images' own mean/std"
    return DataSplits(
        name="fashionmnist", task="multiclass", num_classes=10, input_shape=(1, 28, 28),
        train=ArraySplit.from_numpy(train_x[:-n_val], train_y[:-n_val]),
        val=ArraySplit.from_numpy(train_x[-n_val:], train_y[-n_val:]),
        test=ArraySplit.from_numpy(test_x, test_y),
        mean=mean, std=std, pixel_scale=255.0,
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
        notes=f"validation = the last 6,000 training images; {how}; no augmentation",
    )


@dataclass(frozen=True)
class CifarLayout:
    """File names and keys of one CIFAR variant."""

    name: str
    archive: str
    folder: str
    archive_md5: str
    file_md5: dict[str, str]
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: str
    names_key: str
    classes: int
    paper_mean: tuple[float, float, float]  # the paper's code's normalisation and crop padding
    paper_std: tuple[float, float, float]
    paper_padding: str


CIFAR10 = CifarLayout(
    "cifar10", sources.CIFAR10_ARCHIVE, sources.CIFAR10_DIR, sources.CIFAR10_ARCHIVE_MD5,
    sources.CIFAR10_FILE_MD5,
    tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta", "labels", "label_names", 10,
    (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), "reflect",
)
CIFAR100 = CifarLayout(
    "cifar100", sources.CIFAR100_ARCHIVE, sources.CIFAR100_DIR, sources.CIFAR100_ARCHIVE_MD5,
    sources.CIFAR100_FILE_MD5, ("train",), "test", "meta", "fine_labels", "fine_label_names", 100,
    (0.5070751592371323, 0.48654887331495095, 0.4409178433670343),
    (0.2673342858792401, 0.2564384629170883, 0.27615047132568404), "zero",
)


def cifar_source(root: Path, layout: CifarLayout) -> Path:
    """The extracted folder if it is complete, else the archive."""
    wanted = [*layout.train, layout.test, layout.meta]
    for folder in (root / layout.folder, root):
        if all((folder / name).is_file() for name in wanted):
            return folder
    for archive in (root / layout.archive, root / layout.folder / layout.archive):
        if archive.is_file():
            return archive
    raise not_found(layout.name, root, [f"{layout.archive} (or {layout.folder}/ with {', '.join(wanted)})"])


def _read_members(source: Path, layout: CifarLayout) -> dict[str, bytes]:
    wanted = {*layout.train, layout.test, layout.meta}
    if source.is_dir():
        return {name: (source / name).read_bytes() for name in wanted}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(source, "r:gz") as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    found[base] = archive.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataFormatError(
            f"{source}: corrupt or truncated archive ({exc}); delete it and download again") from exc
    missing = sorted(wanted - set(found))
    if missing:
        raise DataFormatError(f"{source}: archive lacks {', '.join(missing)} (not a {layout.name} archive?)")
    return found


def _parse_cifar(source: Path, layout: CifarLayout) -> tuple[dict[str, np.ndarray], dict]:
    members = _read_members(source, layout)
    train = [read_batch(members[name], f"{source}:{name}", layout.label_key) for name in layout.train]
    test_x, test_y = read_batch(members[layout.test], f"{source}:{layout.test}", layout.label_key)
    classes = read_meta(members[layout.meta], f"{source}:{layout.meta}", layout.names_key)
    train_y = np.concatenate([labels for _, labels in train])
    for labels, name in ((train_y, "training"), (test_y, "test")):
        if labels.size and (labels.min() < 0 or labels.max() >= layout.classes):
            raise DataFormatError(f"{source}: {name} labels outside 0..{layout.classes - 1}")
    if source.is_dir():
        md5 = {name: bytes_digest(data, "md5") for name, data in members.items()}
    else:
        md5 = {layout.archive: file_digest(source, "md5")}
    arrays = {"train_x": np.concatenate([images for images, _ in train]), "train_y": train_y,
              "test_x": test_x, "test_y": test_y}
    return arrays, {"classes": classes, "md5": md5}


def _source_key(source: Path, layout: CifarLayout) -> str:
    if source.is_file():
        return file_digest(source)
    names = sorted({*layout.train, layout.test, layout.meta})
    return bytes_digest("".join(file_digest(source / name) for name in names).encode())


def load_cifar(root: Path, *, layout: CifarLayout, cache: bool = True, preprocessing: str = "paper") -> DataSplits:
    """CIFAR-10 or -100 from the extracted batches or directly from the `.tar.gz`, parsed once and cached.

    `preprocessing`: "paper" (the paper's code's constants and padding, see the module) or "exact" (the 45,000
    training images' own per-channel mean/std, zero padding)."""
    check_preprocessing(preprocessing)
    source = cifar_source(root, layout)
    arrays, meta = cached(f"{layout.name}-{_source_key(source, layout)[:16]}", source.parent,
                          lambda: _parse_cifar(source, layout), enabled=cache)
    warn_if_unofficial(layout.name, "md5", [
        (str(source / name if source.is_dir() else source), digest,
         layout.archive_md5 if name == layout.archive else layout.file_md5[name])
        for name, digest in sorted(meta["md5"].items())])
    train_x, train_y = arrays["train_x"], arrays["train_y"]
    n_val = last_fraction(len(train_x), VAL_FRACTION)
    if preprocessing == "paper":
        mean, std, padding = layout.paper_mean, layout.paper_std, layout.paper_padding
        how = (f"normalised with the paper's code's constants mean {_triple(mean)}, std {_triple(std)}; random crop "
               f"with 4-pixel {padding} padding + horizontal flip")
    else:
        (mean, std), padding = channel_stats(train_x[:-n_val], 255.0), "zero"
        how = ("normalised with the 45,000 training images' own per-channel mean/std; random crop with 4-pixel "
               "zero padding + horizontal flip")
    return DataSplits(
        name=layout.name, task="multiclass", num_classes=layout.classes, input_shape=(3, 32, 32),
        train=ArraySplit.from_numpy(train_x[:-n_val], train_y[:-n_val]),
        val=ArraySplit.from_numpy(train_x[-n_val:], train_y[-n_val:]),
        test=ArraySplit.from_numpy(arrays["test_x"], arrays["test_y"]),
        mean=tuple(mean), std=tuple(std), pixel_scale=255.0,
        augmentation=Augmentation(crop_padding=4, hflip=True, padding_mode=padding),
        classes=tuple(meta["classes"]),
        notes=f"validation = the last 5,000 training images (not augmented); {how}",
    )


def _triple(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.4f}" for v in values)
