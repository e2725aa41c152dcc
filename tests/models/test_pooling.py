"""models.pooling.max_pool2x2 is F.max_pool2d(x, 2), bit for bit: values, argmax on ties and NaN, gradients."""

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dstbench.models.pooling import max_pool2x2


def _both(x, upstream):
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, theirs = max_pool2x2(a), F.max_pool2d(b, 2)
    ours.backward(upstream)
    theirs.backward(upstream)
    return ours, theirs, a.grad, b.grad


def _same(u, v):
    return u.shape == v.shape and u.dtype == v.dtype and torch.equal(u.nan_to_num(7.0), v.nan_to_num(7.0)) \
        and torch.equal(u.isnan(), v.isnan())


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 40), h=st.integers(2, 11), w=st.integers(2, 11),
       seed=st.integers(0, 2**31 - 1), specials=st.sampled_from(["none", "zeros", "nan", "-inf"]),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float64]))
def test_values_and_gradients_equal_max_pool2d_with_ties_nan_and_odd_sizes(n, c, h, w, seed, specials, dtype):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randint(-2, 3, (n, c, h, w), generator=g) / 2).to(dtype)  # values repeat: many ties
    if specials != "none":
        x[torch.rand(x.shape, generator=g) < 0.3] = {"zeros": 0.0, "nan": float("nan"), "-inf": float("-inf")}[specials]
    upstream = torch.randn((n, c, h // 2, w // 2), generator=g).to(dtype)
    ours, theirs, grad_ours, grad_theirs = _both(x, upstream)
    assert _same(ours, theirs) and ours.is_contiguous()
    assert _same(grad_ours, grad_theirs)


def test_a_window_of_equal_values_passes_its_gradient_to_the_first_as_pytorch_does():
    x = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]]])
    _, _, grad, expected = _both(x, torch.ones(1, 1, 1, 1))
    assert grad.tolist() == expected.tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


def test_unbatched_and_channels_last_inputs():
    x = torch.randn(3, 6, 6)
    assert torch.equal(max_pool2x2(x), F.max_pool2d(x, 2))
    x = torch.randn(2, 3, 6, 6).contiguous(memory_format=torch.channels_last)
    assert torch.equal(max_pool2x2(x), F.max_pool2d(x, 2))
