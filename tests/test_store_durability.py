"""Appended lines reach the disk before the next atomic write of the process, not one fsync each (store)."""

import os

from dstbench import store


def test_appends_are_flushed_to_disk_before_the_next_atomic_write(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(store.os, "fsync", recording_fsync)
    metrics, history = tmp_path / "metrics.jsonl", tmp_path / "history.jsonl"
    for epoch in (1, 2):
        store.append_jsonl(metrics, [{"epoch": epoch}])
        store.append_jsonl(history, [{"step": epoch}])
    assert synced == []  # nothing waits for the disk per line
    assert store.read_jsonl(metrics) == [{"epoch": 1}, {"epoch": 2}]  # and readers see every line at once
    store.atomic_write_json(tmp_path / "summary.json", {"status": "done"})
    # the appended files first (once each, whatever the number of lines), then the new file, before its rename
    assert synced[:2] == sorted([str(history), str(metrics)]) and len(synced) == 3
    assert synced[2].startswith(str(tmp_path / ".summary.json."))
    store.atomic_write_json(tmp_path / "summary.json", {"status": "done"})
    assert len(synced) == 4  # nothing appended since: only the new file
