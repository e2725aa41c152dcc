"""The GPU check's measurements for issue #19 (`benchmarks/gpu_check.py` runs them): the captured training step
against the eager one, and run groups of K = 1, 2, 4, ... members with the captured step.

- Captured against eager: a solo DST run (density 0.1, update period 800) with ``capture="auto"`` in chunks
  interleaved with the eager run's (``capture="off"``); step ms of each, the speed-up, the GPU busy share of the
  captured step, and the step mode the trainer chose (`Trainer.step_mode`; `capture_reason` says why not).
- Run groups: K members of mixed criteria (`run_groups.PROFILES`, seed k) with ``capture="auto"``, K doubling
  until the group's estimated memory passes the device's budget, it runs out of memory, `GroupPlan.max_k`, or the
  part's time runs out (the next K is not started when twice the last K's time would not fit). The update period
  P of a group is chosen so that its plain steps make a chunk of about `chunk_seconds`; after whole periods of
  warm-up (the capture, the first update), each round times P - 1 plain steps and then the update's step. A
  run-step costs a plain step plus the update's extra time over the paper's 800 steps: run-steps/s = K / (step +
  update / 800).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from bench_common import (
    Setup,
    Timed,
    config_for,
    gib,
    gpu_busy_share,
    interleaved_ratio,
    setup_for,
    synthetic,
)
from fig1_cost import PAPER_PERIOD
from run_groups import DENSITY, MODELS, PROFILES, TimedGroup, _free, _is_oom

from dstbench.config import RunConfig
from dstbench.data import DataSplits
from dstbench.models.fusion import estimated_group_bytes
from dstbench.train.capture import WARMUP_STEPS
from dstbench.train.grouping import memory_budget
from dstbench.train.setup import build_for
from dstbench.train.trainer import Trainer


@dataclass(frozen=True)
class GroupPlan:
    """How the run groups' part looks: which models (on their `run_groups.MODELS` data set), the largest K, the
    target length of a chunk of plain steps, rounds, the update period of K = 1 (later K: from the last K's step)."""

    models: tuple[str, ...]
    max_k: int
    chunk_seconds: float
    rounds: int
    first_period: int
    batch_size: int | None = None  # None: the paper's recipe
    train_samples: int | None = None


def modes(trainer: Trainer) -> dict[str, Any]:
    """The step mode a trainer chose and why an "auto" run on CUDA steps eagerly (None: it is captured, asked to
    be eager, or not on CUDA)."""
    return dict(step_mode=trainer.step_mode, capture_reason=trainer.capture_reason)


# ------------------------------------------------------------------------------------------------ solo

def captured_vs_eager(eager: Timed, config: RunConfig, data: DataSplits, folder: Path, warmup: int, chunk: int,
                      rounds: int) -> tuple[dict[str, Any], Timed]:
    """The captured run of `config` against the `eager` run of the same settings; its row and its timer."""
    run = Timed(config, data, folder)
    run.steps(warmup)  # the first steps and the capture
    speedup, captured_s, eager_s = interleaved_ratio(run, eager, chunk, rounds)  # eager time / captured time
    row = dict(**modes(run.trainer), eager_step_ms=1e3 * eager_s, captured_step_ms=1e3 * captured_s,
               speedup=speedup)
    row["gpu_busy_share"] = (gpu_busy_share(run, chunk, captured_s, "capture") if run.device.type == "cuda"
                             else None)
    return row, run


def capture_markdown(models: list[dict[str, Any]]) -> str:
    """The captured-against-eager table of the models part's rows."""
    rows = [r for r in models if "capture" in r]
    if not rows:
        return ""
    lines = ["| model | data | eager DST step ms | captured DST step ms | speed-up | step mode | GPU busy eager / "
             "captured |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["capture"]
        if "error" in c:
            lines.append(f"| {r['model']} | {r['dataset']} | failed: {c['error']} ||||||")
            continue
        mode = c["step_mode"] + (f" ({c['capture_reason']})" if c["capture_reason"] else "")
        lines.append(f"| {r['model']} | {r['dataset']} | {c['eager_step_ms']:.3f} | {c['captured_step_ms']:.3f} | "
                     f"{c['speedup']:.2f}x | {mode} | {_share(r['gpu_busy_share'])} / {_share(c['gpu_busy_share'])} |")
    return "\n".join(lines) + "\n"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


# ------------------------------------------------------------------------------------------------ groups

def group_configs(setup: Setup, device: str, size: int, period: int, batch_size: int | None) -> list[RunConfig]:
    """K = `size` members: DST at `DENSITY`, member k with criteria `PROFILES[k % 4]` and seed k, captured."""
    return [config_for(setup, device, batch_size, density=DENSITY, prune=PROFILES[k % len(PROFILES)][0],
                       grow=PROFILES[k % len(PROFILES)][1], update_period=period, seed=k, capture="auto")
            for k in range(size)]


def time_group(setup: Setup, plan: GroupPlan, data: DataSplits, folder: Path, size: int, period: int
               ) -> dict[str, Any]:
    """One group of `size` members with update period `period`: plain steps, the update's extra time, and
    run-steps/s with the update amortised over `PAPER_PERIOD` steps."""
    device = data.train.x.device
    group = TimedGroup(group_configs(setup, device.type, size, period, plan.batch_size), data, folder, "auto")
    # whole periods of warm-up (the first update, the graph's eager warm-up steps and its capture), so that every
    # timed round starts right after an update and replays a graph that exists
    group.steps(period * math.ceil((WARMUP_STEPS + 2) / period))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    plain, update = [], []
    for _ in range(plan.rounds):  # aligned: each round starts right after an update
        plain.append(group.steps(period - 1) / (period - 1))
        update.append(group.steps(1))
    step_s = statistics.median(plain)
    update_s = max(0.0, statistics.median(update) - step_s)
    row = dict(model=setup.model, dataset=setup.dataset, k=size, batch_size=group.trainer.config.batch_size,
               **modes(group.trainer), kernels=group.trainer.kernels, update_period=period, rounds=plan.rounds,
               group_step_ms=1e3 * step_s, update_ms=1e3 * update_s,
               run_steps_per_s=size / (step_s + update_s / PAPER_PERIOD),
               peak_gib=gib(torch.cuda.max_memory_allocated(device) - base) if device.type == "cuda" else None)
    row["gpu_busy_share"] = (gpu_busy_share(group, period - 1, step_s, setup.model) if device.type == "cuda"
                             else None)
    return row


def ladder(model: str, plan: GroupPlan, device: torch.device, tmp: Path, deadline: float
           ) -> tuple[list[dict[str, Any]], str]:
    """The rows of K = 1, 2, 4, ... of `model`, and why the ladder stopped where it did."""
    setup = setup_for(model, MODELS[model])
    data = synthetic(setup, device, plan.train_samples)
    first = group_configs(setup, device.type, 1, plan.first_period, plan.batch_size)[0]
    one = build_for(first, data)
    example = torch.zeros((2, *setup.shape))
    slots = 1 if first.optimizer == "sgd" else 2
    budget = memory_budget(device)
    captured = device.type == "cuda"  # as a sweep sizes its groups: a graph's memory beside the eager steps'
    rows: list[dict[str, Any]] = []
    period, size, last = plan.first_period, 1, 0.0
    while size <= plan.max_k:
        if rows and time.perf_counter() + 2 * last > deadline:
            return rows, f"cut after K={size // 2}: K={size} would pass the part's time budget"
        estimate = estimated_group_bytes(one, example, size, first.batch_size, optimizer_slots=slots,
                                         captured=captured)
        if estimate > budget:
            return rows, f"stopped before K={size}: estimated {gib(estimate):.1f} GiB over the {gib(budget):.1f} " \
                         f"GiB memory budget"
        started = time.perf_counter()
        try:
            row = time_group(setup, plan, data, tmp / f"{model}-{size}", size, period)
        except Exception as exc:  # the sizes timed so far keep their rows
            _free(device)
            if _is_oom(exc):
                return rows, f"out of memory at K={size}"
            traceback.print_exc()
            return rows, f"failed at K={size}: {type(exc).__name__}: {exc}"
        last = time.perf_counter() - started
        rows.append(row)
        busy = f"  GPU busy {100 * row['gpu_busy_share']:.0f}%" if row["gpu_busy_share"] is not None else ""
        print(f"[groups] {model:<13} K={size:<5} {row['step_mode']:<8} step {row['group_step_ms']:8.3f} ms  update "
              f"{row['update_ms']:8.1f} ms  {row['run_steps_per_s']:>12,.0f} run-steps/s  (period {period}, "
              f"{last:.1f} s){busy}", flush=True)
        _free(device)
        # the next K's plain steps make about one chunk if its step takes up to twice this K's
        period = max(3, min(PAPER_PERIOD, round(plan.chunk_seconds / (2 * max(1e-6, row["group_step_ms"] / 1e3)))))
        size *= 2
    return rows, f"stopped at the plan's largest K, {plan.max_k}"


def part_groups(plan: GroupPlan, device: torch.device, deadline: float) -> dict[str, Any]:
    """Every model's ladder; each model gets an equal share of the time left (unused time passes on)."""
    result: dict[str, Any] = dict(rows=[], notes={})
    with tempfile.TemporaryDirectory() as tmp:
        for i, model in enumerate(plan.models):
            left = deadline - time.perf_counter()
            if left <= 0:
                result["notes"][model] = "skipped: past the run groups part's time budget"
                print(f"[groups] {model}: {result['notes'][model]}", flush=True)
                continue
            try:
                rows, note = ladder(model, plan, device, Path(tmp),
                                    time.perf_counter() + left / (len(plan.models) - i))
            except Exception as exc:  # one model's failure must not cost the others' numbers
                traceback.print_exc()
                rows, note = [], f"failed: {type(exc).__name__}: {exc}"
            result["rows"] += rows
            result["notes"][model] = note
            print(f"[groups] {model}: {note}", flush=True)
            _free(device)
    return result


def groups_markdown(groups: dict[str, Any]) -> str:
    """The run groups' table and why each ladder stopped."""
    lines = ["| model | data | K | step mode | group step ms | update ms | run-steps/s (update / 800 steps) "
             "| GPU busy | peak GiB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in groups["rows"]:
        mode = r["step_mode"] + (f" ({r['capture_reason']})" if r["capture_reason"] else "")
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        lines.append(f"| {r['model']} | {r['dataset']} | {r['k']} | {mode} | {r['group_step_ms']:.3f} | "
                     f"{r['update_ms']:.1f} | {r['run_steps_per_s']:,.0f} | {_share(r['gpu_busy_share'])} | {peak} |")
    lines += ["", *(f"- {model}: {note}" for model, note in groups["notes"].items())]
    return "\n".join(lines) + "\n"
