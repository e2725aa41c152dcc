"""The sparse weights format: exact round trips, files that shrink with density, and the earlier dense files."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dstbench import store
from dstbench.errors import UserError
from dstbench.weights import encode, read_final_weights, read_weights, save_weights

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def bits(t: torch.Tensor) -> torch.Tensor:
    """The bit pattern of `t` (for bit-for-bit comparisons, which torch.equal is not for -0.0 or NaN)."""
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4), density=st.floats(0.0, 1.0),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31 - 1))
def test_masked_weights_round_trip_exactly(tmp_path_factory, shape, density, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=g).to(dtype)
    mask = torch.rand(shape, generator=g) < density
    weight = weight * mask  # what masking leaves: inactive entries 0.0 or -0.0
    state = {"layer.weight": weight, "layer.bias": torch.randn(shape[0], generator=g).to(dtype),
             "norm.num_batches_tracked": torch.tensor(seed, dtype=torch.int64)}
    path = tmp_path_factory.mktemp("w") / "model.npz"
    save_weights(path, state, {"layer.weight": mask})
    back = read_weights(path)
    assert list(back) == list(state)
    for name, value in state.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape
        assert torch.equal(back[name], value)
    active = bits(back["layer.weight"])[mask]
    assert torch.equal(active, bits(weight)[mask])  # every active entry bit for bit (zeros and signs included)
    assert not bits(back["layer.weight"])[~mask].any()  # inactive entries come back as +0.0
    assert torch.equal(bits(back["layer.bias"]), bits(state["layer.bias"]))


def test_the_file_shrinks_with_density():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(256, 256, generator=g)
    dense = len(encode({"w": weight}))
    sizes = {}
    for density in (0.5, 0.2, 0.1, 0.05):
        mask = torch.rand(256, 256, generator=g) < density
        sizes[density] = len(encode({"w": weight * mask}, {"w": mask}))
    # values (4 bytes each) plus one bit per weight, against 4 bytes per weight
    for density, size in sizes.items():
        assert size < (density + 1 / 32) * dense * 1.02 + 2000
    assert sizes[0.5] > sizes[0.2] > sizes[0.1] > sizes[0.05]


def test_weights_outside_the_mask_are_refused():
    mask = torch.tensor([True, False])
    with pytest.raises(ValueError, match="non-zero weights outside its mask"):
        encode({"w": torch.tensor([1.0, 2.0])}, {"w": mask})
    with pytest.raises(ValueError, match="shape"):
        encode({"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([True])})
    with pytest.raises(ValueError, match="does not hold"):
        encode({"w": torch.tensor([1.0, 0.0])}, {"v": mask})


def test_a_full_mask_stores_the_weight_dense():
    weight = torch.arange(6.0).reshape(2, 3)
    with_full_mask = encode({"w": weight}, {"w": torch.ones(2, 3, dtype=torch.bool)})
    assert len(with_full_mask) == len(encode({"w": weight}))


def test_earlier_dense_model_files_and_plain_state_dicts_still_load(tmp_path):
    run = tmp_path / "old_run"
    run.mkdir()
    state = {"fc.weight": torch.randn(3, 4), "fc.bias": torch.zeros(3)}
    torch.save(state, run / store.LEGACY_FINAL_MODEL)
    back = read_final_weights(run)
    assert all(torch.equal(back[k], state[k]) for k in state)
    save_weights(run / store.FINAL_MODEL, {k: v + 1 for k, v in state.items()})  # the new file wins
    assert torch.equal(read_final_weights(run)["fc.bias"], torch.ones(3))


def test_unreadable_and_missing_weights_say_what_to_do(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot read weights"):
        read_weights(bad)
    with pytest.raises(UserError, match="is the run finished"):
        read_final_weights(tmp_path / "nothing")


def test_the_archive_is_plain_numpy(tmp_path):
    """Readable without dstbench or pickle: values, packed mask bits and the dtype's name."""
    weight = torch.tensor([[0.0, 1.5], [-2.0, 0.0]])
    mask = weight != 0
    save_weights(tmp_path / "m.npz", {"w": weight}, {"w": mask})
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert data["values|w"].tolist() == [1.5, -2.0]
        assert np.unpackbits(data["mask|w"], count=4).tolist() == [0, 1, 1, 0]
        assert str(data["dtype|w"]) == "torch.float32"


def test_init_from_reads_a_run_folder_its_sparse_file_and_an_earlier_dense_file(tmp_path):
    from dstbench.train.checkpoint import load_pretrained

    source = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    mask = torch.tensor([[True, False, True, False]] * 3)
    with torch.no_grad():
        source[0].weight.mul_(mask)
    (tmp_path / "new").mkdir()
    save_weights(tmp_path / "new" / store.FINAL_MODEL, source.state_dict(), {"0.weight": mask})
    (tmp_path / "old").mkdir()
    torch.save(source.state_dict(), tmp_path / "old" / store.LEGACY_FINAL_MODEL)
    for path in (tmp_path / "new", tmp_path / "new" / store.FINAL_MODEL, tmp_path / "old"):
        target = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
        assert load_pretrained(target, path) == []
        assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), source.state_dict().values(),
                                                     strict=True))
