"""Run groups against solo runs: run-steps per second of K runs fused into one model (`dstbench.train.group`)
against the same K runs trained solo, one after the other, on the same device and cores.

Per fusible paper model, on synthetic data of its data set's real shapes (`bench_common.synthetic`), through
the trainer's own step (`Trainer.train_step` over K members, or one: batches, forward, backward,
optimizer, LR schedule, every member's DST engine). Runs are DST at density 0.1 with mixed criteria (member k
has prune/grow `PROFILES[k % 4]`, seed k); the update period is the chunk length, so every timed chunk of
every run holds exactly one topology update (an update-heavy regime: the paper's period is 800).

For K = 1, 2, 4, ... (until the group's estimated memory would pass the device's, or it runs out of memory):

- group side: chunks of n fused steps; run-steps/s = K x group steps/s;
- solo side: chunks of n solo steps of each criteria profile among the K members, right before or after the
  group's chunk (the order alternates by round); solo run-steps/s = 1 / (the members' mean solo step time), as
  K solo runs one after the other in one process give;
- on a CPU both sides are timed at 1 thread and at all cores, and each side takes its best layout: one
  process of C threads, or C processes of 1 thread (projected as C x the 1-thread rate: perfect scaling, the
  same assumption for both sides); on a CPU both kernels ("exact" and "batched") are timed;
- medians over rounds; ratio = fused run-steps/s / solo run-steps/s at each side's best layout; paired ratio =
  the median over rounds of the ratio of side-by-side chunks at the group's best layout (less noisy when
  other work shares the machine);
- the big models (ResNet-56, VGG-16) get fewer rounds and, on a CPU, all cores only.

From the best run-steps/s at the largest K, the script projects the device-hours of fig1's small-MLP/Higgs grid
and LeNet5/FashionMNIST grid (every run of `specs/fig1.toml` of that pair: epochs x steps per epoch of the
paper's training split; evaluation passes not included).

Targets (reported, never asserted): on a CPU a fused group is never slower than the solo runs; on a GPU
small_mlp on Higgs at K = 64 gives at least 20x the solo runs' throughput; fig1's small-MLP/Higgs grid within
1 GPU-hour.

    python benchmarks/run_groups.py --device cpu [--quick] [--models small_mlp,resnet56] [--ks 1,2,4]
                                    [--kernels batched|exact|auto] [--out FILE.json]

Writes FILE.json (default benchmarks/results/run_groups.json) and FILE.md next to it.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from bench_common import Setup, Timed, config_for, environment, gib, setup_for, sync, synthetic

from dstbench import store
from dstbench.config import RunConfig
from dstbench.data import DataSplits
from dstbench.data import registry as data_registry
from dstbench.models.fusion import estimated_group_bytes
from dstbench.train.grouping import memory_budget
from dstbench.train.setup import build_for
from dstbench.train.trainer import Trainer

HERE = Path(__file__).resolve().parent
DENSITY = 0.1
# Member k's criteria: prune and grow of PROFILES[k % 4] (every prune criterion, both growths)
PROFILES = [("magnitude", "random"), ("set", "gradient"), ("snip", "random"), ("magnitude", "gradient")]
MODELS = {"small_mlp": "higgs", "lenet5_caffe": "fashionmnist", "large_mlp": "cifar10", "small_cnn": "cifar10",
          "resnet56": "cifar10", "vgg16_bn": "cifar100"}
BIG = {"resnet56", "vgg16_bn"}  # fewer and shorter chunks, a smaller largest K
PROJECTED = [("small_mlp", "higgs"), ("lenet5_caffe", "fashionmnist")]  # fig1 grids whose GPU-hours we project
TARGET_GPU_K, TARGET_GPU_RATIO, TARGET_GPU_HOURS = 64, 20.0, 1.0


@dataclass(frozen=True)
class Mode:
    """How hard to look."""

    name: str
    chunk_seconds: float  # target length of a solo chunk at all cores; n = steps per chunk = update period
    min_chunk: int  # at least 3 (the warm-up times its second step)
    max_chunk: int
    rounds: int
    max_k: int
    max_k_big: int
    both_thread_counts: bool  # CPU: time 1 thread and all cores (else all cores only)
    rounds_big: int  # the big models (BIG): fewer rounds, all cores only
    train_samples: int | None = None  # None: the data set's real training split
    deadline_s: float | None = None  # skip models that would start after this
    layout_budget_s: float = 40.0  # skip a layout whose timing would take longer (a busy machine's threads)


MODES = {
    ("full", "cpu"): Mode("full", 0.05, 3, 200, 3, 16, 4, True, 2),
    ("quick", "cpu"): Mode("quick", 0.03, 3, 10, 2, 4, 2, False, 1, train_samples=4096, deadline_s=120.0,
                              layout_budget_s=10.0),
    ("full", "cuda"): Mode("full", 0.2, 4, 200, 3, 256, 64, False, 2, deadline_s=180.0),
    ("quick", "cuda"): Mode("quick", 0.1, 4, 100, 2, 64, 16, False, 2, deadline_s=120.0),
}


# ------------------------------------------------------------------------------------------------ timing

class TimedGroup:
    """A run group of K members and a timer for its steps."""

    def __init__(self, configs: list[RunConfig], data: DataSplits, folder: Path, kernels: str) -> None:
        self.trainer = Trainer(configs, [store.RunDir(folder / f"m{k}") for k in range(len(configs))],
                               folder / "group" / store.CHECKPOINT, group_dir=folder / "group", data=data,
                               kernels=kernels)
        self.device = self.trainer.device
        self.trainer._schedule()  # as `Timed` does: the timed steps update topologies

    def steps(self, n: int) -> float:
        """Seconds for `n` fused steps, every member's batch included."""
        sync(self.device)
        start = time.perf_counter()
        for _ in range(n):
            self.trainer.train_step()  # every member's next batch, formed by the trainer (captured where it can be)
        sync(self.device)
        return time.perf_counter() - start


