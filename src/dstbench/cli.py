"""`dstbench ...`: a thin dispatcher. Each layer owns its subcommands in a `commands` module with
`register(subparsers)`; the handlers parse nothing themselves and print only what the user asked for.

Errors: a `UserError` (bad input, a folder in use, damaged records) or an invalid configuration is printed as one
line with exit code 2; an OS error (disk full, read-only folder, a file where a folder should be) as one line
naming the path, the cause and what to do, exit code 2. Anything else is a bug: its traceback is printed.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import traceback

from pydantic import ValidationError

from dstbench.config import validation_message
from dstbench.errors import UserError
from dstbench.plugins import load_plugins

# Each module defines `register(subparsers: argparse._SubParsersAction) -> None` and sets `func` on its parsers.
COMMAND_MODULES = [
    "dstbench.data.commands",
    "dstbench.experiments.commands",
    "dstbench.integrations.commands",
    "dstbench.listing",
    "dstbench.report.commands",
    "dstbench.study",
    "dstbench.train.commands",
]

_OS_FIXES = {
    errno.ENOSPC: "free some space and rerun: finished results are kept and unfinished runs resume",
    errno.EDQUOT: "free some of your quota and rerun: finished results are kept and unfinished runs resume",
    errno.EROFS: "the file system is read-only: choose another output folder",
    errno.EACCES: "you may not write there: choose another output folder or fix its permissions",
    errno.EPERM: "you may not write there: choose another output folder or fix its permissions",
    errno.ENOTDIR: "a path on the way is a file, not a folder: choose another output folder",
    errno.EEXIST: "a file is in the way: choose another output folder",
    errno.EISDIR: "a folder is where a file should be: choose another path",
}


def os_error_message(exc: OSError) -> str:
    """One line: the path, the cause and what to do."""
    if exc.strerror is None:  # raised with a full message of its own (a missing spec, data set, folder)
        return str(exc)
    path = exc.filename if exc.filename is not None else "(no path)"
    fix = _OS_FIXES.get(exc.errno, "check the path and rerun")
    return f"{path}: {exc.strerror}; {fix}"


class _StderrHandler(logging.Handler):
    """Warnings of dstbench's modules (a damaged run left out, a failed run's traceback) on stderr, as lines."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"dstbench: {record.levelname.lower()}: {self.format(record)}", file=sys.stderr)


def _show_warnings() -> None:
    logger = logging.getLogger("dstbench")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler(logging.WARNING))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dstbench",
        description="Dynamic sparse training and the benchmark for its pruning and growth criteria.",
    )
    parser.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import MODULE first (and in every worker): where your own criteria, growth rules or models are "
             "registered; also read from $DSTBENCH_PLUGINS",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _show_warnings()
    try:
        load_plugins(args.plugin)
        result = args.func(args)
    except (UserError, ValidationError, OSError) as exc:
        if isinstance(exc, ValidationError):
            message = validation_message(exc)
        elif isinstance(exc, OSError):
            message = os_error_message(exc)
        else:
            message = str(exc)
        print(f"dstbench {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dstbench {args.command}: interrupted; finished results are kept, rerun to resume", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"dstbench {args.command}: this is a bug in dstbench, not in your input; please report it with the "
              "traceback above", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
