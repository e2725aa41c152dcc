"""The stored results of a sweep folder, as the analysis and the report see them.

The tables come from ``dstbench collect`` (``results.parquet``, ``metrics.parquet``); when they are missing or
older than the run folders, `load_results` collects (and writes them) again first. Mask and probe files are read per run through
`dstbench.store`. Nothing here imports training code.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dstbench.analysis.aggregate import mode_of
from dstbench.errors import UserError
from dstbench.store import RUNS, SUMMARY, RunDir, iter_runs, read_json, results_folder
from dstbench.vocab import ARM, OLD_ARM, SWEEPS, record_arm
from dstbench.vocab import METRICS_TABLE as METRICS_FILE
from dstbench.vocab import RESULTS_TABLE as RESULTS_FILE

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
        """Runs the experiment lists (in its sweep file or its table rows) that have not finished: run_id, arm,
        status ('failed', 'started' or 'pending') and, for failed runs, the reason from their summary."""
        listed = self.sweeps.get(experiment, {}).get("runs", [])
        rows = [{"run_id": r["run_id"], ARM: record_arm(r) or ""} for r in listed]
        if not rows and not self.runs.empty:
            table = self.runs[self.runs["experiment"] == experiment]
            rows = table[["run_id", ARM]].to_dict("records") if ARM in table else []
        out = pd.DataFrame(rows, columns=["run_id", ARM]).drop_duplicates("run_id")
        out["status"] = [self.run_dir(r).status() for r in out["run_id"]]
        out = out[out["status"] != "done"].reset_index(drop=True)
        out["reason"] = [str((self.run_dir(r).summary() or {}).get("reason") or "") if status == "failed" else ""
                         for r, status in zip(out["run_id"], out["status"], strict=True)]
        return out


def load_results(root: Path | str, *, refresh: bool = True) -> Results:
    """Read a results folder; with `refresh`, collect first where the tables are missing or out of date."""
    root = results_folder(root)
    sweeps = read_sweeps(root)
    if refresh and is_stale(root):
        runs, metrics = collect_tables(root)
    else:
        runs, metrics = _read_parquet(root / RESULTS_FILE), _read_parquet(root / METRICS_FILE)
    if OLD_ARM in runs and ARM not in runs:  # a table collected before the spec's groups were renamed arms
        runs = runs.rename(columns={OLD_ARM: ARM})
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
        content = read_json(path)
        if not isinstance(content, dict):
            raise UserError(f"sweep file {path} is not a JSON object; rerun the sweep to rewrite it")
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
    """Run `dstbench collect` and write the tables, so the next report need not collect again; on a folder this
    process may not write (another user's results, a read-only mount) the tables stay in memory."""
    from dstbench.experiments.tables import collect, write_tables

    runs, metrics = collect(root)
    try:
        write_tables(root, runs, metrics)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
    return runs, metrics


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's errors for a damaged file are of these kinds
        raise UserError(f"{path} is not a readable Parquet table ({exc}); delete it and run "
                        f"`dstbench collect {path.parent}` to write it again") from None
