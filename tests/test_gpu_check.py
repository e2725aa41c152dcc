"""benchmarks/gpu_check.py in --cpu-smoke mode: every part of the GPU check runs on the CPU, so it never rots."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def test_the_gpu_check_runs_every_part_on_the_cpu(tmp_path):
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
    assert {row["amp"]["batch_size"] for row in [models["resnet56"]]} == {4}
    assert models["resnet56"]["amp_large_batch"]["batch_size"] == 8
    assert set(result["targets"]) and result["run_groups"]["status"] == "ok"
    # the run groups' smoke: fused linear and conv layers, both kernels, K = 1 and 2 (a minute, not three)
    rows = result["run_groups"]["result"]["rows"]
    assert {(r["model"], r["kernels"], r["k"]) for r in rows} == {
        (m, kernels, k) for m in ("small_mlp", "small_cnn") for kernels in ("exact", "batched") for k in (1, 2)}
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| small_cnn | cifar10 | 4 |" in table and "bf16 speed-up" in table
    assert "[tests] exit 0" in done.stdout and "[models] resnet56" in done.stdout
