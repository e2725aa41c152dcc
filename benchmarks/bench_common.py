"""What the benchmarks share: the paper's model / data set-ups, synthetic data of their real shapes, trainers
timed through their own training step, and the machine description stored with every result.

Imported by the scripts in this folder (run as ``python benchmarks/<script>.py``, which puts this folder on
``sys.path``).
"""

from __future__ import annotations

import itertools
import platform
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

import dstbench
from dstbench import store
from dstbench.config import RunConfig
from dstbench.data import ArraySplit, Augmentation, DataSplits
from dstbench.train import resolve_config
from dstbench.train.trainer import Trainer

CIFAR_AUG = Augmentation(crop_padding=4, hflip=True, padding_mode="reflect")  # the paper recipe's preprocessing


@dataclass(frozen=True)
class Setup:
    """A paper model on its data set: sample shape, training samples, classes (1 = one logit), preprocessing."""

    model: str
    dataset: str
    shape: tuple[int, ...]
    train: int
    classes: int
    augmentation: Augmentation | None = None
    max_steps: int | None = None  # timed steps of the "epoch" (None: a whole epoch)
    amp_check: bool = False


SETUPS = [
    Setup("small_mlp", "higgs", (24,), 658_112, 1),
    Setup("lenet5_caffe", "fashionmnist", (1, 28, 28), 54_000, 10),
    Setup("large_mlp", "cifar10", (3, 32, 32), 45_000, 10, CIFAR_AUG),
    Setup("small_cnn", "cifar10", (3, 32, 32), 45_000, 10, CIFAR_AUG),
    Setup("resnet56", "cifar10", (3, 32, 32), 45_000, 10, CIFAR_AUG, amp_check=True),
    Setup("resnet56", "cifar100", (3, 32, 32), 45_000, 100, CIFAR_AUG),
    Setup("vgg16_bn", "cifar100", (3, 32, 32), 45_000, 100, CIFAR_AUG, amp_check=True),
    Setup("efficientnet_b0", "tinyimagenet", (3, 64, 64), 90_000, 200, Augmentation(hflip=True)),
    Setup("resnet50", "imagenet", (3, 224, 224), 256 * 25, 1000, Augmentation(hflip=True), max_steps=200),
]


def setup_for(model: str, dataset: str) -> Setup:
    """The set-up of `model` on `dataset` from `SETUPS`."""
    for setup in SETUPS:
        if (setup.model, setup.dataset) == (model, dataset):
            return setup
    raise KeyError(f"no set-up for {model} on {dataset}")


# ----------------------------------------------------------------------------------------------- timing

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def endless(batches: Any) -> Iterator[Any]:
    """A batch stream's batches, epoch after epoch."""
    return itertools.chain.from_iterable(iter(batches) for _ in itertools.count())


class Timed:
    """A solo trainer, its endless batch stream, and timers for its steps."""

    def __init__(self, config: RunConfig, data: DataSplits, folder: Path) -> None:
        self.trainer = Trainer([config], [store.RunDir(folder)], folder / store.CHECKPOINT, data=data)
        self.device = self.trainer.device
        self.stream = endless(self.trainer.members[0].batches)  # the batcher alone (`batches`)
        # `fit` plans the members' events (updates, probes, snapshots); `train_step` alone does not, and without
        # this plan the timed steps would never update a topology
        self.trainer._schedule()

    def steps(self, n: int) -> float:
        """Seconds for `n` training steps, batches included (the trainer's own: a step given no batches forms
        them itself, and may be captured)."""
        sync(self.device)
        start = time.perf_counter()
        for _ in range(n):
            self.trainer.train_step()
        sync(self.device)
        return time.perf_counter() - start

    def batches(self, n: int) -> float:
        """Seconds for making `n` batches alone (the input pipeline)."""
        sync(self.device)
        start = time.perf_counter()
        for _ in range(n):
            next(self.stream)
        sync(self.device)
        return time.perf_counter() - start

    def update(self) -> float:
        """Seconds of one topology update (selection, prune, grow, masking), after a step left a gradient."""
        self.steps(1)
        dst = self.trainer.members[0].dst
        sync(self.device)
        start = time.perf_counter()
        dst._update(dst.prune_fraction() or 0.5)
        dst.apply_masks()
        sync(self.device)
        return time.perf_counter() - start


