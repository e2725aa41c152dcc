"""The report end to end: synthetic run folders -> `dstbench report` -> report.html, figures and tables."""

import html
import re

import pytest

from analysis import synthetic
from dstbench.cli import main
from dstbench.report import build_report, summary_text


def notes(page):
    return [html.unescape(n) for n in re.findall(r'<p class="note">([^<]*)</p>', page)]


def test_report_has_a_section_per_experiment_and_embeds_every_figure(built_report):
    page = built_report.read_text()
    for name in ("performance", "structure", "overfitting"):
        assert f'<section id="exp-{name}">' in page
    out = built_report.parent
    pngs = sorted(out.glob("figures/*/*.png"))
    assert len(pngs) >= 10 and len(pngs) == len(sorted(out.glob("figures/*/*.svg")))
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page and "<link" not in page
    assert not any("could not be computed" in n for n in notes(page)), notes(page)


def test_inferred_and_given_kinds(built_report):
    page = built_report.read_text()
    assert "Analyses (from the spec): accuracy_vs_density, critical_difference, learning_curves" in page
    assert "Analyses (inferred from what varies): first_update_jaccard, end_mask_jaccard, retained_by_all" in page
    assert "Analyses (inferred from what varies): loss_gap" in page


def test_loss_gap_keeps_the_dropout_baseline_that_also_drops_the_input(built_report):
    svgs = sorted(built_report.parent.glob("figures/overfitting/loss_gap*.svg"))
    assert svgs and all("Dense (p=0.05)" in svg.read_text() for svg in svgs)


def test_tables_written_next_to_the_report_with_marks_and_run_counts(built_report):
    out = built_report.parent
    tables = sorted(p.stem for p in out.glob("tables/performance/*.csv"))
    assert {"accuracy_vs_density_1", "accuracy_vs_density_2", "average_ranks", "wilcoxon_holm",
            "overview"} <= set(tables)
    assert (out / "tables/performance/accuracy_vs_density_1.tex").read_text().count(r"\textbf") >= 3
    page = built_report.read_text()
    assert re.search(r"<b>\d+\.\d\d ± \d\.\d\d</b> <span class=\"n\">\(2\)</span>", page)
    assert "<u>" in page


def test_missing_runs_are_named_with_their_reason(built_report):
    page = built_report.read_text()
    section = page.split('<section id="exp-performance">')[1].split("</section>")[0]
    assert "44 finished runs; missing 2: 1 failed:" in section
    assert "RuntimeError: diverged" in section and "1 started:" in section
    assert "rerun the sweep" in section


def test_summary_lists_ranks_baselines_and_jaccard(results_folder, built_report):
    text = summary_text(results_folder)
    assert text.index("1. Magnitude") < text.index("2. SET") < text.index("3. SNIP")
    static = [synthetic.accuracy(synthetic.config(density=0.05, update_period=0, seed=s)) for s in (0, 1)]
    expected = f"static {100 * sum(static) / 2:.2f} ± {100 * abs(static[0] - static[1]) / 2 ** 0.5:.2f} (2)"
    assert "at the lowest density" in text and "D=0.05: best DST (Magnitude" in text and expected in text
    assert "First-update Jaccard index (structure, ρ = 0.5)" in text and "J_r (chance level)" in text
    assert text.splitlines()[0] in built_report.read_text()
    assert (built_report.parent / "summary.txt").read_text() == text + "\n"


