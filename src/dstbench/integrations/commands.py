"""`dstbench export RUN_DIR --out FILE`: a finished run's model as a sparse file, and its per-layer table."""

from __future__ import annotations

import argparse
import io
from pathlib import Path


def _export(args: argparse.Namespace) -> int:
    import torch

    from dstbench.integrations.export import export_run, format_table
    from dstbench.weights import read_weights

    rows = export_run(args.run_dir, args.out)
    print(format_table(rows))
    dense = io.BytesIO()
    torch.save(read_weights(args.out), dense)
    print(f"wrote {args.out}: {Path(args.out).stat().st_size:,} bytes (as a dense torch state dict: "
          f"{dense.getbuffer().nbytes:,}); dstbench.weights.read_weights reads it back exactly")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="write a finished run's model as a sparse file, with a per-layer table",
                            description="Write a finished run's final weights, its masks folded in, as values plus "
                                        "bit-packed masks (dstbench.weights; read back exactly with "
                                        "dstbench.weights.read_weights), and print each layer's shape, density, "
                                        "non-zeros and forward FLOPs per sample, dense and sparse.")
    parser.add_argument("run_dir", type=Path, help="a finished run's folder (OUT/runs/<run_id> of a sweep)")
    parser.add_argument("--out", required=True, type=Path, help="the file to write (.npz)")
    parser.set_defaults(func=_export)
