"""The captured step (`dstbench.train.capture`, issue #19) on a CPU: the step written for a CUDA graph (batches by
the feed's device counter, the fused optimizer with its rate a tensor, the epoch's sums on the device), run
eagerly, equals the eager step bit for bit, solo and grouped; a checkpoint of either resumes in the other; and the
choice of step follows `capture` with a reason where it falls back."""

from contextlib import nullcontext

import pytest
import torch

from dstbench import store
from dstbench.config import RunConfig
from dstbench.train import capture, stepping
from dstbench.train.capture import STEP_MODES, uncapturable
from dstbench.train.grouping import CHECKPOINT_ENV, GroupError
from dstbench.train.loop import write_config
from dstbench.train.recipes import resolve_config
from dstbench.train.setup import learning_rate, optimizer_kernels
from dstbench.train.trainer import Trainer

from .group_helpers import (
    MEMBERS,
    assert_member_is_solo,
    member_configs,
    model_state,
    same_masks,
    without_time,
)
from .host_syncs import HOST_SYNCS, OpRecorder

SOLO = [  # SGD with Nesterov, gradient growth, probes, label smoothing; Adam; AdamW with bf16 autocast, dropout
    dict(density=0.2, prune="set", grow="gradient", update_period=7, seed=1, label_smoothing=0.1,
         probe_every=10, probe_criteria=("magnitude", "snip"), probe_fractions=(0.3,)),
    dict(density=0.1, prune="magnitude", grow="random", update_period=10, seed=0, optimizer="adam", lr=0.003,
         momentum=None, nesterov=None),
    dict(density=0.3, prune="mest", grow="gradient", update_period=5, seed=2, optimizer="adamw", lr=0.003,
         momentum=None, nesterov=None, amp=True, dropout=0.2),
]


def _train(configs, root, step_mode, kernels="auto"):
    folders = [store.RunDir(root / c.run_id()) for c in configs]
    for folder, config in zip(folders, configs, strict=True):
        write_config(folder, config)
    group = root / "group" if len(configs) > 1 else None
    trainer = Trainer(configs, folders, root / "checkpoint.pt", group_dir=group, kernels=kernels, step_mode=step_mode)
    assert trainer.step_mode == step_mode
    return trainer.fit()


@pytest.mark.parametrize("member", SOLO, ids=["sgd", "adam", "adamw-amp-dropout"])
def test_the_capturable_step_equals_the_eager_step_solo(tmp_path, member):
    (config,) = member_configs("small_mlp", [member])
    _train([config], tmp_path / "eager", "eager")
    _train([config], tmp_path / "capturable", "capturable")
    assert_member_is_solo(tmp_path / "capturable" / config.run_id(), tmp_path / "eager" / config.run_id())


@pytest.mark.parametrize("kernels", ["batched", "exact"])
def test_the_capturable_step_equals_the_eager_step_grouped(tmp_path, kernels):
    """Batched kernels: the fused model as a GPU trains it. Exact kernels over a model with batch norm (shared
    counters: not one by one), as the fused layers compute it."""
    model = "small_mlp" if kernels == "batched" else "resnet56"
    members = MEMBERS if kernels == "batched" else MEMBERS[:3]
    extra = {} if kernels == "batched" else dict(train_subset=256, epochs=1)
    configs = member_configs(model, members, **extra)
    _train(configs, tmp_path / "eager", "eager", kernels)
    _train(configs, tmp_path / "capturable", "capturable", kernels)
    for config in configs:
        assert_member_is_solo(tmp_path / "capturable" / config.run_id(), tmp_path / "eager" / config.run_id())


@pytest.mark.parametrize("first,then,fused,optimizer", [
    ("capturable", "eager", False, "sgd"), ("eager", "capturable", False, "sgd"),
    ("capturable", "capturable", True, "sgd"), ("capturable", "capturable", True, "adam")])
