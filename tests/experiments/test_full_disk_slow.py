"""A real full disk and a real read-only folder (issue #21, items 12 and 15), on small tmpfs mounts: the message
names the file being written, and collect says how to write its tables elsewhere. Needs root (to mount); skipped
without it (tests/experiments/test_messages.py injects the same faults without a mount)."""

import shutil
import subprocess
import uuid

import pytest

from dstbench import store
from dstbench.cli import main
from dstbench.experiments import run_sweep

from . import fake_trainers
from .helpers import small_spec

pytestmark = pytest.mark.slow


@pytest.fixture
def mount(tmp_path):
    """mount(size) -> a fresh tmpfs folder of `size` bytes; unmounted after the test."""
    mounted = []

    def make(size: int):
        folder = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0 or shutil.which("mount") is None:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_during_training_names_the_file_being_written(mount, capsys):
    disk = mount(64 * 1024)  # config.json and the metrics fit; the first checkpoint (about 700 kB) does not
    code = main(["train", "--model", "small_mlp", "--dataset", "digits", "--epochs", "2", "--train-subset", "200",
                 "--no-progress", "--out", str(disk / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"error: {disk / 'run' / store.CHECKPOINT}: No space left on device; free some space and rerun" in err
    assert not list((disk / "run").glob(".*.tmp"))  # no half-written temporary file left behind


def test_collect_on_a_read_only_folder_says_to_give_out(mount, tmp_path, capsys):
    disk = mount(8 * 1024 * 1024)
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    run_sweep(spec, disk / "out", workers=0, trainer=fake_trainers.steady, progress=False)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    assert main(["collect", str(disk / "out")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the tables into {disk / 'out'} (Read-only file system" in err
    assert f"{disk / 'out' / 'results.parquet'})" in err  # the file meant, not its temporary file
    assert "give `dstbench collect --out FOLDER`" in err and "choose another output folder" not in err
    assert main(["collect", str(disk / "out"), "--out", str(tmp_path / "tables")]) == 0
    assert (tmp_path / "tables" / "results.parquet").exists()
