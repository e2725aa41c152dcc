"""`dstbench sweep`: run what a spec asks for that is not done yet, on any executor, with a progress bar.

A sweep plans (expand the spec, see what is done), records the spec's run list in ``OUT/sweeps/<name>.json``,
starts workers (`executors`) and watches the run folders until they finish. Rerunning skips finished runs,
resumes interrupted ones and leaves failed ones alone unless asked (`retry_failed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dstbench import store, vocab
from dstbench.claims import STALE_AFTER, Owner, heartbeat_interval, live_claims, owner_gone
from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.experiments.selection import check_selection
from dstbench.experiments.spec import PlannedRun, Spec
from dstbench.experiments.worker import (
    DEFAULT_TRAINER,
    Hook,
    Trainer,
    WorkerJob,
    resolve_function,
    resolve_trainer,
    summary_signature,
)
from dstbench.train.grouping import DEFAULT_GROUP_SIZE, parse_group_size

SWEEPS = vocab.SWEEPS
_LOCK_WAIT = 30.0
log = logging.getLogger(__name__)


def run_status(run_dir: Path) -> str:
    """'done', 'failed' or 'pending' (not started, or started and not finished) from the run folder alone."""
    status = store.RunDir(run_dir).status()
    return vocab.PENDING if status == vocab.STARTED else status


@dataclass
class Counts:
    """How many runs are in each state."""

    done: int = 0
    running: int = 0
    failed: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        return self.done + self.running + self.failed + self.pending


def count_states(
    out: Path | str, run_ids: Sequence[str], stale_after: float = STALE_AFTER, final: dict[str, str] | None = None
) -> Counts:
    """done / running (a live claim) / failed / pending for these runs.

    `final` caches done runs between calls (a watcher reads each summary once, not once a second); failed runs
    are read again, since a sweep may be retrying them.
    """
    final = {} if final is None else final
    claims = live_claims(out, stale_after)
    counts = Counts()
    for run_id in run_ids:
        status = final.get(run_id) or run_status(Path(out) / store.RUNS / run_id)
        if status == "done":
            final[run_id] = status
        elif status == "pending" and run_id in claims:
            status = "running"
        setattr(counts, status, getattr(counts, status) + 1)
    return counts


@dataclass(frozen=True)
class SweepPlan:
    """A spec's runs (run id -> arm; None in a plan made without them), the ones this sweep selected, and which
    failures it will retry."""

    spec: Spec
    out: Path
    runs: dict[str, str] | None
    selected: list[PlannedRun]
    retry: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def plan_sweep(
    spec: Spec, out: Path | str, *, only: Mapping[str, Sequence[Any]] | None = None, retry_failed: bool = False,
    listing: bool = True,
) -> SweepPlan:
    """Expand the spec once, select (`only`) and note the failed runs to retry (with their summaries' identity).

    `listing`: also list every run of the spec (what `record_sweep` writes), which builds every config; without
    it (a dry run) the selection prunes the grid before configs are built.
    """
    out = Path(out)
    only = dict(only or {})
    runs, selected = spec.listing(only) if listing else (None, spec.expand(only))
    retry = {}
    if retry_failed:
        for run in selected:
            path = out / store.RUNS / run.run_id / store.SUMMARY
            if run_status(path.parent) == "failed":
                signature = summary_signature(path)
                if signature is not None:
                    retry[run.run_id] = signature
    return SweepPlan(spec, out, runs, selected, retry)


def plan_sweeps(
    specs: Sequence[Spec], out: Path | str, *, only: Mapping[str, Sequence[Any]] | None = None,
    retry_failed: bool = False, listing: bool = True,
) -> list[SweepPlan]:
    """`plan_sweep` for each spec; `only` must match some run of one of them."""
    if not specs:
        raise UserError("no spec to sweep: name at least one")
    names = [spec.name for spec in specs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"spec {', '.join(map(repr, twice))} named more than once: name each spec once")
    plans = [plan_sweep(spec, out, only=only, retry_failed=retry_failed, listing=listing) for spec in specs]
    check_selection(specs, [run for plan in plans for run in plan.selected], dict(only or {}))
    return plans


def sweep_record_path(out: Path | str, name: str) -> Path:
    return Path(out) / SWEEPS / f"{name}.json"


def record_sweep(plan: SweepPlan) -> Path:
    """Write ``OUT/sweeps/<spec>.json``: the spec's runs merged with any earlier record (nothing is dropped).

    Runs of an earlier version of the spec stay listed (their results are still results of that experiment);
    runs in both take the arm the current spec gives them. A lock file serializes concurrent sweeps.
    """
    path = sweep_record_path(plan.out, plan.spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _FileLock(path.with_name(path.name + ".lock")):
        try:
            old = store.read_json(path)
        except FileNotFoundError:
            old = {}
        assert plan.runs is not None, "a sweep records a plan made with listing=True"
        arms = {entry["run_id"]: vocab.record_arm(entry) for entry in old.get("runs", [])}
        arms.update(plan.runs)
        store.atomic_write_json(path, {
            "spec": plan.spec.name,
            "path": plan.spec.path,
            "description": plan.spec.description,
            "report": dict(plan.spec.report),
            "runs": [{"run_id": run_id, "arm": arm} for run_id, arm in arms.items()],
        })
    return path


class _FileLock:
    """An O_EXCL lock file that records its owner (host, pid, since when). It is held for milliseconds (a sweep
    record merged and written), so one whose owner is gone from this machine, or that is older than `_LOCK_WAIT`
    seconds, was left by a killed process and is broken at once; a wait of more than a second says what for."""

    def __init__(self, path: Path):
        self.path = path
        self._inode: int | None = None

    def __enter__(self) -> _FileLock:
        started = time.time()
        told = False
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder, since, inode = self._holder()
                left = _LOCK_WAIT - (time.time() - since)
                if inode is not None and (left <= 0 or (holder is not None and owner_gone(holder))):
                    why = "its process is gone" if left > 0 else f"it is {time.time() - since:.0f} s old"
                    log.warning("%s: broke a lock left by %s (%s)", self.path, _who(holder), why)
                    with contextlib.suppress(FileNotFoundError):
                        if os.stat(self.path).st_ino == inode:  # still the lock judged, not a new one
                            self.path.unlink()
                    continue
                if not told and time.time() - started > 1.0:
                    told = True
                    log.warning("%s: waiting for %s, which holds this lock; it is broken in %.0f s if not released "
                                "(delete the file if no dstbench process runs on this folder)", self.path,
                                _who(holder), max(left, 0.0))
                time.sleep(0.05)
                continue
            self._inode = os.fstat(fd).st_ino
            with os.fdopen(fd, "w") as f:
                json.dump({**dataclasses.asdict(Owner.current()), "since": time.time()}, f)
            return self

    def _holder(self) -> tuple[dict[str, Any] | None, float, int | None]:
        """The lock's owner record (None: unreadable, e.g. an older version's empty lock), since when it is held
        (its record, else the file's time), and its inode (None: released meanwhile)."""
        try:
            st = os.stat(self.path)
            with open(self.path, encoding="utf-8") as f:
                holder = json.load(f)
        except FileNotFoundError:
            return None, time.time(), None
        except (OSError, ValueError):
            return None, st.st_mtime, st.st_ino
        if not isinstance(holder, dict):
            return None, st.st_mtime, st.st_ino
        try:
            since = float(holder.get("since", st.st_mtime))
        except (TypeError, ValueError):
            since = st.st_mtime
        return holder, since, st.st_ino

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:  # ours, not one made after ours was broken
                self.path.unlink()


def _who(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "an unknown process (the lock file names none)"
    return f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}"


class Monitor:
    """Watches the selected runs' folders and claims; drives the progress bar from a background thread."""

    def __init__(self, out: Path, run_ids: Sequence[str], stale_after: float, show: bool, interval: float = 1.0):
        self.out = out
        self.run_ids = list(run_ids)
        self.stale_after = stale_after
        self.interval = interval
        self._final: dict[str, str] = {}
        self.counts = self.poll()
        self.initial_done = self.counts.done
        self._bar = None
        if show and self.run_ids:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=len(self.run_ids), initial=self.counts.done, unit="run", desc="runs",
                             dynamic_ncols=True, disable=None)  # None: no bar when stderr is not a terminal
            self._show()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="sweep-monitor")

    def poll(self) -> Counts:
        return count_states(self.out, self.run_ids, self.stale_after, self._final)

    def _show(self) -> None:
        if self._bar is None:
            return
        self._bar.n = self.counts.done
        self._bar.set_postfix(running=self.counts.running, failed=self.counts.failed, refresh=False)
        self._bar.refresh()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.counts = self.poll()
            self._show()

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.counts = self.poll()
        self._show()
        if self._bar is not None:
            self._bar.close()


