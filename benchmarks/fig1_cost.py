"""Fig. 1's projected cost: for each of its model / data pairs, its runs and run-steps (`specs/fig1.toml` through
dstbench's own spec loader, steps as `dstbench.estimate` counts them), the fastest way measured to train them (eager
or captured step, solo or run groups of K), its run-steps/s and the projected GPU-hours; the total, and the same
total for eager solo runs. Also issue #19's targets, each met, not met or not measured.

Only training steps are projected (evaluation passes are not), at the DST step's measured rate (density 0.1) with
its topology update amortised over fig1's update period of 800 steps; the dense and static runs of a pair are
costed at that rate too. A pair's runs that may share a
group (same `vocab.group_key`, no `grouping.solo_reason`) train as full groups of K plus one last group of the
remaining r runs, costed at the rate of the smallest measured group size >= r (a smaller group is no slower a
step than a larger one). A rate measured on another data set of the same model and input shape stands in for a
pair's own, and the method says so; a pair with no rate of its model is left unmeasured, never guessed.

Used by `benchmarks/gpu_check.py`, which measures the rates; the pure functions are tested in
tests/test_fig1_cost.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dstbench import vocab
from dstbench.estimate import steps_per_epoch

STEP_MODES = ("eager", "captured")  # the `Trainer.step_mode` of a run with capture "off" or "auto"
PAPER_PERIOD = 800  # fig1's update period
SMALL_MODELS = ("small_mlp", "lenet5_caffe", "large_mlp", "small_cnn")  # fig1's four small-model pairs
# Issue #19's targets on one H100 or H200
SMALL_MLP_STEP_MS, SMALL_MLP_GROUP_K, SMALL_MLP_GROUP_RATE = 0.25, 256, 300_000.0
SMALL_GROUP_RATE, RESNET56_STEP_MS, BUSY_SHARE = 30_000.0, 12.0, 0.80
SMALL_PAIRS_HOURS, ALL_PAIRS_HOURS = 1.0, 150.0


@dataclass(frozen=True)
class Pair:
    """A spec's runs of one model on one data set: how many, their training steps in all, and `classes`: (runs,
    steps per run, may they share a group) for each set of runs that could train together."""

    model: str
    dataset: str
    runs: int
    run_steps: int
    classes: tuple[tuple[int, int, bool], ...]


@dataclass(frozen=True)
class Rate:
    """A measured rate: run-steps/s of `model` on `dataset` with the `step` mode ("eager" | "captured") in groups
    of `k` runs (1: solo)."""

    model: str
    dataset: str
    step: str
    k: int
    run_steps_per_s: float


def pairs(spec: str | Path = "fig1") -> list[Pair]:
    """The spec's runs per (model, data set), in the order they first appear."""
    from dstbench.experiments.spec import load_spec
    from dstbench.train.grouping import solo_reason

    counts: dict[tuple[str, str], dict[tuple[str, int, bool], int]] = {}
    for run in load_spec(spec).expand():
        config = run.config
        groupable = solo_reason(config) is None
        key = vocab.group_key(config.model_dump(mode="json")) if groupable else run.run_id
        classes = counts.setdefault((config.model, config.dataset), {})
        cls = (key, config.epochs * steps_per_epoch(config), groupable)
        classes[cls] = classes.get(cls, 0) + 1
    return [Pair(model, dataset, sum(classes.values()), sum(n * steps for (_, steps, _), n in classes.items()),
                 tuple((n, steps, groupable) for (_, steps, groupable), n in classes.items()))
            for (model, dataset), classes in counts.items()]


