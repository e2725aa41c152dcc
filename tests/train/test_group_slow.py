"""Run groups in real sweep processes: a grouped sweep killed with kill -9 and started again, and two grouped
sweeps on one folder at once (issue #11)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dstbench import store, vocab
from dstbench.experiments import load_spec

from .group_helpers import model_state, same_masks, without_time

pytestmark = pytest.mark.slow

PAUSE = Path(__file__).resolve().parents[1] / "pause_at_checkpoint.py"

SPEC = """
name = "grouped-kill"
description = "a grouped sweep to kill"
arm = "dst"

[base]
model = "small_cnn"
dataset = "digits"
epochs = 6
batch_size = 32
lr = 0.05
update_period = 10

[grid]
density = [0.1, 0.2]
prune = ["magnitude", "snip"]
seed = [0, 1]

[arms.dense]
base = {density = 1.0}
grid = {seed = [0]}
"""


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "DSTBENCH_GROUP_CHECKPOINT_SECONDS": "0"}


def _sweep(spec, out, *args):
    return subprocess.Popen([sys.executable, "-m", "dstbench", "sweep", str(spec), "--out", str(out), "--no-progress",
                             *args], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    return out, err


def _run_ids(spec_path):
    return [r.run_id for r in load_spec(spec_path).expand()]


def test_a_grouped_sweep_killed_with_kill_9_resumes_its_group_bit_identically(tmp_path):
    spec = tmp_path / "grouped-kill.toml"
    spec.write_text(SPEC)
    ids = _run_ids(spec)
    reference = tmp_path / "reference"
    _finish(_sweep(spec, reference, "--group-size", "8", "--workers", "1", "--num-threads", "1"))
    out, paused = tmp_path / "out", tmp_path / "paused"
    # The sweep trains in its own process (--workers 0) and stops for good right after the group's first
    # checkpoint (epoch 1 of 6), saying so: killed there, never after the group has finished.
    proc = subprocess.Popen([sys.executable, str(PAUSE), str(paused), "sweep", str(spec), "--out", str(out),
                             "--no-progress", "--group-size", "8", "--workers", "0", "--num-threads", "1"],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not paused.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list((out / vocab.GROUPS).glob("*/checkpoint.pt")), "no group checkpoint before the deadline"
    assert not all(store.RunDir(out / store.RUNS / i).summary() for i in ids), "killed before the end"
    _finish(_sweep(spec, out, "--group-size", "8", "--workers", "1", "--num-threads", "1"))
    for run_id in ids:
        a, b = store.RunDir(out / store.RUNS / run_id), store.RunDir(reference / store.RUNS / run_id)
        assert a.summary()["status"] == "done"
        assert (a.summary()["group"] or {}).get("id") == (b.summary()["group"] or {}).get("id")
        assert without_time(a.metrics()) == without_time(b.metrics())
        assert a.history() == b.history()
        same_masks(a, b)
        wa, wb = model_state(a.path), model_state(b.path)
        assert all(torch.equal(wa[k], wb[k]) for k in wb)
    assert sum(store.RunDir(out / store.RUNS / i).summary()["group"] is not None for i in ids) == 8
    assert not list((out / vocab.GROUPS).glob("*/checkpoint.pt"))


def test_two_grouped_sweeps_on_one_folder_train_every_run_once(tmp_path):
    out = tmp_path / "out"
    args = ("--group-size", "8", "--workers", "1", "--num-threads", "1")
    first = _sweep("study-small-fig1", out, *args)
    # The second starts once the first holds its first group (8 claims): that group is trained as a group whatever
    # the two do next, which depends on how the machine schedules them.
    deadline = time.time() + 300
    while len(list((out / vocab.CLAIMS).glob("*.json"))) < 8 and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    procs = [first, _sweep("study-small-fig1", out, *args)]
    for proc in procs:
        _finish(proc)
    runs = load_spec("study-small-fig1").expand()
    assert len(runs) > 50
    grouped = 0
    for run in runs:
        folder = store.RunDir(out / store.RUNS / run.run_id)
        summary = folder.summary()
        assert summary["status"] == "done", run.run_id
        assert [r["epoch"] for r in folder.metrics()] == list(range(1, run.config.epochs + 1)), run.run_id
        keys = [(h["step"], h["layer"]) for h in folder.history()]
        assert len(keys) == len(set(keys)), run.run_id  # no update recorded twice
        grouped += summary["group"] is not None
    assert grouped >= 8  # at least the first sweep's first group
    assert not list((out / vocab.GROUPS).glob("*/checkpoint.pt"))

