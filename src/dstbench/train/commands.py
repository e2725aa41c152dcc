"""`dstbench train ...`: one run from flags (every RunConfig field is a flag) or a TOML file of them."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from dstbench import store
from dstbench.config import RunConfig
from dstbench.errors import UserError


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _scalar_type(annotation: Any) -> Any:
    """The Python type a flag's text converts to (the non-None member of an Optional)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _scalar_type(args[0])
    if typing.get_origin(annotation) is typing.Literal:
        return str
    return annotation


def _sequence_item(annotation: Any) -> Any | None:
    scalar = _scalar_type(annotation)
    if typing.get_origin(scalar) is tuple:
        return typing.get_args(scalar)[0]
    return None


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field: --density 0.1, --global-pruning/--no-global-pruning, --probe-steps 10,20."""
    for name, field in RunConfig.model_fields.items():
        item = _sequence_item(field.annotation)
        scalar = _scalar_type(field.annotation)
        help_text = field.description or (f"(default: {field.default!r})" if not field.is_required() else "(required)")
        if scalar is bool:
            parser.add_argument(_flag(name), action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif item is not None:
            parser.add_argument(_flag(name), default=None, metavar="A,B,...",
                                type=lambda text, t=item: tuple(t(v) for v in text.split(",") if v.strip()),
                                help=f"comma-separated {help_text}")
        else:
            parser.add_argument(_flag(name), default=None, type=scalar if scalar in (int, float) else str,
                                help=help_text)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(read_config_file(Path(args.config)))
    values.update({k: v for k, v in vars(args).items() if k in RunConfig.model_fields and v is not None})
    missing = [k for k in ("model", "dataset") if k not in values]
    if missing:
        raise UserError(f"missing {', '.join(_flag(k) for k in missing)}; see `dstbench list models|datasets`")
    return RunConfig.model_validate(values)


def read_config_file(path: Path) -> dict[str, Any]:
    """The RunConfig keys of a TOML file, or of a run's config.json ("rerun this run": same keys, as JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config file {path}: {exc}") from exc
    if text.lstrip().startswith("{"):  # JSON: a run's config.json (TOML never starts with a brace)
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise UserError(f"config file {path} is not valid JSON ({exc}); give a TOML file of RunConfig keys "
                            "or a run's config.json") from None
        if not isinstance(values, dict):
            raise UserError(f"config file {path} holds a JSON {type(values).__name__}, not an object of RunConfig "
                            "keys")
        return values
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML ({exc}); give a TOML file of RunConfig keys "
                        "(key = value lines) or a run's config.json") from None


def _print_plan(config: RunConfig) -> None:
    """Where the data is, what will run, what it costs, and a warning for a run whose topology never changes.
    A missing data set fails here, before the run folder is written."""
    from dstbench.estimate import no_update_warning, plan_lines

    for line in plan_lines(config):
        print(line)
    warning = no_update_warning(config)
    if warning:
        print(f"dstbench train: warning: {warning}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from dstbench.train.distributed import is_launch_main
    from dstbench.train.loop import run
    from dstbench.train.recipes import resolve_config
    from dstbench.train.setup import pick_device

    config = resolve_config(config_from_args(args))
    pick_device(config.device)  # this machine has the device asked for (a sweep's workers check their own)
    out = Path(args.out) if args.out else Path("runs") / config.run_id()
    if is_launch_main() and (args.retry_failed or not (out / store.SUMMARY).exists()):
        _print_plan(config)
    summary = run(config, out, retry_failed=args.retry_failed)
    if not is_launch_main():  # under torchrun only rank 0 reports
        return 0 if summary["status"] == "done" else 1
    status = summary["status"]
    if status != "done":
        print(f"run {summary['run_id']} failed: {summary['reason']}"
              f"{'' if args.retry_failed else ' (train it again with --retry-failed)'}", file=sys.stderr)
        return 1
    best = summary.get("best_val_test_acc")
    print(f"run {summary['run_id']} done in {out}: test accuracy {summary['final_test_acc']:.4f} "
          f"(at best validation epoch {summary['best_val_epoch']}: {best if best is None else round(best, 4)})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train one run (dense, static sparse or DST) into a run folder",
                            description="Train one run. Recipe fields left out take the paper's defaults.")
    parser.add_argument("--out", help="the run folder (default: runs/<run_id>); rerunning resumes it")
    parser.add_argument("--config", help="a TOML file of RunConfig keys, or a run's config.json (to train that run "
                                         "again, e.g. into another --out); flags override it")
    parser.add_argument("--retry-failed", action="store_true",
                        help="train a failed run again (from its last checkpoint) instead of reporting its failure")
    add_config_arguments(parser)
    parser.set_defaults(func=_run)
