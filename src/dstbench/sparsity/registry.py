"""Name -> function registries for criteria, growth rules, schedules and distributions.

A rule is named by a string, optionally with parameters: ``"mest"``, ``"mest:lam=0.5"`` or ``("mest", {"lam": 0.5})``.
Parameters are the rule function's keyword-only arguments, each of its default's type; a numeric one may declare
its range on itself (``every: Annotated[int, Range(gt=0)] = 600``). Unknown names or parameters, a value of
another type or out of range raise an error that names the rule, the parameter and what is valid: here, once,
for the engine (`Registry.resolve`) and for run configs (`Registry.canonical`).
"""

from __future__ import annotations

import functools
import inspect
import math
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from dstbench.vocab import RuleSpec, format_rule, parse_rule  # rule strings are part of the shared vocabulary


@dataclass(frozen=True)
class Range:
    """The values a number may take: above `gt` (or at least `ge`), below `lt` (or at most `le`); finite."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return False
        return not ((self.gt is not None and value <= self.gt) or (self.ge is not None and value < self.ge)
                    or (self.lt is not None and value >= self.lt) or (self.le is not None and value > self.le))

    def __str__(self) -> str:
        bounds = [f"{op} {bound!r}" for op, bound in ((">", self.gt), (">=", self.ge), ("<", self.lt),
                                                        ("<=", self.le)) if bound is not None]
        return " and ".join(bounds) or "finite"


@dataclass(frozen=True)
class Rule:
    """A registered function plus what it needs from the training state."""

    name: str
    fn: Callable[..., Any]
    needs: frozenset[str] = field(default_factory=frozenset)

    def parameters(self) -> dict[str, Any]:
        """The rule's tunable keyword-only parameters and their defaults."""
        sig = inspect.signature(self.fn)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _PROVIDED
        }

    @functools.cached_property
    def ranges(self) -> dict[str, Range]:
        """The ranges the rule's parameters declare (``Annotated[float, Range(ge=0)]``)."""
        hints = typing.get_type_hints(self.fn, include_extras=True)
        return {name: meta for name in self.parameters()
                for meta in getattr(hints.get(name), "__metadata__", ()) if isinstance(meta, Range)}

    def check(self, kind: str, params: Mapping[str, Any], exclude: Collection[str] = ()) -> dict[str, Any]:
        """`params`, checked: known (`exclude`: parameters given elsewhere, not here), every parameter without a
        default given, each of its default's type (an int for a float is fine) and in its range; returned typed.
        Raises ValueError naming the rule, the parameter and what is valid."""
        defaults = {k: v for k, v in self.parameters().items() if k not in exclude}
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            shown = ", ".join(f"{k} (default {v!r})" for k, v in defaults.items()) or "none"
            raise ValueError(f"{kind} {self.name!r} has no parameter {', '.join(unknown)}; its parameters: {shown}")
        for key, default in defaults.items():
            if key not in params and default is inspect.Parameter.empty:
                raise ValueError(f"{kind} {self.name!r} needs parameter {key} (e.g. \"{self.name}:{key}=...\")")
        return {key: self._typed(kind, key, value, defaults[key]) for key, value in params.items()}

    def _typed(self, kind: str, key: str, value: Any, default: Any) -> Any:
        if default is not None and default is not inspect.Parameter.empty:
            want = type(default)
            ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if want is float and ok and not math.isfinite(value):
                ok = False
            if not ok:
                raise ValueError(f"{kind} {self.name!r}: parameter {key} = {value!r} must be a finite "
                                 f"{want.__name__} (default {default!r})")
        bounds = self.ranges.get(key)
        if bounds is not None and value not in bounds:
            raise ValueError(f"{kind} {self.name!r}: parameter {key} = {value!r} must be {bounds} "
                             f"(default {default!r})")
        return value


# Keyword arguments the engine passes itself; never user parameters.
_PROVIDED = frozenset({"generator", "momentum", "initial", "total", "step", "dense"})


def needs(*, grad: bool = False, momentum: bool = False) -> tuple[str, ...]:
    """The training state a rule reads, as the registries record it."""
    return tuple(name for name, flag in (("grad", grad), ("momentum", momentum)) if flag)


class Registry:
    """A plain dict of named rules of one kind (criterion, growth, schedule, distribution)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._rules: dict[str, Rule] = {}

    def register(
        self, name: str, fn: Callable[..., Any] | None = None, *, needs: tuple[str, ...] = (), overwrite: bool = False
    ) -> Callable[..., Any]:
        """Register `fn` under `name` (usable as a decorator). `needs` names state the rule reads ('grad', ...)."""

        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._rules and not overwrite:
                raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")
            if not name or any(c in name for c in ":,=|"):
                raise ValueError(f"{self.kind} name {name!r} must be non-empty and free of ':', ',', '=', '|'")
            self._rules[name] = Rule(name, f, frozenset(needs))
            return f

        return add(fn) if fn is not None else add

    def names(self) -> list[str]:
        return sorted(self._rules)

    def get(self, name: str) -> Rule:
        try:
            return self._rules[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def resolve(self, spec: RuleSpec) -> tuple[Rule, Callable[..., Any], dict[str, Any]]:
        """The rule, its function with the spec's parameters bound (checked: `Rule.check`), and those parameters."""
        name, params = parse_rule(spec)
        rule = self.get(name)
        params = rule.check(self.kind, params)
        return rule, partial(rule.fn, **params), params

    def canonical(self, spec: RuleSpec, exclude: Collection[str] = ()) -> str:
        """The one text of a rule: registered name, every parameter (less `exclude`) with its default filled in,
        sorted, each of its default's type (``"mest:lam=1"`` -> ``"mest:lam=1.0"``); checked as `Rule.check`."""
        name, params = parse_rule(spec)
        return _canonical(self.kind, self.get(name), tuple(sorted(params.items())), tuple(sorted(exclude)))

    def __contains__(self, name: object) -> bool:
        return name in self._rules


@functools.lru_cache(maxsize=4096)
def _canonical(kind: str, rule: Rule, given: tuple[tuple[str, Any], ...], exclude: tuple[str, ...]) -> str:
    """`Registry.canonical` of one registered rule (cached: a spec expands to thousands of configs)."""
    values = {k: v for k, v in rule.parameters().items() if k not in exclude}
    values.update(rule.check(kind, dict(given), exclude))
    return format_rule(rule.name, values)
