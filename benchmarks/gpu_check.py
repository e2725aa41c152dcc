"""The GPU check: one command that proves every GPU path and times the paper's models, in at most 8 minutes.

Parts, each printed as it finishes and saved at once (a run cut off still leaves what it did):

1. tests: the `gpu` tests (`tests/gpu/`): the CUDA batcher against the CPU one, DST masks on CUDA against CPU,
   bfloat16 autocast, channels_last, checkpoints across devices, NCCL and gloo DDP through torchrun, and no host
   synchronisation inside a training step between topology updates.
2. models: every paper model on synthetic data of its data set's real shapes (random pixels or features, random
   labels; ImageNet as an in-memory pool of decoded images, so JPEG decoding is not timed), through the
   trainer's own step (`Trainer.train_step`: batcher, forward, backward, optimizer, LR schedule, DST). Per
   model: samples/s of a training epoch (ResNet-50: a few hundred steps), peak GPU memory, the DST step
   (density 0.1, update period 800, magnitude + random growth) over the dense step with one topology update
   amortised over 800 steps (chunks of DST steps timed right after chunks of dense steps, median of the pairs'
   ratios), the time of one topology update, and the batcher's rate against the model's step rate.
3. amp: bfloat16 autocast against float32 on ResNet-56 and VGG-16 (DST steps, interleaved chunks).
4. run groups: `benchmarks/run_groups.py` when it exists.

Targets (reported, never asserted): DST at most 5% over dense on every model; the batcher faster than the
model's steps; bf16 at least 1.5x float32 on ResNet-56 and VGG-16.

    python benchmarks/gpu_check.py [--quick] [--out DIR]     # on a GPU: ~8 minutes, --quick ~3
    python benchmarks/gpu_check.py --cpu-smoke               # every code path on the CPU, tiny sizes, < 1 min

Writes DIR/gpu_check.json and DIR/gpu_check.md (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from bench_common import SETUPS, Setup, Timed, config_for, environment, gib, synthetic

from dstbench.config import RunConfig
from dstbench.data import DataSplits

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UPDATE_PERIOD = 800
DST_SETTINGS = dict(density=0.1, prune="magnitude", grow="random", update_period=UPDATE_PERIOD)
TARGET_OVERHEAD_PCT, TARGET_AMP_SPEEDUP = 5.0, 1.5


@dataclass(frozen=True)
class Mode:
    """How hard to look: the full check, --quick, or --cpu-smoke (tiny sizes, every code path)."""

    name: str
    device: str
    max_epoch_steps: int | None  # cap on the timed epoch of every model
    warmup_steps: int
    chunk_seconds: float
    min_chunk: int
    rounds: int
    update_repeats: int
    batch_size: int | None = None  # None: the paper's recipe
    train_samples: int | None = None
    deadline_s: float = 480.0
    models: frozenset[str] | None = None  # None: every model
    amp_large_batch_factor: int = 8


MODES = {
    "full": Mode("full", "cuda", None, 20, 0.25, 5, 5, 3, deadline_s=450.0),
    "quick": Mode("quick", "cuda", 150, 10, 0.15, 3, 3, 2, deadline_s=170.0),
    # A table, a convolutional and a residual model: every code path of this script, within a minute on 2 cores
    "cpu-smoke": Mode("cpu-smoke", "cpu", 2, 1, 0.0, 1, 1, 1, batch_size=4, train_samples=8, deadline_s=50.0,
                      models=frozenset({"small_mlp", "small_cnn", "resnet56"}), amp_large_batch_factor=2),
}


# ----------------------------------------------------------------------------------------------- timing

def interleaved_ratio(a: Timed, b: Timed, steps: int, rounds: int) -> tuple[float, float, float]:
    """Median over rounds of time(b chunk) / time(a chunk), each b chunk right after an a chunk; also the
    median seconds per step of each."""
    ratios, ta, tb = [], [], []
    for _ in range(rounds):
        sa, sb = a.steps(steps), b.steps(steps)
        ratios.append(sb / sa)
        ta.append(sa / steps)
        tb.append(sb / steps)
    return statistics.median(ratios), statistics.median(ta), statistics.median(tb)


def _config(setup: Setup, mode: Mode, **changes: Any) -> RunConfig:
    return config_for(setup, mode.device, **{"batch_size": mode.batch_size, **changes})


# ------------------------------------------------------------------------------------------------ parts

def part_tests(mode: Mode, out: Path) -> dict[str, Any]:
    """The `gpu` tests through pytest (on the CPU: collected only, proving they import)."""
    xml = out / "gpu_tests.xml"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "gpu"), "-m", "gpu", "-o", "addopts=",
           "-p", "no:cacheprovider", "-q", "-rfEs", f"--junitxml={xml}"]
    if mode.device == "cpu":
        cmd.append("--collect-only")
    else:
        try:
            import xdist  # noqa: F401

            cmd += ["-n", "4"]
        except ImportError:
            pass
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        output, code = f"{exc.stdout or ''}\n{exc.stderr or ''}\npytest timed out after 300 s", -1
    result: dict[str, Any] = dict(returncode=code, seconds=time.perf_counter() - start,
                                  tail=output[-4000:])
    if mode.device == "cpu":
        result["collected"] = sum(1 for line in output.splitlines() if "::" in line)
    elif xml.exists():
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        result.update(counts, passed=counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"])
        result["failed_tests"] = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
                                  if case.find("failure") is not None or case.find("error") is not None]
    print(f"[tests] exit {code} in {result['seconds']:.0f} s: "
          + (f"{result.get('collected', 0)} collected (CPU: not run)" if mode.device == "cpu" else
             f"{result.get('passed', '?')} passed, {result.get('failures', '?')} failed, "
             f"{result.get('errors', '?')} errors, {result.get('skipped', '?')} skipped"), flush=True)
    if code != 0 and mode.device != "cpu":
        print(output[-3000:], flush=True)
    return result


def part_model(setup: Setup, mode: Mode, device: torch.device, tmp: Path) -> dict[str, Any]:
    data = synthetic(setup, device, mode.train_samples)
    data_bytes = sum(t.numel() * t.element_size() for t in (data.train.x, data.train.y))
    row: dict[str, Any] = dict(model=setup.model, dataset=setup.dataset, shape=list(setup.shape),
                               train_samples=len(data.train), data_gib=gib(data_bytes))
    runs: dict[str, Timed] = {}
    for name, changes in (("dense", {}), ("dst", DST_SETTINGS)):
        base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        timed = runs[name] = Timed(_config(setup, mode, **changes), data, tmp / f"{setup.model}-{name}")
        timed.steps(mode.warmup_steps)  # cuDNN algorithm choice, allocations, optimizer state
        per_epoch = len(timed.trainer.members[0].batches)
        steps = min(x for x in (per_epoch, setup.max_steps, mode.max_epoch_steps) if x is not None)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = timed.steps(steps)
        batch = timed.trainer.config.batch_size
        row[name] = dict(
            timed_steps=steps, steps_per_epoch=per_epoch, batch_size=batch, samples_per_s=steps * batch / seconds,
            step_ms=1e3 * seconds / steps, epoch_s=seconds * per_epoch / steps,
            peak_gib=gib(torch.cuda.max_memory_allocated(device) - base) if device.type == "cuda" else None,
        )
    dense, dst = runs["dense"], runs["dst"]
    chunk = max(mode.min_chunk, round(mode.chunk_seconds / (row["dense"]["step_ms"] / 1e3)))
    ratio, dense_step, dst_step = interleaved_ratio(dense, dst, chunk, mode.rounds)
    update = statistics.median(dst.update() for _ in range(mode.update_repeats))
    batch_s = dst.batches(chunk) / chunk
    overhead = 100 * (ratio - 1 + update / UPDATE_PERIOD / dense_step)
    row.update(
        chunk_steps=chunk, rounds=mode.rounds, dense_step_ms=1e3 * dense_step, dst_step_ms=1e3 * dst_step,
        dst_step_ratio=ratio, update_ms=1e3 * update, dst_overhead_pct=overhead,
        overhead_target_met=overhead <= TARGET_OVERHEAD_PCT, batch_ms=1e3 * batch_s,
        batcher_vs_step_rate=dst_step / batch_s, input_share=batch_s / dst_step,
        fed_target_met=batch_s < dst_step,
    )
    row["gpu_busy_share"] = gpu_busy_share(dst, chunk, dst_step) if device.type == "cuda" else None
    if setup.amp_check:
        row["amp"] = amp_speedup(setup, mode, data, tmp, dst, chunk)
        # at the recipe's batch a small model's step is bound by kernel launches, where bf16 cannot help: the
        # same comparison at a batch that keeps the GPU busy says whether the bf16 path itself pays
        big = _config(setup, mode).batch_size * mode.amp_large_batch_factor
        fp32 = Timed(_config(setup, mode, batch_size=big, **DST_SETTINGS), data, tmp / f"{setup.model}-big")
        fp32.steps(mode.warmup_steps)
        row["amp_large_batch"] = amp_speedup(setup, mode, data, tmp, fp32, max(mode.min_chunk, chunk // 8),
                                             batch_size=big)
    d, s = row["dense"], row["dst"]
    amp_text = "".join(f"  bf16 {row[k]['speedup']:.2f}x at batch {row[k]['batch_size']}"
                       for k in ("amp", "amp_large_batch") if k in row)
    busy = f"  GPU busy {100 * row['gpu_busy_share']:.0f}%" if row["gpu_busy_share"] is not None else ""
    print(f"[models] {setup.model:<15} {setup.dataset:<12} dense {d['samples_per_s']:>9,.0f}/s "
          f"{d['step_ms']:7.2f} ms  DST {s['samples_per_s']:>9,.0f}/s  mem {d['peak_gib'] or 0:5.2f}/"
          f"{s['peak_gib'] or 0:5.2f} GiB  update {row['update_ms']:7.1f} ms  DST {overhead:+5.1f}%  "
          f"batch {100 * row['input_share']:4.1f}% of a step{busy}{amp_text}", flush=True)
    return row


def amp_speedup(setup: Setup, mode: Mode, data: DataSplits, tmp: Path, fp32: Timed, chunk: int,
                **changes: Any) -> dict[str, Any]:
    """bf16 autocast against the float32 run `fp32` (same settings), interleaved chunks of DST steps."""
    bf16 = Timed(_config(setup, mode, amp=True, **DST_SETTINGS, **changes), data,
                 tmp / f"{setup.model}-bf16-{len(changes)}")
    bf16.steps(mode.warmup_steps)
    speedup, bf16_step, fp32_step = interleaved_ratio(bf16, fp32, chunk, mode.rounds)  # fp32 time / bf16 time
    return dict(batch_size=bf16.trainer.config.batch_size, fp32_step_ms=1e3 * fp32_step,
                bf16_step_ms=1e3 * bf16_step, speedup=speedup, target_met=speedup >= TARGET_AMP_SPEEDUP)


def gpu_busy_share(timed: Timed, steps: int, step_seconds: float) -> float | None:
    """The share of a step's wall time in which the GPU runs kernels (from the profiler's kernel times over
    `steps` steps; the steps themselves are timed without the profiler)."""
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            timed.steps(steps)
        kernel_us = sum(e.device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA")
    except Exception as exc:  # a profiler that cannot attach costs this one number, not the model's row
        print(f"[models] profiler failed ({type(exc).__name__}: {exc}); GPU busy share not measured", flush=True)
        return None
    return min(1.0, kernel_us / 1e6 / steps / step_seconds)


def part_run_groups(mode: Mode, out: Path) -> dict[str, Any]:
    script = HERE / "run_groups.py"
    if not script.exists():
        print("[run groups] benchmarks/run_groups.py does not exist yet: nothing to time", flush=True)
        return dict(status="absent")
    cmd = [sys.executable, str(script), "--device", mode.device, "--out", str(out / "run_groups.json")]
    if mode.name != "full":
        cmd.append("--quick")
    if mode.name == "cpu-smoke":  # every code path (fused linear and conv layers, both kernels), not every model
        cmd += ["--models", "small_mlp,small_cnn", "--ks", "1,2"]
    timeout = 240 if mode.name != "full" else 480
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:  # the check goes on with its other parts
        print(f"[run groups] stopped after {timeout} s: no result", flush=True)
        return dict(status="timed out", seconds=timeout)
    print(done.stdout[-3000:], done.stderr[-2000:], flush=True)
    result = dict(status="ok" if done.returncode == 0 else "failed", returncode=done.returncode)
    if (out / "run_groups.json").exists():
        result["result"] = json.loads((out / "run_groups.json").read_text())
    return result


# ----------------------------------------------------------------------------------------------- report

def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [f"GPU check ({result['mode']}): {env.get('gpu', env['device'])}, torch {env['torch']}, "
             f"CUDA {env.get('cuda', '-')}", ""]
    tests = result.get("tests")
    if tests and "passed" in tests:
        lines += [f"gpu tests: {tests['passed']} passed, {tests['failures']} failed, {tests['errors']} errors, "
                  f"{tests['skipped']} skipped ({tests['seconds']:.0f} s)"
                  + (f"; failed: {', '.join(tests['failed_tests'])}" if tests["failed_tests"] else ""), ""]
    lines += ["| model | data | batch | dense samples/s | DST samples/s | peak GiB dense / DST | dense step ms "
              "| DST step ms | one update ms | DST over dense (Δt 800) | batch share of a step | GPU busy |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["models"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['dataset']} | failed: {r['error']} ||||||||||")
            continue
        d, s = r["dense"], r["dst"]
        mem = (f"{d['peak_gib']:.2f} / {s['peak_gib']:.2f}" if d["peak_gib"] is not None else "-")
        lines.append(
            f"| {r['model']} | {r['dataset']} | {d['batch_size']} | {d['samples_per_s']:,.0f} | "
            f"{s['samples_per_s']:,.0f} | {mem} | {r['dense_step_ms']:.2f} | {r['dst_step_ms']:.2f} | "
            f"{r['update_ms']:.1f} | {r['dst_overhead_pct']:+.1f}% | {100 * r['input_share']:.0f}% | "
            + (f"{100 * r['gpu_busy_share']:.0f}% |" if r["gpu_busy_share"] is not None else "- |"))
    amp = [(r, r[k]) for r in result["models"] for k in ("amp", "amp_large_batch") if k in r]
    if amp:
        lines += ["", "| model | batch | fp32 DST step ms | bf16 DST step ms | bf16 speed-up |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {a['batch_size']} | {a['fp32_step_ms']:.2f} | {a['bf16_step_ms']:.2f} | "
                  f"{a['speedup']:.2f}x |" for r, a in amp]
    targets = result.get("targets")
    if targets:
        lines += ["", "Targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items())]
    return "\n".join(lines) + "\n"


def targets(models: list[dict[str, Any]]) -> dict[str, bool]:
    done = [r for r in models if "error" not in r]
    amp = [r for r in done if "amp" in r]
    return {
        f"DST <= {TARGET_OVERHEAD_PCT:g}% over dense on every model": bool(done)
        and all(r["overhead_target_met"] for r in done),
        "batcher faster than every model's step": bool(done) and all(r["fed_target_met"] for r in done),
        f"bf16 >= {TARGET_AMP_SPEEDUP:g}x fp32 on ResNet-56 and VGG-16": bool(amp)
        and all(r["amp"]["target_met"] for r in amp),
    }


def save(result: dict[str, Any], out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2))
    (out / "gpu_check.md").write_text(markdown(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="shorter epochs and fewer rounds: about 3 minutes")
    group.add_argument("--cpu-smoke", action="store_true", help="every code path on the CPU at tiny sizes")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for gpu_check.json and .md")
    parser.add_argument("--parts", default="tests,models,groups", help="comma-separated: tests, models, groups")
    parser.add_argument("--only", default=None, help="comma-separated model names to time (default: all)")
    args = parser.parse_args(argv)
    mode = MODES["cpu-smoke" if args.cpu_smoke else "quick" if args.quick else "full"]
    if mode.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a GPU, or use --cpu-smoke", file=sys.stderr)
        return 2
    device = torch.device(mode.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    started = time.perf_counter()
    result: dict[str, Any] = dict(benchmark="gpu_check", mode=mode.name, environment=environment(device),
                                  models=[], started=time.strftime("%Y-%m-%d %H:%M:%S"))
    print(f"gpu_check ({mode.name}) on {result['environment'].get('gpu', 'cpu')}, torch {torch.__version__}",
          flush=True)
    if "tests" in parts:
        result["tests"] = part_tests(mode, out)
        save(result, out)
    if "models" in parts:
        only = set(args.only.split(",")) if args.only else mode.models
        seen: set[str] = set()
        with tempfile.TemporaryDirectory() as tmp:
            for setup in SETUPS:
                if (only and setup.model not in only) or (mode.name != "full" and setup.model in seen):
                    continue  # --quick and the smoke time each model once
                seen.add(setup.model)
                if time.perf_counter() - started > mode.deadline_s:
                    print(f"[models] {setup.model}: skipped, past the {mode.deadline_s:.0f} s budget", flush=True)
                    result["models"].append(dict(model=setup.model, dataset=setup.dataset, error="skipped: budget"))
                    continue
                try:
                    row = part_model(setup, mode, device, Path(tmp))
                except Exception as exc:  # one model's failure must not cost the others' numbers
                    traceback.print_exc()
                    row = dict(model=setup.model, dataset=setup.dataset, error=f"{type(exc).__name__}: {exc}")
                result["models"].append(row)
                result["targets"] = targets(result["models"])
                save(result, out)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    if "groups" in parts:
        result["run_groups"] = part_run_groups(mode, out)
    result["seconds"] = time.perf_counter() - started
    save(result, out)
    print()
    print(markdown(result))
    print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'} in {result['seconds']:.0f} s")
    tests_ok = "tests" not in result or result["tests"]["returncode"] == 0
    models_ok = all("error" not in r or r["error"] == "skipped: budget" for r in result["models"])
    return 0 if tests_ok and models_ok else 1


if __name__ == "__main__":
    sys.exit(main())