def rates_from(result: dict[str, Any]) -> list[Rate]:
    """The rates a GPU check measured (`benchmarks/gpu_check.py`'s result): each model's solo DST step, eager and,
    where it ran, captured, with its topology update (eager in both) amortised over `PAPER_PERIOD` steps; and each
    group size of the run groups' part (amortised there), by the step mode the trainer used."""
    out = []
    for row in result.get("models", []):
        if "error" in row:
            continue
        update_ms = row["update_ms"] / PAPER_PERIOD
        out.append(Rate(row["model"], row["dataset"], "eager", 1, 1e3 / (row["dst_step_ms"] + update_ms)))
        captured = row.get("capture")
        if captured and "error" not in captured:
            out.append(Rate(row["model"], row["dataset"], captured["step_mode"], 1,
                            1e3 / (captured["captured_step_ms"] + update_ms)))
    for row in result.get("groups", {}).get("rows", []):
        if "error" not in row:
            out.append(Rate(row["model"], row["dataset"], row["step_mode"], row["k"], row["run_steps_per_s"]))
    return out


# ------------------------------------------------------------------------------------------------ projection

def pair_seconds(pair: Pair, rates: dict[int, float], k: int) -> float | None:
    """Seconds to train `pair`'s runs in groups of at most `k` from `rates` (group size -> run-steps/s, one step
    mode): full groups of k, the rest at the smallest measured size that holds them, runs that may not share a
    group solo. None where a needed rate is missing."""
    seconds = 0.0
    for runs, steps, groupable in pair.classes:
        size = k if groupable else 1
        full, rest = divmod(runs, size)
        groups = [(full, size)] if full else []
        if rest:
            fits = [s for s in rates if rest <= s <= size]
            if not fits:
                return None
            groups.append((1, min(fits)))
        for count, s in groups:
            if s not in rates:
                return None
            seconds += count * steps * s / rates[s]  # a group of s runs makes rates[s] / s of its steps a second
    return seconds


def _tables(pair: Pair, rates: Iterable[Rate], steps: Sequence[str]) -> dict[tuple[str, str], dict[int, float]]:
    """(step mode, data set measured on) -> {group size: run-steps/s} for `pair`'s model: its own data set's
    rates, and those of its model's other data sets of the same input shape."""
    import dstbench.data

    shape = dstbench.data.info(pair.dataset).input_shape
    out: dict[tuple[str, str], dict[int, float]] = {}
    for rate in rates:
        if rate.model != pair.model or rate.step not in steps:
            continue
        if rate.dataset != pair.dataset and dstbench.data.info(rate.dataset).input_shape != shape:
            continue
        table = out.setdefault((rate.step, rate.dataset), {})
        table[rate.k] = max(table.get(rate.k, 0.0), rate.run_steps_per_s)
    return out


def fastest(pair: Pair, rates: Iterable[Rate], steps: Sequence[str] = STEP_MODES, solo: bool = False,
            ) -> tuple[str, float] | None:
    """The fastest measured way to train `pair` (its method, in words, and its seconds), among the `steps` modes
    and, unless `solo`, every measured group size; None if no rate of its model was measured."""
    best: tuple[float, int, str] | None = None
    for (step, dataset), table in _tables(pair, rates, steps).items():
        for k in sorted(table):
            if solo and k != 1:
                continue
            seconds = pair_seconds(pair, table, k)
            if seconds is None:
                continue
            method = f"{step}, " + ("solo" if k == 1 else f"groups of {k}")
            if dataset != pair.dataset:
                method += f" (rates of {pair.model} on {dataset})"
            if best is None or (seconds, k) < best[:2]:
                best = (seconds, k, method)
    return None if best is None else (best[2], best[0])


