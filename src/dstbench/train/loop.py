"""A solo run's entry point: `run(config, run_dir)` trains one run with the one trainer (`dstbench.train.trainer`).

It owns the run folder while it trains (the claim a sweep worker
takes: a second process on the folder is refused) and checks that it still does before every write. It is
resumable: a checkpoint is written atomically after every epoch, and a run started again in the same folder
continues from it and ends bit-identical (on CPU) to a run that was never interrupted. A finished run returns
its summary at once; it keeps its final weights (model.npz) and masks, and drops the checkpoint unless
`keep_checkpoints`.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from dstbench import store, vocab
from dstbench.claims import ClaimLostError, hold_run_folder
from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.plugins import load_plugins
from dstbench.train.distributed import Distributed, is_launch_main
from dstbench.train.recipes import resolve_config
from dstbench.train.records import DamagedRunError  # noqa: F401  (raised from here for callers of run)
from dstbench.train.trainer import Trainer

log = logging.getLogger(__name__)


class ConfigMismatchError(UserError):
    """The run folder holds a run with another config; nothing is overwritten."""


def run(config: RunConfig, run_dir: Path | str, *, retry_failed: bool = False) -> dict[str, Any]:
    """Train (or resume, or return) the run described by `config` in `run_dir`; return its summary.

    A failed run returns its summary unless `retry_failed`, which trains it again (resuming its checkpoint).
    """
    load_plugins()
    config = resolve_config(config)
    folder = store.RunDir(run_dir)
    # Under torchrun, rank 0 owns the folder for all ranks (only it writes).
    owner = hold_run_folder(folder.path) if is_launch_main() else contextlib.nullcontext()
    with owner as claim:
        write_config(folder, config)
        summary, damaged = folder.read_summary()
        if damaged is not None:
            log.warning("%s", damaged)
        if summary is not None:
            if not (retry_failed and folder.status() == vocab.FAILED):
                return summary
            folder.file(store.SUMMARY).unlink()
        dist = Distributed.from_env(config)
        try:
            trainer = Trainer([config], [folder], folder.file(store.CHECKPOINT), claims=[claim], dist=dist)
            return trainer.fit()[0]
        except KeyboardInterrupt:
            if claim is not None and claim.lost.is_set():
                raise ClaimLostError(f"{folder.path}: another process took this run over (it judged this one "
                                     "dead); stopped and wrote nothing more") from None
            raise
        finally:
            dist.close()


def write_config(folder: store.RunDir, config: RunConfig) -> None:
    """Write config.json, or check that the one there describes the same run.

    A damaged config.json in a folder named by this config's run id is rewritten: the name proves which run the
    folder holds (a sweep's runs/<run_id>). Elsewhere it is an error, since nothing says what the folder held.
    Another run's config.json alone, with no record beside it, is replaced: that run never trained.
    """
    path = folder.file(store.CONFIG)
    if path.exists():
        try:
            existing = RunConfig.model_validate(store.read_json(path))
        except ValueError as exc:  # not JSON, or not a valid config
            if folder.run_id != config.run_id():
                raise UserError(f"{path} is damaged ({str(exc).splitlines()[0]}); restore it, or delete the run "
                                "folder to train the run again") from None
            store.atomic_write_json(path, config.model_dump(mode="json"))
            return
        if existing.run_id() != config.run_id():
            if {p.name for p in folder.path.iterdir() if not p.name.startswith(".")} == {store.CONFIG}:
                # a run refused before it trained (weights or data that did not fit): nothing there to keep
                store.atomic_write_json(path, config.model_dump(mode="json"))
                return
            theirs, ours = existing.identity(), config.identity()
            diff = sorted(k for k in ours if theirs.get(k) != ours.get(k))
            raise ConfigMismatchError(
                f"{folder.path} holds a run with a different config (differs in: {', '.join(diff)}); "
                "choose another --out folder or delete that run"
            )
        return
    folder.path.mkdir(parents=True, exist_ok=True)
    store.atomic_write_json(path, config.model_dump(mode="json"))
