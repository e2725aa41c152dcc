"""The report reads without help: each section says what it shows, in the paper's order; figure text never overlaps;
a collapsed criterion does not flatten the others; ties are not winners; numbers sort as numbers."""

import html
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from dstbench.report.plots import Line, Panel, collapsed
from dstbench.report.style import new_figure, overlapping_text, styled, wrap

from .conftest import COLLAPSED


def section(page: str, name: str) -> str:
    return page.split(f'<section id="exp-{name}">')[1].split("</section>")[0]


def test_no_figure_of_a_study_shaped_report_has_overlapping_text(study_like_report):
    page, warnings, _ = study_like_report
    assert len(list(page.parent.glob("figures/*/*.png"))) >= 10
    assert [w for w in warnings if "overlaps" in w] == []


def test_overlapping_text_is_found_upright_rotated_and_over_another_panel():
    with styled():
        fig, axes = new_figure(2, ncols=2, width=2.0)
        title = "small-MLP / synthetic table (Higgs-shaped), gradient growth"
        for ax in axes:
            ax.set_title(title)  # far wider than a 2-inch panel: runs into the neighbour's
        fig.draw_without_rendering()
        assert f"{title!r} overlaps {title!r}" in overlapping_text(fig)
        for ax in axes:
            ax.set_title(wrap(title, 1.8))
        assert overlapping_text(fig) == []

        fig = Figure(figsize=(4, 3), layout="constrained")
        ax = fig.subplots()
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.25], ["a long rotated label", "another rotated one"], rotation=45, ha="right")
        assert overlapping_text(fig) == []
        upright = [t.get_window_extent() for t in ax.get_xticklabels()]
        assert upright[0].overlaps(upright[1])  # the boxes around the turned labels do overlap
        ax.set_xticks([0, 0.01], ["a long rotated label", "another rotated one"], rotation=45, ha="right")
        assert overlapping_text(fig) == ["'a long rotated label' overlaps 'another rotated one'"]

        fig = Figure(figsize=(4, 5), layout="constrained")  # a square image in a tall cell: the bar is taller
        ax = fig.subplots()
        fig.colorbar(ax.imshow(np.eye(3)), ax=ax)
        ax.set_title("a title that runs on well past the matrix and over its colour bar")
        assert any("over its colour bar' overlaps the plot area" in p for p in overlapping_text(fig))


def line(label, means):
    x = np.array([0.05, 0.2])
    return Line(label, "#000000", x, np.array(means, dtype=float), np.full(2, np.nan), np.full(2, 2))


def test_a_mean_far_below_tightly_grouped_others_is_cut_off_and_a_merely_worse_one_is_not():
    others = [line("A", [70.0, 80.0]), line("B", [71.0, 81.0]), line("C", [72.0, 82.0])]
    # at x = 0.05 the others lie 70-72: 10 is below their median by 61 > 3 x 2, and below their floor (70) by
    # 60 > 2 x the healthy range (82 - 70 = 12)
    panel = Panel("p", "Density", "Test accuracy (%)", (*others, line("R", [10.0, 79.0])), cut_collapsed=True)
    assert [(c.label, c.x, c.mean) for c in collapsed(panel)] == [("R", 0.05, 10.0)]
    # 60 is 11 under the median (> 3 x 2) but only 10 under the floor (< 2 x 12): worse, not collapsed
    assert collapsed(Panel("p", "D", "y", (*others, line("R", [60.0, 79.0])), cut_collapsed=True)) == []
    assert collapsed(Panel("p", "D", "y", (*others, line("R", [10.0, 79.0])))) == []  # only where asked


def test_sections_come_in_the_papers_order_and_say_what_they_show(study_like_report):
    page = study_like_report[0].read_text()
    order = [page.index(f'<section id="exp-{name}">') for name in
             ("study-fig1", "study-fig5", "study-fig6", "study-full-layers")]
    assert order == sorted(order)  # written (and listed in the folder) with full-layers first
    about = html.unescape(re.search(r'<p class="about">(.*?)</p>', section(page, "study-fig1")).group(1))
    assert about.split("<br>") == [
        "Paper: figures 1 and 3.",
        "Models and data: small-CNN on digits; small-MLP on synthetic table (Higgs-shaped).",
        "Varies: density 0.05, 0.2; criterion Magnitude, SET, MEST (λ=1), RSensitivity, SNIP; growth gradient, "
        "random; 2 seeds.",
        "Fixed: update period Δt = 800 steps; prune fraction ρ = 0.5; cosine prune-fraction schedule; 4 epochs; "
        "batch size 32; learning rate 0.01; ERK layer densities; local pruning; full layers fixed.",
        "Baselines: static sparse (same densities, no updates) and dense."]
    fig5 = html.unescape(section(page, "study-fig5"))
    assert "Varies: criterion Magnitude, SET, MEST (λ=1), RSensitivity, SNIP; update period Δt (steps) 5, 10, 20, " \
           "40, 80." in fig5
    assert "Fixed: density 0.1; random growth;" in fig5
    assert "Varies: density 0.2, 1; " in html.unescape(section(page, "study-fig6"))


