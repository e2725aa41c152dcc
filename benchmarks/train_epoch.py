"""Seconds per epoch of the paper's set-ups on real data, dense and DST at density 0.1, through `dstbench.train`.

lenet5_caffe on FashionMNIST (Debian's dataset-fashion-mnist) and large_mlp on CIFAR-10 (the copy in
../shared/data, or --cifar-root). Each run trains `--epochs` epochs; the table shows the median epoch time after
the first (which pays one-off costs), training and evaluation of val and test included. Writes JSON.

    python benchmarks/train_epoch.py [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dstbench import store
from dstbench.config import RunConfig
from dstbench.train import resolve_config
from dstbench.train.loop import run

HERE = Path(__file__).resolve().parent
DEFAULT_CIFAR = HERE.parent.parent / "shared" / "data" / "cifar10-jpeg-q75"

SETUPS = [
    ("lenet5_caffe", "fashionmnist", None),
    ("large_mlp", "cifar10", "cifar"),
]
MODES = {"dense": dict(density=1.0), "dst-0.1": dict(density=0.1, prune="magnitude", grow="random")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cifar-root", default=str(DEFAULT_CIFAR))
    parser.add_argument("--fashion-root", default=None, help="default: the Debian package's folder")
    parser.add_argument("--out", default=str(HERE / "results" / "train_epoch.json"))
    args = parser.parse_args()
    roots = {"cifar": args.cifar_root, None: args.fashion_root}

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, dataset, root_key in SETUPS:
            for mode, sparsity in MODES.items():
                config = resolve_config(RunConfig(
                    model=model, dataset=dataset, data_root=roots[root_key], epochs=args.epochs, seed=0,
                    num_threads=args.threads, progress=False, **sparsity,
                ))
                start = time.perf_counter()
                summary = run(config, Path(tmp) / f"{model}-{mode}")
                total = time.perf_counter() - start
                seconds = [r["seconds"] for r in store.RunDir(Path(tmp) / f"{model}-{mode}").metrics()]
                rows.append(dict(model=model, dataset=dataset, mode=mode, epochs=args.epochs,
                                 epoch_seconds=seconds, median_epoch_s=statistics.median(seconds[1:] or seconds),
                                 first_epoch_s=seconds[0], total_s=total, test_acc=summary["final_test_acc"]))
                r = rows[-1]
                print(f"{model:<14} {dataset:<13} {mode:<8} epoch {r['median_epoch_s']:6.2f} s "
                      f"(first {r['first_epoch_s']:.2f} s)  test acc {r['test_acc']:.4f}", flush=True)
    result = dict(benchmark="train_epoch", torch=torch.__version__, threads=args.threads,
                  machine=platform.machine(), rows=rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
