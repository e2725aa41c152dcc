"""The paired_difference kind on synthetic runs whose effect of update_full_layers is known (synthetic.py):
hand-computed differences, tests and the sentence, in the table, the page and the summary."""

import csv
import html

import numpy as np
import pytest

from analysis import synthetic
from dstbench.analysis.paired import SIGN, WILCOXON, PairedTest
from dstbench.cli import main
from dstbench.report import summary_text
from dstbench.report.paired import verdict

CRITERIA, DENSITIES, SEEDS = ("magnitude", "set", "snip"), (0.05, 0.1), (0, 1)
# synthetic.full_layers_effect on digits: 0.001 (seed 0) or 0.002 (seed 1) + 0.1 D + penalty / 10
# (magnitude 0, SET 0.0004, SNIP 0.003): twelve distinct costs, none on breast_cancer
COSTS = [0.006, 0.0064, 0.009, 0.011, 0.0114, 0.014, 0.007, 0.0074, 0.010, 0.012, 0.0124, 0.015]
OPTIONS = {"kinds": ["paired_difference"], "paired_difference": {"field": "update_full_layers"}}


def configs(datasets, criteria=CRITERIA, densities=DENSITIES, seeds=SEEDS):
    return [{"dataset": d, "prune": p, "density": density, "seed": s, "update_full_layers": full}
            for d in datasets for p in criteria for density in densities for s in seeds for full in (False, True)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    synthetic.write_experiment(root, "full", configs(("digits", "breast_cancer")), OPTIONS)
    synthetic.write_experiment(root, "few", configs(("digits",), ("magnitude", "snip"), (0.05,)), OPTIONS)
    synthetic.write_experiment(root, "lenient", configs(("digits",), ("magnitude", "snip"), (0.05,)),
                               {**OPTIONS, "paired_difference": {"field": "update_full_layers", "alpha": 0.2}})
    out = root / "report"
    assert main(["report", str(root), "-o", str(out)]) == 0
    return root, out


def rows(out, experiment):
    with open(out / "tables" / experiment / "paired_difference.csv") as f:
        return {(r["model / data set"], r["statistic"]): r for r in csv.DictReader(f)}


def test_the_known_costs_are_synthetic_models():
    costs = [synthetic.full_layers_effect(synthetic.config(dataset="digits", prune=p, density=d, seed=s,
                                                           update_full_layers=True))
             for s in SEEDS for d in DENSITIES for p in CRITERIA]
    assert costs == pytest.approx(COSTS)


def test_differences_tests_and_holm_per_data_set_and_overall(report):
    _, out = report
    table = rows(out, "full")
    digits = table[("small-MLP / digits", "difference")]
    assert float(digits["mean"]) == pytest.approx(-100 * sum(COSTS) / 12)  # -1.0133 points
    assert float(digits["std"]) == pytest.approx(100 * np.std(COSTS, ddof=1)) and digits["n"] == "12"
    # twelve distinct differences, all down: one sign pattern of 2^12 as extreme, two-sided 2 / 4096
    assert float(table[("small-MLP / digits", "p")]["mean"]) == pytest.approx(2 / 4096)
    assert float(table[("small-MLP / digits", "p (Holm)")]["mean"]) == pytest.approx(4 / 4096)
    cancer = "small-MLP / breast_cancer"
    assert float(table[(cancer, "difference")]["mean"]) == 0.0 and table[(cancer, "difference")]["n"] == "12"
    assert float(table[(cancer, "p")]["mean"]) == 1.0 and float(table[(cancer, "p (Holm)")]["mean"]) == 1.0
    overall = table[("all", "difference")]
    assert float(overall["mean"]) == pytest.approx(-100 * sum(COSTS) / 24) and overall["n"] == "24"
    assert float(table[("all", "p")]["mean"]) == pytest.approx(2 / 4096)  # the 12 zeros carry no sign


def test_the_sentence_says_whether_it_matters(report):
    root, out = report
    page = html.unescape((out / "report.html").read_text())
    matters = ("At α = 0.05, update_full_layers matters: with update_full_layers = true, test accuracy changes by "
               "-0.51 points on average (24 pairs, Wilcoxon signed-rank p = 0.000488).")
    # four pairs (magnitude and SNIP at D=0.05, seeds 0 and 1) all down: the sign test, 2 * (1/2)^4
    few = ("At α = 0.05, update_full_layers does not matter: with update_full_layers = true, test accuracy changes "
           "by -0.80 points on average (4 pairs, sign test p = 0.125).")
    lenient = few.replace("0.05, update_full_layers does not matter", "0.2, update_full_layers matters")
    for sentence in (matters, few, lenient):
        assert sentence in page
    summary = summary_text(root)
    assert f"Paired difference in full: {matters}" in summary
    assert ("  small-MLP / digits: -1.01 ± 0.30 (12 pairs, Wilcoxon signed-rank p = 0.000488, Holm-corrected "
            "0.000977)") in summary
    assert "  small-MLP / breast_cancer: +0.00 ± 0.00 (12 pairs, no pair differs, Holm-corrected 1)" in summary


def test_the_field_is_inferred_when_only_one_boolean_varies_and_asked_for_otherwise(tmp_path):
    synthetic.write_experiment(tmp_path, "inferred", configs(("digits",), ("magnitude", "snip"), (0.05,)),
                               {"kinds": ["paired_difference"]})
    synthetic.write_experiment(tmp_path, "nothing", [{"density": 0.1, "prune": p} for p in ("magnitude", "snip")],
                               {"kinds": ["paired_difference"]})
    out = tmp_path / "report"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    page = html.unescape((out / "report.html").read_text())
    assert "(4 pairs, sign test p = 0.125)" in page
    assert "Paired difference: name the boolean field whose two values to compare" in page


def test_a_group_that_differs_on_its_own_is_named_when_the_whole_does_not():
    overall = PairedTest(20, -0.001, 0.01, 8, 12, WILCOXON, 80.0, 0.3)
    sentence = verdict(overall, "update_full_layers", "best_val_test_acc", 0.05, ("small-CNN / CIFAR-10",))
    assert sentence == ("At α = 0.05, update_full_layers does not matter: with update_full_layers = true, test "
                        "accuracy changes by -0.10 points on average (20 pairs, Wilcoxon signed-rank p = 0.3), "
                        "though it does for small-CNN / CIFAR-10 on its own (Holm-corrected).")
    itop = verdict(PairedTest(3, 0.05, 0.01, 3, 0, SIGN, 3.0, 0.25), "global_pruning", "final_itop", 0.05)
    assert itop == ("At α = 0.05, global_pruning does not matter: with global_pruning = true, ITOP ratio changes "
                    "by +0.05 on average (3 pairs, sign test p = 0.25).")


def sweep_and_report(out, *only):
    filters = [arg for key in only for arg in ("--only", key)]
    assert main(["sweep", "study-full-layers", "--out", str(out), "--workers", "2", "--num-threads", "1",
                 "--no-progress", *filters]) == 0
    assert main(["report", str(out)]) == 0
    return html.unescape((out / "report" / "report.html").read_text())


def test_the_miniature_spec_through_the_command_line(tmp_path):
    # magnitude, seed 0: D 0.05 and 0.1 x random and gradient growth x both settings = 8 runs, 4 pairs
    page = sweep_and_report(tmp_path, "prune=magnitude", "seed=0")
    assert "At α = 0.05, update_full_layers " in page and " on average (4 pairs, " in page
    table = rows(tmp_path / "report", "study-full-layers")
    assert table[("all", "difference")]["n"] == "4"
    assert table[("small-MLP / synthetic table (Higgs-shaped)", "difference")]["n"] == "4"


@pytest.mark.slow
def test_the_whole_miniature_spec_through_the_command_line(tmp_path):
    page = sweep_and_report(tmp_path)
    assert "48 pairs, Wilcoxon signed-rank p = " in page
    assert "Paired difference in study-full-layers: At α = 0.05, update_full_layers " in summary_text(tmp_path)
