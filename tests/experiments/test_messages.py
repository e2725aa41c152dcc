"""Messages that say the truth (issue #21, items 11-16): the file being written on a full disk, the user's plugin
as the user's, the one data file missing, a run's config.json as --config, collect on a read-only folder, ASCII."""

import errno
import os
import sys
import textwrap

import pytest

from dstbench import plugins, store
from dstbench.cli import main
from dstbench.experiments import run_sweep
from dstbench.experiments.spec import SpecError, parse_spec

from . import fake_trainers
from .helpers import small_spec

TRAIN = ["train", "--model", "small_mlp", "--dataset", "digits", "--epochs", "2", "--train-subset", "200",
         "--no-progress"]


# --- 12: a full disk names the file being written ----------------------------------------------------------------

def test_a_full_disk_during_training_names_the_file(tmp_path, monkeypatch, capsys):
    real_fsync = os.fsync

    def full_at_metrics(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(store.METRICS):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as the kernel reports it: no file name
        real_fsync(fd)

    monkeypatch.setattr(store.os, "fsync", full_at_metrics)
    assert main([*TRAIN, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'r' / store.METRICS}: No space left on device; free some space" in err
    assert "(no path)" not in err


def test_an_atomic_write_that_fails_names_its_target_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(store.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError) as info:
        store.atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


# --- 11: a plugin that raises is the user's code --------------------------------------------------------------------

@pytest.fixture
def plugin_folder(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV, "")
    yield tmp_path
    for name in ("broken_plugin_xyz", "needs_dep_plugin_xyz"):
        sys.modules.pop(name, None)


def test_a_plugin_that_raises_on_import_is_named_with_its_own_traceback(plugin_folder, capsys):
    (plugin_folder / "broken_plugin_xyz.py").write_text(textwrap.dedent('''
        def register():
            raise RuntimeError("my registry is broken")

        register()
    '''))
    assert main(["--plugin", "broken_plugin_xyz", "list", "criteria"]) == 2
    err = capsys.readouterr().err
    assert "plugin module 'broken_plugin_xyz'" in err and "raised RuntimeError while it was imported" in err
    assert "the error is in the plugin, not in dstbench" in err and "bug in dstbench" not in err
    assert f'File "{plugin_folder / "broken_plugin_xyz.py"}", line 5, in <module>' in err
    assert "RuntimeError: my registry is broken" in err
    assert "importlib" not in err  # the import machinery's frames are not the user's


def test_a_plugin_whose_own_import_fails_is_not_said_to_be_missing(plugin_folder, capsys):
    (plugin_folder / "needs_dep_plugin_xyz.py").write_text("import no_such_dependency_xyz\n")
    assert main(["--plugin", "needs_dep_plugin_xyz", "list", "criteria"]) == 2
    err = capsys.readouterr().err
    assert "raised ModuleNotFoundError while it was imported" in err and "no_such_dependency_xyz" in err
    assert "must be on PYTHONPATH" not in err


# --- 14: a run's config.json as --config ----------------------------------------------------------------------------

def test_train_config_accepts_a_runs_config_json_to_rerun_it(tmp_path, capsys):
    assert main([*TRAIN, "--out", str(tmp_path / "a")]) == 0
    first = store.RunDir(tmp_path / "a").summary()
    assert main(["train", "--config", str(tmp_path / "a" / store.CONFIG), "--out", str(tmp_path / "b")]) == 0
    again = store.RunDir(tmp_path / "b").summary()
    assert again["run_id"] == first["run_id"] and again["final_test_acc"] == first["final_test_acc"]
    # flags still override it
    assert main(["train", "--config", str(tmp_path / "a" / store.CONFIG), "--epochs", "1", "--out",
                 str(tmp_path / "c")]) == 0
    assert store.RunDir(tmp_path / "c").summary()["epochs"] == 1


@pytest.mark.parametrize(("content", "message"), [
    ("model = small_mlp\n", "is not valid TOML (Invalid value (at line 1, column 9)); give a TOML file of "
                            "RunConfig keys (key = value lines) or a run's config.json"),
    ('{"model": "small_mlp",', "is not valid JSON"),
    ("[1, 2]\n", "is not valid TOML"),
])
def test_a_config_file_that_is_neither_names_both_accepted_forms(tmp_path, capsys, content, message):
    path = tmp_path / "c.toml"
    path.write_text(content)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"config file {path} {message}" in err and "Traceback" not in err


# --- 15: collect on a folder it may not write ---------------------------------------------------------------------

def test_collect_into_another_folder_and_say_so_where_the_sweep_folder_is_read_only(tmp_path, monkeypatch, capsys):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    out = tmp_path / "out"
    run_sweep(spec, out, workers=0, trainer=fake_trainers.steady, progress=False)
    assert main(["collect", str(out), "--out", str(tmp_path / "tables")]) == 0
    assert "tables/results.parquet: 2 rows" in capsys.readouterr().out
    assert (tmp_path / "tables" / "metrics.parquet").exists() and not (out / "results.parquet").exists()

    def read_only(path, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(store, "atomic_write_bytes", read_only)
    assert main(["collect", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the tables into {out} (Read-only file system" in err
    assert "give `dstbench collect --out FOLDER` to write them elsewhere" in err


# --- 16: names are ASCII --------------------------------------------------------------------------------------------

def test_a_spec_name_outside_ascii_is_refused_saying_ascii():
    with pytest.raises(SpecError, match=r"name 'ünïcode' must be ASCII letters, digits"):
        parse_spec({"name": "ünïcode", "base": {"model": "small_mlp", "dataset": "digits"}}, "ünïcode.toml")

