import json
import os
import subprocess
import sys
import threading
import time

import pytest

from dstbench import claims
from dstbench.claims import (
    Owner,
    claim_path,
    is_stale,
    live_claims,
    pid_alive,
    read_claim,
    try_claim,
)


def forge(out, run_id, **fields):
    """A claim file as another worker would have left it."""
    me = Owner.current("other")
    content = {"host": me.host, "boot": me.boot, "pidns": me.pidns, "pid": os.getpid(), "worker": "other",
               "token": "t0", "attempt": 1, "claimed_at": time.time(), "heartbeat": time.time(), **fields}
    path = claim_path(out, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    return path


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def no_interrupt(claim):
    raise AssertionError("the claim was not lost")


def test_a_claim_is_exclusive_until_released(tmp_path):
    first = try_claim(tmp_path, "r1", Owner.current("a"), on_lost=no_interrupt)
    assert first.claim is not None and first.replaced is None and first.claim.attempt == 1
    info = read_claim(claim_path(tmp_path, "r1"))
    assert info["worker"] == "a" and info["pid"] == os.getpid() and info["host"]
    second = try_claim(tmp_path, "r1", Owner.current("b"), on_lost=no_interrupt)
    assert second.claim is None and second.holder["worker"] == "a"
    first.claim.release()
    assert not claim_path(tmp_path, "r1").exists()
    third = try_claim(tmp_path, "r1", Owner.current("b"), on_lost=no_interrupt)
    assert third.claim is not None
    third.claim.release()


def test_the_heartbeat_refreshes_the_claim_file(tmp_path, monkeypatch):
    # Wait for the heartbeat thread's beats themselves, not for a fixed time: a loaded machine may not run the
    # thread for a while, or may run it several times before this thread reads the file.
    beats, written = threading.Semaphore(0), []
    real_beat = claims.Claim.beat

    def counted_beat(self):
        real_beat(self)
        written.append(self.content["heartbeat"])
        beats.release()

    monkeypatch.setattr(claims.Claim, "beat", counted_beat)
    result = try_claim(tmp_path, "r", Owner.current("a"), heartbeat_s=0.02, on_lost=no_interrupt)
    before = read_claim(claim_path(tmp_path, "r"))["heartbeat"]
    while not (written and written[-1] > before):  # a beat after `before` was read
        assert beats.acquire(timeout=60), "the heartbeat thread stopped beating"
    after = read_claim(claim_path(tmp_path, "r"))["heartbeat"]
    result.claim.release()
    assert after > before


def test_a_claim_without_heartbeat_is_taken_over_and_counts_the_attempt(tmp_path):
    forge(tmp_path, "r", heartbeat=time.time() - 100, host="elsewhere", attempt=2)
    result = try_claim(tmp_path, "r", Owner.current("b"), stale_after=10, on_lost=no_interrupt)
    assert result.claim is not None and result.replaced["host"] == "elsewhere" and result.claim.attempt == 3
    assert read_claim(claim_path(tmp_path, "r"))["worker"] == "b"
    result.claim.release()
    assert list((tmp_path / "claims").iterdir()) == []  # no tombstone left behind


def test_a_claim_of_a_dead_process_on_this_host_is_stale_at_once(tmp_path):
    path = forge(tmp_path, "r", pid=dead_pid())
    assert not pid_alive(read_claim(path)["pid"])
    assert is_stale(read_claim(path), path, stale_after=1e9)
    result = try_claim(tmp_path, "r", Owner.current("b"), on_lost=no_interrupt)
    assert result.claim is not None
    result.claim.release()


def test_a_live_process_or_another_host_keeps_its_claim(tmp_path):
    path = forge(tmp_path, "r")  # this process: alive
    assert not is_stale(read_claim(path), path, stale_after=600)
    assert try_claim(tmp_path, "r", Owner.current("b"), on_lost=no_interrupt).claim is None
    path = forge(tmp_path, "s", host="elsewhere", pid=dead_pid())  # pids of other hosts mean nothing here
    assert not is_stale(read_claim(path), path, stale_after=600)
    path = forge(tmp_path, "t", pidns="pid:[1]", pid=dead_pid())  # nor do pids of other containers
    assert not is_stale(read_claim(path), path, stale_after=600)
    path = forge(tmp_path, "u", boot="another-boot", pid=os.getpid())  # the machine rebooted since
    assert is_stale(read_claim(path), path, stale_after=600)
    assert set(live_claims(tmp_path)) == {"r", "s", "t"}


def test_an_unreadable_claim_is_judged_by_its_age(tmp_path):
    path = claim_path(tmp_path, "r")
    path.parent.mkdir(parents=True)
    path.write_text("")  # a worker killed between creating and writing its claim
    assert not is_stale(None, path, stale_after=10)
    old = time.time() - 100
    os.utime(path, (old, old))
    result = try_claim(tmp_path, "r", Owner.current("b"), stale_after=10, on_lost=no_interrupt)
    assert result.claim is not None and result.replaced == {}
    result.claim.release()


def test_a_tombstone_of_a_taker_that_died_expires(tmp_path, monkeypatch):
    path = forge(tmp_path, "r", heartbeat=0.0, token="t0")
    tomb = path.with_name(path.name + ".stale-t0")
    os.link(path, tomb)  # a taker died between its link and its takeover
    assert try_claim(tmp_path, "r", Owner.current("b"), stale_after=10, on_lost=no_interrupt).claim is None
    assert tomb.exists()  # young: another taker may be at work
    monkeypatch.setattr(claims, "TOMBSTONE_EXPIRY", 0.0)
    assert try_claim(tmp_path, "r", Owner.current("b"), stale_after=10, on_lost=no_interrupt).claim is None
    assert not tomb.exists()  # old: removed, and the next try takes the claim over
    result = try_claim(tmp_path, "r", Owner.current("b"), stale_after=10, on_lost=no_interrupt)
    assert result.claim is not None
    result.claim.release()


def race(n, attempt):
    """n threads call `attempt` at the same instant; returns their results."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def go(i):
        barrier.wait()
        results[i] = attempt(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_racing_workers_get_a_fresh_claim_once(tmp_path):
    for round_ in range(20):
        results = race(6, lambda i, run=f"r{round_}": try_claim(tmp_path, run, Owner.current(f"w{i}"),
                                                                on_lost=no_interrupt))
        winners = [r.claim for r in results if r.claim is not None]
        assert len(winners) == 1
        winners[0].release()


def test_racing_workers_take_a_stale_claim_over_once(tmp_path):
    for round_ in range(20):
        forge(tmp_path, f"r{round_}", heartbeat=0.0, host="elsewhere", token=f"t{round_}")
        results = race(6, lambda i, run=f"r{round_}": try_claim(tmp_path, run, Owner.current(f"w{i}"),
                                                                stale_after=10, on_lost=no_interrupt))
        winners = [r.claim for r in results if r.claim is not None]
        assert len(winners) == 1, round_
        assert read_claim(claim_path(tmp_path, f"r{round_}"))["worker"] == winners[0].content["worker"]
        winners[0].release()


def test_a_worker_whose_claim_was_taken_over_is_told(tmp_path):
    lost = threading.Event()
    result = try_claim(tmp_path, "r", Owner.current("a"), heartbeat_s=0.02, on_lost=lambda claim: lost.set())
    path = claim_path(tmp_path, "r")
    path.unlink()
    forge(tmp_path, "r", worker="b")  # what a takeover by another worker leaves
    assert lost.wait(2.0) and result.claim.lost.is_set()
    result.claim.release()
    assert read_claim(path)["worker"] == "b"  # releasing a lost claim leaves the new owner's file alone


# --- claims judged by their owner's rules (issue #14.2) ----------------------------------------------------------

def test_a_claim_records_its_owners_interval_and_limit(tmp_path):
    result = try_claim(tmp_path, "r", Owner.current("a"), stale_after=90, on_lost=no_interrupt)
    info = read_claim(claim_path(tmp_path, "r"))
    result.claim.release()
    assert info["heartbeat_s"] == 9.0 and info["stale_after"] == 90


def test_a_live_claim_is_judged_by_its_owners_stale_after_not_the_judges(tmp_path):
    # the owner beats every 30 s and allows 600 s; its last beat was 20 s ago
    forge(tmp_path, "r", host="elsewhere", heartbeat=time.time() - 20, heartbeat_s=30.0, stale_after=600.0)
    impatient = try_claim(tmp_path, "r", Owner.current("b"), stale_after=2, on_lost=no_interrupt)
    assert impatient.claim is None and impatient.holder["host"] == "elsewhere"
    assert "r" in live_claims(tmp_path, stale_after=2)


def test_a_claim_is_stale_after_its_owners_limit_and_several_of_its_intervals(tmp_path):
    path = forge(tmp_path, "r", host="elsewhere", heartbeat=time.time() - 700, heartbeat_s=30.0, stale_after=600.0)
    assert is_stale(read_claim(path), path, stale_after=1e9)
    # an owner that recorded a limit shorter than three of its beats is given three beats
    path = forge(tmp_path, "q", host="elsewhere", heartbeat=time.time() - 50, heartbeat_s=30.0, stale_after=10.0)
    assert not is_stale(read_claim(path), path, stale_after=1.0)


def test_claims_of_older_versions_are_judged_by_the_judges_limit(tmp_path):
    path = forge(tmp_path, "r", host="elsewhere", heartbeat=time.time() - 50)
    assert is_stale(read_claim(path), path, stale_after=10) and not is_stale(read_claim(path), path, stale_after=100)


@pytest.mark.parametrize(("stale_after", "heartbeat_s"), [(0, None), (-5, None), (1.0, 0.5), (10, 10)])
def test_stale_after_must_exceed_several_heartbeats(tmp_path, stale_after, heartbeat_s):
    with pytest.raises(ValueError, match="stale-after"):
        try_claim(tmp_path, "r", Owner.current("a"), stale_after=stale_after, heartbeat_s=heartbeat_s,
                  on_lost=no_interrupt)
    assert not claim_path(tmp_path, "r").exists()


def test_a_sweep_rejects_a_non_positive_stale_after(tmp_path, capsys):
    from dstbench.cli import main

    with pytest.raises(SystemExit):
        main(["sweep", "quick-fig1", "--out", str(tmp_path / "o"), "--stale-after", "0"])
    assert "positive number of seconds" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_refusal_waits_for_a_claim_being_written_and_names_its_owner(tmp_path):
    path = claim_path(tmp_path, "r")
    path.parent.mkdir(parents=True)
    path.write_text("")  # created with O_EXCL, not yet filled: what a racing second worker sees
    filler = threading.Timer(0.3, lambda: forge(tmp_path, "r", worker="first"))
    filler.start()
    result = try_claim(tmp_path, "r", Owner.current("b"), stale_after=10, on_lost=no_interrupt)
    filler.join()
    assert result.claim is None and result.holder["worker"] == "first"
