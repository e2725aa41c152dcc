"""An unreadable claim file (issue #21, item 8): every message names it and says what to do, and it is taken over
once it has not changed for longer than any live owner's heartbeat, not after the default 600 s."""

import os
import time

import pytest

from dstbench.claims import (
    UNREADABLE_AFTER,
    Owner,
    RunInUseError,
    claim_path,
    hold_run_folder,
    is_stale,
    run_folder_claim_path,
    try_claim,
)
from dstbench.cli import main
from dstbench.experiments import run_sweep

from . import fake_trainers
from .helpers import small_spec


def age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def garbage_claim(path, content="{not json"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def test_an_unreadable_claim_is_stale_after_the_longest_heartbeat_not_the_default_stale_after(tmp_path):
    path = garbage_claim(claim_path(tmp_path, "r"))
    age(path, UNREADABLE_AFTER - 5)
    assert not is_stale(None, path, stale_after=600)  # an owner's next beat may still rewrite it
    age(path, UNREADABLE_AFTER + 5)
    assert is_stale(None, path, stale_after=600)  # no live owner leaves its claim unwritten this long
    result = try_claim(tmp_path, "r", Owner.current("b"), stale_after=600, on_lost=None)
    assert result.claim is not None and result.replaced == {}
    result.claim.release()


def test_train_names_an_unreadable_claim_and_says_it_can_be_deleted(tmp_path):
    folder = tmp_path / "r"
    garbage_claim(run_folder_claim_path(folder), "")
    age(run_folder_claim_path(folder), 10)
    with pytest.raises(RunInUseError) as info:
        with hold_run_folder(folder):
            pass
    message = str(info.value)
    assert f"its claim file {run_folder_claim_path(folder)} is unreadable (empty)" in message
    assert "taken over in 80 s" in message and "delete it now if no process trains this run" in message
    assert "stop that process" not in message


def test_status_and_sweep_name_an_unreadable_claim(tmp_path, capsys):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    out = tmp_path / "out"
    run_id = next(r for r in spec.expand() if r.arm == "dst").run_id
    garbage_claim(claim_path(out, run_id))
    run_sweep(spec, out, workers=0, trainer=fake_trainers.steady, progress=False)
    assert main(["status", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"note: claim file {claim_path(out, run_id)} is unreadable (not JSON: " in printed
    assert "delete it now if no process trains this run" in printed
    assert main(["sweep", str(spec.path), "--out", str(out), "--workers", "0", "--no-progress",
                 "--trainer", "tests.experiments.fake_trainers:steady"]) == 0
    err = capsys.readouterr().err
    assert f"claim file {claim_path(out, run_id)} is unreadable" in err
