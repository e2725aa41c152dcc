"""Records that parse but are wrong are not trusted (issue #21, items 2 and 3): an incomplete summary.json is
named and its run counts as unfinished; a damaged metrics.jsonl is named and left out, everything else is written."""

import json
import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dstbench import store, vocab
from dstbench.cli import main
from dstbench.experiments import collect, run_sweep

from . import fake_trainers
from .helpers import small_spec

INCOMPLETE = {"status": "done", "run_id": "x"}


def make_sweep(tmp_path, **kw):
    spec = small_spec(tmp_path, **kw)
    out = tmp_path / "out"
    run_sweep(spec, out, workers=0, trainer=fake_trainers.steady, progress=False)
    return spec, out


def a_run(out, arm="dst"):
    return next(r for r in store.iter_runs(out) if json.loads(r.file(store.CONFIG).read_text())["density"] < 1
                or arm == "dense")


# --- the summary's schema -----------------------------------------------------------------------------------------

def valid_summary(**changes):
    summary = vocab.summary_record("done", None, "abc", {"model": "m"}, epochs=3, steps=30, final_test_acc=0.9)
    return {**summary, **changes}


@pytest.mark.parametrize(("summary", "problem"), [
    (INCOMPLETE, "lacks config, epochs, final_test_acc"),
    ({"status": "failed", "run_id": "x"}, "lacks config"),
    (valid_summary(status="finished"), "status is 'finished'"),
    (valid_summary(final_test_acc="0.9"), "final_test_acc = '0.9' is not a number"),
    (valid_summary(epochs=2.5), "epochs = 2.5 is not an integer"),
    (valid_summary(epochs=True), "epochs = True is not an integer"),
    (valid_summary(config=[1]), "config = [1] is not an object"),
    ([valid_summary()], "holds a JSON list, not an object"),
])
def test_an_invalid_summary_says_what_is_wrong(summary, problem):
    assert problem in vocab.summary_problem(summary)


def test_what_the_trainers_write_is_valid():
    assert vocab.summary_problem(valid_summary()) is None
    assert vocab.summary_problem(valid_summary(final_test_acc=math.nan, epochs=3)) is None  # a diverged epoch
    failed = vocab.summary_record("failed", "boom", "abc", {"model": "m"}, wall_seconds=1.0)
    assert vocab.summary_problem(failed) is None  # a worker's failed summary: no results


@given(st.dictionaries(st.sampled_from(vocab.SUMMARY_KEYS), st.none() | st.integers() | st.floats() | st.text()))
def test_a_summary_counts_as_valid_only_with_every_required_key(summary):
    required = vocab.SUMMARY_REQUIRED + (vocab.SUMMARY_REQUIRED_DONE if summary.get("status") == "done" else ())
    if any(summary.get(k) is None for k in required):
        assert "lacks" in vocab.summary_problem(summary)


def test_an_incomplete_summary_is_an_unfinished_run_everywhere(tmp_path, caplog, capsys):
    spec, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0,))
    run = a_run(out)
    run.file(store.SUMMARY).write_text(json.dumps(INCOMPLETE))
    assert run.summary() is None and run.status() == "started"
    assert "lacks config" in run.damaged_summary() and str(run.file(store.SUMMARY)) in run.damaged_summary()
    # collect leaves it out and names it (no row with a NaN accuracy)
    with caplog.at_level("WARNING"):
        results, metrics = collect(out)
    assert run.run_id not in set(results["run_id"]) and len(results) == 1
    assert f"runs/{run.run_id}/summary.json: not a valid summary: lacks config" in caplog.text
    # the sweep trains it again instead of skipping it, and says why
    caplog.clear()
    with caplog.at_level("WARNING"):
        run_sweep(spec, out, workers=0, trainer=fake_trainers.steady, progress=False)
    assert ("start", run.run_id) in fake_trainers.events(out)[-2:]
    assert run.status() == "done" and run.summary()["run_id"] == run.run_id
    assert f"{run.file(store.SUMMARY)} is not a valid summary" in caplog.text


