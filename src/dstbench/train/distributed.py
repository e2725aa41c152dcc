"""DistributedDataParallel through torchrun: one process per device, rank 0 writes the run folder.

The backend is NCCL on GPUs and gloo on CPUs; `DSTBENCH_DIST_BACKEND` overrides it (gloo on GPUs, say, when
more ranks than GPUs share a machine: rank r uses GPU r mod the GPUs present, which NCCL refuses to share).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from dstbench.config import RunConfig
from dstbench.errors import UserError

BACKEND_VARIABLE = "DSTBENCH_DIST_BACKEND"


def is_launch_main() -> bool:
    """Whether this process is rank 0 of its launcher (or launched alone): the one that writes and reports."""
    return os.environ.get("RANK", "0") == "0"


@dataclass
class Distributed:
    enabled: bool
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls, config: RunConfig) -> Distributed:
        """Join the process group torchrun describes in the environment, else run alone.

        Under torchrun even one process trains through DistributedDataParallel (a single-GPU check of the
        multi-GPU path); elsewhere WORLD_SIZE > 1 alone says a launcher set the process group up.
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
            return cls(enabled=False)
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and config.device in ("auto", "cuda")
        device = torch.device("cuda", local % torch.cuda.device_count()) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            backend = os.environ.get(BACKEND_VARIABLE) or ("nccl" if use_cuda else "gloo")
            if backend not in ("nccl", "gloo"):
                raise UserError(f"{BACKEND_VARIABLE}={backend!r}: choose nccl or gloo")
            dist.init_process_group(backend)
        if config.batch_size % world:
            raise UserError(f"batch_size {config.batch_size} must be divisible by the {world} processes")
        return cls(enabled=True, rank=rank, world_size=world, device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.enabled:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch (every rank draws the same global batch from the same seed)."""
        return batch[self.rank :: self.world_size] if self.enabled else batch

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
