"""`dstbench sweep | status | collect`: run a spec's runs, see where they stand, gather their results."""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dstbench import vocab
from dstbench.claims import STALE_AFTER, unreadable_claims
from dstbench.errors import UserError
from dstbench.experiments.executors import EXECUTORS
from dstbench.experiments.worker import DEFAULT_TRAINER


def parse_assignments(items: Sequence[str], what: str) -> dict[str, list[Any]]:
    """``["k=v", "k=w", "j=1"]`` -> ``{"k": ["v", "w"], "j": [1]}``; values are JSON when they parse as JSON."""
    result: dict[str, list[Any]] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"{what} {item!r} is not of the form KEY=VALUE")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        result.setdefault(key.strip(), []).append(value)
    return result


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _sweep(args: argparse.Namespace) -> int:
    from dstbench.experiments.executors import MissingExtraError
    from dstbench.experiments.spec import load_spec
    from dstbench.experiments.sweep import plan_sweeps, run_sweep, sweep_settings

    specs = [load_spec(name) for name in args.spec]
    only = parse_assignments(args.only, "--only")
    options = {k: v[-1] for k, v in parse_assignments(args.executor_option, "--executor-option").items()}
    execution = {k: v for k, v in (("data_root", args.data_root), ("device", args.device),
                                   ("num_threads", args.num_threads), ("capture", args.capture)) if v is not None}
    if args.keep_checkpoints:
        execution["keep_checkpoints"] = True
    if args.track:
        execution["track"] = args.track
    settings = dict(workers=args.workers, executor=args.executor, executor_options=options, wait=not args.no_wait,
                    trainer=args.trainer, hooks=args.hook, stale_after=args.stale_after, group_size=args.group_size,
                    execution=execution)
    if args.dry_run:  # checks what the real run checks, then plans without building unselected runs' configs
        from dstbench.estimate import RATES_NOTE, cost_lines, data_lines

        sweep_settings(specs, **settings)
        configs = {}
        for plan in plan_sweeps(specs, args.out, only=only, retry_failed=args.retry_failed, listing=False):
            arms: dict[str, int] = {}
            for run in plan.selected:
                arms[run.arm] = arms.get(run.arm, 0) + 1
            print(f"{plan.spec.name}: {len(plan.selected)} runs selected of {plan.spec.size()} grid points "
                  f"({', '.join(f'{a}: {n}' for a, n in arms.items())}); {len(plan.retry)} failed to retry")
            for line in cost_lines([run.config for run in plan.selected], args.workers):
                print(f"  {line}")
            configs.update({run.run_id: run.config for run in plan.selected})
        if len(specs) > 1:  # a run shared by several specs trains once
            print(f"together, {len(configs)} distinct runs:")
            for line in cost_lines(configs.values(), args.workers):
                print(f"  {line}")
        print(f"({RATES_NOTE})")
        print("data:")
        for line in data_lines(configs.values(), args.data_root):
            print(f"  {line}")
        return 0
    try:
        result = run_sweep(specs, args.out, retry_failed=args.retry_failed, only=only,
                           progress=not args.no_progress, **settings)
    except MissingExtraError as exc:
        raise UserError(str(exc)) from None
    c = result.counts
    print(f"{result.spec}: {c.done} done ({c.done - result.started_done} now), {c.failed} failed, "
          f"{c.running} running elsewhere, {c.pending} pending, of {c.total}")
    for run_id, reason in result.failures.items():
        print(f"  failed {run_id}: {reason}  (rerun with --retry-failed)", file=sys.stderr)
    for problem in result.problems:
        print(f"  {problem}", file=sys.stderr)
    if c.running:
        for note in unreadable_claims(args.out, args.stale_after):
            print(f"  {note}", file=sys.stderr)
    return 0 if result.ok else 1


def _status(args: argparse.Namespace) -> int:
    from dstbench.experiments.status import format_status, sweep_status

    print(format_status(sweep_status(args.dir, args.stale_after), show_failed=args.failed))
    for note in unreadable_claims(args.dir, args.stale_after):
        print(f"note: {note}")
    return 0


