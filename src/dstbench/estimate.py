"""What runs cost before they start: training steps, time from the benchmarks' measured step times, and whether
their data sets are present. `dstbench train` and `dstbench sweep --dry-run` print these.

The step times are measurements, not a model of the hardware: a run of a model on its paper data set at the
benchmark's batch costs what the benchmark measured; other batches and image sizes scale the part of a step that
is arithmetic. Read the result as a rough figure (within a factor of about two), not a promise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

from dstbench.config import RunConfig

# One DST training step (density 0.1, magnitude pruning, random growth) of each model on its paper data set at batch
# 128 (resnet50: 256), solo, in milliseconds. CPU: benchmarks/measured/run_groups-cpu.json, K = 1, exact kernels,
# one thread (`layouts["1"]["solo_step_ms"]`), on the 2-core development machine. GPU:
# benchmarks/measured/gpu_check-h200.json (`dst_step_ms`), one NVIDIA H200. tests/test_estimate.py checks these
# numbers against those files.
CPU_SOURCE = "benchmarks/measured/run_groups-cpu.json (1 thread of a 2-core machine)"
GPU_SOURCE = "benchmarks/measured/gpu_check-h200.json (one NVIDIA H200)"
CPU_STEP_MS = {"small_mlp": 0.914, "lenet5_caffe": 33.1, "large_mlp": 43.4, "small_cnn": 71.0, "resnet56": 1153.0,
               "vgg16_bn": 1452.0}
GPU_STEP_MS = {"small_mlp": 1.80, "lenet5_caffe": 3.00, "large_mlp": 2.06, "small_cnn": 2.90, "resnet56": 29.3,
               "vgg16_bn": 7.61, "efficientnet_b0": 43.6, "resnet50": 82.5}
MEASURED_BATCH = {"resnet50": 256}  # every other model: 128
# A CPU step's floor: Python and kernel launches, whatever the batch (the small MLP's step at batch 32, README).
CPU_FLOOR_MS = 0.5
# An evaluation sample costs about a third of a training sample (a forward pass, no backward or optimizer).
EVAL_SHARE = 1 / 3


@dataclass(frozen=True)
class Cost:
    """Runs' training steps and estimated seconds (one CPU thread; one GPU, solo), and the models without a
    measured rate on each (left out of the seconds)."""

    runs: int
    steps: int
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    cpu_unmeasured: frozenset[str] = frozenset()
    gpu_unmeasured: frozenset[str] = frozenset()

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.runs + other.runs, self.steps + other.steps, self.cpu_seconds + other.cpu_seconds,
                    self.gpu_seconds + other.gpu_seconds, self.cpu_unmeasured | other.cpu_unmeasured,
                    self.gpu_unmeasured | other.gpu_unmeasured)


def steps_per_epoch(config: RunConfig) -> int:
    """Training steps in one epoch (the last batch is kept, as the trainer does)."""
    import dstbench.data

    train = dstbench.data.info(config.dataset).split_sizes[0]
    if config.train_subset is not None:
        train = min(train, config.train_subset)
    return math.ceil(train / config.batch_size)


def topology_updates(config: RunConfig) -> int:
    """How many prune-and-regrow updates the run will make (0 for dense and static runs)."""
    if not config.update_period:
        return 0
    total = config.epochs * steps_per_epoch(config)
    end = total if config.end_step is None else min(total, config.end_step)
    return end // config.update_period


def _work(config: RunConfig, model: str) -> float:
    """This run's arithmetic per step relative to the benchmark's: batch, and image area for image models."""
    import dstbench.data
    import dstbench.models

    ratio = config.batch_size / MEASURED_BATCH.get(model, 128)
    shape, measured = dstbench.data.info(config.dataset).input_shape, dstbench.models.info(model).input_shape
    if measured is not None and len(shape) == 3 and len(measured) == 3:
        ratio *= (shape[1] * shape[2]) / (measured[1] * measured[2])
    return ratio


def run_cost(config: RunConfig) -> Cost:
    """The cost of training `config` from scratch, evaluation of the validation and test splits included."""
    import dstbench.data

    per_epoch = steps_per_epoch(config)
    _, val, test = dstbench.data.info(config.dataset).split_sizes
    step_equivalents = config.epochs * (per_epoch + EVAL_SHARE * (val + test) / config.batch_size)
    work = _work(config, config.model) if config.model in CPU_STEP_MS or config.model in GPU_STEP_MS else 1.0
    cpu = gpu = 0.0
    if config.model in CPU_STEP_MS:
        measured = CPU_STEP_MS[config.model]
        cpu = step_equivalents * (CPU_FLOOR_MS + max(0.0, measured - CPU_FLOOR_MS) * work) / 1000
    if config.model in GPU_STEP_MS:  # launch-bound: a smaller step costs no less than the measured one
        gpu = step_equivalents * GPU_STEP_MS[config.model] * max(1.0, work) / 1000
    return Cost(1, config.epochs * per_epoch, cpu, gpu,
                frozenset() if config.model in CPU_STEP_MS else frozenset({config.model}),
                frozenset() if config.model in GPU_STEP_MS else frozenset({config.model}))


def duration(seconds: float) -> str:
    """under 1 s, 12 s, 4.2 min, 3.1 h, 2.5 days."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.1f} days"


