"""The README's "add a criterion" walkthrough, as written: a plugin with a display name, the compare-criteria spec
copied with the criterion added to its two lists, a sweep and a report; the criterion shows under its name in the
accuracy table, the average ranks, the critical-difference diagram and the first-update Jaccard matrices."""

import re
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from dstbench import plugins
from dstbench.cli import main
from dstbench.experiments import load_spec

PLUGIN = textwrap.dedent('''
    import dstbench

    @dstbench.register_criterion("walkthrough_curvature", needs_grad=True, label="Mag+curv")
    def walkthrough_curvature(weight, grad, active, *, generator, lam: float = 1.0):
        """|w| + lam * w^2 |g|."""
        return weight.abs() + lam * weight.pow(2) * grad.abs()
''')


@pytest.mark.slow
def test_a_new_criterion_reaches_the_ranks_the_cd_diagram_and_the_jaccard_matrix(tmp_path, monkeypatch):
    (tmp_path / "walkthrough_criteria.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(plugins.ENV, "")  # restored after the test, whatever load_plugins sets
    spec = Path(load_spec("compare-criteria").path).read_text()
    # the README's sed: a name of one's own, the criterion after reciprocal_sensitivity in both lists
    edited = re.sub(r"^name = .*$", 'name = "my-study"', spec, flags=re.M)
    edited = edited.replace('"reciprocal_sensitivity"', '"reciprocal_sensitivity", "walkthrough_curvature"')
    assert edited.count("walkthrough_curvature") == 2
    (tmp_path / "my-study.toml").write_text(edited)
    try:
        assert main(["--plugin", "walkthrough_criteria", "sweep", "my-study.toml", "--out", "results",
                     "--workers", "2", "--no-progress"]) == 0
        assert main(["--plugin", "walkthrough_criteria", "report", "results"]) == 0
    finally:
        sys.modules.pop("walkthrough_criteria", None)
    out = tmp_path / "results" / "report"
    summary = (out / "summary.txt").read_text()
    assert re.search(r"^  \d\. Mag\+curv \(λ=1\) +\d\.\d\d$", summary, re.M)  # among the six average ranks
    assert "Mag+curv (λ=1) (" in (out / "figures/my-study/critical_difference.svg").read_text()
    ranks = pd.read_csv(out / "tables/my-study/average_ranks.csv")
    assert len(ranks) == 6 and "Mag+curv (λ=1)" in set(ranks["criterion"])
    accuracy = pd.read_csv(out / "tables/my-study/accuracy_vs_density_1.csv")
    assert (accuracy.loc[accuracy["method"] == "Mag+curv (λ=1)", "n"] == 2).sum() == 3  # 3 densities, 2 seeds
    for density in (1, 2, 3):
        jaccard = pd.read_csv(out / f"tables/my-study/first_update_jaccard_{density}.csv")
        row = jaccard[(jaccard["criterion"] == "Mag+curv (λ=1)") & (jaccard["against"] == "Magnitude")]
        assert len(row) == 1 and 0 < row["mean"].item() <= 1 and row["n"].item() == 2
    assert "J_r (chance level)" in summary  # random pruning's sets of both seeds
