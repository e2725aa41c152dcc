"""The stored results of a sweep folder, as the analysis and the report see them.

The tables come from ``dstbench collect`` (``results.parquet``, ``metrics.parquet``); when they are missing or
older than the run folders, `load_results` collects (and writes them) again first. Mask and probe files are read per run through
`dstbench.store`. Nothing here imports training code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dstbench.analysis.aggregate import mode_of
from dstbench.errors import UserError
from dstbench.store import RUNS, SUMMARY, RunDir, iter_runs, read_json
from dstbench.vocab import METRICS_TABLE as METRICS_FILE
from dstbench.vocab import RESULTS_TABLE as RESULTS_FILE
from dstbench.vocab import SWEEPS

UNLISTED = "runs"  # the experiment of run folders no sweep file lists (e.g. from `dstbench train`)


@dataclass
class Results:
    """Every finished or failed run of a folder (one row per experiment and run) and per-epoch metrics."""

    root: Path
    runs: pd.DataFrame
    metrics: pd.DataFrame
    sweeps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run_dir(self, run_id: str) -> RunDir:
        return RunDir(self.root / RUNS / run_id)

    def experiments(self) -> list[str]:
        """Experiments with at least one row in the table, then those only a sweep file names."""
        names = list(dict.fromkeys(self.runs["experiment"])) if "experiment" in self.runs else []
        return names + [name for name in sorted(self.sweeps) if name not in names]

    def done(self, experiment: str) -> pd.DataFrame:
        """The finished runs of one experiment."""
        if self.runs.empty:
            return self.runs
        rows = self.runs[self.runs["experiment"] == experiment]
        return rows[rows["status"] == "done"] if "status" in rows else rows

    def options(self, experiment: str) -> dict[str, Any]:
        """The spec's report options (``kinds`` and per-kind settings), or {} where the spec gives none."""
        return dict(self.sweeps.get(experiment, {}).get("report") or {})

    def not_done(self, experiment: str) -> pd.DataFrame:
        """Runs the experiment lists (in its sweep file or its table rows) that have not finished: run_id, group,
        status ('failed', 'started' or 'pending') and, for failed runs, the reason from their summary."""
        listed = self.sweeps.get(experiment, {}).get("runs", [])
        rows = [{"run_id": r["run_id"], "group": r.get("group", "")} for r in listed]
        if not rows and not self.runs.empty:
            table = self.runs[self.runs["experiment"] == experiment]
            rows = table[["run_id", "group"]].to_dict("records") if "group" in table else []
        out = pd.DataFrame(rows, columns=["run_id", "group"]).drop_duplicates("run_id")
        out["status"] = [self.run_dir(r).status() for r in out["run_id"]]
        out = out[out["status"] != "done"].reset_index(drop=True)
        out["reason"] = [str((self.run_dir(r).summary() or {}).get("reason") or "") if status == "failed" else ""
                         for r, status in zip(out["run_id"], out["status"], strict=True)]
        return out


def load_results(root: Path | str, *, refresh: bool = True) -> Results:
    """Read a results folder; with `refresh`, collect first where the tables are missing or out of date."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder {root} does not exist; run `dstbench sweep SPEC --out {root}`")
    sweeps = read_sweeps(root)
    if refresh and is_stale(root):
        runs, metrics = collect_tables(root)
    else:
        runs, metrics = _read_parquet(root / RESULTS_FILE), _read_parquet(root / METRICS_FILE)
    if not runs.empty and "mode" not in runs:
        runs = runs.assign(mode=[mode_of(row) for _, row in runs.iterrows()])
    if not runs.empty:
        runs = runs.assign(experiment=runs["experiment"].fillna(UNLISTED))
    return Results(root, runs, metrics, sweeps)


def read_sweeps(root: Path) -> dict[str, dict[str, Any]]:
    """{spec name: sweep file content} for every ``sweeps/*.json``."""
    folder = Path(root) / SWEEPS
    if not folder.is_dir():
        return {}
    sweeps = {}
    for path in sorted(folder.glob("*.json")):
        try:
            content = read_json(path)
        except json.JSONDecodeError as exc:
            raise UserError(f"sweep file {path} is not valid JSON ({exc}); rerun the sweep to rewrite it") from exc
        sweeps[str(content.get("spec", path.stem))] = content
    return sweeps


def is_stale(root: Path) -> bool:
    """True when run folders exist and the results table is missing or older than a run summary or a sweep
    file (which says what experiment a run belongs to)."""
    summaries = [p for p in (run.file(SUMMARY) for run in iter_runs(root)) if p.exists()]
    if not summaries:
        return False
    newest = max(p.stat().st_mtime for p in [*summaries, *(Path(root) / SWEEPS).glob("*.json")])
    table = Path(root) / RESULTS_FILE
    return not table.exists() or table.stat().st_mtime < newest


def collect_tables(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run `dstbench collect` (which also writes the tables, so the next report need not collect again)."""
    from dstbench.experiments import write_collected

    return write_collected(root)


def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()
