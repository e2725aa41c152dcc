"""`dstbench study`: the paper's study, reduced to data that ships with scikit-learn, from nothing to a report.

It is a list of ordinary spec files run as one ordinary sweep into one folder, then collected
and reported like any full study: stopping and rerunning resumes, and a second run trains nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dstbench.errors import UserError

# The specs of each budget (built-in files in dstbench/specs). "default" is the README's study (under five
# minutes on two cores); "small" is the one-minute smoke version CI runs end to end.
BUDGETS: dict[str, tuple[str, ...]] = {
    "default": ("study-fig1", "study-fig5", "study-fig6", "study-full-layers"),
    "small": ("study-small-fig1", "study-small-fig5", "study-small-fig6"),
}


@dataclass(frozen=True)
class StudyResult:
    out: Path
    report: Path
    summary: str
    trained: int
    failed: dict[str, str]
    seconds: float


def run_study(out: Path | str, *, budget: str = "default", workers: int = 2, progress: bool = True,
              group_size: int | str | None = None) -> StudyResult:
    """Run every spec of `budget` into `out`, collect, and write `out/report/report.html`."""
    from dstbench.experiments import load_spec, run_sweep, write_collected
    from dstbench.report import build_report

    if budget not in BUDGETS:
        raise UserError(f"unknown budget {budget!r}; valid: {', '.join(BUDGETS)}")
    if workers < 0:
        raise UserError(f"--workers must be >= 0 (0 trains in this process), got {workers}")
    out = Path(out)
    started = time.time()
    # One sweep over all the specs: the workers share one pool of runs, so none idles at the end of a spec.
    result = run_sweep([load_spec(name) for name in BUDGETS[budget]], out, workers=workers,
                       execution={"num_threads": 1}, progress=progress, group_size=group_size)
    trained, failed = result.counts.done - result.started_done, dict(result.failures)
    if result.problems:
        raise UserError(f"the study's sweep had worker problems: {'; '.join(result.problems)}; "
                        f"rerun `dstbench study --out {out}` to resume")
    write_collected(out)
    report = build_report(out, out / "report")
    summary = (report.parent / "summary.txt").read_text()  # written by build_report beside report.html
    return StudyResult(out=out, report=report, summary=summary, trained=trained, failed=failed,
                       seconds=time.time() - started)


def _run(args: argparse.Namespace) -> int:
    result = run_study(args.out, budget=args.budget, workers=args.workers, progress=not args.no_progress,
                       group_size=args.group_size)
    print(result.summary)
    print()
    print(f"trained {result.trained} runs in {result.seconds:.0f} s; results in {result.out}")
    if result.failed:
        print(f"{len(result.failed)} runs failed (see `dstbench status {result.out}`)", file=sys.stderr)
    print(f"report: {result.report}")
    return 1 if result.failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "study", help="run the reduced paper study on embedded data (no download) and write the report",
        description="The paper's study in miniature on data that ships with scikit-learn: a small MLP on digits "
                    "and on a synthetic Higgs-shaped table (make_classification), a small CNN on digits (the small "
                    "budget: breast_cancer for the table). Five criteria x two growth rules x densities x seeds, "
                    "dense and static baselines, first-update and end-mask Jaccard studies, an update-period sweep "
                    "and ITOP, and whether updating full-density layers (as the paper's code does) matters; then "
                    "the HTML report.",
    )
    parser.add_argument("--out", default="dstbench-study", help="results folder (default: ./dstbench-study)")
    parser.add_argument("--workers", type=int, default=2, help="parallel training processes (default 2)")
    parser.add_argument("--budget", choices=list(BUDGETS), default="default",
                        help="'default' (about 5 minutes on 2 cores) or 'small' (about 1 minute)")
    parser.add_argument("--group-size", metavar="N|auto",
                        help="runs fused into one run group (default auto: where it pays; 1: every run solo)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)
