"""DistributedDataParallel on the GPUs present, through torchrun: NCCL with one rank per GPU (world size 1 on a
single GPU still goes through DDP), and gloo on CUDA tensors with two ranks sharing the GPUs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from dstbench import store
from dstbench.train.distributed import BACKEND_VARIABLE

pytestmark = pytest.mark.gpu

TRAIN = ["train", "--model", "small_cnn", "--dataset", "digits", "--batch-size", "32", "--lr", "0.1",
         "--density", "0.3", "--prune", "snip", "--grow", "gradient", "--update-period", "5", "--epochs", "2",
         "--device", "cuda", "--no-progress"]


def _torchrun(out, ranks, backend=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if backend:
        env[BACKEND_VARIABLE] = backend
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
           "-m", "dstbench", *TRAIN, "--out", str(out)]
    done = subprocess.run(cmd, env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return store.RunDir(out)


def _check(folder):
    summary = folder.summary()
    assert summary["status"] == "done" and summary["final_density"] == pytest.approx(0.3, abs=0.01)
    assert [r["epoch"] for r in folder.metrics()] == [1, 2] and summary["final_test_acc"] > 0.2
    # every update checked that all ranks chose the same masks (the engine raises otherwise)
    assert folder.history() and all(h["pruned"] == h["grown"] for h in folder.history())
    # and no inactive weight moved: DDP's gradient reduction writes .grad, so weights are masked every step
    active = sum(int(m.sum()) for m in folder.masks("final").values())
    assert summary["params_active"] <= summary["params_total"] - summary["params_sparse"] + active
    return summary


def test_nccl_one_rank_per_gpu(tmp_path):
    _check(_torchrun(tmp_path / "nccl", torch.cuda.device_count()))


def test_gloo_two_ranks_on_cuda_tensors(tmp_path):
    _check(_torchrun(tmp_path / "gloo", 2, backend="gloo"))
