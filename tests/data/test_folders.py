import numpy as np
import pytest
import torch

import dstbench.data as data
from dstbench.data.errors import DataFormatError, DataNotFoundError
from dstbench.data.images import eval_transform, random_resized_box, train_transform

from .formats import write_imagenet, write_jpeg, write_tiny_imagenet


def test_tinyimagenet_splits_labels_and_flips_only(tmp_path):
    write_tiny_imagenet(tmp_path, classes=3, per_class=10, val_per_class=2)
    splits = data.load("tinyimagenet", root=tmp_path, workers=1)
    assert splits.sizes() == {"train": 27, "val": 3, "test": 6}  # a stratified 10% of train validates
    assert splits.train.x.shape == (27, 3, 64, 64) and splits.train.x.dtype == torch.uint8
    assert torch.bincount(splits.val.y).tolist() == [1, 1, 1]
    assert splits.test.y.tolist() == [0, 0, 1, 1, 2, 2]
    assert splits.classes == ("n00000", "n00001", "n00002")
    assert splits.augmentation == data.Augmentation(hflip=True)
    # the paper's code normalises with ImageNet's statistics; "exact" with the training split's own
    assert splits.mean == (0.485, 0.456, 0.406) and splits.std == (0.229, 0.224, 0.225)
    exact = data.load("tinyimagenet", root=tmp_path, workers=1, preprocessing="exact")
    assert exact.mean[0] == pytest.approx(splits.train.x[:, 0].double().mean().item() / 255)
    # the red channel encodes the class (80 * c), up to JPEG error
    red = splits.train.x[:, 0].float().mean(dim=(1, 2))
    torch.testing.assert_close(red, 80 * splits.train.y.float(), atol=3, rtol=0)
    # validation and training images are different files
    train_green = set(splits.train.x[:, 1, 0, 0].tolist())
    assert len(train_green) >= 9


def test_tinyimagenet_second_load_uses_the_cache(tmp_path, monkeypatch):
    folder = write_tiny_imagenet(tmp_path, classes=2, per_class=10, val_per_class=1)
    first = data.load("tinyimagenet", root=tmp_path)
    assert (folder / ".dstbench-cache").is_dir()
    monkeypatch.setattr("dstbench.data.folders.decode_fixed_size", lambda *a: pytest.fail("decoded twice"))
    assert torch.equal(data.load("tinyimagenet", root=tmp_path).train.x, first.train.x)


def test_tinyimagenet_wrong_image_size_and_bad_annotation_are_named(tmp_path):
    folder = write_tiny_imagenet(tmp_path, classes=2, per_class=10, val_per_class=1)
    write_jpeg(folder / "train" / "n00001" / "images" / "n00001_3.JPEG", (0, 0, 0), (32, 64))
    with pytest.raises(DataFormatError, match=r"n00001_3.JPEG: image is 32x64, expected 64x64"):
        data.load("tinyimagenet", root=tmp_path, cache=False)
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999\t0\t0\t1\t1\n")
    with pytest.raises(DataFormatError, match=r"val_annotations.txt:1: expected 'file<TAB>wnid"):
        data.load("tinyimagenet", root=tmp_path, cache=False)


def test_tinyimagenet_missing_folder(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"tiny-imagenet-200/val/val_annotations.txt.*dstbench data download "
                                                r"tinyimagenet"):
        data.load("tinyimagenet", root=tmp_path)


def test_corrupt_jpeg_is_named(tmp_path):
    folder = write_tiny_imagenet(tmp_path, classes=2, per_class=10, val_per_class=1)
    (folder / "val" / "images" / "val_1.JPEG").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataFormatError, match=r"val_1.JPEG: not a readable image"):
        data.load("tinyimagenet", root=tmp_path, cache=False)


def _imagenet(tmp_path):
    write_imagenet(tmp_path, classes=2, per_class=3)
    return data.load("imagenet", root=tmp_path, image_size=16, resize=20)


def test_imagenet_streams_augmented_train_and_centre_cropped_val(tmp_path):
    splits = _imagenet(tmp_path)
    assert splits.sizes() == {"train": 6, "val": 4, "test": 4} and splits.test is splits.val
    assert splits.input_shape == (3, 16, 16) and splits.classes == ("n10000", "n10001")
    train = splits.batches("train", 4, seed=0, num_workers=0)
    batches = list(train)
    assert [x.shape for x, _ in batches] == [(4, 3, 16, 16), (2, 3, 16, 16)]
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == [0, 0, 0, 1, 1, 1]
    x, y = next(iter(splits.eval_batches("val", num_workers=0)))
    assert y.tolist() == [0, 0, 1, 1] and x.dtype == torch.float32
    # solid-colour images: every pixel of the centre crop is the colour, normalised with ImageNet's statistics
    mean, std = torch.tensor(splits.mean).view(3, 1, 1), torch.tensor(splits.std).view(3, 1, 1)
    expected = (torch.tensor([0.0, 50.0, 0.0]).view(3, 1, 1) / 255 - mean) / std
    torch.testing.assert_close(x[0], expected.expand(3, 16, 16), atol=0.05, rtol=0)


def test_imagenet_stream_is_deterministic_and_resumable(tmp_path):
    splits = _imagenet(tmp_path)

    def run(batches, epochs=2):
        return [(x.clone(), y.clone()) for _ in range(epochs) for x, y in batches]

    reference = run(splits.batches("train", 2, seed=4, num_workers=0))
    again = run(splits.batches("train", 2, seed=4, num_workers=0))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(reference, again, strict=True))
    stream = splits.batches("train", 2, seed=4, num_workers=0)
    next(iter(stream))
    resumed = splits.batches("train", 2, seed=4, num_workers=0)
    resumed.load_state_dict(stream.state_dict())
    for (x, y), (ex, ey) in zip(run(resumed), reference[1:], strict=True):
        assert torch.equal(x, ex) and torch.equal(y, ey)


def test_imagenet_stream_does_not_depend_on_workers(tmp_path):
    splits = _imagenet(tmp_path)
    alone = [x for x, _ in splits.batches("train", 2, seed=1, num_workers=0)]
    shared = [x for x, _ in splits.batches("train", 2, seed=1, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(alone, shared, strict=True))


def test_imagenet_flat_val_folder_is_explained(tmp_path):
    write_imagenet(tmp_path)
    write_jpeg(tmp_path / "imagenet" / "val" / "stray" / "ILSVRC2012_val_00000001.JPEG", (0, 0, 0))
    with pytest.raises(DataFormatError, match=r"val/ must be sorted into one folder per class"):
        data.load("imagenet", root=tmp_path)


def test_random_resized_box_stays_inside_and_respects_the_ranges():
    rng = np.random.default_rng(0)
    for _ in range(200):
        width, height = rng.integers(10, 300, size=2)
        left, top, w, h = random_resized_box(int(width), int(height), rng)
        assert 0 <= left and left + w <= width and 0 <= top and top + h <= height and w > 0 and h > 0
    # an extreme aspect ratio falls back to the largest centred crop within the ratio range
    assert random_resized_box(400, 10, np.random.default_rng(0), scale=(0.99, 1.0)) == (193, 0, 13, 10)


def test_transforms_output_size(tmp_path):
    from PIL import Image

    image = Image.new("RGB", (50, 30), (10, 20, 30))
    assert train_transform(image, 24, np.random.default_rng(0)).shape == (3, 24, 24)
    out = eval_transform(image, 24, 28)
    assert out.shape == (3, 24, 24) and out.dtype == np.uint8 and (out[:, 0, 0] == [10, 20, 30]).all()
