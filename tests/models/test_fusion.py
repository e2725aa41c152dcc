"""Horizontal fusion (`dstbench.models.fusion`): the paper's models fuse and compute what their members do, the
members are views of the fused tensors, and models fusion cannot run faithfully are refused."""

import copy

import pytest
import torch
from torch import nn

from dstbench import models
from dstbench.models.fusion import KERNELS, FusionError, fuse

K = 3
# name -> (build kwargs, input shape of one example): small inputs, so the test stays fast
MODELS = {
    "small_mlp": (dict(in_features=24), (24,)),
    "large_mlp": (dict(in_channels=1, input_size=8), (1, 8, 8)),
    "lenet5_caffe": (dict(), (1, 28, 28)),
    "small_cnn": (dict(in_channels=1, input_size=8), (1, 8, 8)),
    "resnet56": (dict(in_channels=3, input_size=8), (3, 8, 8)),
    "vgg16_bn": (dict(in_channels=3, input_size=32, num_classes=10), (3, 32, 32)),
}


def _members(name, k=K):
    kwargs, _ = MODELS[name]
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        out.append(models.build(name, **kwargs))
    return out


def _example(shape, k=K, batch=2):
    return torch.randn((k, batch, *shape), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", list(MODELS))
def test_the_papers_models_fuse_and_compute_their_members_outputs(name, kernels):
    members = _members(name)
    solo = [_copy(m).eval() for m in members]
    fusion = fuse(members, kernels=kernels)
    example = _example(MODELS[name][1])
    fusion.check(example)  # raises FusionError if a block differs
    fusion.model.eval()
    with torch.no_grad():
        out = fusion.outputs(fusion.model(fusion.inputs(list(example))))
        for k in range(K):
            expected = solo[k](example[k]).reshape(out.shape[0], -1)
            if kernels == "exact":  # the solo kernels on the member's block: equal
                assert torch.equal(out[:, k], expected)
            else:  # batched kernels sum in another order: equal up to rounding, on the outputs' scale
                assert (out[:, k] - expected).abs().max() <= 1e-4 * expected.abs().max() + 1e-5
    assert fusion.size == K and len(fusion.members) == K


def _copy(model):
    import copy

    return copy.deepcopy(model)


@pytest.mark.parametrize("name", ["small_mlp", "small_cnn", "resnet56"])
def test_member_views_share_storage_with_the_fused_parameters(name):
    members = _members(name)
    fusion = fuse(members, kernels="exact")
    fused = dict(fusion.model.named_parameters())
    for k, member in enumerate(fusion.members):
        for pname, param in member.named_parameters():
            share = fusion.share(fused[pname], pname, k)
            assert share.shape == param.shape and share.data_ptr() == param.data_ptr()
    # writing the fused weight changes the member's weight, and the member's write shows in the fused one
    pname, first = next(iter(fused.items()))
    with torch.no_grad():
        fusion.share(first, pname, 1).fill_(0.5)
        assert (dict(fusion.members[1].named_parameters())[pname] == 0.5).all()
        assert not (dict(fusion.members[0].named_parameters())[pname] == 0.5).all()
        dict(fusion.members[2].named_parameters())[pname].fill_(-2.0)
        assert (fusion.share(first, pname, 2) == -2.0).all()
    # a gradient through the fused model reaches the member's share only
    fusion.model.train()
    x = _example(MODELS[name][1])
    out = fusion.outputs(fusion.model(fusion.inputs(list(x))))
    out[:, 0].sum().backward()
    grads = {n: p.grad for n, p in fusion.model.named_parameters()}
    for n, g in grads.items():
        assert g is not None
        assert not fusion.share(g, n, 1).any() and not fusion.share(g, n, 2).any(), n


class MixesChannels(nn.Module):
    """A forward that sums over the channel dimension: fine solo, wrong fused (it mixes the members)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(1, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)).sum(1, keepdim=True))


class AddsTheChannelSum(nn.Module):
    """Mixes the members without changing a width: only the comparison of outputs can see it."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        return self.fc2(h + h.sum(1, keepdim=True))


class SoftmaxOverFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.softmax(self.fc1(x), dim=1))


class CentresTheBatch(nn.Module):
    """Mixes the examples of a batch: fine in channel blocks (each member's channels see only its batch), wrong
    when the members' batches are stacked on dim 0 (exact kernels)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        return self.fc2(h - h.mean(0, keepdim=True))


@pytest.mark.parametrize(("cls", "refused_by"), [(MixesChannels, "batched"), (AddsTheChannelSum, "batched"),
                                                 (SoftmaxOverFeatures, "batched"), (CentresTheBatch, "exact")])
@pytest.mark.parametrize("kernels", KERNELS)
def test_a_forward_that_mixes_members_in_its_layout_is_refused_by_check(cls, refused_by, kernels):
    """Batched kernels put members in channel blocks, exact ones in batch blocks: a forward that mixes across
    the blocks of its layout is refused; one that mixes only within a member's block fuses, and equals solo."""
    members = []
    for seed in range(K):
        torch.manual_seed(seed)
        members.append(cls())
    solo = [copy.deepcopy(m) for m in members]
    fusion = fuse(members, kernels=kernels)
    example = _example((6,))
    if kernels == refused_by:
        with pytest.raises(FusionError, match="mixes the members"):
            fusion.check(example)
    else:
        fusion.check(example)
        out = fusion.outputs(fusion.model(fusion.inputs(list(example))))
        for k in range(K):
            torch.testing.assert_close(out[:, k], solo[k](example[k]))


def test_dropout_is_refused():
    members = [nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Linear(4, 2)) for _ in range(K)]
    with pytest.raises(FusionError, match="dropout"):
        fuse(members)
    # p = 0 draws nothing: allowed
    fuse([nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.0), nn.Linear(4, 2)) for _ in range(K)]).check(
        _example((4,)))


def test_a_layer_with_parameters_fusion_does_not_know_is_refused():
    members = [nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2)) for _ in range(K)]
    with pytest.raises(FusionError, match="LayerNorm"):
        fuse(members)


def test_other_architectures_and_unknown_kernels_are_refused():
    with pytest.raises(FusionError, match="another architecture"):
        fuse([nn.Sequential(nn.Linear(4, 4)), nn.Sequential(nn.Linear(4, 5))])
    with pytest.raises(FusionError, match="unknown kernels"):
        fuse([nn.Sequential(nn.Linear(4, 4))], kernels="fast")
    with pytest.raises(FusionError, match="at least one"):
        fuse([])


def test_a_captured_groups_memory_counts_gradients_and_activations_twice():
    """Linear(4, 3): 15 float32 weights = 60 bytes; an output of 3 floats = 12 bytes a sample, twice for the
    backward: 240 bytes at batch 10. Eager with one optimizer slot: 60 x 4 + 240 = 480. Captured: the graph's
    gradients and activations beside the eager steps': 60 x 5 + 480 = 780, per member."""
    from dstbench.models.fusion import estimated_group_bytes

    model = torch.nn.Linear(4, 3)
    example = torch.zeros(2, 4)
    assert estimated_group_bytes(model, example, 1, 10) == 480
    assert estimated_group_bytes(model, example, 1, 10, captured=True) == 780
    assert estimated_group_bytes(model, example, 3, 10, captured=True) == 3 * 780
