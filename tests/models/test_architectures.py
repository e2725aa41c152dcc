"""The eight architectures: pinned parameter counts, shapes, gradients, dropout and memory formats."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dstbench import models
from dstbench.models.efficientnet import stochastic_depth

torch.set_num_threads(1)

# The paper's data set shape for each model, at the smallest size that keeps the test fast.
SMALL_INPUTS = {
    "small_mlp": (24,),
    "large_mlp": (3, 32, 32),
    "small_cnn": (3, 32, 32),
    "lenet5_caffe": (1, 28, 28),
    "resnet56": (3, 32, 32),
    "vgg16_bn": (3, 32, 32),
    "efficientnet_b0": (3, 64, 64),
    "resnet50": (3, 32, 32),
}


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def sparse_weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))


def on_meta(name: str, **kw) -> nn.Module:
    # Counting parameters needs no memory or initialisation: build on the meta device.
    with torch.device("meta"):
        return models.build(name, **kw)


@pytest.mark.parametrize(
    ("name", "kw", "expected"),
    [
        # 24*256+256 + 256*256+256 + 256*1+1
        ("small_mlp", {}, 72_449),
        # 3072*1024+1024 + 1024*512+512 + 512*10+10
        ("large_mlp", {}, 3_676_682),
        # (27*32+32) + (288*64+64) + (576*128+128) + (128*10+10)
        ("small_cnn", {}, 94_538),
        # (25*20+20) + (500*50+50) + (800*500+500) + (500*10+10); 28 -> 24 -> 12 -> 8 -> 4, 50*4*4 = 800
        ("lenet5_caffe", {}, 431_080),
        # option A (no shortcut parameters) has 853,018; the two 1x1 projections add 16*32+2*32 and 32*64+2*64
        ("resnet56", {}, 855_770),
        ("resnet56", {"num_classes": 100}, 855_770 + 65 * 90),
        # 13 bias-free convs 14,710,464 + BN 8,448 + linear 512*100+100
        ("vgg16_bn", {}, 14_770_212),
        ("efficientnet_b0", {"num_classes": 1000}, 5_288_548),
        # Tiny-ImageNet head: 1280*200+200 instead of 1280*1000+1000
        ("efficientnet_b0", {}, 5_288_548 - 1281 * 800),
        ("resnet50", {}, 25_557_032),
    ],
)
def test_parameter_counts(name, kw, expected):
    assert count(on_meta(name, **kw)) == expected


def test_resnet50_sparse_weights_match_the_papers_count():
    # The paper's 25,502,912 counts conv and linear weights only (no biases, no batch norm).
    assert sparse_weights(on_meta("resnet50")) == 25_502_912


def test_lenet_first_fc_follows_the_input_size():
    # 32x32: 28 -> 14 -> 10 -> 5, so fc1 has 50*5*5 = 1250 inputs.
    model = on_meta("lenet5_caffe", in_channels=3, input_size=32)
    assert model.fc1.in_features == 1250
    assert model.conv1.in_channels == 3


@settings(max_examples=25, deadline=None)
@given(
    hidden=st.sampled_from(["small_mlp", "large_mlp"]),
    in_features=st.integers(1, 4000),
    classes=st.integers(1, 300),
)
def test_mlp_count_is_affine_in_input_and_output_size(hidden, in_features, classes):
    widths = {"small_mlp": (256, 256), "large_mlp": (1024, 512)}[hidden]
    h1, h2 = widths
    expected = (in_features + 1) * h1 + (h1 + 1) * h2 + (h2 + 1) * classes
    assert count(on_meta(hidden, in_features=in_features, num_classes=classes)) == expected


@pytest.mark.parametrize("name", sorted(SMALL_INPUTS))
def test_forward_backward_gives_logits_and_gradients(name):
    torch.manual_seed(0)
    shape = SMALL_INPUTS[name]
    model = models.build(name, **models.info(name).build_kwargs(shape))
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, models.info(name).num_classes)
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", ["small_cnn", "lenet5_caffe", "resnet56", "vgg16_bn", "efficientnet_b0"])
@pytest.mark.parametrize("classes", [1, 7, 200])
def test_output_width_follows_num_classes(name, classes):
    shape = SMALL_INPUTS[name]
    model = models.build(name, num_classes=classes, **models.info(name).build_kwargs(shape)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, *shape)).shape == (1, classes)


def test_image_models_take_other_channel_counts_and_non_square_inputs():
    model = models.build("resnet56", in_channels=1, input_size=(28, 36), num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 28, 36)).shape == (1, 10)
    lenet = models.build("lenet5_caffe", input_size=(28, 32))
    assert lenet.fc1.in_features == 50 * 4 * 5


def test_mlp_flattens_images():
    model = models.build("large_mlp", in_channels=1, input_size=28, num_classes=10)
    assert model.hidden[0].in_features == 784
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("name", "size", "needs"),
    [("lenet5_caffe", 15, "16x16"), ("vgg16_bn", 8, "16x16"), ("small_cnn", 3, "no feature map")],
)
def test_too_small_inputs_fail_at_build_time_with_the_reason(name, size, needs):
    with pytest.raises(ValueError, match=rf"{name}.*{size}x{size}.*{needs}"):
        models.build(name, input_size=size)


def test_smallest_valid_sizes_work():
    for name, size in [("lenet5_caffe", 16), ("vgg16_bn", 16), ("small_cnn", 4)]:
        shape = (models.info(name).input_shape[0], size, size)
        model = models.build(name, input_size=size).eval()
        with torch.no_grad():
            assert model(torch.randn(1, *shape)).shape[0] == 1


def test_small_cnn_padding_zero_is_the_reference_codes_variant():
    # 32 -> 30 -> 15 -> 13 -> 6 -> 4 without padding; same parameters, smaller maps.
    padded, unpadded = models.build("small_cnn"), models.build("small_cnn", padding=0)
    assert count(padded) == count(unpadded) == 94_538
    assert unpadded.conv1.padding == (0, 0)
    with pytest.raises(ValueError, match="small_cnn.*17x17"):
        models.build("small_cnn", padding=0, input_size=17)
    models.build("small_cnn", padding=0, input_size=18)


def test_resnet56_uses_projection_shortcuts_with_batch_norm():
    model = on_meta("resnet56")
    projections = [b.shortcut for b in model.blocks if not isinstance(b.shortcut, nn.Identity)]
    assert len(model.blocks) == 27 and len(projections) == 2
    for proj in projections:
        conv, bn = proj
        assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and conv.bias is None
        assert isinstance(bn, nn.BatchNorm2d)


def test_efficientnet_stochastic_depth_rises_linearly_to_the_option():
    model = on_meta("efficientnet_b0", stochastic_depth=0.32)
    probs = [b.drop_prob for b in model.blocks]
    assert len(probs) == 16
    assert probs[0] == 0.0 and probs[-1] == pytest.approx(0.32 * 15 / 16)
    assert probs == sorted(probs)


def test_stochastic_depth_drops_whole_examples_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(4000, 3, 2, 2)
    out = stochastic_depth(x, 0.25, training=True)
    per_example = out.flatten(1)
    kept = per_example[:, 0] > 0
    assert torch.equal(per_example[kept], torch.full_like(per_example[kept], 1 / 0.75))
    assert torch.equal(per_example[~kept], torch.zeros_like(per_example[~kept]))
    assert out.mean().item() == pytest.approx(1.0, abs=0.05)
    assert stochastic_depth(x, 0.25, training=False) is x


@pytest.mark.parametrize("name", ["small_mlp", "large_mlp"])
def test_mlp_dropout_present_only_when_asked(name):
    def dropouts(model):
        return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]

    assert dropouts(models.build(name)) == []
    assert dropouts(models.build(name, dropout=0.05)) == [0.05]
    assert sorted(dropouts(models.build(name, dropout=0.05, input_dropout=0.1))) == [0.05, 0.1]
    # Same parameter names with and without dropout: masks and checkpoints carry over.
    assert models.build(name).state_dict().keys() == models.build(name, dropout=0.3).state_dict().keys()


def test_mlp_dropout_acts_after_each_hidden_activation_in_training_only():
    torch.manual_seed(0)
    model = models.build("small_mlp", dropout=0.5)
    x = torch.randn(64, 24)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    hidden = []
    handle = model.dropout.register_forward_hook(lambda m, i, o: hidden.append(o))
    model(x)
    handle.remove()
    assert len(hidden) == 2
    zero_fraction = torch.cat([h.flatten() == 0 for h in hidden]).float().mean().item()
    assert 0.6 < zero_fraction < 0.9  # ReLU zeros about half, dropout half of the rest


@pytest.mark.parametrize("name", [n for n, s in SMALL_INPUTS.items() if len(s) == 3])
def test_channels_last_gives_the_same_output(name):
    torch.manual_seed(0)
    shape = SMALL_INPUTS[name]
    model = models.build(name, **models.info(name).build_kwargs(shape)).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    # Untrained BN statistics let deep nets grow large activations: compare relative to their scale.
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
