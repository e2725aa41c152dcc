"""Run folders on disk: the one record of a run, written by training and read by sweeps, collect and analysis.

Layout of ``<out>/runs/<run_id>/`` (see docs/run-format.md):

- ``config.json``      the resolved `RunConfig`
- ``metrics.jsonl``    one JSON object per epoch
- ``history.jsonl``    one JSON object per topology update and layer
- ``checkpoint.pt``    everything needed to resume (atomic replace); removed when the run is done
- ``model.npz``        the final weights of a finished run without inactive zeros (`dstbench.weights`;
                       ``model.pt``, a dense state dict, in folders of earlier versions)
- ``masks/<tag>.npz``  bit-packed masks: ``init``, ``final``, ``step_0000800``, ...
- ``probes/step_<n>.npz``  what each probe criterion would prune at step n
- ``summary.json``     written last, atomically: its presence with status "done" means the run is done

This module only reads and writes files; it imports neither torch training code nor analysis.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dstbench.errors import UserError
from dstbench.vocab import (  # noqa: F401  (the file names are part of this module's interface)
    CHECKPOINT,
    CONFIG,
    FINAL_MODEL,
    HISTORY,
    LEGACY_FINAL_MODEL,
    MASKS,
    METRICS,
    PROBES,
    RUNS,
    SUMMARY,
    status_of,
    summary_problem,
)

# One key separator for probe files; criterion names with parameters use ':' and '=', never '|'.
_SEP = "|"


def _umask() -> int:
    """This process's umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files are written readable as an ordinary open() would make them: others on a shared folder can read results.
FILE_MODE = 0o666 & ~_umask()


# Files appended to (metrics, history) whose lines are not yet flushed to disk. An appended line needs to be on
# disk only before a record that relies on it is: every atomic write (a checkpoint, masks, a summary) flushes these
# first, so a checkpoint or summary on disk still implies every line appended before it is there, and lines after
# the last checkpoint are cut back on resume anyway. A run group appends two lines per member and epoch but
# checkpoints every 30 s: flushing each line on its own cost the study some 8 ms per line on a virtual disk.
_UNFLUSHED: set[str] = set()
_UNFLUSHED_LOCK = threading.Lock()


def flush_appended() -> None:
    """Flush to disk the lines this process has appended since the last atomic write."""
    with _UNFLUSHED_LOCK:
        paths = sorted(_UNFLUSHED)
        _UNFLUSHED.clear()
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # its run folder was removed meanwhile
            continue
        try:
            os.fsync(fd)
        except OSError as exc:  # a full disk shows here, not at the append: name the file
            raise_naming(exc, Path(path))
            raise
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part.

    The bytes go to a temporary file in the same folder, are flushed to disk, and replace the target with one
    rename. A full disk or a permission error raises here and leaves the old file (or no file) in place. The file
    gets the mode an ordinary write would give it (0666 less the umask), not mkstemp's private 0600. Lines appended
    before (`append_jsonl`) are flushed to disk first.
    """
    flush_appended()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # it names its random temporary file; the file meant is `path`
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        raise_naming(exc, path)
        raise


def raise_naming(exc: BaseException, path: Path) -> None:
    """Raise `exc` again with `path` as its file name if it is an OSError without one (a write or fsync that
    failed on a full disk names no file), so that the message says which file could not be written."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n").encode())


def read_json(path: Path) -> Any:
    """The JSON in `path`; a file that is not JSON raises a UserError naming it."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return json.loads(data)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise UserError(f"{path} is not valid JSON ({exc}); restore it or delete it") from None


def append_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows, one JSON object a line; they reach the disk before this process's next atomic write (or with
    `flush_appended`)."""
    text = "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in rows)
    if not text:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise_naming(exc, Path(path))
        raise
    with _UNFLUSHED_LOCK:
        _UNFLUSHED.add(str(path))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete lines of a JSON-lines file; a last line cut short by a killed writer is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            rows.append(json.loads(line))
    return rows


def truncate_jsonl(path: Path, keep: int) -> None:
    """Keep the first `keep` complete lines (used when a run resumes from an earlier checkpoint)."""
    rows = read_jsonl(path)[:keep]
    atomic_write_bytes(Path(path), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())


