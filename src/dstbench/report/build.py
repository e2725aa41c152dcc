"""Build the report of a results folder, and the short plain-text summary `dstbench study` prints."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pandas as pd

from dstbench.analysis.aggregate import setting_fields, summarize
from dstbench.analysis.jaccard import JaccardMatrix
from dstbench.analysis.ranks import average_ranks, block_scores
from dstbench.analysis.results import Results, load_results
from dstbench.errors import UserError
from dstbench.report import paired
from dstbench.report.about import paper_order
from dstbench.report.context import Context
from dstbench.report.page import render
from dstbench.report.sections import Section, build_section, kinds_for
from dstbench.report.similarity import first_update_study_of
from dstbench.report.style import criterion_label, panel_title, scale, value_label
from dstbench.store import atomic_write_bytes

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.txt"  # the plain-text summary, also at the top of the page
# How many processes draw the experiments' sections (default: one per core, at most one per experiment; 1: this
# process only). Matplotlib draws in one thread, and a study's report is mostly drawing.
PROCESSES_ENV = "DSTBENCH_REPORT_PROCESSES"

log = logging.getLogger(__name__)


class NothingToReport(UserError):
    """The folder holds no run and no sweep: there is nothing to put in a report."""


def build_report(results_dir: Path | str, out_dir: Path | str | None = None) -> Path:
    """Figures, tables and ``report.html`` for every experiment in `results_dir`; returns the HTML path.

    Collects the run folders first when the tables are missing or older than the runs. Writes into `out_dir`
    (default ``results_dir/report``): ``report.html``, ``summary.txt``, ``figures/<experiment>/*.png|svg`` and
    ``tables/<experiment>/*.csv|tex``.
    """
    results = load_results(results_dir)
    if not results.experiments():
        raise NothingToReport(
            f"no runs in {results.root}: produce results with `dstbench sweep SPEC.toml --out {results.root}` "
            f"(or `dstbench study --out {results.root}`), then run `dstbench report {results.root}`")
    out = Path(out_dir) if out_dir is not None else results.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    sections = build_sections(results, paper_order(results, results.experiments()), out)
    summary = summarize_results(results, sections)
    atomic_write_bytes(out / SUMMARY_FILE, (summary + "\n").encode())
    path = out / REPORT_FILE
    atomic_write_bytes(path, render(results.root, out, sections, summary).encode())  # never half a page
    return path


def build_sections(results: Results, experiments: Sequence[str], out: Path) -> list[Section]:
    """`build_section` for each experiment, in parallel processes where there are cores and several experiments.

    The children are forked, so they see the criteria and models that plugins registered in this process; where
    fork is not available (or not safe: macOS) the sections are drawn here, one after another.
    """
    processes = report_processes(len(experiments))
    if processes > 1:
        try:
            with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = [pool.submit(_draw_section, results, name, out) for name in experiments]
                return [future.result() for future in futures]
        except (BrokenProcessPool, OSError) as exc:  # a child killed (out of memory), or no processes to be had
            log.warning("drawing the report in parallel failed (%s); drawing it in this process", exc)
    return [build_section(results, name, out) for name in experiments]


def _draw_section(results: Results, experiment: str, out: Path) -> Section:
    return build_section(results, experiment, out)  # looked up when called: what this process has now


def report_processes(experiments: int) -> int:
    """Processes for `experiments` sections: `PROCESSES_ENV` if set, else one per usable core."""
    fixed = os.environ.get(PROCESSES_ENV)
    if fixed:
        try:
            wanted = int(fixed)
        except ValueError:
            raise UserError(f"{PROCESSES_ENV}={fixed!r} is not a number of processes") from None
        if wanted < 1:
            raise UserError(f"{PROCESSES_ENV}={fixed!r} must be at least 1")
    else:
        wanted = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if sys.platform == "darwin" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(wanted, experiments))


def summary_text(results_dir: Path | str) -> str:
    """Criteria by average rank, DST vs static vs dense at the lowest density, and the first-update Jaccard."""
    results = load_results(results_dir)
    sections = [Section(name, kinds_for(results, name)[0], False, 0, pd.DataFrame())
                for name in paper_order(results, results.experiments())]
    return summarize_results(results, sections)


def summarize_results(results: Results, sections: Sequence[Section]) -> str:
    done = results.runs[results.runs["status"] == "done"] if "status" in results.runs else results.runs
    if done.empty:
        return "No finished runs yet."
    parts = [_ranking(results, sections), _lowest_density(results, sections), _jaccard(results, sections)]
    return "\n\n".join(parts + _paired(results, sections))


def _runs_of(results: Results, sections: Sequence[Section], kind: str) -> pd.DataFrame:
    """Finished runs of the experiments that have `kind`, each run once; all runs when none has it."""
    names = [s.experiment for s in sections if kind in s.kinds] or [s.experiment for s in sections]
    frames = [results.done(name) for name in names]
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return runs.drop_duplicates("run_id") if not runs.empty else runs


def _ranking(results: Results, sections: Sequence[Section]) -> str:
    """Average ranks from the experiment (with the critical_difference kind, if any) that ranks most settings."""
    candidates = [s.experiment for s in sections if "critical_difference" in s.kinds] or \
        [s.experiment for s in sections]
    best: tuple[str, pd.DataFrame] | None = None
    for name in candidates:
        dst = results.done(name)
        dst = dst[dst["mode"] == "dst"] if not dst.empty else dst
        if dst.empty or dst["prune"].nunique() < 2:
            continue
        scores, _ = block_scores(dst, "best_val_test_acc", setting_fields(dst, exclude={"prune"}))
        if scores.shape[1] >= 2 and (best is None or len(scores) > len(best[1])):
            best = (name, scores)
    if best is None:
        return "Criteria by average rank: needs finished DST runs of at least two criteria in every setting."
    name, scores = best
    ranks = average_ranks(scores)
    lines = [f"Criteria by average rank in {name} over {len(scores)} settings (1 = best test accuracy):"]
    lines += [f"  {i}. {criterion_label(str(c)):<16} {r:.2f}" for i, (c, r) in enumerate(ranks.items(), start=1)]
    return "\n".join(lines)


def _lowest_density(results: Results, sections: Sequence[Section]) -> str:
    runs = _runs_of(results, sections, "accuracy_vs_density")
    dst = runs[runs["mode"] == "dst"] if not runs.empty else runs
    if dst.empty:
        return "DST vs static vs dense: no finished DST runs."
    lines = ["DST vs static vs dense at the lowest density (test accuracy %, mean ± std (runs)):"]
    for (model, dataset), group in runs.groupby(["model", "dataset"], sort=True):
        sparse = group[group["mode"] == "dst"]
        if sparse.empty:
            continue
        density = float(sparse["density"].min())
        keys = setting_fields(sparse[sparse["density"] == density]) or ["prune"]
        s = summarize(sparse[sparse["density"] == density], "best_val_test_acc", keys)
        best = s.loc[s["mean"].idxmax()]
        label = ", ".join(criterion_label(str(best[k])) if k == "prune" else value_label(k, best[k]) for k in keys)
        static = summarize(group[(group["mode"] == "static") & (group["density"] == density)], "best_val_test_acc", [])
        dense = summarize(group[(group["mode"] == "dense") & (group["dropout"].fillna(0) == 0)], "best_val_test_acc",
                          [])
        head = panel_title((("model", model), ("dataset", dataset), ("density", density)))
        lines += [f"  {head}:", f"    best DST {_number(best)}: {label}",
                  f"    static {_first(static)}; dense {_first(dense)}"]
    return "\n".join(lines)


def _jaccard(results: Results, sections: Sequence[Section]) -> str:
    for section in sections:
        if "first_update_jaccard" not in section.kinds:
            continue
        runs = results.done(section.experiment)
        ctx = Context(results, section.experiment, runs, results.options(section.experiment), Path("."),
                      section.cache)
        study = first_update_study_of(ctx)
        if not study.panels:
            continue
        # the first model and data set's matrix at every probed density (1.0, DST on the dense network, and below)
        first = {f: v for f, v in next(iter(study.panels)) if f in ("model", "dataset")}
        texts = []
        for key, matrices in study.panels.items():
            if any(dict(key).get(f, v) != v for f, v in first.items()):
                continue
            fraction = 0.5 if 0.5 in matrices else max(matrices)
            title = panel_title(key) or section.experiment
            texts.append(f"First-update Jaccard index ({title}, ρ = {fraction:g}):\n"
                         + _matrix_text(matrices[fraction]))
        return "\n\n".join(texts)
    return "First-update Jaccard: no experiment recorded first-update probes."


def _paired(results: Results, sections: Sequence[Section]) -> list[str]:
    """For each experiment with the paired_difference kind: its verdict, then one line per model and data set."""
    texts = []
    for section in sections:
        if "paired_difference" not in section.kinds:
            continue
        ctx = Context(results, section.experiment, results.done(section.experiment),
                      results.options(section.experiment), Path("."), section.cache)
        analysis = paired.analyse(ctx)
        if isinstance(analysis, str):
            texts.append(f"Paired difference in {section.experiment}: {analysis}.")
            continue
        factor = scale(analysis.metric)
        lines = [f"Paired difference in {section.experiment}: {analysis.sentence}"]
        for group in analysis.groups[:-1]:
            std = f" ± {group.test.std * factor:.2f}" if np.isfinite(group.test.std) else ""
            holm = f", Holm-corrected {group.p_holm:.3g}" if np.isfinite(group.p_holm) else ""
            lines.append(f"  {group.title}: {group.test.mean * factor:+.2f}{std} ({group.test.n} pairs, "
                         f"{paired.p_text(group.test)}{holm})")
        texts.append("\n".join(lines))
    return texts


def _matrix_text(matrix: JaccardMatrix) -> str:
    labels = [criterion_label(name).replace(" ", "") for name in matrix.labels]  # one word a column
    width = max(len(label) for label in labels) + 2
    lines = [" " * width + "".join(f"{label[:12]:>13}" for label in labels)]
    for label, row in zip(labels, matrix.mean, strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>13.3f}" if np.isfinite(v) else f"{'-':>13}" for v in row))
    if np.isfinite(matrix.reference):
        lines.append(f"{matrix.reference_name} (chance level) = {matrix.reference:.3f}: the index between random "
                     "pruning's sets of different seeds")
    return "\n".join(lines)


def _first(summary: pd.DataFrame) -> str:
    return _number(summary.iloc[0]) if not summary.empty else "not run"


def _number(row: pd.Series) -> str:
    std = f" ± {100 * row['std']:.2f}" if np.isfinite(row["std"]) else ""
    return f"{100 * row['mean']:.2f}{std} ({int(row['n'])})"