def test_a_checkpoint_of_one_step_resumes_in_the_other(tmp_path, monkeypatch, first, then, fused, optimizer):
    """The checkpoint stores the rate as a float, and the optimizer's kernels and rate are set again after loading
    it. `fused`: the fused kernels with the rate a tensor (a CUDA graph's; here forced on the CPU), against a
    straight run with them."""
    monkeypatch.setenv(CHECKPOINT_ENV, "0")
    if fused:
        monkeypatch.setattr(capture, "fused_optimizer", lambda device: True)
    adam = dict(optimizer="adam", lr=0.003, momentum=None, nesterov=None) if optimizer == "adam" else {}
    configs = member_configs("small_mlp", MEMBERS[:3], snapshots=False, epochs=3, **adam)
    _train(configs, tmp_path / "straight", "capturable" if fused else "eager", "batched")
    original = Trainer._train_epoch
    saved = []

    def dies_after_epoch_one(self):
        original(self)
        saved.append(torch.load(self.checkpoint_path, weights_only=True))
        raise KeyboardInterrupt

    root = tmp_path / "broken"
    folders = [store.RunDir(root / c.run_id()) for c in configs]

    def trainer(mode):
        return Trainer(configs, folders, root / "checkpoint.pt", group_dir=root / "group", step_mode=mode,
                       kernels="batched")

    monkeypatch.setattr(Trainer, "_train_epoch", dies_after_epoch_one)
    with pytest.raises(KeyboardInterrupt):
        trainer(first).fit()
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    assert all(type(g["lr"]) is float for g in saved[0]["optimizer"]["param_groups"])
    resumed = trainer(then)
    resumed.fit()
    assert isinstance(resumed.optimizer.param_groups[0]["lr"], torch.Tensor) == fused
    for config in configs:
        a, b = store.RunDir(root / config.run_id()), store.RunDir(tmp_path / "straight" / config.run_id())
        assert without_time(a.metrics()) == without_time(b.metrics())
        assert a.history() == b.history()
        same_masks(a, b)
        wa, wb = model_state(a.path), model_state(b.path)
        assert all(torch.equal(wa[k], wb[k]) for k in wb)


def test_a_fused_step_reads_its_rate_from_a_tensor_and_records_the_schedules_own(tmp_path, monkeypatch):
    """The fused kernels read the rate from a tensor the schedule writes in place; the metrics record the
    schedule's double, as an eager run does (a CUDA rate is float32)."""
    monkeypatch.setattr(capture, "fused_optimizer", lambda device: True)
    (config,) = member_configs("small_mlp", [dict(density=0.1, seed=0)], snapshots=False,
                               lr_milestones=(0.5,), lr_gamma=0.1, lr=0.03)
    trainer = Trainer([config], [store.RunDir(tmp_path / "r")], tmp_path / "c.pt", step_mode="capturable")
    group = trainer.optimizer.param_groups[0]
    rate = group["lr"]
    assert isinstance(rate, torch.Tensor) and group["fused"] and not group["foreach"]
    assert learning_rate(trainer.scheduler) == 0.03
    for _ in range(trainer.total_steps // 2 + 1):
        trainer.train_step()
    assert group["lr"] is rate  # written in place: a captured graph reads it where it was
    assert learning_rate(trainer.scheduler) == 0.03 * 0.1 == rate.item()
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, foreach=True)
    optimizer_kernels(optimizer, fused=True, device=torch.device("cpu"))
    assert optimizer.param_groups[0]["lr"].dtype == torch.float64  # the CPU kernel reads a double
    optimizer_kernels(optimizer, fused=False, device=torch.device("cpu"))
    assert optimizer.param_groups[0]["lr"] == 0.1 and optimizer.param_groups[0]["foreach"]


