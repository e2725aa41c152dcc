import json
import math
from pathlib import Path

import pandas as pd
import pytest

from dstbench import store
from dstbench.cli import main
from dstbench.config import EXECUTION_FIELDS, RunConfig
from dstbench.experiments import collect, run_sweep, write_collected
from dstbench.experiments.tables import IDENTITY_FIELDS

from . import fake_trainers
from .helpers import small_spec


def make_sweep(tmp_path, trainer=fake_trainers.steady, **kw):
    spec = small_spec(tmp_path, **kw)
    out = tmp_path / "out"
    run_sweep(spec, out, workers=0, trainer=trainer, progress=False)
    return spec, out


def test_one_row_per_experiment_and_run_with_config_and_summary_columns(tmp_path):
    spec, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0, 1))
    results, metrics = collect(out)
    assert len(results) == 3 and set(results["experiment"]) == {"small"}
    assert dict(results["arm"].value_counts()) == {"dst": 2, "dense": 1}
    assert set(results["mode"]) == {"dst", "dense"} and set(results["status"]) == {"done"}
    assert set(IDENTITY_FIELDS) <= set(results.columns) and not set(EXECUTION_FIELDS) & set(results.columns)
    assert list(results.columns[:5]) == ["experiment", "arm", "run_id", "status", "mode"]
    row = results[results["mode"] == "dense"].iloc[0]
    run = next(r for r in spec.expand() if r.arm == "dense")
    assert row["run_id"] == run.run_id and row["density"] == 1.0 and row["model"] == "small_mlp"
    assert row["lr_milestones"] == json.dumps(list(run.config.lr_milestones))  # tuples as JSON strings
    assert row["probe_steps"] == "[]"
    summary = store.RunDir(out / "runs" / run.run_id).summary()
    assert row["final_test_acc"] == summary["final_test_acc"] and row["steps"] == 30
    assert row["summary_epochs"] == 3 and row["epochs"] == 3  # the summary's key collides with the config's
    assert "config" not in results.columns and "versions" not in results.columns
    assert len(metrics) == 3 * 3 and set(metrics["run_id"]) == set(results["run_id"])
    one = metrics[metrics["run_id"] == run.run_id].sort_values("epoch")
    assert list(one["epoch"]) == [1, 2, 3]
    assert list(one["test_acc"]) == [m["test_acc"] for m in store.RunDir(out / "runs" / run.run_id).metrics()]


def test_a_run_in_two_specs_gets_two_rows_and_a_run_in_none_gets_one(tmp_path):
    spec, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0,))
    other = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1), name="other.toml")
    run_sweep(other, out, workers=0, trainer=fake_trainers.steady, progress=False,
              only={"arm": ["dst"]})
    loose = RunConfig(model="small_mlp", dataset="digits", seed=9, epochs=2)
    fake_trainers.steady(loose, out / "runs" / loose.run_id())  # e.g. from `dstbench train --out`
    results, _ = collect(out)
    shared = next(r.run_id for r in spec.expand() if r.arm == "dst")
    assert set(results.loc[results["run_id"] == shared, "experiment"]) == {"small", "other"}
    unlisted = results[results["run_id"] == loose.run_id()]
    assert len(unlisted) == 1 and unlisted["experiment"].isna().all()


def test_collect_says_when_shared_runs_make_more_rows_than_runs(tmp_path, capsys):
    spec, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0,))  # 2 runs: dst and dense
    other = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1), name="other.toml")
    run_sweep(other, out, workers=0, trainer=fake_trainers.steady, progress=False, only={"arm": ["dst"]})
    # 3 runs: dst seed 0 and dense seed 0 are in both specs (2 rows each), dst seed 1 only in "other"
    assert main(["collect", str(out)]) == 0
    assert "results.parquet: 5 rows; a run in several specs has a row for each: 3 runs;" in capsys.readouterr().out


def test_failed_and_unfinished_runs_only_when_asked(tmp_path):
    _, out = make_sweep(tmp_path, trainer=fake_trainers.flaky, densities=(0.1,), seeds=(0, 1, 2))
    started = RunConfig(model="small_mlp", dataset="digits", seed=7)
    folder = out / "runs" / started.run_id()
    folder.mkdir()
    store.atomic_write_json(folder / store.CONFIG, started.model_dump(mode="json"))
    store.append_jsonl(folder / store.METRICS, [{"epoch": 1, "train_loss": math.nan}])
    with open(folder / store.METRICS, "a") as f:
        f.write('{"epoch": 2, "train_lo')  # cut short by a kill
    (out / "runs" / "empty").mkdir()  # a folder with nothing in it yet
    results, metrics = collect(out)
    assert set(results["status"]) == {"done"} and len(results) == 2
    everything, all_metrics = collect(out, include_incomplete=True)
    assert dict(everything["status"].value_counts()) == {"done": 2, "failed": 2, "started": 1}
    failed = everything[everything["status"] == "failed"]
    assert set(failed["reason"]) == {"RuntimeError: boom in the data loader", "the training loss is nan at epoch 2"}
    mine = all_metrics[all_metrics["run_id"] == started.run_id()]
    assert len(mine) == 1 and math.isnan(mine["train_loss"].iloc[0])
    assert len(all_metrics) == len(metrics) + 1