def test_default_out_is_inside_the_results_folder(tmp_path, capsys):
    synthetic.write_experiment(tmp_path, "tiny", [{"density": d, "prune": p} for d in (0.1, 0.2)
                                                  for p in ("magnitude", "snip")])
    assert main(["report", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "report" / "report.html")


def test_nothing_to_report_exits_non_zero_with_a_hint(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "dstbench sweep" in capsys.readouterr().err


def test_single_seed_and_mixed_configs_still_render_and_say_why(tmp_path):
    synthetic.write_experiment(tmp_path, "mixed", [{"density": d, "prune": p, "epochs": e} for d in (0.1, 0.2)
                                                   for p in ("magnitude", "set", "snip") for e in (2, 4)])
    page = build_report(tmp_path).read_text()
    joined = " ".join(notes(page))
    assert "also differ in epochs" in joined and "single run (one seed)" in joined
    assert "epochs=2" in page and "epochs=4" in page  # kept apart as panels
    assert not any("could not be computed" in n for n in notes(page))


def test_missing_mask_files_become_a_note(tmp_path):
    synthetic.write_experiment(tmp_path, "masks", [{"density": 0.2, "prune": p, "seed": s}
                                                   for p in ("magnitude", "snip") for s in (0, 1)],
                               report={"kinds": ["end_mask_jaccard", "retained_by_all", "first_update_jaccard",
                                                 "no_such_kind"]})
    joined = " ".join(notes(build_report(tmp_path).read_text()))
    assert "all runs: 4 runs lack masks/init.npz or masks/final.npz" in joined
    assert "First-update Jaccard: all runs: 2 runs lack any probe file" in joined  # one run per seed is read
    assert "Unknown report kind 'no_such_kind'; valid kinds: accuracy_vs_density" in joined


@pytest.mark.slow
def test_every_kind_renders(tmp_path):
    synthetic.performance_experiment(tmp_path, seeds=(0, 1))
    synthetic.structure_experiment(tmp_path)
    synthetic.over_time_experiment(tmp_path, report={"kinds": ["jaccard_over_time"]})
    synthetic.write_experiment(tmp_path, "update_period", [
        *({"density": 0.1, "prune": p, "update_period": u, "seed": s} for p in ("magnitude", "snip")
          for u in (4, 8, 16) for s in (0, 1)),
        *({"density": 0.1, "update_period": 0, "seed": s} for s in (0, 1))])
    synthetic.write_experiment(tmp_path, "schedules", [
        {"density": 0.1, "prune": "magnitude", "update_period": u, "schedule": c} for u in (4, 16)
        for c in ("cosine", "constant")], report={"kinds": ["schedules"]})
    synthetic.write_experiment(tmp_path, "batch", [
        {"density": d, "prune": p, "batch_size": b} for d in (0.1, 0.2) for p in ("magnitude", "snip")
        for b in (32, 128)], report={"kinds": ["batch_size"]})
    synthetic.write_experiment(tmp_path, "global", [
        {"density": d, "prune": p, "global_pruning": g, "seed": s} for d in (0.05, 0.1) for p in ("magnitude", "snip")
        for g in (False, True) for s in (0, 1)])
    synthetic.write_experiment(tmp_path, "mest", [
        {"density": d, "prune": p} for d in (0.05, 0.1) for p in ("magnitude", "mest:lam=0.1", "mest", "mest:lam=10")])
    synthetic.write_experiment(tmp_path, "sensitivity", [
        {"density": d, "prune": p, "seed": s} for d in (0.1, 0.2, 0.5)
        for p in ("sensitivity", "reciprocal_sensitivity") for s in (0, 1)])
    page = build_report(tmp_path).read_text()
    assert not any("could not be computed" in n for n in notes(page)), notes(page)
    for title in ("Accuracy vs update period", "ITOP at the end of training", "Update period per prune-fraction",
                  "Accuracy per batch size", "Global vs local pruning", "MEST for different λ",
                  "Sensitivity vs reciprocal sensitivity", "Jaccard over time", "Critical difference diagrams",
                  "Learning curves"):
        assert title in page, title


def test_spec_options_one_density_as_bars_curves_and_chosen_baselines(tmp_path):
    # fig. 2: one density, dense as the only baseline, two per-epoch curves
    synthetic.write_experiment(tmp_path, "fig2", [
        *({"density": 0.2, "prune": p, "seed": s} for p in ("magnitude", "set", "snip") for s in (0, 1)),
        *({"density": 0.2, "update_period": 0, "seed": s} for s in (0, 1)),
        *({"seed": s} for s in (0, 1))],
        report={"kinds": ["accuracy_vs_density", "learning_curves"], "baselines": ["dense", "spare"],
                "curves": ["train_loss", "val_acc"]})
    out = build_report(tmp_path).parent
    page = (out / "report.html").read_text()
    assert "Test accuracy (%) at D=0.2" in page
    assert "Report option baselines names ['spare'], ignored" in " ".join(notes(page))
    figures = {p.stem for p in out.glob("figures/fig2/*.png")}
    assert figures == {"accuracy_vs_density", "learning_curves_train_loss_1", "learning_curves_val_acc_1"}
    table = (out / "tables/fig2/accuracy_vs_density_1.csv").read_text()
    assert "Static" not in table and "Magnitude" in table


def test_schedules_table_gives_the_best_update_period(tmp_path):
    synthetic.write_experiment(tmp_path, "fig16", [
        {"density": 0.1, "prune": p, "update_period": u, "schedule": c} for p in ("magnitude", "snip")
        for u in (4, 16) for c in ("cosine", "constant")], report={"kinds": ["schedules", "update_period"]})
    out = build_report(tmp_path).parent
    assert {p.stem for p in out.glob("figures/fig16/*.png")} == {"update_period"}  # not drawn twice
    best = (out / "tables/fig16/best_update_period.csv").read_text().splitlines()
    assert best[0] == "prune,setting,mean,std,n,mark"
    assert len(best) == 1 + 2 * 2 and all(",4.0," in line or ",16.0," in line for line in best[1:])



def test_sections_drawn_in_parallel_processes_equal_those_drawn_here(results_folder, tmp_path, monkeypatch):
    import datetime
    import os

    from dstbench.report import build, page

    class Frozen(datetime.datetime):  # one time for both builds: they may straddle a minute
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2026, 1, 2, 3, 4, tzinfo=tz)

    monkeypatch.setattr(page, "datetime", Frozen)
    drawers, draw = tmp_path / "drawers", build.build_section

    def noting_the_process(*args):
        with open(drawers, "a") as f:
            f.write(f"{os.getpid()}\n")
        return draw(*args)

    monkeypatch.setattr(build, "build_section", noting_the_process)
    monkeypatch.setenv(build.PROCESSES_ENV, "1")
    serial = build_report(results_folder, tmp_path / "serial")
    assert set(drawers.read_text().split()) == {str(os.getpid())}
    drawers.unlink()
    monkeypatch.setenv(build.PROCESSES_ENV, "3")
    assert build.report_processes(5) == 3 and build.report_processes(2) == 2
    parallel = build_report(results_folder, tmp_path / "parallel")
    assert str(os.getpid()) not in drawers.read_text().split()  # every section was drawn in another process
    assert "2026-01-02 03:04 UTC" in parallel.read_text()
    assert parallel.read_text() == serial.read_text()
    assert (tmp_path / "parallel" / "summary.txt").read_text() == (tmp_path / "serial" / "summary.txt").read_text()


def test_a_drawing_process_that_dies_leaves_the_report_to_this_process(results_folder, tmp_path, monkeypatch,
                                                                       caplog):
    import os

    from dstbench.report import build

    parent, draw = os.getpid(), build.build_section

    def dies_in_a_child(*args):
        if os.getpid() != parent:
            os._exit(9)  # killed, as by the kernel's out-of-memory killer
        return draw(*args)

    monkeypatch.setattr(build, "build_section", dies_in_a_child)
    monkeypatch.setenv(build.PROCESSES_ENV, "2")
    path = build_report(results_folder, tmp_path / "report")
    assert "drawing the report in parallel failed" in caplog.text
    assert path.read_text().count("<section") == len(build.load_results(results_folder).experiments())


def test_a_bad_report_processes_setting_is_a_clear_error(results_folder, tmp_path, monkeypatch, capsys):
    from dstbench.report import build

    monkeypatch.setenv(build.PROCESSES_ENV, "many")
    assert main(["report", str(results_folder), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "DSTBENCH_REPORT_PROCESSES='many' is not a number of processes" in err and "Traceback" not in err
