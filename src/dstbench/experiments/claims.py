"""Claim files: how workers that share nothing but a folder agree that each run is trained by one of them.

A worker owns run R while it holds ``OUT/claims/R.json``. The file is created with O_CREAT|O_EXCL (exactly one
creator wins, also on NFS v3+) and holds the owner's host, pid, worker id and a heartbeat time that a
thread refreshes in place. A claim is stale when its heartbeat is older than `stale_after` seconds, or when it
was made on this machine (same host, boot and pid namespace) by a process that no longer runs. Stale claims are
taken over without a lock:

1. hard-link the claim to ``R.json.stale-<token>`` (link fails if that name exists, so one taker per stale
   claim wins);
2. re-read the linked file: if it is not the stale claim (the token differs), the claim changed under us: undo;
3. remove the stale claim and create a fresh one with O_EXCL, like any new claim.

The heartbeat thread also checks that the claim file is still its own; if another worker took it over (this
process stalled longer than `stale_after`), it calls `on_lost`, which by default interrupts the main thread so
that two workers never keep writing to one run folder.
"""

from __future__ import annotations

import _thread
import functools
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CLAIMS = "claims"
STALE_AFTER = 600.0
# A takeover takes microseconds; a tombstone older than this belongs to a taker that died mid-takeover.
TOMBSTONE_EXPIRY = 60.0


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Owner:
    """Who holds a claim: enough to tell, from another process, whether the holder can still be alive."""

    host: str
    boot: str
    pidns: str
    pid: int
    worker: str

    @classmethod
    def current(cls, worker: str | None = None) -> Owner:
        host, boot, pidns = _machine()
        pid = os.getpid()
        return cls(host, boot, pidns, pid, worker or f"{host}:{pid}:{uuid.uuid4().hex[:8]}")