def test_the_step_follows_capture_and_says_why_it_falls_back(tmp_path, capsys):
    config = resolve_config(RunConfig(model="small_mlp", dataset="digits", device="cpu", progress=False,
                                      capture="auto"))
    trainer = Trainer([config], [store.RunDir(tmp_path / "r")], tmp_path / "c.pt")
    assert trainer.step_mode == "eager" and capsys.readouterr().err == ""  # auto on a CPU: eager, nothing said
    assert trainer.capture_reason is None
    assert set(STEP_MODES) == {"eager", "captured", "capturable"}
    cuda = torch.device("cuda")
    common = dict(device=cuda, distributed=False, fed=True, one_by_one=False, gradient_checkpointing=False)
    assert uncapturable(**common) is None
    assert "GPU" in uncapturable(**{**common, "device": torch.device("cpu")})
    assert "DDP" in uncapturable(**{**common, "distributed": True})
    assert "on the host" in uncapturable(**{**common, "fed": False})
    assert "one after the other" in uncapturable(**{**common, "one_by_one": True})
    assert "RNG" in uncapturable(**{**common, "gradient_checkpointing": True})
    assert capture.fused_optimizer(cuda) and not capture.fused_optimizer(torch.device("cpu"))


def test_a_step_that_cannot_be_captured_is_refused_when_forced(tmp_path):
    """Exact kernels without shared state train members one by one: a forced capturable step is refused."""
    configs = member_configs("small_mlp", MEMBERS[:2], snapshots=False)
    folders = [store.RunDir(tmp_path / c.run_id()) for c in configs]
    with pytest.raises(GroupError, match="one after the other"):
        Trainer(configs, folders, tmp_path / "c.pt", group_dir=tmp_path / "g", kernels="exact",
                step_mode="capturable")


@pytest.mark.parametrize("model,size,kernels,extra", [
    ("small_mlp", 1, "auto", dict(label_smoothing=0.1)), ("small_mlp", 3, "batched", {}),
    ("small_cnn", 2, "batched", dict(optimizer="adamw", lr=0.003, momentum=None, nesterov=None)),
    ("resnet56", 2, "exact", dict(train_subset=64, amp=True))])
def test_the_captured_step_reads_nothing_back_from_the_device(tmp_path, monkeypatch, model, size, kernels, extra):
    """With the optimizer a CUDA graph captures (fused, the rate a tensor: forced here on the CPU), forward,
    backward, masking, the optimizer step and the epoch's sums dispatch no operation that reads the device."""
    monkeypatch.setattr(capture, "fused_optimizer", lambda device: True)
    members = [dict(density=0.2, prune="magnitude", grow="gradient", update_period=50, seed=k) for k in range(size)]
    configs = member_configs(model, members, snapshots=False, **extra)
    folders = [store.RunDir(tmp_path / c.run_id()) for c in configs]
    trainer = Trainer(configs, folders, tmp_path / "c.pt", group_dir=tmp_path / "g" if size > 1 else None,
                      kernels=kernels, step_mode="capturable")
    trainer._restore_or_start()
    trainer.train_step()  # the first step creates the optimizer's state (eager in a captured run: warm-up)
    assert trainer.steps + 1 < trainer._next_event and trainer.feed.full_next
    with OpRecorder() as recorder:
        trainer._captured_step()
    assert {"mm", "addmm", "bmm", "baddbmm", "convolution"} & recorder.ops
    assert recorder.ops & {"_fused_sgd_", "_fused_adamw_"}
    assert not recorder.ops & HOST_SYNCS, sorted(recorder.ops & HOST_SYNCS)


# ------------------------------------------------------------------------------ the captured path on a CPU

class _FakeGraph:
    """A CUDA graph's contract, on a CPU: capturing records the step without running it, and the replay right
    after the capture runs it (here: the capture runs the step and that first replay does nothing); every later
    replay runs the recorded step again on the same tensors. Laxer than a real graph in one way: each replay runs
    the step's Python again, where a graph would repeat the host decisions of its capture."""

    def __init__(self):
        self.body, self.pending, self.replays = None, False, 0

    def replay(self):
        if self.pending:
            self.pending = False
            return
        self.replays += 1
        self.body()


class _FakeStream:
    def wait_stream(self, other):
        pass


