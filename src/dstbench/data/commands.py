"""`dstbench data ...`: fetch the paper's data sets and describe them."""

from __future__ import annotations

import argparse

from dstbench.data.download import MIRROR_ENV, download
from dstbench.data.registry import info, list_datasets


def _download(args: argparse.Namespace) -> int:
    from dstbench.errors import UserError

    try:
        paths = download(args.name, args.root, mirror=args.mirror, timeout=args.timeout)
    except OSError as exc:  # network failures and incomplete transfers: a message, not a traceback
        raise UserError(str(exc)) from exc
    for path in paths:
        print(f"ready: {path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    for name in [args.name] if args.name else list_datasets():
        d = info(name)
        shape = "x".join(map(str, d.input_shape))
        train, val, test = d.split_sizes
        print(f"{d.name:14} {d.task:10} {d.num_classes:5} classes  input {shape:9} "
              f"train/val/test {train:,}/{val:,}/{test:,}  [{d.download}] {d.notes}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data download` and `data info`."""
    parser = subparsers.add_parser("data", help="download and describe data sets")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    fetch = sub.add_parser("download", help="fetch a data set from its official source, checksums verified")
    fetch.add_argument("name", help=f"one of: {', '.join(list_datasets())}")
    fetch.add_argument("--root", required=True, help="data root folder (what `load(..., root=)` gets)")
    fetch.add_argument("--mirror", default=None,
                       help=f"base URL serving the official paths (default: ${MIRROR_ENV}, "
                            "else the official hosts)")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    fetch.set_defaults(func=_download)

    describe = sub.add_parser("info", help="shape, classes and split sizes of one or all data sets")
    describe.add_argument("name", nargs="?", default=None)
    describe.set_defaults(func=_info)
