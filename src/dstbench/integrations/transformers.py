"""DST for the Hugging Face `Trainer` (``pip install "dstbench[nlp]"``)::

    trainer = Trainer(model, args, train_dataset=..., callbacks=[DSTCallback(density=0.1, prune="magnitude",
                                                                             grow="gradient")])

The callback drives the one `DST` engine (`dstbench.integrations.driver`) under the Trainer's optimizer step:
gradients are masked when final (after accumulation, all-reduce and clipping: the Trainer clips before its
``on_pre_optimizer_step``, as a plain loop clips before ``optimizer.step()``), and the engine steps right after each
optimizer step that happened. The engine's state is saved beside every Trainer checkpoint (``dst_state.pt`` in
``checkpoint-<step>/``) and read back by ``trainer.train(resume_from_checkpoint=...)``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from dstbench import store
from dstbench.errors import UserError
from dstbench.integrations.driver import DrivenDST
from dstbench.sparsity import DST, SparsityConfig

STATE_FILE = "dst_state.pt"

if not hasattr(TrainerCallback, "on_pre_optimizer_step"):  # the hook this callback needs (transformers >= 4.44)
    raise ImportError('dstbench.integrations.transformers needs a newer transformers: pip install -e ".[nlp]"')


class DSTCallback(TrainerCallback):
    """Dynamic sparse training of the Trainer's model (its Linear and Conv weights; embeddings stay dense).

    Takes the keyword arguments of `DST` (`SparsityConfig`'s fields). ``total_steps`` defaults to the Trainer's
    ``max_steps`` (optimizer steps). The engine is ``callback.dst`` once training has begun.
    """

    def __init__(self, **options: Any):
        SparsityConfig(**{"total_steps": 1, **options})  # a typo fails here, not after the model is loaded
        self.options = options
        self._driver: DrivenDST | None = None

    @property
    def dst(self) -> DST:
        if self._driver is None:
            raise RuntimeError("the DST engine exists once trainer.train() has begun")
        return self._driver.dst

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       **kwargs: Any) -> None:
        options = {"total_steps": state.max_steps, **{k: v for k, v in self.options.items() if v is not None}}
        resumed = None
        if state.global_step > 0:  # resuming: the Trainer has loaded the checkpoint of this step
            path = _checkpoint_folder(args, state.global_step) / STATE_FILE
            if not path.exists():
                raise UserError(f"resuming from step {state.global_step}, but {path} does not exist: the DST masks "
                                "are saved there by DSTCallback; resume a checkpoint written with it")
            resumed = torch.load(path, map_location="cpu", weights_only=True)
        if self._driver is not None:
            self._driver.close()
        # the Trainer's optimizer is accelerate's wrapper; the engine follows the torch optimizer inside it
        self._driver = DrivenDST(model, getattr(optimizer, "optimizer", optimizer), SparsityConfig(**options), resumed)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._driver.before_optimizer_step()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if args.should_save:  # the process that writes checkpoints (every rank holds the same masks)
            buf = io.BytesIO()
            torch.save(self.dst.state_dict(), buf)
            store.atomic_write_bytes(_checkpoint_folder(args, state.global_step) / STATE_FILE, buf.getvalue())

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._driver is not None:
            self._driver.close()


def _checkpoint_folder(args: Any, step: int) -> Path:
    return Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{step}"