def project(pairs: Sequence[Pair], rates: Sequence[Rate], device: str, torch_version: str,
            unmeasured: dict[str, str] | None = None) -> dict[str, Any]:
    """The fig1-cost.json object. `unmeasured`: model -> why it has no rate (a pair without one says so, with null
    rates). The totals are null unless every pair was measured."""
    rows, eager = [], []
    for pair in pairs:
        best = fastest(pair, rates)
        solo = fastest(pair, rates, steps=("eager",), solo=True)
        eager.append(None if solo is None else solo[1] / 3600)
        row = dict(model=pair.model, dataset=pair.dataset, runs=pair.runs, run_steps=pair.run_steps)
        if best is None:
            why = (unmeasured or {}).get(pair.model, f"no rate of {pair.model} measured")
            row.update(method=f"not measured: {why}", run_steps_per_s=None, gpu_hours=None)
        else:
            row.update(method=best[0], run_steps_per_s=pair.run_steps / best[1], gpu_hours=best[1] / 3600)
        rows.append(row)
    hours = [r["gpu_hours"] for r in rows]
    return dict(device=device, torch=torch_version, pairs=rows,
                total_gpu_hours=None if None in hours else sum(hours),
                eager_solo_total_gpu_hours=None if None in eager else sum(eager))


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


def markdown(cost: dict[str, Any]) -> str:
    """The README table of `cost` (`project`'s object)."""
    lines = [f"Fig. 1's projected cost on one {cost['device']} (torch {cost['torch']}): training steps only, at the "
             "measured DST step rates (benchmarks/gpu_check.py; benchmarks/fig1_cost.py says how)", "",
             "| model | data | runs | run-steps | fastest way measured | run-steps/s | GPU-hours |",
             "|---|---|---|---|---|---|---|"]
    for p in cost["pairs"]:
        rate = "-" if p["run_steps_per_s"] is None else f"{p['run_steps_per_s']:,.0f}"
        lines.append(f"| {p['model']} | {p['dataset']} | {p['runs']:,} | {p['run_steps']:,} | {p['method']} | "
                     f"{rate} | {_hours(p['gpu_hours'])} |")
    measured = [p for p in cost["pairs"] if p["gpu_hours"] is not None]
    total = (_hours(cost["total_gpu_hours"]) if cost["total_gpu_hours"] is not None else
             f"not all pairs measured; {_hours(sum(p['gpu_hours'] for p in measured))} for the {len(measured)} "
             f"measured")
    lines.append(f"| **total** | | {sum(p['runs'] for p in cost['pairs']):,} | "
                 f"{sum(p['run_steps'] for p in cost['pairs']):,} | | | **{total}** |")
    lines += ["", f"The same runs eager and solo: {_hours(cost['eager_solo_total_gpu_hours'])} GPU-hours"
              + (" (not every pair has an eager solo rate)" if cost["eager_solo_total_gpu_hours"] is None else "")]
    return "\n".join(lines) + "\n"


def save(cost: dict[str, Any], path: Path) -> None:
    """`path` (JSON) and the README table next to it (.md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cost, indent=2))
    path.with_suffix(".md").write_text(markdown(cost))


# ------------------------------------------------------------------------------------------------ targets

def _status(values: Sequence[float | None], met: Any) -> str:
    """"not met" if a measured value misses, else "not measured" if one is missing (or none exists), else "met"."""
    if any(v is not None and not met(v) for v in values):
        return "not met"
    return "met" if values and None not in values else "not measured"


def _solo_modes(row: dict[str, Any]) -> list[tuple[str, float, float | None]]:
    """A model row's solo modes as (step mode, step ms, GPU busy share)."""
    modes = [("eager", row["dst_step_ms"], row.get("gpu_busy_share"))]
    captured = row.get("capture")
    if captured and "error" not in captured:
        modes.append((captured["step_mode"], captured["captured_step_ms"], captured.get("gpu_busy_share")))
    return modes


