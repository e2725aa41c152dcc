"""The GPU check's run-group ladder (benchmarks/capture_check.py) on the CPU: where it stops and what a row says."""

import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))  # the scripts' own imports

import capture_check  # noqa: E402

PLAN = capture_check.GroupPlan(("small_mlp",), max_k=4, chunk_seconds=0.0, rounds=1, first_period=3, batch_size=4,
                               train_samples=8)


def test_the_ladder_stops_before_a_group_over_the_memory_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTBENCH_GROUP_MEMORY_GB", "1e-9")
    rows, note = capture_check.ladder("small_mlp", PLAN, torch.device("cpu"), tmp_path, time.perf_counter() + 60)
    assert rows == [] and note.startswith("stopped before K=1: estimated ") and "GiB memory budget" in note


def test_the_ladder_is_cut_when_the_next_size_would_pass_the_time_budget(tmp_path):
    # the first size always runs; the second would need twice its time, and no time is left
    rows, note = capture_check.ladder("small_mlp", PLAN, torch.device("cpu"), tmp_path, time.perf_counter())
    assert note == "cut after K=1: K=2 would pass the part's time budget"
    (row,) = rows
    assert (row["model"], row["dataset"], row["k"], row["batch_size"]) == ("small_mlp", "higgs", 1, 4)
    # on a CPU "auto" steps eagerly, for no reason worth a line
    assert (row["step_mode"], row["capture_reason"], row["update_period"]) == ("eager", None, 3)
    step_s = row["group_step_ms"] / 1e3
    assert row["run_steps_per_s"] == pytest.approx(1 / (step_s + row["update_ms"] / 1e3 / 800))


def test_the_ladder_doubles_k_up_to_the_plans_largest(tmp_path):
    rows, note = capture_check.ladder("small_mlp", PLAN, torch.device("cpu"), tmp_path, time.perf_counter() + 600)
    assert [r["k"] for r in rows] == [1, 2, 4] and note == "stopped at the plan's largest K, 4"
    assert all(r["run_steps_per_s"] > 0 and r["update_period"] == 3 for r in rows)
