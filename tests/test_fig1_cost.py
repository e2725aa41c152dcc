"""Fig. 1's projected cost (benchmarks/fig1_cost.py): a spec's runs and run-steps per pair, the fastest measured way
to train them, GPU-hours and issue #19's targets, by hand on a tiny spec and made-up rate tables."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "fig1_cost.py"
_spec = importlib.util.spec_from_file_location("fig1_cost", PATH)
fc = sys.modules["fig1_cost"] = importlib.util.module_from_spec(_spec)  # dataclasses look their module up
_spec.loader.exec_module(fc)

# digits: 1,257 training images. train_subset 1000 at batch 128: 8 steps an epoch; 3 epochs: 24 steps a run
TINY = """
name = "tiny"
arm = "dst"
[base]
dataset = "digits"
epochs = 3
batch_size = 128
train_subset = 1000
[grid]
cases = [{model = "small_mlp"}, {model = "lenet5_caffe"}]
density = [0.1, 0.2]
seed = [0, 1]
[arms.drop]
base = {model = "small_mlp", dropout = 0.5, epochs = 1}
grid = {seed = [7, 8, 9]}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(TINY)
    return fc.pairs(path)


def test_pairs_count_runs_and_run_steps_from_the_spec(tiny):
    by = {(p.model, p.dataset): p for p in tiny}
    assert list(by) == [("small_mlp", "digits"), ("lenet5_caffe", "digits")]
    mlp, lenet = by[("small_mlp", "digits")], by[("lenet5_caffe", "digits")]
    # 4 DST runs of 24 steps that may share a group; 3 dropout runs of 8 steps, each solo (dropout's shared stream)
    assert (mlp.runs, mlp.run_steps) == (7, 4 * 24 + 3 * 8)
    assert sorted(mlp.classes) == [(1, 8, False)] * 3 + [(4, 24, True)]
    assert (lenet.runs, lenet.run_steps, lenet.classes) == (4, 96, ((4, 24, True),))


def test_fig1_has_its_eight_pairs_of_610_runs():
    found = fc.pairs("fig1")
    assert len(found) == 8 and all(p.runs == 610 for p in found)
    higgs = found[0]
    # Higgs: 658,112 training rows at batch 128 -> 5,142 steps an epoch, 100 epochs
    assert (higgs.model, higgs.dataset, higgs.run_steps) == ("small_mlp", "higgs", 610 * 100 * 5142)


def test_full_groups_and_a_last_group_at_the_smallest_size_that_holds_it():
    pair = fc.Pair("m", "d", 610, 610 * 100, ((610, 100, True),))
    rates = {1: 1000.0, 128: 64_000.0, 256: 100_000.0}
    # 2 groups of 256: 2 x 100 steps x 256 / 100,000; the last 98 runs as a group of 128: 100 x 128 / 64,000
    assert fc.pair_seconds(pair, rates, 256) == pytest.approx(2 * 100 * 256 / 100_000 + 100 * 128 / 64_000)
    # groups of 128: 4 x 128 + 98 (again a group of 128)
    assert fc.pair_seconds(pair, rates, 128) == pytest.approx(5 * 100 * 128 / 64_000)
    assert fc.pair_seconds(pair, rates, 1) == pytest.approx(610 * 100 / 1000)
    # only 256 measured: the last 98 runs cost a whole group of 256
    assert fc.pair_seconds(pair, {256: 1e5}, 256) == pytest.approx(3 * 100 * 256 / 100_000)
    assert fc.pair_seconds(pair, {128: 64_000.0}, 256) is None  # no rate of groups of 256


def test_runs_that_may_not_share_a_group_train_solo():
    pair = fc.Pair("m", "d", 5, 4 * 10 + 8, ((4, 10, True), (1, 8, False)))
    assert fc.pair_seconds(pair, {1: 2.0, 4: 40.0}, 4) == pytest.approx(10 * 4 / 40 + 8 / 2)
    assert fc.pair_seconds(pair, {4: 40.0}, 4) is None


@given(runs=st.integers(1, 5000), steps=st.integers(1, 1000), log_k=st.integers(0, 10),
       per_group=st.floats(0.1, 1e4))
def test_perfectly_scaling_groups_cost_one_group_step_per_group(runs, steps, log_k, per_group):
    # rate[s] = s x r: a group of any size makes r of its steps a second, so the pair costs its groups' count
    k = 2**log_k
    rates = {2**i: 2**i * per_group for i in range(log_k + 1)}
    pair = fc.Pair("m", "d", runs, runs * steps, ((runs, steps, True),))
    assert fc.pair_seconds(pair, rates, k) == pytest.approx(math.ceil(runs / k) * steps / per_group)


def rate(model, dataset, step, k, value):
    return fc.Rate(model, dataset, step, k, value)


def test_the_fastest_way_and_rates_borrowed_from_a_data_set_of_the_same_shape():
    pair = fc.Pair("resnet56", "cifar100", 10, 10 * 50, ((10, 50, True),))
    rates = [rate("resnet56", "cifar100", "eager", 1, 30.0), rate("resnet56", "cifar100", "captured", 1, 100.0),
             rate("resnet56", "cifar10", "captured", 2, 150.0), rate("resnet56", "cifar10", "captured", 4, 200.0),
             rate("resnet56", "higgs", "captured", 1, 1e9),  # another shape: never borrowed
             rate("small_cnn", "cifar100", "captured", 1, 1e9)]  # another model
    method, seconds = fc.fastest(pair, rates)
    # groups of 4 (cifar10's rates): 2 x 50 x 4 / 200 + the last 2 runs as a group of 2: 50 x 2 / 150
    assert method == "captured, groups of 4 (rates of resnet56 on cifar10)"
    assert seconds == pytest.approx(2 + 2 / 3)
    assert fc.fastest(pair, rates, steps=("eager",), solo=True) == ("eager, solo", pytest.approx(500 / 30))
    assert fc.fastest(fc.Pair("vgg16_bn", "cifar100", 1, 1, ((1, 1, True),)), rates) is None


