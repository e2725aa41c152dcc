"""The registry: names, defaults, size resolution, user models and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dstbench import models
from dstbench.models import registry

PAPER_MODELS = [
    "efficientnet_b0", "large_mlp", "lenet5_caffe", "resnet50", "resnet56", "roberta", "roberta_base", "roberta_large",
    "small_cnn", "small_mlp", "vgg16_bn",
]


@pytest.fixture
def scratch_registry(monkeypatch):
    """User registrations in a test stay in that test."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


def test_list_is_sorted_and_holds_the_papers_models():
    assert models.list() == PAPER_MODELS


@pytest.mark.parametrize(
    ("name", "kind", "shape", "classes", "dataset"),
    [
        ("small_mlp", "vector", (24,), 1, "higgs"),
        ("large_mlp", "vector", (3, 32, 32), 10, "cifar10"),
        ("small_cnn", "image", (3, 32, 32), 10, "cifar10"),
        ("lenet5_caffe", "image", (1, 28, 28), 10, "fashionmnist"),
        ("resnet56", "image", (3, 32, 32), 10, "cifar10"),
        ("vgg16_bn", "image", (3, 32, 32), 100, "cifar100"),
        ("efficientnet_b0", "image", (3, 64, 64), 200, "tinyimagenet"),
        ("resnet50", "image", (3, 224, 224), 1000, "imagenet"),
    ],
)
def test_info_gives_the_papers_pairing(name, kind, shape, classes, dataset):
    info = models.info(name)
    assert (info.name, info.input_kind, info.input_shape, info.num_classes, info.dataset) == (
        name, kind, shape, classes, dataset,
    )
    assert info.description


def test_info_lists_model_options_with_defaults():
    assert models.info("efficientnet_b0").options == {"head_dropout": 0.2, "stochastic_depth": 0.2}
    assert models.info("small_cnn").options == {"padding": 1}
    assert models.info("large_mlp").options == {"input_dropout": 0.0}
    assert models.info("resnet56").options == {}


def test_build_kwargs_map_a_data_sets_shape_to_build_keywords():
    assert models.info("large_mlp").build_kwargs((1, 28, 28)) == {"in_features": 784}
    assert models.info("small_mlp").build_kwargs((24,)) == {"in_features": 24}
    assert models.info("resnet56").build_kwargs((3, 64, 48)) == {"in_channels": 3, "input_size": (64, 48)}
    with pytest.raises(ValueError, match="resnet56.*image inputs.*\\(24,\\)"):
        models.info("resnet56").build_kwargs((24,))


@pytest.mark.parametrize("lookup", [models.build, models.info])
def test_unknown_name_lists_the_valid_ones(lookup):
    with pytest.raises(ValueError, match="unknown model 'resnet18'; valid: efficientnet_b0, large_mlp") as err:
        lookup("resnet18")
    assert all(name in str(err.value) for name in PAPER_MODELS)


def test_unknown_option_is_a_type_error_naming_the_valid_options():
    with pytest.raises(TypeError, match="'small_cnn' has no option widht; its options: padding=1"):
        models.build("small_cnn", widht=2)
    with pytest.raises(TypeError, match="'resnet56' has no option depth; its options: none"):
        models.build("resnet56", depth=20)


def test_dropout_only_on_models_that_have_it():
    models.build("resnet56", dropout=0.0)  # the RunConfig default must work for every model
    with pytest.raises(ValueError, match="'resnet56' has no dropout option.*models with one: large_mlp, small_mlp"):
        models.build("resnet56", dropout=0.1)
    with pytest.raises(ValueError, match="dropout must be in \\[0, 1\\), got 1.0"):
        models.build("small_mlp", dropout=1.0)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"in_features": 3072}, "'small_cnn' is convolutional: give in_channels and input_size, not in_features=3072"),
        ({"input_size": (32, 32, 3)}, "input_size must be a positive int or \\(height, width\\)"),
        ({"input_size": 0}, "input_size must be a positive int"),
        ({"in_channels": 0}, "in_channels must be a positive int, got 0"),
        ({"num_classes": 0}, "num_classes must be a positive int, got 0"),
    ],
)
def test_bad_sizes_are_value_errors_naming_model_and_value(kw, message):
    with pytest.raises(ValueError, match=message):
        models.build("small_cnn", **kw)


def test_sizes_accept_numpy_integers_and_lists():
    model = models.build("lenet5_caffe", in_channels=np.int64(3), input_size=[np.int64(32), 32], num_classes=np.int32(7))
    assert (model.conv1.in_channels, model.fc1.in_features, model.classifier.out_features) == (3, 1250, 7)
    with pytest.raises(ValueError, match="in_channels must be a positive int, got True"):
        models.build("lenet5_caffe", in_channels=True)


