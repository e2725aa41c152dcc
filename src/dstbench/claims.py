"""Claim files: how workers that share nothing but a folder agree that each run is trained by one of them.

A worker owns run R while it holds ``OUT/claims/R.json``. The file is created with O_CREAT|O_EXCL (exactly one
creator wins, also on NFS v3+) and holds the owner's host, pid, worker id, its heartbeat interval, its
`stale_after` and a heartbeat time that a thread refreshes in place. A claim is judged by its owner's rules: it
is stale when its heartbeat is older than the owner's `stale_after` (at least `STALE_BEATS` of the owner's
intervals), whatever the judge's own setting, or when it was made on this machine (same host, boot and pid
namespace) by a process that no longer runs. A claim file that cannot be read (empty, not JSON: a disk that filled
as it was written, an edit) names no owner; it is stale once it has not changed for `UNREADABLE_AFTER` s, since
every live owner rewrites its claim more often than that, and every message about it names the file. Stale claims
are taken over without a lock:

1. hard-link the claim to ``R.json.stale-<token>`` (link fails if that name exists, so one taker per stale
   claim wins);
2. re-read the linked file: if it is not the stale claim (the token differs), the claim changed under us: undo;
3. remove the stale claim and create a fresh one with O_EXCL, like any new claim.

The heartbeat thread also checks that the claim file is still its own; if another worker took it over (this
process stalled longer than `stale_after`), it calls `on_lost`, which by default interrupts the main thread so
that two workers never keep writing to one run folder; writers also check `Claim.owned()` before each write.

`dstbench train` takes the same claim for its run folder (`hold_run_folder`): the claim of ``OUT/runs/R`` is
``OUT/claims/R.json`` and that of any other folder ``F`` is ``F/.claim.json``. A process that already holds the
claim (a sweep worker calling the trainer) keeps it; any other process is refused with the holder's name.
"""

from __future__ import annotations

import _thread
import functools
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dstbench.errors import UserError
from dstbench.store import raise_naming
from dstbench.vocab import CLAIMS, RUNS

STALE_AFTER = 600.0
# A claim is stale only after this many of its owner's heartbeat intervals without a beat.
STALE_BEATS = 3
# The longest heartbeat interval an owner uses (a tenth of its stale_after, at most this).
MAX_HEARTBEAT = 30.0
# Every live owner rewrites its whole claim at least every MAX_HEARTBEAT s, so a claim file that has stayed
# unreadable (empty, not JSON) for this long has no live owner, whatever stale_after its owner had.
UNREADABLE_AFTER = STALE_BEATS * MAX_HEARTBEAT
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


class RunInUseError(UserError):
    """Another live process holds the claim of this run folder; nothing was written."""


class ClaimLostError(UserError):
    """Another process took this process's claim over (it judged us dead); we stopped writing."""


def claim_path(out: Path | str, run_id: str) -> Path:
    return Path(out) / CLAIMS / f"{run_id}.json"


def run_folder_claim_path(run_dir: Path | str) -> Path:
    """The claim of a run folder: a sweep's ``OUT/claims/R.json`` for ``OUT/runs/R``, else ``F/.claim.json``."""
    run_dir = Path(run_dir).absolute()
    if run_dir.parent.name == RUNS:
        return claim_path(run_dir.parent.parent, run_dir.name)
    return run_dir / ".claim.json"


def heartbeat_interval(stale_after: float, heartbeat_s: float | None = None) -> float:
    """The heartbeat interval for a `stale_after`: a tenth of it (0.05 to 30 s) unless given; validated."""
    if not stale_after > 0:
        raise UserError(f"--stale-after must be a positive number of seconds, got {stale_after}")
    interval = heartbeat_s if heartbeat_s is not None else max(0.05, min(MAX_HEARTBEAT, stale_after / 10))
    if not 0 < interval * STALE_BEATS <= stale_after:
        raise UserError(f"--stale-after {stale_after} s must be at least {STALE_BEATS} heartbeat intervals "
                        f"({STALE_BEATS} x {interval} s)")
    return interval