def test_projection_json_marks_an_unmeasured_pair_and_leaves_the_totals_null():
    pairs = [fc.Pair("small_mlp", "higgs", 4, 4000, ((4, 1000, True),)),
             fc.Pair("efficientnet_b0", "tinyimagenet", 2, 600, ((2, 300, True),))]
    rates = [rate("small_mlp", "higgs", "eager", 1, 0.5), rate("small_mlp", "higgs", "captured", 4, 4.0)]
    cost = fc.project(pairs, rates, "NVIDIA H200", "2.13", {"efficientnet_b0": "skipped: past the budget"})
    assert list(cost) == ["device", "torch", "pairs", "total_gpu_hours", "eager_solo_total_gpu_hours"]
    mlp, eff = cost["pairs"]
    assert list(mlp) == ["model", "dataset", "runs", "run_steps", "method", "run_steps_per_s", "gpu_hours"]
    assert mlp["method"] == "captured, groups of 4" and mlp["run_steps_per_s"] == pytest.approx(4.0)
    assert mlp["gpu_hours"] == pytest.approx(1000 / 3600)
    assert eff["method"] == "not measured: skipped: past the budget"
    assert eff["run_steps_per_s"] is None and eff["gpu_hours"] is None
    assert cost["total_gpu_hours"] is None and cost["eager_solo_total_gpu_hours"] is None
    table = fc.markdown(cost)
    assert "| small_mlp | higgs | 4 | 4,000 | captured, groups of 4 | 4 | 0.278 |" in table
    assert "not all pairs measured; 0.278 for the 1 measured" in table
    whole = fc.project(pairs[:1], rates, "cpu", "2.13")
    assert whole["total_gpu_hours"] == pytest.approx(1000 / 3600)
    assert whole["eager_solo_total_gpu_hours"] == pytest.approx(8000 / 3600)


def model_row(model, dataset, eager_ms, busy, captured_ms=None, captured_busy=None, batch=128, update_ms=0.0):
    row = dict(model=model, dataset=dataset, dst_step_ms=eager_ms, gpu_busy_share=busy, dst=dict(batch_size=batch),
               update_ms=update_ms)
    if captured_ms is not None:
        row["capture"] = dict(step_mode="captured", captured_step_ms=captured_ms, gpu_busy_share=captured_busy)
    return row


def group_row(model, dataset, k, rate_, busy=None):
    return dict(model=model, dataset=dataset, k=k, step_mode="captured", run_steps_per_s=rate_, gpu_busy_share=busy)


def test_rates_and_targets_from_a_gpu_check_result():
    result = dict(
        models=[model_row("small_mlp", "higgs", 1.8, 0.07, captured_ms=0.2, captured_busy=0.5),
                model_row("resnet56", "cifar10", 30.0, 0.3, captured_ms=13.0, captured_busy=0.9, update_ms=80.0),
                dict(model="vgg16_bn", dataset="cifar100", error="skipped: budget")],
        groups=dict(rows=[group_row("small_mlp", "higgs", 256, 350_000.0, busy=0.85),
                          group_row("lenet5_caffe", "fashionmnist", 32, 40_000.0),
                          dict(model="large_mlp", dataset="cifar10", k=64, error="out of memory at K=64")]))
    rates = fc.rates_from(result)
    assert rate("small_mlp", "higgs", "captured", 1, 1e3 / 0.2) in rates
    # resnet56's update of 80 ms, amortised over 800 steps: 0.1 ms a step, eager and captured
    assert rate("resnet56", "cifar10", "eager", 1, 1e3 / 30.1) in rates
    assert rate("resnet56", "cifar10", "captured", 1, 1e3 / 13.1) in rates
    assert rate("small_mlp", "higgs", "captured", 256, 350_000.0) in rates and len(rates) == 6
    cost = dict(pairs=[dict(model="small_mlp", dataset="higgs", gpu_hours=0.3),
                       dict(model="lenet5_caffe", dataset="fashionmnist", gpu_hours=0.2)], total_gpu_hours=None)
    found = {name.split(" ")[0] + str(i): t for i, (name, t) in enumerate(fc.targets(result, cost).items())}
    assert found["small_mlp0"] == dict(status="met", values={"small_mlp": 0.2})
    assert found["small_mlp1"]["status"] == "met"
    # lenet5_caffe met, large_mlp ran out of memory and small_cnn never ran: not measured, not "met"
    assert found["lenet5_caffe,2"]["status"] == "not measured"
    assert found["resnet563"] == dict(status="not met", values={"resnet56": 13.0})
    # fastest modes: small_mlp's group of 256 (85% busy), resnet56 captured solo (90%)
    assert found["GPU4"] == dict(status="met", values={"small_mlp/higgs": 0.85, "resnet56/cifar10": 0.9})
    assert found["Fig.5"] == dict(status="met", values={"hours": pytest.approx(0.5)})
    assert found["all6"] == dict(status="not measured", values={"hours": None})
    assert "**not met** (resnet56 13)" in fc.targets_markdown(fc.targets(result, cost))