@pytest.fixture
def fake_cuda_graphs(monkeypatch):
    """The captured step mode on this CPU: torch.cuda's graph and stream calls faked, capture allowed."""
    graphs = []

    def capture_into(graph, body, stream):
        graph.body, graph.pending = body, True
        graphs.append(graph)
        return body()

    monkeypatch.setattr(capture, "capture_into", capture_into)
    monkeypatch.setattr(stepping, "uncapturable", lambda **_: None)
    for name, fake in (("CUDAGraph", _FakeGraph), ("Stream", lambda *_: _FakeStream()),
                       ("current_stream", lambda *_: _FakeStream()), ("stream", lambda *_: nullcontext()),
                       ("synchronize", lambda *_: None)):
        monkeypatch.setattr(torch.cuda, name, fake)
    return graphs


@pytest.mark.parametrize("members,kernels", [(SOLO[:1], "auto"), (MEMBERS[:4], "batched")], ids=["solo", "group"])
def test_the_captured_path_warms_up_captures_once_and_replays_between_events(tmp_path, fake_cuda_graphs, members,
                                                                             kernels):
    """The trainer's captured path (warm-up, one capture, replays; updates, probes, snapshots and the last partial
    batch eager between them) trains what the eager step trains, bit for bit (the optimizer stays foreach on a
    CPU: `capture.fused_optimizer`)."""
    configs = member_configs("small_mlp", members)
    _train(configs, tmp_path / "eager", "eager", kernels)
    folders = [store.RunDir(tmp_path / "captured" / c.run_id()) for c in configs]
    for folder, config in zip(folders, configs, strict=True):
        write_config(folder, config)
    trainer = Trainer(configs, folders, tmp_path / "captured" / "c.pt", kernels=kernels, step_mode="captured",
                      group_dir=tmp_path / "captured" / "group" if len(configs) > 1 else None)
    trainer.fit()
    (graph,) = fake_cuda_graphs
    assert trainer.step_mode == "captured" and trainer._graph.warm == capture.WARMUP_STEPS
    events = len({r["step"] for c in configs for r in store.RunDir(tmp_path / "eager" / c.run_id()).history()})
    assert 0 < graph.replays < trainer.total_steps - events - capture.WARMUP_STEPS
    for config in configs:
        assert_member_is_solo(tmp_path / "captured" / config.run_id(), tmp_path / "eager" / config.run_id())


def test_a_capture_that_fails_goes_on_eagerly_and_says_why(tmp_path, fake_cuda_graphs, monkeypatch, capsys):
    def fails(graph, body, stream):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore lines")

    monkeypatch.setattr(capture, "capture_into", fails)
    (config,) = member_configs("small_mlp", SOLO[:1])
    _train([config], tmp_path / "eager", "eager")
    folder = store.RunDir(tmp_path / "captured" / config.run_id())
    write_config(folder, config)
    trainer = Trainer([config], [folder], tmp_path / "captured" / "c.pt", step_mode="captured")
    trainer.fit()
    assert trainer.step_mode == "eager" and trainer._graph is None
    assert trainer.capture_reason.startswith("the capture failed (CUDA error")
    err = capsys.readouterr().err
    assert err.count("runs eagerly") == 1 and "the capture failed (CUDA error: operation not permitted" in err
    assert "more lines" not in err
    assert_member_is_solo(folder.path, tmp_path / "eager" / config.run_id())


def test_running_out_of_memory_in_the_capture_is_not_a_fallback(tmp_path, fake_cuda_graphs, monkeypatch):
    """A run group splits on it and tries again (`dstbench.train.group`); eager would hide it."""
    def oom(graph, body, stream):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(capture, "capture_into", oom)
    (config,) = member_configs("small_mlp", SOLO[:1])
    trainer = Trainer([config], [store.RunDir(tmp_path / "r")], tmp_path / "c.pt", step_mode="captured")
    with pytest.raises(RuntimeError, match="out of memory"):
        trainer.fit()
