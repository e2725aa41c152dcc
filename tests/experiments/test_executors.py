"""Sweeps with real worker processes: local pools, concurrent sweeps, kill -9, submitit and Ray."""

import importlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from dstbench import store
from dstbench.cli import main
from dstbench.experiments import collect, load_spec, run_sweep

from . import fake_trainers
from .fake_trainers import events
from .helpers import env_with_tests_on_path, small_spec

FAKE = "experiments.fake_trainers:steady"


def counts(out, kind):
    return Counter(run_id for event, run_id in events(out) if event == kind)


def assert_all_done_once(spec, out):
    ids = {r.run_id for r in spec.expand()}
    assert {run_id: store.RunDir(out / "runs" / run_id).status() for run_id in ids} == dict.fromkeys(ids, "done")
    assert counts(out, "finish") == dict.fromkeys(ids, 1)


def results_of(out):
    """Everything a sweep produced that must not depend on how it was scheduled or interrupted."""
    results, metrics = collect(out)
    results = results.drop(columns=["wall_seconds"]).sort_values("run_id").reset_index(drop=True)
    metrics = metrics.sort_values(["run_id", "epoch"]).reset_index(drop=True)
    return results, metrics


def same_results(a, b):
    import pandas as pd

    for x, y in zip(results_of(a), results_of(b), strict=True):
        pd.testing.assert_frame_equal(x, y)


def sweep_cli(spec_path, out, *args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "dstbench", "sweep", str(spec_path), "--out", str(out), "--trainer", FAKE,
         "--no-progress", *args],
        env=env or env_with_tests_on_path(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )


def test_a_local_pool_runs_every_run_once(tmp_path):
    spec = small_spec(tmp_path)
    out = tmp_path / "out"
    result = run_sweep(spec, out, workers=2, trainer=fake_trainers.steady, progress=False)
    assert result.ok and result.counts.done == 7
    assert_all_done_once(spec, out)
    assert counts(out, "start") == counts(out, "finish")
    threads = {store.RunDir(out / "runs" / r.run_id).config()["num_threads"] for r in spec.expand()}
    assert threads == {max(1, os.cpu_count() // 2)}  # two workers share the cores instead of fighting over them


def test_the_sweep_cli_reports_and_reruns_nothing(tmp_path, capsys):
    small_spec(tmp_path, densities=(0.1,), seeds=(0, 1))
    out = tmp_path / "out"
    argv = ["sweep", str(tmp_path / "small.toml"), "--out", str(out), "--workers", "0", "--no-progress",
            "--trainer", "experiments.fake_trainers:flaky"]
    assert main(argv) == 1  # seed 1 fails
    printed = capsys.readouterr()
    assert "small: 2 done (2 now), 1 failed" in printed.out and "boom in the data loader" in printed.err
    assert main(argv) == 1 and "2 done (0 now)" in capsys.readouterr().out
    assert sum(counts(out, "start").values()) == 3
    assert main([*argv[:-1], "experiments.fake_trainers:nope"]) == 2
    assert "has no function 'nope'" in capsys.readouterr().err
    assert main([*argv, "--dry-run", "--only", "seed=1"]) == 0
    assert "1 runs selected of 3 grid points (dst: 1); 0 failed to retry" in capsys.readouterr().out
    assert main(["sweep", "fig99", "--out", str(out)]) == 2 and "built-in specs" in capsys.readouterr().err


@pytest.mark.slow
def test_two_sweeps_started_at_once_on_one_folder_run_every_run_once(tmp_path):
    small_spec(tmp_path, densities=(0.1, 0.2, 0.3), seeds=(0, 1, 2, 3))
    out = tmp_path / "out"
    env = {**env_with_tests_on_path(), "FAKE_SLEEP": "0.05"}
    procs = [sweep_cli(tmp_path / "small.toml", out, "--workers", "2", env=env) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    spec = load_spec(tmp_path / "small.toml")
    assert_all_done_once(spec, out)
    assert counts(out, "start") == counts(out, "finish")  # none started twice
    assert len(store.read_json(out / "sweeps" / "small.json")["runs"]) == 13


@pytest.mark.slow
@pytest.mark.parametrize("point", ["epoch", "checkpoint"])
def test_a_worker_killed_mid_run_is_replaced_and_the_results_match_an_uninterrupted_sweep(tmp_path, point):
    spec = small_spec(tmp_path, densities=(0.1, 0.2), seeds=(0, 1))
    reference = tmp_path / "reference"
    run_sweep(spec, reference, workers=0, trainer=fake_trainers.steady, progress=False)
    out = tmp_path / "out"
    victims = [r.run_id for r in spec.expand()][:2]
    (out / "fake-kill").mkdir(parents=True)
    for run_id in victims:
        (out / "fake-kill" / f"{run_id}.{point}.2").touch()  # SIGKILL during epoch 2 of 3
    proc = sweep_cli(tmp_path / "small.toml", out, "--workers", "2")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err.count("was killed (signal 9); starting another") == 2
    assert_all_done_once(spec, out)
    assert all(counts(out, "start")[v] == 2 for v in victims)  # resumed once each
    if point == "checkpoint":
        assert any(p.name.startswith(".checkpoint.pt.") for v in victims for p in (out / "runs" / v).iterdir())
    same_results(out, reference)


@pytest.mark.slow
def test_a_sweep_killed_with_kill_9_finishes_when_started_again(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1, 0.2), seeds=(0, 1, 2))
    reference = tmp_path / "reference"
    run_sweep(spec, reference, workers=0, trainer=fake_trainers.steady, progress=False)
    out = tmp_path / "out"
    env = {**env_with_tests_on_path(), "FAKE_SLEEP": "0.2"}
    proc = sweep_cli(tmp_path / "small.toml", out, "--workers", "2", env=env)
    deadline = time.time() + 60
    while len(counts(out, "finish")) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, wherever they are
    proc.wait()
    assert len(counts(out, "finish")) < 7
    again = sweep_cli(tmp_path / "small.toml", out, "--workers", "2")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert_all_done_once(spec, out)
    same_results(out, reference)


@pytest.mark.slow
def test_submitit_job_arrays_run_the_same_claim_loop(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", env_with_tests_on_path()["PYTHONPATH"])
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1, 2))
    out = tmp_path / "out"
    run_sweep(spec, out, workers=0, trainer=fake_trainers.steady, progress=False, only={"seed": [0]})
    result = run_sweep(spec, out, workers=2, executor="submitit", trainer=FAKE, progress=False,
                       executor_options={"cluster": "local", "timeout_min": 5})
    assert result.ok, result.problems
    assert_all_done_once(spec, out)  # the local run and the array tasks shared the folder
    assert (out / "submitit").is_dir()


@pytest.mark.slow
def test_ray_tasks_run_the_same_claim_loop(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", env_with_tests_on_path()["PYTHONPATH"])
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1, 2))
    out = tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        result = run_sweep(spec, out, workers=2, executor="ray", trainer=FAKE, progress=False)
    finally:
        ray.shutdown()
    assert result.ok, result.problems
    assert_all_done_once(spec, out)


