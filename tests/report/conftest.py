import pytest

from analysis import synthetic
from dstbench.cli import main


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
