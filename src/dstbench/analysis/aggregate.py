"""Which runs belong together, and their mean and spread over seeds.

A *condition* is everything that decides a run's result except its seed: runs of one condition are repeats, and
every number the paper reports is a mean +- std over them. What a figure draws along x, as lines and as panels is
read from which configuration fields actually vary, so an experiment mixing incomparable settings is split into
panels instead of being averaged together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from dstbench.config import EXECUTION_FIELDS, RunConfig

IDENTITY_FIELDS: tuple[str, ...] = tuple(f for f in RunConfig.model_fields if f not in EXECUTION_FIELDS)
# What is recorded during a run, not how it trains: two runs differing only here are repeats of one condition.
RECORD_FIELDS = frozenset(
    {"mask_snapshot_steps", "probe_steps", "probe_every", "probe_criteria", "probe_fractions"}
)
CONDITION_FIELDS: tuple[str, ...] = tuple(f for f in IDENTITY_FIELDS if f not in RECORD_FIELDS | {"seed"})
# Fields that mean nothing for a static sparse run (no updates) or for a dense one (no mask either).
STATIC_FREE = frozenset(
    {"prune", "grow", "update_period", "prune_fraction", "schedule", "end_step", "global_pruning",
     "regrow_just_pruned", "grow_init", "update_batch_size"}
)
DENSE_FREE = STATIC_FREE | {"density", "distribution", "erk_power", "dense_layers"}
MODES = ("dst", "static", "dense")
# Fields the paper's figures compare along an axis, as lines or as panels. Other differences (recipe fields such
# as epochs or lr) mean runs that must not be averaged together; reports keep them apart and say so.
COMPARED_FIELDS = frozenset(
    {"model", "dataset", "density", "prune", "grow", "update_period", "global_pruning", "schedule", "batch_size",
     "update_batch_size", "dropout", "input_dropout", "distribution", "erk_power", "prune_fraction", "end_step",
     "regrow_just_pruned", "grow_init", "dense_layers"}
)
# The paper's order of criteria (its tables 5-6), then the rest; criteria with parameters follow their base name.
CRITERION_ORDER = ("magnitude", "set", "mest", "reciprocal_sensitivity", "sensitivity", "snip", "random")


def free_fields(mode: str) -> frozenset[str]:
    """The fields a run of `mode` ignores: a baseline matches a panel whatever values it holds there."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    return {"dst": frozenset(), "static": STATIC_FREE, "dense": DENSE_FREE}[mode]


def varying_fields(df: pd.DataFrame, fields: Iterable[str] = CONDITION_FIELDS) -> list[str]:
    """The fields among `fields` that take more than one value in `df` (a missing value counts as one)."""
    return [f for f in fields if f in df.columns and df[f].nunique(dropna=False) > 1]


def independent_fields(df: pd.DataFrame, fields: Sequence[str]) -> list[str]:
    """`fields` without those whose value follows from the others in `df` (e.g. epochs or the update period set
    per model by a spec's cases): grouping by the result gives the same groups, and titles stay short.

    Model and dataset always stay; fields outside COMPARED_FIELDS are dropped before compared ones.
    """
    kept = list(fields)
    candidates = [f for f in fields if f not in ("model", "dataset")]
    for field in sorted(candidates, key=lambda f: f in COMPARED_FIELDS):
        others = [f for f in kept if f != field]
        if others and (df.groupby(others, dropna=False)[field].nunique(dropna=False) <= 1).all():
            kept.remove(field)
    return kept