def cost_line(cost: Cost, workers: int | None = None) -> str:
    """Steps, CPU time (of one core, and with `workers` processes on this machine's cores) and GPU time; models
    without a measured rate are named and left out of the times."""
    cores = os.cpu_count() or 1
    parallel = max(1, min(workers or cores, cores))
    parts = [f"{cost.steps:,} steps"]
    if cost.cpu_seconds:
        parts.append(f"CPU {duration(cost.cpu_seconds)} of one core, {duration(cost.cpu_seconds / parallel)} with "
                     f"{parallel} worker{'s' * (parallel > 1)} on this machine's {cores} cores")
    if cost.gpu_seconds:
        parts.append(f"GPU {duration(cost.gpu_seconds)}")
    for device, unmeasured in (("CPU", cost.cpu_unmeasured), ("GPU", cost.gpu_unmeasured)):
        if unmeasured:
            parts.append(f"no measured {device} rate for {', '.join(sorted(unmeasured))}")
    return "; ".join(parts)


def cost_lines(configs: Iterable[RunConfig], workers: int | None = None) -> list[str]:
    """The cost of `configs` per model and data set, then in total when there are several."""
    parts: dict[tuple[str, str], Cost] = {}
    for config in configs:
        key = (config.model, config.dataset)
        cost = run_cost(config)
        parts[key] = parts[key] + cost if key in parts else cost
    lines = [f"{model} / {dataset}, {cost.runs} run{'s' * (cost.runs != 1)}: {cost_line(cost, workers)}"
             for (model, dataset), cost in parts.items()]
    if len(parts) > 1:
        lines.append(f"all {sum(c.runs for c in parts.values())} runs: "
                     f"{cost_line(sum(parts.values(), Cost(0, 0)), workers)}")
    return lines


RATES_NOTE = (f"times from measured step times (rough, within about 2x; evaluation included, run groups not): "
              f"CPU {CPU_SOURCE}; GPU {GPU_SOURCE}, solo runs")


def data_lines(configs: Iterable[RunConfig], data_root: str | None = None) -> list[str]:
    """One line per data set the runs need (under `data_root` where given, else each run's own): where it was
    found, or that it is missing and how to get it."""
    import dstbench.data

    lines = []
    needed = {(c.dataset, data_root or c.data_root) for c in configs}
    for name, root in sorted(needed, key=lambda k: (k[0], str(k[1]))):
        try:
            lines.append(f"{name}: found, {dstbench.data.locate(name, root)}")
        except dstbench.data.DataNotFoundError as exc:
            lines.append(f"{name}: MISSING: {exc}")
    return lines


def no_update_warning(config: RunConfig) -> str | None:
    """Why a DST run would never change its topology (its update period is longer than the run), or None."""
    if not config.update_period or topology_updates(config):
        return None
    steps = config.epochs * steps_per_epoch(config)
    return (f"the update period ({config.update_period} steps) is longer than the run ({steps} steps): the "
            "topology never changes, so this trains like static sparse training; set --update-period below "
            f"{steps + 1} (or train more epochs)")


def plan_lines(config: RunConfig) -> list[str]:
    """What `dstbench train` is about to do: the data's location, epochs, steps, updates and a time estimate.
    Raises `DataNotFoundError` when the data set is missing, before anything is written."""
    import dstbench.data

    where = dstbench.data.locate(config.dataset, config.data_root)
    per_epoch, updates = steps_per_epoch(config), topology_updates(config)
    cost = run_cost(config)
    times = [f"{duration(cost.cpu_seconds)} on one CPU core" if cost.cpu_seconds else "",
             f"{duration(cost.gpu_seconds)} on one GPU" if cost.gpu_seconds else ""]
    estimate = ", ".join(t for t in times if t) or "no measured rate for this model"
    return [
        f"data: {config.dataset}: {where}",
        f"training: {config.epochs} epoch{'s' * (config.epochs != 1)} of {per_epoch:,} steps ({config.epochs * per_epoch:,} steps, batch "
        f"{config.batch_size}), {updates} topology updates",
        f"estimated time: {estimate} (rough; from step times measured in benchmarks/measured/)",
    ]
