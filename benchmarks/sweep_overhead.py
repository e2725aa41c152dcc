"""What the sweep machinery costs: per-run overhead of a local sweep, and `collect` / `status` on 10,000 runs.

1. A sweep of `--runs` runs whose trainer sleeps a known `--run-seconds` and writes the run files (config,
   metrics, summary) like the real one, on `--workers` local worker processes. From the trainer's start/finish
   times: the start-up (sweep start to first run), the gap between one run's end and the next start on the same
   worker (claiming, status checks, releasing: the per-run cost), the tail (last run's end to the sweep's end,
   including its bookkeeping), and the overhead of the whole sweep against the ideal wall time.
2. `collect` and `status` over `--collect-runs` synthetic finished runs of `--epochs` epochs each.

Targets: under 5% overhead per run, collect of 10,000 runs under 10 s. Prints a table, writes JSON.

    python benchmarks/sweep_overhead.py [--runs 50] [--run-seconds 0.5] [--workers 2] [--collect-runs 10000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dstbench import store
from dstbench.config import RunConfig
from dstbench.experiments import collect, run_sweep, sweep_status
from dstbench.experiments.spec import parse_spec
from dstbench.train import resolve_config

HERE = Path(__file__).resolve().parent
TIMES = "bench-times.log"


def sleepy(config: RunConfig, run_dir: Path) -> dict:
    """A trainer that 'trains' for RUN_SECONDS and writes what the real one writes (one epoch)."""
    run_dir = Path(run_dir)
    started = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    store.atomic_write_json(run_dir / store.CONFIG, config.model_dump(mode="json"))
    time.sleep(float(os.environ["RUN_SECONDS"]))
    store.append_jsonl(run_dir / store.METRICS, [{"epoch": 1, "train_loss": 0.5, "test_acc": 0.9}])
    summary = {"status": "done", "reason": None, "run_id": run_dir.name, "config": config.model_dump(mode="json"),
               "final_test_acc": 0.9, "epochs": 1}
    store.atomic_write_json(run_dir / store.SUMMARY, summary)
    with open(run_dir.parent.parent / TIMES, "a") as f:
        f.write(f"{os.getpid()} {started} {time.time()}\n")
    return summary


def measure_sweep(runs: int, run_seconds: float, workers: int) -> dict:
    spec = parse_spec({"name": "bench", "base": {"model": "small_mlp", "dataset": "digits", "epochs": 1},
                       "grid": {"seed": list(range(runs))}}, "bench.toml")
    os.environ["RUN_SECONDS"] = str(run_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        begin = time.time()
        result = run_sweep(spec, out, workers=workers, trainer=sleepy, progress=False)
        end = time.time()
        assert result.ok and result.counts.done == runs, result
        rows = [line.split() for line in (out / TIMES).read_text().splitlines()]
    spans = sorted((int(pid), float(a), float(b)) for pid, a, b in rows)
    gaps = [b[1] - a[2] for a, b in zip(spans, spans[1:], strict=False) if a[0] == b[0]]
    trained = sum(b - a for _, a, b in spans)
    ideal = math.ceil(runs / workers) * run_seconds
    wall = end - begin
    return {
        "runs": runs, "workers": workers, "run_seconds": run_seconds,
        "wall_s": wall, "ideal_wall_s": ideal, "overhead_pct": 100 * (wall - ideal) / ideal,
        "startup_s": min(a for _, a, _ in spans) - begin, "tail_s": end - max(b for _, _, b in spans),
        "per_run_gap_ms": 1000 * statistics.mean(gaps) if gaps else 0.0,
        "per_run_gap_pct": 100 * statistics.mean(gaps) / run_seconds if gaps else 0.0,
        "trainer_time_s": trained,
    }


def synthetic_runs(out: Path, n: int, epochs: int = 100) -> None:
    """n finished run folders (config, summary, metrics of `epochs` lines) and a sweep record listing them."""
    base = resolve_config(RunConfig(model="large_mlp", dataset="cifar10", density=0.1)).model_dump(mode="json")
    metric_keys = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
                   "prune_fraction", "density", "itop", "seconds")

    def write(i: int) -> dict:
        config = {**base, "seed": i}
        run_id = f"{i:016x}"
        folder = out / store.RUNS / run_id
        folder.mkdir(parents=True)
        lines = "".join(
            json.dumps({"epoch": e, "step": 352 * e, **{k: (i + e) / (i + e + 1.0) for k in metric_keys}}) + "\n"
            for e in range(1, epochs + 1))
        (folder / store.METRICS).write_text(lines)
        (folder / store.CONFIG).write_text(json.dumps(config))
        (folder / store.SUMMARY).write_text(json.dumps({
            "status": "done", "reason": None, "run_id": run_id, "config": config, "epochs": epochs,
            "steps": 352 * epochs, "final_test_acc": 0.5, "final_val_acc": 0.5, "final_train_loss": 0.1,
            "final_val_loss": 0.2, "best_val_acc": 0.6, "best_val_epoch": 50, "best_val_test_acc": 0.55,
            "final_itop": 0.7, "final_density": 0.1, "wall_seconds": 100.0, "params_total": 3676682,
            "params_sparse": 3670016, "params_active": 367000, "versions": {"python": "3.11", "torch": "2"},
        }))
        return {"run_id": run_id, "arm": "dst"}

    with ThreadPoolExecutor(16) as pool:
        entries = list(pool.map(write, range(n)))
    store.atomic_write_json(out / "sweeps" / "synthetic.json",
                            {"spec": "synthetic", "path": "-", "report": {}, "runs": entries})


def measure_collect(n: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        synthetic_runs(out, n, epochs)
        start = time.perf_counter()
        results, metrics = collect(out)
        collect_s = time.perf_counter() - start
        start = time.perf_counter()
        status = sweep_status(out)
        status_s = time.perf_counter() - start
    assert len(results) == n and len(metrics) == n * epochs and status[0].counts.done == n
    return {"runs": n, "epochs": epochs, "collect_s": collect_s, "status_s": status_s,
            "results_rows": len(results), "metrics_rows": len(metrics)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--run-seconds", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--collect-runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", default=str(HERE / "results" / "sweep_overhead.json"))
    args = parser.parse_args()

    sweep = measure_sweep(args.runs, args.run_seconds, args.workers)
    gathered = measure_collect(args.collect_runs, args.epochs)
    print(f"sweep: {sweep['runs']} runs of {sweep['run_seconds']} s on {sweep['workers']} local workers")
    print(f"  {'wall':<28}{sweep['wall_s']:8.2f} s   (ideal {sweep['ideal_wall_s']:.2f} s, "
          f"overhead {sweep['overhead_pct']:.1f}%)")
    print(f"  {'start-up (spawn, plan)':<28}{sweep['startup_s']:8.2f} s")
    print(f"  {'per run (claim, checks)':<28}{sweep['per_run_gap_ms']:8.1f} ms  ({sweep['per_run_gap_pct']:.2f}% "
          f"of a run)")
    print(f"  {'tail (final poll, exit)':<28}{sweep['tail_s']:8.2f} s")
    print(f"collect: {gathered['runs']} runs x {gathered['epochs']} epochs -> {gathered['results_rows']} + "
          f"{gathered['metrics_rows']} rows in {gathered['collect_s']:.2f} s (target < 10 s); "
          f"status in {gathered['status_s']:.2f} s")
    record = {"sweep": sweep, "collect": gathered, "cpu_count": os.cpu_count(), "python": platform.python_version(),
              "machine": platform.machine()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
