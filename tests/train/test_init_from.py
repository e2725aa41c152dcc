"""`--init-from` (issue #21, items 1 and 10): weights that do not fit the model are refused, listing what is
missing, unexpected or of another shape; partial loading only when asked for, then said and recorded; a file that
cannot be read is described in words, with advice that fits its role."""

import json

import pytest

from dstbench import store
from dstbench.cli import main
from dstbench.config import RunConfig
from dstbench.train import resolve_config

TRAIN = ["train", "--dataset", "digits", "--epochs", "1", "--train-subset", "200", "--no-progress"]


@pytest.fixture(scope="module")
def cnn_model(tmp_path_factory):
    """A finished small_cnn run's folder."""
    out = tmp_path_factory.mktemp("cnn") / "run"
    assert main([*TRAIN, "--model", "small_cnn", "--out", str(out)]) == 0
    return out


def test_weights_of_another_architecture_are_refused_naming_what_does_not_fit(tmp_path, cnn_model, capsys):
    code = main([*TRAIN, "--model", "small_mlp", "--init-from", str(cnn_model / store.FINAL_MODEL),
                 "--out", str(tmp_path / "mlp")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "does not fit this model: 1 of the model's 6 tensors fit" in err
    assert "missing 4: hidden.0.weight, hidden.0.bias, hidden.1.weight, hidden.1.bias" in err
    assert "unexpected 6: conv1.weight" in err
    assert "of another shape (file vs model) 1: classifier.weight (10, 128) vs (10, 256)" in err
    assert "--init-partial" in err
    assert not (tmp_path / "mlp" / store.SUMMARY).exists()
    # the refused run left no record but its config: the folder takes the corrected command
    assert main([*TRAIN, "--model", "small_mlp", "--out", str(tmp_path / "mlp")]) == 0


def test_partial_loading_when_asked_for_says_and_records_what_was_skipped(tmp_path, cnn_model, capsys):
    out = tmp_path / "mlp"
    code = main([*TRAIN, "--model", "small_mlp", "--init-from", str(cnn_model / store.FINAL_MODEL), "--init-partial",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "loaded 1 of the model's 6 tensors; kept fresh: classifier.weight, hidden.0.bias" in err
    assert "not used from the file: conv1.weight" in err
    summary = store.RunDir(out).summary()
    assert summary["init_skipped"] == ["classifier.weight", "hidden.0.bias", "hidden.0.weight", "hidden.1.bias",
                                       "hidden.1.weight"]
    assert json.loads((out / store.CONFIG).read_text())["init_partial"] is True


def test_init_partial_leaves_run_ids_alone():
    base = dict(model="small_mlp", dataset="digits", init_from="x.pt")
    assert (resolve_config(RunConfig(**base, init_partial=True)).run_id()
            == resolve_config(RunConfig(**base)).run_id())


def test_a_finished_runs_folder_seeds_a_run_and_records_nothing_skipped(tmp_path):
    pre = tmp_path / "pre"
    assert main([*TRAIN, "--model", "small_mlp", "--out", str(pre)]) == 0
    out = tmp_path / "fine"
    assert main([*TRAIN, "--model", "small_mlp", "--seed", "1", "--init-from", str(pre), "--out", str(out)]) == 0
    assert store.RunDir(out).summary()["init_skipped"] == []


@pytest.mark.parametrize(("content", "cause"), [
    (None, "the file is truncated"),
    (b"", "the file is empty"),
    (b"these are not weights\n", "not a checkpoint (not a file torch.save wrote)"),
])
def test_an_unreadable_init_file_is_described_and_never_to_be_deleted(tmp_path, cnn_model, capsys, content, cause):
    bad = tmp_path / "bad.pt"
    whole = (cnn_model / store.FINAL_MODEL).read_bytes()
    bad.write_bytes(whole[: len(whole) // 2] if content is None else content)
    code = main([*TRAIN, "--model", "small_cnn", "--init-from", str(bad), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and cause in err and "Traceback" not in err
    assert "delete" not in err.lower() and "Errno" not in err
    assert "--init-from needs a finished run's model.npz or a state dict" in err


def test_a_folder_without_weights_is_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main([*TRAIN, "--model", "small_mlp", "--init-from", str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    assert code == 2 and "is a folder without model.npz" in capsys.readouterr().err


def test_an_unreadable_resume_checkpoint_is_described_with_advice_for_it(tmp_path, capsys):
    out = tmp_path / "r"
    argv = [*TRAIN, "--model", "small_mlp", "--keep-checkpoints", "--out", str(out)]
    assert main(argv) == 0
    checkpoint = out / store.CHECKPOINT
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    (out / store.SUMMARY).unlink()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot read checkpoint {checkpoint}: the file is truncated" in err
    assert "delete it to train this run again from the start" in err
