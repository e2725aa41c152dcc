import errno
import json
import signal
import threading
import time
from collections import Counter

import pytest

from dstbench import store
from dstbench.claims import claim_path, read_claim
from dstbench.experiments import run_sweep
from dstbench.experiments.sweep import count_states, plan_sweep, sweep_record_path
from dstbench.experiments.worker import WorkerJob, work

from . import fake_trainers
from .fake_trainers import events
from .helpers import small_spec


def sweep(spec, out, trainer=fake_trainers.steady, **kw):
    return run_sweep(spec, out, workers=0, trainer=trainer, progress=False, **kw)


def starts(out):
    return Counter(run_id for event, run_id in events(out) if event == "start")


def statuses(out, spec):
    return {r.run_id: store.RunDir(out / "runs" / r.run_id).status() for r in spec.expand()}


def test_a_sweep_runs_every_run_once_and_a_second_sweep_runs_nothing(tmp_path):
    spec = small_spec(tmp_path)
    out = tmp_path / "out"
    result = sweep(spec, out)
    assert result.ok and result.counts.done == 7 and result.started_done == 0
    assert set(starts(out).values()) == {1} and len(starts(out)) == 7
    again = sweep(spec, out)
    assert again.counts.done == 7 and again.started_done == 7
    assert sum(starts(out).values()) == 7  # zero starts the second time
    assert list((out / "claims").iterdir()) == []  # every claim released


def test_the_sweep_record_lists_the_spec_and_merges_when_the_spec_grows(tmp_path):
    out = tmp_path / "out"
    sweep(small_spec(tmp_path, seeds=(0, 1)), out)
    record = store.read_json(sweep_record_path(out, "small"))
    assert record["spec"] == "small" and record["path"].endswith("small.toml")
    assert record["report"] == {"kinds": ["accuracy_vs_density"]}
    assert Counter(e["arm"] for e in record["runs"]) == {"dst": 4, "dense": 1}
    grown = small_spec(tmp_path, densities=(0.2,), seeds=(0, 1, 2))  # one density dropped, one seed added
    sweep(grown, out)
    merged = store.read_json(sweep_record_path(out, "small"))
    ids = [e["run_id"] for e in merged["runs"]]
    assert len(ids) == len(set(ids)) == 4 + 1 + 1  # nothing dropped, the new run added once
    assert {r.run_id for r in grown.expand()} <= set(ids)


def test_only_selects_runs_but_the_record_lists_the_whole_spec(tmp_path):
    spec = small_spec(tmp_path)
    out = tmp_path / "out"
    result = sweep(spec, out, only={"density": [0.2], "arm": ["dst"]})
    assert result.counts.total == 3 and result.counts.done == 3
    assert {store.RunDir(out / "runs" / r).config()["density"] for r in starts(out)} == {0.2}
    assert len(store.read_json(sweep_record_path(out, "small"))["runs"]) == 7
    with pytest.raises(ValueError, match="no run of spec 'small' has density = 0.3; its values: 0.1, 0.2, 1"):
        sweep(spec, out, only={"density": [0.3]})
    with pytest.raises(ValueError, match="not a RunConfig field"):
        sweep(spec, out, only={"densty": [0.3]})


def test_several_specs_sweep_as_one_pool_and_a_shared_run_trains_once(tmp_path):
    a = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1), name="a.toml")
    b = small_spec(tmp_path, densities=(0.1, 0.2), seeds=(1,), name="b.toml")  # shares (0.1, seed 1) and dense
    out = tmp_path / "out"
    result = sweep([a, b], out)
    ids_a, ids_b = {r.run_id for r in a.expand()}, {r.run_id for r in b.expand()}
    assert len(ids_a & ids_b) == 2 and len(ids_a | ids_b) == 4
    assert result.ok and result.spec == "a, b" and result.counts.done == 4
    assert dict(starts(out)) == dict.fromkeys(ids_a | ids_b, 1)  # every run once, the shared ones too
    for name, ids in (("a", ids_a), ("b", ids_b)):  # each spec keeps its own record, as if swept alone
        assert {e["run_id"] for e in store.read_json(sweep_record_path(out, name))["runs"]} == ids
    assert sweep([b], out).started_done == 3


