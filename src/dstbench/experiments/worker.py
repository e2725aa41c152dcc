"""The worker loop every executor runs: claim the next run that is not done, train it, release it, repeat.

A worker needs nothing but the sweep folder and a `WorkerJob` (small, picklable): the specs are expanded again
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
from dstbench.claims import (
    STALE_AFTER,
    Claim,
    ClaimLostError,
    Owner,
    claim_path,
    enable_interrupts,
    interrupt_main,
    is_stale,
    read_claim,
    try_claim,
)
from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.experiments.spec import PlannedRun, Spec
from dstbench.train.grouping import DEFAULT_GROUP_SIZE

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
    """What a worker needs: the folder, the specs and which of their runs, the trainer and the timing knobs.

    `retry` maps the failed runs to rerun to the signature of the failed summary seen when the sweep was
    planned: a run that fails again in this sweep gets a new summary and is not retried a second time.
    `parent_pid` is set by the local executor: its workers stop claiming runs when that sweep is gone.
    """

    out: str
    specs: tuple[Spec, ...]
    only: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    trainer: str | Trainer = DEFAULT_TRAINER
    retry: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)
    stale_after: float = STALE_AFTER
    heartbeat_s: float | None = None
    max_attempts: int = MAX_ATTEMPTS
    parent_pid: int | None = None
    hooks: tuple[str | Hook, ...] = ()
    group_size: int | str = DEFAULT_GROUP_SIZE  # parsed: runs fused into one run group (`train.grouping`)
    workers: int = 1  # how many workers the sweep started: "auto" sizes groups so that they share the runs out

    def runs(self) -> list[PlannedRun]:
        """The selected runs of every spec, in the specs' order; a run two specs share comes once."""
        runs: dict[str, PlannedRun] = {}
        for spec in self.specs:
            for run in spec.expand(dict(self.only)):
                runs.setdefault(run.run_id, run)
        return list(runs.values())


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


def _drop_invalid_summary(run_dir: Path) -> None:
    """Remove, naming it, the invalid summary.json of a run about to train (it counts as unfinished)."""
    damaged = store.RunDir(run_dir).damaged_summary()
    if damaged is not None:
        log.warning("%s", damaged)
        (run_dir / store.SUMMARY).unlink(missing_ok=True)


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


def _died_too_often(job: WorkerJob, run_dir: Path, config: RunConfig, claim: Claim, replaced: dict | None) -> bool:
    """Mark the run failed if its claim was taken over from dead workers more than `max_attempts` times."""
    if replaced is None or claim.attempt <= job.max_attempts:
        return False
    write_failed(run_dir, config, (
        f"the worker running it died {claim.attempt - 1} times (killed, out of memory, or a crash in "
        f"native code); rerun with --retry-failed to try again"), 0.0)
    return True


def _train(job: WorkerJob, run: PlannedRun, trainer: Trainer, claim: Claim, replaced: dict | None) -> str:
    """Train one claimed run; returns "done" or "failed". Raises StorageError when results cannot be written."""
    run_dir = Path(job.out) / store.RUNS / run.run_id
    config = run.config.replace(**job.execution) if job.execution else run.config
    started = time.time()
    try:
        if _died_too_often(job, run_dir, config, claim, replaced):
            return "failed"
        _drop_invalid_summary(run_dir)
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
    """Interrupt the run when another worker took our claim over, if the run is in the main thread.

    The interrupt is a simulated SIGINT, which Python ignores when the process started with SIGINT ignored (a
    background job of a script, `nohup`): the worker then handles SIGINT again, or it would train on unstopped.
    """
    if threading.current_thread() is threading.main_thread():
        enable_interrupts()
        return interrupt_main
    return lambda claim: log.warning("claim %s was taken over by another worker", claim.path)


def work(job: WorkerJob) -> WorkerReport:
    """Claim, train and release runs of the job until none is left to claim; never trains a run twice.

    With a `group_size` other than 1 (and the default trainer), compatible runs are claimed together and trained
    as run groups (`_work_group`); a run no group can take trains solo.
    """
    owner = Owner.current()
    report = WorkerReport(owner.worker)
    trainer = resolve_trainer(job.trainer)
    hooks = [resolve_function(h, "hook") for h in job.hooks]
    on_lost = _claim_lost_handler()
    runs = job.runs()
    grouping = job.group_size != 1 and job.trainer == DEFAULT_TRAINER
    handled: set[str] = set()  # runs a group of this worker took (trained, or left to another worker's group)
    for run in runs:
        if job.parent_pid is not None and os.getppid() != job.parent_pid:
            report.orphaned = True  # the sweep that started this worker is gone
            break
        run_dir = Path(job.out) / store.RUNS / run.run_id
        if run.run_id in handled or not _wanted(job, run_dir):
            continue
        if grouping:
            try:
                taken = _work_group(job, run, runs, owner, on_lost, report, hooks)
            except StorageError as exc:
                report.storage_error = str(exc)
                break
            if taken is not None:
                handled.update(taken)
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