def test_a_collapsed_criterion_is_marked_and_captions_name_only_what_is_drawn(study_like_report):
    page, _, collapsed_runs = study_like_report
    assert len(collapsed_runs) == 4  # RSensitivity, small CNN, D 0.05: two growth rules x two seeds
    fig1 = html.unescape(section(page.read_text(), "study-fig1"))
    assert (f"RSensitivity in small-CNN / digits, gradient growth at D=0.05: {100 * COLLAPSED:.1f}; RSensitivity in "
            f"small-CNN / digits, random growth at D=0.05: {100 * COLLAPSED:.1f})") in fig1
    svg = (page.parent / "figures/study-fig1/accuracy_vs_density.svg").read_text()
    assert svg.count(f"RSensitivity {100 * COLLAPSED:.1f}") == 2
    assert "dashed: Static and Dense." in fig1
    fig5 = html.unescape(section(page.read_text(), "study-fig5"))
    itop = fig5.split("ITOP at the end of training vs update period</h3>")[1].split("</figcaption>")[0]
    assert "dashed" not in itop and "update period Δt (steps)" in itop
    full_layers = html.unescape(section(page.read_text(), "study-full-layers"))
    assert "dashed: Static" not in full_layers and "▼" not in full_layers


def test_itop_values_that_all_print_alike_mark_no_winner(study_like_report):
    itop = pd.read_csv(study_like_report[0].parent / "tables/study-fig5/itop_1.csv")
    assert itop.groupby("update_period")["mean"].nunique().eq(1).all()  # every criterion ties at every period
    assert itop["mark"].isna().all()
    fig5 = section(study_like_report[0].read_text(), "study-fig5")
    assert "<b>" not in fig5.split("ITOP at the end of training vs update period: ")[1].split("</table>")[0]


def test_the_overview_sorts_update_periods_as_numbers(study_like_report):
    overview = pd.read_csv(study_like_report[0].parent / "tables/study-fig5/overview.csv")
    magnitude = [c for c in dict.fromkeys(overview["condition"]) if c.startswith("Magnitude")]
    assert magnitude == [f"Magnitude, Δt={u}" for u in (5, 10, 20, 40, 80)]


def test_one_note_for_the_probe_runs_with_end_masks_of_one_criterion(study_like_report):
    fig6 = html.unescape(section(study_like_report[0].read_text(), "study-fig6"))
    notes = re.findall(r'<p class="note">([^<]*)</p>', fig6)
    single = [n for n in notes if "only magnitude has end masks" in n]
    assert len(single) == 1 and "in 4 settings" in single[0]  # two models x densities 0.2 and 1 (random growth)
    assert "J_r, in each title, is the chance level" in fig6 and "p / (2 − p)" in fig6


# 1 inch at 9 pt holds 72 / (0.6 x 9) = 13 characters: four "ab" and their spaces (11) a line, so 30 take 8 lines
@pytest.mark.parametrize("text, width, lines", [("short", 3.0, 1), (" ".join(["ab"] * 30), 1.0, 8)])
def test_wrap_breaks_at_the_width_in_inches(text, width, lines):
    assert len(wrap(text, width).splitlines()) == lines


def test_jaccard_tables_keep_both_criteria_in_their_csv(study_like_report):
    table = pd.read_csv(study_like_report[0].parent / "tables/study-fig6/first_update_jaccard_1.csv")
    assert list(table.columns[:2]) == ["criterion", "against"] and len(table) == 25  # 5 x 5 criteria
    assert table.loc[(table["criterion"] == "SNIP") & (table["against"] == "SNIP"), "mean"].item() == 1.0


def test_paper_order_by_first_figure_then_tables_then_the_rest_as_given():
    from pathlib import Path

    from dstbench.analysis.results import Results
    from dstbench.report.about import paper_order

    papers = {"full-layers": "no figure; checks the paper's code", "fig6": "figure 6 (a, b) and figures 17, 19",
              "table5": "Table 5", "fig11": "figures 11 and 5", "fig1": "figures 1 and 3", "mine": ""}
    results = Results(Path("."), pd.DataFrame(), pd.DataFrame(),
                      {name: {"report": {"paper": paper}} for name, paper in papers.items()})
    assert paper_order(results, list(papers)) == ["fig1", "fig6", "fig11", "table5", "full-layers", "mine"]