def setting_fields(df: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """The condition fields that vary in `df` on their own (see `independent_fields`), less `exclude`: what
    tells panels, blocks and table rows apart."""
    excluded = set(exclude)
    return [f for f in independent_fields(df, varying_fields(df)) if f not in excluded]


def summarize(df: pd.DataFrame, value: str, by: Sequence[str]) -> pd.DataFrame:
    """Mean, sample std (nan for a single run), run count and seeds of `value` per combination of `by`."""
    columns = [*by, "mean", "std", "n", "seeds"]
    data = df.dropna(subset=[value]) if value in df.columns else df.iloc[0:0]
    if data.empty:
        return pd.DataFrame(columns=columns)
    grouped = data.groupby(list(by), dropna=False, sort=True) if by else [((), data)]
    rows = []
    for key, group in grouped:
        key = key if isinstance(key, tuple) else (key,)
        values = group[value].to_numpy(float)
        seeds = tuple(sorted(group["seed"].tolist())) if "seed" in group else ()
        rows.append(
            {**dict(zip(by, key, strict=True)), "mean": float(values.mean()),
             "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"), "n": len(values),
             "seeds": seeds}
        )
    return pd.DataFrame(rows, columns=columns)


def matching(df: pd.DataFrame, values: dict[str, object], ignore: Iterable[str] = ()) -> pd.DataFrame:
    """Rows of `df` equal to `values` on every field not in `ignore` (missing values match missing values)."""
    keep = np.ones(len(df), dtype=bool)
    ignored = set(ignore)
    for field, wanted in values.items():
        if field in ignored or field not in df.columns:
            continue
        column = df[field]
        keep &= column.isna().to_numpy() if _is_missing(wanted) else (column == wanted).to_numpy()
    return df[keep]


def loss_gap(metrics: pd.DataFrame) -> pd.DataFrame:
    """Validation minus training loss per run and epoch (fig. 4): how far the model overfits."""
    missing = {"run_id", "epoch", "train_loss", "val_loss"} - set(metrics.columns)
    if missing:
        raise ValueError(f"metrics lack the columns {sorted(missing)} needed for the loss gap")
    out = metrics[["run_id", "epoch"]].copy()
    out["loss_gap"] = metrics["val_loss"] - metrics["train_loss"]
    return out


def curves(metrics: pd.DataFrame, runs: pd.DataFrame, value: str, by: Sequence[str]) -> pd.DataFrame:
    """Mean and std over seeds of a per-epoch `value` (e.g. val_acc, loss_gap) per combination of `by` and epoch."""
    if value not in metrics.columns:
        raise ValueError(f"metrics have no column {value!r}; they have {sorted(metrics.columns)}")
    keys = [c for c in by if c in runs.columns]
    joined = metrics[["run_id", "epoch", value]].merge(runs[["run_id", "seed", *keys]].drop_duplicates("run_id"),
                                                      on="run_id")
    return summarize(joined, value, [*keys, "epoch"])


def sort_criteria(names: Iterable[str]) -> list[str]:
    """Criteria in the paper's order; unknown ones alphabetically after; "mest:lam=0.5" sorts by its number."""
    return sorted(set(names), key=_criterion_key)


def criterion_parameters(name: str) -> tuple[str, dict[str, str]]:
    """Split "mest:lam=0.5" into ("mest", {"lam": "0.5"}); a plain name has no parameters."""
    base, _, params = name.partition(":")
    pairs = [p.split("=", 1) for p in params.split(",") if p]
    bad = [p for p in pairs if len(p) != 2]
    if bad:
        raise ValueError(f"criterion {name!r}: parameters must be key=value, got {['='.join(b) for b in bad]}")
    return base, {k.strip(): v.strip() for k, v in pairs}


def _criterion_key(name: str) -> tuple:
    base, params = criterion_parameters(name)
    known = CRITERION_ORDER.index(base) if base in CRITERION_ORDER else len(CRITERION_ORDER)
    numbers = []
    for key, value in sorted(params.items()):
        try:
            numbers.append((key, float(value), ""))
        except ValueError:
            numbers.append((key, float("inf"), value))
    return (known, base, len(params) > 0, numbers)


def mode_of(row: pd.Series) -> str:
    """The run's mode, from the column when present (results.parquet has it) or from its density and period."""
    if "mode" in row and isinstance(row["mode"], str):
        return row["mode"]
    if float(row["density"]) >= 1.0:
        return "dense"
    return "static" if int(row["update_period"]) == 0 else "dst"


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