def read_claim(path: Path) -> dict[str, Any] | None:
    """The claim's contents, or None if there is no claim or it is being rewritten at this instant."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


WRITE_GRACE = 2.0  # seconds a claim that is being created may take to hold its contents


def _read_settled(path: Path, grace: float = WRITE_GRACE) -> dict[str, Any] | None:
    """read_claim, waiting up to `grace` s for a claim that exists but is still being written (created empty
    by O_EXCL, then filled), so that a refusal can name its owner."""
    deadline = time.monotonic() + grace
    info = read_claim(path)
    while info is None and time.monotonic() < deadline:
        try:
            if time.time() - path.stat().st_mtime > grace:
                break  # not being written: left unwritten by a worker that died, or garbage
        except FileNotFoundError:
            break
        time.sleep(0.02)
        info = read_claim(path)
    return info


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


def unreadable_after(stale_after: float) -> float:
    """Seconds after its last change that an unreadable claim file is taken over."""
    return min(stale_after, UNREADABLE_AFTER)


def claim_problem(path: Path) -> str | None:
    """Why the claim file at `path` cannot be read ("empty", "not JSON ..."), None if it can (or is gone)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    if not data.strip():
        return "empty"
    try:
        content = json.loads(data)
    except ValueError as exc:
        return f"not JSON: {exc}"
    return None if isinstance(content, dict) else f"a JSON {type(content).__name__}, not an object"


