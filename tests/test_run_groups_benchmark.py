"""benchmarks/run_groups.py --quick on the CPU: the run-group benchmark runs end to end, so it never rots."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run_groups.py"


def test_the_run_group_benchmark_times_groups_and_solo_runs_on_the_cpu(tmp_path):
    out = tmp_path / "run_groups.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--models", "small_mlp",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["benchmark"] == "run_groups" and result["mode"] == "quick" and result["device"] == "cpu"
    env = result["environment"]
    assert env["device"] == "cpu" and env["torch"] and env["cores"] >= 1
    assert result["failed_models"] == []
    rows = result["rows"]
    assert {(r["kernels"], r["k"]) for r in rows} == {(kernels, k) for kernels in ("exact", "batched")
                                                      for k in (1, 2, 4)}
    for row in rows:
        assert "error" not in row, row
        assert row["model"] == "small_mlp" and row["dataset"] == "higgs" and row["batch_size"] == 128
        assert row["group_run_steps_per_s"] > 0 and row["solo_run_steps_per_s"] > 0
        assert row["ratio"] > 0 and row["paired_ratio"] > 0 and row["estimated_gib"] > 0
        assert row["group_layout"] and row["solo_layout"] and row["layouts"]
    projection = {p["model"]: p for p in result["projection"]}
    small = projection["small_mlp"]
    assert small["device"] == "cpu" and small["runs"] > 0 and small["total_run_steps"] > 0
    assert small["hours"] > 0 and small["solo_hours"] > 0
    assert result["targets"]
    table = out.with_suffix(".md").read_text()
    assert "| small_mlp | 4 | batched |" in table and "fig1 projection" in table
