"""Run by test_lightning.py as `python lightning_ddp.py OUT`: a DST fit under strategy="ddp" on two CPU processes
(gloo). Lightning starts the second process by running this script again; each rank saves its model and masks."""

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).parent))
from lightning_helpers import OPTIONS, QUIET, Exactness, Module, data  # noqa: E402

from dstbench.integrations.lightning import DSTCallback  # noqa: E402


class Ranked(Module):
    def train_dataloader(self):
        loader = data(batch_size=4, dtype=torch.float64)
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=self.trainer.global_rank, shuffle=False)
        return DataLoader(loader.dataset, batch_size=4, sampler=sampler)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    callback = DSTCallback(**OPTIONS)
    exact = Exactness(callback)
    module = Ranked(torch.float64)
    # Lightning shuffles a training set it shards itself; sharded in order, the ranks' batches of 4 together are
    # the single process's batch of 8
    trainer = pl.Trainer(callbacks=[callback, exact], strategy="ddp", devices=2, max_epochs=2,
                         use_distributed_sampler=False, **QUIET)
    trainer.fit(module)
    torch.save({"state": module.state_dict(), "masks": callback.dst.masks, "history": callback.dst.history,
                "checked": exact.checked, "total_steps": callback.dst.config.total_steps},
               out / f"rank{trainer.global_rank}.pt")