def member_config(setup: Setup, device: str, k: int, period: int, threads: int | None) -> RunConfig:
    prune, grow = PROFILES[k % len(PROFILES)]
    return config_for(setup, device, density=DENSITY, prune=prune, grow=grow, update_period=period, seed=k,
                      num_threads=threads)


def _timed_in(threads: int | None, fn: Any, *args: Any) -> float:
    if threads:
        torch.set_num_threads(threads)
    return fn(*args)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------------ a model

def time_model(model: str, mode: Mode, device: torch.device, kernel_list: list[str], ks: list[int] | None,
               tmp: Path, threads_wanted: list[int] | None = None) -> list[dict[str, Any]]:
    """The rows of one model: per kernels, K and thread count, group and solo step times."""
    setup = setup_for(model, MODELS[model])
    dev = device.type
    data = synthetic(setup, device, mode.train_samples)
    cores = cpu_cores()
    thread_counts: list[int | None]
    big = model in BIG
    rounds = mode.rounds_big if big else mode.rounds
    if dev == "cpu":
        # --quick: 1 thread only (steady even when other work holds a core)
        thread_counts = sorted({1, cores}) if mode.both_thread_counts and not big else [cores if big or
                                                                                        mode.name == "full" else 1]
    else:
        thread_counts = [None]
    if threads_wanted and dev == "cpu":
        thread_counts = sorted(threads_wanted)
    top = max(thread_counts, key=lambda t: t or 0)

    # chunk length n (= update period) from one solo step, the fastest of the thread counts (a thread count
    # whose threads wait for a core that other work holds can be 100x slower; it is timed, then skipped)
    step_s = math.inf
    for threads in thread_counts:
        probe = Timed(member_config(setup, dev, 0, 10**6, threads), data, tmp / f"{model}-probe-{threads}")
        _timed_in(threads, probe.steps, 2)
        step_s = min(step_s, statistics.median(_timed_in(threads, probe.steps, 1) for _ in range(7)))
        del probe
    n = max(mode.min_chunk, min(mode.max_chunk, round(mode.chunk_seconds / step_s)))
    batch = member_config(setup, dev, 0, n, top).batch_size
    wanted = ks or [2**i for i in range(20) if 2**i <= (mode.max_k_big if model in BIG else mode.max_k)]
    print(f"[{model}] solo step {1e3 * step_s:.1f} ms: chunks of {n} steps "
          f"(= update period), K {wanted}, kernels {kernel_list}, threads {thread_counts}", flush=True)

    # memory: the estimate per K, against the device's budget (a CPU: available RAM)
    one = build_for(member_config(setup, dev, 0, n, top), data)
    example = torch.zeros((2, *setup.shape))
    slots = 1 if member_config(setup, dev, 0, n, top).optimizer == "sgd" else 2
    budget = memory_budget(device)

    solos: dict[Any, list[Timed]] = {}

    def solo(threads: int | None, p: int) -> Timed:
        runs = solos.setdefault(threads, [])
        while len(runs) <= p:  # built on first use, warmed to a chunk boundary (one update per later chunk)
            k = len(runs)
            timed = Timed(member_config(setup, dev, k, n, threads), data, tmp / f"{model}-solo-{threads}-{k}")
            _timed_in(threads, timed.steps, n)
            runs.append(timed)
        return runs[p]

    rows: list[dict[str, Any]] = []
    for kernels in kernel_list:
        for size in wanted:
            estimate = estimated_group_bytes(one, example, size, batch, optimizer_slots=slots)
            row: dict[str, Any] = dict(model=model, dataset=setup.dataset, kernels=kernels, k=size, batch_size=batch,
                                       chunk_steps=n, update_period=n, rounds=rounds,
                                       estimated_gib=gib(estimate), peak_gib=None, layouts={})
            if estimate > budget:
                row["error"] = f"skipped: estimated {gib(estimate):.1f} GiB over the budget {gib(budget):.1f} GiB"
                print(f"[{model}] K={size}: {row['error']}", flush=True)
                rows.append(row)
                break
            profiles = Counter(k % len(PROFILES) for k in range(size))
            try:
                for threads in thread_counts:
                    row["layouts"][str(threads or "default")] = _time_pair(
                        setup, rounds, data, tmp, kernels, size, n, threads, profiles, solo, row,
                        mode.layout_budget_s)
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                row["error"] = f"out of memory at K={size}"
                print(f"[{model}] K={size} {kernels}: out of memory; larger K not tried", flush=True)
                rows.append(row)
                _free(device)
                break
            if all("skipped" in layout for layout in row["layouts"].values()):
                row["error"] = "skipped: every layout too slow to time (busy cores?)"
                rows.append(row)
                break
            best(row, cores if dev == "cpu" else None)
            rows.append(row)
            print(f"[{model}] K={size:<4} {kernels:<8} group {row['group_run_steps_per_s']:>10,.1f} run-steps/s "
                  f"({row['group_layout']})  solo {row['solo_run_steps_per_s']:>9,.1f} ({row['solo_layout']})  "
                  f"ratio {row['ratio']:5.2f}x  mem {row['peak_gib'] if row['peak_gib'] is not None else row['estimated_gib']:.3f} GiB",
                  flush=True)
            _free(device)
    return rows


