"""A small LightningModule, its data, and the checks the engine's exactness tests make, for the Lightning tests
(imported by the DDP script too, so no pytest here)."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

OPTIONS = dict(density=0.2, prune="magnitude", grow="gradient", update_period=4)
QUIET = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
             enable_checkpointing=False)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 3))


def data(n: int = 96, batch_size: int = 8, dtype: torch.dtype = torch.float32) -> DataLoader:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 12, generator=g, dtype=dtype)
    y = (x[:, :3].argmax(1) + (x[:, 3] > 1).long()) % 3
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


class Module(pl.LightningModule):
    def __init__(self, dtype: torch.dtype = torch.float32, lr: float = 0.05):
        super().__init__()
        self.net = net().to(dtype)
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, weight_decay=1e-3)


class Exactness(pl.Callback):
    """After every optimizer step: exact layer counts, zero inactive weights and momentum; records the steps."""

    def __init__(self, dst_callback):
        self.dst_callback = dst_callback
        self.checked = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        dst = self.dst_callback.dst
        if self.checked == 0:
            self.counts = {n: int(m.sum()) for n, m in dst.masks.items()}
        opt = trainer.optimizers[0]
        params = dict(pl_module.named_parameters())
        for name, mask in dst.masks.items():
            assert int(mask.sum()) == self.counts[name]
            assert not params[name][~mask].any()
            momentum = opt.state.get(params[name], {}).get("momentum_buffer")
            assert momentum is None or not momentum[~mask].any()
        self.checked += 1


def plain_loop(loader: DataLoader, epochs: int, **options) -> tuple[nn.Module, dict]:
    """The same training without Lightning: the engine's documented loop."""
    from dstbench import DST

    module = Module()
    opt = module.configure_optimizers()
    dst = DST(module, opt, total_steps=epochs * len(loader), **options)
    for _ in range(epochs):
        for batch in loader:
            opt.zero_grad()
            module.training_step(batch, 0).backward()
            opt.step()
            dst.step()
    return module, dst
