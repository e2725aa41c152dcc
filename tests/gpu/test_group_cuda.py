"""Run groups on a GPU (batched kernels, the default there): exact densities, a training step that never waits
for the GPU between updates, and members that track their CPU (exact, bit-identical to solo) twins within
rounding. Marker `gpu`: skipped without CUDA; `benchmarks/gpu_check.py` runs them."""

from __future__ import annotations

import pytest
import torch

from dstbench import store
from dstbench.config import RunConfig
from dstbench.train import resolve_config
from dstbench.train.trainer import Trainer

pytestmark = pytest.mark.gpu

MEMBERS = [
    dict(density=0.1, prune="magnitude", grow="random", update_period=7, seed=0),
    dict(density=0.2, prune="snip", grow="gradient", update_period=7, seed=1),
    dict(density=1.0, update_period=0, seed=2),
    dict(density=0.1, update_period=0, seed=3),
]


def _group(tmp_path, device, kernels, model="small_cnn"):
    base = dict(model=model, dataset="digits", batch_size=32, lr=0.05, epochs=1, progress=False, device=device)
    configs = [resolve_config(RunConfig(**base, **m)) for m in MEMBERS]
    folders = [store.RunDir(tmp_path / device / c.run_id()) for c in configs]
    group = tmp_path / device / "group"
    return Trainer(configs, folders, group / store.CHECKPOINT, group_dir=group, kernels=kernels)


@pytest.mark.parametrize("model", ["small_cnn", "small_mlp"])
def test_a_cuda_group_steps_without_host_syncs_and_keeps_exact_densities(tmp_path, model):
    group = _group(tmp_path, "cuda", "auto", model)
    assert group.kernels == "batched"
    streams = [iter(m.batches) for m in group.members]
    steps = 0
    try:
        while True:
            quiet = not any(m.dst.update_due() for m in group.members)
            torch.cuda.set_sync_debug_mode("error" if quiet else "default")
            try:
                batches = [next(s) for s in streams]
            except StopIteration:
                break
            group.train_step(batches)
            steps += 1
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert steps == group.steps_per_epoch
    for member in group.members:
        assert member.failed is None
        for layer in member.dst.layers:
            assert int(member.dst.masks[layer.name].sum()) == layer.count
            assert int((layer.param != 0).sum()) <= layer.count


def test_cuda_members_track_their_cpu_twins(tmp_path):
    """Same seeds, same batches (drawn on the CPU), same initial masks; the batched GPU kernels round
    differently, so after some steps the losses agree closely, not bit for bit."""
    cpu, gpu = _group(tmp_path, "cpu", "exact"), _group(tmp_path, "cuda", "batched")
    for member_cpu, member_gpu in zip(cpu.members, gpu.members, strict=True):
        for name, mask in member_cpu.dst.masks.items():
            assert torch.equal(mask, member_gpu.dst.masks[name].cpu())
    streams_cpu = zip(*(m.batches for m in cpu.members), strict=True)
    streams_gpu = zip(*(m.batches for m in gpu.members), strict=True)
    for _ in range(5):
        batches_cpu, batches_gpu = next(streams_cpu), next(streams_gpu)
        losses = []
        for group, batches in ((cpu, batches_cpu), (gpu, batches_gpu)):
            losses.append(group.train_step(batches)[0].detach().cpu())
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-2, atol=1e-3)  # TF32 convolutions by default


def test_a_joint_update_on_cuda_syncs_as_often_for_six_members_as_for_two():
    """Members that update on one step update together (`dstbench.sparsity.together`): the host syncs of that
    update step (the finite check, the history counts) do not grow with the members (magnitude pruning, gradient
    growth; PyTorch warns once per synchronising call under sync debug mode "warn")."""
    import warnings

    import torch.nn.functional as F

    from dstbench import DST
    from dstbench.sparsity.together import step_together

    def syncs(size):
        engines = []
        for k in range(size):
            torch.manual_seed(k)
            model = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)).cuda()
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            dst = DST(model, opt, driven=True, seed=k, total_steps=4, density=0.3, prune="magnitude",
                      grow="gradient", update_period=1)
            x, y = torch.randn(8, 12, device="cuda"), torch.randint(0, 3, (8,), device="cuda")
            F.cross_entropy(model(x), y).backward()
            opt.step()
            engines.append(dst)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert step_together(engines) == [None] * size
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    assert syncs(6) == syncs(2)
