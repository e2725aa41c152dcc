"""The vocabulary of a run, shared by training, experiments, analysis and the report: each fact stated once.

- the run mode (dense / static / DST) and the config fields each mode ignores;
- a spec's arms, as sweep records and tables name them;
- the config field groups: execution (never part of the run id), recorded (what is saved, not how it trains)
  and compared (what figures put on an axis);
- the file names of a run folder;
- the run status and the one function that reads it from a summary;
- the keys of summary.json and of a metrics.jsonl row;
- the rule-string parser (``"mest:lam=0.5"`` -> ``("mest", {"lam": 0.5})``) and its canonical writer;
- the report kinds.

Plain Python: no torch, no pydantic, nothing of the rest of dstbench.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

# ----------------------------------------------------------------------------------------------- run mode

DENSE, STATIC, DST = "dense", "static", "dst"
MODES = (DST, STATIC, DENSE)


DEFAULT_UPDATE_PERIOD = 800  # the paper's Table 3


def default_update_period(density: float) -> int:
    """The update period of a config that names none: the paper's below density 1, none (dense training) at 1."""
    return 0 if float(density) >= 1.0 else DEFAULT_UPDATE_PERIOD


def run_mode(density: float, update_period: int) -> str:
    """'dense' at density 1 without updates, 'static' below it without updates, else 'dst' (at density 1 too:
    DST on the dense network)."""
    if int(update_period) == 0:
        return DENSE if float(density) >= 1.0 else STATIC
    return DST


# ------------------------------------------------------------------------------------------ field groups

# Where or how fast a run executes, never its result: left out of the run id. `init_partial` is one too: it only
# decides whether a run may start from weights that fit its model in part, or is refused; what it trains is the same.
EXECUTION_FIELDS = frozenset({"data_root", "device", "num_threads", "progress", "keep_checkpoints", "model_path",
                              "gradient_checkpointing", "init_partial", "track", "capture"})
# What is recorded during a run, not how it trains: two runs differing only here are repeats of one condition.
RECORD_FIELDS = frozenset({"mask_snapshot_steps", "probe_steps", "probe_every", "probe_criteria", "probe_fractions"})
# Fields that mean nothing for a static sparse run (no updates) or for a dense one (no mask either).
STATIC_FREE = frozenset(
    {"prune", "grow", "update_period", "prune_fraction", "schedule", "end_step", "global_pruning",
     "regrow_just_pruned", "grow_init", "update_batch_size", "update_full_layers"}
)
DENSE_FREE = STATIC_FREE | {"density", "distribution", "erk_power", "dense_layers", "init_mask"}
# Fields in which the members of one run group (`dstbench.train.group`) may differ: everything DST, the seed, what
# is recorded and how results are kept. All others (model, data, the optimizer recipe, amp, device) must agree.
# A larger-batch update gradient (update_batch_size) needs a forward pass of its own: such runs train solo.
GROUP_FREE = (DENSE_FREE - {"update_batch_size"}) | RECORD_FIELDS | {"seed", "progress", "keep_checkpoints", "track"}
# Fields the paper's figures compare along an axis, as lines or as panels. Other differences (recipe fields such
# as epochs or lr) mean runs that must not be averaged together; reports keep them apart and say so.
COMPARED_FIELDS = frozenset(
    {"model", "dataset", "density", "prune", "grow", "update_period", "global_pruning", "schedule", "batch_size",
     "update_batch_size", "dropout", "input_dropout", "distribution", "erk_power", "prune_fraction", "end_step",
     "regrow_just_pruned", "grow_init", "dense_layers", "update_full_layers"}
)


# Fields added after runs were already recorded, with the value every earlier run had: a field at that value is
# left out of the run id, so adding a field never renames the runs of existing result folders. Add an entry with
# each new identity field; never change one (the ids of recorded runs depend on it).
ID_NEUTRAL: dict[str, Any] = {
    "init_mask": "random", "warmup_steps": 0, "lr_decay": "step", "adam_betas": None, "adam_eps": None,
    "max_length": None,
}


def id_fields(identity: Mapping[str, Any]) -> dict[str, Any]:
    """What a run id hashes: the identity fields, less those at their `ID_NEUTRAL` value."""
    return {k: v for k, v in identity.items() if not (k in ID_NEUTRAL and v == ID_NEUTRAL[k])}


def free_fields(mode: str) -> frozenset[str]:
    """The fields a run of `mode` ignores: a baseline matches a panel whatever values it holds there."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    return {DST: frozenset(), STATIC: STATIC_FREE, DENSE: DENSE_FREE}[mode]




def group_key(config: Mapping[str, Any]) -> str:
    """Runs (configs as JSON dicts) with equal keys can train in one run group."""
    return json.dumps({k: v for k, v in config.items() if k not in GROUP_FREE}, sort_keys=True, default=str)


AUTO = "auto"


# ---------------------------------------------------------------------------------------------- spec arms

# A spec's treatment arm (dst, dense, static, ...): ``--only arm=NAME``, the key of a sweep record's run entry and
# a column of collect's results table. Records and tables written before the rename call it "group" (which now
# only means a run group: runs trained fused as one model); readers map it.
ARM, OLD_ARM = "arm", "group"


def record_arm(entry: Mapping[str, Any]) -> Any:
    """The arm of a sweep record's run entry, of this version or of one from before the rename."""
    return entry[ARM] if ARM in entry else entry.get(OLD_ARM)


