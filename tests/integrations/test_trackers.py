"""Live trackers from `dstbench train` and sweeps: real W&B (offline), MLflow (a local file store), TensorBoard."""

import glob
import json
import struct
import subprocess
import sys

import pytest

from dstbench import store, vocab
from dstbench.cli import main
from dstbench.train.records import RunRecords

TRAIN = ["train", "--model", "small_mlp", "--dataset", "digits", "--epochs", "2", "--batch-size", "128",
         "--density", "0.2", "--update-period", "4", "--no-progress"]


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """W&B offline and MLflow in a file store, both under tmp_path."""
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    # MLflow 3 keeps its file store in maintenance and asks for this opt-in (a new SQLite store costs seconds)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return tmp_path


def wandb_records(run_dir):
    """(kind, record) of a W&B offline run file: LevelDB-style log blocks of protobuf `Record`s."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_id = json.loads((run_dir / vocab.TRACKERS_FILE).read_text())["wandb"]
    (path,) = glob.glob(str(run_dir.parent / "wandb" / f"offline-run-*-{run_id}" / f"run-{run_id}.wandb"))
    data, pos, parts, block = open(path, "rb").read(), 7, b"", 32768  # 7: the file's own header
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        parts, pos = parts + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record.WhichOneof("record_type"), record


def mlflow_run(run_dir):
    import mlflow

    client = mlflow.MlflowClient()
    run_id = json.loads((run_dir / vocab.TRACKERS_FILE).read_text())["mlflow"]
    return client, client.get_run(run_id)


def test_dstbench_train_logs_live_to_wandb_mlflow_and_tensorboard(tracking):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run_dir = tracking / "r"
    assert main([*TRAIN, "--out", str(run_dir), "--track", "wandb,mlflow,tensorboard"]) == 0
    folder = store.RunDir(run_dir)
    rows, history, summary = folder.metrics(), folder.history(), folder.summary()
    steps = [r["step"] for r in rows]
    update_steps = sorted({h["step"] for h in history})
    assert steps == [10, 20] and update_steps == [4, 8, 12, 16, 20]

    client, run = mlflow_run(run_dir)
    assert run.info.run_name == summary["run_id"] and run.info.status == "FINISHED"
    assert run.data.params["density"] == "0.2" and run.data.params["model"] == "small_mlp"
    val = client.get_metric_history(run.info.run_id, "val_acc")
    assert [(m.step, m.value) for m in val] == [(r["step"], r["val_acc"]) for r in rows]
    pruned = client.get_metric_history(run.info.run_id, "pruned/hidden.1.weight")
    assert [(m.step, m.value) for m in pruned] == [(h["step"], h["pruned"]) for h in history
                                                   if h["layer"] == "hidden.1.weight"]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "itop")] == [r["itop"] for r in rows]
    assert run.data.metrics["final_test_acc"] == summary["final_test_acc"]

    records = list(wandb_records(run_dir))
    (start,) = [r.run for kind, r in records if kind == "run"]
    assert start.display_name == summary["run_id"]
    assert {u.key: json.loads(u.value_json) for u in start.config.update}["density"] == 0.2
    points = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
              for kind, r in records if kind == "history"]
    assert [p["_step"] for p in points] == sorted(set(steps + update_steps))
    assert [p["density"] for p in points if "density" in p] == [r["density"] for r in rows]
    assert [p["pruned/hidden.0.weight"] for p in points if "pruned/hidden.0.weight" in p] == [
        h["pruned"] for h in history if h["layer"] == "hidden.0.weight"]
    assert [r.exit.exit_code for kind, r in records if kind == "exit"] == [0]

    acc = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("val_acc")] == [(r["step"], pytest.approx(r["val_acc"]))
                                                                   for r in rows]


def test_a_resumed_run_goes_on_in_the_same_tracker_run(tracking, monkeypatch):
    run_dir = tracking / "r"
    original = RunRecords.epoch

    def dies_in_epoch_two(self, row, history):
        if row["epoch"] == 2:
            raise KeyboardInterrupt  # killed before epoch 2 is recorded: the run resumes from epoch 1
        original(self, row, history)

    monkeypatch.setattr(RunRecords, "epoch", dies_in_epoch_two)
    assert main([*TRAIN, "--epochs", "3", "--out", str(run_dir), "--track", "mlflow,wandb"]) == 130
    monkeypatch.setattr(RunRecords, "epoch", original)
    first = json.loads((run_dir / vocab.TRACKERS_FILE).read_text())
    assert main([*TRAIN, "--epochs", "3", "--out", str(run_dir), "--track", "mlflow,wandb"]) == 0
    assert json.loads((run_dir / vocab.TRACKERS_FILE).read_text()) == first
    client, run = mlflow_run(run_dir)
    rows = store.RunDir(run_dir).metrics()
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_loss")] == [
        (r["step"], r["val_loss"]) for r in rows]
    assert run.info.status == "FINISHED"
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_a_tracker_that_fails_mid_run_is_dropped_and_the_run_finishes(tracking, monkeypatch, caplog):
    from dstbench.trackers import MLflow

    def broken(self, step, values):
        raise ConnectionError("tracking server went away")

    monkeypatch.setattr(MLflow, "log", broken)
    assert main([*TRAIN, "--out", str(tracking / "r"), "--track", "mlflow"]) == 0
    assert store.RunDir(tracking / "r").status() == "done"
    assert "mlflow tracker failed to log (tracking server went away)" in caplog.text


def test_a_sweep_tracks_its_runs_without_changing_their_ids(tracking, capsys):
    spec = tracking / "s.toml"
    spec.write_text('name = "s"\n[base]\nmodel = "small_mlp"\ndataset = "digits"\nepochs = 1\nbatch_size = 256\n'
                    'update_period = 2\n[grid]\ndensity = [0.1, 0.2]\n')
    out = tracking / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--group-size", "1", "--no-progress",
                 "--track", "mlflow"]) == 0
    import mlflow

    runs = mlflow.MlflowClient().search_runs([mlflow.MlflowClient().get_experiment_by_name("dstbench").experiment_id])
    folders = sorted(p.name for p in (out / store.RUNS).iterdir())
    assert sorted(r.info.run_name for r in runs) == folders and len(folders) == 2
    assert all(store.RunDir(out / store.RUNS / f).config()["track"] == ["mlflow"] for f in folders)


def test_an_unknown_tracker_is_one_line(tmp_path, capsys):
    assert main([*TRAIN, "--out", str(tmp_path / "r"), "--track", "neptune"]) == 2
    assert "'neptune' is not one of tensorboard, wandb, mlflow" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_core_never_imports_the_optional_libraries(tmp_path):
    """Importing dstbench and training from the command line (no --track) imports none of the extras."""
    code = ("import sys; import dstbench; from dstbench.cli import main; "
            f"assert main({[*TRAIN, '--epochs', '1', '--out', str(tmp_path / 'r')]!r}) == 0; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'lightning', 'pytorch_lightning', "
            "'transformers', 'accelerate', 'wandb', 'mlflow', 'tensorboard'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
