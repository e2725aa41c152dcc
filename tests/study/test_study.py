"""`dstbench study --budget small` end to end through the CLI: the CI smoke run of the main job."""

import json
import re

import pandas as pd
import pytest

from dstbench.cli import main
from dstbench.study import BUDGETS, run_study

CRITERIA_LABELS = ["Magnitude", "SET", "MEST", "SNIP", "RSensitivity"]


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, run_study(out, budget="small", workers=2, progress=False)


def test_small_study_writes_the_report_and_summary(small_study):
    out, result = small_study
    assert result.failed == {}
    report = out / "report" / "report.html"
    assert result.report == report and report.exists()
    html = report.read_text()
    for spec in BUDGETS["small"]:
        assert spec in html
    results = pd.read_parquet(out / "results.parquet")
    assert set(results["experiment"]) == set(BUDGETS["small"])
    assert (results["status"] == "done").all()
    # every kind the specs ask for has a figure in the report folder
    kinds = {k for spec in BUDGETS["small"] for k in json.loads((out / "sweeps" / f"{spec}.json").read_text())
             ["report"]["kinds"]}
    assert {"accuracy_vs_density", "critical_difference", "update_period", "itop", "first_update_jaccard",
            "end_mask_jaccard"} <= kinds
    figures = list((out / "report").rglob("*.png"))
    for kind in kinds:
        assert any(kind in f.name for f in figures), f"no figure for {kind}"
    for label in CRITERIA_LABELS:
        assert label in result.summary
    # the first-update Jaccard matrices themselves, at density 1.0 (DST on the dense network) and 0.2: a row of
    # numbers per criterion, and the chance level J_r
    part = result.summary[result.summary.index("First-update Jaccard index"):]
    blocks = [b.splitlines() for b in part.split("\n\n") if b.startswith("First-update Jaccard index")]
    titles = [b[0] for b in blocks]
    assert len(blocks) == 2 and any("D=1," in t for t in titles) and any("D=0.2," in t for t in titles)
    for jaccard in blocks:
        header = jaccard[1].split()
        rows = {line.split()[0]: line.split()[1:] for line in jaccard[2:] if line.split()[0] in header}
        assert set(CRITERIA_LABELS) <= {h.split("(")[0] for h in header} and set(rows) == set(header)
        for values in rows.values():
            numbers = [float(v) for v in values if v != "-"]
            assert len(values) == len(header) and numbers and all(0.0 <= v <= 1.0 for v in numbers)
        assert re.search(r"^J_r \(chance level\) = 0\.\d{3}: the index between random pruning's sets of different "
                         r"seeds$", "\n".join(jaccard), flags=re.MULTILINE)

def test_rerun_trains_nothing_and_cli_prints_the_summary(small_study, capsys):
    out, _ = small_study
    assert main(["study", "--budget", "small", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "trained 0 runs" in printed
    assert str(out / "report" / "report.html") in printed
    for label in CRITERIA_LABELS:
        assert label in printed


def _group_entries(out):
    """run id -> its summary's "group" entry (None: trained solo)."""
    from dstbench import store

    return {p.parent.name: store.read_json(p)["group"] for p in (out / store.RUNS).glob("*/summary.json")}


def _assert_whole_groups(entries, most):
    groups = {}
    for run_id, group in entries.items():
        if group is not None:
            groups.setdefault(group["id"], []).append((run_id, group["size"]))
    assert groups, "no run trained in a group"
    for members in groups.values():  # every member of a group has a summary naming it, and no more
        # (a group of 1 happens where another worker claimed the rest of a group first)
        assert len(members) == members[0][1] <= most
    assert max(len(m) for m in groups.values()) >= 2


def test_the_study_trains_its_runs_in_groups_by_default(small_study):
    out, _ = small_study
    entries = _group_entries(out)
    assert len(entries) > 50
    _assert_whole_groups(entries, most=64)
    assert not list((out / "groups").glob("*/checkpoint.pt"))


@pytest.mark.slow
def test_the_study_cli_with_a_group_size(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "--budget", "small", "--out", str(out), "--group-size", "4", "--no-progress"]) == 0
    assert (out / "report" / "report.html").exists()
    assert "trained" in capsys.readouterr().out
    _assert_whole_groups(_group_entries(out), most=4)


def test_unknown_budget(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["study", "--budget", "huge", "--out", str(tmp_path)])
    assert "huge" in capsys.readouterr().err
    with pytest.raises(ValueError, match="valid: default, small"):
        run_study(tmp_path, budget="huge")