@functools.lru_cache(maxsize=1)
def _machine() -> tuple[str, str, str]:
    """This machine's name, boot id and pid namespace: where a pid means this process table."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    return socket.gethostname(), _read_text("/proc/sys/kernel/random/boot_id"), pidns


def claim_path(out: Path | str, run_id: str) -> Path:
    return Path(out) / CLAIMS / f"{run_id}.json"


def read_claim(path: Path) -> dict[str, Any] | None:
    """The claim's contents, or None if there is no claim or it is being rewritten at this instant."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine's pid namespace runs (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def is_stale(info: dict[str, Any] | None, path: Path, stale_after: float, now: float | None = None) -> bool:
    """Whether the claim at `path` (contents `info`, None if unreadable) has no living owner."""
    now = time.time() if now is None else now
    if info is None:  # caught mid-rewrite, or garbage: judge by the file's age alone
        try:
            return now - path.stat().st_mtime > stale_after
        except FileNotFoundError:
            return False
    if now - float(info.get("heartbeat", 0.0)) > stale_after:
        return True
    me = Owner.current(worker="")
    if info.get("host") != me.host:
        return False
    if info.get("boot") and me.boot and info["boot"] != me.boot:
        return True  # the machine rebooted since the claim was made
    if info.get("pidns") != me.pidns:
        return False  # another container on this host: its pids mean nothing here
    return not pid_alive(int(info.get("pid", -1)))


class Claim:
    """A claim this process holds, with its heartbeat thread; release it (or use it as a context manager)."""

    def __init__(self, path: Path, fd: int, content: dict[str, Any], heartbeat_s: float,
                 on_lost: Callable[[Claim], None] | None):
        self.path = path
        self.content = content
        self.lost = threading.Event()
        self._fd = fd
        self._inode = os.fstat(fd).st_ino
        self._stop = threading.Event()
        self._on_lost = on_lost
        self._thread = threading.Thread(target=self._beat_forever, args=(heartbeat_s,), daemon=True,
                                        name=f"heartbeat-{path.stem}")
        self._thread.start()

    @property
    def attempt(self) -> int:
        return int(self.content["attempt"])

    def owned(self) -> bool:
        """Whether the claim file is still the one this process created."""
        try:
            return os.stat(self.path).st_ino == self._inode
        except FileNotFoundError:
            return False

    def beat(self) -> None:
        """Refresh the heartbeat in place (through our own descriptor: never onto someone else's claim)."""
        if not self.owned():
            if not self.lost.is_set():
                self.lost.set()
                if self._on_lost is not None:
                    self._on_lost(self)
            return
        self.content["heartbeat"] = time.time()
        data = _encode(self.content)
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))

    def _beat_forever(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.beat()
            except OSError:
                pass  # a full disk or a network hiccup: keep trying; staleness needs many missed beats

    def release(self) -> None:
        """Stop the heartbeat and remove the claim if it is still ours."""
        self._stop.set()
        self._thread.join()
        if self.owned():
            self.path.unlink(missing_ok=True)
        os.close(self._fd)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def interrupt_main(claim: Claim) -> None:
    """Default `on_lost`: stop the run in the main thread (it raises KeyboardInterrupt there)."""
    _thread.interrupt_main()


def _encode(content: dict[str, Any]) -> bytes:
    return (json.dumps(content, sort_keys=True) + "\n").encode()


def _create(path: Path, owner: Owner, attempt: int, heartbeat_s: float,
            on_lost: Callable[[Claim], None] | None) -> Claim | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    except FileExistsError:
        return None
    now = time.time()
    content = {**asdict(owner), "token": uuid.uuid4().hex, "attempt": attempt, "claimed_at": now, "heartbeat": now}
    try:
        os.write(fd, _encode(content))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return Claim(path, fd, content, heartbeat_s, on_lost)


def _take_over(path: Path, info: dict[str, Any] | None) -> bool:
    """Remove the stale claim `info` (None: unreadable) at `path` unless another worker is doing so.

    True if we removed it. The tombstone link makes us the only taker of this stale claim; re-reading it
    proves it is still the claim we judged stale and not a fresh one that replaced it meanwhile.
    """
    token = str(info.get("token", "")) if info is not None else "unreadable"
    tomb = path.with_name(f"{path.name}.stale-{token}")
    try:
        os.link(path, tomb)
    except FileNotFoundError:
        return False
    except FileExistsError:
        try:
            if time.time() - tomb.stat().st_ctime > TOMBSTONE_EXPIRY:
                tomb.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return False
    try:
        linked = read_claim(tomb)
        same = linked is None if info is None else linked is not None and str(linked.get("token", "")) == token
        if not same or os.stat(path).st_ino != os.stat(tomb).st_ino:
            return False
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    finally:
        tomb.unlink(missing_ok=True)


@dataclass(frozen=True)
class ClaimResult:
    """What `try_claim` got: a claim, or the live claim of another worker, and the stale claim it replaced."""

    claim: Claim | None
    holder: dict[str, Any] | None = None
    replaced: dict[str, Any] | None = None


def try_claim(
    out: Path | str,
    run_id: str,
    owner: Owner,
    *,
    stale_after: float = STALE_AFTER,
    heartbeat_s: float | None = None,
    on_lost: Callable[[Claim], None] | None = interrupt_main,
) -> ClaimResult:
    """Claim a run for `owner`, taking over a stale claim; `claim` is None if a live worker holds it."""
    path = claim_path(out, run_id)
    heartbeat_s = heartbeat_s if heartbeat_s is not None else max(0.05, min(30.0, stale_after / 10))
    replaced = None
    for _ in range(5):
        claim = _create(path, owner, 1 + int((replaced or {}).get("attempt", 0)), heartbeat_s, on_lost)
        if claim is not None:
            return ClaimResult(claim, replaced=replaced)
        info = read_claim(path)
        if not is_stale(info, path, stale_after):
            if info is None and not path.exists():
                continue  # released between our create and our read: try again
            return ClaimResult(None, holder=info or {})
        if not _take_over(path, info):
            return ClaimResult(None, holder=info or {})
        replaced = info if info is not None else {}
    return ClaimResult(None, holder=read_claim(path) or {})


def live_claims(out: Path | str, stale_after: float = STALE_AFTER) -> dict[str, dict[str, Any]]:
    """run_id -> claim of every claim with a living owner."""
    folder = Path(out) / CLAIMS
    if not folder.is_dir():
        return {}
    claims = {}
    for entry in os.scandir(folder):
        if not entry.name.endswith(".json"):
            continue
        path = Path(entry.path)
        info = read_claim(path)
        if not is_stale(info, path, stale_after):
            claims[entry.name[: -len(".json")]] = info or {}
    return claims
