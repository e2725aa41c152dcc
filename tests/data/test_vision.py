import gzip
import warnings

import numpy as np
import pytest
import torch

import dstbench.data as data
from dstbench.data import checksums, vision
from dstbench.data.errors import ChecksumMismatchWarning, DataFormatError, DataNotFoundError

from .formats import cifar_images, write_cifar10, write_cifar100, write_fashion

pytestmark = pytest.mark.filterwarnings("ignore::dstbench.data.ChecksumMismatchWarning")


@pytest.mark.parametrize("subfolder, gz", [("", True), ("fashion-mnist", False), ("FashionMNIST/raw", True)])
def test_fashionmnist_splits_shapes_and_normalisation(tmp_path, subfolder, gz):
    arrays = write_fashion(tmp_path / subfolder, n_train=20, n_test=10, gz=gz)
    splits = data.load("fashionmnist", root=tmp_path)
    assert splits.sizes() == {"train": 18, "val": 2, "test": 10}  # the last 10% of train is validation
    assert splits.train.x.shape == (18, 1, 28, 28) and splits.train.x.dtype == torch.uint8
    assert splits.train.y.dtype == torch.int64
    # image i is filled with i: train holds rows 0..17 and validation the last rows 18, 19, in order
    assert splits.train.x[:, 0, 0, 0].tolist() == list(range(18))
    assert splits.val.x[:, 0, 0, 0].tolist() == [18, 19]
    assert splits.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert (splits.task, splits.num_classes, splits.num_outputs, splits.input_shape) == ("multiclass", 10, 10,
                                                                                        (1, 28, 28))
    x, _ = next(iter(splits.eval_batches("test")))
    assert torch.allclose(x, torch.full_like(x, (200 / 255 - 0.5) / 0.5))


def test_fashionmnist_warns_when_content_is_not_official(tmp_path):
    write_fashion(tmp_path)
    with pytest.warns(ChecksumMismatchWarning, match=r"train-images-idx3-ubyte.gz \(decompressed\): sha256 .* "
                                                     r"does not match the official sha256 c59f468a"):
        data.load("fashionmnist", root=tmp_path)


def test_fashionmnist_missing_files_name_them_and_the_command(tmp_path):
    write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError) as info:
        data.load("fashionmnist", root=tmp_path)
    message = str(info.value)
    assert "missing t10k-labels-idx1-ubyte.gz;" in message  # that one alone (issue #21.13)
    assert f"dstbench data download fashionmnist --root {tmp_path}" in message