@pytest.mark.parametrize(("executor", "extra"), [("submitit", "slurm"), ("ray", "ray")])
def test_a_missing_optional_executor_says_how_to_install_it(tmp_path, monkeypatch, executor, extra):
    monkeypatch.setitem(sys.modules, executor, None)  # import fails as if not installed
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    with pytest.raises(ImportError, match=rf"pip install 'dstbench\[{extra}\]'"):
        run_sweep(spec, tmp_path / "out", executor=executor, trainer=fake_trainers.steady, progress=False)
    argv = ["sweep", spec.path, "--out", str(tmp_path / "out"), "--executor", executor, "--no-progress"]
    assert main(argv) == 2


def test_executors_reject_what_they_cannot_do(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="unknown executor 'k8s'; valid: local, submitit, ray"):
        run_sweep(spec, out, executor="k8s", trainer=fake_trainers.steady, progress=False)
    with pytest.raises(ValueError, match="takes no options"):
        run_sweep(spec, out, trainer=fake_trainers.steady, progress=False, executor_options={"x": 1})
    with pytest.raises(ValueError, match="cannot detach"):
        run_sweep(spec, out, trainer=fake_trainers.steady, progress=False, wait=False)


@pytest.mark.slow
def test_the_real_trainer_runs_a_quick_spec_end_to_end(tmp_path, capsys):
    loop = importlib.import_module("dstbench.train.loop")
    assert callable(getattr(loop, "run", None))
    out = tmp_path / "out"
    argv = ["sweep", "quick-fig5", "--out", str(out), "--workers", "2", "--no-progress",
            "--only", "arm=dst", "--only", "grow=random", "--only", "prune=magnitude"]
    assert main(argv) == 0
    assert "quick-fig5: 5 done (5 now), 0 failed" in capsys.readouterr().out
    assert main(argv) == 0 and "5 done (0 now)" in capsys.readouterr().out
    assert main(["status", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["quick-fig5", "51", "5", "0", "0", "46"]
    assert main(["collect", str(out)]) == 0
    results, metrics = collect(out)
    assert len(results) == 5 and set(results["update_period"]) == {5, 10, 20, 40, 80}
    assert (results["best_val_test_acc"] > 0.5).all() and set(metrics["epoch"]) == set(range(1, 6))
