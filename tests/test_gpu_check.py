"""benchmarks/gpu_check.py in --cpu-smoke mode: every part of the GPU check runs on the CPU, so it never rots."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def test_the_gpu_check_runs_every_part_on_the_cpu(tmp_path):
    measured = SCRIPT.parent / "measured" / "fig1-cost.json"
    before = measured.stat().st_mtime_ns if measured.exists() else None
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["mode"] == "cpu-smoke" and result["environment"]["device"] == "cpu"
    assert result["tests"]["returncode"] == 0 and result["tests"]["collected"] >= 30  # the gpu tests import
    models = {r["model"]: r for r in result["models"]}
    assert set(models) == {"small_mlp", "small_cnn", "resnet56"}
    for row in models.values():
        assert "error" not in row, row
        for side in ("dense", "dst"):
            assert row[side]["samples_per_s"] > 0 and row[side]["timed_steps"] == 2
        assert row["update_ms"] > 0 and row["dst_step_ms"] > 0 and 0 < row["input_share"]
        capture = row["capture"]  # on a CPU "auto" steps eagerly: the comparison runs, the mode says so
        assert capture["step_mode"] == "eager" and capture["captured_step_ms"] > 0 and capture["speedup"] > 0
    resnet = models["resnet56"]
    assert [resnet[k]["batch_size"] for k in ("amp", "amp_large_batch", "amp_captured", "amp_captured_large_batch")
            ] == [4, 8, 4, 8]
    assert set(result["targets"])
    # the run groups: fused linear and conv layers, K = 1 and 2, each with its update amortised
    groups = result["groups"]
    assert {(r["model"], r["k"]) for r in groups["rows"]} == {(m, k) for m in ("small_mlp", "small_cnn")
                                                              for k in (1, 2)}
    assert all(r["run_steps_per_s"] > 0 and r["group_step_ms"] > 0 and r["update_period"] == 3
               for r in groups["rows"])
    assert set(groups["notes"]) == {"small_mlp", "small_cnn"}
    # Fig. 1's projection: in the --out folder, never in benchmarks/measured
    cost = json.loads((tmp_path / "fig1-cost.json").read_text())
    assert (measured.stat().st_mtime_ns if measured.exists() else None) == before
    assert list(cost) == ["device", "torch", "pairs", "total_gpu_hours", "eager_solo_total_gpu_hours"]
    pairs = {(p["model"], p["dataset"]): p for p in cost["pairs"]}
    assert len(pairs) == 8 and sum(p["runs"] for p in pairs.values()) == 4880
    for key in [("small_mlp", "higgs"), ("small_cnn", "cifar10"), ("resnet56", "cifar10"), ("resnet56", "cifar100")]:
        assert pairs[key]["run_steps_per_s"] > 0 and pairs[key]["gpu_hours"] > 0, pairs[key]
    assert pairs[("vgg16_bn", "cifar100")]["method"].startswith("not measured")
    assert pairs[("vgg16_bn", "cifar100")]["gpu_hours"] is None and cost["total_gpu_hours"] is None
    assert {t["status"] for t in result["fig1_targets"].values()} <= {"met", "not met", "not measured"}
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| small_cnn | cifar10 | 4 |" in table and "bf16 speed-up" in table and "captured DST step ms" in table
    assert "| small_mlp | higgs | 2 |" in table and "Issue #19's targets" in table
    assert "| resnet56 | cifar100 | 610 | 42,944,000 |" in (tmp_path / "fig1-cost.md").read_text()
    assert "[tests] exit 0" in done.stdout and "[models] resnet56" in done.stdout and "[groups] small_cnn" in done.stdout
