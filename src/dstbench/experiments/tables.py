"""`dstbench collect`: every run folder of a sweep folder -> two Parquet tables the analysis reads.

``results.parquet``: one row per (experiment, run) with the run's identity fields and its summary;
``metrics.parquet``: one row per run and epoch. Fast enough for tens of thousands of runs: files are read by a
thread pool, summaries parsed with orjson when it is installed, and all metrics lines parsed in one pass by
pyarrow's JSON reader (which also reads the NaN/Infinity that a diverged run writes).
"""

from __future__ import annotations

import dataclasses
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
from dstbench.vocab import (
    ARM,
    DONE,
    GROUP_KEYS,
    METRICS_TABLE,
    SWEEPS,
    metrics_row_problem,
    record_arm,
    run_mode,
    status_of,
    summary_problem,
)
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

    @property
    def epochs(self) -> int | None:
        """How many metrics rows a finished run's summary promises (None: not finished, any count will do)."""
        return int(self.summary["epochs"]) if self.summary is not None and status_of(self.summary) == DONE else None


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
        problem = summary_problem(summary)
        if problem is not None:
            return _Run(folder.name, None, None, b"", damaged=f"not a valid summary: {problem}")
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
    """All runs' metrics lines parsed at once; rows carry their run_id. A run whose metrics.jsonl is damaged (a
    line that is not a metrics row, or epochs other than 1..N once each, N from a finished run's summary) is left
    out of the table, with a warning naming the file and what is wrong."""
    import pyarrow as pa

    try:
        table = _parse_all(runs)
    except (pa.ArrowInvalid, ValueError):  # a line that is not a metrics row: find its run, then the line
        runs, broken = _without_bad_lines(runs, {r.run_id for r in _failing(runs)})
        table = _parse_all(runs)
    else:
        broken = {}
    table, damaged = _check_epochs(runs, table)
    damaged.update(broken)
    if damaged:
        log.warning("%d runs' metrics left out of %s: their %s is damaged (restore the file, or delete the run's "
                    "%s to train it again):\n%s", len(damaged), METRICS_TABLE, store.METRICS, store.SUMMARY,
                    "\n".join(f"  {store.RUNS}/{run_id}/{store.METRICS}: {why}"
                              for run_id, why in sorted(damaged.items())))
    return table


def _parse_all(runs: list[_Run]) -> pd.DataFrame:
    """All runs' metrics lines as one table with their run_id; see `_arrow_table` for what raises."""
    import pyarrow as pa

    table = _arrow_table(runs)
    if table is None:
        return pd.DataFrame({"run_id": pd.Series(dtype=str), "epoch": pd.Series(dtype="int64")})
    counts = [r.metrics.count(b"\n") for r in runs if r.metrics]
    ids = [r.run_id for r in runs if r.metrics]
    run_ids = pa.array(np.repeat(np.array(ids, dtype=object), counts), type=pa.string())
    return table.add_column(0, "run_id", run_ids).to_pandas()


