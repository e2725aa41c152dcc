import hashlib
import json
import zipfile

import pytest

import dstbench.data as data
from dstbench.cli import main
from dstbench.data import sources
from dstbench.data.download import download, mirrored
from dstbench.data.errors import ChecksumError, DataFormatError
from dstbench.data.sources import Resource

from .formats import write_cifar10, write_fashion, write_tiny_imagenet
from .server import Mirror

pytestmark = pytest.mark.filterwarnings("ignore::dstbench.data.ChecksumMismatchWarning")


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar_mirror(tmp_path, monkeypatch):
    """A mirror serving a tiny CIFAR-10 archive at the official path; its md5 stands in for the official one."""
    served = tmp_path / "served" / "~kriz"
    archive = write_cifar10(served, per_batch=4, as_tar=True)
    official = sources.RESOURCES["cifar10"][0]
    monkeypatch.setitem(sources.RESOURCES, "cifar10", [Resource(official.url, official.filename, _md5(archive))])
    with Mirror(tmp_path / "served") as mirror:
        yield mirror, archive


def test_mirror_replaces_scheme_and_host_only():
    assert mirrored("https://www.cs.toronto.edu/~kriz/c.tar.gz", "http://127.0.0.1:1/m/") == \
        "http://127.0.0.1:1/m/~kriz/c.tar.gz"
    assert mirrored("https://a.org/x?y=1", None) == "https://a.org/x?y=1"


def test_download_then_load(tmp_path, cifar_mirror):
    mirror, archive = cifar_mirror
    root = tmp_path / "root"
    paths = download("cifar10", root, mirror=mirror.url, report=lambda _: None)
    assert paths == [root / "cifar-10-python.tar.gz"]
    assert paths[0].read_bytes() == archive.read_bytes()
    assert not list(root.glob("*.part"))
    assert data.load("cifar10", root=root).sizes() == {"train": 18, "val": 2, "test": 4}
    # a second run verifies what is there and fetches nothing
    requests = len(mirror.log)
    download("cifar10", root, mirror=mirror.url, report=lambda _: None)
    assert len(mirror.log) == requests


def test_download_resumes_a_partial_file(tmp_path, cifar_mirror):
    mirror, archive = cifar_mirror
    root = tmp_path / "root"
    root.mkdir()
    body = archive.read_bytes()
    half = len(body) // 2
    (root / "cifar-10-python.tar.gz.part").write_bytes(body[:half])
    download("cifar10", root, mirror=mirror.url, report=lambda _: None)
    assert mirror.log == [("/~kriz/cifar-10-python.tar.gz", f"bytes={half}-")]
    assert (root / "cifar-10-python.tar.gz").read_bytes() == body


