import json
import math

import pytest
import torch

from dstbench import store
from dstbench.cli import main
from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.sparsity import DST
from dstbench.sparsity.masks import prune_count
from dstbench.train import resolve_config
from dstbench.train.loop import ConfigMismatchError, run
from dstbench.train.trainer import Trainer
from dstbench.weights import read_final_weights

FAST = dict(model="small_mlp", dataset="digits", epochs=2, batch_size=64, lr=0.05, progress=False)


def cfg(**kw):
    return RunConfig(**{**FAST, **kw})


def metrics_without_time(folder):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in store.RunDir(folder).metrics()]


def test_dst_run_writes_the_run_folder(tmp_path):
    summary = run(cfg(density=0.2, update_period=5, prune="magnitude", grow="gradient"), tmp_path / "r")
    folder = store.RunDir(tmp_path / "r")
    assert summary["status"] == "done" and folder.status() == "done"
    assert summary == folder.summary()
    rows = folder.metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) >= {"train_loss", "train_acc", "val_loss", "val_acc", "test_acc", "lr", "prune_fraction",
                            "density", "itop", "seconds", "step"}
    assert summary["final_test_acc"] > 0.5  # digits: chance is 0.1
    assert summary["best_val_epoch"] in (1, 2) and summary["best_val_test_acc"] is not None
    assert abs(summary["final_density"] - 0.2) < 0.01 and summary["final_itop"] > summary["final_density"]
    assert summary["params_active"] < summary["params_total"]
    assert set(folder.mask_tags()) == {"init", "final"}
    final = folder.masks("final")
    assert sum(int(m.sum()) for m in final.values()) == pytest.approx(0.2 * sum(m.size for m in final.values()),
                                                                      abs=len(final))
    # every update kept each layer's count: the history counts pruned and grown weights from the masks
    init = folder.masks("init")
    history = folder.history()
    assert {h["step"] for h in history} == set(range(5, summary["steps"] + 1, 5))
    for h in history:
        assert h["active"] == int(init[h["layer"]].sum())
        assert h["pruned"] == h["grown"] == prune_count(h["prune_fraction"], h["active"])
    assert sum(h["pruned"] for h in history) > 0
    config = resolve_config(cfg(density=0.2, update_period=5, prune="magnitude", grow="gradient"))
    assert summary["run_id"] == config.run_id()
    assert json.loads((tmp_path / "r/config.json").read_text()) == config.model_dump(mode="json")


def test_dense_and_static_baselines(tmp_path):
    dense = run(cfg(density=1.0), tmp_path / "dense")
    static = run(cfg(density=0.2, update_period=0), tmp_path / "static")
    assert dense["final_density"] == 1.0 and dense["final_itop"] == 1.0
    assert static["final_itop"] == pytest.approx(static["final_density"])
    assert not store.RunDir(tmp_path / "static").history()
    assert store.RunDir(tmp_path / "dense").mask_tags() == []


def test_finished_run_is_not_retrained(tmp_path):
    first = run(cfg(density=0.3), tmp_path / "r")
    lines = (tmp_path / "r" / store.METRICS).read_text()
    assert run(cfg(density=0.3), tmp_path / "r") == first
    assert (tmp_path / "r" / store.METRICS).read_text() == lines


def test_interrupted_run_resumes_bit_identical(tmp_path, monkeypatch):
    config = cfg(epochs=3, density=0.25, update_period=7, prune="random", grow="random", dropout=0.1)
    run(config, tmp_path / "straight")

    original = Trainer._train_epoch

    def dies_after_epoch_two(self):
        original(self)
        if self.epoch == 2:
            raise KeyboardInterrupt  # after the epoch's checkpoint, like a kill between epochs

    monkeypatch.setattr(Trainer, "_train_epoch", dies_after_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "broken")
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    # a half-written metrics line from the killed process must not survive the resume
    with open(tmp_path / "broken" / store.METRICS, "a") as f:
        f.write('{"epoch": 3, "trunc')
    resumed = run(config, tmp_path / "broken")
    assert resumed["status"] == "done"
    assert metrics_without_time(tmp_path / "broken") == metrics_without_time(tmp_path / "straight")
    a = store.RunDir(tmp_path / "straight").masks("final")
    b = store.RunDir(tmp_path / "broken").masks("final")
    assert all((a[n] == b[n]).all() for n in a)
    wa = read_final_weights(tmp_path / "straight")
    wb = read_final_weights(tmp_path / "broken")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert store.RunDir(tmp_path / "broken").history() == store.RunDir(tmp_path / "straight").history()