def test_an_empty_folder_gives_empty_tables(tmp_path):
    results, metrics = collect(tmp_path)
    assert results.empty and metrics.empty and "run_id" in metrics.columns


def test_collect_and_status_through_the_cli(tmp_path, capsys):
    _, out = make_sweep(tmp_path, trainer=fake_trainers.flaky, densities=(0.1,), seeds=(0, 1))
    assert main(["status", str(out), "--failed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["spec", "total", "done", "running", "failed", "pending"]
    assert lines[1].split() == ["small", "3", "2", "0", "1", "0"]
    assert "boom in the data loader" in lines[2]
    assert main(["collect", str(out)]) == 0
    assert "results.parquet: 2 rows" in capsys.readouterr().out
    results = pd.read_parquet(out / "results.parquet")
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert len(results) == 2 and len(metrics) == 6 and set(results["status"]) == {"done"}
    assert main(["collect", str(out), "--include-incomplete"]) == 0
    assert len(pd.read_parquet(out / "results.parquet")) == 3
    assert main(["status", str(tmp_path / "nowhere")]) == 2


def test_write_collected_returns_what_it_wrote(tmp_path):
    _, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0,))
    results, metrics = write_collected(out)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), results, check_dtype=False)
    assert len(pd.read_parquet(out / "metrics.parquet")) == len(metrics)


@pytest.mark.slow
def test_collect_reads_10000_runs(tmp_path):
    # How fast is benchmarks/sweep_overhead.py's business (target < 10 s); here only that every row arrives.
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "sweep_overhead.py"
    module_spec = importlib.util.spec_from_file_location("sweep_overhead", path)
    bench = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(bench)
    bench.synthetic_runs(tmp_path, 10_000, epochs=100)
    results, metrics = collect(tmp_path)
    assert len(results) == 10_000 and len(metrics) == 1_000_000


# --- nothing dropped silently (issue #14.5) ----------------------------------------------------------------------

@pytest.mark.parametrize(("content", "why"), [('{"status": "do', "not valid JSON"), ("[1, 2]", "JSON list")])
def test_a_damaged_summary_is_named_not_dropped_silently(tmp_path, caplog, capsys, content, why):
    _, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0,))
    damaged = next(store.iter_runs(out))
    damaged.file(store.SUMMARY).write_text(content)
    with caplog.at_level("WARNING"):
        results, _ = collect(out)
    assert damaged.run_id not in set(results["run_id"]) and len(results) == 1
    assert f"runs/{damaged.run_id}/summary.json: " in caplog.text and why in caplog.text
    assert damaged.status() == "started"  # the status readers do not crash on it either
    assert main(["collect", str(out)]) == 0
    assert f"runs/{damaged.run_id}/summary.json" in capsys.readouterr().err


def test_collect_on_a_missing_folder_fails_and_creates_nothing(tmp_path, capsys):
    assert main(["collect", str(tmp_path / "nope")]) == 2
    assert "nope is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()


def test_a_damaged_sweep_record_is_named(tmp_path, capsys):
    _, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0,))
    (out / "sweeps" / "small.json").write_text("")
    assert main(["collect", str(out)]) == 2
    err = capsys.readouterr().err
    assert "sweeps/small.json is not valid JSON" in err and "Traceback" not in err


def test_results_from_before_the_rename_of_groups_to_arms_still_load(tmp_path):
    """Sweep records whose run entries name the spec's arm "group", and a results table with a "group" column of
    them, read as arms; a new sweep rewrites the record with "arm" and keeps the old entries."""
    from dstbench.analysis import load_results
    from dstbench.experiments.sweep import sweep_record_path

    spec, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0,))
    record_path = sweep_record_path(out, "small")
    record = store.read_json(record_path)
    old_entries = [{"run_id": e["run_id"], "group": e["arm"]} for e in record["runs"]]
    store.atomic_write_json(record_path, {**record, "runs": [*old_entries, {"run_id": "0" * 16, "group": "gone"}]})
    results, _ = collect(out)
    assert dict(results["arm"].value_counts()) == {"dst": 1, "dense": 1} and "group" not in results
    missing = load_results(out).not_done("small")
    assert list(missing["run_id"]) == ["0" * 16] and list(missing["arm"]) == ["gone"]

    old_table = results.rename(columns={"arm": "group"})
    write_collected(out)
    old_table.to_parquet(out / "results.parquet", index=False)
    loaded = load_results(out, refresh=False).runs
    assert "group" not in loaded and dict(loaded["arm"].value_counts()) == {"dst": 1, "dense": 1}

    run_sweep(spec, out, workers=0, trainer=fake_trainers.steady, progress=False)
    rewritten = store.read_json(record_path)["runs"]
    assert {e["run_id"]: e["arm"] for e in rewritten} == {**{e["run_id"]: e["group"] for e in old_entries},
                                                          "0" * 16: "gone"}
    assert all(set(e) == {"run_id", "arm"} for e in rewritten)
