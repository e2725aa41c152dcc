"""The feed (`dstbench.train.feed`): K streams' batches formed together on the device are each stream's own
batches, bit for bit, epoch after epoch (shuffled, augmented, normalised, channels_last, the last partial batch),
and the streams stand where iterating them would have left them."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dstbench.data.augment import Augmentation
from dstbench.data.batches import Batches
from dstbench.train.feed import Feed

from .host_syncs import HOST_SYNCS, OpRecorder


def _streams(seeds, samples, batch_size, augmentation, channels_last=False, drop_last=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (samples, 3, 6, 6), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (samples,), generator=g)
    return [Batches(x, y, batch_size, augmentation=augmentation, seed=seed, mean=(0.5, 0.4, 0.3),
                    std=(0.2, 0.25, 0.3), pixel_scale=255.0, channels_last=channels_last, drop_last=drop_last)
            for seed in seeds]


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 4), samples=st.integers(5, 40), batch_size=st.integers(1, 12),
       crop=st.sampled_from([0, 2]), hflip=st.booleans(), channels_last=st.booleans(), drop_last=st.booleans(),
       epochs=st.integers(1, 3), by_cursor=st.booleans())
def test_fed_batches_are_each_streams_own(size, samples, batch_size, crop, hflip, channels_last, drop_last, epochs,
                                          by_cursor):
    if drop_last and samples < batch_size:
        return
    augmentation = Augmentation(crop_padding=crop, hflip=hflip)
    seeds = [7 * k + 1 for k in range(size)]
    fed = _streams(seeds, samples, batch_size, augmentation, channels_last, drop_last)
    own = _streams(seeds, samples, batch_size, augmentation, channels_last, drop_last)
    feed = Feed(fed, torch.device("cpu"))
    feed.by_cursor = by_cursor  # a captured step's device counter, or the host's count
    assert Feed.fits(fed)
    for _ in range(epochs):
        expected = list(zip(*own, strict=True))
        for batches in expected:
            feed.ready()
            assert feed.full_next == (batches[0][1].numel() == batch_size)
            xs, ys = feed.take()
            feed.taken()
            for (x, y), fx, fy in zip(batches, xs, ys, strict=True):
                assert torch.equal(fx, x) and torch.equal(fy, y)
                assert fx.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert feed.index == feed.steps
        assert [s.state_dict() for s in fed] == [s.state_dict() for s in own]


def test_streams_of_other_shapes_are_not_fed_together():
    a = _streams([0], 20, 4, None)
    assert not Feed.fits(a + _streams([1], 20, 5, None))
    assert not Feed.fits(a + _streams([1], 21, 4, None))
    assert not Feed.fits(a + _streams([1], 20, 4, Augmentation(hflip=True)))
    assert not Feed.fits([object()])


def test_a_feed_resumes_at_its_streams_batch():
    """A stream restored mid-epoch (an older checkpoint) is fed from its batch on, as iterating it would."""
    fed, own = _streams([3, 4], 30, 4, Augmentation(crop_padding=2)), _streams([3, 4], 30, 4, Augmentation(crop_padding=2))
    state = {"seed": 3, "epoch": 1, "batch": 5, "num_samples": 30, "batch_size": 4, "drop_last": False}
    for streams in (fed, own):
        for k, s in enumerate(streams):
            s.load_state_dict({**state, "seed": 3 + k})
    feed = Feed(fed, torch.device("cpu"))
    for batches in zip(*own, strict=True):
        xs, ys = feed.take()
        feed.taken()
        assert all(torch.equal(fx, x) and torch.equal(fy, y) for (x, y), fx, fy in zip(batches, xs, ys, strict=True))
    assert feed.index == feed.steps == 8
    assert [s.state_dict() for s in fed] == [s.state_dict() for s in own]


@pytest.mark.parametrize("samples,batch_size,full,steps", [(30, 4, 7, 8), (32, 4, 8, 8), (3, 4, 0, 1)])
def test_full_and_partial_batches_are_counted(samples, batch_size, full, steps):
    feed = Feed(_streams([0], samples, batch_size, None), torch.device("cpu"))
    assert (feed.full, feed.steps) == (full, steps)


@pytest.mark.parametrize("padding_mode", ["zero", "reflect"])
def test_a_gather_by_the_device_counter_reads_nothing_back(padding_mode):
    """What a captured step's feed dispatches (crop, flip, normalise, channels_last) has no value read back from the
    device and no shape that depends on the data: every aten operation is recorded."""
    feed = Feed(_streams([0, 1, 2], 50, 8, Augmentation(crop_padding=2, hflip=True, padding_mode=padding_mode),
                         channels_last=True), torch.device("cpu"))
    feed.by_cursor = True
    feed.ready()
    with OpRecorder() as recorder:
        feed.take()
    assert {"index_select", "gather"} <= recorder.ops
    assert not recorder.ops & HOST_SYNCS
