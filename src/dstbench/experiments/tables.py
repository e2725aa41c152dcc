"""`dstbench collect`: every run folder of a sweep folder -> two Parquet tables the analysis reads.

``results.parquet``: one row per (experiment, run) with the run's identity fields and its summary;
``metrics.parquet``: one row per run and epoch. Fast enough for tens of thousands of runs: files are read by a
thread pool, summaries parsed with orjson when it is installed, and all metrics lines parsed in one pass by
pyarrow's JSON reader (which also reads the NaN/Infinity that a diverged run writes).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dstbench import store
from dstbench.config import IDENTITY_FIELDS
from dstbench.vocab import ARM, GROUP_KEYS, METRICS_TABLE, SWEEPS, record_arm, run_mode, status_of
from dstbench.vocab import RESULTS_TABLE as RESULTS

# pyarrow parses JSON in blocks; big blocks cost far less per row than its 1 MB default.
_BLOCK = 64 << 20
log = logging.getLogger(__name__)
_ROW_KEYS = ("experiment", ARM, "run_id", "status", "mode")

try:
    import orjson

    def _loads(data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # NaN or Infinity in a diverged run's summary
            return json.loads(data)
except ImportError:
    _loads = json.loads


@dataclass(frozen=True)
class _Run:
    run_id: str
    summary: dict[str, Any] | None
    config: dict[str, Any] | None
    metrics: bytes
    damaged: str | None = None  # why summary.json exists but cannot be used


def _read_bytes(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _complete_lines(data: bytes | None) -> bytes:
    """The complete lines of a JSON-lines file (a line cut short by a killed writer is dropped)."""
    if not data:
        return b""
    return data[: data.rfind(b"\n") + 1]


def _read_run(folder: Path, include_incomplete: bool) -> _Run | None:
    raw = _read_bytes(folder / store.SUMMARY)
    summary = None
    if raw is not None:  # written atomically: a summary that does not parse is damaged, not half-written
        try:
            summary = _loads(raw)
        except ValueError as exc:
            return _Run(folder.name, None, None, b"", damaged=f"not valid JSON ({exc})")
        if not isinstance(summary, dict):
            return _Run(folder.name, None, None, b"", damaged=f"holds a JSON {type(summary).__name__}, not an object")
    done = summary is not None and status_of(summary) == "done"
    if not done and not include_incomplete:
        return None
    config = summary.get("config") if summary is not None else None
    if config is None:
        raw_config = _read_bytes(folder / store.CONFIG)
        if raw_config is None:
            return None  # an empty folder: nothing started yet
        config = _loads(raw_config)
    return _Run(folder.name, summary, config, _complete_lines(_read_bytes(folder / store.METRICS)))


def _memberships(out: Path) -> dict[str, list[tuple[str, str]]]:
    """run_id -> [(experiment, arm), ...] from the sweep records."""
    members: dict[str, list[tuple[str, str]]] = {}
    folder = out / SWEEPS
    if not folder.is_dir():
        return members
    for path in sorted(folder.glob("*.json")):
        record = store.read_json(path)
        for entry in record.get("runs", []):
            members.setdefault(entry["run_id"], []).append((record["spec"], record_arm(entry)))
    return members


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def _rows(run: _Run, members: list[tuple[str | None, str | None]]) -> Iterator[dict[str, Any]]:
    config = run.config or {}
    summary = run.summary or {}
    status = status_of(run.summary, started=True)
    mode = run_mode(config.get("density", 1.0), config.get("update_period", 0))
    row: dict[str, Any] = {"run_id": run.run_id, "status": status, "mode": mode}
    row.update({name: _cell(config.get(name)) for name in IDENTITY_FIELDS})
    for key, value in summary.items():
        if key == "group":  # the run group that trained it (None: solo)
            for part in GROUP_KEYS:
                row[f"run_group_{part}"] = value.get(part) if isinstance(value, dict) else None
            continue
        if key in ("status", "run_id") or not (value is None or isinstance(value, (int, float, str))):
            continue
        row[f"summary_{key}" if key in row else key] = value
    for experiment, arm in members:
        yield {"experiment": experiment, ARM: arm, **row}


def _metrics_table(runs: list[_Run]) -> pd.DataFrame:
    """All runs' metrics lines parsed at once; rows carry their run_id."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    chunks = [r.metrics for r in runs if r.metrics]
    if not chunks:
        return pd.DataFrame({"run_id": pd.Series(dtype=str)})
    counts = [r.metrics.count(b"\n") for r in runs if r.metrics]
    ids = [r.run_id for r in runs if r.metrics]
    data = b"".join(chunks)
    try:
        table = pa_json.read_json(io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=min(_BLOCK, len(data))))
    except pa.ArrowInvalid:
        return _metrics_line_by_line(runs)
    run_ids = pa.array(np.repeat(np.array(ids, dtype=object), counts), type=pa.string())
    return table.add_column(0, "run_id", run_ids).to_pandas()