def test_train_on_a_folder_with_an_incomplete_summary_trains_it_again(tmp_path, capsys):
    argv = ["train", "--model", "small_mlp", "--dataset", "digits", "--epochs", "1", "--train-subset", "200",
            "--no-progress", "--out", str(tmp_path / "r")]
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / store.SUMMARY).write_text(json.dumps(INCOMPLETE))
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "KeyError" not in captured.err
    assert "summary.json is not a valid summary (lacks config" in captured.err and "done" in captured.out
    assert store.RunDir(tmp_path / "r").summary()["final_test_acc"] > 0


# --- metrics.jsonl against its summary ----------------------------------------------------------------------------

def damage(path, how):
    lines = path.read_text().splitlines(keepends=True)
    if how == "truncated":
        path.write_text("".join(lines[:1]))
    elif how == "emptied":
        path.write_text("")
    elif how == "garbage line":
        path.write_text(lines[0] + "this is not json\n" + "".join(lines[1:]))
    elif how == "duplicated":
        path.write_text("".join(lines + lines[-1:]))
    elif how == "not a row":
        path.write_text(lines[0] + '{"epoch": "two"}\n' + "".join(lines[2:]))


@pytest.mark.parametrize(("how", "why"), [
    ("truncated", "epochs 2, 3 missing (the summary has 3 epochs)"),
    ("emptied", "empty, but the summary has 3 epochs"),
    ("garbage line", "line 2 not JSON"),
    ("duplicated", "epoch 3 more than once"),
    ("not a row", "line 2 epoch is 'two', not a positive integer"),
])
def test_a_damaged_metrics_file_is_named_and_everything_else_is_written(tmp_path, caplog, capsys, how, why):
    _, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0, 1))
    runs = list(store.iter_runs(out))
    damaged = runs[0]
    damage(damaged.file(store.METRICS), how)
    with caplog.at_level("WARNING"):
        results, metrics = collect(out)
    assert f"runs/{damaged.run_id}/metrics.jsonl: {why}" in caplog.text
    assert len(results) == 3  # its summary is fine: its result stays
    assert set(metrics["run_id"]) == {r.run_id for r in runs[1:]} and len(metrics) == 2 * 3
    assert main(["collect", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"runs/{damaged.run_id}/metrics.jsonl" in err and "Traceback" not in err and "bug" not in err
    assert len(pd.read_parquet(out / vocab.METRICS_TABLE)) == 2 * 3


def test_an_unfinished_runs_metrics_need_only_be_in_order(tmp_path, caplog):
    _, out = make_sweep(tmp_path, densities=(0.1,), seeds=(0,))
    run = a_run(out)
    run.file(store.SUMMARY).unlink()
    with caplog.at_level("WARNING"):
        _, metrics = collect(out, include_incomplete=True)
    assert len(metrics) == 2 * 3 and "metrics.jsonl" not in caplog.text
    damage(run.file(store.METRICS), "duplicated")
    with caplog.at_level("WARNING"):
        _, metrics = collect(out, include_incomplete=True)
    assert f"runs/{run.run_id}/metrics.jsonl: epoch 3 more than once (an unfinished run)" in caplog.text
    assert len(metrics) == 3


def test_a_grouped_sweep_names_an_incomplete_summary_and_trains_the_run_again(tmp_path, caplog):
    spec = small_spec(tmp_path, densities=(0.1, 0.2), seeds=(0,))
    out = tmp_path / "out"
    run_sweep(spec, out, workers=0, progress=False, group_size=2)  # the real trainer, in run groups
    run = a_run(out)
    (run.file(store.SUMMARY)).write_text(json.dumps(INCOMPLETE))
    with caplog.at_level("WARNING"):
        run_sweep(spec, out, workers=0, progress=False, group_size=2)
    assert caplog.text.count(f"{run.file(store.SUMMARY)} is not a valid summary (lacks config") == 1
    assert run.status() == "done" and run.summary()["run_id"] == run.run_id