def targets(result: dict[str, Any], cost: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Issue #19's targets against a GPU check's `result` and its `cost` (`project`): name -> status ("met",
    "not met", "not measured") and the measured value(s)."""
    models = [r for r in result.get("models", []) if "error" not in r]
    groups = [r for r in result.get("groups", {}).get("rows", []) if "error" not in r]
    out: dict[str, dict[str, Any]] = {}

    def put(name: str, values: dict[str, float | None], met: Any) -> None:
        out[name] = dict(status=_status(list(values.values()), met), values=values)

    small = [ms for r in models if r["model"] == "small_mlp" for step, ms, _ in _solo_modes(r) if step == "captured"]
    put(f"small_mlp solo captured <= {SMALL_MLP_STEP_MS:g} ms a step", {"small_mlp": min(small, default=None)},
        lambda ms: ms <= SMALL_MLP_STEP_MS)
    at_k = [r["run_steps_per_s"] for r in groups if r["model"] == "small_mlp" and r["k"] == SMALL_MLP_GROUP_K]
    put(f"small_mlp group at K = {SMALL_MLP_GROUP_K} >= {SMALL_MLP_GROUP_RATE:,.0f} run-steps/s",
        {"small_mlp": max(at_k, default=None)}, lambda rate: rate >= SMALL_MLP_GROUP_RATE)
    put(f"lenet5_caffe, large_mlp and small_cnn groups >= {SMALL_GROUP_RATE:,.0f} run-steps/s",
        {m: max((r["run_steps_per_s"] for r in groups if r["model"] == m and r["k"] > 1), default=None)
         for m in SMALL_MODELS[1:]}, lambda rate: rate >= SMALL_GROUP_RATE)
    resnet = [ms for r in models if r["model"] == "resnet56" and r["dst"]["batch_size"] == 128
              for _, ms, _ in _solo_modes(r)]
    put(f"resnet56 solo <= {RESNET56_STEP_MS:g} ms a step at batch 128", {"resnet56": min(resnet, default=None)},
        lambda ms: ms <= RESNET56_STEP_MS)
    busy: dict[str, float | None] = {}
    for row in models:  # each model's fastest mode measured (run-steps/s), solo or a group of it
        ways = [(1e3 / ms, share) for _, ms, share in _solo_modes(row)]
        ways += [(g["run_steps_per_s"], g.get("gpu_busy_share")) for g in groups
                 if (g["model"], g["dataset"]) == (row["model"], row["dataset"])]
        busy[f"{row['model']}/{row['dataset']}"] = max(ways, key=lambda w: w[0])[1]
    put(f"GPU busy >= {BUSY_SHARE:.0%} for every model in its fastest mode", busy, lambda share: share >= BUSY_SHARE)
    pairs = {(p["model"], p["dataset"]): p["gpu_hours"] for p in cost["pairs"]}
    small_pairs = [h for (m, _), h in pairs.items() if m in SMALL_MODELS]
    put(f"Fig. 1's four small-model pairs <= {SMALL_PAIRS_HOURS:g} GPU-hour projected",
        {"hours": None if None in small_pairs or not small_pairs else sum(small_pairs)},
        lambda hours: hours <= SMALL_PAIRS_HOURS)
    put(f"all of Fig. 1 <= {ALL_PAIRS_HOURS:g} GPU-hours projected", {"hours": cost["total_gpu_hours"]},
        lambda hours: hours <= ALL_PAIRS_HOURS)
    return out


def targets_markdown(found: dict[str, dict[str, Any]]) -> str:
    """One line per target: its status and measured values."""
    def value(v: float | None) -> str:
        return "-" if v is None else f"{v:,.3g}" if v < 1000 else f"{v:,.0f}"

    return "".join(f"- {name}: **{t['status']}** ({', '.join(f'{k} {value(v)}' for k, v in t['values'].items())})\n"
                   for name, t in found.items())


def from_result(result: dict[str, Any], found: Sequence[Pair]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The projection (`project`) of the pairs `found` from a GPU check's `result`, and the targets."""
    env = result["environment"]
    unmeasured = {r["model"]: r["error"] for r in result.get("models", []) if "error" in r}
    cost = project(found, rates_from(result), env.get("gpu", env["device"]), env["torch"], unmeasured)
    return cost, targets(result, cost)