def test_several_specs_select_on_their_union_and_must_agree_on_the_group_size(tmp_path):
    a = small_spec(tmp_path, densities=(0.1,), seeds=(0,), name="a.toml")
    b = small_spec(tmp_path, densities=(0.2,), seeds=(0,), name="b.toml")
    out = tmp_path / "out"
    assert sweep([a, b], out, only={"density": [0.2]}).counts.done == 1  # a value of b only
    with pytest.raises(ValueError, match="no run of specs 'a', 'b' has density = 0.3"):
        sweep([a, b], out, only={"density": [0.3]})
    with pytest.raises(ValueError, match="named more than once"):
        sweep([a, a], out)
    solo = tmp_path / "solo.toml"
    solo.write_text((tmp_path / "b.toml").read_text().replace('name = "b"', 'name = "solo"')
                    + "\n[execution]\ngroup_size = 1\n")
    from dstbench.experiments import load_spec
    with pytest.raises(ValueError, match=r"different group sizes \(a: auto, solo: 1\); pass --group-size"):
        sweep([a, load_spec(solo)], out)
    assert sweep([a, load_spec(solo)], out, group_size=1).ok


def test_failed_runs_are_marked_with_their_reason_and_rerun_only_when_asked(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1, 2, 3))
    out = tmp_path / "out"
    result = sweep(spec, out, trainer=fake_trainers.flaky)
    assert not result.ok and result.counts.done == 3 and result.counts.failed == 2  # seeds 0, 3 and dense done
    reasons = sorted(result.failures.values())
    assert reasons == ["RuntimeError: boom in the data loader", "the training loss is nan at epoch 2"]
    crashed = store.RunDir(out / "runs" / next(r for r, why in result.failures.items() if "boom" in why)).summary()
    assert crashed["status"] == "failed" and crashed["config"]["seed"] == 1 and crashed["run_id"]
    assert sweep(spec, out, trainer=fake_trainers.flaky).counts.failed == 2
    assert sum(starts(out).values()) == 5  # failed runs were not retried without --retry-failed
    (out / "fixed").touch()
    retried = sweep(spec, out, trainer=fake_trainers.flaky, retry_failed=True)
    assert retried.ok and retried.counts.done == 5 and sum(starts(out).values()) == 7


def test_a_retried_run_that_fails_again_is_not_retried_twice_in_one_sweep(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(1,))
    out = tmp_path / "out"
    sweep(spec, out, trainer=fake_trainers.flaky)
    failing = next(r.run_id for r in spec.expand() if r.arm == "dst")
    plan = plan_sweep(spec, out, retry_failed=True)
    assert list(plan.retry) == [failing]
    job = WorkerJob(out=str(out), specs=(spec,), trainer=fake_trainers.flaky, retry=plan.retry)
    first, second = work(job), work(job)  # two workers of one sweep, one after the other
    assert first.failed == [failing] and second.failed == [] and second.done == []
    assert starts(out)[failing] == 2


def test_a_trainer_that_writes_no_summary_fails_the_run(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    result = sweep(spec, tmp_path / "out", trainer=fake_trainers.silent)
    assert set(result.failures.values()) == {"the trainer returned without writing summary.json"}


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    run = next(r for r in spec.expand() if r.arm == "dst")
    reference = tmp_path / "ref"
    sweep(spec, reference)
    out = tmp_path / "out"
    run_dir = out / "runs" / run.run_id
    run_dir.mkdir(parents=True)
    for name in (store.CONFIG, store.CHECKPOINT):  # an earlier sweep got this far (epoch 1 of 3) and died
        (run_dir / name).write_bytes((reference / "runs" / run.run_id / name).read_bytes())
    (run_dir / store.CHECKPOINT).write_text(json.dumps({"epoch": 1, "value": fake_trainers.value_after(
        run.config, 1, 0.0)}))
    store.append_jsonl(run_dir / store.METRICS, store.RunDir(reference / "runs" / run.run_id).metrics()[:2])
    assert sweep(spec, out).ok
    resumed = store.RunDir(run_dir)
    assert resumed.metrics() == store.RunDir(reference / "runs" / run.run_id).metrics()
    assert resumed.summary() == store.RunDir(reference / "runs" / run.run_id).summary()


def full_disk(monkeypatch, error):
    """Writing any summary.json fails with `error` (the trainer's and the worker's 'failed' summary alike)."""
    real = store.atomic_write_bytes

    def write(path, data):
        if path.name == store.SUMMARY:
            raise OSError(error, f"[Errno {error}] {errno.errorcode[error]}", str(path))
        real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", write)


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES])
def test_a_disk_full_or_permission_error_on_the_summary_marks_nothing_done(tmp_path, monkeypatch, error):
    spec = small_spec(tmp_path)
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        full_disk(patch, error)
        result = sweep(spec, out)
    assert not result.ok and result.counts.done == 0 and result.counts.failed == 0
    assert "cannot be written" in result.problems[0] or "stopped" in result.problems[0]
    assert sum(starts(out).values()) == 1  # the worker stopped instead of failing every run the same way
    assert all(s != "done" for s in statuses(out, spec).values())
    assert list((out / "claims").iterdir()) == []
    assert sweep(spec, out).ok and statuses(out, spec) == dict.fromkeys(statuses(out, spec), "done")


