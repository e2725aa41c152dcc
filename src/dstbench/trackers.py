"""Live trackers: a run's metrics, density, ITOP and topology updates sent to TensorBoard, W&B or MLflow while it
trains (``dstbench train --track wandb,mlflow``; ``dstbench sweep ... --track tensorboard``).

`RunRecords` (dstbench.train.records) calls them where it writes the run folder, which stays the record: at the
start (the run config as parameters, the run id as the run name), after every epoch (its metrics row at the
epoch's last optimizer step, and before it one point per topology update: pruned and grown weights per layer, at the
update's step) and at the end (the summary). The x axis is the optimizer step throughout. A resumed run goes on in
the same tracker run: the trackers' own ids are kept in the run folder (``trackers.json``).

Each library is imported when its tracker starts (``pip install "dstbench[tracking]"``). Where they write is the
libraries' own configuration: ``WANDB_PROJECT``, ``WANDB_MODE=offline``, ``WANDB_DIR``; ``MLFLOW_TRACKING_URI``
(a ``file:`` URI is a local store), ``MLFLOW_EXPERIMENT_NAME``; TensorBoard writes ``<run folder>/tensorboard``.
The project and experiment default to "dstbench". A tracker that fails after it started is dropped with a warning;
the run trains on.
"""

from __future__ import annotations

import abc
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dstbench import store
from dstbench.errors import UserError
from dstbench.extras import require
from dstbench.vocab import TRACKERS, TRACKERS_FILE

log = logging.getLogger(__name__)

# Per-epoch keys of metrics.jsonl sent as metrics (the rest is bookkeeping).
SCALARS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "prune_fraction",
           "density", "itop", "seconds")
# Summary keys sent at the end.
FINAL = ("best_val_acc", "best_val_test_acc", "final_test_acc", "final_val_acc", "final_itop", "final_density",
         "wall_seconds")
PROJECT = "dstbench"


def _numbers(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, float]:
    return {k: float(row[k]) for k in keys if isinstance(row.get(k), (int, float)) and not isinstance(row[k], bool)}


def update_points(history: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, float]]:
    """Topology-update rows (one per update and layer) as {step: {"pruned/<layer>": n, "grown/<layer>": n}}."""
    points: dict[int, dict[str, float]] = {}
    for row in history:
        point = points.setdefault(int(row["step"]), {})
        point[f"pruned/{row['layer']}"] = float(row["pruned"])
        point[f"grown/{row['layer']}"] = float(row["grown"])
    return points


def _params(config: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """The run config as flat parameters (sequences as text)."""
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in config.items() if v is not None}


class _Tracker(abc.ABC):
    """One library's run. `ids` is the run folder's trackers.json content (read and written by `Trackers`)."""

    name = ""

    @abc.abstractmethod
    def start(self, run_dir: Path, name: str, config: Mapping[str, Any], resumed_step: int | None,
              ids: dict[str, Any]) -> None:
        """Open the library's run named `name` (or reopen the one in `ids` when resuming); record its id in `ids`."""

    @abc.abstractmethod
    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Metrics at one optimizer step."""

    @abc.abstractmethod
    def finish(self, summary: Mapping[str, Any]) -> None:
        """The summary's final numbers; close the run (failed if the run failed)."""


class TensorBoard(_Tracker):
    name = "tensorboard"

    def start(self, run_dir, name, config, resumed_step, ids):
        tensorboard = require("torch.utils.tensorboard", "tracking", "the tensorboard tracker")
        self.folder = Path(run_dir) / "tensorboard"
        if resumed_step is None:
            shutil.rmtree(self.folder, ignore_errors=True)  # a run trained again from scratch starts a fresh log
        # resuming: events after the checkpoint's step (written before a crash) are purged
        self.writer = tensorboard.SummaryWriter(log_dir=str(self.folder),
                                                purge_step=None if resumed_step is None else resumed_step + 1)
        self.config = dict(config)

    def log(self, step, values):
        for key, value in values.items():
            self.writer.add_scalar(key, value, global_step=step)

    def finish(self, summary):
        final = {f"hparam/{k}": v for k, v in _numbers(summary, FINAL).items()}
        self.writer.add_hparams(_params(self.config), final, run_name=".")
        self.writer.close()