def _time_pair(setup: Setup, rounds: int, data: DataSplits, tmp: Path, kernels: str, size: int, n: int,
               threads: int | None, profiles: Counter[int], solo: Any, row: dict[str, Any],
               budget_s: float) -> dict[str, Any]:
    """Alternating chunks of the group of `size` and of its members' solo runs at `threads`; medians. A layout
    whose timing would take over `budget_s` (judged from the warm-up's second step) is skipped, and says so."""
    device = torch.device(data.train.x.device)
    configs = [member_config(setup, device.type, k, n, threads) for k in range(size)]
    group = TimedGroup(configs, data, tmp / f"{setup.model}-{kernels}-{size}-{threads}", kernels)
    _timed_in(threads, group.steps, 1)  # warm-up to a chunk boundary (n steps), judged by its second step
    second = _timed_in(threads, group.steps, 1)
    if rounds * n * 2 * second > budget_s:
        print(f"[{setup.model}] K={size} {kernels} at {threads} threads: skipped, a group step takes "
              f"{1e3 * second:.0f} ms (busy cores?)", flush=True)
        return dict(threads=threads, skipped=f"a warm-up group step took {1e3 * second:.0f} ms: timing it would "
                                             f"take over {budget_s:.0f} s")
    _timed_in(threads, group.steps, n - 2)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    group_steps, solo_steps, ratios = [], [], []
    for r in range(rounds):
        def solo_chunk() -> float:  # a member's mean solo step time, over the profiles of the K members
            return sum(count * _timed_in(threads, solo(threads, p).steps, n) / n
                       for p, count in profiles.items()) / size
        if r % 2 == 0:
            g = _timed_in(threads, group.steps, n) / n
            s = solo_chunk()
        else:
            s = solo_chunk()
            g = _timed_in(threads, group.steps, n) / n
        group_steps.append(g)
        solo_steps.append(s)
        ratios.append(size * s / g)
    if device.type == "cuda":
        row["peak_gib"] = max(row["peak_gib"] or 0.0, gib(torch.cuda.max_memory_allocated(device) - base))
    del group
    g, s = statistics.median(group_steps), statistics.median(solo_steps)
    return dict(threads=threads, group_step_ms=1e3 * g, solo_step_ms=1e3 * s, group_run_steps_per_s=size / g,
                solo_run_steps_per_s=1 / s, paired_ratio=statistics.median(ratios),
                group_step_ms_all=[1e3 * x for x in group_steps], solo_step_ms_all=[1e3 * x for x in solo_steps])


