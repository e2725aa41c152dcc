import os

import pytest

from analysis import synthetic
from dstbench.analysis.results import is_stale, load_results
from dstbench.errors import UserError


@pytest.fixture()
def folder(tmp_path):
    synthetic.performance_experiment(tmp_path, criteria=("magnitude", "snip"), densities=(0.1,), grows=("random",),
                                     seeds=(0, 1), report={"kinds": ["accuracy_vs_density"]})
    failed = synthetic.write_run(tmp_path, synthetic.config(density=0.1, prune="set", seed=0), status="failed")
    started = synthetic.write_run(tmp_path, synthetic.config(density=0.1, prune="set", seed=1), status="started")
    synthetic.write_sweep(tmp_path, "extra", [(failed, "grid"), (started, "grid")])
    synthetic.write_tables(tmp_path)
    return tmp_path


def test_load_reads_tables_and_sweeps(folder):
    results = load_results(folder)
    assert sorted(results.experiments()) == ["extra", "performance"]  # in the order of their first run id
    done = results.done("performance")
    assert len(done) == 4 + 2 + 2  # 2 criteria x 2 seeds, static, dense
    assert set(done["mode"]) == {"dst", "static", "dense"}
    assert results.options("performance") == {"kinds": ["accuracy_vs_density"]}
    assert results.options("extra") == {}


def test_not_done_lists_failed_and_unfinished_runs(folder):
    missing = load_results(folder).not_done("extra")
    assert sorted(missing["status"]) == ["failed", "started"]
    assert load_results(folder).not_done("performance").empty


def test_tables_are_stale_when_a_run_is_newer(folder):
    assert not is_stale(folder)
    table = folder / "results.parquet"
    os.utime(table, (1, 1))
    assert is_stale(folder)
    os.utime(table, None)
    assert not is_stale(folder)
    os.utime(folder / "sweeps" / "extra.json", (table.stat().st_mtime + 5,) * 2)
    assert is_stale(folder)  # a new sweep file may put runs in other experiments
    table.unlink()
    assert is_stale(folder)


def test_stale_tables_are_collected_again_and_written(folder):
    expected = load_results(folder, refresh=False).runs
    (folder / "results.parquet").unlink()
    results = load_results(folder)
    assert (folder / "results.parquet").exists()
    done = expected[expected["status"] == "done"]
    pairs = sorted(zip(results.runs["experiment"], results.runs["run_id"], strict=True))
    assert pairs == sorted(zip(done["experiment"], done["run_id"], strict=True))
    assert len(results.metrics) == 4 * 8  # four epochs per finished run


def test_runs_outside_any_sweep_belong_to_experiment_runs(tmp_path):
    synthetic.write_run(tmp_path, synthetic.config(density=0.1))
    assert load_results(tmp_path).experiments() == ["runs"]


def test_failed_runs_carry_their_reason(folder):
    missing = load_results(folder).not_done("extra").set_index("status")
    assert missing.loc["failed", "reason"] == "RuntimeError: diverged"
    assert missing.loc["started", "reason"] == ""


def test_missing_folder_says_how_to_make_results(tmp_path):
    with pytest.raises(UserError, match="nope is not a folder; give the --out folder of a sweep"):
        load_results(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_bad_sweep_file_is_named(tmp_path):
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "x.json").write_text("{")
    with pytest.raises(ValueError, match="x.json is not valid JSON"):
        load_results(tmp_path)