def test_a_solo_checkpoint_of_the_trainer_before_groups_joined_it_resumes(tmp_path, monkeypatch):
    """Before the one trainer, a solo checkpoint kept its run's entries at the top, not in a members list."""
    config = cfg(epochs=3, density=0.25, update_period=7, update_batch_size=128)
    run(config, tmp_path / "straight")
    original = Trainer._train_epoch

    def dies_after_epoch_one(self):
        original(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_epoch", dies_after_epoch_one)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "old")
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    path = tmp_path / "old" / store.CHECKPOINT
    state = torch.load(path, weights_only=True)
    (member,) = state.pop("members")
    old = {**state, **{k: member[k] for k in ("dst", "batches", "update_batches", "best", "last_row")},
           "history_rows": len(member["dst"]["history"])}
    torch.save(old, path)
    assert run(config, tmp_path / "old")["status"] == "done"
    assert metrics_without_time(tmp_path / "old") == metrics_without_time(tmp_path / "straight")
    wa = read_final_weights(tmp_path / "straight")
    wb = read_final_weights(tmp_path / "old")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_other_config_in_the_folder_is_refused(tmp_path):
    run(cfg(density=0.3), tmp_path / "r")
    before = (tmp_path / "r" / store.SUMMARY).read_text()
    with pytest.raises(ConfigMismatchError, match="density"):
        run(cfg(density=0.4), tmp_path / "r")
    assert (tmp_path / "r" / store.SUMMARY).read_text() == before


def test_nan_loss_fails_the_run_with_its_reason(tmp_path):
    summary = run(cfg(density=0.3, lr=1e12, epochs=2), tmp_path / "r")
    assert summary["status"] == "failed"
    assert "nan" in summary["reason"].lower() or "inf" in summary["reason"].lower()
    assert store.RunDir(tmp_path / "r").status() == "failed"


def test_probes_snapshots_and_update_batch(tmp_path):
    config = cfg(density=0.3, update_period=6, probe_steps=(6,), probe_every=12,
                 probe_criteria=("magnitude", "snip", "random"), probe_fractions=(0.5, 0.25),
                 mask_snapshot_steps=(6,), update_batch_size=256)
    run(config, tmp_path / "r")
    folder = store.RunDir(tmp_path / "r")
    assert folder.probe_steps()[:2] == [6, 12]
    probe = folder.probe(6)
    assert set(probe) == {(c, f) for c in ("magnitude", "snip", "random") for f in (0.5, 0.25)}
    init = folder.masks("init")
    for name, mask in probe[("magnitude", 0.5)].items():
        assert int(mask.sum()) == math.ceil(0.5 * int(init[name].sum())) or init[name].all()
    assert "step_0000006" in folder.mask_tags()


def test_train_subset_is_fixed_across_seeds(tmp_path):
    a = run(cfg(train_subset=200, seed=0, epochs=1), tmp_path / "a")
    b = run(cfg(train_subset=200, seed=1, epochs=1), tmp_path / "b")
    assert a["steps"] == b["steps"] == math.ceil(200 / 64)


def test_init_from_reinitialises_a_mismatched_classifier(tmp_path):
    from dstbench.models import build
    from dstbench.train.checkpoint import load_pretrained

    source = build("small_mlp", in_features=64, num_classes=5)
    torch.save({"model": source.state_dict()}, tmp_path / "pre.pt")
    target = build("small_mlp", in_features=64, num_classes=10)
    with pytest.raises(UserError, match=r"of another shape \(file vs model\) 2: classifier.weight \(5, 256\) vs \(10, 256\)"):
        load_pretrained(target, tmp_path / "pre.pt")  # only when asked for
    skipped = load_pretrained(target, tmp_path / "pre.pt", partial=True)
    assert skipped and all(k.startswith(list(target.state_dict())[-1].rsplit(".", 2)[0]) for k in skipped)
    first = next(iter(source.state_dict()))
    assert torch.equal(target.state_dict()[first], source.state_dict()[first])


def test_input_dropout_reaches_the_mlp_as_in_the_papers_dropout_baseline():
    import dstbench.data
    from dstbench.train.setup import build_for

    data = dstbench.data.load("digits")
    model = build_for(cfg(model="large_mlp", dropout=0.05, input_dropout=0.05), data)
    assert isinstance(model.input_dropout, torch.nn.Dropout) and model.input_dropout.p == 0.05
    assert isinstance(model.dropout, torch.nn.Dropout) and model.dropout.p == 0.05
    assert isinstance(build_for(cfg(model="large_mlp", dropout=0.05), data).input_dropout, torch.nn.Identity)


def test_cli_train(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["train", "--model", "small_mlp", "--dataset", "digits", "--epochs", "1", "--density", "0.2",
                 "--prune", "set", "--grow", "random", "--update-period", "5", "--no-progress", "--out", str(out)])
    assert code == 0
    assert "done" in capsys.readouterr().out
    assert store.RunDir(out).status() == "done"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "nope", "--dataset", "digits"], "nope"),
        (["--model", "small_mlp", "--dataset", "nope"], "nope"),
        (["--model", "small_mlp", "--dataset", "digits", "--density", "1.5"], "density"),
        (["--model", "small_mlp", "--dataset", "digits", "--prune", "magnitud"], "valid: magnitude"),
        (["--model", "lenet5_caffe", "--dataset", "breast_cancer"], "lenet5_caffe"),
    ],
)
def test_cli_bad_input(tmp_path, capsys, argv, message):
    assert main(["train", *argv, "--epochs", "1", "--no-progress", "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err


def record_output_dtypes(monkeypatch):
    """The dtype of every model output the trainer's loss sees."""
    dtypes = []
    original = Trainer._losses

    def losses(self, out, y):
        dtypes.append(out.dtype)
        return original(self, out, y)

    monkeypatch.setattr(Trainer, "_losses", losses)
    return dtypes


def test_amp_run_trains_in_bfloat16_autocast(tmp_path, monkeypatch):
    dtypes = record_output_dtypes(monkeypatch)
    amp = run(cfg(density=0.2, update_period=5, amp=True), tmp_path / "amp")
    assert dtypes and set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    full = run(cfg(density=0.2, update_period=5), tmp_path / "fp32")
    assert dtypes and set(dtypes) == {torch.float32}
    assert amp["status"] == "done" and amp["config"]["amp"] is True and amp["run_id"] != full["run_id"]
    assert amp["final_test_acc"] > 0.5 and abs(amp["final_test_acc"] - full["final_test_acc"]) < 0.1
    # weights and masks stay float32 and exact under autocast
    assert abs(amp["final_density"] - 0.2) < 0.01
    weights = read_final_weights(tmp_path / "amp")
    assert all(w.dtype == torch.float32 for w in weights.values())


def test_update_reads_the_gradient_of_the_update_batch(tmp_path, monkeypatch):
    # At each topology update, .grad must be the gradient of the loss over one update batch (256 samples, not a
    # training batch of 64) at the weights the update sees.
    seen = []
    original_init, original_update = Trainer.__init__, DST._update

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.model.register_forward_pre_hook(lambda module, inputs: setattr(self, "last_x", inputs[0]))
        seen.append(self)

    def losses(self, out, y):
        self.last_y = y
        return original_losses(self, out, y)

    def update(dst, fraction):
        trainer = seen[0]
        x, y = trainer.last_x, trainer.last_y
        params = [layer.param for layer in dst._updatable()]
        with torch.enable_grad():
            out = trainer.layout.outputs(trainer.net(x))
            expected = torch.autograd.grad(trainer._total(original_losses(trainer, out, y)), params)
        matches = all(torch.allclose(p.grad, e, atol=1e-6) for p, e in zip(params, expected, strict=True))
        seen.append((len(y), matches))
        return original_update(dst, fraction)

    original_losses = Trainer._losses
    monkeypatch.setattr(Trainer, "__init__", init)
    monkeypatch.setattr(Trainer, "_losses", losses)
    monkeypatch.setattr(DST, "_update", update)
    run(cfg(density=0.3, update_period=6, update_batch_size=256, grow="gradient"), tmp_path / "r")
    updates = seen[1:]
    assert len(updates) == len(store.RunDir(tmp_path / "r").history()) // 2 > 0  # two sparse layers updated
    assert all(matches for _, matches in updates)
    # batches of the update stream: 256 samples, or what is left at the end of its pass over the data
    assert 256 in {n for n, _ in updates} and all(n > 64 for n, _ in updates)
