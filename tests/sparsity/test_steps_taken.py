"""`DST.next_update` and `DST.steps_taken`: a driver may let an engine skip the steps that update nothing and take
them at once (the one trainer visits a member's engine only at its updates, probes and snapshots)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dstbench.sparsity import DST

from .helpers import mlp


def _engine(period, end_step=None, total_steps=100):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return DST(model, opt, density=0.3, update_period=period, total_steps=total_steps, end_step=end_step)


def test_next_update_is_the_next_multiple_of_the_period_up_to_the_end():
    dst = _engine(10, end_step=35)
    assert [dst.next_update(s) for s in (0, 9, 10, 19, 29, 30, 35)] == [10, 10, 20, 20, 30, None, None]
    assert _engine(0).next_update(0) is None  # static: never


def test_steps_taken_refuses_to_skip_an_update():
    dst = _engine(10)
    dst.steps_taken(9)
    assert dst.steps == 9 and dst.update_due()
    with pytest.raises(RuntimeError, match="the next update"):
        dst.steps_taken(1)
    with pytest.raises(RuntimeError):
        _engine(10).steps_taken(-1)


@settings(max_examples=40, deadline=None)
@given(period=st.integers(0, 12), end_step=st.integers(1, 60), start=st.integers(0, 40), count=st.integers(0, 30))
def test_steps_taken_at_once_equals_one_by_one(period, end_step, start, count):
    """Between updates, `steps_taken(n)` leaves the engine as n calls of `step_taken()` do."""
    one, many = _engine(period, end_step=end_step), _engine(period, end_step=end_step)
    update = one.next_update(start)
    if update is not None and update <= start + count:
        count = update - start - 1  # up to the step before the update
    for dst in (one, many):
        dst.steps = start
        dst._update_next = dst.update_due()
    for _ in range(count):
        one.step_taken()
    many.steps_taken(count)
    assert (many.steps, many.update_due()) == (one.steps, one.update_due())
    assert many.state_dict()["steps"] == one.state_dict()["steps"] == start + count
