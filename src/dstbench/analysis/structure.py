"""The structural studies (paper sec. 5.4, appendix K) over stored mask and probe files.

Each function takes the finished runs of one experiment, splits them into panels by the configuration fields that
vary (other than the criterion and the seed), reads the files each panel needs, and returns per panel the
matrices of `dstbench.analysis.jaccard`, plus notes on what it had to leave out and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dstbench.analysis.aggregate import STATIC_FREE, setting_fields, sort_criteria
from dstbench.analysis.jaccard import (
    JaccardMatrix,
    LayerSets,
    OverTime,
    end_mask_matrix,
    first_update_matrix,
    jaccard_over_time,
    reference_jaccard,
    retained_removed_by_all,
)
from dstbench.store import RunDir

PanelKey = tuple[tuple[str, object], ...]
Probe = Mapping[tuple[str, float], LayerSets]


@dataclass(frozen=True)
class EndMasks:
    """End-mask Jaccard (with J_init) and, per seed, the shares of weights kept and removed by every criterion."""

    matrix: JaccardMatrix
    retained_by_all: np.ndarray
    removed_by_all: np.ndarray


@dataclass
class Study:
    """Per panel (a tuple of (field, value) pairs; empty when nothing varies) a result, and what was left out."""

    panels: dict[PanelKey, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def panels_of(df: pd.DataFrame, ignore: set[str]) -> list[tuple[PanelKey, pd.DataFrame]]:
    """Split runs by the condition fields that vary, except those in `ignore`."""
    fields = setting_fields(df, ignore)
    if not fields:
        return [((), df)]
    return [(tuple(zip(fields, key if isinstance(key, tuple) else (key,), strict=True)), group)
            for key, group in df.groupby(fields, dropna=False, sort=True)]


def first_update_study(df: pd.DataFrame, run_dir: Callable[[str], RunDir], step: int | None = None) -> Study:
    """Jaccard between what each probe criterion would prune at the first probe step, per fraction (fig. 6a, 17).

    Returns per panel ``{fraction: JaccardMatrix}`` with J_r as reference (random prune sets across seeds).
    Before the first update the run's own criterion and growth have not acted, so they do not split panels; one
    probing run per seed is used (runs of one seed share that state).
    """
    study = Study()
    for key, panel in panels_of(df, ignore=set(STATIC_FREE)):
        runs = panel.sort_values(["seed", "run_id"])
        probes: list[Probe] = []
        probed_seeds: set[object] = set()
        lacking: dict[object, str] = {}
        for run_id, seed in zip(runs["run_id"], runs["seed"], strict=True):
            if seed in probed_seeds:
                continue
            run = run_dir(run_id)
            steps = run.probe_steps()
            chosen = step if step is not None else (steps[0] if steps else None)
            if chosen is None or chosen not in steps:
                lacking.setdefault(seed, run_id)
                continue
            probed_seeds.add(seed)
            probes.append(run.probe(chosen))
        unprobed = [run_id for seed, run_id in lacking.items() if seed not in probed_seeds]
        if unprobed:
            at = "any probe file" if step is None else f"a probe file at step {step}"
            study.notes.append(_lacking(key, unprobed, f"{at} (record with probe_steps and probe_criteria), "
                                        "and no other run of their seed has one"))
        matrices = {}
        for fraction in sorted({f for probe in probes for _, f in probe}, reverse=True):
            per_seed = [{c: sets for (c, f), sets in probe.items() if f == fraction} for probe in probes]
            criteria = [c for c in sort_criteria({c for s in per_seed for c in s}) if c != "random"]
            randoms = [s["random"] for s in per_seed if "random" in s]
            matrices[fraction] = _with_reference(first_update_matrix(per_seed, criteria),
                                                 reference_jaccard(randoms), "J_r")
        if matrices:
            study.panels[key] = matrices
            if any(np.isnan(m.reference) for m in matrices.values()):
                study.notes.append(f"{_describe(key)}: J_r needs the random criterion among the probes of at least "
                                   "two seeds; it is left out where that is not so")
    return study


def end_mask_study(df: pd.DataFrame, run_dir: Callable[[str], RunDir]) -> Study:
    """Jaccard between end masks of criteria from one initial mask, and against it (fig. 6b, 21); with J_init.

    Each panel holds an `EndMasks`, which also has the shares of weights retained and removed by all criteria
    per seed (fig. 19).
    """
    study = Study()
    alone: dict[str, list[str]] = {}  # criterion -> panels where only it has end masks: one note for them all
    for key, runs in panels_of(df, ignore={"prune"}):
        per_seed: dict[object, dict[str, LayerSets]] = {}
        lacking = []
        for _, row in runs.sort_values("run_id").iterrows():
            run = run_dir(row["run_id"])
            if not (run.mask_path("final").exists() and run.mask_path("init").exists()):
                lacking.append(row["run_id"])
                continue
            sample = per_seed.setdefault(row["seed"], {})
            init = run.masks("init")
            if "init" in sample and not _same_masks(sample["init"], init):
                study.notes.append(f"{_describe(key)}, seed {row['seed']}: run {row['run_id']} started from a "
                                   "different initial mask than other criteria of that seed; its pairs mix "
                                   "initialisations")
            sample.setdefault("init", init)
            sample[row["prune"]] = run.masks("final")
        if lacking:
            study.notes.append(_lacking(key, lacking, "masks/init.npz or masks/final.npz (training records "
                                                      "them when the spec asks for masks)"))
        criteria = sort_criteria({c for s in per_seed.values() for c in s if c != "init"})
        if len(criteria) < 2:
            if criteria:
                alone.setdefault(criteria[0], []).append(_describe(key))
            continue
        names = [*criteria, "init"]
        samples = list(per_seed.values())
        matrix = _with_reference(end_mask_matrix(samples, names),
                                 reference_jaccard([s["init"] for s in samples]), "J_init")
        shares = [retained_removed_by_all([s[c] for c in names[:-1] if c in s])
                  for s in samples if sum(c in s for c in names[:-1]) >= 2]
        study.panels[key] = EndMasks(matrix, np.array([r for r, _ in shares]), np.array([r for _, r in shares]))
    for criterion, panels in alone.items():
        if len(panels) == 1:
            study.notes.append(f"{panels[0]}: only {criterion} has end masks; nothing to compare")
        else:
            study.notes.append(f"only {criterion} has end masks in {len(panels)} settings, so they have nothing to "
                               f"compare: {'; '.join(panels)}")
    return study


def over_time_study(df: pd.DataFrame, run_dir: Callable[[str], RunDir], fraction: float | None = None) -> Study:
    """Per panel an `OverTime`: each run's own would-prune set against the other criteria's, per probe step."""
    study = Study()
    for key, runs in panels_of(df, ignore={"prune"}):
        collected, lacking = [], []
        for _, row in runs.sort_values("run_id").iterrows():
            run = run_dir(row["run_id"])
            probes = {step: _one_fraction(run.probe(step), fraction) for step in run.probe_steps()}
            if not probes:
                lacking.append(row["run_id"])
                continue
            without_own = [s for s, sets in probes.items() if row["prune"] not in sets]
            if without_own:
                study.notes.append(f"run {row['run_id']}: probes at steps {without_own} lack its own criterion "
                                   f"{row['prune']!r}; those steps are left out")
                probes = {s: sets for s, sets in probes.items() if s not in without_own}
            if probes:
                collected.append((row["prune"], probes))
        if lacking:
            study.notes.append(_lacking(key, lacking, "probe files (record with probe_every and probe_criteria)"))
        if collected:
            study.panels[key] = _ordered(jaccard_over_time(collected))
    return study


def _one_fraction(probe: Probe, fraction: float | None) -> dict[str, LayerSets]:
    """{criterion: sets} at `fraction`, else at the only fraction each criterion has, else at its largest."""
    chosen: dict[str, tuple[float, LayerSets]] = {}
    for (criterion, f), sets in probe.items():
        if fraction is not None:
            if np.isclose(f, fraction):
                chosen[criterion] = (f, sets)
        elif criterion not in chosen or f > chosen[criterion][0]:
            chosen[criterion] = (f, sets)
    return {c: sets for c, (_, sets) in chosen.items()}


def _with_reference(matrix: JaccardMatrix, value: float, name: str) -> JaccardMatrix:
    return JaccardMatrix(matrix.labels, matrix.mean, matrix.std, matrix.count, value, name)


def _ordered(result: OverTime) -> OverTime:
    """Rows and columns in the paper's criterion order."""
    rows, columns = sort_criteria(result.rows), sort_criteria(result.columns)
    r = [result.rows.index(x) for x in rows]
    c = [result.columns.index(x) for x in columns]
    pick = np.ix_(r, c, range(len(result.steps)))
    return OverTime(tuple(rows), tuple(columns), result.steps, result.mean[pick], result.std[pick],
                    result.count[pick])


def _same_masks(a: LayerSets, b: LayerSets) -> bool:
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def _lacking(key: PanelKey, run_ids: list[str], what: str) -> str:
    shown = ", ".join(run_ids[:5]) + (f" and {len(run_ids) - 5} more" if len(run_ids) > 5 else "")
    counted = f"{len(run_ids)} runs lack" if len(run_ids) != 1 else "1 run lacks"
    return f"{_describe(key)}: {counted} {what}: {shown}"


def _describe(key: PanelKey) -> str:
    return ", ".join(f"{k}={v}" for k, v in key) or "all runs"
