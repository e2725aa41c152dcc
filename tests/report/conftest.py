import json
import logging

import pytest

from analysis import synthetic
from dstbench.cli import main
from dstbench.report import build_report


@pytest.fixture(scope="session")
def results_folder(tmp_path_factory):
    """A sweep folder with a performance grid (plus a failed and an unfinished run), a structural study, and
    an overfitting study with dense, dense-with-dropout and static baselines."""
    root = tmp_path_factory.mktemp("results")
    runs = synthetic.performance_experiment(
        root, criteria=("magnitude", "set", "snip"), densities=(0.05, 0.1, 0.5), seeds=(0, 1),
        report={"kinds": ["accuracy_vs_density", "critical_difference", "learning_curves"]})
    failed = synthetic.write_run(root, synthetic.config(density=0.2, prune="snip", seed=9), status="failed")
    started = synthetic.write_run(root, synthetic.config(density=0.2, prune="set", seed=9), status="started")
    synthetic.write_sweep(root, "performance", [(r, "grid") for r in runs] + [(failed, "grid"), (started, "grid")],
                          {"kinds": ["accuracy_vs_density", "critical_difference", "learning_curves"]})
    synthetic.structure_experiment(root, seeds=(0, 1))
    synthetic.write_experiment(root, "overfitting", [
        *({"density": 0.2, "prune": p, "seed": s} for p in ("magnitude", "snip") for s in (0, 1)),
        *({"density": 0.2, "update_period": 0, "seed": s} for s in (0, 1)),
        *({"dropout": d, "input_dropout": d, "seed": s} for d in (0.0, 0.05) for s in (0, 1)),  # as fig. 4's
    ])
    return root


@pytest.fixture(scope="session")
def built_report(results_folder):
    """The report of `results_folder`, built through the command line into a separate folder."""
    out = results_folder.parent / "report_out"
    assert main(["report", str(results_folder), "-o", str(out)]) == 0
    return out / "report.html"


CRITERIA = ("set", "magnitude", "mest", "snip", "reciprocal_sensitivity")
COLLAPSED = 0.10  # RSensitivity at chance (ten classes) on the small CNN at density 0.05, as in the study


@pytest.fixture(scope="session")
def study_like(tmp_path_factory):
    """A folder shaped like `dstbench study`'s: its four experiments (listed out of the paper's order), its models
    and data sets (long labels), a criterion that collapses, ITOP values that tie, update periods 5-80 and the
    probe runs whose end masks have one criterion only. Returns (folder, run ids of the collapsed runs)."""
    root = tmp_path_factory.mktemp("study_like")
    cases = (("small_cnn", "digits"), ("small_mlp", "synthetic_tabular"))
    full = [{"model": "small_mlp", "dataset": "synthetic_tabular", "density": d, "prune": p,
             "update_full_layers": u, "seed": s} for d in (0.05, 0.1) for p in ("magnitude", "snip")
            for u in (False, True) for s in (0, 1)]
    synthetic.write_experiment(root, "study-full-layers", full, report={
        "kinds": ["paired_difference", "accuracy_vs_density"], "paper": "no figure; checks the paper's code",
        "paired_difference": {"field": "update_full_layers"}})
    fig1 = [{"model": m, "dataset": d, "density": dens, "grow": g, "prune": p, "seed": s} for m, d in cases
            for dens in (0.05, 0.2) for g in ("random", "gradient") for p in CRITERIA for s in (0, 1)]
    fig1 += [{"model": m, "dataset": d, "density": dens, "update_period": 0, "seed": s} for m, d in cases
             for dens in (0.05, 0.2) for s in (0, 1)]
    fig1 += [{"model": m, "dataset": d, "seed": s} for m, d in cases for s in (0, 1)]
    run_ids = synthetic.write_experiment(root, "study-fig1", fig1, report={
        "kinds": ["accuracy_vs_density", "critical_difference"], "paper": "figures 1 and 3"})
    collapsed = [r for r, c in zip(run_ids, fig1, strict=True) if c["model"] == "small_cnn"
                 and c.get("density") == 0.05 and c.get("prune") == "reciprocal_sensitivity"]
    for run_id in collapsed:
        path = root / "runs" / run_id / "summary.json"
        summary = json.loads(path.read_text())
        path.write_text(json.dumps({**summary, "best_val_test_acc": COLLAPSED, "final_test_acc": COLLAPSED}))
    fig5 = [{"density": 0.1, "prune": p, "update_period": u} for p in CRITERIA for u in (5, 10, 20, 40, 80)]
    synthetic.write_experiment(root, "study-fig5", [*fig5, {"density": 0.1, "update_period": 0}], report={
        "kinds": ["update_period", "itop"], "paper": "figures 5 and 11", "baselines": ["static"]})
    probe = {"probe_steps": (8,), "probe_criteria": (*CRITERIA, "random"), "probe_fractions": (0.5,)}
    fig6 = [{"model": m, "dataset": d, "density": 0.2, "grow": "gradient", "prune": p, "seed": s, **probe}
            for m, d in cases for p in CRITERIA for s in (0, 1)]
    fig6 += [{"model": m, "dataset": d, "density": dens, "grow": "random", "prune": "magnitude", "seed": s,
              "update_period": 800, **probe} for m, d in cases for dens in (1.0, 0.2) for s in (0, 1)]
    synthetic.write_experiment(root, "study-fig6", fig6, masks=True, probe_steps=(8,), report={
        "kinds": ["first_update_jaccard", "end_mask_jaccard", "retained_by_all"], "paper": "figure 6"})
    return root, collapsed


@pytest.fixture(scope="session")
def study_like_report(study_like):
    """`study_like`'s report, drawn in this process so that the figures' layout warnings can be caught here:
    (report.html, the warnings, the collapsed run ids)."""
    root, collapsed = study_like
    caught: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            caught.append(record.getMessage())

    handler = Catch(logging.WARNING)
    logger = logging.getLogger("dstbench.report")
    logger.addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DSTBENCH_REPORT_PROCESSES", "1")
            page = build_report(root)
    finally:
        logger.removeHandler(handler)
    return page, caught, collapsed