def test_vector_model_needs_a_full_image_shape_to_flatten():
    # small_mlp's default input is (24,): there is no default channel count or image size to fill in.
    with pytest.raises(ValueError, match="'small_mlp' flattens its input: give in_features, or in_channels and"):
        models.build("small_mlp", input_size=28)
    assert models.build("small_mlp", in_channels=1, input_size=(4, 6)).hidden[0].in_features == 24
    # large_mlp's default (3, 32, 32) fills the missing channel count.
    assert models.build("large_mlp", input_size=28).hidden[0].in_features == 3 * 28 * 28


def test_user_model_registration_and_build(scratch_registry):
    @models.register("tiny_mlp", input_shape=(5,), num_classes=3, dataset="toy")
    def tiny_mlp(*, in_features: int, num_classes: int, dropout: float = 0.0, bias: bool = True) -> nn.Module:
        """A one-layer model for tests."""
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes, bias=bias))

    assert "tiny_mlp" in models.list()
    info = models.info("tiny_mlp")
    assert (info.input_kind, info.options, info.description) == ("vector", {"bias": True}, "A one-layer model for tests.")
    model = models.build("tiny_mlp", num_classes=4, bias=False, dropout=0.2)
    assert model[1].weight.shape == (4, 5) and model[1].bias is None and model[0].p == 0.2
    with pytest.raises(TypeError, match="'tiny_mlp' has no option width; its options: bias=True"):
        models.build("tiny_mlp", width=3)


def test_user_model_without_defaults_needs_sizes_from_the_caller(scratch_registry):
    @models.register("bare_cnn")
    def bare_cnn(*, in_channels: int, input_size: tuple[int, int], num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(in_channels, num_classes, input_size), nn.Flatten())

    with pytest.raises(ValueError, match="'bare_cnn' has no default in_channels; pass in_channels=... to build"):
        models.build("bare_cnn", num_classes=2)
    with pytest.raises(ValueError, match="'bare_cnn' has no default num_classes"):
        models.build("bare_cnn", in_channels=1, input_size=4)
    model = models.build("bare_cnn", in_channels=1, input_size=4, num_classes=2)
    assert model(torch.randn(3, 1, 4, 4)).shape == (3, 2)


def test_user_model_with_var_keywords_receives_any_option(scratch_registry):
    @models.register("open_model", num_classes=2)
    def open_model(*, num_classes: int, **options) -> nn.Module:
        return nn.Linear(len(options), num_classes)

    assert models.build("open_model", a=1, b=2).in_features == 2
    with pytest.raises(TypeError, match="'open_model' takes no input size \\(in_features\\)"):
        models.build("open_model", in_features=4)


def test_registration_errors(scratch_registry):
    def builder(*, num_classes: int) -> nn.Module:
        return nn.Linear(1, num_classes)

    with pytest.raises(ValueError, match="model 'resnet56' is already registered; pass overwrite=True"):
        models.register("resnet56")(builder)
    with pytest.raises(ValueError, match="must be lower case letters, digits and '_'"):
        models.register("My-Model")(builder)

    def positional(num_classes: int) -> nn.Module:
        return nn.Linear(1, num_classes)

    with pytest.raises(TypeError, match="'positional' must take keyword-only arguments.*num_classes"):
        models.register("positional")(positional)

    def both(*, in_channels: int, in_features: int) -> nn.Module:
        return nn.Identity()

    with pytest.raises(TypeError, match="either in_features or in_channels/input_size"):
        models.register("both")(both)

    def image(*, in_channels: int, num_classes: int) -> nn.Module:
        return nn.Identity()

    def required_option(*, num_classes: int, width: int) -> nn.Module:
        return nn.Linear(width, num_classes)

    with pytest.raises(TypeError, match="'required': options need defaults.*: width"):
        models.register("required")(required_option)
    with pytest.raises(TypeError, match="use @register\\('my_model'\\)"):
        models.register(builder)

    with pytest.raises(ValueError, match="'image' is an image model; its input_shape must be \\(C, H, W\\)"):
        models.register("image", input_shape=(24,))(image)

    models.register("resnet56", input_shape=(3, 8, 8), num_classes=1, overwrite=True)(image)
    assert models.info("resnet56").input_shape == (3, 8, 8)


def test_registry_changes_do_not_leak_between_tests():
    assert models.list() == PAPER_MODELS
    assert models.info("resnet56").num_classes == 10