def test_dropped_connection_keeps_the_part_for_the_next_run(tmp_path, cifar_mirror, monkeypatch):
    mirror, archive = cifar_mirror
    root = tmp_path / "root"
    mirror.cut_after(300)
    with pytest.raises(OSError, match=r"after 300 .*bytes.*run the download again to resume"):
        download("cifar10", root, mirror=mirror.url, report=lambda _: None)
    assert (root / "cifar-10-python.tar.gz.part").stat().st_size == 300
    mirror.cut_after(None)
    download("cifar10", root, mirror=mirror.url, report=lambda _: None)
    assert mirror.log[-1] == ("/~kriz/cifar-10-python.tar.gz", "bytes=300-")
    assert (root / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()


def test_checksum_mismatch_deletes_the_download_and_names_both_sums(tmp_path, cifar_mirror, monkeypatch):
    mirror, archive = cifar_mirror
    official = sources.RESOURCES["cifar10"][0]
    monkeypatch.setitem(sources.RESOURCES, "cifar10", [Resource(official.url, official.filename, "f" * 32)])
    root = tmp_path / "root"
    with pytest.raises(ChecksumError) as info:
        download("cifar10", root, mirror=mirror.url, report=lambda _: None)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and _md5(archive) in message and "f" * 32 in message
    assert "deleted" in message and "Run the download again" in message
    assert not list(root.iterdir())


def test_an_existing_file_with_another_checksum_is_not_overwritten(tmp_path, cifar_mirror):
    mirror, _ = cifar_mirror
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(b"someone's own copy")
    with pytest.raises(ChecksumError, match=r"exists but its md5 is .*; delete it"):
        download("cifar10", root, mirror=mirror.url, report=lambda _: None)
    assert (root / "cifar-10-python.tar.gz").read_bytes() == b"someone's own copy"


def test_fashionmnist_download_then_load(tmp_path, monkeypatch):
    served = tmp_path / "served"
    write_fashion(served)
    resources = [Resource(r.url, r.filename, _md5(served / r.filename.split("/")[-1]))
                 for r in sources.RESOURCES["fashionmnist"]]
    monkeypatch.setitem(sources.RESOURCES, "fashionmnist", resources)
    with Mirror(served) as mirror:
        download("fashionmnist", tmp_path / "root", mirror=mirror.url, report=lambda _: None)
    assert len(mirror.log) == 4
    assert data.load("fashionmnist", root=tmp_path / "root").sizes() == {"train": 18, "val": 2, "test": 10}


def test_higgs_download_follows_the_openml_description(tmp_path):
    served = tmp_path / "served"
    (served / "data" / "v1" / "download").mkdir(parents=True)
    rows = "\n".join(f"{i * 0.5},{-i},'{i % 2}'" for i in range(40))
    arff = f"@RELATION higgs\n@ATTRIBUTE a NUMERIC\n@ATTRIBUTE b REAL\n@ATTRIBUTE target {{0,1}}\n@DATA\n{rows}\n"
    (served / "data" / "v1" / "download" / "777").write_text(arff)
    description = {"data_set_description": {"id": "44129", "file_id": "777", "default_target_attribute": "target",
                                            "md5_checksum": hashlib.md5(arff.encode()).hexdigest()}}
    (served / "api" / "v1" / "json" / "data").mkdir(parents=True)
    (served / "api" / "v1" / "json" / "data" / "44129").write_text(json.dumps(description))
    with Mirror(served) as mirror:
        download("higgs", tmp_path / "root", mirror=mirror.url, report=lambda _: None)
    assert [path for path, _ in mirror.log] == ["/api/v1/json/data/44129", "/data/v1/download/777"]
    splits = data.load("higgs", root=tmp_path / "root")
    assert splits.sizes() == {"train": 28, "val": 6, "test": 6} and splits.input_shape == (2,)


def test_tinyimagenet_download_extracts_the_zip(tmp_path, monkeypatch):
    folder = write_tiny_imagenet(tmp_path / "src", classes=2, per_class=10, val_per_class=1)
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "tiny-imagenet-200.zip", "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder.parent).as_posix())
    official = sources.RESOURCES["tinyimagenet"][0]
    monkeypatch.setitem(sources.RESOURCES, "tinyimagenet", [
        Resource(official.url, official.filename, _md5(served / "tiny-imagenet-200.zip"), official.extract)])
    root = tmp_path / "root"
    with Mirror(served) as mirror:
        paths = download("tinyimagenet", root, mirror=mirror.url, report=lambda _: None)
    assert paths == [root / "tiny-imagenet-200"]
    assert data.load("tinyimagenet", root=root).sizes() == {"train": 18, "val": 2, "test": 2}


def test_zip_members_outside_the_folder_are_refused(tmp_path):
    from dstbench.data.download import extract_zip

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("tiny-imagenet-200/../../escape.txt", "x")
    with pytest.raises(DataFormatError, match=r"evil.zip: unexpected member"):
        extract_zip(archive, "tiny-imagenet-200", report=lambda _: None)
    assert not (tmp_path.parent / "escape.txt").exists() and not (tmp_path / "tiny-imagenet-200").exists()


def test_imagenet_and_embedded_sets(tmp_path):
    with pytest.raises(ValueError, match=r"(?s)cannot be downloaded without an account.*" + str(tmp_path)):
        download("imagenet", tmp_path, report=lambda _: None)
    messages = []
    assert download("digits", tmp_path, report=messages.append) == []
    assert "ships with scikit-learn" in messages[0]


def test_cli_download_and_errors(tmp_path, cifar_mirror, capsys):
    mirror, _ = cifar_mirror
    root = tmp_path / "root"
    assert main(["data", "download", "cifar10", "--root", str(root), "--mirror", mirror.url]) == 0
    assert f"ready: {root / 'cifar-10-python.tar.gz'}" in capsys.readouterr().out
    assert main(["data", "download", "cifar100", "--root", str(root), "--mirror", mirror.url]) == 2
    assert "HTTP 404" in capsys.readouterr().err
    assert main(["data", "download", "mnist", "--root", str(root)]) == 2
    assert "valid names: breast_cancer" in capsys.readouterr().err


def test_cli_uses_the_mirror_environment_variable(tmp_path, cifar_mirror, monkeypatch):
    mirror, _ = cifar_mirror
    monkeypatch.setenv("DSTBENCH_DATA_MIRROR", mirror.url)
    assert main(["data", "download", "cifar10", "--root", str(tmp_path / "root")]) == 0
    assert mirror.log


def test_cli_info_lists_every_data_set(capsys):
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in data.list())
    assert "45,000/5,000/10,000" in out