# -------------------------------------------------------------------------------------- run folder files

RUNS = "runs"  # <out>/runs/<run_id>/
CLAIMS = "claims"  # <out>/claims/<run_id>.json
SWEEPS = "sweeps"  # <out>/sweeps/<spec>.json
CONFIG = "config.json"
METRICS = "metrics.jsonl"
HISTORY = "history.jsonl"
CHECKPOINT = "checkpoint.pt"  # everything needed to resume; dropped when the run finishes
FINAL_MODEL = "model.npz"  # the final weights of a finished run, without inactive zeros (dstbench.weights)
LEGACY_FINAL_MODEL = "model.pt"  # the same as a dense torch state dict, in run folders of earlier versions
SUMMARY = "summary.json"
MASKS = "masks"
PROBES = "probes"
GROUP_FILE = "group.json"  # in a run folder trained by a run group: which group, and where its checkpoint is
GROUPS = "groups"  # <out>/groups/<group_id>/: a run group's checkpoint
RESULTS_TABLE = "results.parquet"
METRICS_TABLE = "metrics.parquet"

# Live trackers a run can log to while it trains (`dstbench.trackers`; RunConfig.track).
TRACKERS = ("tensorboard", "wandb", "mlflow")
TRACKERS_FILE = "trackers.json"  # in a run folder: the trackers' own ids of the run, so that a resumed run goes on

# How a training step runs (RunConfig.capture; `dstbench.train.capture`): auto replays it as a CUDA graph where the
# run can be captured (on a GPU), off runs it eagerly everywhere.
CAPTURE_MODES = ("auto", "off")

# ---------------------------------------------------------------------------------------------- status

DONE, FAILED, STARTED, PENDING, RUNNING = "done", "failed", "started", "pending", "running"


def status_of(summary: Mapping[str, Any] | None, started: bool = False) -> str:
    """A run's status from its summary (None: no readable summary) and whether its config was written.

    'done' or 'failed' once a summary exists; before that 'started' (files, no summary) or 'pending'.
    """
    if summary is None:
        return STARTED if started else PENDING
    return FAILED if summary.get("status", DONE) == FAILED else DONE


# ---------------------------------------------------------------------------------------------- schemas

# summary.json: written once, last, by the trainer (done or failed) or by a worker (failed).
SUMMARY_KEYS = (
    "status", "reason", "run_id", "config", "epochs", "steps", "final_test_acc", "final_val_acc",
    "final_train_loss", "final_val_loss", "best_val_acc", "best_val_epoch", "best_val_test_acc", "final_itop",
    "final_density", "wall_seconds", "params_total", "params_sparse", "params_active", "versions", "group", "init_skipped",
)
# The "group" entry of a summary trained in a run group (null for a solo run): the group's id and size, the
# group's wall seconds (shared by all members) and that divided by the size (a member's amortised cost, also its
# "wall_seconds").
# "init_skipped": the model's tensors an `init_partial` run did not take from its --init-from file (kept fresh).
GROUP_KEYS = ("id", "size", "shared_seconds", "amortised_seconds")
# What each summary key holds (JSON types; None: null allowed), what every summary has, and what a finished
# run's summary has on top: a summary lacking these, or holding another type, is invalid and its run unfinished.
_NUMBER, _COUNT, _TEXT, _OBJECT, _ARRAY = "number", "integer", "string", "object", "array"
SUMMARY_TYPES: dict[str, tuple[str, bool]] = {  # key -> (type, whether null is allowed)
    "status": (_TEXT, False), "reason": (_TEXT, True), "run_id": (_TEXT, False), "config": (_OBJECT, False),
    "epochs": (_COUNT, True), "steps": (_COUNT, True), "final_test_acc": (_NUMBER, True),
    "final_val_acc": (_NUMBER, True), "final_train_loss": (_NUMBER, True), "final_val_loss": (_NUMBER, True),
    "best_val_acc": (_NUMBER, True), "best_val_epoch": (_COUNT, True), "best_val_test_acc": (_NUMBER, True),
    "final_itop": (_NUMBER, True), "final_density": (_NUMBER, True), "wall_seconds": (_NUMBER, True),
    "params_total": (_COUNT, True), "params_sparse": (_COUNT, True), "params_active": (_COUNT, True),
    "versions": (_OBJECT, True), "group": (_OBJECT, True), "init_skipped": (_ARRAY, True),
}
SUMMARY_REQUIRED = ("status", "run_id", "config")
SUMMARY_REQUIRED_DONE = ("epochs", "final_test_acc")

# One row of metrics.jsonl, one per epoch.
METRICS_KEYS = (
    "epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
    "prune_fraction", "density", "itop", "seconds",
)


