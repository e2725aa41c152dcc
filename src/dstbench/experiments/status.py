"""`dstbench status`: where every spec of a sweep folder stands (done / running / failed / pending)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dstbench import store
from dstbench.claims import STALE_AFTER
from dstbench.experiments.sweep import SWEEPS, Counts, count_states
from dstbench.vocab import FAILED

UNLISTED = "(no sweep)"


@dataclass(frozen=True)
class SpecStatus:
    spec: str
    counts: Counts
    failed: dict[str, str]  # run_id -> reason


def _records(out: Path) -> dict[str, list[str]]:
    folder = out / SWEEPS
    records = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = store.read_json(path)
        records[record["spec"]] = [entry["run_id"] for entry in record.get("runs", [])]
    return records


def sweep_status(out: Path | str, stale_after: float = STALE_AFTER) -> list[SpecStatus]:
    """One entry per recorded spec, plus one for run folders no spec lists (e.g. from `dstbench train`)."""
    out = store.results_folder(out)
    records = _records(out)
    listed = {run_id for run_ids in records.values() for run_id in run_ids}
    unlisted = [run.run_id for run in store.iter_runs(out) if run.run_id not in listed]
    if unlisted:
        records[UNLISTED] = unlisted
    result = []
    for spec, run_ids in records.items():
        failed = {}
        for run_id in run_ids:
            run = store.RunDir(out / store.RUNS / run_id)
            if run.status() == FAILED:
                failed[run_id] = str((run.summary() or {}).get("reason"))
        result.append(SpecStatus(spec, count_states(out, run_ids, stale_after), failed))
    return result


def format_status(statuses: list[SpecStatus], show_failed: bool = False) -> str:
    """A plain-text table, and the failed runs with their reasons if asked."""
    header = ("spec", "total", "done", "running", "failed", "pending")
    rows = [header] + [
        (s.spec, *(str(getattr(s.counts, k)) for k in ("total", "done", "running", "failed", "pending")))
        for s in statuses
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    if show_failed:
        for s in statuses:
            for run_id, reason in s.failed.items():
                lines.append(f"failed  {s.spec}  {run_id}  {reason}")
    return "\n".join(lines)