def _arrow_table(runs: list[_Run]) -> Any:
    """One pass of pyarrow's JSON reader over the runs' lines (None: no lines); raises ArrowInvalid (or
    ValueError when the lines do not come out one row each with an integer epoch) on a line that is not a flat
    JSON object of numbers."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    data = b"".join(r.metrics for r in runs)
    if not data:
        return None
    table = pa_json.read_json(io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=min(_BLOCK, len(data))))
    if table.num_rows != data.count(b"\n"):
        raise ValueError("blank lines in metrics")
    if "epoch" not in table.column_names or not pa.types.is_integer(table.schema.field("epoch").type):
        raise ValueError("a metrics line without an integer epoch")
    return table


def _failing(runs: list[_Run]) -> list[_Run]:
    """The runs whose lines pyarrow cannot read, found by halving (a few passes over the data, not one parse per
    line); all of a part whose halves read alone but not together (a key of another type in each)."""
    import pyarrow as pa

    try:
        _arrow_table(runs)
        return []
    except (pa.ArrowInvalid, ValueError):
        if len(runs) == 1:
            return runs
    half = len(runs) // 2
    return _failing(runs[:half]) + _failing(runs[half:]) or runs


def _without_bad_lines(runs: list[_Run], suspects: set[str]) -> tuple[list[_Run], dict[str, str]]:
    """The runs, those of `suspects` holding a line that is no metrics row without their metrics, and why, by
    run id. Every line of the suspects is parsed here."""
    kept, broken = [], {}
    for run in runs:
        for number, line in enumerate(run.metrics.splitlines() if run.run_id in suspects else (), start=1):
            try:
                problem = metrics_row_problem(json.loads(line))
            except ValueError as exc:
                problem = f"not JSON ({exc})"
            if problem is not None:
                broken[run.run_id] = f"line {number} {problem}"
                run = dataclasses.replace(run, metrics=b"")
                break
        kept.append(run)
    return kept, broken


def _check_epochs(runs: list[_Run], table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """`table` without the rows of runs whose epochs are not 1..N once each in order (N: a finished run's
    summary epochs; else however many rows it has), and why each was dropped, by run id. Vectorised: one
    comparison of the epoch column with the epochs it should hold."""
    counts = np.array([r.metrics.count(b"\n") for r in runs], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    expected = np.arange(int(counts.sum())) - np.repeat(starts, counts) + 1
    epochs = table["epoch"].to_numpy() if len(table) else expected
    owner = np.repeat(np.arange(len(runs)), counts)  # the run of each row
    wrong = np.bincount(owner[epochs != expected], minlength=len(runs))
    damaged = {}
    for index in np.flatnonzero(wrong > 0).tolist() + [i for i, r in enumerate(runs) if r.epochs is not None
                                                        and r.epochs != counts[i]]:
        run = runs[index]
        if run.run_id not in damaged:
            damaged[run.run_id] = _epoch_problem(epochs[starts[index]:starts[index] + counts[index]].tolist(),
                                                 run.epochs)
    if damaged:
        table = table[~table["run_id"].isin(damaged)].reset_index(drop=True)
    return table, damaged


def _epoch_problem(epochs: list[int], want: int | None) -> str:
    """What is wrong with a run's epochs: "empty", "epochs 4, 5 missing", "epoch 2 twice", "out of order"."""
    if not epochs:
        return f"empty, but the summary has {want} epochs"
    if any(e != e for e in epochs):  # NaN: a line without an epoch
        return f"{sum(e != e for e in epochs)} lines without an epoch"
    epochs = [int(e) for e in epochs]
    last = want if want is not None else max(epochs)
    missing = sorted(set(range(1, last + 1)) - set(epochs))
    twice = sorted({e for e in epochs if epochs.count(e) > 1})
    extra = sorted(set(epochs) - set(range(1, last + 1)))
    parts = [f"epoch{'s' if len(v) > 1 else ''} {_listed(v)} {what}"
             for v, what in ((missing, "missing"), (twice, "more than once"), (extra, "beyond the last"))
             if v]
    shown = "; ".join(parts) or "epochs out of order"
    return f"{shown} (the summary has {want} epochs)" if want is not None else f"{shown} (an unfinished run)"


def _listed(values: list[int]) -> str:
    return ", ".join(map(str, values[:5])) + (f" and {len(values) - 5} more" if len(values) > 5 else "")


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


def write_collected(out: Path | str, *, include_incomplete: bool = False,
                    to: Path | str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collect and write ``results.parquet`` and ``metrics.parquet`` (atomically) into `to` (default: `out`, the
    sweep folder); returns the tables."""
    results, metrics = collect(out, include_incomplete=include_incomplete)
    if to is not None:
        Path(to).mkdir(parents=True, exist_ok=True)
    write_tables(to if to is not None else out, results, metrics)
    return results, metrics


def write_tables(out: Path | str, results: pd.DataFrame, metrics: pd.DataFrame) -> None:
    """Write the two tables into `out` (atomically)."""
    out = Path(out)
    for frame, name in ((results, RESULTS), (metrics, METRICS_TABLE)):
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        store.atomic_write_bytes(out / name, buf.getvalue())