@dataclass
class SweepResult:
    """Where the selected runs stand after the sweep, the failures' reasons and workers' problems."""

    spec: str
    counts: Counts
    started_done: int
    failures: dict[str, str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.counts.failed == 0 and not self.problems


def run_sweep(
    spec: Spec | Sequence[Spec],
    out: Path | str,
    *,
    workers: int = 1,
    executor: str = "local",
    retry_failed: bool = False,
    only: Mapping[str, Sequence[Any]] | None = None,
    trainer: str | Trainer = DEFAULT_TRAINER,
    execution: Mapping[str, Any] | None = None,
    stale_after: float = STALE_AFTER,
    heartbeat_s: float | None = None,
    executor_options: Mapping[str, Any] | None = None,
    wait: bool = True,
    progress: bool = True,
    hooks: Sequence[str | Hook] = (),
    group_size: int | str | None = None,
) -> SweepResult:
    """Run the spec's runs that are not done into `out`; see the module docstring.

    Several specs sweep as one pool of runs: each keeps its own record (``OUT/sweeps/<name>.json``), the workers
    claim from all of them (a run two specs share trains once), and groups may join runs of different specs, so
    no worker idles at the end of one spec while another still has runs.
    `workers`: processes (local; 0 = in this process), array tasks (submitit) or tasks (ray). `execution` sets
    execution-only fields on every run (data_root, device, num_threads, progress); it never changes run ids.
    `hooks` ("module:function") are called after each run a worker finishes, with its folder and summary.
    `group_size` fuses up to that many compatible runs into one run group (policy: `dstbench.train.grouping`); "auto" (the
    default, unless the spec's ``[execution]`` says otherwise) fuses where it pays, 1 trains every run solo.
    """
    from dstbench.experiments.executors import execute

    specs = (spec,) if isinstance(spec, Spec) else tuple(spec)
    group_size, execution = sweep_settings(
        specs, workers=workers, executor=executor, executor_options=executor_options, wait=wait, trainer=trainer,
        hooks=hooks, stale_after=stale_after, heartbeat_s=heartbeat_s, group_size=group_size, execution=execution)
    out = Path(out)
    plans = plan_sweeps(specs, out, only=only, retry_failed=retry_failed)
    for plan in plans:
        record_sweep(plan)
    retry = {run_id: signature for plan in plans for run_id, signature in plan.retry.items()}
    job = WorkerJob(  # an absolute folder: cluster workers may start elsewhere
        out=str(out.absolute()), specs=specs, only=tuple((k, tuple(v)) for k, v in (only or {}).items()),
        trainer=trainer, retry=retry, execution=execution, stale_after=stale_after, heartbeat_s=heartbeat_s,
        hooks=tuple(hooks), group_size=group_size, workers=max(1, workers),
    )
    run_ids = list(dict.fromkeys(run.run_id for plan in plans for run in plan.selected))
    # Each poll reads the unfinished runs' summaries: poll big sweeps less often.
    monitor = Monitor(out, run_ids, stale_after, show=progress and wait, interval=1.0 if len(run_ids) < 2000 else 5.0)
    problems: list[str] = []
    with monitor:
        if monitor.counts.pending + monitor.counts.running + len(retry):
            problems = execute(job, executor, workers, dict(executor_options or {}), wait=wait)
    failures = {}
    for run_id in run_ids:
        run = store.RunDir(out / store.RUNS / run_id)
        if run.status() == vocab.FAILED:
            failures[run_id] = str((run.summary() or {}).get("reason"))
    return SweepResult(", ".join(s.name for s in specs), monitor.counts, monitor.initial_done, failures, problems)


def sweep_settings(
    specs: Sequence[Spec], *, workers: int = 1, executor: str = "local",
    executor_options: Mapping[str, Any] | None = None, wait: bool = True, trainer: str | Trainer = DEFAULT_TRAINER,
    hooks: Sequence[str | Hook] = (), stale_after: float = STALE_AFTER, heartbeat_s: float | None = None,
    group_size: int | str | None = None, execution: Mapping[str, Any] | None = None,
) -> tuple[int | str, dict[str, Any]]:
    """Check a sweep's settings (`run_sweep`'s arguments) before anything is planned or written, once, not in
    every worker; a dry run checks them too. Returns the group size and the execution fields every run gets."""
    from dstbench.experiments.executors import check_executor

    check_executor(executor, workers, dict(executor_options or {}), wait=wait)
    heartbeat_interval(stale_after, heartbeat_s)
    resolve_trainer(trainer)
    for hook in hooks:
        resolve_function(hook, "hook")
    size = _group_size(specs, group_size)
    execution = dict(execution or {})
    unknown = sorted(set(execution) - vocab.EXECUTION_FIELDS)
    if unknown:
        raise UserError(f"execution settings {unknown} are not execution-only fields; "
                        f"valid: {sorted(vocab.EXECUTION_FIELDS)}")
    if specs and specs[0].arms:  # the values too (--num-threads 0, --device tpu), on the spec's first grid point
        arm = specs[0].arms[0]
        RunConfig.model_validate({**arm.point((name, values[0]) for name, values in arm.axes), **execution})
    execution.setdefault("progress", False)  # one bar for the sweep, not one per run
    if executor == "local" and workers > 0:  # local processes share this machine's cores instead of fighting
        execution.setdefault("num_threads", max(1, (os.cpu_count() or 1) // workers))
    return size, execution


def _group_size(specs: Sequence[Spec], asked: int | str | None) -> int | str:
    """The sweep's group size: `asked` (--group-size), else what the specs' ``[execution]`` say (parsed when the
    spec was read), else the policy's default."""
    if asked is not None:
        try:
            return parse_group_size(asked)
        except ValueError as exc:
            raise UserError(f"--group-size: {exc}") from None
    sizes = {spec.name: spec.execution.get("group_size", DEFAULT_GROUP_SIZE) for spec in specs}
    if len(set(sizes.values())) > 1:
        raise UserError(f"the specs set different group sizes ({', '.join(f'{n}: {v}' for n, v in sizes.items())}); "
                        f"pass --group-size, or sweep them one at a time")
    return next(iter(sizes.values()), DEFAULT_GROUP_SIZE)
