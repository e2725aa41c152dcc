"""Where workers run: local processes, Slurm job arrays (submitit) or Ray tasks. All run `worker.work`.

Every executor starts `workers` copies of the same claim loop on the same folder, so they can be mixed and a
sweep can be resumed with another executor. submitit and Ray are optional extras, imported only when used.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from dstbench.errors import UserError
from dstbench.experiments.worker import (
    EXIT_STORAGE,
    WorkerJob,
    WorkerReport,
    process_main,
    work,
)

log = logging.getLogger(__name__)

EXECUTORS = ("local", "submitit", "ray")
_EXTRAS = {"submitit": "slurm", "ray": "ray"}


class MissingExtraError(ImportError):
    """An executor's optional package is not installed."""


def optional_import(module: str) -> ModuleType:
    """Import an optional extra, or fail with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"the {module} executor needs the {module!r} package: pip install 'dstbench[{_EXTRAS[module]}]'"
        ) from None


def check_executor(executor: str, workers: int, options: Mapping[str, Any], *, wait: bool = True) -> None:
    """Raise a UserError for settings `execute` cannot honour (a sweep checks them before it writes anything)."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < (0 if executor == "local" else 1):
        raise UserError(f"workers must be at least {0 if executor == 'local' else 1} for {executor}, got {workers}")
    if executor == "local":
        if options:
            raise UserError(f"the local executor takes no options, got {sorted(options)}")
        if not wait:
            raise UserError("the local executor runs in this process tree and cannot detach (no --no-wait)")


def execute(job: WorkerJob, executor: str, workers: int, options: Mapping[str, Any], *, wait: bool = True) -> list[str]:
    """Run `workers` workers of `job` on `executor`; returns the problems they reported (empty if none)."""
    check_executor(executor, workers, options, wait=wait)
    if executor == "local":
        return run_local(job, workers)
    if executor == "submitit":
        return run_submitit(job, workers, options, wait=wait)
    return run_ray(job, workers, options, wait=wait)


def problems_of(reports: Sequence[WorkerReport]) -> list[str]:
    return [f"worker {r.worker} stopped: {r.storage_error}" for r in reports if r.storage_error is not None]


def run_local(job: WorkerJob, workers: int) -> list[str]:
    """`workers` spawned processes (0: in this process); a worker killed by a signal is replaced.

    The replacement takes over the dead worker's claim (same host, dead pid) and resumes that run from its
    checkpoint. At most 3 replacements per worker slot, so a run that kills every worker cannot loop forever
    (and after `max_attempts` deaths that run is marked failed anyway).
    """
    if workers == 0:
        return problems_of([work(job)])
    ctx = multiprocessing.get_context("spawn")
    job = dataclasses.replace(job, parent_pid=os.getpid())

    def start() -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=process_main, args=(job,), name="dstbench-worker")
        proc.start()
        return proc

    procs = [start() for _ in range(workers)]
    replacements = 3 * workers
    problems: list[str] = []
    try:
        while procs:
            multiprocessing.connection.wait([p.sentinel for p in procs], timeout=1.0)
            for proc in [p for p in procs if not p.is_alive()]:
                proc.join()
                procs.remove(proc)
                code = proc.exitcode
                if code == 0:
                    continue
                if code == EXIT_STORAGE:
                    problems.append(f"worker pid {proc.pid} stopped: results cannot be written (see above)")
                elif code is not None and code < 0 and replacements > 0:
                    replacements -= 1
                    print(f"dstbench sweep: worker pid {proc.pid} was killed (signal {-code}); starting another",
                          file=sys.stderr)
                    procs.append(start())
                else:
                    problems.append(f"worker pid {proc.pid} exited with code {code}; rerun the sweep to continue")
    except KeyboardInterrupt:
        for proc in procs:  # they got the same Ctrl-C: give them time to release their claims
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        raise
    return problems


def run_submitit(job: WorkerJob, workers: int, options: Mapping[str, Any], *, wait: bool) -> list[str]:
    """A job array of `workers` tasks; `options` go to submitit (`cluster`, `timeout_min`, `slurm_partition`, ...)."""
    submitit = optional_import("submitit")
    options = dict(options)
    cluster = options.pop("cluster", None)
    folder = Path(job.out).resolve() / "submitit" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    if options:
        executor.update_parameters(**options)
    jobs = executor.map_array(work, [job] * workers)
    print(f"dstbench sweep: submitted {len(jobs)} worker tasks ({jobs[0].job_id} ...); logs under {folder.parent}",
          file=sys.stderr)
    if not wait:
        return []
    reports, problems = [], []
    for task in jobs:
        try:
            reports.append(task.result())
        except Exception as exc:  # a task that crashed or was cancelled: its claims go stale and are taken over
            problems.append(f"worker task {task.job_id} failed: {str(exc).strip().splitlines()[-1]}")
    return problems + problems_of(reports)


def run_ray(job: WorkerJob, workers: int, options: Mapping[str, Any], *, wait: bool) -> list[str]:
    """`workers` Ray tasks; `options` go to `ray.remote` (num_cpus, num_gpus, ...), except `address` (ray.init)."""
    ray = optional_import("ray")
    options = dict(options)
    address = options.pop("address", None)
    if not wait and address is None and not ray.is_initialized():
        raise UserError("ray without waiting needs a running cluster: --executor-option address=auto (or host:port)")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, log_to_driver=True)
    try:
        options.setdefault("num_cpus", 1)
        remote = ray.remote(work).options(**options)
        refs = [remote.remote(job) for _ in range(workers)]
        if not wait:
            return []
        reports, problems = [], []
        for ref in refs:
            try:
                reports.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                problems.append(f"ray worker task failed: {str(exc).strip().splitlines()[-1]}")
        return problems + problems_of(reports)
    finally:
        if started and wait:
            ray.shutdown()