def test_a_stale_claim_is_taken_over_and_a_live_one_is_left_alone(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1))
    runs = [r for r in spec.expand() if r.arm == "dst"]
    out = tmp_path / "out"
    live, dead = claim_path(out, runs[0].run_id), claim_path(out, runs[1].run_id)
    live.parent.mkdir(parents=True)
    now = time.time()
    live.write_text(json.dumps({"host": "elsewhere", "pid": 1, "worker": "w1", "token": "a", "attempt": 1,
                                "heartbeat": now}))
    dead.write_text(json.dumps({"host": "elsewhere", "pid": 1, "worker": "w2", "token": "b", "attempt": 1,
                                "heartbeat": now - 1000}))
    result = sweep(spec, out, stale_after=60)
    assert result.counts.running == 1 and result.counts.done == 2
    assert runs[0].run_id not in starts(out) and starts(out)[runs[1].run_id] == 1
    assert read_claim(live)["worker"] == "w1"


def test_a_run_whose_workers_keep_dying_is_failed(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    run = next(r for r in spec.expand() if r.arm == "dst")
    out = tmp_path / "out"
    path = claim_path(out, run.run_id)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "worker": "w", "token": "a", "attempt": 3,
                                "heartbeat": 0.0}))
    result = sweep(spec, out, stale_after=60)
    assert "died 3 times" in result.failures[run.run_id] and run.run_id not in starts(out)


def test_execution_settings_reach_the_trainer_but_not_the_run_ids(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    out = tmp_path / "out"
    sweep(spec, out, execution={"data_root": str(tmp_path / "data"), "device": "cpu"})
    for r in spec.expand():
        config = store.RunDir(out / "runs" / r.run_id).config()
        assert config["data_root"] == str(tmp_path / "data") and config["device"] == "cpu"
        assert config["progress"] is False  # one bar for the sweep, none per run
    with pytest.raises(ValueError, match="not execution-only"):
        sweep(spec, out, execution={"seed": 3})


@pytest.mark.parametrize("sigint_ignored", [False, True])  # True: a worker started by nohup or a script's `&`
def test_a_run_whose_claim_is_taken_over_stops_without_a_result(tmp_path, sigint_ignored):
    if sigint_ignored:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0,))
    run = next(r for r in spec.expand() if r.arm == "dst")
    out = tmp_path / "out"
    path = claim_path(out, run.run_id)

    def take_over():  # once the run trains (not while its claim is still being written)
        while not starts(out)[run.run_id]:
            time.sleep(0.005)
        path.unlink()
        path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "worker": "thief", "token": "x", "attempt": 2,
                                    "heartbeat": time.time()}))

    thief = threading.Thread(target=take_over)
    thief.start()
    report = work(WorkerJob(out=str(out), specs=(spec,), only=(("arm", ("dst",)),),
                            trainer=fake_trainers.until_interrupted, heartbeat_s=0.02))
    thief.join()
    if sigint_ignored:
        signal.signal(signal.SIGINT, previous)
    assert report.lost == [run.run_id] and report.done == []
    assert store.RunDir(out / "runs" / run.run_id).summary() is None
    assert read_claim(path)["worker"] == "thief"


def test_count_states(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1, 2))
    out = tmp_path / "out"
    sweep(spec, out, trainer=fake_trainers.flaky)
    ids = [r.run_id for r in spec.expand()]
    counts = count_states(out, ids + ["never-started"])
    assert (counts.done, counts.failed, counts.running, counts.pending) == (2, 2, 0, 1)


def test_hooks_see_every_finished_run_and_a_broken_hook_changes_nothing(tmp_path):
    spec = small_spec(tmp_path, densities=(0.1,), seeds=(0, 1))
    out = tmp_path / "out"
    result = sweep(spec, out, trainer=fake_trainers.flaky,
                   hooks=["experiments.fake_trainers:broken_hook", fake_trainers.record_hook])
    assert result.counts.done == 2 and result.counts.failed == 1
    assert Counter(event for event, _ in events(out) if event.startswith("hook")) == {"hook-done": 2, "hook-failed": 1}
    assert sweep(spec, out, hooks=[fake_trainers.record_hook]).counts.done == 2  # nothing ran: no hook calls
    assert sum(1 for event, _ in events(out) if event.startswith("hook")) == 3
    with pytest.raises(ValueError, match="hook 'nowhere:x': cannot import 'nowhere'"):
        sweep(spec, out, hooks=["nowhere:x"])
