"""Experiments: the paper's studies as spec files, sweeps over them on any executor, and collecting results.

- `load_spec(name_or_path)` / `list_specs()`: the spec files (built-in ones live in ``dstbench/specs``).
- `run_sweep(spec, out, ...)`: train what is not done yet (local processes, Slurm via submitit, or Ray).
- `sweep_status(out)`: done / running / failed / pending per spec.
- `collect(out)` / `write_collected(out)`: the results and metrics tables.
"""

from dstbench.experiments.collect import collect, write_collected
from dstbench.experiments.spec import PlannedRun, Spec, SpecError, list_specs, load_spec, select_runs
from dstbench.experiments.status import format_status, sweep_status
from dstbench.experiments.sweep import SweepResult, plan_sweep, run_sweep
from dstbench.experiments.worker import WorkerJob, work

__all__ = [
    "PlannedRun",
    "Spec",
    "SpecError",
    "SweepResult",
    "WorkerJob",
    "collect",
    "format_status",
    "list_specs",
    "load_spec",
    "plan_sweep",
    "run_sweep",
    "select_runs",
    "sweep_status",
    "work",
    "write_collected",
]
