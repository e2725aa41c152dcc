"""Selecting a spec's runs (``--only KEY=VALUE``, ``arm=NAME``), while it expands and after.

A run is selected when it has one of the wanted values of every key. `pruned_axes` applies a selection before any
config is built: the arms, axis values and cases it rules out are never expanded, so selecting 200 runs of a
100,000-run spec builds about 200 configs (`Spec.expand`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.vocab import ARM, OLD_ARM

if TYPE_CHECKING:  # spec.py expands with these functions: its types only, to keep the import one way
    from dstbench.experiments.spec import Arm, PlannedRun, Spec

CASES = "cases"  # the grid axis whose values set several keys at once (spec.py's)
FIELDS = tuple(RunConfig.model_fields)
Selection = Mapping[str, Sequence[Any]]  # key -> wanted values; a run must have one of each key's


class SelectionError(UserError):
    """A selection no run of the spec(s) can match; the message names the key and the values that exist."""


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(wanted, tuple):
        wanted = list(wanted)
    return value == wanted


def _value(run: PlannedRun, key: str) -> Any:
    return run.arm if key == ARM else getattr(run.config, key)


def selects(only: Selection, run: PlannedRun) -> bool:
    """Whether the run has one of the wanted values of every key (``arm`` selects arms)."""
    return all(any(_matches(_value(run, key), w) for w in wanted) for key, wanted in only.items())


def select_runs(runs: Iterable[PlannedRun], only: Selection) -> list[PlannedRun]:
    """The runs `selects` keeps."""
    return [run for run in runs if selects(only, run)]


def pruned_axes(arm: Arm, only: Selection, validate: Callable[[dict[str, Any]], RunConfig],
                ) -> list[tuple[str, tuple[Any, ...]]] | None:
    """The arm's axes less the values (and cases) that set a selected key to an unwanted value; None when the
    arm's name or base rules out all its runs. A key an axis, case or base sets is the resolved config's value
    (resolving fills only what was left out), so a value is judged by validating (`validate`) one point that
    holds it."""
    if ARM in only and not any(_matches(arm.name, w) for w in only[ARM]):
        return None
    if not only:
        return list(arm.axes)
    first = [(name, values[0]) for name, values in arm.axes]

    def fits(keys: Iterable[str], values: Iterable[tuple[str, Any]]) -> bool:
        keys = [k for k in keys if k in only]
        if not keys:
            return True
        config = validate(arm.point(values))
        return all(any(_matches(getattr(config, k), w) for w in only[k]) for k in keys)

    set_by_cases = {k for name, values in arm.axes if name == CASES for case in values for k in case}
    if not fits([k for k in arm.base if k not in set_by_cases], first):  # a case overrides the base
        return None
    axes = []
    for i, (name, values) in enumerate(arm.axes):
        kept = tuple(v for v in values
                     if fits(v if name == CASES else (name,), [*first[:i], (name, v), *first[i + 1:]]))
        if not kept:
            return None
        axes.append((name, kept))
    return axes


def check_keys(only: Selection) -> None:
    """Fail on a filter key that is neither a RunConfig field nor ``arm``."""
    for key in only:
        if key != ARM and key not in FIELDS:
            hint = f" (a spec's groups are now its arms: {ARM}=NAME)" if key == OLD_ARM else ""
            raise SelectionError(f"cannot select on {key!r}: not a RunConfig field{hint}; valid: {ARM}, "
                                 f"{', '.join(FIELDS)}")


def check_selection(specs: Sequence[Spec], selected: Sequence[PlannedRun], only: Selection) -> None:
    """Fail on a filter value no run of the spec(s) has; name what would match.

    `selected` are the runs `only` picked: a wanted value one of them has is fine; for one none has, the specs
    are expanded in full to say which values exist (only on that path, so that a selection stays cheap).
    """
    check_keys(only)
    what = ("spec " if len(specs) == 1 else "specs ") + ", ".join(repr(s.name) for s in specs)
    every: list[PlannedRun] | None = None
    for key, wanted in only.items():
        have = {json_key(_value(run, key)) for run in selected}
        missing = [w for w in wanted if json_key(w) not in have]
        if not missing:
            continue
        if key == ARM:
            have = {arm.name for spec in specs for arm in spec.arms}
        else:
            every = [run for spec in specs for run in spec.expand()] if every is None else every
            have = {json_key(_value(run, key)) for run in every}
        for w in missing:
            if json_key(w) not in have:
                raise SelectionError(f"no run of {what} has {key} = {w!r}; its values: {', '.join(sorted(have))}")


def json_key(value: Any) -> str:
    """A canonical text form of a config value (1 and 1.0 are the same value)."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(json_key(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