def summary_record(status: str, reason: str | None, run_id: str, config: Mapping[str, Any],
                   **results: Any) -> dict[str, Any]:
    """A summary.json object: the keys of SUMMARY_KEYS, those not given as None."""
    unknown = sorted(set(results) - set(SUMMARY_KEYS))
    if unknown:
        raise ValueError(f"not summary keys: {', '.join(unknown)}; valid: {', '.join(SUMMARY_KEYS)}")
    if status not in (DONE, FAILED):
        raise ValueError(f"a summary's status is {DONE!r} or {FAILED!r}, got {status!r}")
    record = dict.fromkeys(SUMMARY_KEYS)
    record.update(status=status, reason=reason, run_id=run_id, config=dict(config), **results)
    return record


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return _COUNT
    return {float: _NUMBER, str: _TEXT, dict: _OBJECT, list: _ARRAY, type(None): "null"}.get(type(value), "?")


def summary_problem(summary: Any) -> str | None:
    """Why `summary` (a parsed summary.json) is not a valid one, or None: the one check of every reader."""
    if not isinstance(summary, dict):
        return f"holds a JSON {type(summary).__name__}, not an object"
    status = summary.get("status")
    required = SUMMARY_REQUIRED + (SUMMARY_REQUIRED_DONE if status == DONE else ())
    missing = [k for k in required if summary.get(k) is None]
    if missing:
        return f"lacks {', '.join(missing)}"
    if status not in (DONE, FAILED):
        return f"status is {status!r}, not {DONE!r} or {FAILED!r}"
    for key, (want, nullable) in SUMMARY_TYPES.items():
        if key not in summary or (summary[key] is None and nullable):
            continue
        have = _json_type(summary[key])
        if have != want and not (want == _NUMBER and have == _COUNT):
            return f"{key} = {summary[key]!r:.30} is not {'an' if want[0] in 'aeiou' else 'a'} {want}"
    return None


def metrics_row(**values: Any) -> dict[str, Any]:
    """One metrics.jsonl row: exactly the keys of METRICS_KEYS, in that order."""
    if set(values) != set(METRICS_KEYS):
        raise ValueError(f"a metrics row has the keys {', '.join(METRICS_KEYS)}; got {', '.join(values)}")
    return {k: values[k] for k in METRICS_KEYS}


def metrics_row_problem(row: Any) -> str | None:
    """Why `row` (a parsed metrics.jsonl line) is not a metrics row, or None: an object whose "epoch" is a
    positive integer and whose values are numbers or null (NaN and Infinity included: a diverged run's)."""
    if not isinstance(row, dict):
        return f"holds a JSON {type(row).__name__}, not an object"
    epoch = row.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        return f"epoch is {epoch!r}, not a positive integer"
    for key, value in row.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"{key} is {value!r:.30}, not a number"
    return None


# ------------------------------------------------------------------------------------------ rule strings

RuleSpec = str | tuple[str, Mapping[str, Any]]


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


def parse_rule(spec: RuleSpec) -> tuple[str, dict[str, Any]]:
    """``"mest:lam=0.5"`` -> ``("mest", {"lam": 0.5})``; ``("mest", {"lam": 0.5})`` passes through."""
    if isinstance(spec, tuple):
        name, params = spec
        return str(name).strip(), dict(params)
    if not isinstance(spec, str):
        raise TypeError(f"a rule is a name or (name, params), got {spec!r}")
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"parameter {item!r} in {spec!r} is not of the form key=value")
        if key.strip() in params:
            raise ValueError(f"parameter {key.strip()!r} is given twice in {spec!r}")
        params[key.strip()] = _parse_value(value)
    return name.strip(), params


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def format_rule(name: str, params: Mapping[str, Any]) -> str:
    """The canonical text of a rule: its name, then its parameters sorted by name (``"linear:every=600,..."``)."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={_format_value(params[k])}" for k in sorted(params))


# ------------------------------------------------------------------------------------------ report kinds

REPORT_KINDS = (
    "accuracy_vs_density", "critical_difference", "loss_gap", "update_period", "itop", "first_update_jaccard",
    "end_mask_jaccard", "jaccard_over_time", "retained_by_all", "mest_lambda", "sensitivity_vs_reciprocal",
    "global_vs_local", "learning_curves", "schedules", "batch_size", "paired_difference", "criteria_table",
)
# The options a spec's [report] table may set, section-wide or in a table named after a kind
# (``[report.critical_difference]``); anything else is rejected at spec load, since nothing would read it.
# "paper" names the paper's figures or tables a spec reproduces: said at the top of its section, and it orders the
# sections as the paper does.
REPORT_OPTIONS = ("metric", "baselines", "alpha", "density_splits", "curves", "curve_density", "probe_step",
                  "fraction", "field", "paper")


# ------------------------------------------------------------------------------------------ display names

# What figures and tables call a criterion registered with a display name (``register_criterion(name,
# label="...")``, e.g. in a plugin, which every process loads); the built-in criteria's names are in
# dstbench.report.style. Written by registration, read by the report.
CRITERION_DISPLAY_NAMES: dict[str, str] = {}
