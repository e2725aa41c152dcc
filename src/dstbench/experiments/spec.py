"""Spec files: an experiment of the paper as data, expanded into the runs that produce it.

A spec is a TOML file::

    name = "fig5"                      # defaults to the file name; names OUT/sweeps/<name>.json
    description = "..."
    group = "dst"                      # the name of the group formed by [base] + [grid] (default "main")

    [base]                             # RunConfig keys shared by every run
    model = "large_mlp"
    [grid]                             # key -> list of values: the Cartesian product, last key fastest
    density = [0.1, 0.2]
    cases = [{model = "small_cnn", dataset = "cifar10"}]   # one axis whose values set several keys at once

    [[groups]]                         # more groups: the spec's base plus their own base, and only their grid
    name = "static"
    base = {update_period = 0}
    grid = {density = [0.1, 0.2]}

    [report]                           # which analyses apply, plus the options they read (vocab.REPORT_OPTIONS)
    kinds = ["update_period"]
    metric = "best_val_acc"
    [report.critical_difference]       # options for one kind only
    alpha = 0.1

Every key must be a `RunConfig` field, and every value valid for it: rule strings, models and data sets are
checked by `RunConfig` itself, so a spec fails at load, not in every worker. Errors name the file, the table,
the key and the valid values. A run that two groups produce is listed once, under the first group.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dstbench.config import RunConfig, validation_message
from dstbench.errors import UserError
from dstbench.train.grouping import parse_group_size
from dstbench.vocab import REPORT_KINDS, REPORT_OPTIONS

CASES = "cases"
_TOP_KEYS = ("name", "description", "group", "base", "grid", "groups", "report", "execution")
# How a spec's runs are executed by default (a sweep's command-line option wins): never part of a run id.
_EXECUTION_KEYS = ("group_size",)
_GROUP_KEYS = ("name", "description", "base", "grid")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FIELDS = tuple(RunConfig.model_fields)


class SpecError(UserError):
    """A spec file that cannot be used; the message names the file, the key and what would be valid."""


@dataclass(frozen=True)
class Group:
    """One block of runs: fixed keys plus axes whose product gives the runs."""

    name: str
    base: Mapping[str, Any]
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    where: str  # the TOML table of its grid, for messages
    base_where: Mapping[str, str] = field(default_factory=dict)  # base key -> the table that set it

    def combinations(self) -> Iterator[dict[str, Any]]:
        """Every config dict of the group, in grid order (the last axis varies fastest)."""
        names = [name for name, _ in self.axes]
        for values in itertools.product(*(values for _, values in self.axes)):
            merged = dict(self.base)
            for name, value in zip(names, values, strict=True):
                merged.update(value if name == CASES else {name: value})
            yield merged

    def size(self) -> int:
        count = 1
        for _, values in self.axes:
            count *= len(values)
        return count


@dataclass(frozen=True)
class PlannedRun:
    """A run of a spec: its group, its resolved config and the id of its folder."""

    group: str
    config: RunConfig
    run_id: str


@dataclass(frozen=True)
class Spec:
    """A loaded, validated spec file."""

    name: str
    path: str
    description: str
    groups: tuple[Group, ...]
    report: Mapping[str, Any] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)

    def expand(self) -> list[PlannedRun]:
        """All runs of the spec, resolved (recipe defaults filled in), each run id once (first group wins)."""
        from dstbench.train import resolve_config

        runs: dict[str, PlannedRun] = {}
        for group in self.groups:
            for values in group.combinations():
                config = resolve_config(_validate_config(self, group, values))
                run_id = config.run_id()
                runs.setdefault(run_id, PlannedRun(group.name, config, run_id))
        return list(runs.values())

    def size(self) -> int:
        """The number of grid points before duplicates are merged."""
        return sum(group.size() for group in self.groups)


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(wanted, tuple):
        wanted = list(wanted)
    return value == wanted


def select_runs(runs: Iterable[PlannedRun], only: Mapping[str, Sequence[Any]]) -> list[PlannedRun]:
    """The runs whose config has one of the given values for every key ("group" selects groups)."""
    selected = []
    for run in runs:
        if all(
            any(_matches(run.group if key == "group" else getattr(run.config, key), w) for w in wanted)
            for key, wanted in only.items()
        ):
            selected.append(run)
    return selected


def check_selection(spec: Spec | Sequence[Spec], runs: Sequence[PlannedRun], only: Mapping[str, Sequence[Any]]) -> None:
    """Fail on a filter key that is no field, or a value no run of the spec(s) has; name what would match."""
    specs = [spec] if isinstance(spec, Spec) else list(spec)
    what = ("spec " if len(specs) == 1 else "specs ") + ", ".join(repr(s.name) for s in specs)
    for key, wanted in only.items():
        if key != "group" and key not in FIELDS:
            raise SpecError(f"cannot select on {key!r}: not a RunConfig field; valid: group, {', '.join(FIELDS)}")
        have = {json_key(run.group if key == "group" else getattr(run.config, key)) for run in runs}
        for w in wanted:
            if json_key(w) not in have:
                raise SpecError(
                    f"no run of {what} has {key} = {w!r}; its values: {', '.join(sorted(have))}"
                )


def json_key(value: Any) -> str:
    """A canonical text form of a config value (1 and 1.0 are the same value)."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(json_key(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def specs_folder() -> Path:
    """Where the built-in spec files live (package data)."""
    return Path(str(resources.files("dstbench") / "specs"))


