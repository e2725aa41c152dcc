"""Higgs (OpenML 44129, 940,160 rows, 24 features, binary) from OpenML's Parquet, ARFF or CSV file.

As in the paper's code: a stratified 70/15/15 split with random_state 42, the same for every training seed; no
feature scaling (the features come pre-scaled); one output logit with binary cross-entropy. The split is that
code's exactly (`paper_split`): the 30% held out of training, in the order scikit-learn returns it, is split in
two halves again, and the half scikit-learn returns first is the test split, the other the validation split.

The files are looked for in `root/higgs/` or `root/`: the first `*.parquet`/`*.pq`, else `*.arff`, else
`*.csv`. The target column is `target=`, else the `default_target_attribute` of OpenML's `description.json`
next to the file (the download command saves it), else a column named `target` or `class`, else the last column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from dstbench.data.cache import cached
from dstbench.data.checksums import file_digest, warn_if_unofficial
from dstbench.data.errors import DataFormatError
from dstbench.data.locate import not_found
from dstbench.data.sources import HIGGS_ARFF, HIGGS_DESCRIPTION, HIGGS_DIR
from dstbench.data.splits import ArraySplit, DataSplits
from dstbench.data.tabular_files import features_and_labels, read_table

SPLIT_SEED = 42
VAL_FRACTION = TEST_FRACTION = 0.15
_PATTERNS = ("*.parquet", "*.pq", "*.arff", "*.csv")


def find_file(root: Path) -> Path:
    for folder in (root / HIGGS_DIR, root):
        for pattern in _PATTERNS:
            found = sorted(folder.glob(pattern)) if folder.is_dir() else []
            if found:
                return found[0]
    raise not_found("higgs", root, [f"{HIGGS_DIR}/{HIGGS_ARFF} (or a .parquet / .csv export of OpenML 44129)"])


def read_description(folder: Path) -> dict:
    """OpenML's data set description saved next to the data (empty if absent)."""
    path = folder / HIGGS_DESCRIPTION
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())["data_set_description"]
    except (ValueError, KeyError) as exc:
        raise DataFormatError(f"{path}: not an OpenML data set description ({exc})") from exc


def _target_column(columns: list[str], explicit: str | None, description: dict) -> str:
    if explicit:
        return explicit
    if description.get("default_target_attribute"):
        return str(description["default_target_attribute"])
    return next((name for name in ("target", "class") if name in columns), columns[-1])


def _parse(path: Path, target: str | None, description: dict) -> tuple[dict[str, np.ndarray], dict]:
    frame, nominal = read_table(path)
    column = _target_column([str(c) for c in frame.columns], target, description)
    x, y, classes = features_and_labels(frame, column, str(path), nominal.get(column))
    if len(classes) != 2:
        raise DataFormatError(
            f"{path}: target {column!r} has {len(classes)} classes {classes[:5]}; Higgs is binary")
    return {"x": x, "y": y}, {"classes": classes, "features": [str(c) for c in frame.columns if c != column]}


def paper_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted train/val/test row indices of the paper's code's Higgs split (see the module)."""
    rows = np.arange(len(labels))
    train, held = train_test_split(rows, test_size=VAL_FRACTION + TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=labels)
    test, val = train_test_split(held, test_size=VAL_FRACTION / (VAL_FRACTION + TEST_FRACTION),
                                 random_state=SPLIT_SEED, stratify=labels[held])
    return np.sort(train), np.sort(val), np.sort(test)


def load_higgs(root: Path, *, target: str | None = None, cache: bool = True) -> DataSplits:
    """Higgs from an OpenML export under `root`; parsed once and cached as .npy."""
    path = find_file(root)
    description = read_description(path.parent)
    if path.suffix == ".arff" and description.get("md5_checksum"):
        warn_if_unofficial("higgs", "md5", [(str(path), file_digest(path, "md5"), description["md5_checksum"])])
    key = f"higgs-{file_digest(path)[:16]}-{target or 'default'}"
    arrays, meta = cached(key, path.parent, lambda: _parse(path, target, description), enabled=cache)
    x, y = arrays["x"], arrays["y"]
    train, val, test = paper_split(y)
    return DataSplits(
        name="higgs", task="binary", num_classes=2, input_shape=(x.shape[1],),
        train=ArraySplit.from_numpy(x[train], y[train]), val=ArraySplit.from_numpy(x[val], y[val]),
        test=ArraySplit.from_numpy(x[test], y[test]), classes=tuple(meta["classes"]),
        notes="stratified 70/15/15 split of the paper's code, random_state 42; no feature scaling; binary (one "
              "logit, BCE)",
    )