def _metrics_line_by_line(runs: list[_Run]) -> pd.DataFrame:
    """The slow path, taken only when the fast one fails: finds and names the broken line."""
    rows = []
    for run in runs:
        for number, line in enumerate(run.metrics.splitlines(), start=1):
            try:
                rows.append({"run_id": run.run_id, **json.loads(line)})
            except ValueError as exc:
                raise ValueError(f"runs/{run.run_id}/{store.METRICS} line {number} is not JSON: {exc}") from None
    return pd.DataFrame(rows)


def _run_folders(out: Path) -> list[Path]:
    root = out / store.RUNS
    if not root.is_dir():
        return []
    return sorted(Path(e.path) for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def collect(out: Path | str, *, include_incomplete: bool = False, threads: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, metrics) DataFrames of every run folder under ``out/runs``; see the module docstring.

    Runs in no sweep record (e.g. from `dstbench train`) get experiment and arm None. Unfinished and failed
    runs are left out unless `include_incomplete`.
    """
    out = store.results_folder(out)
    members = _memberships(out)
    folders = _run_folders(out)
    batches = [folders[i::threads] for i in range(threads)]  # one task per thread: no per-file task overhead
    with ThreadPoolExecutor(max_workers=threads) as pool:
        read = pool.map(lambda batch: [_read_run(f, include_incomplete) for f in batch], batches)
        runs = sorted((r for batch in read for r in batch if r is not None), key=lambda r: r.run_id)
    damaged = [r for r in runs if r.damaged is not None]
    if damaged:
        log.warning("%d runs left out: their %s cannot be read (restore the file, or delete it to train the run "
                    "again):\n%s", len(damaged), store.SUMMARY,
                    "\n".join(f"  {store.RUNS}/{r.run_id}/{store.SUMMARY}: {r.damaged}" for r in damaged))
        runs = [r for r in runs if r.damaged is None]
    rows = [row for run in runs for row in _rows(run, members.get(run.run_id) or [(None, None)])]
    results = pd.DataFrame(rows, columns=_columns(rows))
    return results, _metrics_table(runs)


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    columns = dict.fromkeys((*_ROW_KEYS, *IDENTITY_FIELDS))
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def write_collected(out: Path | str, *, include_incomplete: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collect and write ``out/results.parquet`` and ``out/metrics.parquet`` (atomically); returns the tables."""
    results, metrics = collect(out, include_incomplete=include_incomplete)
    write_tables(out, results, metrics)
    return results, metrics


def write_tables(out: Path | str, results: pd.DataFrame, metrics: pd.DataFrame) -> None:
    """Write the two tables into `out` (atomically)."""
    out = Path(out)
    for frame, name in ((results, RESULTS), (metrics, METRICS_TABLE)):
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        store.atomic_write_bytes(out / name, buf.getvalue())
