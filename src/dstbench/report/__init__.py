"""Figures and the HTML report of a results folder (reads stored results only; never imports training code).

`build_report(results_dir, out_dir)` writes ``report.html`` with every figure embedded, plus PNG/SVG figures and
CSV/LaTeX tables next to it; `summary_text(results_dir)` is the short plain-text digest `dstbench study` prints.
"""

from dstbench.report.build import NothingToReport, build_report, summary_text
from dstbench.report.style import PALETTE, colour, criterion_label

__all__ = ["PALETTE", "NothingToReport", "build_report", "colour", "criterion_label", "summary_text"]
