"""Progress: a bar with loss and ETA on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import Any

import torch

from dstbench.config import RunConfig

# The loss shown on the bar is read from the device this often (a host sync), never every step.
LOSS_REFRESH_STEPS = 50


class Progress:
    def __init__(self, config: RunConfig, steps_per_epoch: int, enabled: bool = True):
        self.config = config
        self.enabled = enabled and config.progress
        self.interactive = self.enabled and sys.stderr.isatty()
        self.bar = None
        self._count = 0
        if self.interactive:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps_per_epoch * config.epochs, desc=f"{config.model}/{config.dataset}",
                            unit="step", dynamic_ncols=True, leave=False)

    def step(self, loss: torch.Tensor) -> None:
        if self.bar is None:
            return
        self._count += 1
        self.bar.update(1)
        if self._count % LOSS_REFRESH_STEPS == 0:
            self.bar.set_postfix(loss=f"{float(loss):.4f}")

    def epoch_done(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = (
            f"epoch {row['epoch']}/{self.config.epochs}  train_loss {row['train_loss']:.4f}  "
            f"val_acc {row['val_acc']:.4f}  test_acc {row['test_acc']:.4f}  density {row['density']:.3f}  "
            f"itop {row['itop']:.3f}  {row['seconds']:.1f}s"
        )
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
