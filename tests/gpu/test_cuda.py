"""The GPU paths: the CUDA batcher, DST on CUDA, bfloat16 autocast, channels_last, checkpoints across devices,
and a training step that never waits for the GPU. Each test runs only where CUDA is available (marker `gpu`);
`benchmarks/gpu_check.py` runs them with the GPU timings."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from dstbench import store
from dstbench.config import RunConfig
from dstbench.data import Augmentation, Batches
from dstbench.sparsity import DST, list_criteria
from dstbench.train import resolve_config
from dstbench.train.loop import run
from dstbench.train.trainer import Trainer

pytestmark = pytest.mark.gpu

CUDA = torch.device("cuda")
CONV = dict(model="small_cnn", dataset="digits", batch_size=32, lr=0.1, progress=False)
MLP = dict(model="small_mlp", dataset="digits", batch_size=64, lr=0.05, progress=False)


def _batches(device, x, y, **kw):
    return [(a.cpu(), b.cpu()) for a, b in Batches(x, y, 64, seed=3, device=device, **kw)]


@pytest.mark.parametrize("kind", ["images", "table"])
def test_the_cuda_batcher_yields_the_cpu_batches(kind):
    gen = torch.Generator().manual_seed(0)
    if kind == "images":
        x = torch.randint(0, 256, (500, 3, 8, 8), generator=gen, dtype=torch.uint8)
        kw = dict(augmentation=Augmentation(crop_padding=2, hflip=True), mean=(0.4, 0.5, 0.6),
                  std=(0.2, 0.25, 0.3), pixel_scale=255.0)
    else:
        x = torch.randn(500, 24, generator=gen)
        kw = dict(mean=tuple(range(24)), std=(2.0,) * 24)
    y = torch.randint(0, 10, (500,), generator=gen)
    for epoch in range(2):  # two epochs: a new permutation and new moves, drawn alike on both devices
        cpu, gpu = Batches(x, y, 64, seed=3, **kw), Batches(x, y, 64, seed=3, device=CUDA, **kw)
        for stream in (cpu, gpu):
            stream.load_state_dict({**stream.state_dict(), "epoch": epoch})
        pairs = list(zip(cpu, gpu, strict=True))
        assert len(pairs) == 8
        for (xc, yc), (xg, yg) in pairs:
            assert xg.device.type == "cuda"
            assert torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())


def test_a_cuda_batcher_resumed_mid_epoch_continues_the_cpu_stream():
    x = torch.randint(0, 256, (300, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(300) % 10
    kw = dict(augmentation=Augmentation(crop_padding=1, hflip=True), pixel_scale=255.0)
    cpu = list(Batches(x, y, 32, seed=5, **kw))
    gpu = Batches(x, y, 32, seed=5, device=CUDA, **kw)
    gpu.load_state_dict({**gpu.state_dict(), "batch": 4})
    rest = list(gpu)
    assert len(rest) == len(cpu) - 4
    assert all(torch.equal(a.cpu(), b[0]) for (a, _), b in zip(rest, cpu[4:], strict=True))


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(6 * 4 * 4, 3))


def _engines(model_fn, criterion, grow, global_pruning, **kw):
    pair = []
    for device in ("cpu", CUDA):
        model = copy.deepcopy(model_fn()).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
        pair.append((model, opt, DST(model, opt, density=0.3, prune=criterion, grow=grow, update_period=1,
                                      prune_fraction=0.4, total_steps=6, seed=11, global_pruning=global_pruning,
                                      **kw)))
    return pair


@pytest.mark.parametrize("global_pruning", [False, True])
@pytest.mark.parametrize("grow", ["random", "gradient"])
@pytest.mark.parametrize("criterion", sorted(list_criteria()))
def test_dst_on_cuda_makes_the_cpu_masks(criterion, grow, global_pruning):
    """Same weights and gradients on both devices: every update removes and regrows the same weights.

    The learning rate is 0 so the weights are exactly the ones set here; random choices come from the engine's
    CPU generator, so they agree too."""
    model_fn = cnn if global_pruning else mlp
    (cpu_model, cpu_opt, cpu_dst), (gpu_model, gpu_opt, gpu_dst) = _engines(model_fn, criterion, grow,
                                                                           global_pruning)
    gen = torch.Generator().manual_seed(7)
    for _ in range(5):
        for (name, p_cpu), p_gpu in zip(cpu_model.named_parameters(), gpu_model.parameters(), strict=True):
            w, g = torch.randn(p_cpu.shape, generator=gen), torch.randn(p_cpu.shape, generator=gen)
            if name in cpu_dst.masks:
                w = w * cpu_dst.masks[name]
            p_cpu.data.copy_(w), p_gpu.data.copy_(w)
            p_cpu.grad, p_gpu.grad = g.clone(), g.to(CUDA)
        cpu_opt.step(), gpu_opt.step()
        cpu_dst.step(), gpu_dst.step()
        for name, mask in cpu_dst.masks.items():
            assert gpu_dst.masks[name].device.type == "cuda"
            assert torch.equal(mask, gpu_dst.masks[name].cpu()), name
            assert torch.equal(cpu_dst.ever_active[name], gpu_dst.ever_active[name].cpu())
    assert cpu_dst.history == gpu_dst.history and len(cpu_dst.history) > 0
    assert gpu_dst.layer_densities() == cpu_dst.layer_densities()
    for name, mask in gpu_dst.masks.items():  # inactive weights and their momentum are zero on the GPU
        param = dict(gpu_model.named_parameters())[name]
        assert not param[~mask].any() and not gpu_opt.state[param]["momentum_buffer"][~mask].any()


def _exact_counts(folder):
    """Layer counts never changed, and no inactive weight ended non-zero (a summary's count of non-zeros)."""
    init, final = folder.masks("init"), folder.masks("final")
    counts = {n: int(m.sum()) for n, m in final.items()}
    summary = folder.summary()
    dense_params = summary["params_total"] - summary["params_sparse"]
    return ({n: int(m.sum()) for n, m in init.items()} == counts
            and summary["params_active"] <= dense_params + sum(counts.values()))


@pytest.mark.parametrize("base", [CONV, MLP], ids=["small_cnn", "small_mlp"])
def test_a_bf16_autocast_epoch_has_finite_losses_and_exact_densities(tmp_path, base):
    config = RunConfig(**base, epochs=2, density=0.3, update_period=5, prune="snip", grow="gradient",
                       amp=True, device="cuda")
    summary = run(config, tmp_path / "r")
    folder = store.RunDir(tmp_path / "r")
    rows = folder.metrics()
    assert summary["status"] == "done" and len(rows) == 2
    assert all(math.isfinite(r[k]) for r in rows for k in ("train_loss", "val_loss", "test_loss"))
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] * 1.5
    assert summary["final_test_acc"] > 0.2  # digits: chance is 0.1
    assert summary["final_density"] == pytest.approx(0.3, abs=0.01) and _exact_counts(folder)
    assert folder.history() and all(h["pruned"] == h["grown"] for h in folder.history())


