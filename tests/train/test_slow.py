"""Multi-process training: torchrun with 2 gloo ranks, and a run killed with SIGKILL then restarted."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dstbench import store

from .test_loop import metrics_without_time

pytestmark = pytest.mark.slow

PAUSE = Path(__file__).resolve().parents[1] / "pause_at_checkpoint.py"

TRAIN = ["train", "--model", "small_cnn", "--dataset", "digits", "--batch-size", "64", "--lr", "0.05",
         "--density", "0.2", "--prune", "snip", "--grow", "gradient", "--update-period", "5", "--no-progress"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_torchrun_two_gloo_ranks(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dstbench", *TRAIN, "--epochs", "2", "--out", str(out)]
    subprocess.run(cmd, check=True, env=_env(), timeout=300, capture_output=True)
    folder = store.RunDir(out)
    summary = folder.summary()
    assert summary["status"] == "done" and abs(summary["final_density"] - 0.2) < 0.01
    assert len(folder.metrics()) == 2 and folder.history()
    # Two ranks of 32 average to the gradient of the global batch of 64: the same training as one process.
    subprocess.run([sys.executable, "-m", "dstbench", *TRAIN, "--epochs", "2", "--out", str(tmp_path / "one")],
                   check=True, env=_env(), timeout=300, capture_output=True)
    single = store.RunDir(tmp_path / "one")
    assert [r["train_loss"] for r in folder.metrics()] == pytest.approx(
        [r["train_loss"] for r in single.metrics()], rel=1e-3)
    assert summary["final_test_acc"] == pytest.approx(single.summary()["final_test_acc"], abs=0.02)


def test_sigkill_mid_run_then_restart_equals_uninterrupted(tmp_path):
    args = [*TRAIN, "--epochs", "4"]
    subprocess.run([sys.executable, "-m", "dstbench", *args, "--out", str(tmp_path / "straight")], check=True,
                   env=_env(), timeout=300, capture_output=True)
    broken, paused = tmp_path / "broken", tmp_path / "paused"
    # It stops for good right after its first checkpoint (epoch 1 of 4) and says so: killed there, never too late.
    proc = subprocess.Popen([sys.executable, str(PAUSE), str(paused), *args, "--out", str(broken)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not paused.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert paused.exists(), "no checkpoint written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.RunDir(broken).summary() is None, "killed before the end"
    subprocess.run([sys.executable, "-m", "dstbench", *args, "--out", str(broken)], check=True, env=_env(),
                   timeout=300, capture_output=True)
    assert metrics_without_time(broken) == metrics_without_time(tmp_path / "straight")
    a, b = store.RunDir(broken).masks("final"), store.RunDir(tmp_path / "straight").masks("final")
    assert all((a[n] == b[n]).all() for n in a)
