"""`dstbench ...`: a thin dispatcher. Each layer owns its subcommands in a `commands` module with
`register(subparsers)`; the handlers parse nothing themselves and print only what the user asked for."""

from __future__ import annotations

import argparse
import importlib
import sys

from dstbench.plugins import load_plugins

# Each module defines `register(subparsers: argparse._SubParsersAction) -> None` and sets `func` on its parsers.
COMMAND_MODULES = [
    "dstbench.data.commands",
    "dstbench.experiments.commands",
    "dstbench.listing",
    "dstbench.report.commands",
    "dstbench.study",
    "dstbench.train.commands",
]


class UserError(Exception):
    """A problem with the user's input: printed as one clear message, exit code 2, no traceback."""


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
    try:
        load_plugins(args.plugin)
        result = args.func(args)
    except (UserError, ValueError, KeyError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"dstbench {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dstbench {args.command}: interrupted; finished results are kept, rerun to resume", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
