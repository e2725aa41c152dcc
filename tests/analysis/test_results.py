import os

import pytest

from analysis import synthetic
from dstbench.analysis.results import is_stale, load_results, tables_from_run_folders


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
    assert results.experiments() == ["performance", "extra"]
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
    table.unlink()
    assert is_stale(folder)


def test_tables_from_run_folders_match_collected_rows(folder):
    runs, metrics = tables_from_run_folders(folder)
    written = load_results(folder, refresh=False).runs
    pairs = sorted(zip(runs["experiment"], runs["run_id"], strict=True))
    assert pairs == sorted(zip(written["experiment"], written["run_id"], strict=True))
    assert set(runs.loc[runs["status"] == "failed", "experiment"]) == {"extra"}
    assert len(metrics) == 4 * 8 + 4  # four epochs per finished or failed run


def test_missing_folder_says_how_to_make_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="dstbench sweep"):
        load_results(tmp_path / "nope")


def test_bad_sweep_file_is_named(tmp_path):
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "x.json").write_text("{")
    with pytest.raises(ValueError, match="x.json is not valid JSON"):
        load_results(tmp_path)
