"""The GPU check: one command that proves every GPU path, times the paper's models eager and captured, times run
groups, and projects Fig. 1's cost, in about 10 minutes (the parts share the time; each says what it cut).

Parts, each printed as it finishes and saved at once (a run cut off still leaves what it did):

1. tests: the `gpu` tests (`tests/gpu/`): the CUDA batcher against the CPU one, DST masks on CUDA against CPU,
   bfloat16 autocast, channels_last, checkpoints across devices, NCCL and gloo DDP through torchrun, the captured
   step, and no host synchronisation inside a training step between topology updates.
2. models: every paper model on synthetic data of its data set's real shapes (random pixels or features, random
   labels; ImageNet as an in-memory pool of decoded images, so JPEG decoding is not timed), through the
   trainer's own step (`Trainer.train_step`: batcher, forward, backward, optimizer, LR schedule, DST), eager
   (``capture="off"``). Per model: samples/s of up to 300 steps of an epoch, peak GPU memory, the DST step
   (density 0.1, update period 800, magnitude + random growth) over the dense step with one topology update
   amortised over 800 steps (chunks of DST steps timed right after chunks of dense steps, median of the pairs'
   ratios), the time of one topology update, the batcher's rate against the model's step rate, and the GPU busy
   share. Then the captured DST step against the eager one (`capture_check.captured_vs_eager`).
3. amp: bfloat16 autocast against float32 on ResNet-56 and VGG-16 (DST steps, interleaved chunks), eager and
   captured, at the recipe's batch and at 8x it.
4. groups: run groups of K = 1, 2, 4, ... with the captured step, up to the memory limit or the time budget
   (`capture_check.part_groups`).
5. fig1: Fig. 1's projected GPU-hours from the rates measured (`fig1_cost`), and issue #19's targets; written to
   benchmarks/measured/fig1-cost.json and .md (the full check; --fig1-out another path), else DIR/fig1-cost.json.

Targets (reported, never asserted): DST at most 5% over dense on every model; the batcher faster than the
model's steps; bf16 at least 1.5x float32 on ResNet-56 and VGG-16; issue #19's (benchmarks/fig1_cost.py).

    python benchmarks/gpu_check.py [--quick] [--out DIR]     # on a GPU: ~10 minutes, --quick ~4
    python benchmarks/gpu_check.py --cpu-smoke --out DIR     # every code path on the CPU, tiny sizes, < 1 min

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

import fig1_cost
import torch
from bench_common import (
    SETUPS,
    Setup,
    Timed,
    config_for,
    environment,
    gib,
    gpu_busy_share,
    interleaved_ratio,
    synthetic,
)
from capture_check import GroupPlan, capture_markdown, captured_vs_eager, groups_markdown, modes, part_groups

from dstbench.config import RunConfig
from dstbench.data import DataSplits

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UPDATE_PERIOD = 800
DST_SETTINGS = dict(density=0.1, prune="magnitude", grow="random", update_period=UPDATE_PERIOD)
TARGET_OVERHEAD_PCT, TARGET_AMP_SPEEDUP = 5.0, 1.5
SKIPPED = "skipped: past the models part's time budget"
AMP_KEYS = ("amp", "amp_large_batch", "amp_captured", "amp_captured_large_batch")


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
    groups: GroupPlan
    batch_size: int | None = None  # None: the paper's recipe
    train_samples: int | None = None
    models_budget_s: float = 240.0  # no model starts later than this after the models part began
    groups_budget_s: float = 200.0
    total_s: float = 570.0  # the groups part ends by this long after the check began
    models: frozenset[str] | None = None  # None: every model
    amp_large_batch_factor: int = 8
    tests_timeout_s: float = 240.0
    fig1_out: Path | None = None  # None: DIR/fig1-cost.json


SMALL = ("small_mlp", "lenet5_caffe", "large_mlp", "small_cnn")
MODES = {
    "full": Mode("full", "cuda", 300, 20, 0.25, 5, 5, 3, GroupPlan((*SMALL, "resnet56"), 4096, 0.2, 3, 100),
                 fig1_out=HERE / "measured" / "fig1-cost.json"),
    "quick": Mode("quick", "cuda", 150, 10, 0.15, 3, 3, 2, GroupPlan(SMALL, 256, 0.1, 2, 50),
                  models_budget_s=110.0, groups_budget_s=60.0, total_s=230.0, tests_timeout_s=120.0),
    # A table, a convolutional and a residual model, groups of linear and conv layers: every code path of this
    # script, within a minute on 2 cores
    "cpu-smoke": Mode("cpu-smoke", "cpu", 2, 1, 0.0, 1, 1, 1,
                      GroupPlan(("small_mlp", "small_cnn"), 2, 0.0, 1, 3, batch_size=4, train_samples=8),
                      batch_size=4, train_samples=8, models_budget_s=60.0, groups_budget_s=60.0, total_s=240.0,
                      models=frozenset({"small_mlp", "small_cnn", "resnet56"}), amp_large_batch_factor=2),
}


# ----------------------------------------------------------------------------------------------- timing

def _config(setup: Setup, mode: Mode, **changes: Any) -> RunConfig:
    """The set-up's config in this mode; eager unless `changes` say capture="auto"."""
    return config_for(setup, mode.device, **{"batch_size": mode.batch_size, "capture": "off", **changes})


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
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=mode.tests_timeout_s)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        output, code = f"{exc.stdout or ''}\n{exc.stderr or ''}\npytest timed out after {mode.tests_timeout_s:.0f} s", -1
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
    row["gpu_busy_share"] = gpu_busy_share(dst, chunk, dst_step, "models") if device.type == "cuda" else None
    try:  # the captured step against the eager one; a failure costs this comparison, not the model's row
        row["capture"], captured = captured_vs_eager(
            dst, _config(setup, mode, capture="auto", **DST_SETTINGS), data, tmp / f"{setup.model}-captured",
            mode.warmup_steps, chunk, mode.rounds)
    except Exception as exc:
        traceback.print_exc()
        row["capture"], captured = dict(error=f"{type(exc).__name__}: {exc}"), None
    if setup.amp_check:
        # at the recipe's batch a small model's step is bound by kernel launches, where bf16 cannot help: the
        # same comparison at a batch that keeps the GPU busy says whether the bf16 path itself pays
        big = _config(setup, mode).batch_size * mode.amp_large_batch_factor
        for capture, key, recipe_fp32 in (("off", "amp", dst), ("auto", "amp_captured", captured)):
            if recipe_fp32 is None:  # the captured run failed above
                continue
            row[key] = amp_speedup(setup, mode, data, tmp, recipe_fp32, chunk, capture=capture)
            fp32 = Timed(_config(setup, mode, batch_size=big, capture=capture, **DST_SETTINGS), data,
                         tmp / f"{setup.model}-big-{capture}")
            fp32.steps(mode.warmup_steps)
            row[f"{key}_large_batch"] = amp_speedup(setup, mode, data, tmp, fp32, max(mode.min_chunk, chunk // 8),
                                                    batch_size=big, capture=capture)
    d, s = row["dense"], row["dst"]
    capture = row["capture"]
    extra = (f"  captured {capture['captured_step_ms']:.3f} ms ({capture['step_mode']}, "
                 f"{capture['speedup']:.2f}x)" if "error" not in capture else "  captured: failed")
    extra += "".join(f"  bf16 {row[k]['speedup']:.2f}x at batch {row[k]['batch_size']} ({row[k]['bf16_step_mode']})"
                     for k in AMP_KEYS if k in row)
    busy = f"  GPU busy {100 * row['gpu_busy_share']:.0f}%" if row["gpu_busy_share"] is not None else ""
    print(f"[models] {setup.model:<15} {setup.dataset:<12} dense {d['samples_per_s']:>9,.0f}/s "
          f"{d['step_ms']:7.2f} ms  DST {s['samples_per_s']:>9,.0f}/s  mem {d['peak_gib'] or 0:5.2f}/"
          f"{s['peak_gib'] or 0:5.2f} GiB  update {row['update_ms']:7.1f} ms  DST {overhead:+5.1f}%  "
          f"batch {100 * row['input_share']:4.1f}% of a step{busy}{extra}", flush=True)
    return row


def amp_speedup(setup: Setup, mode: Mode, data: DataSplits, tmp: Path, fp32: Timed, chunk: int,
                **changes: Any) -> dict[str, Any]:
    """bf16 autocast against the float32 run `fp32` (same settings), interleaved chunks of DST steps."""
    name = "-".join(f"{k}{v}" for k, v in changes.items())
    bf16 = Timed(_config(setup, mode, amp=True, **DST_SETTINGS, **changes), data, tmp / f"{setup.model}-bf16-{name}")
    bf16.steps(mode.warmup_steps)
    speedup, bf16_step, fp32_step = interleaved_ratio(bf16, fp32, chunk, mode.rounds)  # fp32 time / bf16 time
    return dict(batch_size=bf16.trainer.config.batch_size, fp32_step_ms=1e3 * fp32_step,
                bf16_step_ms=1e3 * bf16_step, speedup=speedup, target_met=speedup >= TARGET_AMP_SPEEDUP,
                fp32_step_mode=modes(fp32.trainer)["step_mode"], **{f"bf16_{k}": v for k, v in modes(bf16.trainer).items()})


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
    captured = capture_markdown(result["models"])
    if captured:
        lines += ["", captured.rstrip("\n")]
    amp = [(r, r[k]) for r in result["models"] for k in AMP_KEYS if k in r]
    if amp:
        lines += ["", "| model | batch | step mode fp32 / bf16 | fp32 DST step ms | bf16 DST step ms | bf16 speed-up |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {a['batch_size']} | {a['fp32_step_mode']} / {a['bf16_step_mode']} | "
                  f"{a['fp32_step_ms']:.2f} | {a['bf16_step_ms']:.2f} | {a['speedup']:.2f}x |" for r, a in amp]
    targets = result.get("targets")
    if targets:
        lines += ["", "Targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items())]
    if "groups" in result:
        lines += ["", "Run groups, captured step (benchmarks/capture_check.py):", "",
                  groups_markdown(result["groups"]).rstrip("\n")]
    if "fig1_cost" in result:
        lines += ["", fig1_cost.markdown(result["fig1_cost"]).rstrip("\n"), "", "Issue #19's targets:", "",
                  fig1_cost.targets_markdown(result["fig1_targets"]).rstrip("\n")]
    return "\n".join(lines) + "\n"


def targets(models: list[dict[str, Any]]) -> dict[str, bool]:
    done = [r for r in models if "error" not in r]
    amp = [max(r[k]["speedup"] for k in ("amp", "amp_captured") if k in r) for r in done if "amp" in r]
    return {
        f"DST <= {TARGET_OVERHEAD_PCT:g}% over dense on every model": bool(done)
        and all(r["overhead_target_met"] for r in done),
        "batcher faster than every model's step": bool(done) and all(r["fed_target_met"] for r in done),
        f"bf16 >= {TARGET_AMP_SPEEDUP:g}x fp32 on ResNet-56 and VGG-16 (eager or captured)": bool(amp)
        and all(speedup >= TARGET_AMP_SPEEDUP for speedup in amp),
    }


def save(result: dict[str, Any], out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2))
    (out / "gpu_check.md").write_text(markdown(result))


def project(result: dict[str, Any], pairs: list[fig1_cost.Pair], path: Path, out: Path) -> None:
    """Fig. 1's projected cost and issue #19's targets from what `result` measured so far, saved."""
    result["fig1_cost"], result["fig1_targets"] = fig1_cost.from_result(result, pairs)
    fig1_cost.save(result["fig1_cost"], path)
    save(result, out)
    cost = result["fig1_cost"]
    measured = [p["gpu_hours"] for p in cost["pairs"] if p["gpu_hours"] is not None]
    print(f"[fig1] {len(measured)} of {len(cost['pairs'])} pairs measured, {sum(measured):,.2f} GPU-hours projected "
          f"for them; {path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="shorter epochs and fewer rounds: about 4 minutes")
    group.add_argument("--cpu-smoke", action="store_true", help="every code path on the CPU at tiny sizes")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for gpu_check.json and .md")
    parser.add_argument("--parts", default="tests,models,groups,fig1",
                        help="comma-separated: tests, models, groups, fig1")
    parser.add_argument("--fig1-out", default=None, help="Fig. 1's projected cost, JSON (and .md next to it); "
                        "default: benchmarks/measured/fig1-cost.json in the full check, else DIR/fig1-cost.json")
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
        models_started = time.perf_counter()
        only = set(args.only.split(",")) if args.only else mode.models
        seen: set[str] = set()
        with tempfile.TemporaryDirectory() as tmp:
            for setup in SETUPS:
                if (only and setup.model not in only) or (mode.name != "full" and setup.model in seen):
                    continue  # --quick and the smoke time each model once
                seen.add(setup.model)
                if time.perf_counter() - models_started > mode.models_budget_s:
                    print(f"[models] {setup.model}: skipped, past the {mode.models_budget_s:.0f} s budget",
                          flush=True)
                    result["models"].append(dict(model=setup.model, dataset=setup.dataset, error=SKIPPED))
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
    fig1_out = Path(args.fig1_out) if args.fig1_out else mode.fig1_out or out / "fig1-cost.json"
    pairs: list[fig1_cost.Pair] = []
    if "fig1" in parts:  # after the models, so that a check cut off in the groups part still has its table
        pairs = fig1_cost.pairs("fig1")
        project(result, pairs, fig1_out, out)
    if "groups" in parts:
        now = time.perf_counter()
        result["groups"] = part_groups(mode.groups, device, min(now + mode.groups_budget_s, started + mode.total_s))
        save(result, out)
        if pairs:
            project(result, pairs, fig1_out, out)
    result["seconds"] = time.perf_counter() - started
    save(result, out)
    print()
    print(markdown(result))
    print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}"
          + (f", {fig1_out} and {fig1_out.with_suffix('.md')}" if pairs else "") + f" in {result['seconds']:.0f} s")
    tests_ok = "tests" not in result or result["tests"]["returncode"] == 0
    models_ok = all("error" not in r or r["error"] == SKIPPED for r in result["models"])
    groups_ok = not any(note.startswith("failed") for note in result.get("groups", {}).get("notes", {}).values())
    return 0 if tests_ok and models_ok and groups_ok else 1


if __name__ == "__main__":
    sys.exit(main())
