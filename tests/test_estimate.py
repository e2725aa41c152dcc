"""What runs cost before they start (dstbench.estimate): steps, updates, times from the measured rates, data."""

import json
from pathlib import Path

import pytest

from dstbench import estimate
from dstbench.config import RunConfig
from dstbench.train import resolve_config

MEASURED = Path(__file__).resolve().parent.parent / "benchmarks" / "measured"


def config(**values):
    return resolve_config(RunConfig(**{"model": "small_mlp", "dataset": "digits", "density": 0.1, **values}))


def test_steps_and_updates_by_hand():
    # digits: 1,257 training images; batch 32 -> 40 steps per epoch (the last one of 9 images kept)
    run = config(epochs=3, batch_size=32, update_period=25)
    assert estimate.steps_per_epoch(run) == 40
    assert estimate.topology_updates(run) == 4  # steps 25, 50, 75, 100 of 120
    assert estimate.topology_updates(config(epochs=3, batch_size=32, update_period=25, end_step=60)) == 2
    assert estimate.steps_per_epoch(config(batch_size=100, train_subset=250)) == 3
    assert estimate.topology_updates(config(update_period=0)) == 0


def test_a_run_shorter_than_its_update_period_is_warned_about():
    short = config(epochs=2)  # 80 steps, the default update period of 800
    message = estimate.no_update_warning(short)
    assert "update period (800 steps) is longer than the run (80 steps)" in message
    assert "--update-period below 81" in message
    assert estimate.no_update_warning(config(epochs=2, update_period=80)) is None  # one update, at the last step
    assert estimate.no_update_warning(config(epochs=2, density=1.0)) is None  # dense: nothing to update
    assert estimate.no_update_warning(config(epochs=2, update_period=0)) is None  # static, on purpose


def test_run_cost_by_hand():
    # lenet5_caffe on its own data set at the benchmark's batch: work ratio 1, so a step costs the measured step.
    run = resolve_config(RunConfig(model="lenet5_caffe", dataset="fashionmnist", epochs=2, batch_size=128))
    cost = estimate.run_cost(run)
    steps = 2 * 422  # 54,000 / 128 rounded up
    evals = 2 * (6_000 + 10_000) / 128 * estimate.EVAL_SHARE
    assert cost.steps == steps
    assert cost.cpu_seconds == pytest.approx((steps + evals) * estimate.CPU_STEP_MS["lenet5_caffe"] / 1000)
    assert cost.gpu_seconds == pytest.approx((steps + evals) * estimate.GPU_STEP_MS["lenet5_caffe"] / 1000)
    # small_cnn on 8x8 digits at batch 32: 1/4 of the batch, 1/16 of the area of the CIFAR-10 benchmark.
    small = resolve_config(RunConfig(model="small_cnn", dataset="digits", epochs=1, batch_size=32))
    per_step = estimate.CPU_FLOOR_MS + (estimate.CPU_STEP_MS["small_cnn"] - estimate.CPU_FLOOR_MS) / 64
    assert estimate.run_cost(small).cpu_seconds == pytest.approx((40 + 540 / 32 / 3) * per_step / 1000)
    # the GPU is launch-bound: a smaller step costs what the measured one did
    assert estimate.run_cost(small).gpu_seconds == pytest.approx(
        (40 + 540 / 32 / 3) * estimate.GPU_STEP_MS["small_cnn"] / 1000)


def test_models_without_a_measured_rate_are_named_not_guessed():
    run = resolve_config(RunConfig(model="efficientnet_b0", dataset="tinyimagenet", epochs=1))
    lines = estimate.cost_lines([run, config(epochs=1)])
    assert "no measured CPU rate for efficientnet_b0" in lines[0]
    assert lines[-1].startswith("all 2 runs: ") and "no measured CPU rate for efficientnet_b0" in lines[-1]


def test_duration_text():
    assert [estimate.duration(s) for s in (0.2, 12, 252, 11_160, 216_000)] == [
        "under 1 s", "12 s", "4.2 min", "3.1 h", "2.5 days"]


def test_the_step_times_are_the_benchmarks_measurements():
    cpu = json.loads((MEASURED / "run_groups-cpu.json").read_text())
    solo = {r["model"]: r["layouts"]["1"]["solo_step_ms"] for r in cpu["rows"]
            if r["k"] == 1 and r["kernels"] == "exact"}
    assert solo.keys() == estimate.CPU_STEP_MS.keys()
    for model, ms in estimate.CPU_STEP_MS.items():
        assert ms == pytest.approx(solo[model], rel=0.005), model
    gpu = json.loads((MEASURED / "gpu_check-h200.json").read_text())
    assert gpu["environment"]["gpu"] == "NVIDIA H200"
    first = {}
    for row in gpu["models"]:  # resnet56 is measured on cifar10 first, then cifar100
        first.setdefault(row["model"], row)
    assert first.keys() == estimate.GPU_STEP_MS.keys()
    for model, ms in estimate.GPU_STEP_MS.items():
        assert ms == pytest.approx(first[model]["dst_step_ms"], rel=0.005), model
        assert first[model]["dst"]["batch_size"] == estimate.MEASURED_BATCH.get(model, 128), model


def test_data_lines_say_where_each_data_set_is_or_how_to_get_it(tmp_path):
    runs = [config(), resolve_config(RunConfig(model="small_cnn", dataset="cifar10", data_root=str(tmp_path)))]
    lines = estimate.data_lines(runs)
    assert lines[0].startswith("cifar10: MISSING: ") and f"dstbench data download cifar10 --root {tmp_path}" in lines[0]
    assert lines[1] == "digits: found, embedded (scikit-learn load_digits)"
