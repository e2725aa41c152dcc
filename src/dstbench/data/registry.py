"""The data sets by name: what each is (without loading it) and how to load it."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from dstbench.data import commonsense_qa, embedded, folders, higgs, vision
from dstbench.data.locate import resolve_root
from dstbench.data.splits import DataSplits, random_subset
from dstbench.errors import UserError


@dataclass(frozen=True)
class DatasetInfo:
    """A data set's shape, classes and split sizes as the paper uses it, and where it comes from."""

    name: str
    task: str
    num_classes: int
    input_shape: tuple[int, ...]
    split_sizes: tuple[int, int, int]
    source: str
    download: str
    notes: str


_Loader = Callable[..., DataSplits]

# name -> (info, loader(root, **options), options fixed for this name)
_DATASETS: dict[str, tuple[DatasetInfo, _Loader, dict[str, object]]] = {
    info.name: (info, loader, fixed)
    for info, loader, fixed in [
        (DatasetInfo("higgs", "binary", 2, (24,), (658_112, 141_024, 141_024), "openml.org/d/44129",
                     "OpenML file endpoint (ARFF)", "stratified 70/15/15, random_state 42; unscaled; one logit"),
         higgs.load_higgs, {}),
        (DatasetInfo("fashionmnist", "multiclass", 10, (1, 28, 28), (54_000, 6_000, 10_000),
                     "github.com/zalandoresearch/fashion-mnist", "4 IDX files",
                     "last 6,000 training images = validation; mean/std 0.5"),
         vision.load_fashionmnist, {}),
        (DatasetInfo("cifar10", "multiclass", 10, (3, 32, 32), (45_000, 5_000, 10_000),
                     "cs.toronto.edu/~kriz/cifar.html", "cifar-10-python.tar.gz",
                     "last 5,000 training images = validation; paper constants; reflect crop 4 + flip (docs/preprocessing.md)"),
         vision.load_cifar, {"layout": vision.CIFAR10}),
        (DatasetInfo("cifar100", "multiclass", 100, (3, 32, 32), (45_000, 5_000, 10_000),
                     "cs.toronto.edu/~kriz/cifar.html", "cifar-100-python.tar.gz",
                     "last 5,000 training images = validation; fine labels; paper constants; crop 4 + flip"),
         vision.load_cifar, {"layout": vision.CIFAR100}),
        (DatasetInfo("tinyimagenet", "multiclass", 200, (3, 64, 64), (90_000, 10_000, 10_000),
                     "cs231n.stanford.edu/tiny-imagenet-200.zip", "tiny-imagenet-200.zip (extracted)",
                     "official val/ = test; stratified 10% of train = validation; ImageNet mean/std; flips"),
         folders.load_tinyimagenet, {}),
        (DatasetInfo("imagenet", "multiclass", 1000, (3, 224, 224), (1_281_167, 50_000, 50_000),
                     "image-net.org/challenges/LSVRC/2012/", "needs an account (manual)",
                     "val/ = validation and test; streamed with DataLoader workers"),
         folders.load_imagenet, {}),
        (DatasetInfo("digits", "multiclass", 10, (1, 8, 8), (1_257, 270, 270), "scikit-learn load_digits",
                     "embedded", "stratified 70/15/15, random_state 42"),
         embedded.load_digits_images, {}),
        (DatasetInfo("breast_cancer", "binary", 2, (30,), (398, 85, 86), "scikit-learn load_breast_cancer",
                     "embedded", "stand-in for Higgs; standardised with training statistics"),
         embedded.load_breast_cancer_table, {}),
        (DatasetInfo("synthetic_tabular", "binary", 2, (24,), (14_000, 3_000, 3_000),
                     "scikit-learn make_classification (synthetic)", "generated",
                     "synthetic, Higgs-shaped (24 features, 2 classes), fixed seed; unscaled"),
         embedded.load_synthetic_tabular, {}),
        (DatasetInfo("commonsense_qa", "multiple_choice", 5, (5, 512), (9_741, 1_221, 1_221),
                     "tau-nlp.org/commonsenseqa (v1.11)", "2 JSONL files (train, dev)",
                     "text: 5 choices per question; dev = validation and test (as SMC-Bench); tokenised with the "
                     "model's tokenizer, up to max_length tokens (input (5, L), L the longest input)"),
         commonsense_qa.load_commonsense_qa, {}),
    ]
}

def list_datasets() -> list[str]:
    """The names `load` accepts, sorted."""
    return sorted(_DATASETS)


def _entry(name: str) -> tuple[DatasetInfo, _Loader, dict[str, object]]:
    key = name.lower().replace("-", "").replace("_", "")
    for known, entry in _DATASETS.items():
        if known.replace("_", "") == key:
            return entry
    raise UserError(f"unknown data set {name!r}; valid names: {', '.join(list_datasets())}")


def info(name: str) -> DatasetInfo:
    """What `name` is, without loading it."""
    return _entry(name)[0]


def load(
    name: str, root: str | os.PathLike[str] | None = None, *, seed: int = 0, train_subset: int | None = None,
    **options: object,
) -> DataSplits:
    """Load a data set's train/val/test splits.

    `root` holds the data (default `$DSTBENCH_DATA_ROOT` or `~/.cache/dstbench/data`). Splits are fixed,
    whatever `seed`; `seed` only picks which `train_subset` samples are kept when a subset is asked for.
    `options` go to the data set's loader (e.g. `cache=False`, `target=` for Higgs, `image_size=` for ImageNet).
    """
    data_info, loader, fixed = _entry(name)
    accepted = {p.name for p in inspect.signature(loader).parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name not in fixed}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UserError(f"{data_info.name}: unknown option(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(sorted(accepted)) or 'none'}")
    kwargs = {**fixed, **options}
    if data_info.name == "fashionmnist" and root is None:
        kwargs.setdefault("system_fallback", True)
    splits = loader(resolve_root(root), **kwargs)
    if train_subset is not None:
        splits = replace(splits, train=splits.train.subset(random_subset(len(splits.train), train_subset, seed)))
    return splits


# name -> where its files are under a root (raising DataNotFoundError, with how to get them, when they are not);
# the embedded data sets have no files.
def _fashion_folder(root: Path, system_fallback: bool = False) -> Path:
    return next(iter(vision.fashion_files(root, system_fallback).values())).parent


_FINDERS: dict[str, Callable[[Path], Path]] = {
    "higgs": higgs.find_file,
    "fashionmnist": _fashion_folder,
    "cifar10": lambda root: vision.cifar_source(root, vision.CIFAR10),
    "cifar100": lambda root: vision.cifar_source(root, vision.CIFAR100),
    "tinyimagenet": folders.tiny_folder,
    "imagenet": folders.imagenet_folder,
    "commonsense_qa": commonsense_qa.questions_folder,
}


def locate(name: str, root: str | os.PathLike[str] | None = None) -> str:
    """Where `load(name, root)` would read the data from, without reading it: a path, or "embedded (...)" for the
    data sets that need no files. Raises `DataNotFoundError` (saying how to get them) when they are missing."""
    data_info = info(name)
    finder = _FINDERS.get(data_info.name)
    if finder is None:
        return f"embedded ({data_info.source})"
    resolved = resolve_root(root)
    if data_info.name == "fashionmnist" and root is None:  # `load` falls back to Debian's package, so we do too
        return str(_fashion_folder(resolved, system_fallback=True))
    return str(finder(resolved))


def data_root(root: str | os.PathLike[str] | None) -> Path:
    """The root `load` would use for `root` (for messages and the download command)."""
    return resolve_root(root)
