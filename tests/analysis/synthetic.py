"""Synthetic results folders in the stored run format, for the analysis and report tests.

The numbers follow a simple known model (accuracy rises with density, criteria differ by a fixed penalty, seeds
add small noise), the masks and probe sets are real bool arrays of a tiny three-layer network whose last layer is
kept dense, and the tables are written with pandas as `dstbench collect` writes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dstbench import store
from dstbench.config import RunConfig

LAYERS = {"fc1.weight": (16, 24), "fc2.weight": (12, 16), "out.weight": (2, 12)}
DENSE_LAYER = "out.weight"
PENALTY = {"magnitude": 0.0, "set": 0.004, "mest": 0.006, "snip": 0.03, "reciprocal_sensitivity": 0.02,
           "random": 0.05}
RECIPE = dict(epochs=4, batch_size=32, optimizer="sgd", lr=0.01, momentum=0.9, nesterov=True,
              weight_decay=5e-4, lr_milestones=(0.5, 0.75), lr_gamma=0.1, warmup_epochs=0, label_smoothing=0.0)
PROBE_CRITERIA = ("magnitude", "set", "snip", "reciprocal_sensitivity", "random")


def config(**fields) -> RunConfig:
    return RunConfig(**{"model": "small_mlp", "dataset": "digits", "progress": False, **RECIPE, **fields})


def accuracy(cfg: RunConfig) -> float:
    """The known model behind every synthetic accuracy."""
    noise = 0.002 * math.sin(3.0 * cfg.seed + 1.0)
    if cfg.mode == "dense":
        return 0.80 + noise - (0.01 if cfg.dropout else 0.0)
    base = 0.70 + 0.06 * math.log10(cfg.density / 0.05) + noise
    if cfg.mode == "static":
        return base - 0.04
    scale = 1.0 if cfg.density <= 0.2 else 0.3
    return base - scale * PENALTY.get(cfg.prune.split(":")[0], 0.01) - 0.002 * (cfg.grow == "gradient") \
        - full_layers_effect(cfg)


def full_layers_effect(cfg: RunConfig) -> float:
    """What updating full-density layers costs a DST run: nothing on breast_cancer; elsewhere 0.001 (seed 0) or
    0.002 (seed 1), plus 0.1 x the density, plus a tenth of the criterion's penalty (distinct for the criteria,
    densities 0.05/0.1 and seeds 0/1 of the paired tests)."""
    if not cfg.update_full_layers or cfg.dataset == "breast_cancer":
        return 0.0
    return 0.001 * (1 + cfg.seed) + 0.1 * cfg.density + PENALTY.get(cfg.prune.split(":")[0], 0.01) / 10


def init_mask(seed: int, density: float) -> dict[str, np.ndarray]:
    """Exact-count random masks; the last layer dense (as ERK keeps small classifiers)."""
    rng = np.random.default_rng(1000 + seed)
    masks = {}
    for name, shape in LAYERS.items():
        size = int(np.prod(shape))
        if name == DENSE_LAYER or density >= 1.0:
            masks[name] = np.ones(shape, dtype=bool)
            continue
        flat = np.zeros(size, dtype=bool)
        flat[rng.choice(size, max(1, round(density * size)), replace=False)] = True
        masks[name] = flat.reshape(shape)
    return masks


def _state(seed: int, step: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed * 7919 + step)
    return {n: (rng.normal(size=s), rng.normal(size=s) * 0.1) for n, s in LAYERS.items()}


def _score(criterion: str, w: np.ndarray, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if criterion in ("magnitude", "set"):
        return np.abs(w) + (1e-3 * rng.random(w.shape) if criterion == "set" else 0.0)
    if criterion.startswith("mest"):
        return np.abs(w) + np.abs(g)
    if criterion == "snip":
        return np.abs(w * g)
    if criterion == "reciprocal_sensitivity":
        return np.abs(w) / (np.abs(g) + 1e-8)
    return rng.random(w.shape)


def probe(seed: int, step: int, masks: dict[str, np.ndarray], criteria: Iterable[str],
          fractions: Sequence[float]) -> dict[tuple[str, float], dict[str, np.ndarray]]:
    """What each criterion would prune from a shared state: the lowest-scoring active weights per layer."""
    state = _state(seed, step)
    out = {}
    for criterion in criteria:
        rng = np.random.default_rng(seed * 31 + step + len(criterion))
        scores = {n: _score(criterion, w, g, rng) for n, (w, g) in state.items()}
        for fraction in fractions:
            sets = {}
            for name, mask in masks.items():
                chosen = np.zeros(mask.shape, dtype=bool)
                if not mask.all():
                    active = np.flatnonzero(mask)
                    k = math.ceil(fraction * active.size)
                    order = np.argsort(scores[name].ravel()[active], kind="stable")
                    chosen.ravel()[active[order[:k]]] = True
                sets[name] = chosen
            out[(criterion, fraction)] = sets
    return out


def final_mask(cfg: RunConfig) -> dict[str, np.ndarray]:
    """The init mask with a criterion-dependent share of its active weights moved elsewhere."""
    masks = init_mask(cfg.seed, cfg.density)
    moved = {"magnitude": 0.5, "set": 0.5, "mest": 0.55, "snip": 0.8, "reciprocal_sensitivity": 0.7}
    key = "magnitude" if cfg.prune in ("magnitude", "set") else cfg.prune
    rng = np.random.default_rng(cfg.seed * 101 + sum(map(ord, key)))
    out = {}
    for name, mask in masks.items():
        if mask.all():
            out[name] = mask
            continue
        flat = mask.ravel().copy()
        active, inactive = np.flatnonzero(flat), np.flatnonzero(~flat)
        k = min(int(moved.get(key, 0.6) * active.size), inactive.size)
        flat[rng.choice(active, k, replace=False)] = False
        flat[rng.choice(inactive, k, replace=False)] = True
        out[name] = flat.reshape(mask.shape)
    return out


def write_run(root: Path, cfg: RunConfig, *, status: str = "done", masks: bool = False,
              probe_steps: Sequence[int] = ()) -> str:
    """One run folder: config, metrics, summary (unless 'started'), and masks and probes when asked."""
    run = store.RunDir(Path(root) / store.RUNS / cfg.run_id())
    run.path.mkdir(parents=True, exist_ok=True)
    store.atomic_write_json(run.file(store.CONFIG), cfg.model_dump(mode="json"))
    if status == "started":
        return run.run_id
    acc, epochs = accuracy(cfg), cfg.epochs
    itop = cfg.density if cfg.mode != "dst" else min(1.0, cfg.density * (1 + 40 / max(cfg.update_period, 1)))
    rows = []
    for e in range(1, epochs + 1):
        progress = e / epochs
        rows.append({"epoch": e, "step": 10 * e, "train_loss": 1.0 - 0.6 * progress, "train_acc": acc * progress,
                     "val_loss": 1.05 - 0.5 * progress + 0.02 * (cfg.prune == "snip"), "val_acc": acc * progress,
                     "test_loss": 1.1 - 0.5 * progress, "test_acc": acc - 0.05 * (1 - progress), "lr": 0.01,
                     "prune_fraction": 0.5 * (1 - progress), "density": cfg.density,
                     "itop": cfg.density + (itop - cfg.density) * progress, "seconds": 0.1})
    store.append_jsonl(run.file(store.METRICS), rows)
    if masks:
        store.save_masks(run.mask_path("init"), init_mask(cfg.seed, cfg.density))
        store.save_masks(run.mask_path("final"), final_mask(cfg))
    for step in probe_steps:
        current = init_mask(cfg.seed, cfg.density) if step == probe_steps[0] else final_mask(cfg)
        store.save_probe(run.probe_path(step), probe(cfg.seed, step, current, cfg.probe_criteria,
                                                     cfg.probe_fractions or (0.5,)))
    summary = {"status": status, "reason": None if status == "done" else "RuntimeError: diverged",
               "run_id": run.run_id, "config": cfg.model_dump(mode="json"), "epochs": epochs, "steps": 10 * epochs,
               "final_test_acc": acc, "final_val_acc": acc, "final_train_loss": 0.4, "final_val_loss": 0.55,
               "best_val_acc": acc + 0.001, "best_val_epoch": epochs, "best_val_test_acc": acc,
               "final_itop": itop, "final_density": cfg.density, "wall_seconds": 1.0, "params_total": 700,
               "params_sparse": 664, "params_active": int(664 * cfg.density)}
    store.atomic_write_json(run.file(store.SUMMARY), summary)
    return run.run_id


def write_sweep(root: Path, spec: str, runs: Sequence[tuple[str, str]], report: dict | None = None) -> None:
    content = {"spec": spec, "path": f"specs/{spec}.toml", "runs": [{"run_id": r, "arm": a} for r, a in runs]}
    if report is not None:
        content["report"] = report
    store.atomic_write_json(Path(root) / "sweeps" / f"{spec}.json", content)


def write_tables(root: Path) -> None:
    """results.parquet and metrics.parquet as `dstbench collect` writes them (docs/run-format.md)."""
    listed = {}
    for path in sorted((Path(root) / "sweeps").glob("*.json")):
        sweep = json.loads(path.read_text())
        for entry in sweep["runs"]:
            listed.setdefault(entry["run_id"], []).append((sweep["spec"], entry["arm"]))
    rows, metrics = [], []
    for run in store.iter_runs(root):
        summary = run.summary()
        if summary is None:
            continue
        cfg = RunConfig.model_validate(summary["config"])
        identity = {k: json.dumps(v) if isinstance(v, list) else v for k, v in cfg.identity().items()}
        scalars = {k: v for k, v in summary.items() if not isinstance(v, dict)}
        for spec, arm in listed.get(run.run_id, [("runs", "")]):
            rows.append({"experiment": spec, "arm": arm, "mode": cfg.mode, **identity, **scalars})
        metrics.extend({"run_id": run.run_id, **m} for m in run.metrics())
    pd.DataFrame(rows).to_parquet(Path(root) / "results.parquet")
    pd.DataFrame(metrics).to_parquet(Path(root) / "metrics.parquet")


def performance_experiment(root: Path, criteria=("magnitude", "set", "snip"), densities=(0.05, 0.1, 0.5),
                           grows=("random", "gradient"), seeds=(0, 1, 2), spec: str = "performance",
                           report: dict | None = None) -> list[str]:
    """Fig. 1-3 style: criteria x densities x growth x seeds, plus static and dense baselines."""
    runs = []
    for grow in grows:
        for criterion in criteria:
            for density in densities:
                for seed in seeds:
                    cfg = config(density=density, prune=criterion, grow=grow, seed=seed)
                    runs.append((write_run(root, cfg), "grid"))
    for density in densities:
        for seed in seeds:
            runs.append((write_run(root, config(density=density, update_period=0, seed=seed)), "static"))
    for seed in seeds:
        runs.append((write_run(root, config(seed=seed)), "dense"))
    write_sweep(root, spec, runs, report)
    return [r for r, _ in runs]


def structure_experiment(root: Path, criteria=("magnitude", "set", "snip", "reciprocal_sensitivity"),
                         seeds=(0, 1, 2), spec: str = "structure", report: dict | None = None) -> list[str]:
    """Fig. 6/17/19-21 style: masks and a first-update probe for each criterion and seed, gradient growth."""
    runs = []
    for criterion in criteria:
        for seed in seeds:
            cfg = config(density=0.2, prune=criterion, grow="gradient", seed=seed, probe_steps=(8,),
                         probe_criteria=PROBE_CRITERIA, probe_fractions=(0.5, 0.25))
            runs.append((write_run(root, cfg, masks=True, probe_steps=(8,)), "grid"))
    write_sweep(root, spec, runs, report)
    return [r for r, _ in runs]


def over_time_experiment(root: Path, criteria=("magnitude", "snip"), seeds=(0, 1), spec: str = "over_time",
                         report: dict | None = None) -> list[str]:
    """Fig. 18 style: probes every 10 steps with the run's own criterion among the probe criteria."""
    runs = []
    for criterion in criteria:
        for seed in seeds:
            cfg = config(density=0.2, prune=criterion, seed=seed, probe_every=10, probe_criteria=criteria,
                         probe_fractions=(0.25,))
            runs.append((write_run(root, cfg, probe_steps=(10, 20, 30)), "grid"))
    write_sweep(root, spec, runs, report)
    return [r for r, _ in runs]


def write_experiment(root: Path, spec: str, configs: Sequence[dict], report: dict | None = None,
                     **run_options) -> list[str]:
    """A sweep of the given config fields (each a dict for `config`), all written as finished runs."""
    runs = [(write_run(root, config(**fields), **run_options), "grid") for fields in configs]
    write_sweep(root, spec, runs, report)
    return [r for r, _ in runs]
