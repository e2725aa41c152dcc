"""OpenML's file formats for a dense numeric table with one class column: Parquet, ARFF and CSV.

All three become the same thing: a float32 feature matrix (columns in file order, the target removed) and int64
labels 0..k-1 in the order of the target's declared values (ARFF) or its sorted distinct values (Parquet, CSV).
Missing values are an error naming the file: the paper's Higgs has none, and silently imputing would change it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from dstbench.data.errors import DataFormatError

_ATTRIBUTE = re.compile(r"@attribute\s+('(?:[^']|\\')*'|\"[^\"]*\"|\S+)\s+(.+)", re.IGNORECASE)
_NUMERIC_TYPES = {"numeric", "real", "integer"}


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _arff_header(path: Path) -> tuple[list[str], dict[str, list[str]], int]:
    """Attribute names, the declared values of nominal attributes, and the line number where @data starts."""
    names: list[str] = []
    nominal: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.strip()
            lower = stripped.lower()
            if not stripped or stripped.startswith("%") or lower.startswith("@relation"):
                continue
            if lower.startswith("@data"):
                return names, nominal, number
            match = _ATTRIBUTE.match(stripped)
            if not match:
                raise DataFormatError(f"{path}:{number}: not an ARFF header line: {stripped[:80]!r}")
            name, kind = _unquote(match.group(1)), match.group(2).strip()
            if kind.startswith("{"):
                nominal[name] = [_unquote(v) for v in kind.strip("{}").split(",")]
            elif kind.lower() not in _NUMERIC_TYPES:
                raise DataFormatError(f"{path}:{number}: attribute {name!r} has type {kind!r}; only numeric and "
                                      "nominal attributes are supported")
            names.append(name)
    raise DataFormatError(f"{path}: no @data section (not an ARFF file, or truncated)")


def read_arff(path: Path) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """A dense ARFF file as a data frame (nominal columns as strings) and the nominal attributes' values."""
    names, nominal, data_line = _arff_header(path)
    try:
        frame = pd.read_csv(
            path, skiprows=data_line, header=None, names=names, comment="%", quotechar="'",
            skipinitialspace=True, na_values=["?"], keep_default_na=False,
            dtype={name: str for name in nominal}, on_bad_lines="error",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataFormatError(f"{path}: malformed ARFF data section ({exc})") from exc
    if len(frame) and isinstance(frame.iloc[0, 0], str) and frame.iloc[0, 0].startswith("{"):
        raise DataFormatError(f"{path}: sparse ARFF is not supported")
    return frame, nominal


def read_table(path: Path) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Any of the three formats, chosen by suffix; the second value holds ARFF's declared nominal values."""
    suffix = path.suffix.lower()
    try:
        if suffix in {".pq", ".parquet"}:
            return pd.read_parquet(path), {}
        if suffix == ".csv":
            return pd.read_csv(path), {}
    except Exception as exc:  # pyarrow and the CSV parser raise many types for a damaged file
        raise DataFormatError(f"{path}: unreadable {suffix[1:]} file ({exc})") from exc
    if suffix == ".arff":
        return read_arff(path)
    raise DataFormatError(f"{path}: unknown table format {suffix!r}; expected .parquet/.pq, .arff or .csv")


def features_and_labels(
    frame: pd.DataFrame, target: str, source: str, declared: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """float32 features, int64 labels and the class names, from a frame and the name of its target column."""
    if target not in frame.columns:
        raise DataFormatError(f"{source}: no target column {target!r}; columns are {list(frame.columns)}")
    features = frame.drop(columns=[target])
    try:
        x = features.to_numpy(dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"{source}: non-numeric feature columns ({exc})") from exc
    column = frame[target]
    if np.isnan(x).any() or column.isna().any():
        raise DataFormatError(f"{source}: missing values; the loader expects a complete table")
    values = column.astype(str).str.strip()
    classes = declared if declared is not None else sorted(values.unique(), key=_numeric_first)
    codes = pd.Categorical(values, categories=classes).codes
    if (codes < 0).any():
        unknown = sorted(set(values[codes < 0]))[:5]
        raise DataFormatError(f"{source}: target values {unknown} are not among the declared classes {classes}")
    return x, codes.astype(np.int64), [str(c) for c in classes]


def _numeric_first(value: str) -> tuple[int, float | str]:
    # "0" < "1" < "10" numerically, so that 0/1 targets become labels 0/1 however the file spells them
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)
