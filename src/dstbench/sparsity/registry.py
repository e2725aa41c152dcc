"""Name -> function registries for criteria, growth rules, schedules and distributions.

A rule is named by a string, optionally with parameters: ``"mest"``, ``"mest:lam=0.5"`` or ``("mest", {"lam": 0.5})``.
Parameters are the rule function's keyword-only arguments; unknown names or parameters raise an error that lists
the valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

RuleSpec = str | tuple[str, Mapping[str, Any]]


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


# Keyword arguments the engine passes itself; never user parameters.
_PROVIDED = frozenset({"generator", "momentum", "initial", "total", "step"})


def needs(*, grad: bool = False, momentum: bool = False) -> tuple[str, ...]:
    """The training state a rule reads, as the registries record it."""
    return tuple(name for name, flag in (("grad", grad), ("momentum", momentum)) if flag)


def _parse_value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: RuleSpec) -> tuple[str, dict[str, Any]]:
    """``"mest:lam=0.5"`` -> ``("mest", {"lam": 0.5})``; tuples pass through."""
    if isinstance(spec, tuple):
        name, params = spec
        return str(name), dict(params)
    if not isinstance(spec, str):
        raise TypeError(f"a rule is a name or (name, params), got {spec!r}")
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"parameter {item!r} in {spec!r} is not of the form key=value")
        params[key.strip()] = _parse_value(value)
    return name.strip(), params


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
        """The rule, its function with the spec's parameters bound, and those parameters."""
        name, params = parse_spec(spec)
        rule = self.get(name)
        valid = rule.parameters()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            shown = ", ".join(f"{k} (default {v!r})" for k, v in valid.items()) or "none"
            raise ValueError(f"{self.kind} {name!r} has no parameter {', '.join(unknown)}; its parameters: {shown}")
        return rule, partial(rule.fn, **params), params

    def __contains__(self, name: object) -> bool:
        return name in self._rules
