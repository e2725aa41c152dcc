"""`dstbench list models|datasets|criteria|growth|schedules|distributions|specs [PATTERN]`."""

from __future__ import annotations

import argparse
import fnmatch
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


def names(kind: str, pattern: str | None = None) -> list[str]:
    """The registered names of `kind`, those matching the shell-style `pattern` (`*mlp*`) where given."""
    if kind not in _SOURCES:
        raise UserError(f"cannot list {kind!r}; valid: {', '.join(_SOURCES)}")
    module, attr = _SOURCES[kind]
    fn: Callable[[], list[str]] = getattr(importlib.import_module(module), attr)
    found = list(fn())
    return found if pattern is None else [name for name in found if fnmatch.fnmatchcase(name, pattern)]


def spec_rows(specs: list[str]) -> list[str]:
    """One line per spec: its name, how many runs it has (each run id once) and its description."""
    from dstbench.experiments import load_spec

    loaded = [load_spec(name) for name in specs]
    counts = [f"{len(spec.expand()):,} runs" for spec in loaded]
    width, count_width = max(map(len, specs), default=0), max(map(len, counts), default=0)
    return [f"{name:<{width}}  {count:>{count_width}}  {spec.description}"
            for name, count, spec in zip(specs, counts, loaded, strict=True)]


def _run(args: argparse.Namespace) -> int:
    found = names(args.kind, args.pattern)
    if not found and args.pattern is not None:
        raise UserError(f"no {args.kind} match {args.pattern!r}; `dstbench list {args.kind}` lists them all")
    for line in spec_rows(found) if args.kind == "specs" else found:
        print(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("list", help="list registered models, data sets, criteria, growth rules or specs",
                            description="List what is registered; specs with their run counts and descriptions.")
    parser.add_argument("kind", choices=list(_SOURCES))
    parser.add_argument("pattern", nargs="?", help="only names matching this shell-style pattern, e.g. '*mlp*'")
    parser.set_defaults(func=_run)
