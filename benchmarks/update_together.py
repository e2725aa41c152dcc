"""One topology update step of a run group's K members: together (`dstbench.sparsity.together.update_together`:
one selection per layer over all members) against one by one (each member's own `DST._update`, as before).

Per model (the paper's small MLP on Higgs, the small CNN on CIFAR-10, synthetic data of their shapes) and mix of
rules, a K-member group is built by the trainer (engines over views of the fused weights, as in training), takes
one training step (its gradients are what the updates read), and then updates again and again: each round times
one update step one by one and one together, side by side, in alternating order; the ratio is the median over
rounds of the paired ratios (the machine is shared and noisy; only the paired ratio is meant to be compared).
Each side includes the masking of weights and optimizer state that follows an update. Members: density 0.1,
seed k, prune/grow from the mix (member k takes entry k % len(mix)).

Also counted, once per side: the tensor-to-Python conversions (tolist, item, bool, int, float) and `nonzero` calls
of one update step: on a GPU each is a host sync where its tensor is on the device (boolean-mask indexing, also a
sync there, is not counted). On a CPU every tensor is a host tensor, so the together side's count includes the
conversions of uniform growth's `choose_uniform`, which there runs on host copies (one copy to the host per layer
on a GPU, no sync per choice): with random growth the together count overstates a GPU's syncs.

    python benchmarks/update_together.py [--ks 8,32,64] [--rounds 7] [--models small_mlp,small_cnn]
                                         [--device cpu] [--out FILE.json]

Writes FILE.json (default benchmarks/results/update_together.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from bench_common import config_for, environment, setup_for, sync, synthetic

from dstbench import store
from dstbench.sparsity.together import update_together
from dstbench.train.trainer import Trainer

HERE = Path(__file__).resolve().parent
MODELS = {"small_mlp": "higgs", "small_cnn": "cifar10"}
MIXES = {
    "magnitude/random": [("magnitude", "random")],
    "magnitude/gradient": [("magnitude", "gradient")],
    "mixed": [("magnitude", "random"), ("set", "gradient"), ("snip", "random"), ("mest", "gradient"),
              ("sensitivity", "random"), ("reciprocal_sensitivity", "gradient"), ("random", "momentum")],
}
FRACTION = 0.5


def group(model: str, k: int, mix: str, device: str, folder: Path) -> Trainer:
    setup = setup_for(model, MODELS[model])
    data = synthetic(setup, torch.device(device), train_samples=4096)
    configs = [config_for(setup, device, density=0.1, prune=prune, grow=grow, update_period=800, seed=i)
               for i in range(k) for prune, grow in [MIXES[mix][i % len(MIXES[mix])]]]
    trainer = Trainer(configs, [store.RunDir(folder / f"m{i}") for i in range(k)], folder / "checkpoint.pt",
                      group_dir=folder, data=data)
    trainer.train_step([next(iter(m.batches)) for m in trainer.members])
    for member in trainer.members:  # the engines read their shares of the gradients, as at an update
        trainer.shares.expose(member)
    return trainer


def one_by_one(engines: list[Any], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    for dst in engines:
        dst._update(FRACTION)
        dst.apply_masks()
    sync(device)
    return time.perf_counter() - start


def together(engines: list[Any], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    assert update_together(engines, [FRACTION] * len(engines)) == [None] * len(engines)
    for dst in engines:
        dst.apply_masks()
    sync(device)
    return time.perf_counter() - start


@contextmanager
def counting(counts: list[int]):
    """Count the calls of the Tensor methods that move a value to the host (each a sync on a GPU)."""
    names = ("tolist", "item", "__bool__", "__int__", "__float__", "nonzero")
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def wrap(original):
        def counted(self, *args, **kwargs):
            counts[0] += 1
            return original(self, *args, **kwargs)
        return counted

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def syncs(fn: Any, engines: list[Any], device: torch.device) -> int:
    counts = [0]
    with counting(counts):
        fn(engines, device)
    return counts[0]


def measure(model: str, k: int, mix: str, device: str, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = group(model, k, mix, device, Path(tmp))
        engines = [m.dst for m in trainer.members]
        dev = trainer.device
        one_by_one(engines, dev)  # warm-up of both sides
        together(engines, dev)
        pairs = []
        for r in range(rounds):
            if r % 2:
                t_one, t_all = one_by_one(engines, dev), together(engines, dev)
            else:
                t_all, t_one = together(engines, dev), one_by_one(engines, dev)
            pairs.append((t_one, t_all))
        return dict(model=model, k=k, mix=mix, rounds=rounds,
                    one_by_one_ms=1e3 * statistics.median(p[0] for p in pairs),
                    together_ms=1e3 * statistics.median(p[1] for p in pairs),
                    paired_speedup=statistics.median(p[0] / p[1] for p in pairs),
                    host_syncs_one_by_one=syncs(one_by_one, engines, dev),
                    host_syncs_together=syncs(together, engines, dev))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default="8,32,64")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--mixes", default=",".join(MIXES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "update_together.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print(f"{'model':10} {'K':>3} {'mix':18} {'one by one ms':>13} {'together ms':>11} {'paired x':>8} "
          f"{'syncs 1by1':>10} {'syncs tog':>9}")
    for model in args.models.split(","):
        for mix in args.mixes.split(","):
            for k in (int(k) for k in args.ks.split(",")):
                row = measure(model, k, mix, args.device, args.rounds)
                rows.append(row)
                print(f"{model:10} {k:3} {mix:18} {row['one_by_one_ms']:13.1f} {row['together_ms']:11.1f} "
                      f"{row['paired_speedup']:8.2f} {row['host_syncs_one_by_one']:10} {row['host_syncs_together']:9}",
                      flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(environment=environment(torch.device(args.device)), rows=rows), indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