class WandB(_Tracker):
    name = "wandb"
    # W&B runs this process opened, by id: a run resumed in the process that was training it (a sweep worker that
    # caught the interruption) finishes the old run object first; W&B refuses a second one with the same id.
    _open: dict[str, Any] = {}

    def start(self, run_dir, name, config, resumed_step, ids):
        wandb = require("wandb", "tracking", "the wandb tracker")
        known = ids.get(self.name) if resumed_step is not None else None
        if known in self._open:
            self._open.pop(known).finish(exit_code=1)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), name=name,
                              id=known, resume="allow" if known else None, config=dict(config),
                              reinit="create_new")  # one process trains several runs (a run group, a worker)
        ids[self.name] = self.run.id
        self._open[self.run.id] = self.run

    def log(self, step, values):
        self.run.log(dict(values), step=step)

    def finish(self, summary):
        self.run.summary.update({**_numbers(summary, FINAL), "status": summary.get("status")})
        self._open.pop(self.run.id, None)
        self.run.finish(exit_code=0 if summary.get("status") == "done" else 1)


class MLflow(_Tracker):
    name = "mlflow"

    def start(self, run_dir, name, config, resumed_step, ids):
        mlflow = require("mlflow", "tracking", "the mlflow tracker")
        self.entities = require("mlflow.entities", "tracking", "the mlflow tracker")
        self.client = mlflow.MlflowClient()  # MLFLOW_TRACKING_URI, else MLflow's default store
        known = ids.get(self.name) if resumed_step is not None else None
        if known:
            self.run_id = known
            self.client.update_run(known, status="RUNNING")
            return
        experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT)
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(experiment_name)
        run = self.client.create_run(experiment_id, run_name=name,
                                     tags={"dstbench.run_dir": str(Path(run_dir).resolve())})
        self.run_id = ids[self.name] = run.info.run_id
        params = [self.entities.Param(k, str(v)) for k, v in _params(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per call
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log(self, step, values):
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[self.entities.Metric(k, v, now, step) for k, v in values.items()])

    def finish(self, summary):
        self.log(int(summary.get("steps") or 0), _numbers(summary, FINAL))
        self.client.set_terminated(self.run_id, status="FINISHED" if summary.get("status") == "done" else "FAILED")


_CLASSES = {cls.name: cls for cls in (TensorBoard, WandB, MLflow)}
assert tuple(_CLASSES) == TRACKERS


class Trackers:
    """The live trackers of one run (none: every call does nothing and nothing is imported); `run_id` names the
    run in each tracker."""

    def __init__(self, names: Sequence[str], run_dir: Path | str, run_id: str):
        self.run_dir, self.run_id, self.names = Path(run_dir), run_id, tuple(names)
        self.active: list[_Tracker] = []  # the started ones: a run that fails before it starts logs nothing

    def start(self, config: Mapping[str, Any], resumed_step: int | None = None) -> None:
        """The run starts (`resumed_step` None) or resumes after `resumed_step` optimizer steps. A tracker that
        cannot start stops the run here, before it trains: a misconfigured tracker should not go unnoticed."""
        if not self.names:
            return
        path = self.run_dir / TRACKERS_FILE
        ids = store.read_json(path) if path.exists() else {}
        self.active = [_CLASSES[name]() for name in self.names]
        for tracker in self.active:
            try:
                tracker.start(self.run_dir, self.run_id, config, resumed_step, ids)
            except UserError:
                raise
            except Exception as exc:
                raise UserError(f"the {tracker.name} tracker could not start: {type(exc).__name__}: {exc}") from exc
        store.atomic_write_json(path, ids)

    def epoch(self, row: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> None:
        points = update_points(history)
        points.setdefault(int(row["step"]), {}).update(_numbers(row, SCALARS) | {"epoch": float(row["epoch"])})
        self._each("log", lambda t: [t.log(step, values) for step, values in sorted(points.items())])

    def finish(self, summary: Mapping[str, Any]) -> None:
        self._each("finish", lambda t: t.finish(summary))
        self.active = []

    def _each(self, what: str, call: Any) -> None:
        for tracker in list(self.active):
            try:
                call(tracker)
            except Exception as exc:  # the run folder is the record: a tracker's failure never stops training
                log.warning("%s: the %s tracker failed to %s (%s); it is dropped for this run",
                            self.run_dir, tracker.name, what, exc)
                self.active.remove(tracker)