def _collect(args: argparse.Namespace) -> int:
    from dstbench.experiments.tables import METRICS_TABLE, RESULTS, write_collected

    to = args.out if args.out is not None else args.dir
    try:
        results, metrics = write_collected(args.dir, include_incomplete=args.include_incomplete, to=args.out)
    except OSError as exc:
        if args.out is not None or exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        raise UserError(f"cannot write the tables into {args.dir} ({exc.strerror}: {exc.filename}); give "
                        "`dstbench collect --out FOLDER` to write them elsewhere (`dstbench report` reads such a "
                        "folder without writing to it)") from None
    runs = results["run_id"].nunique() if len(results) else 0
    shared = f"; a run in several specs has a row for each: {runs} runs" if runs != len(results) else ""
    print(f"{Path(to) / RESULTS}: {len(results)} rows{shared}; {Path(to) / METRICS_TABLE}: {len(metrics)} rows")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser("sweep", help="run the runs of a spec that are not done yet",
                           description="Run a spec's runs into OUT/runs/<run_id>/. Finished runs are skipped, "
                                       "interrupted ones resume, failed ones wait for --retry-failed.")
    sweep.add_argument("spec", nargs="+",
                       help="a built-in spec name (dstbench list specs) or a .toml path; several sweep as one pool "
                            "of runs (each keeps its record; shared runs train once)")
    sweep.add_argument("--out", required=True, type=Path, help="the sweep folder (shared by all workers)")
    sweep.add_argument("--workers", type=int, default=1,
                       help="worker processes (local; 0 = in this process), array tasks (submitit) or tasks (ray)")
    sweep.add_argument("--executor", choices=EXECUTORS, default="local")
    sweep.add_argument("--executor-option", action="append", default=[], metavar="KEY=VALUE",
                       help="submitit: cluster, timeout_min, slurm_partition, gpus_per_node, ...; "
                            "ray: address, num_cpus, num_gpus, ...")
    sweep.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    sweep.add_argument("--group-size", metavar="N|auto",
                       help="fuse up to N compatible runs into one run group trained as one model (1: every run "
                            "solo; default: the spec's [execution] group_size, else auto: where it pays)")
    sweep.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                       help="run only runs with this config value (or arm=NAME: a spec's arm); repeat for several")
    sweep.add_argument("--data-root", help="where the data sets are (execution only: run ids do not change)")
    sweep.add_argument("--device", help="cpu, cuda, cuda:1, ... (execution only)")
    sweep.add_argument("--num-threads", type=int, help="torch threads per run (execution only)")
    sweep.add_argument("--capture", choices=vocab.CAPTURE_MODES,
                       help="the training step as a CUDA graph: auto (the default: on a GPU where a run can be "
                            "captured) or off (execution only)")
    sweep.add_argument("--keep-checkpoints", action="store_true",
                       help="finished runs keep checkpoint.pt (optimizer state included) beside model.npz")
    sweep.add_argument("--track", metavar="A,B", type=lambda text: tuple(t.strip() for t in text.split(",") if t.strip()),
                       help=f"log every run live to these trackers: {', '.join(vocab.TRACKERS)} (execution only; "
                            "see dstbench.trackers for where each writes)")
    sweep.add_argument("--trainer", default=DEFAULT_TRAINER, metavar="MODULE:FUNCTION",
                       help=f"the training function (default {DEFAULT_TRAINER})")
    sweep.add_argument("--hook", action="append", default=[], metavar="MODULE:FUNCTION",
                       help="call function(run_dir, summary) after each finished run (e.g. to mirror it into a "
                            "tracker); repeat for several")
    sweep.add_argument("--stale-after", type=_seconds, default=STALE_AFTER, metavar="SECONDS",
                       help="this sweep's workers beat every tenth of it (at most 30 s), and a claim of theirs "
                            "whose heartbeat is older belongs to a dead worker; others' claims are judged by the "
                            "value their owner recorded")
    sweep.add_argument("--no-wait", action="store_true", help="submit the workers and return (submitit, ray)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    sweep.set_defaults(func=_sweep)

    status = sub.add_parser("status", help="done / running / failed / pending runs per spec of a sweep folder")
    status.add_argument("dir", type=Path)
    status.add_argument("--failed", action="store_true", help="also list the failed runs and why")
    status.add_argument("--stale-after", type=_seconds, default=STALE_AFTER, metavar="SECONDS",
                        help="for claims that do not record their owner's value (older versions)")
    status.set_defaults(func=_status)

    collect = sub.add_parser("collect", help="all runs of a sweep folder -> results.parquet and metrics.parquet")
    collect.add_argument("dir", type=Path)
    collect.add_argument("--include-incomplete", action="store_true", help="also failed and unfinished runs")
    collect.add_argument("--out", type=Path, help="the folder to write the two tables into (default: DIR; e.g. "
                                                  "for a read-only sweep folder)")
    collect.set_defaults(func=_collect)
