import dataclasses

import pytest
import torch

from dstbench import DST, SparsityConfig

from .helpers import mlp


def test_dst_takes_a_config_or_its_fields_as_keywords():
    config = SparsityConfig(density=0.3, prune="snip", update_period=4, total_steps=40, seed=2)
    a = DST(mlp(), torch.optim.SGD(mlp().parameters(), lr=0.1), config)
    b = DST(mlp(), torch.optim.SGD(mlp().parameters(), lr=0.1), **dataclasses.asdict(config))
    assert a.config == b.config == config
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
    c = DST(mlp(), torch.optim.SGD(mlp().parameters(), lr=0.1), config, density=0.5)
    assert c.config == dataclasses.replace(config, density=0.5) and c.density() == pytest.approx(0.5, abs=0.02)


def test_config_is_validated_when_made():
    with pytest.raises(ValueError, match=r"density = 0.0: must be > 0.0 and <= 1.0"):
        SparsityConfig(density=0.0)
    with pytest.raises(ValueError, match="total_steps"):
        SparsityConfig(density=0.5, update_period=10)
    assert SparsityConfig(density=1.0).updates is False  # dense by default: no schedule needed
    assert SparsityConfig(density=1.0).update_period == 0 and SparsityConfig(density=0.5, total_steps=9).update_period == 800
    with pytest.raises(ValueError, match="total_steps"):  # DST at density 1.0 is DST: it needs its schedule
        SparsityConfig(density=1.0, update_period=10)
    assert SparsityConfig(density=0.5, update_period=0).updates is False  # static
    assert SparsityConfig(density=0.5, total_steps=100, end_step=30).last_update_step == 30
    with pytest.raises(TypeError, match="update_perod"):
        DST(mlp(), torch.optim.SGD(mlp().parameters(), lr=0.1), density=0.5, update_perod=3)
