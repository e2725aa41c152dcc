"""The worker loop every executor runs: claim the next run that is not done, train it, release it, repeat.

A worker needs nothing but the sweep folder and a `WorkerJob` (small, picklable): the spec is expanded again
in the worker, so a Slurm array of 100 tasks ships 100 copies of a few kilobytes, not of the run list. Workers
coordinate only through claim files (`claims`), so local processes, Slurm tasks and Ray tasks can share a
folder, and a worker that dies leaves a claim the next worker takes over.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dstbench import store, vocab
from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.experiments.claims import STALE_AFTER, Claim, ClaimLostError, Owner, interrupt_main, try_claim
from dstbench.experiments.spec import PlannedRun, Spec, select_runs

log = logging.getLogger(__name__)

DEFAULT_TRAINER = "dstbench.train.loop:run"
Trainer = Callable[[RunConfig, Path], Mapping[str, Any]]
# Called after every run this worker finishes (done or failed) with its folder and summary: a way to mirror
# results into a tracker (TensorBoard, MLflow, ...). The run folder stays the record; a hook that fails is logged.
Hook = Callable[[Path, Mapping[str, Any]], None]
# Errors of the storage, not of the run: the run stays resumable and the worker stops (the next run would fail too).
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
# Exit code of a worker process that stopped because it cannot write results.
EXIT_STORAGE = 3
# How many workers may die while holding one run before that run is marked failed.
MAX_ATTEMPTS = 3


class StorageError(RuntimeError):
    """Results cannot be written (disk full, quota, read-only folder); nothing was marked done."""


@dataclass(frozen=True)
class WorkerJob:
    """What a worker needs: the folder, the spec and which of its runs, the trainer and the timing knobs.

    `retry` maps the failed runs to rerun to the signature of the failed summary seen when the sweep was
    planned: a run that fails again in this sweep gets a new summary and is not retried a second time.
    `parent_pid` is set by the local executor: its workers stop claiming runs when that sweep is gone.
    """

    out: str
    spec: Spec
    only: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    trainer: str | Trainer = DEFAULT_TRAINER
    retry: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)
    stale_after: float = STALE_AFTER
    heartbeat_s: float | None = None
    max_attempts: int = MAX_ATTEMPTS
    parent_pid: int | None = None
    hooks: tuple[str | Hook, ...] = ()

    def runs(self) -> list[PlannedRun]:
        return select_runs(self.spec.expand(), dict(self.only))


@dataclass
class WorkerReport:
    """What one worker did, and why it stopped early if it did (else it ran out of runs to claim)."""

    worker: str
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    storage_error: str | None = None
    orphaned: bool = False


def resolve_function(name: str | Callable[..., Any], what: str = "trainer") -> Callable[..., Any]:
    """A function from ``"package.module:function"`` (or the function itself)."""
    if callable(name):
        return name
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"{what} {name!r} must be 'module:function', e.g. {DEFAULT_TRAINER!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"{what} {name!r}: cannot import {module_name!r} ({exc})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"{what} {name!r}: {module_name!r} has no function {attr!r}")
    return fn


def resolve_trainer(trainer: str | Trainer) -> Trainer:
    return resolve_function(trainer, "trainer")


def _call_hooks(hooks: list[Hook], run_dir: Path) -> None:
    summary = store.RunDir(run_dir).summary()
    for hook in hooks:
        try:
            hook(run_dir, summary or {})
        except Exception:
            log.warning("hook %r failed for %s (the run's result stands):\n%s", hook, run_dir.name,
                        traceback.format_exc())


def summary_signature(path: Path) -> tuple[int, int, int] | None:
    """Identifies one version of a summary file (inode, size, mtime), None if there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def write_failed(run_dir: Path, config: RunConfig, reason: str, wall_seconds: float) -> None:
    """Mark a run failed: a summary with status "failed" and the reason, written atomically."""
    store.atomic_write_json(run_dir / store.SUMMARY, vocab.summary_record(
        vocab.FAILED, reason, config.run_id(), config.model_dump(mode="json"), wall_seconds=wall_seconds))


def _storage_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