def list_specs() -> list[str]:
    """Names of the built-in specs."""
    return sorted(p.stem for p in specs_folder().glob("*.toml"))


def spec_path(name_or_path: str | Path) -> Path:
    """A spec file path, or the built-in spec of that name."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"spec file {str(path)!r} does not exist")
        return path
    builtin = specs_folder() / f"{name_or_path}.toml"
    if builtin.is_file():
        return builtin
    raise FileNotFoundError(
        f"no spec named {str(name_or_path)!r}; built-in specs: {', '.join(list_specs())} (or give a .toml path)"
    )


def load_spec(name_or_path: str | Path) -> Spec:
    """Read and validate a spec: a path to a TOML file or the name of a built-in spec."""
    path = spec_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(data, str(path))


def parse_spec(data: Mapping[str, Any], path: str) -> Spec:
    """Validate the contents of a spec file (`path` is used in messages) and build the `Spec`."""
    _check_keys(path, "the top level", data, _TOP_KEYS)
    name = data.get("name", Path(path).stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{path}: name {name!r} must be ASCII letters, digits, '_', '-' or '.', starting with a letter or digit (it names a file)")
    base = _freeze(_table(path, "[base]", data.get("base", {})))
    _check_fields(path, "[base]", base)
    groups: list[Group] = []
    if "grid" in data or "groups" not in data:
        main = _group_name(path, "group", data.get("group", "main"))
        groups.append(_group(path, main, {}, base, data.get("grid", {}), "[grid]", "[base]"))
    raw_groups = data.get("groups", [])
    if not isinstance(raw_groups, list):
        raise SpecError(f"{path}: groups must be an array of tables ([[groups]]), got {raw_groups!r}")
    for i, raw in enumerate(raw_groups):
        where = f"[[groups]] #{i + 1}"
        raw = _table(path, where, raw)
        _check_keys(path, where, raw, _GROUP_KEYS)
        if "name" not in raw:
            raise SpecError(f"{path}: {where} needs a name (e.g. name = \"dense\")")
        gname = _group_name(path, f"{where} name", raw["name"])
        gbase = _freeze(_table(path, f"{where} base", raw.get("base", {})))
        _check_fields(path, f"{where} base", gbase)
        groups.append(_group(path, gname, base, gbase, raw.get("grid", {}), f"{where} grid", f"{where} base"))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise SpecError(f"{path}: group names must be unique, got {names}")
    execution = _table(path, "[execution]", data.get("execution", {}))
    _check_keys(path, "[execution]", execution, _EXECUTION_KEYS)
    if "group_size" in execution:
        try:
            execution = {**execution, "group_size": parse_group_size(execution["group_size"])}
        except ValueError as exc:
            raise SpecError(f"{path}: [execution] {exc}") from None
    spec = Spec(name, path, str(data.get("description", "")), tuple(groups), _report(path, data.get("report", {})),
                dict(execution))
    _check_values(spec)
    return spec


def _table(path: str, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{path}: {where} must be a table of keys, got {value!r}")
    return dict(value)


def _check_keys(path: str, where: str, data: Mapping[str, Any], valid: Sequence[str]) -> None:
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(valid)}")


def _check_fields(path: str, where: str, data: Mapping[str, Any], extra: Sequence[str] = ()) -> None:
    for key in data:
        if key not in FIELDS and key not in extra:
            raise SpecError(
                f"{path}: {where} key {key!r} is not a RunConfig field; valid keys: {', '.join(FIELDS + tuple(extra))}"
            )


def _group_name(path: str, where: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{path}: {where} {name!r} must be a non-empty name of letters, digits, '_', '-', '.'")
    return name


def _group(
    path: str, name: str, spec_base: Mapping[str, Any], base: Mapping[str, Any], grid: Any, where: str,
    base_where: str,
) -> Group:
    grid = _table(path, where, grid)
    _check_fields(path, where, grid, extra=(CASES,))
    for key in grid:
        if key in base:
            raise SpecError(f"{path}: {key!r} is set in both {where} and its base; keep one")
    axes = []
    for key, values in grid.items():
        if not isinstance(values, list):
            raise SpecError(f"{path}: {where} {key} must be a list of values, got {values!r}")
        if not values:
            raise SpecError(f"{path}: {where} {key} is an empty list; give at least one value")
        if key == CASES:
            values = [_case(path, where, grid, case) for case in values]
        axes.append((key, tuple(_freeze(v) for v in values)))  # list values (tuple fields) become tuples
    sources = {**{k: "[base]" for k in spec_base}, **{k: base_where for k in base}}
    return Group(name, {**spec_base, **base}, tuple(axes), where, sources)


def _case(path: str, where: str, grid: Mapping[str, Any], case: Any) -> dict[str, Any]:
    case = _table(path, f"{where} cases entry", case)
    _check_fields(path, f"{where} cases entry", case)
    for key in case:
        if key in grid:
            raise SpecError(f"{path}: {key!r} is set in both {where} cases and {where} {key}; keep one")
    return case


def _freeze(value: Any) -> Any:
    """Lists become tuples (RunConfig's tuple fields, hashable and comparable); tables become plain dicts."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def _report(path: str, report: Any) -> dict[str, Any]:
    report = _table(path, "[report]", report)
    kinds = report.get("kinds", [])
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise SpecError(f"{path}: [report] kinds must be a list of names, got {kinds!r}")
    for kind in kinds:
        if kind not in REPORT_KINDS:
            raise SpecError(f"{path}: [report] kinds: unknown kind {kind!r}; valid: {', '.join(REPORT_KINDS)}")
    for key, value in report.items():
        if key in REPORT_KINDS:
            _check_keys(path, f"[report.{key}]", _table(path, f"[report.{key}]", value), REPORT_OPTIONS)
            _check_field_option(path, f"[report.{key}]", value)
        elif key not in ("kinds", *REPORT_OPTIONS):
            raise SpecError(f"{path}: unknown key {key!r} in [report]: nothing reads it; valid keys: kinds, "
                            f"{', '.join(REPORT_OPTIONS)}, or a table named after a kind ([report.KIND])")
    _check_field_option(path, "[report]", report)
    return report


def _check_field_option(path: str, where: str, table: Mapping[str, Any]) -> None:
    """The `field` option (paired_difference) names a boolean RunConfig field."""
    if "field" not in table:
        return
    value = table["field"]
    booleans = [f for f, info in RunConfig.model_fields.items() if info.annotation is bool]
    if value not in booleans:
        raise SpecError(f"{path}: {where} field = {value!r}: not a boolean RunConfig field; valid: "
                        f"{', '.join(booleans)}")


def _origin(group: Group, key: str) -> str:
    """Which table a key of a group's config came from (for messages)."""
    axes = dict(group.axes)
    if key in axes:
        return group.where
    if CASES in axes and any(key in case for case in axes[CASES]):
        return f"{group.where} cases"
    return group.base_where.get(key, f"group {group.name!r}")


def _validate_config(spec: Spec, group: Group, values: Mapping[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ()
        message = str(err["msg"]).removeprefix("Value error, ")
        if loc:
            key = str(loc[0])
            raise SpecError(f"{spec.path}: {_origin(group, key)} {key} = {values.get(key)!r}: {message}") from None
        raise SpecError(f"{spec.path}: group {group.name!r}: {validation_message(exc)} (in the run {dict(values)})"
                        ) from None


def _check_values(spec: Spec) -> None:
    """Validate every grid value once, with the first value of every other axis (cheap; a full expansion
    validates every combination and catches the rare error that only a combination of values makes)."""
    for group in spec.groups:
        first = {name: values[0] for name, values in group.axes}
        points = [first] + [{**first, name: value} for name, values in group.axes for value in values[1:]]
        for point in points:
            merged = dict(group.base)
            for axis, value in point.items():
                merged.update(value if axis == CASES else {axis: value})
            _validate_config(spec, group, merged)
