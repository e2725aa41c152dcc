"""Downloads from the official sources: resumable, verified, extracted where needed.

A file is fetched into `<name>.part` with an HTTP Range request continuing whatever an interrupted run left, its
checksum (md5 or sha256) is compared with the published one, and only then is it renamed into place. A mismatch
deletes the part file and names the file, both sums and the fix. `DSTBENCH_DATA_MIRROR` (or `mirror=`) replaces the scheme and
host of every official URL, so a mirror serves the official paths (e.g. `<mirror>/~kriz/cifar-10-python.tar.gz`);
its files are verified against the same official checksums.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from dstbench.data import sources
from dstbench.data.checksums import file_digest
from dstbench.data.errors import ChecksumError, DataFormatError
from dstbench.data.registry import info
from dstbench.data.sources import Resource, checksum_algorithm
from dstbench.errors import UserError

MIRROR_ENV = "DSTBENCH_DATA_MIRROR"
_CHUNK = 1 << 20
_EMBEDDED = {"digits", "breast_cancer", "synthetic_tabular"}

Report = Callable[[str], None]


def mirrored(url: str, mirror: str | None) -> str:
    """`url` with its scheme and host replaced by `mirror` (unchanged when there is no mirror)."""
    if not mirror:
        return url
    parts = urlsplit(url)
    return mirror.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": "dstbench"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _receive(response: http.client.HTTPResponse, part: Path, *, append: bool, url: str) -> None:
    """Write the body to `part`; a dropped connection keeps what arrived, for the next run to resume."""
    expected = response.headers.get("Content-Length")
    received = 0
    with open(part, "ab" if append else "wb") as out:
        try:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
        except (http.client.HTTPException, OSError) as exc:
            raise OSError(f"{url}: connection lost after {received:,} bytes ({exc!r}); "
                          f"run the download again to resume from {part}") from exc
    if expected is not None and received < int(expected):
        raise OSError(f"{url}: connection closed after {received:,} of {int(expected):,} bytes; "
                      f"run the download again to resume from {part}")


def fetch(url: str, dest: Path, checksum: str, *, timeout: float = 60.0, report: Report = print) -> Path:
    """Download `url` to `dest`, resuming `dest.part`, and verify its checksum (md5, or sha256 when it has 64 hex
    digits); returns `dest`.

    An existing `dest` with the right checksum is kept (nothing is downloaded); one with another is an error.
    """
    algorithm = checksum_algorithm(checksum)
    if dest.is_file():
        actual = file_digest(dest, algorithm)
        if actual == checksum:
            report(f"{dest}: present, {algorithm} verified")
            return dest
        raise ChecksumError(f"{dest} exists but its {algorithm} is {actual}, not the official {checksum}; "
                            "delete it (or move it aside) and run the download again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    report(f"{url} -> {dest}" + (f" (resuming at {offset:,} bytes)" if offset else ""))
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:  # 416: nothing left after `offset`; the part file is complete
            raise OSError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise OSError(f"{url}: cannot connect ({exc.reason}); check the network or set {MIRROR_ENV}") from exc
    else:
        with response:
            _receive(response, part, append=bool(offset) and response.status == 206, url=url)
    actual = file_digest(part, algorithm)
    if actual != checksum:
        part.unlink()
        raise ChecksumError(
            f"{dest.name} from {url}: {algorithm} {actual} differs from the official {checksum}; the download was deleted. "
            "Run the download again; if it fails the same way, the source (or mirror) serves a different file"
        )
    os.replace(part, dest)
    return dest


def extract_zip(archive: Path, folder_name: str, report: Report = print) -> Path:
    """Unpack `archive` (whose top folder is `folder_name`) next to it; refuses members outside that folder."""
    target = archive.parent / folder_name
    if target.is_dir():
        report(f"{target}: already extracted")
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{folder_name}.", dir=archive.parent))
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.namelist():
                parts = Path(member).parts
                if Path(member).is_absolute() or ".." in parts or not parts or parts[0] != folder_name:
                    raise DataFormatError(f"{archive}: unexpected member {member!r} (outside {folder_name}/)")
            report(f"extracting {archive} -> {target}")
            zipped.extractall(staging)
        os.replace(staging / folder_name, target)
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{archive}: corrupt zip archive ({exc}); delete it and download again") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _higgs_resources(root: Path, mirror: str | None, timeout: float, report: Report) -> list[Resource]:
    """OpenML names the current data file and its md5 in the data set's description; fetch that first."""
    url = mirrored(sources.OPENML_DESCRIPTION_URL.format(id=sources.HIGGS_OPENML_ID), mirror)
    report(f"{url} (OpenML description)")
    try:
        with _open(url, 0, timeout) as response:
            raw = response.read()
        description = json.loads(raw)["data_set_description"]
        file_id, md5 = description["file_id"], description["md5_checksum"]
    except urllib.error.URLError as exc:
        raise OSError(f"{url}: cannot fetch the OpenML description ({exc}); check the network or set "
                      f"{MIRROR_ENV}") from exc
    except (ValueError, KeyError) as exc:
        raise DataFormatError(f"{url}: not an OpenML data set description ({exc})") from exc
    folder = root / sources.HIGGS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / sources.HIGGS_DESCRIPTION).write_bytes(raw)
    file_url = sources.OPENML_FILE_URL.format(file_id=file_id)
    return [Resource(file_url, f"{sources.HIGGS_DIR}/{sources.HIGGS_ARFF}", md5)]


def download(
    name: str, root: str | os.PathLike[str], *, mirror: str | None = None, timeout: float = 60.0,
    report: Report = print,
) -> list[Path]:
    """Fetch (and, for zip archives, extract) data set `name` into `root`; returns the files it holds now."""
    canonical = info(name).name
    root = Path(root).expanduser()
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if canonical in _EMBEDDED:
        report(f"{canonical} ships with scikit-learn: nothing to download")
        return []
    if canonical == "imagenet":
        raise UserError(sources.IMAGENET_INSTRUCTIONS.replace("ROOT", str(root)))
    if canonical == "higgs":
        resources = _higgs_resources(root, mirror, timeout, report)
    else:
        resources = sources.RESOURCES[canonical]
    paths = []
    for resource in resources:
        path = fetch(mirrored(resource.url, mirror), root / resource.filename, resource.checksum,
                     timeout=timeout, report=report)
        paths.append(extract_zip(path, resource.extract, report) if resource.extract else path)
    return paths