def _trainer(tmp_path, **kw):
    config = resolve_config(RunConfig(**{**CONV, "epochs": 2, "density": 0.3, "update_period": 7,
                                         "prune": "magnitude", "grow": "gradient", "device": "cuda", **kw}))
    folder = store.RunDir(tmp_path / "t")
    folder.path.mkdir(parents=True, exist_ok=True)
    return Trainer([config], [folder], folder.file(store.CHECKPOINT))


def test_conv_models_train_channels_last_and_keep_their_masks(tmp_path):
    trainer = _trainer(tmp_path)
    dst = trainer.members[0].dst
    assert trainer.channels_last
    for step, (x, y) in enumerate(trainer.members[0].batches):
        assert x.is_contiguous(memory_format=torch.channels_last)
        trainer.train_step([(x, y)])
        if step == 20:
            break
    assert dst.history, "an update happened"
    for name, param in trainer.model.named_parameters():
        if param.ndim == 4:
            assert param.is_contiguous(memory_format=torch.channels_last), name
        if name in dst.masks:
            mask = dst.masks[name]
            assert not param[~mask].any() and int(mask.sum()) == dst.layers[
                [la.name for la in dst.layers].index(name)].count
    # channels_last computes the function of the plain layout (in full float32: TF32 convolutions off)
    plain = copy.deepcopy(trainer.model).to(memory_format=torch.contiguous_format)
    x = next(iter(trainer.eval_sets["test"]))[0]
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            assert torch.allclose(trainer.model(x), plain(x.contiguous()), rtol=1e-4, atol=1e-4)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


@pytest.mark.parametrize("first,second", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_resumes_on_the_other_device(tmp_path, first, second):
    config = resolve_config(RunConfig(**CONV, epochs=2, density=0.3, update_period=7, prune="snip",
                                      grow="gradient", device=first))
    folder = store.RunDir(tmp_path / "r")
    folder.path.mkdir(parents=True)
    store.atomic_write_json(folder.file(store.CONFIG), config.model_dump(mode="json"))
    trainer = Trainer([config], [folder], folder.file(store.CHECKPOINT))
    trainer._restore_or_start()
    trainer._train_epoch()
    del trainer
    summary = run(config.replace(device=second), folder.path)  # the device is not part of the run's identity
    rows = folder.metrics()
    assert summary["status"] == "done" and [r["epoch"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["train_loss"]) for r in rows) and rows[1]["test_acc"] > 0.2
    assert _exact_counts(folder) and summary["final_density"] == pytest.approx(0.3, abs=0.01)


def test_training_steps_between_updates_never_wait_for_the_gpu(tmp_path):
    """CUDA's sync debug mode turns any host synchronisation (`.item()`, `float(t)`, a blocking copy, a
    data-dependent shape) into an error; it is on for every batch and step except the topology updates."""
    for kw in (dict(amp=False), dict(amp=True, optimizer="adam", lr=1e-3)):
        trainer = _trainer(tmp_path / str(kw["amp"]), **kw)
        dst = trainer.members[0].dst
        batches, steps = iter(trainer.members[0].batches), 0
        try:
            while True:
                quiet = not dst.update_due()
                torch.cuda.set_sync_debug_mode("error" if quiet else "default")
                try:
                    x, y = next(batches)
                except StopIteration:
                    break
                trainer.train_step([(x, y)])
                steps += 1
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert steps == trainer.steps_per_epoch == 40
        assert {h["step"] for h in dst.history} == {7, 14, 21, 28, 35}  # updates ran, syncs allowed
