"""`dstbench list models|datasets|criteria|growth|schedules|distributions|specs`."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from dstbench.errors import UserError

# What can be listed, and where its names come from (imported only when asked).
_SOURCES: dict[str, tuple[str, str]] = {
    "criteria": ("dstbench.sparsity", "list_criteria"),
    "growth": ("dstbench.sparsity", "list_growth"),
    "schedules": ("dstbench.sparsity", "list_schedules"),
    "distributions": ("dstbench.sparsity", "list_distributions"),
    "models": ("dstbench.models", "list"),
    "datasets": ("dstbench.data", "list"),
    "specs": ("dstbench.experiments", "list_specs"),
}


def names(kind: str) -> list[str]:
    if kind not in _SOURCES:
        raise UserError(f"cannot list {kind!r}; valid: {', '.join(_SOURCES)}")
    module, attr = _SOURCES[kind]
    fn: Callable[[], list[str]] = getattr(importlib.import_module(module), attr)
    return list(fn())


def _run(args: argparse.Namespace) -> int:
    for name in names(args.kind):
        print(name)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("list", help="list registered models, data sets, criteria, growth rules or specs")
    parser.add_argument("kind", choices=list(_SOURCES))
    parser.set_defaults(func=_run)