class Stepper(Protocol):
    """What the timers below time: `Timed`, or a run group's timer (`run_groups.TimedGroup`)."""

    def steps(self, n: int) -> float: ...


def interleaved_ratio(a: Stepper, b: Stepper, steps: int, rounds: int) -> tuple[float, float, float]:
    """Median over rounds of time(b chunk) / time(a chunk), each b chunk right after an a chunk; also the
    median seconds per step of each."""
    ratios, ta, tb = [], [], []
    for _ in range(rounds):
        sa, sb = a.steps(steps), b.steps(steps)
        ratios.append(sb / sa)
        ta.append(sa / steps)
        tb.append(sb / steps)
    return statistics.median(ratios), statistics.median(ta), statistics.median(tb)


def gpu_busy_share(timed: Stepper, steps: int, step_seconds: float, tag: str) -> float | None:
    """The share of a step's wall time in which the GPU runs kernels (from the profiler's kernel times over
    `steps` steps; the steps themselves are timed without the profiler). None, said under `tag`, where the
    profiler failed or saw no kernel (a replayed CUDA graph whose kernels it does not trace)."""
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            timed.steps(steps)
        kernel_us = sum(e.device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA")
    except Exception as exc:  # a profiler that cannot attach costs this one number, not the model's row
        print(f"[{tag}] profiler failed ({type(exc).__name__}: {exc}); GPU busy share not measured", flush=True)
        return None
    if kernel_us <= 0:
        print(f"[{tag}] the profiler saw no kernel; GPU busy share not measured", flush=True)
        return None
    return min(1.0, kernel_us / 1e6 / steps / step_seconds)


# ------------------------------------------------------------------------------------------------- data

def synthetic(setup: Setup, device: torch.device, train_samples: int | None = None) -> DataSplits:
    """Random data of the set's shapes on the device: uint8 images with the set's augmentation, or features;
    `train_samples` training samples (default: the set's real number)."""
    gen = torch.Generator(device=device).manual_seed(0)
    n = train_samples or setup.train

    def split(count: int) -> ArraySplit:
        if len(setup.shape) == 1:
            x = torch.randn((count, *setup.shape), generator=gen, device=device)
        else:
            x = torch.randint(0, 256, (count, *setup.shape), generator=gen, device=device, dtype=torch.uint8)
        y = torch.randint(0, max(setup.classes, 2), (count,), generator=gen, device=device)
        return ArraySplit(x, y)

    images = len(setup.shape) == 3  # normalised per channel; tables stay unscaled, as Higgs is in the paper
    return DataSplits(
        name=setup.dataset, task="binary" if setup.classes == 1 else "multiclass",
        num_classes=max(setup.classes, 2), input_shape=setup.shape, train=split(n), val=split(64),
        test=split(64), mean=(0.5,) * setup.shape[0] if images else None,
        std=(0.25,) * setup.shape[0] if images else None, pixel_scale=255.0 if images else 1.0,
        augmentation=setup.augmentation,
    )


def config_for(setup: Setup, device: str, batch_size: int | None = None, **changes: Any) -> RunConfig:
    """The resolved config of `setup` on `device` (the paper's recipe; `batch_size` overrides its batch)."""
    fields = dict(model=setup.model, dataset=setup.dataset, device=device, progress=False, seed=0)
    if batch_size:
        fields["batch_size"] = batch_size
    return resolve_config(RunConfig(**{**fields, **changes}))


def gib(nbytes: float) -> float:
    return nbytes / 2**30


# ----------------------------------------------------------------------------------------------- report

def environment(device: torch.device) -> dict[str, Any]:
    env = dict(python=platform.python_version(), torch=torch.__version__, dstbench=dstbench.__version__,
               machine=platform.machine(), device=str(device), cpu_threads=torch.get_num_threads())
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=gib(props.total_memory), capability=f"{props.major}.{props.minor}",
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), gpus=torch.cuda.device_count())
    return env
