"""Converting torchvision's EfficientNet weights (the published ImageNet efficientnet_b0) for fine-tuning.

The fixtures were made with torchvision itself (fixtures/make_efficientnet_fixture.py): a torchvision
EfficientNet with two of B0's stages, fixed inputs and torchvision's outputs, and the tensor layout of the full
B0. When torchvision is installed, the full B0 is also compared with torchvision's own forward.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torchvision_reference import import_torchvision_models, randomise_batch_norm

from dstbench import models
from dstbench.models.efficientnet import _B0_STAGES, EfficientNet
from dstbench.train.checkpoint import load_pretrained

FIXTURES = Path(__file__).parent / "fixtures"
torch.set_num_threads(1)


def test_converted_weights_give_torchvisions_outputs():
    fixture = torch.load(FIXTURES / "efficientnet_tiny_torchvision.pt", weights_only=True)
    model = EfficientNet(fixture["stages"], 3, fixture["num_classes"], head_dropout=0.2, stochastic_depth=0.2)
    converted = model.from_torchvision_state(fixture["state"])
    assert set(converted) == set(model.state_dict())
    model.load_state_dict(converted)  # strict: every tensor placed, every shape right
    model.eval()
    with torch.no_grad():
        out = model(fixture["inputs"])
    torch.testing.assert_close(out, fixture["outputs"], rtol=1e-5, atol=1e-5)


def test_every_tensor_of_torchvisions_b0_has_its_place_and_shape():
    layout = json.loads((FIXTURES / "efficientnet_b0_torchvision_layout.json").read_text())
    model = models.build("efficientnet_b0", num_classes=1000)
    state = {k: torch.empty(shape) for k, shape in layout.items()}
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    converted = model.from_torchvision_state(state)
    assert len(converted) == len(layout) == len(own) == 360
    assert {k: tuple(v.shape) for k, v in converted.items()} == own


def test_a_foreign_tensor_is_named():
    model = models.build("efficientnet_b0", num_classes=10)
    with pytest.raises(KeyError, match=r"'features\.9\.0\.weight' has no place"):
        model.from_torchvision_state({"features.0.0.weight": torch.zeros(1), "features.9.0.weight": torch.zeros(1)})


def test_init_from_a_torchvision_file_fine_tunes_with_a_new_200_class_head(tmp_path):
    fixture = torch.load(FIXTURES / "efficientnet_tiny_torchvision.pt", weights_only=True)
    torch.save(fixture["state"], tmp_path / "tv.pth")
    model = EfficientNet(fixture["stages"], 3, 200, head_dropout=0.2, stochastic_depth=0.2)
    fresh_classifier = model.classifier.weight.detach().clone()
    skipped = load_pretrained(model, "tv.pth", data_root=tmp_path, partial=True)  # relative: under the data root
    assert skipped == ["classifier.bias", "classifier.weight"]
    assert torch.equal(model.classifier.weight, fresh_classifier)
    assert torch.equal(model.stem[0].weight, fixture["state"]["features.0.0.weight"])
    assert torch.equal(model.blocks[2].se.expand.bias, fixture["state"]["features.2.1.block.2.fc2.bias"])
    with pytest.raises(FileNotFoundError, match="nor under the data root"):
        load_pretrained(model, "missing.pth", data_root=tmp_path)


def test_full_b0_matches_torchvisions_forward():
    tv = import_torchvision_models()
    if tv is None:
        pytest.skip("torchvision is not installed (a test-only tool: pip install --no-deps torchvision)")
    torch.manual_seed(0)
    reference = tv.efficientnet_b0()
    randomise_batch_norm(reference, seed=1)
    reference.eval()
    model = models.build("efficientnet_b0", num_classes=1000)
    model.load_state_dict(model.from_torchvision_state(reference.state_dict()))
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)
    assert model.stages == _B0_STAGES