def _wanted(job: WorkerJob, run_dir: Path) -> bool:
    """Whether the run still needs a worker: not done, and not failed unless this sweep retries that failure."""
    status = store.RunDir(run_dir).status()
    if status in (vocab.STARTED, vocab.PENDING):
        return True
    if status == vocab.DONE:
        return False
    planned = job.retry.get(run_dir.name)
    return planned is not None and summary_signature(run_dir / store.SUMMARY) == tuple(planned)


def _train(job: WorkerJob, run: PlannedRun, trainer: Trainer, claim: Claim, replaced: dict | None) -> str:
    """Train one claimed run; returns "done" or "failed". Raises StorageError when results cannot be written."""
    run_dir = Path(job.out) / store.RUNS / run.run_id
    config = run.config.replace(**job.execution) if job.execution else run.config
    started = time.time()
    try:
        if replaced is not None and claim.attempt > job.max_attempts:
            write_failed(run_dir, config, (
                f"the worker running it died {claim.attempt - 1} times (killed, out of memory, or a crash in "
                f"native code); rerun with --retry-failed to try again"), 0.0)
            return "failed"
        (run_dir / store.SUMMARY).unlink(missing_ok=True)  # a failed run being retried
        try:
            trainer(config, run_dir)
        except ClaimLostError:
            raise
        except Exception as exc:
            if _storage_error(exc):
                raise StorageError(f"run {run.run_id}: {exc}") from exc
            log.warning("run %s failed:\n%s", run.run_id, traceback.format_exc())
            claim.check("recording the failure")
            write_failed(run_dir, config, f"{type(exc).__name__}: {exc}", time.time() - started)
            return "failed"
        status = store.RunDir(run_dir).status()
        if status not in ("done", "failed"):
            claim.check("recording the failure")
            write_failed(run_dir, config, "the trainer returned without writing summary.json", time.time() - started)
            return "failed"
        return status
    except OSError as exc:  # writing the failed summary failed: the run stays unfinished, never marked done
        raise StorageError(f"run {run.run_id}: cannot record its result: {exc}") from exc


def _claim_lost_handler() -> Callable[[Claim], None]:
    """Interrupt the run when another worker took our claim over, if the run is in the main thread."""
    if threading.current_thread() is threading.main_thread():
        return interrupt_main
    return lambda claim: log.warning("claim %s was taken over by another worker", claim.path)


def work(job: WorkerJob) -> WorkerReport:
    """Claim, train and release runs of the job until none is left to claim; never trains a run twice."""
    owner = Owner.current()
    report = WorkerReport(owner.worker)
    trainer = resolve_trainer(job.trainer)
    hooks = [resolve_function(h, "hook") for h in job.hooks]
    on_lost = _claim_lost_handler()
    for run in job.runs():
        if job.parent_pid is not None and os.getppid() != job.parent_pid:
            report.orphaned = True  # the sweep that started this worker is gone
            break
        run_dir = Path(job.out) / store.RUNS / run.run_id
        if not _wanted(job, run_dir):
            continue
        result = try_claim(job.out, run.run_id, owner, stale_after=job.stale_after,
                           heartbeat_s=job.heartbeat_s, on_lost=on_lost)
        claim = result.claim
        if claim is None:
            continue
        try:
            try:
                if not _wanted(job, run_dir):  # finished by another worker between our check and our claim
                    continue
                outcome = _train(job, run, trainer, claim, result.replaced)
                (report.done if outcome == "done" else report.failed).append(run.run_id)
            finally:
                claim.release()
            _call_hooks(hooks, run_dir)
        except (KeyboardInterrupt, ClaimLostError):
            if not claim.lost.is_set():
                raise
            log.warning("run %s: another worker took it over; left to that worker", run.run_id)
            report.lost.append(run.run_id)
        except StorageError as exc:
            report.storage_error = str(exc)
            break
    return report


def process_main(job: WorkerJob) -> None:
    """Entry point of a local worker process: exit code EXIT_STORAGE when results cannot be written."""
    try:
        report = work(job)
    except KeyboardInterrupt:
        sys.exit(130)
    if report.storage_error is not None:
        print(f"dstbench worker {report.worker}: stopped: {report.storage_error}", file=sys.stderr)
        sys.exit(EXIT_STORAGE)
