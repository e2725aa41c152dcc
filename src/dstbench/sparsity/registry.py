"""Name -> function registries for criteria, growth rules, schedules and distributions.

A rule is named by a string, optionally with parameters: ``"mest"``, ``"mest:lam=0.5"`` or ``("mest", {"lam": 0.5})``.
Parameters are the rule function's keyword-only arguments; unknown names or parameters raise an error that lists
the valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from dstbench.vocab import RuleSpec, parse_rule  # the rule-string parser is part of the shared vocabulary


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
        """The rule, its function with the spec's parameters bound, and those parameters."""
        name, params = parse_rule(spec)
        rule = self.get(name)
        valid = rule.parameters()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            shown = ", ".join(f"{k} (default {v!r})" for k, v in valid.items()) or "none"
            raise ValueError(f"{self.kind} {name!r} has no parameter {', '.join(unknown)}; its parameters: {shown}")
        return rule, partial(rule.fn, **params), params

    def __contains__(self, name: object) -> bool:
        return name in self._rules
