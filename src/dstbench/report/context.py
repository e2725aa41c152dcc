"""What a report section works with: one experiment's finished runs, its options, where files go, and the items
(figures, tables, notes) it produces. Also the grouping every performance figure shares: DST runs split into
panels by the fields that vary, each panel joined by the static and dense baselines that match it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dstbench.analysis.aggregate import (
    CONDITION_FIELDS,
    free_fields,
    matching,
    setting_fields,
    sort_criteria,
)
from dstbench.analysis.results import Results
from dstbench.analysis.structure import PanelKey
from dstbench.report import tables
from dstbench.report.style import colour, criterion_label

DROPOUT_COLOUR = "#555555"


@dataclass(frozen=True)
class FigureItem:
    title: str
    caption: str
    paths: tuple[Path, ...]  # PNG first, then SVG


@dataclass(frozen=True)
class TableItem:
    table: tables.Table
    paths: tuple[Path, ...]  # CSV, LaTeX
    note: str = ""
    collapsed: bool = False  # long reference tables start folded


@dataclass(frozen=True)
class Note:
    """Something the section could not compute, and why."""

    text: str


Item = FigureItem | TableItem | Note


@dataclass
class Context:
    results: Results
    experiment: str
    runs: pd.DataFrame
    options: dict[str, Any]
    out: Path
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.experiment) or "experiment"

    def option(self, kind: str, name: str, default: Any = None) -> Any:
        """A report option: per kind (``{"update_period": {"metric": ...}}``) first, then section-wide."""
        per_kind = self.options.get(kind)
        if isinstance(per_kind, dict) and name in per_kind:
            return per_kind[name]
        return self.options.get(name, default)

    def metrics(self) -> pd.DataFrame:
        """Per-epoch metrics of this experiment's finished runs."""
        if "metrics" not in self.cache:
            all_metrics = self.results.metrics
            if all_metrics.empty or "run_id" not in all_metrics:
                self.cache["metrics"] = pd.DataFrame(columns=["run_id", "epoch"])
            else:
                self.cache["metrics"] = all_metrics[all_metrics["run_id"].isin(set(self.runs["run_id"]))]
        return self.cache["metrics"]

    def stem(self, name: str) -> Path:
        return self.out / "figures" / self.slug / name

    def table(self, name: str, table: tables.Table, note: str = "", collapsed: bool = False) -> TableItem:
        paths = tables.write(table, self.out / "tables" / self.slug / name)
        return TableItem(table, tuple(paths), note, collapsed)


def with_methods(runs: pd.DataFrame) -> pd.DataFrame:
    """Add a `method` column: the criterion for DST runs, "static", or "dense" / "dense:p=<dropout>"."""
    def method(row: pd.Series) -> str:
        if row["mode"] == "dst":
            return str(row["prune"])
        if row["mode"] == "dense" and float(row.get("dropout", 0.0) or 0.0) > 0:
            return f"dense:p={row['dropout']:g}"
        return str(row["mode"])

    return runs.assign(method=[method(row) for _, row in runs.iterrows()]) if not runs.empty else \
        runs.assign(method=pd.Series(dtype=str))


def method_label(method: str) -> str:
    if method == "static":
        return "Static"
    if method == "dense":
        return "Dense"
    if method.startswith("dense:p="):
        return f"Dense (p={method.split('=', 1)[1]})"
    return criterion_label(method)


def method_colour(method: str) -> str:
    if method.startswith("dense:"):
        return DROPOUT_COLOUR
    return colour(method)


def method_order(methods: Any) -> list[str]:
    """Criteria in the paper's order, then static, then dense variants."""
    methods = set(methods)
    baselines = sorted((m for m in methods if m == "static" or m.startswith("dense")), key=lambda m: (m != "static", m))
    return sort_criteria(methods - set(baselines)) + baselines


def panel_groups(runs: pd.DataFrame, exclude: tuple[str, ...]) -> Iterator[tuple[PanelKey, pd.DataFrame]]:
    """DST runs per panel (the varying fields not in `exclude`), each with its matching baselines added.

    A baseline matches a panel when it agrees on every field fixed within the panel that its mode does not
    ignore (static runs ignore growth, criterion, update period...; dense runs also density and dropout, input
    dropout included, which labels them instead). Runs carry a `method` column.
    """
    runs = with_methods(runs)
    dst = runs[runs["mode"] == "dst"]
    fields = setting_fields(dst, exclude)
    grouped = dst.groupby(fields, dropna=False, sort=True) if fields else [((), dst)] if len(dst) else []
    for key, group in grouped:
        key = key if isinstance(key, tuple) else (key,)
        fixed = {f: group[f].iloc[0] for f in CONDITION_FIELDS
                 if f in group and f not in exclude and group[f].nunique(dropna=False) == 1}
        parts = [group]
        for mode in ("static", "dense"):
            ignore = free_fields(mode) | ({"dropout", "input_dropout"} if mode == "dense" else set())
            parts.append(matching(runs[runs["mode"] == mode], fixed, ignore=ignore))
        yield tuple(zip(fields, key, strict=True)), pd.concat(parts, ignore_index=True)


def counts_caption(n: np.ndarray | list[int]) -> str:
    """'3 runs per point' or '2–5 runs per point (seeds)'."""
    values = [int(v) for v in np.ravel(n) if int(v) > 0]
    if not values:
        return "no runs"
    low, high = min(values), max(values)
    return f"{low} run{'s' if low != 1 else ''} per point" if low == high else f"{low}–{high} runs per point"