def test_fashionmnist_missing_file_in_a_subfolder_is_named_alone(tmp_path):
    write_fashion(tmp_path / "fashion-mnist", gz=False)
    (tmp_path / "fashion-mnist" / "train-images-idx3-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match=r"missing fashion-mnist/train-images-idx3-ubyte.gz; get them"):
        data.load("fashionmnist", root=tmp_path)


def test_fashionmnist_corrupt_file_is_named(tmp_path):
    write_fashion(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x14" + bytes(5)))
    with pytest.raises(DataFormatError, match=r"train-labels-idx1-ubyte.gz: IDX size mismatch"):
        data.load("fashionmnist", root=tmp_path)


def test_fashionmnist_disagreeing_counts_are_an_error(tmp_path):
    write_fashion(tmp_path)
    write_fashion(tmp_path / "other", n_train=12)
    (tmp_path / "other" / "train-labels-idx1-ubyte.gz").replace(tmp_path / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DataFormatError, match="FashionMNIST train files disagree"):
        data.load("fashionmnist", root=tmp_path)


@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar10_from_folder_or_archive(tmp_path, as_tar):
    write_cifar10(tmp_path, per_batch=4, as_tar=as_tar)
    splits = data.load("cifar10", root=tmp_path)
    assert splits.sizes() == {"train": 18, "val": 2, "test": 4}
    assert splits.train.x.shape == (18, 3, 32, 32) and splits.train.x.dtype == torch.uint8
    # batches are concatenated in order; validation = the last training images (rows 18, 19)
    assert splits.train.x[:, 0, 0, 0].tolist() == list(range(18))
    assert splits.val.x[:, 0, 0, 0].tolist() == [18, 19]
    assert splits.val.y.tolist() == [8, 9]
    assert splits.test.x[:, 0, 0, 0].tolist() == [100, 101, 102, 103]
    assert splits.classes == tuple(f"c{i}" for i in range(10))
    # the paper's code: its constants and crops from reflect-padded images
    assert splits.augmentation == data.Augmentation(crop_padding=4, hflip=True, padding_mode="reflect")
    assert splits.mean == (0.4914, 0.4822, 0.4465) and splits.std == (0.2023, 0.1994, 0.2010)


def test_cifar_exact_preprocessing_uses_own_statistics_and_zero_padding(tmp_path):
    write_cifar10(tmp_path, per_batch=4)
    splits = data.load("cifar10", root=tmp_path, preprocessing="exact")
    assert splits.augmentation == data.Augmentation(crop_padding=4, hflip=True, padding_mode="zero")
    # the training split's own statistics: pixel values 0..17 / 255, the same in every channel
    values = np.arange(18) / 255
    assert splits.mean == pytest.approx((values.mean(),) * 3)
    assert splits.std == pytest.approx((values.std(),) * 3)
    with pytest.raises(ValueError, match=r"preprocessing 'own'; valid: paper, exact"):
        data.load("cifar10", root=tmp_path, preprocessing="own")


def test_cifar10_local_copy_warns_with_both_sums(tmp_path):
    write_cifar10(tmp_path, as_tar=True)
    with pytest.warns(ChecksumMismatchWarning, match=r"cifar-10-python.tar.gz: md5 [0-9a-f]{32} does not match "
                                                     r"the official md5 c58f30108f718f92721af3b95e74349a"):
        data.load("cifar10", root=tmp_path)


def test_an_unofficial_cifar10_folder_warns_once_per_process_naming_one_file_and_counting_the_rest(tmp_path):
    write_cifar10(tmp_path, as_tar=False)  # seven files, none official
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data.load("cifar10", root=tmp_path)
        data.load("cifar10", root=tmp_path)  # every run a worker trains loads it again
    messages = [str(w.message) for w in caught if issubclass(w.category, ChecksumMismatchWarning)]
    assert len(messages) == 1, messages
    assert "batches.meta: md5 " in messages[0] and "(and 6 more of its files)" in messages[0]
    assert "dstbench data download cifar10" in messages[0]


def test_cifar10_is_parsed_once_then_read_from_the_cache(tmp_path, monkeypatch):
    write_cifar10(tmp_path, as_tar=True)
    first = data.load("cifar10", root=tmp_path)
    assert list((tmp_path / ".dstbench-cache").iterdir())  # next to the data, since that folder is writable

    def no_parsing(*args):
        raise AssertionError("parsed again despite the cache")

    monkeypatch.setattr(vision, "_parse_cifar", no_parsing)
    monkeypatch.setattr(checksums, "_WARNED", set())  # forget the first load's warning: a new process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = data.load("cifar10", root=tmp_path)
    assert any(issubclass(w.category, ChecksumMismatchWarning) for w in caught)  # still verified
    assert torch.equal(first.train.x, again.train.x) and torch.equal(first.test.y, again.test.y)


def test_cifar10_cache_follows_the_source(tmp_path):
    write_cifar10(tmp_path, as_tar=True)
    data.load("cifar10", root=tmp_path)
    (tmp_path / "cifar-10-python.tar.gz").unlink()
    write_cifar10(tmp_path, per_batch=6, as_tar=True)
    assert len(data.load("cifar10", root=tmp_path).train) == 27


def test_cifar10_read_only_folder_caches_in_the_user_cache(tmp_path, monkeypatch):
    source = tmp_path / "readonly"
    write_cifar10(source, as_tar=True)
    source.chmod(0o555)
    try:
        data.load("cifar10", root=source)
        assert not (source / ".dstbench-cache").exists()
        assert any((tmp_path / "user-cache").iterdir())
    finally:
        source.chmod(0o755)


def test_cifar100_uses_fine_labels(tmp_path):
    write_cifar100(tmp_path, n_train=20, n_test=5)
    splits = data.load("cifar100", root=tmp_path)
    assert splits.sizes() == {"train": 18, "val": 2, "test": 5}
    assert splits.num_classes == 100 and splits.test.y.tolist() == [99] * 5
    assert splits.train.y.tolist() == [i * 5 % 100 for i in range(18)]
    # the paper's code: CIFAR-100's published statistics and zero padding
    assert splits.augmentation == data.Augmentation(crop_padding=4, hflip=True, padding_mode="zero")
    assert splits.mean == pytest.approx((0.50708, 0.48655, 0.44092), abs=1e-5)
    assert splits.std == pytest.approx((0.26733, 0.25644, 0.27615), abs=1e-5)


def test_fashionmnist_exact_preprocessing_uses_own_statistics(tmp_path):
    write_fashion(tmp_path, n_train=20, n_test=10)  # image i is filled with i
    splits = data.load("fashionmnist", root=tmp_path, preprocessing="exact")
    values = np.arange(18) / 255
    assert splits.mean == pytest.approx((values.mean(),)) and splits.std == pytest.approx((values.std(),))


def test_paper_cifar10_preprocessing_on_a_hand_made_image(tmp_path):
    """One 32x32 image with pixel (c, i, j) = 10 c + 7 i + j, cropped at offset (0, 0) of the 4-pixel padded
    image (the output's top-left is padded pixel (-4, -4)), not flipped, then normalised with the paper's
    constants: reflect padding mirrors row -4 to row 4 and column -4 to column 4, without repeating the edge."""
    from dstbench.data.augment import BatchAugmenter

    write_cifar10(tmp_path, per_batch=4)
    splits = data.load("cifar10", root=tmp_path)
    c, i, j = torch.meshgrid(torch.arange(3), torch.arange(32), torch.arange(32), indexing="ij")
    image = (10 * c + 7 * i + j).to(torch.uint8).unsqueeze(0)
    augmenter = BatchAugmenter(splits.augmentation, (3, 32, 32), torch.device("cpu"))
    out = augmenter(augmenter.source(image), torch.tensor([0]))[0]  # row 0: offset (0, 0), no flip
    # output (i, j) = input (|i - 4|, |j - 4|) for i, j < 4; e.g. (0, 0) <- (4, 4), (0, 5) <- (4, 1)
    assert out[0, 0, 0] == 7 * 4 + 4 and out[0, 0, 5] == 7 * 4 + 1 and out[1, 3, 2] == 10 + 7 * 1 + 2
    assert out[2, 9, 9] == 20 + 7 * 5 + 5  # inside: shifted by 4
    flipped = augmenter(augmenter.source(image), torch.tensor([1]))[0]  # same offset, flipped
    assert flipped[0, 0, 31] == 7 * 4 + 4
    normalise = data.Batches(out.unsqueeze(0), torch.zeros(1, dtype=torch.long), 1, shuffle=False,
                             mean=splits.mean, std=splits.std, pixel_scale=255.0)
    x, _ = next(iter(normalise))
    # pixel (0, 0, 0) = 32: (32 / 255 - 0.4914) / 0.2023; pixel (2, 9, 9) = 60: (60 / 255 - 0.4465) / 0.2010
    assert x[0, 0, 0, 0].item() == pytest.approx(-1.808748, abs=1e-5)
    assert x[0, 2, 9, 9].item() == pytest.approx(-1.050774, abs=1e-5)


def test_cifar_missing_files_name_them(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"cifar10: data not found under .*: missing cifar-10-python.tar.gz "
                                                r"\(or cifar-10-batches-py/ with data_batch_1"):
        data.load("cifar10", root=tmp_path)


def test_cifar_truncated_archive_is_named(tmp_path):
    archive = write_cifar10(tmp_path, as_tar=True)
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataFormatError, match=r"cifar-10-python.tar.gz: corrupt or truncated archive"):
        data.load("cifar10", root=tmp_path)


def test_cifar_batch_that_is_not_a_batch_is_named(tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_3").write_bytes(b"\x80\x02]q\x00.")  # an empty list
    with pytest.raises(DataFormatError, match=r"data_batch_3: not a CIFAR batch"):
        data.load("cifar10", root=tmp_path, cache=False)


def test_cifar_labels_out_of_range_are_an_error(tmp_path):
    from .formats import cifar_batch_bytes

    folder = write_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(cifar_batch_bytes(cifar_images(2), [3, 10]))
    with pytest.raises(DataFormatError, match=r"test labels outside 0..9"):
        data.load("cifar10", root=tmp_path)