def best(row: dict[str, Any], cores: int | None) -> None:
    """Each side's best layout: one process of t threads, or cores/t processes of t threads (projected)."""
    options = []
    for layout in row["layouts"].values():
        if "skipped" in layout:
            continue
        t = layout["threads"]
        procs = cores // t if cores and t else 1
        name = f"{procs} proc x {t} thr" if t else "1 process"
        options.append((procs, name, layout))
    g = max(options, key=lambda o: o[0] * o[2]["group_run_steps_per_s"])
    s = max(options, key=lambda o: o[0] * o[2]["solo_run_steps_per_s"])
    row.update(group_run_steps_per_s=g[0] * g[2]["group_run_steps_per_s"], group_layout=g[1],
               solo_run_steps_per_s=s[0] * s[2]["solo_run_steps_per_s"], solo_layout=s[1],
               paired_ratio=g[2]["paired_ratio"])  # chunks side by side at the group's best layout
    row["ratio"] = row["group_run_steps_per_s"] / row["solo_run_steps_per_s"]


# ------------------------------------------------------------------------------------------------ fig1

def fig1_grid(model: str, dataset: str) -> dict[str, Any]:
    """fig1's runs of `model` on `dataset`: how many, and their training steps (epochs x steps per epoch)."""
    from dstbench.experiments.spec import load_spec

    runs = [r.config for r in load_spec("fig1").expand() if (r.config.model, r.config.dataset) == (model, dataset)]
    train = data_registry.info(dataset).split_sizes[0]
    steps = 0
    for config in runs:
        samples = min(train, config.train_subset or train)
        steps += config.epochs * math.ceil(samples / config.batch_size)
    return dict(runs=len(runs), train_samples=train, total_run_steps=steps,
                epochs=sorted({c.epochs for c in runs}), batch_sizes=sorted({c.batch_size for c in runs}))


