"""Experiments: the paper's studies as spec files, sweeps over them on any executor, and collecting results.

- `load_spec(name_or_path)` / `list_specs()`: the spec files (built-in ones live in ``dstbench/specs``).
- `run_sweep(spec, out, ...)`: train what is not done yet (local processes, Slurm via submitit, or Ray).
- `sweep_status(out)`: done / running / failed / pending per spec.
- `collect(out)` / `write_collected(out)`: the results and metrics tables.

Names are imported on first use, so that worker processes and `dstbench list specs` do not load pandas.
"""

from __future__ import annotations

from dstbench.lazy import lazy_exports

_NAMES = {
    "PlannedRun": "spec",
    "Spec": "spec",
    "SpecError": "spec",
    "list_specs": "spec",
    "load_spec": "spec",
    "select_runs": "selection",
    "SweepResult": "sweep",
    "plan_sweep": "sweep",
    "run_sweep": "sweep",
    "WorkerJob": "worker",
    "work": "worker",
    "format_status": "status",
    "sweep_status": "status",
    "collect": "tables",
    "write_collected": "tables",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_exports(__name__, _NAMES)