def _group_members(job: WorkerJob, run: PlannedRun, runs: list[PlannedRun]) -> tuple[list[PlannedRun], bool]:
    """The runs to train with `run`, and whether they are a checkpointed group to resume (its exact members,
    in its order); else the policy's choice (`grouping.choose_members`) among the wanted runs after it."""
    from dstbench.train.grouping import choose_members, group_checkpoint

    out = Path(job.out)
    by_id = {r.run_id: r for r in runs}

    def pointer(r: PlannedRun) -> list[str] | None:
        """The members of the checkpointed group `r` belongs to, if that checkpoint exists."""
        try:
            info = store.read_json(out / store.RUNS / r.run_id / vocab.GROUP_FILE)
            members = [str(m) for m in info["members"]]
        except (FileNotFoundError, UserError, KeyError, TypeError, ValueError):
            return None
        if not group_checkpoint(out / vocab.GROUPS, members).exists() or not all(m in by_id for m in members):
            return None
        return members

    members = pointer(run)
    if members is not None:
        return [by_id[m] for m in members], True

    def available(other: PlannedRun) -> bool:
        return _wanted(job, out / store.RUNS / other.run_id) and pointer(other) is None and not _held(job, other)

    later = runs[runs.index(run) + 1:]
    return choose_members(run, later, lambda r: _execution_config(job, r), job.group_size, job.workers,
                          available), False


def _held(job: WorkerJob, run: PlannedRun) -> bool:
    """Whether another live worker holds `run`'s claim (a group formed around it would lose it at claiming)."""
    path = claim_path(job.out, run.run_id)
    return path.exists() and not is_stale(read_claim(path), path, job.stale_after)


def _execution_config(job: WorkerJob, run: PlannedRun) -> RunConfig:
    return run.config.replace(**job.execution) if job.execution else run.config


def _work_group(job: WorkerJob, run: PlannedRun, runs: list[PlannedRun], owner: Owner, on_lost: Any,
                report: WorkerReport, hooks: list[Hook]) -> list[str] | None:
    """Claim and train `run`'s group; returns the run ids it took, or None when `run` trains solo.

    Members are claimed in the group's order, so two workers reaching one checkpointed group never each hold a
    part of it: the one that claims its first wanted member gets the rest; the other skips the group.
    """
    from dstbench.train.group import run_group
    from dstbench.train.grouping import GroupError

    members, resumed = _group_members(job, run, runs)
    if len(members) == 1 and not resumed:
        return None
    out = Path(job.out)
    claims: dict[str, Claim] = {}
    try:
        for member in members:
            member_dir = out / store.RUNS / member.run_id
            if not _wanted(job, member_dir):
                continue  # finished: a resumed group carries it along, frozen
            result = try_claim(job.out, member.run_id, owner, stale_after=job.stale_after,
                               heartbeat_s=job.heartbeat_s, on_lost=on_lost)
            if result.claim is None:
                if resumed:
                    return [m.run_id for m in members]  # another worker resumes this group
                continue
            claims[member.run_id] = result.claim
            if not _wanted(job, member_dir):  # finished by another worker between our check and our claim
                claims.pop(member.run_id).release()
                continue
            if _died_too_often(job, member_dir, _execution_config(job, member), result.claim, result.replaced):
                report.failed.append(member.run_id)
                claims.pop(member.run_id).release()
        if not resumed:
            members = [m for m in members if m.run_id in claims]
        if not claims:
            return [m.run_id for m in members]
        for run_id in claims:  # failed runs this sweep retries start afresh
            _drop_invalid_summary(out / store.RUNS / run_id)
            if job.retry.get(run_id) is not None:
                (out / store.RUNS / run_id / store.SUMMARY).unlink(missing_ok=True)
        configs = [_execution_config(job, m) for m in members]
        dirs = [out / store.RUNS / m.run_id for m in members]
        started = time.time()
        solo = len(members) == 1  # the rest of its group went to other workers
        if not solo:
            try:
                run_group(configs, dirs, out / vocab.GROUPS, claims=[claims.get(m.run_id) for m in members])
            except ClaimLostError:
                raise
            except GroupError as exc:  # refused before training anything (a model fusion cannot take)
                log.warning("the runs of %s's group train solo: %s", run.run_id, exc)
                solo = True
            except Exception as exc:
                if _storage_error(exc):
                    raise StorageError(f"group of {run.run_id}: {exc}") from exc
                log.warning("the group of run %s failed:\n%s", run.run_id, traceback.format_exc())
                for run_id, claim in claims.items():
                    member_dir = out / store.RUNS / run_id
                    if store.RunDir(member_dir).summary() is None and claim.owned():
                        write_failed(member_dir, configs[[m.run_id for m in members].index(run_id)],
                                     f"{type(exc).__name__}: {exc}", time.time() - started)
        if solo:
            trainer = resolve_trainer(job.trainer)
            for member in members:
                if member.run_id in claims:
                    _train(job, member, trainer, claims[member.run_id], None)
        for run_id in claims:
            status = store.RunDir(out / store.RUNS / run_id).status()
            (report.done if status == vocab.DONE else report.failed).append(run_id)
    except (KeyboardInterrupt, ClaimLostError):
        if not any(c.lost.is_set() for c in claims.values()):
            raise
        log.warning("group of run %s: another worker took a member over; left to that worker", run.run_id)
        report.lost.extend(claims)
    finally:
        for claim in claims.values():
            claim.release()
    for run_id in claims:
        _call_hooks(hooks, out / store.RUNS / run_id)
    return [m.run_id for m in members]


def process_main(job: WorkerJob) -> None:
    """Entry point of a local worker process: exit code EXIT_STORAGE when results cannot be written."""
    try:
        report = work(job)
    except KeyboardInterrupt:
        sys.exit(130)
    if report.storage_error is not None:
        print(f"dstbench worker {report.worker}: stopped: {report.storage_error}", file=sys.stderr)
        sys.exit(EXIT_STORAGE)
