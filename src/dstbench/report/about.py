"""What a report section shows, said at its top: the spec's description and the paper figures it reproduces, the
models and data sets, the settings that vary and those held fixed; and the sections' order (the paper's).

Read from the runs themselves (and the sweep record), so the text cannot drift from what was trained.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from dstbench.analysis.aggregate import CONDITION_FIELDS, sort_criteria, varying_fields
from dstbench.analysis.results import Results
from dstbench.report.style import criterion_label, value_label

# Settings worth naming when fixed, in the order a reader looks for them, each with how to say it ({} is the value
# or values); the rest of the recipe is in the runs' config.json.
HEADLINE = {"density": "density {}", "update_period": "update period Δt = {} steps", "prune": "criterion {}",
            "grow": "{} growth", "prune_fraction": "prune fraction ρ = {}", "schedule": "{} prune-fraction schedule",
            "epochs": "{} epochs", "batch_size": "batch size {}", "lr": "learning rate {}",
            "distribution": "{} layer densities", "global_pruning": "{}", "update_full_layers": "{}"}
# How a setting that varies is named before its values.
VARYING = {"prune": "criterion", "grow": "growth", "update_period": "update period Δt (steps)",
           "prune_fraction": "prune fraction ρ", "schedule": "prune-fraction schedule", "lr": "learning rate",
           "distribution": "layer densities", "global_pruning": "pruning", "update_full_layers": "full layers"}


def paper_figures(results: Results, experiment: str) -> str:
    """The spec's ``[report] paper`` option: which of the paper's figures or tables the section reproduces."""
    return str(results.options(experiment).get("paper") or "")


def paper_order(results: Results, experiments: list[str]) -> list[str]:
    """Experiments in the paper's order (by the first figure number their ``paper`` option names; tables after
    figures), those naming none after them, each group keeping its given order."""
    def key(name: str) -> tuple[int, int, int]:
        found = re.search(r"(fig\w*|table)\.?\s*(\d+)", paper_figures(results, name), re.I)
        if not found:
            return (1, 0, 0)
        return (0, int(found.group(1).lower().startswith("table")), int(found.group(2)))

    return sorted(experiments, key=key)  # stable


def describe(results: Results, experiment: str, runs: pd.DataFrame) -> list[str]:
    """Lines saying what the section shows; `runs` are its finished runs."""
    lines = []
    description = str(results.sweeps.get(experiment, {}).get("description") or "")
    if description:
        lines.append(description.rstrip(".") + ".")
    paper = paper_figures(results, experiment)
    if paper:
        lines.append(f"Paper: {paper}.")
    if runs.empty:
        return lines
    cases = runs[["model", "dataset"]].drop_duplicates().sort_values(["model", "dataset"])
    lines.append("Models and data: " + "; ".join(
        f"{value_label('model', m)} on {value_label('dataset', d)}" for m, d in cases.itertuples(index=False)) + ".")
    dst = runs[runs["mode"] == "dst"]
    if dst.empty:
        return lines
    varying = [f for f in varying_fields(dst, CONDITION_FIELDS) if f not in ("model", "dataset")]
    per_case = [f for f in varying if _follows_case(dst, f)]
    shown = [f for f in varying if f not in per_case]
    seeds = sorted(runs["seed"].unique()) if "seed" in runs else []
    parts = [f"{VARYING.get(f, f)} {_values(dst, f)}" for f in shown]
    if len(seeds) > 1:
        parts.append(f"{len(seeds)} seeds")
    lines.append("Varies: " + ("; ".join(parts) if parts else "nothing but the model and data") + ".")
    fixed = [text.format(_values(dst, f)) for f, text in HEADLINE.items()
             if f in dst and f not in varying and dst[f].notna().any()]
    fixed += [HEADLINE[f].format(_per_case(dst, f)) for f in per_case if f in HEADLINE]
    if fixed:
        lines.append("Fixed: " + "; ".join(fixed) + ".")
    baselines = [name for mode, name in (("static", "static sparse (same densities, no updates)"),
                                         ("dense", "dense")) if (runs["mode"] == mode).any()]
    if baselines:
        lines.append("Baselines: " + " and ".join(baselines) + ".")
    return lines


def _follows_case(df: pd.DataFrame, field: str) -> bool:
    """True when the field's value is set per model and data set (e.g. epochs per case), not varied within."""
    return bool((df.groupby(["model", "dataset"])[field].nunique(dropna=False) <= 1).all())


def _values(df: pd.DataFrame, field: str) -> str:
    values = [v for v in df[field].dropna().unique()]
    if field == "prune":
        return ", ".join(criterion_label(str(v)) for v in sort_criteria(values))
    if field == "distribution":
        return ", ".join(str(v).upper() if str(v) == "erk" else str(v) for v in sorted(values, key=str))
    if field in ("grow", "schedule"):
        return ", ".join(str(v) for v in sorted(values, key=str))
    if field in ("global_pruning", "update_full_layers"):
        return ", ".join(value_label(field, v) for v in sorted(values))
    return ", ".join(_number(v) for v in sorted(values))


def _per_case(df: pd.DataFrame, field: str) -> str:
    cases = df.groupby(["model", "dataset"], sort=True)[field].first()
    return ", ".join(f"{_values(df[(df['model'] == m) & (df['dataset'] == d)], field)} "
                     f"({value_label('model', m)} / {value_label('dataset', d)})" for (m, d) in cases.index)


def _number(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)
