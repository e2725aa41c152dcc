"""User modules that register criteria, growth rules, schedules or models, imported by every process.

A sweep trains in worker processes (local pool, Slurm, Ray) that never ran the user's script, so a rule
registered there must be importable by name (from the working folder or PYTHONPATH): list the modules in ``DSTBENCH_PLUGINS`` (comma-separated; the
`--plugin` flag of the CLI sets it) and every dstbench process imports them before it trains.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import traceback

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
        except ModuleNotFoundError as exc:
            if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
                raise PluginError(name, exc) from exc  # the plugin is there; something it imports is not
            raise UserError(
                f"plugin module {name!r} (from ${ENV} or --plugin) cannot be imported: {exc}; "
                "it must be on PYTHONPATH (e.g. run from its folder, or pip install it)"
            ) from exc
        except Exception as exc:  # the user's code raised while it was imported
            raise PluginError(name, exc) from exc
        _loaded.add(name)
    return names


class PluginError(UserError):
    """A plugin module raised while it was imported: the user's code, shown with its own traceback."""

    def __init__(self, name: str, exc: BaseException):
        frames = traceback.extract_tb(exc.__traceback__)
        # Only the plugin's own frames: importlib's machinery and this function are not the user's concern.
        own = [f for f in frames if "importlib" not in f.filename and f.filename != __file__] or frames
        lines = "".join(traceback.format_list(own)) + "".join(traceback.format_exception_only(type(exc), exc))
        super().__init__(
            f"plugin module {name!r} (from ${ENV} or --plugin) raised {type(exc).__name__} while it was imported; "
            f"the error is in the plugin, not in dstbench. The plugin's traceback:\n"
            f"{textwrap.indent(lines.rstrip(), '  ')}")
