"""`dstbench report DIR [-o OUT]`: figures, tables and report.html from stored results."""

from __future__ import annotations

import argparse

from dstbench.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="figures, tables and report.html from a results folder",
        description="Build report.html (figures embedded, works offline) with PNG/SVG figures and CSV/LaTeX tables "
                    "for every experiment in DIR. Collects the run folders first if results.parquet is missing "
                    "or out of date.")
    parser.add_argument("results_dir", metavar="DIR", help="a sweep or study output folder (holds runs/)")
    parser.add_argument("-o", "--out", metavar="OUT", default=None, help="report folder (default: DIR/report)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dstbench.report.build import NothingToReport, build_report

    try:
        path = build_report(args.results_dir, args.out)
    except NothingToReport as exc:
        raise UserError(str(exc)) from exc
    print(path)
    return 0
