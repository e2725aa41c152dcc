"""DST for any `LightningModule` in one line (``pip install "dstbench[lightning]"``)::

    trainer = L.Trainer(callbacks=[DSTCallback(density=0.1, prune="magnitude", grow="gradient")])

The callback drives the one `DST` engine (`dstbench.integrations.driver`) under Lightning's own optimizer step, so
gradient accumulation, AMP (a skipped overflow step is skipped by DST too), gradient clipping and ``strategy="ddp"``
keep the engine's step order. Its state (masks, step, generator, history) is saved in Lightning's checkpoints and
restored with them: a fit resumed from a checkpoint ends as the uninterrupted one does.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl

from dstbench.integrations.driver import DrivenDST
from dstbench.sparsity import DST, SparsityConfig


class DSTCallback(pl.Callback):
    """Dynamic sparse training of the trained `LightningModule`'s Linear and Conv weights.

    Takes the keyword arguments of `DST` (`SparsityConfig`'s fields): ``density``, ``prune``, ``grow``,
    ``update_period``, ``distribution``, ``seed``, ... ``total_steps`` (where the prune-fraction schedule ends)
    defaults to the trainer's optimizer steps (``trainer.estimated_stepping_batches``). The module must have one
    optimizer. The engine is ``callback.dst`` once the fit has started (``dst.masks``, ``dst.density()``, ...).
    Inactive weights' gradients are zeroed when they are final, before Lightning clips them, so clipping sees the
    active weights' gradients only.
    """

    def __init__(self, **options: Any):
        # the options are checked now (a typo fails before training), total_steps filled in at the fit's start
        SparsityConfig(**{"total_steps": 1, **options})
        self.options = options
        self._driver: DrivenDST | None = None
        self._state: dict[str, Any] | None = None

    @property
    def dst(self) -> DST:
        if self._driver is None:
            raise RuntimeError("the DST engine exists once trainer.fit has started")
        return self._driver.dst

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise ValueError(f"DSTCallback needs exactly one optimizer; configure_optimizers gave "
                             f"{len(trainer.optimizers)}")
        options = dict(self.options)
        if options.get("total_steps") is None:
            total = trainer.estimated_stepping_batches  # optimizer steps: accumulation and devices counted
            if not math.isfinite(total):
                raise ValueError("the trainer's number of steps is unbounded (max_epochs=-1, no max_steps): "
                                 "give DSTCallback(total_steps=...)")
            options["total_steps"] = int(total)
        config = SparsityConfig(**options)
        self._close()
        self._driver = DrivenDST(pl_module, trainer.optimizers[0], config, self._state)
        self._state = None

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        self._driver.before_optimizer_step()

    def state_dict(self) -> dict[str, Any]:
        return self._driver.dst.state_dict() if self._driver is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if self._driver is not None:  # strategies that restore after setup: the weights are loaded already
            self._driver.dst.load_state_dict(state_dict)
        else:
            self._state = dict(state_dict)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._close()

    def _close(self) -> None:
        if self._driver is not None:
            self._driver.close()