def projections(rows: list[dict[str, Any]], device: str) -> list[dict[str, Any]]:
    out = []
    for model, dataset in PROJECTED:
        done = [r for r in rows if r["model"] == model and "error" not in r]
        if not done:
            continue
        grid = fig1_grid(model, dataset)
        largest = max(r["k"] for r in done)
        top = max((r for r in done if r["k"] == largest), key=lambda r: r["group_run_steps_per_s"])
        solo = max(r["solo_run_steps_per_s"] for r in done)
        out.append(dict(
            model=model, dataset=dataset, device=device, **grid, k=largest, kernels=top["kernels"],
            layout=top["group_layout"], run_steps_per_s=top["group_run_steps_per_s"], solo_run_steps_per_s=solo,
            hours=grid["total_run_steps"] / top["group_run_steps_per_s"] / 3600,
            solo_hours=grid["total_run_steps"] / solo / 3600,
        ))
    return out


# ------------------------------------------------------------------------------------------------ report

def targets(result: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in result["rows"] if "error" not in r]
    device = result["environment"]["device"]
    out: dict[str, Any] = {}
    if device == "cpu":
        slow = [f"{r['model']} K={r['k']} {r['kernels']}" for r in rows if r["k"] > 1 and r["ratio"] < 1.0]
        out["cpu: a fused group never slower than solo runs (K > 1, every kernels)"] = dict(met=bool(rows) and not slow,
                                                                                          slower=slow)
        for kernels in sorted({r["kernels"] for r in rows}):
            slow_k = [f"{r['model']} K={r['k']}" for r in rows if r["kernels"] == kernels and r["k"] > 1
                      and r["ratio"] < 1.0]
            out[f"cpu: never slower with {kernels} kernels"] = dict(met=not slow_k, slower=slow_k)
    else:
        at = [r for r in rows if r["model"] == "small_mlp" and r["k"] == TARGET_GPU_K]
        out[f"gpu: small_mlp at K={TARGET_GPU_K} >= {TARGET_GPU_RATIO:g}x solo"] = dict(
            met=bool(at) and max(r["ratio"] for r in at) >= TARGET_GPU_RATIO,
            ratio=max((r["ratio"] for r in at), default=None))
        proj = [p for p in result["projection"] if p["model"] == "small_mlp"]
        out[f"gpu: fig1 small_mlp/higgs grid <= {TARGET_GPU_HOURS:g} GPU-hour"] = dict(
            met=bool(proj) and proj[0]["hours"] <= TARGET_GPU_HOURS, hours=proj[0]["hours"] if proj else None)
    return out


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    where = env.get("gpu") or f"CPU, {env['cores']} cores"
    lines = [f"Run groups vs solo runs ({result['mode']}): {where}, torch {env['torch']}; DST density {DENSITY}, "
             f"mixed criteria {', '.join(f'{p}/{g}' for p, g in PROFILES)}; update period = chunk length", "",
             "| model | K | kernels | group run-steps/s (layout) | solo run-steps/s (layout) | ratio fused/solo "
             "| paired ratio | group memory GiB | chunk steps |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['k']} | {r['kernels']} | {r['error']} | | | | "
                         f"{r['estimated_gib']:.3f} (est.) | |")
            continue
        mem = f"{r['peak_gib']:.3f} (peak)" if r["peak_gib"] is not None else f"{r['estimated_gib']:.3f} (est.)"
        lines.append(f"| {r['model']} | {r['k']} | {r['kernels']} | {r['group_run_steps_per_s']:,.1f} "
                     f"({r['group_layout']}) | {r['solo_run_steps_per_s']:,.1f} ({r['solo_layout']}) | "
                     f"{r['ratio']:.2f}x | {r['paired_ratio']:.2f}x | {mem} | {r['chunk_steps']} |")
    for m in result.get("failed_models", []):
        lines.append(f"| {m['model']} | | | failed: {m['error']} | | | | | |")
    if result["projection"]:
        lines += ["", f"fig1 projection on this device ({env['device']}"
                  + (f", {env['gpu']}" if env.get("gpu") else "") + "; training steps only, evaluation not included):",
                  "", "| grid | runs | run-steps | at K | run-steps/s | hours fused | hours solo |",
                  "|---|---|---|---|---|---|---|"]
        for p in result["projection"]:
            lines.append(f"| {p['model']}/{p['dataset']} | {p['runs']} | {p['total_run_steps']:,} | {p['k']} "
                         f"({p['kernels']}, {p['layout']}) | {p['run_steps_per_s']:,.1f} | {p['hours']:,.2f} | "
                         f"{p['solo_hours']:,.2f} |")
    if result.get("targets"):
        lines += ["", "Targets: " + "; ".join(f"{k}: {'met' if v['met'] else 'NOT met'}"
                                              for k, v in result["targets"].items())]
    return "\n".join(lines) + "\n"


