"""How much DST costs over dense training, per step, topology updates included.

For each model (the paper's small and large MLP, on random data of their data sets' shapes), one process times
plain dense training and DST at density 0.1 with each criterion: every chunk of DST steps right after a chunk of
dense steps, and the step's cost is the median ratio of such pairs, so that machine noise hits both alike. A DST
step's cost is its ordinary step (optimizer step + masking) plus, amortised over the update period (25, 100 and
800 steps: the range of the paper's update-period sweep), the cost of one topology update, which is timed on its
own, with random and with gradient growth. Prints a table and writes JSON.

    python benchmarks/engine_overhead.py [--steps 200] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dstbench import DST
from dstbench.models import build

CRITERIA = ["magnitude", "set", "mest", "snip", "reciprocal_sensitivity", "sensitivity", "random"]
MODELS = {"small_mlp": (24, 1), "large_mlp": (3072, 10)}
UPDATE_PERIODS = (25, 100, 800)
GROWTH = ("random", "gradient")


def make(model_name: str, criterion: str | None, seed: int = 0, grow: str = "random", update_period: int = 800):
    in_features, classes = MODELS[model_name]
    torch.manual_seed(seed)
    model = build(model_name, in_features=in_features, num_classes=classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    dst = None
    if criterion is not None:
        dst = DST(model, opt, density=0.1, distribution="erk", prune=criterion, grow=grow,
                  update_period=update_period, total_steps=100 * 800, seed=seed)
    return model, opt, dst


def batches(model_name: str, n: int, batch: int = 128):
    in_features, classes = MODELS[model_name]
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(n, batch, in_features, generator=g)
    ys = torch.randint(0, max(classes, 2), (n, batch), generator=g)
    return xs, ys


def loss_fn(out, y):
    if out.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(out.reshape(-1), y.float())
    return F.cross_entropy(out, y)


def time_steps(model, opt, dst, xs, ys) -> float:
    """Seconds per step over the batches (no topology update falls in: the first is at step 800)."""
    start = time.perf_counter()
    for x, y in zip(xs, ys, strict=True):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if dst is not None:
            dst.step()
    return (time.perf_counter() - start) / len(xs)


def time_update(model_name: str, criterion: str, grow: str, xs, ys, repeats: int = 5) -> float:
    """Seconds of one `dst.step()` that updates the topology (prune + grow + masking), as training calls it:
    with update period 1 every step updates, and the gradient is dense, as before any update."""
    model, opt, dst = make(model_name, criterion, grow=grow, update_period=1)
    times = []
    for i in range(repeats):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xs[i]), ys[i]).backward()
        opt.step()
        start = time.perf_counter()
        dst.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "engine_overhead.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for model_name in MODELS:
        xs, ys = batches(model_name, args.steps)
        configs = {"dense": None, **{c: c for c in CRITERIA}}
        runs = {name: make(model_name, crit) for name, crit in configs.items()}
        for name in runs:  # warm-up: first-touch allocations, optimizer state
            time_steps(*runs[name], xs[:5], ys[:5])
        # Each DST chunk is timed right after a dense chunk, and its cost is the ratio of the two: drifts of the
        # machine's speed over seconds (frequency, neighbours) cancel in the pair.
        per_step: dict[str, list[float]] = {name: [] for name in runs}
        ratios: dict[str, list[float]] = {name: [] for name in runs if name != "dense"}
        for _ in range(args.rounds):
            for name in ratios:
                dense_time = time_steps(*runs["dense"], xs, ys)
                dst_time = time_steps(*runs[name], xs, ys)
                per_step["dense"].append(dense_time)
                per_step[name].append(dst_time)
                ratios[name].append(dst_time / dense_time)
        for name in runs:
            step = statistics.median(per_step[name])
            updates = {grow: 0.0 if name == "dense" else time_update(model_name, name, grow, xs, ys)
                       for grow in GROWTH}
            ratio = 1.0 if name == "dense" else statistics.median(ratios[name])
            # the ordinary step's cost relative to dense, plus the (random-growth) update amortised over the period
            dense_step = step / ratio
            overhead = {period: ratio - 1 + updates["random"] / period / dense_step for period in UPDATE_PERIODS}
            rows.append(dict(model=model_name, config=name, step_ms=step * 1e3,
                             **{f"update_{grow}_growth_ms": t * 1e3 for grow, t in updates.items()},
                             step_ratio_vs_dense=ratio,
                             **{f"overhead_pct_period_{p}": 100 * o for p, o in overhead.items()}))

    periods = " ".join(f"{'dt=' + str(p):>8}" for p in UPDATE_PERIODS)
    print(f"{'model':<10} {'config':<24} {'step ms':>9} {'upd ms (random / gradient growth)':>34}  "
          f"cost vs dense at update period {periods}")
    for r in rows:
        costs = " ".join(f"{r[f'overhead_pct_period_{p}']:+7.1f}%" for p in UPDATE_PERIODS)
        print(f"{r['model']:<10} {r['config']:<24} {r['step_ms']:9.3f} {r['update_random_growth_ms']:16.2f} / "
              f"{r['update_gradient_growth_ms']:15.2f}  {' ' * 31}{costs}")
    result = dict(benchmark="engine_overhead", torch=torch.__version__, threads=args.threads,
                  machine=platform.machine(), processor=platform.processor(), steps=args.steps,
                  rounds=args.rounds, update_periods=list(UPDATE_PERIODS), rows=rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
