import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dstbench.data import ArraySplit, Augmentation, Batches
from dstbench.data.augment import BatchAugmenter, crop_flip_batch, crop_flip_table, with_sentinel


def _ids(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples that carry their own index: x[i] = i (as float features), y[i] = i."""
    return torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n)


def _epoch(batches: Batches) -> list[torch.Tensor]:
    return [y.clone() for _, y in batches]


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (12, 4, False, [4, 4, 4]), (5, 8, False, [5]),
])
def test_batch_sizes_and_drop_last(n, batch_size, drop_last, sizes):
    batches = Batches(*_ids(n), batch_size, seed=1, drop_last=drop_last)
    assert [len(y) for y in _epoch(batches)] == sizes and len(batches) == len(sizes)


def test_every_index_once_per_epoch():
    batches = Batches(*_ids(10), 3, seed=1)
    for _ in range(3):
        assert sorted(torch.cat(_epoch(batches)).tolist()) == list(range(10))


def test_x_and_y_stay_paired_and_epochs_reshuffle():
    batches = Batches(*_ids(50), 7, seed=3)
    first = []
    for x, y in batches:
        assert torch.equal(x[:, 0].long(), y)
        first.append(y)
    second = _epoch(batches)
    assert not torch.equal(torch.cat(first), torch.cat(second))
    assert batches.state_dict()["epoch"] == 2


def test_same_seed_same_stream_other_seed_other_stream():
    def stream(seed):
        b = Batches(*_ids(40), 8, seed=seed)
        return torch.cat(_epoch(b) + _epoch(b))

    assert torch.equal(stream(5), stream(5))
    assert not torch.equal(stream(5), stream(6))


def _images(n=30):
    return torch.randint(0, 256, (n, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def _augmented(seed=0, **kw):
    return Batches(_images(), torch.arange(30), 4, seed=seed, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4),
                   pixel_scale=255.0, augmentation=Augmentation(crop_padding=2, hflip=True), **kw)


def test_resume_mid_epoch_gives_the_same_later_batches():
    reference = _augmented()
    expected = [(x.clone(), y.clone()) for _ in range(2) for x, y in reference]
    original = _augmented()
    stream = iter(original)
    for _ in range(3):
        next(stream)
    state = original.state_dict()
    assert state["epoch"] == 0 and state["batch"] == 3
    resumed = _augmented(seed=99)  # the seed comes from the state
    resumed.load_state_dict(state)
    got = [(x, y) for x, y in resumed] + [(x, y) for x, y in resumed]
    assert len(got) == len(expected) - 3
    for (gx, gy), (ex, ey) in zip(got, expected[3:], strict=True):
        assert torch.equal(gx, ex) and torch.equal(gy, ey)


def test_an_abandoned_epoch_continues_where_it_stopped():
    batches = _augmented()
    reference = [y for _, y in _augmented()]
    assert torch.equal(next(iter(batches))[1], reference[0])
    assert torch.equal(next(iter(batches))[1], reference[1])
    assert len([y for _, y in batches]) == len(reference) - 2


def test_resume_refuses_a_different_stream():
    state = _augmented().state_dict()
    other = Batches(_images(), torch.arange(30), 5)
    with pytest.raises(ValueError, match="saved batch_size=4 but this stream has 5"):
        other.load_state_dict(state)


def test_eval_order_no_augmentation_and_normalisation():
    x = _images()
    batches = Batches(x, torch.arange(30), 16, shuffle=False, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4),
                      pixel_scale=255.0)
    out = torch.cat([b for b, _ in batches])
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, (x.float() / 255 - mean) / std)
    assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(30))
    assert x.dtype == torch.uint8  # the data set itself is not converted


def test_channels_last_output():
    x, _ = next(iter(_augmented(channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last) and x.shape == (4, 3, 8, 8)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="batch_size must be positive"):
        Batches(*_ids(3), 0)
    with pytest.raises(ValueError, match="x has 3 samples but y has 2"):
        Batches(torch.zeros(3, 1), torch.zeros(2), 1)


def move_ids(offsets, flip, padding):
    """The table row of each (dy, dx) offset and flip, as `crop_flip_table` documents its layout."""
    return (offsets[:, 0] * (2 * padding + 1) + offsets[:, 1]) * 2 + flip.long()


def _crop_flip(x, padding, offsets, flip):
    table = crop_flip_table(x.shape[2], x.shape[3], padding)
    return crop_flip_batch(with_sentinel(x), table, move_ids(offsets, flip, padding), tuple(x.shape[1:]))


def test_sentinel_layout_appends_one_zero_per_channel():
    x = torch.arange(1, 9, dtype=torch.uint8).view(1, 2, 2, 2)
    assert with_sentinel(x).tolist() == [[[1, 2, 3, 4, 0], [5, 6, 7, 8, 0]]]


def test_crop_offsets_and_flip_by_hand():
    x = torch.arange(1, 10, dtype=torch.uint8).view(1, 1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]
    # padding 1, offset (0, 0): the window starts at the padded corner
    out = _crop_flip(x, 1, torch.tensor([[0, 0]]), torch.tensor([False]))
    assert out[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    # offset (2, 1), then mirrored
    out = _crop_flip(x, 1, torch.tensor([[2, 1]]), torch.tensor([True]))
    assert out[0, 0].tolist() == [[6, 5, 4], [9, 8, 7], [0, 0, 0]]
    # offset (padding, padding) without flip is the identity; with flip, the mirror image
    assert torch.equal(_crop_flip(x, 1, torch.tensor([[1, 1]]), torch.tensor([False])), x)
    assert torch.equal(_crop_flip(x, 1, torch.tensor([[1, 1]]), torch.tensor([True])), x.flip(-1))


def test_the_table_has_one_row_per_move():
    table = crop_flip_table(3, 3, 1)
    assert table.shape == (2 * 9, 9) and int(table.max()) == 9 and int(table.min()) == 0
    centre = move_ids(torch.tensor([[1, 1]]), torch.tensor([False]), 1)
    assert table[centre].tolist() == [list(range(9))]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(0, 3),
       st.integers(0, 2**31 - 1))
def test_crop_flip_matches_a_per_sample_reference(b, c, h, w, padding, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, c, h, w), generator=g, dtype=torch.uint8)
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=g)
    flip = torch.rand(b, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    out = _crop_flip(x, padding, offsets, flip)
    for i in range(b):
        dy, dx = offsets[i].tolist()
        window = padded[i, :, dy:dy + h, dx:dx + w]
        assert torch.equal(out[i], window.flip(-1) if flip[i] else window)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(2, 6), st.integers(2, 6), st.integers(0, 5),
       st.integers(0, 2**31 - 1))
def test_reflect_crop_flip_matches_torch_reflect_padding(b, c, h, w, padding, seed):
    padding = min(padding, h - 1, w - 1)  # reflection needs the image to be larger than the padding
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, c, h, w), generator=g, dtype=torch.uint8)
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=g)
    flip = torch.rand(b, generator=g) < 0.5
    padded = torch.nn.functional.pad(x.float(), (padding,) * 4, mode="reflect").to(torch.uint8)
    table = crop_flip_table(h, w, padding, padding_mode="reflect")
    assert int(table.max()) < h * w  # never the sentinel: every pixel is a pixel of the image
    out = crop_flip_batch(x.flatten(2), table, move_ids(offsets, flip, padding), (c, h, w))
    for i in range(b):
        dy, dx = offsets[i].tolist()
        window = padded[i, :, dy:dy + h, dx:dx + w]
        assert torch.equal(out[i], window.flip(-1) if flip[i] else window)


def test_reflect_padding_needs_a_larger_image_and_a_known_mode():
    with pytest.raises(ValueError, match="reflect padding 4 needs images larger than it, got 4x8"):
        crop_flip_table(4, 8, 4, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"padding_mode 'edge'; valid: zero, reflect"):
        Augmentation(crop_padding=4, padding_mode="edge")


def test_augmentation_keeps_shape_and_padding_is_the_normalised_black():
    x = torch.full((64, 3, 8, 8), 255, dtype=torch.uint8)
    batches = Batches(x, torch.zeros(64, dtype=torch.long), 64, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4),
                      pixel_scale=255.0, augmentation=Augmentation(crop_padding=4, hflip=True))
    out, _ = next(iter(batches))
    assert out.shape == x.shape
    black = torch.tensor([-0.5 / 0.2, -0.4 / 0.3, -0.3 / 0.4]).view(1, 3, 1, 1)
    white = (1 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1)
    is_black = torch.isclose(out, black.expand_as(out))
    assert (is_black | torch.isclose(out, white.expand_as(out))).all()
    assert is_black.any() and not is_black.all()  # some samples were shifted into the padding


def test_flips_happen_about_half_the_time_and_are_mirrors():
    x = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4).expand(1000, 1, 1, 4).contiguous()
    augment = BatchAugmenter(Augmentation(hflip=True), (1, 1, 4), x.device)
    out = augment(augment.source(x), augment.draw(len(x), torch.Generator().manual_seed(0)))
    flipped = (out == x.flip(-1)).all(dim=(1, 2, 3))
    assert ((out == x).all(dim=(1, 2, 3)) | flipped).all()
    assert 400 < int(flipped.sum()) < 600


@pytest.mark.parametrize("hflip", [True, False])
def test_every_move_is_drawn_about_equally_often(hflip):
    # A 3x3 image of distinct pixels, padding 1: the output tells which of the 9 offsets (x 2 flips) was drawn.
    x = torch.arange(1, 10, dtype=torch.uint8).view(1, 1, 3, 3).expand(3600, 1, 3, 3).contiguous()
    augment = BatchAugmenter(Augmentation(crop_padding=1, hflip=hflip), (1, 3, 3), x.device)
    out = augment(augment.source(x), augment.draw(len(x), torch.Generator().manual_seed(0)))
    padded = torch.nn.functional.pad(x[0], (1, 1, 1, 1))
    windows = [padded[:, dy:dy + 3, dx:dx + 3] for dy in range(3) for dx in range(3)]
    moves = windows + [w.flip(-1) for w in windows]
    counts = [int((out == m).all(dim=(1, 2, 3)).sum()) for m in moves]
    assert sum(counts) == len(x)  # every output is one of the moves
    drawn = counts if hflip else counts[:9]
    expected = len(x) / len(drawn)
    assert all(0.75 * expected < c < 1.25 * expected for c in drawn), counts
    if not hflip:
        assert sum(counts[9:]) == 0


def test_augmenting_a_table_is_refused():
    with pytest.raises(ValueError, match=r"needs \(N, C, H, W\) images, got shape \(5, 1\)"):
        Batches(*_ids(5), 2, augmentation=Augmentation(hflip=True))


def test_a_split_is_copied_to_a_device_once():
    split = ArraySplit(*_ids(4))
    assert split.on("cpu")[0] is split.x and split.on(None)[1] is split.y
    first, again = split.on("meta"), split.on(torch.device("meta"))
    assert first[0] is again[0] and first[0].device.type == "meta"


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_evaluation_passes_never_change_the_data_set(dtype):
    # Unshuffled batches are views of the data; normalising them must not write through to it (a float data set
    # used to be standardised again at every evaluation pass).
    x = (torch.arange(40, dtype=torch.float32).reshape(10, 4) % 7).to(dtype)
    y = torch.zeros(10, dtype=torch.long)
    original = x.clone()
    batches = Batches(x, y, 4, shuffle=False, mean=[1.0] * 4, std=[2.0] * 4)
    first = [b.clone() for b, _ in batches]
    second = [b.clone() for b, _ in batches]
    assert torch.equal(x, original)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert torch.allclose(first[0], (original[:4].float() - 1.0) / 2.0)
