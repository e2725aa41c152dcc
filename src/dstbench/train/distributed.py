"""DistributedDataParallel through torchrun: one process per device, rank 0 writes the run folder."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from dstbench.config import RunConfig
from dstbench.errors import UserError


@dataclass
class Distributed:
    enabled: bool
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls, config: RunConfig) -> Distributed:
        """Join the process group torchrun describes in the environment (WORLD_SIZE > 1), else run alone."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(enabled=False)
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and config.device in ("auto", "cuda")
        if use_cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")
        if config.batch_size % world:
            raise UserError(f"batch_size {config.batch_size} must be divisible by the {world} processes")
        device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
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