def describe_unreadable(path: Path, stale_after: float = STALE_AFTER) -> str | None:
    """What to say about an unreadable claim file: that it is, why, and what will happen or can be done."""
    problem = claim_problem(path)
    if problem is None:
        return None
    try:
        left = unreadable_after(stale_after) - (time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None
    when = f"in {left:.0f} s" if left > 0 else "by the next process that claims it"
    return (f"claim file {path} is unreadable ({problem}), so nothing says which process holds the run; it is taken "
            f"over {when} ({unreadable_after(stale_after):.0f} s after it last changed), or delete it now if no "
            "process trains this run")


def unreadable_claims(out: Path | str, stale_after: float = STALE_AFTER) -> list[str]:
    """`describe_unreadable` of each claim file of a sweep folder that cannot be read."""
    folder = Path(out) / CLAIMS
    if not folder.is_dir():
        return []
    notes = (describe_unreadable(Path(e.path), stale_after) for e in sorted(os.scandir(folder), key=lambda e: e.name)
             if e.name.endswith(".json"))
    return [note for note in notes if note is not None]


def owner_stale_after(info: dict[str, Any], default: float) -> float:
    """How long the claim's owner said may pass without a heartbeat; `default` for claims that do not say."""
    try:
        recorded = float(info["stale_after"])
        return max(recorded, STALE_BEATS * float(info.get("heartbeat_s", 0.0)))
    except (KeyError, TypeError, ValueError):
        return default


def is_stale(info: dict[str, Any] | None, path: Path, stale_after: float, now: float | None = None) -> bool:
    """Whether the claim at `path` (contents `info`, None if unreadable) has no living owner.

    A readable claim is judged by its owner's `stale_after`; `stale_after` applies to claims that do not record
    one (older versions) and to unreadable files.
    """
    now = time.time() if now is None else now
    if info is None:  # caught mid-rewrite, or garbage: judge by the time since the file last changed
        try:
            return now - path.stat().st_mtime > unreadable_after(stale_after)
        except FileNotFoundError:
            return False
    if now - float(info.get("heartbeat", 0.0)) > owner_stale_after(info, stale_after):
        return True
    return owner_gone(info)


def owner_gone(info: dict[str, Any]) -> bool:
    """Whether the process an `Owner` record (a claim, a lock file) names is known to be gone: it ran on this
    machine (same host, boot and pid namespace) and no longer runs, or the machine rebooted since. Unknown
    (another host, another container) is not gone."""
    me = Owner.current(worker="")
    if info.get("host") != me.host:
        return False
    if info.get("boot") and me.boot and info["boot"] != me.boot:
        return True  # the machine rebooted since the record was made
    if info.get("pidns") != me.pidns:
        return False  # another container on this host: its pids mean nothing here
    try:
        return not pid_alive(int(info.get("pid", -1)))
    except (TypeError, ValueError):
        return False


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
        _HELD[path.absolute()] = self

    @property
    def attempt(self) -> int:
        return int(self.content["attempt"])

    def owned(self) -> bool:
        """Whether the claim file is still the one this process created."""
        try:
            return os.stat(self.path).st_ino == self._inode
        except FileNotFoundError:
            return False

    def check(self, what: str) -> None:
        """Raise ClaimLostError, before `what` is written, if another process took the claim over."""
        if not self.owned():
            self.lost.set()
            raise ClaimLostError(f"{self.path}: another process took this run over (it judged this one dead); "
                                 f"stopped before {what} and wrote nothing more")

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
        if _HELD.get(self.path.absolute()) is self:
            del _HELD[self.path.absolute()]
        if self.owned():
            self.path.unlink(missing_ok=True)
        os.close(self._fd)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def enable_interrupts() -> None:
    """Let SIGINT raise KeyboardInterrupt again if this process started with it ignored (a background job of a
    script, `nohup`): a lost claim stops the run with a simulated SIGINT, which Python would drop. Main thread
    only (where signal handlers are set)."""
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupt_main(claim: Claim) -> None:
    """Default `on_lost`: stop the run in the main thread (it raises KeyboardInterrupt there)."""
    _thread.interrupt_main()


def _encode(content: dict[str, Any]) -> bytes:
    return (json.dumps(content, sort_keys=True) + "\n").encode()


# The claims this process holds, by path: a trainer called by a worker finds the worker's claim here.
_HELD: dict[Path, Claim] = {}


def _create(path: Path, owner: Owner, attempt: int, heartbeat_s: float, stale_after: float,
            on_lost: Callable[[Claim], None] | None) -> Claim | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    except FileExistsError:
        return None
    now = time.time()
    content = {**asdict(owner), "token": uuid.uuid4().hex, "attempt": attempt, "claimed_at": now, "heartbeat": now,
               "heartbeat_s": heartbeat_s, "stale_after": stale_after}
    try:
        os.write(fd, _encode(content))
        os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise_naming(exc, path)  # a full disk: name the claim file
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
    return _claim_at(claim_path(out, run_id), owner, stale_after=stale_after, heartbeat_s=heartbeat_s,
                     on_lost=on_lost)


def _claim_at(path: Path, owner: Owner, *, stale_after: float, heartbeat_s: float | None,
              on_lost: Callable[[Claim], None] | None) -> ClaimResult:
    heartbeat_s = heartbeat_interval(stale_after, heartbeat_s)
    replaced = None
    for _ in range(5):
        claim = _create(path, owner, 1 + int((replaced or {}).get("attempt", 0)), heartbeat_s, stale_after, on_lost)
        if claim is not None:
            return ClaimResult(claim, replaced=replaced)
        info = _read_settled(path)
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


def describe_holder(info: dict[str, Any]) -> str:
    """"host H, pid P (worker W), since <time>, last heartbeat N s ago" for messages."""
    if not info:
        return "another process (its claim file is being written or unreadable)"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("claimed_at", 0.0))))
    beat = time.time() - float(info.get("heartbeat", 0.0))
    return (f"host {info.get('host', '?')}, pid {info.get('pid', '?')} (worker {info.get('worker', '?')}), "
            f"since {since}, last heartbeat {beat:.0f} s ago")


@contextmanager
def hold_run_folder(run_dir: Path | str, *, stale_after: float = STALE_AFTER) -> Iterator[Claim]:
    """Own the run folder while the block runs: this process's claim if it holds one, else a new one.

    Raises RunInUseError, naming the holder, when another live process holds it; nothing is written then.
    """
    path = run_folder_claim_path(run_dir)
    held = _HELD.get(path)
    if held is not None and held.owned():
        yield held
        return
    on_lost = None
    if threading.current_thread() is threading.main_thread():
        enable_interrupts()
        on_lost = interrupt_main
    result = _claim_at(path, Owner.current(), stale_after=stale_after, heartbeat_s=None, on_lost=on_lost)
    unreadable = describe_unreadable(path, stale_after) if result.claim is None and not result.holder else None
    if unreadable is not None:
        raise RunInUseError(f"{run_dir} cannot be trained now: its {unreadable}")
    if result.claim is None:
        raise RunInUseError(f"{run_dir} is being trained by {describe_holder(result.holder or {})}; wait for it "
                            f"to finish or stop that process (its claim is judged dead "
                            f"{owner_stale_after(result.holder or {}, stale_after):.0f} s after its last heartbeat)")
    try:
        yield result.claim
    finally:
        result.claim.release()
