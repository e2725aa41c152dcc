"""User modules that register criteria, growth rules, schedules or models, imported by every process.

A sweep trains in worker processes (local pool, Slurm, Ray) that never ran the user's script, so a rule
registered there must be importable by name (from the working folder or PYTHONPATH): list the modules in ``DSTBENCH_PLUGINS`` (comma-separated; the
`--plugin` flag of the CLI sets it) and every dstbench process imports them before it trains.
"""

from __future__ import annotations

import importlib
import os
import sys

from dstbench.errors import UserError

ENV = "DSTBENCH_PLUGINS"
_loaded: set[str] = set()


def load_plugins(extra: list[str] | None = None) -> list[str]:
    """Import the modules named in $DSTBENCH_PLUGINS (and `extra`, which are added to it for child processes)."""
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    for name in extra or []:
        if name not in names:
            names.append(name)
    if extra:
        os.environ[ENV] = ",".join(names)
    if names and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # like `python -m`: a module beside the user's spec is importable
    for name in names:
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UserError(
                f"plugin module {name!r} (from ${ENV} or --plugin) cannot be imported: {exc}; "
                "it must be on PYTHONPATH (e.g. run from its folder, or pip install it)"
            ) from exc
        _loaded.add(name)
    return names
