"""The Hugging Face Trainer callback drives the one engine under the Trainer's optimizer step; resume included.
A tiny RoBERTa built here from a config (random weights: nothing downloaded)."""

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    RobertaConfig,
    RobertaForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,  # noqa: E402
)

from dstbench.errors import UserError  # noqa: E402
from dstbench.integrations.transformers import STATE_FILE, DSTCallback  # noqa: E402

OPTIONS = dict(density=0.3, prune="magnitude", grow="gradient", update_period=3)


def tiny_roberta() -> RobertaForSequenceClassification:
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=20, num_labels=2, pad_token_id=1)
    return RobertaForSequenceClassification(config)


class Tokens(torch.utils.data.Dataset):
    """The label is whether token 5 occurs: learnable, made up here."""

    def __init__(self, n: int = 48):
        g = torch.Generator().manual_seed(2)
        self.ids = torch.randint(3, 12, (n, 10), generator=g)
        self.labels = (self.ids == 5).any(1).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


class Exactness(TrainerCallback):
    """After every optimizer step: exact layer counts, zero inactive weights and Adam moments."""

    def __init__(self, dst_callback):
        self.dst_callback, self.checked, self.counts = dst_callback, 0, None

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        dst = self.dst_callback.dst
        assert dst.steps == state.global_step
        self.counts = self.counts or {n: int(m.sum()) for n, m in dst.masks.items()}
        params = dict(model.named_parameters())
        for name, mask in dst.masks.items():
            assert int(mask.sum()) == self.counts[name]
            assert not params[name][~mask].any()
            moments = optimizer.optimizer.state[params[name]]
            assert not moments["exp_avg"][~mask].any() and not moments["exp_avg_sq"][~mask].any()
        self.checked += 1


def train(tmp_path, callbacks, model=None, resume=None, **args):
    model = model or tiny_roberta()
    arguments = TrainingArguments(**{
        "output_dir": str(tmp_path), "max_steps": 12, "per_device_train_batch_size": 8, "learning_rate": 5e-3,
        "save_strategy": "steps", "save_steps": 6, "report_to": [], "logging_strategy": "no", "use_cpu": True,
        "disable_tqdm": True, "seed": 0, "dataloader_num_workers": 0, **args})
    trainer = Trainer(model=model, args=arguments, train_dataset=Tokens(), callbacks=callbacks)
    trainer.train(resume_from_checkpoint=resume)
    return model, trainer


def test_a_trainer_run_keeps_the_engines_exactness_and_update_steps(tmp_path):
    callback = DSTCallback(**OPTIONS)
    exact = Exactness(callback)
    model, _ = train(tmp_path, [callback, exact])
    dst = callback.dst
    assert exact.checked == 12 and dst.config.total_steps == 12
    assert sorted({h["step"] for h in dst.history}) == [3, 6, 9, 12]
    assert dst.density() == pytest.approx(0.3, abs=1e-3)
    assert "classifier.out_proj.weight" in dst.masks and "roberta.embeddings.word_embeddings.weight" not in dst.masks
    assert (tmp_path / "checkpoint-6" / STATE_FILE).exists()


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    callback = DSTCallback(**OPTIONS)
    exact = Exactness(callback)
    train(tmp_path, [callback, exact], per_device_train_batch_size=4, gradient_accumulation_steps=2)
    assert exact.checked == callback.dst.steps == 12
    assert sorted({h["step"] for h in callback.dst.history}) == [3, 6, 9, 12]


def test_a_run_resumed_from_a_trainer_checkpoint_equals_the_uninterrupted_one(tmp_path):
    straight, _ = train(tmp_path / "straight", [DSTCallback(**OPTIONS)])
    train(tmp_path / "broken", [DSTCallback(**OPTIONS)])  # its checkpoint-6 is where a crash would resume
    callback = DSTCallback(**OPTIONS)
    resumed, _ = train(tmp_path / "broken", [callback], resume=str(tmp_path / "broken" / "checkpoint-6"))
    assert callback.dst.steps == 12
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_resuming_a_checkpoint_without_dst_state_is_refused(tmp_path):
    train(tmp_path, [])
    with pytest.raises(UserError, match=STATE_FILE):
        train(tmp_path, [DSTCallback(**OPTIONS)], resume=str(tmp_path / "checkpoint-6"))
