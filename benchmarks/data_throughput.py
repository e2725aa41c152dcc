"""Samples per second of the in-memory batcher against a plain torch DataLoader, on the same tensors.

Both sides deliver shuffled, normalised float32 batches of 128 with a random crop (4-pixel zero padding) and a
horizontal flip. The batcher (`dstbench.data.Batches`) gathers a batch by index and augments it as one tensor
operation; the baseline is what a straightforward PyTorch script does: a Dataset that crops, flips and
normalises one sample at a time, the default collate, num_workers=0. Shapes are CIFAR's (50,000 x 3x32x32 uint8)
and FashionMNIST's (60,000 x 1x28x28 uint8), random pixels. Rounds alternate the two sides so that machine noise
hits both alike; each round times one full epoch of the batcher and `--baseline-batches` batches of the
baseline (its rate is steady after a few batches). Prints a table and writes JSON.

    python benchmarks/data_throughput.py [--rounds 3] [--threads 1] [--device cpu] [--baseline-batches 100]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from dstbench.data import Augmentation, Batches

SHAPES = {"cifar10-sized": (50_000, 3, 32, 32), "fashionmnist-sized": (60_000, 1, 28, 28)}
BATCH, PADDING = 128, 4


class PerSampleCropFlip(Dataset):
    """The usual per-sample pipeline, on tensors: pad, random crop, random flip, to float, normalise."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.x, self.y, self.mean, self.std = x, y, mean.view(-1, 1, 1), std.view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = F.pad(self.x[i], (PADDING,) * 4)
        h, w = self.x.shape[-2:]
        top, left = torch.randint(0, 2 * PADDING + 1, (2,)).tolist()
        image = image[:, top:top + h, left:left + w]
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        return (image.float() / 255 - self.mean) / self.std, self.y[i]


def time_batcher(x, y, mean, std, device, epoch: int) -> tuple[float, int]:
    batches = Batches(x, y, BATCH, seed=epoch, mean=mean.tolist(), std=std.tolist(), pixel_scale=255.0,
                      augmentation=Augmentation(crop_padding=PADDING, hflip=True), device=device)
    _sync(device)
    start = time.perf_counter()
    samples = 0
    for xb, _ in batches:
        samples += len(xb)
    _sync(device)
    return time.perf_counter() - start, samples


def time_baseline(x, y, mean, std, device, batches: int) -> tuple[float, int]:
    loader = DataLoader(PerSampleCropFlip(x, y, mean, std), batch_size=BATCH, shuffle=True, num_workers=0)
    stream = iter(loader)
    for _ in range(3):  # warm-up
        next(stream)
    _sync(device)
    start = time.perf_counter()
    samples = 0
    for _, (xb, yb) in zip(range(batches), stream, strict=False):
        xb, yb = xb.to(device), yb.to(device)
        samples += len(xb)
    _sync(device)
    return time.perf_counter() - start, samples


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, shape: tuple[int, ...], args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (shape[0],), generator=g)
    mean, std = torch.full((shape[1],), 0.5), torch.full((shape[1],), 0.25)
    time_batcher(x, y, mean, std, device, epoch=-1)  # warm-up (and the copy to the device)
    ours, theirs = [], []
    for r in range(args.rounds):
        seconds, samples = time_batcher(x, y, mean, std, device, epoch=r)
        ours.append(samples / seconds)
        seconds, samples = time_baseline(x, y, mean, std, device, args.baseline_batches)
        theirs.append(samples / seconds)
    batcher, baseline = statistics.median(ours), statistics.median(theirs)
    return {"data": name, "shape": list(shape), "batcher_samples_per_s": batcher,
            "dataloader_samples_per_s": baseline, "speedup": batcher / baseline,
            "batcher_rounds": ours, "dataloader_rounds": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads for both sides (default 1: fair on a shared machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline-batches", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(name, shape, args) for name, shape in SHAPES.items()]
    print(f"{'data':20} {'batcher samples/s':>18} {'DataLoader samples/s':>21} {'speedup':>8}")
    for row in rows:
        print(f"{row['data']:20} {row['batcher_samples_per_s']:18,.0f} {row['dataloader_samples_per_s']:21,.0f} "
              f"{row['speedup']:7.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "data_throughput", "batch_size": BATCH, "augmentation": f"crop {PADDING} + flip",
        "device": args.device, "threads": args.threads, "rounds": args.rounds,
        "baseline_batches": args.baseline_batches, "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