def save(result: dict[str, Any], out: Path) -> None:
    out.write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(markdown(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="few steps, small K: 1-2 minutes on a 2-core CPU")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--ks", default=None, help="comma-separated group sizes (default: 1, 2, 4, ... up to the "
                        "mode's largest or the memory limit)")
    parser.add_argument("--kernels", choices=("auto", "batched", "exact"), default="auto",
                        help="auto: both on a CPU, batched on a GPU")
    parser.add_argument("--threads", default=None, help="CPU: comma-separated thread counts to time (default: 1 "
                        "and all cores; --quick and the big models: one)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per K (default: the mode's)")
    parser.add_argument("--layout-budget", type=float, default=None,
                        help="seconds a layout's timing may take before it is skipped (default: the mode's)")
    parser.add_argument("--out", default=str(HERE / "results" / "run_groups.json"), help="JSON file (and .md)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("run_groups: no CUDA device here; use --device cpu", file=sys.stderr)
        return 2
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; valid: {', '.join(MODELS)}")
    mode = MODES[("quick" if args.quick else "full", args.device)]
    if args.layout_budget is not None:
        mode = replace(mode, layout_budget_s=args.layout_budget)
    if args.rounds is not None:
        mode = replace(mode, rounds=args.rounds)
    device = torch.device(args.device)
    kernel_list = (["exact", "batched"] if args.device == "cpu" else ["batched"]) if args.kernels == "auto" \
        else [args.kernels]
    ks = [int(k) for k in args.ks.split(",")] if args.ks else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    env = environment(device)
    env.update(cores=cpu_cores(), threads_default=torch.get_num_threads())
    result: dict[str, Any] = dict(benchmark="run_groups", mode=mode.name, device=args.device, environment=env,
                                  settings=dict(asdict(mode), density=DENSITY, profiles=PROFILES,
                                                kernels=kernel_list, ks=ks, models=models,
                                                threads=args.threads),
                                  rows=[], failed_models=[], projection=[],
                                  started=time.strftime("%Y-%m-%d %H:%M:%S"))
    where = env.get("gpu") or f"cpu, {env['cores']} cores"
    print(f"run_groups ({mode.name}) on {where}, torch {torch.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            if mode.deadline_s is not None and time.perf_counter() - started > mode.deadline_s:
                print(f"[{model}] skipped: past the {mode.deadline_s:.0f} s budget", flush=True)
                result["failed_models"].append(dict(model=model, error="skipped: budget"))
                continue
            try:
                result["rows"] += time_model(model, mode, device, kernel_list, ks, Path(tmp),
                                             [int(t) for t in args.threads.split(",")] if args.threads else None)
            except Exception as exc:  # one model's failure must not cost the others' numbers
                traceback.print_exc()
                result["failed_models"].append(dict(model=model, error=f"{type(exc).__name__}: {exc}"))
            _free(device)
            result["projection"] = projections(result["rows"], args.device)
            result["targets"] = targets(result)
            save(result, out)
    result["seconds"] = time.perf_counter() - started
    save(result, out)
    print()
    print(markdown(result))
    print(f"wrote {out} and {out.with_suffix('.md')} in {result['seconds']:.0f} s")
    return 0 if not result["failed_models"] or all(m["error"] == "skipped: budget" for m in result["failed_models"]) \
        else 1


if __name__ == "__main__":
    sys.exit(main())
