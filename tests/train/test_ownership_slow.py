"""A run has one owner, across processes and file systems (issue #14): two `dstbench train` on one folder, a full
disk, a read-only results folder. The last two mount a small tmpfs in a private mount namespace (`unshare`) and
are skipped where that is not allowed."""

import os
import shutil
import subprocess
import sys

import pytest

from dstbench import store

pytestmark = pytest.mark.slow

BASE = [sys.executable, "-m", "dstbench", "train", "--model", "small_cnn", "--dataset", "digits", "--epochs", "3",
        "--density", "0.2", "--update-period", "100", "--no-progress", "--num-threads", "1"]
TRAIN = [*BASE, "--batch-size", "4", "--lr", "0.01"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_two_trains_on_one_folder_never_duplicate_epochs(tmp_path):
    out = tmp_path / "dup"
    procs = [subprocess.Popen([*TRAIN, "--out", str(out)], env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    folder = store.RunDir(out)
    assert [r["epoch"] for r in folder.metrics()] == [1, 2, 3]
    assert folder.status() == "done"
    assert any(code == 0 for code, _ in results)
    for code, err in results:  # the other one either found the run done or was refused with one line
        assert code == 0 or (code == 2 and "is being trained by" in err and "Traceback" not in err), err
    steps = [h["step"] for h in folder.history()]
    assert len(steps) == len(set((h["step"], h["layer"]) for h in folder.history()))


def _namespace_mounts() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _namespace_mounts(), reason="cannot mount a tmpfs in a user namespace here")


def _in_namespace(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "-rm", "sh", "-euc", script, "sh", *args], env=_env(), capture_output=True,
                          text=True, timeout=600)


@needs_mounts
def test_a_full_disk_stops_the_run_with_one_line_and_keeps_it_resumable(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    train = " ".join([*BASE, "--batch-size", "64", "--lr", "0.05", "--out", '"$1/run"'])
    script = f"""
mount -t tmpfs -o size=64k tmpfs "$1"
set +e
{train} 2> "$2/first.err"; echo $? > "$2/first.code"
set -e
test ! -e "$1/run/summary.json" && echo no-summary > "$2/state"
mount -o remount,size=20m "$1"
{train} > "$2/second.out"
cp "$1/run/metrics.jsonl" "$2/metrics.jsonl"
"""
    result = _in_namespace(script, str(mount), str(tmp_path))
    assert result.returncode == 0, result.stderr
    err = (tmp_path / "first.err").read_text().strip()
    assert (tmp_path / "first.code").read_text().strip() == "2", err
    assert "No space left on device; free some space and rerun" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "warning:" not in line]) == 1  # one line for the error
    assert (tmp_path / "state").read_text().strip() == "no-summary"
    assert "done" in (tmp_path / "second.out").read_text()
    assert [r["epoch"] for r in store.read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3]


@needs_mounts
def test_a_read_only_results_folder_is_reported_elsewhere(tmp_path):
    from analysis import synthetic

    source = tmp_path / "results"
    synthetic.performance_experiment(source, criteria=("magnitude", "snip", "set"), densities=(0.1, 0.5),
                                     grows=("random",), seeds=(0, 1))
    for table in ("results.parquet", "metrics.parquet"):
        (source / table).unlink(missing_ok=True)  # the report must collect, and cannot write the tables there
    mount, report = tmp_path / "ro", tmp_path / "report"
    mount.mkdir()
    script = f"""
mount -t tmpfs -o size=50m tmpfs "$1"
cp -a "$2"/. "$1"/
mount -o remount,ro "$1"
{sys.executable} -m dstbench report "$1" -o "$3"
"""
    result = _in_namespace(script, str(mount), str(source), str(report))
    assert result.returncode == 0, result.stderr
    assert (report / "report.html").stat().st_size > 0
