"""A leftover sweep-record lock (issue #21, item 9): its owner and age are checked, a dead owner's lock is broken
at once, and a wait says what it waits for."""

import dataclasses
import json
import os
import time

from dstbench.claims import Owner
from dstbench.experiments import sweep
from dstbench.experiments.sweep import plan_sweep, record_sweep

from .helpers import small_spec
from .test_claims import dead_pid


def lock_of(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    plan = plan_sweep(spec, tmp_path / "out")
    path = tmp_path / "out" / "sweeps" / "small.json.lock"
    path.parent.mkdir(parents=True)
    return plan, path


def timed_record(plan):
    started = time.monotonic()
    record_sweep(plan)
    return time.monotonic() - started


def test_a_lock_whose_process_is_gone_is_broken_at_once(tmp_path, caplog):
    plan, lock = lock_of(tmp_path)
    owner = dataclasses.replace(Owner.current(), pid=dead_pid())
    lock.write_text(json.dumps({**dataclasses.asdict(owner), "since": time.time()}))
    with caplog.at_level("WARNING"):
        assert timed_record(plan) < 1.0
    assert f"{lock}: broke a lock left by host {owner.host}, pid {owner.pid} (its process is gone)" in caplog.text
    assert not lock.exists() and (tmp_path / "out" / "sweeps" / "small.json").exists()


def test_an_old_lock_of_an_earlier_version_is_broken_at_once(tmp_path, caplog):
    plan, lock = lock_of(tmp_path)
    lock.write_text("")  # earlier versions left the lock empty
    then = time.time() - 120
    os.utime(lock, (then, then))
    with caplog.at_level("WARNING"):
        assert timed_record(plan) < 1.0
    assert "broke a lock left by an unknown process (the lock file names none) (it is 120 s old)" in caplog.text


def test_a_wait_for_a_live_lock_says_for_whom_and_how_long(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(sweep, "_LOCK_WAIT", 2.0)
    plan, lock = lock_of(tmp_path)
    me = Owner.current()
    lock.write_text(json.dumps({**dataclasses.asdict(me), "since": time.time()}))  # alive: this very process
    with caplog.at_level("WARNING"):
        assert 1.5 < timed_record(plan) < 5
    assert f"{lock}: waiting for host {me.host}, pid {os.getpid()}, which holds this lock; it is broken in 1 s" \
        in caplog.text
    assert "(it is 2 s old)" in caplog.text