def pack_masks(masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bool arrays -> {name: packed bits, name + '|shape': shape} (1 bit per weight)."""
    out: dict[str, np.ndarray] = {}
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        out[name] = np.packbits(mask.reshape(-1))
        out[name + _SEP + "shape"] = np.asarray(mask.shape, dtype=np.int64)
    return out


def unpack_masks(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, bits in arrays.items():
        if key.endswith(_SEP + "shape"):
            continue
        shape = tuple(int(s) for s in arrays[key + _SEP + "shape"])
        count = int(np.prod(shape)) if shape else 1
        out[key] = np.unpackbits(bits, count=count).astype(bool).reshape(shape)
    return out


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def save_masks(path: Path, masks: Mapping[str, np.ndarray]) -> None:
    """Save {param_name: bool array} bit-packed to an .npz file (atomic)."""
    _save_npz(Path(path), pack_masks(masks))


def load_masks(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return unpack_masks({k: data[k] for k in data.files})


def save_probe(path: Path, probe: Mapping[tuple[str, float], Mapping[str, np.ndarray]]) -> None:
    """Save {(criterion, fraction): {param_name: bool 'would prune' mask}} to one .npz file."""
    flat = {
        f"{criterion}{_SEP}{fraction!r}{_SEP}{name}": mask
        for (criterion, fraction), masks in probe.items()
        for name, mask in masks.items()
    }
    _save_npz(Path(path), pack_masks(flat))


def load_probe(path: Path) -> dict[tuple[str, float], dict[str, np.ndarray]]:
    flat = load_masks(path)
    out: dict[tuple[str, float], dict[str, np.ndarray]] = {}
    for key, mask in flat.items():
        criterion, fraction, name = key.split(_SEP, 2)
        out.setdefault((criterion, float(fraction)), {})[name] = mask
    return out


class RunDir:
    """Paths and readers for one run folder."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    def mask_path(self, tag: str) -> Path:
        return self.path / MASKS / f"{tag}.npz"

    def probe_path(self, step: int) -> Path:
        return self.path / PROBES / f"step_{step:07d}.npz"

    def config(self) -> dict[str, Any]:
        return read_json(self.file(CONFIG))

    def read_summary(self) -> tuple[dict[str, Any] | None, str | None]:
        """(summary, None) for a valid summary.json (`vocab.summary_problem`), (None, why) for one that exists but
        is not valid (a damaged or foreign file: the run counts as unfinished), (None, None) without one."""
        path = self.file(SUMMARY)
        try:
            summary = read_json(path)
        except FileNotFoundError:
            return None, None
        except (UserError, OSError) as exc:
            return None, str(exc)
        problem = summary_problem(summary)
        if problem is not None:
            return None, (f"{path} is not a valid summary ({problem}); the run counts as unfinished and trains "
                          "again (restore the file to keep its result)")
        return summary, None

    def summary(self) -> dict[str, Any] | None:
        """The summary, or None while the run is not finished (or its summary is invalid: see `damaged_summary`)."""
        return self.read_summary()[0]

    def damaged_summary(self) -> str | None:
        """Why summary.json exists but cannot be used (not JSON, not a valid summary), or None."""
        return self.read_summary()[1]

    def status(self) -> str:
        """'done', 'failed', 'started' (has files, no summary) or 'pending': the one reader of a run's status."""
        summary = self.summary()
        return status_of(summary, started=summary is None and self.file(CONFIG).exists())

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.file(METRICS))

    def history(self) -> list[dict[str, Any]]:
        return read_jsonl(self.file(HISTORY))

    def masks(self, tag: str) -> dict[str, np.ndarray]:
        return load_masks(self.mask_path(tag))

    def mask_tags(self) -> list[str]:
        folder = self.path / MASKS
        return sorted(p.stem for p in folder.glob("*.npz")) if folder.exists() else []

    def probe_steps(self) -> list[int]:
        folder = self.path / PROBES
        if not folder.exists():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in folder.glob("step_*.npz"))

    def probe(self, step: int) -> dict[tuple[str, float], dict[str, np.ndarray]]:
        return load_probe(self.probe_path(step))


def results_folder(out: Path | str) -> Path:
    """`out` as a Path, or a UserError when it is no folder (a typo must not create an empty results folder)."""
    out = Path(out)
    if not out.is_dir():
        raise UserError(f"{out} is not a folder; give the --out folder of a sweep (or of `dstbench study`)")
    return out


def iter_runs(out: Path | str) -> Iterator[RunDir]:
    """Every run folder under ``<out>/runs``, in id order."""
    root = Path(out) / RUNS
    if not root.exists():
        return
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            yield RunDir(child)
