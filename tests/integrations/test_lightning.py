"""The Lightning callback drives the one engine under Lightning's optimizer step, exactly."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.plugins.precision import MixedPrecision  # noqa: E402

from dstbench.integrations.lightning import DSTCallback  # noqa: E402

from .lightning_helpers import OPTIONS, QUIET, Exactness, Module, data, plain_loop  # noqa: E402


def fit(callbacks, module=None, loader=None, **trainer_args):
    module = module or Module()
    trainer = pl.Trainer(callbacks=callbacks, **{**QUIET, "max_epochs": 2, **trainer_args})
    trainer.fit(module, loader or data())
    return module, trainer


def test_a_fit_equals_the_engines_own_loop_bit_for_bit():
    callback = DSTCallback(**OPTIONS)
    exact = Exactness(callback)
    module, trainer = fit([callback, exact])
    dst = callback.dst
    assert dst.config.total_steps == trainer.estimated_stepping_batches == 24
    assert exact.checked == 24 and dst.steps == 24
    assert sorted({h["step"] for h in dst.history}) == [4, 8, 12, 16, 20, 24]
    assert dst.density() == pytest.approx(0.2, abs=1e-3)
    reference, ref_dst = plain_loop(data(), epochs=2, **OPTIONS)
    for (name, a), b in zip(module.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert all(torch.equal(dst.masks[n], ref_dst.masks[n]) for n in dst.masks)
    assert dst.history == ref_dst.history


def test_gradient_accumulation_equals_the_larger_batch():
    """Two batches of 4 accumulated are one batch of 8 (float64: the sums differ only in rounding)."""
    runs = {}
    for batch_size, accumulate in ((8, 1), (4, 2)):
        callback = DSTCallback(**OPTIONS)
        exact = Exactness(callback)
        loader = data(batch_size=batch_size, dtype=torch.float64)
        module, trainer = fit([callback, exact], Module(torch.float64), loader,
                              accumulate_grad_batches=accumulate)
        assert callback.dst.steps == trainer.estimated_stepping_batches == 24
        runs[accumulate] = (module, callback.dst)
    (one, dst_one), (two, dst_two) = runs[1], runs[2]
    assert dst_one.history == dst_two.history
    assert all(torch.equal(dst_one.masks[n], dst_two.masks[n]) for n in dst_one.masks)
    for a, b in zip(one.parameters(), two.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


class StopAfterFirstEpoch(pl.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def test_a_fit_resumed_from_a_lightning_checkpoint_equals_the_uninterrupted_one(tmp_path):
    straight, _ = fit([DSTCallback(**OPTIONS)])
    first = DSTCallback(**OPTIONS)
    _, trainer = fit([first, StopAfterFirstEpoch()])
    assert first.dst.steps == 12 and first.dst.config.total_steps == 24  # stopped half way, same schedule
    trainer.save_checkpoint(tmp_path / "half.ckpt")
    resumed_callback = DSTCallback(**OPTIONS)
    resumed = Module()
    pl.Trainer(callbacks=[resumed_callback], **{**QUIET, "max_epochs": 2}).fit(
        resumed, data(), ckpt_path=tmp_path / "half.ckpt")
    assert resumed_callback.dst.steps == 24
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


class Overflow(Module):
    """A loss that is inf on one batch: the scaler skips that optimizer step."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("inf") if self.global_step == 5 and batch_idx == 5 else loss


def test_amp_keeps_the_step_order_and_a_skipped_step_is_skipped_by_dst_too():
    callback = DSTCallback(**OPTIONS)
    exact = Exactness(callback)
    # Lightning turns "16-mixed" into bf16 on a CPU; its fp16 plugin with a CPU GradScaler is the GPU code path
    scaled = MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu"))
    fit([callback, exact], Overflow(), plugins=[scaled], max_epochs=1)
    assert exact.checked == 12
    assert callback.dst.steps == 11  # one of the twelve optimizer steps was skipped by the scaler
    assert sorted({h["step"] for h in callback.dst.history}) == [4, 8]
    bf16 = DSTCallback(**OPTIONS)
    fit([bf16, Exactness(bf16)], precision="bf16-mixed", max_epochs=1)
    assert bf16.dst.steps == 12 and bf16.dst.density() == pytest.approx(0.2, abs=1e-3)


def test_options_are_checked_before_training_and_one_optimizer_is_needed():
    with pytest.raises(ValueError, match="density"):
        DSTCallback(density=1.5)

    class Two(Module):
        def configure_optimizers(self):
            return [torch.optim.SGD(self.net[i].parameters(), lr=0.1) for i in (0, 2)]

        @property
        def automatic_optimization(self):
            return False

        def training_step(self, batch, batch_idx):
            return None

    with pytest.raises(ValueError, match="exactly one optimizer"):
        fit([DSTCallback(**OPTIONS)], Two(), max_epochs=1)


@pytest.mark.slow
def test_ddp_on_two_processes_keeps_identical_exact_masks_and_equals_one_process(tmp_path):
    script = Path(__file__).with_name("lightning_ddp.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key in ("history", "checked", "total_steps"):
        assert ranks[0][key] == ranks[1][key]
    assert ranks[0]["checked"] == ranks[0]["total_steps"] == 24
    for name in ranks[0]["state"]:
        assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name])
    callback = DSTCallback(**OPTIONS)
    single, _ = fit([callback], Module(torch.float64), data(batch_size=8, dtype=torch.float64))
    assert ranks[0]["history"] == callback.dst.history
    assert all(torch.equal(ranks[0]["masks"][n], callback.dst.masks[n]) for n in callback.dst.masks)
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=0, atol=1e-12)
