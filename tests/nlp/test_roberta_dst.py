"""DST fine-tuning of a (tiny) RoBERTa on (tiny) CommonsenseQA through the command line, as the appendix-C specs run
roberta_large: every criterion with both growth rules, exact densities, moving masks, finished run folders that
collect and report read; and gradient masking exact under AdamW for this model."""

import json

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from dstbench import models, store  # noqa: E402
from dstbench.cli import main  # noqa: E402
from dstbench.experiments import load_spec  # noqa: E402
from dstbench.sparsity import DST  # noqa: E402
from dstbench.sparsity.layers import sparse_parameters  # noqa: E402

from .tiny import write_commonsense_qa, write_tiny_roberta  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::dstbench.data.ChecksumMismatchWarning")
CRITERIA = ["magnitude", "set", "mest", "reciprocal_sensitivity", "snip"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("nlp")
    return write_tiny_roberta(root / "tiny-roberta"), write_commonsense_qa(root / "data", train=32, dev=8)


def _encoder_weights(model):
    return sorted(n for n, p in model.named_parameters() if p.ndim == 2 and ".encoder." in n)


def test_smc_benchs_sparse_weights_and_the_override(tiny):
    folder, _ = tiny
    model = models.build("roberta", num_classes=5, model_path=str(folder))
    assert sorted(sparse_parameters(model)) == _encoder_weights(model)  # 2 layers x (q, k, v, out, ffn in, out)
    assert len(sparse_parameters(model)) == 12
    wider = models.build("roberta", num_classes=5, model_path=str(folder), sparse_scope="all_linear")
    assert set(sparse_parameters(wider)) - set(sparse_parameters(model)) == {
        "net.roberta.pooler.dense.weight", "net.classifier.weight"}
    x = torch.randint(3, 100, (2, 5, 7))
    x[:, :, 5:] = model.pad_token_id
    assert model(x).shape == (2, 5)
    with pytest.raises(ValueError, match=r"expected token ids of shape \(N, 5, length\)"):
        model(x.float())
    with pytest.raises(FileNotFoundError, match=r"no RoBERTa weights .* in .*missing; fetch the model once, e.g. `huggingface-cli download"):
        models.build("roberta_large", num_classes=5, model_path=str(folder.parent / "missing"))


def test_gradient_masking_is_exact_under_adamw(tiny):
    # AdamW with weight decay, the recipe's betas and eps, several steps between updates: inactive weights stay
    # exactly zero without masking weights or optimizer state after the steps (gradient masking alone).
    folder, _ = tiny
    torch.manual_seed(0)
    model = models.build("roberta", num_classes=5, model_path=str(folder))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01, betas=(0.9, 0.98), eps=1e-6)
    dst = DST(model, opt, density=0.5, distribution="uniform", init_mask="global_magnitude", update_period=4,
              total_steps=12, prune="snip", grow="gradient")
    assert dst._grad_hook is not None  # the exact path: no per-step masking of weights and state
    g = torch.Generator().manual_seed(0)
    for _ in range(12):
        x = torch.randint(3, 200, (4, 5, 9), generator=g)
        y = torch.randint(0, 5, (4,), generator=g)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        dst.step()
        for layer in dst.layers:
            inactive = ~dst.masks[layer.name]
            assert int(layer.param.detach()[inactive].count_nonzero()) == 0
            for state in dst.optimizer_state.weight_state(layer.param):
                assert int(state[inactive].count_nonzero()) == 0
    assert {h["step"] for h in dst.history} == {4, 8, 12}


def test_every_criterion_and_growth_through_the_cli_then_collect_and_report(tmp_path, tiny):
    folder, data_root = tiny
    spec = tmp_path / "tiny-table.toml"
    spec.write_text(f"""
name = "tiny-table"
[base]
model = "roberta"
model_path = "{folder}"
dataset = "commonsense_qa"
data_root = "{data_root}"
distribution = "uniform"
init_mask = "global_magnitude"
update_period = 2
epochs = 2
batch_size = 8
lr = 1e-3
warmup_steps = 1
progress = false
[grid]
density = [0.5, 0.9]
grow = ["random", "gradient"]
prune = {json.dumps(CRITERIA)}
[report]
kinds = ["criteria_table", "update_period"]
""")
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1"]) == 0
    runs = load_spec(spec).expand()
    assert len(runs) == 20
    for planned in runs:
        folder_ = store.RunDir(out / "runs" / planned.run_id)
        summary = folder_.summary()
        assert summary["status"] == "done", summary["reason"]
        init, final = folder_.masks("init"), folder_.masks("final")
        total = sum(m.size for m in init.values())
        active = sum(int(m.sum()) for m in init.values())
        assert active == round(planned.config.density * 32 * 32) * 8 + round(planned.config.density * 32 * 64) * 4
        assert summary["final_density"] == pytest.approx(active / total, abs=0)
        assert {n: int(m.sum()) for n, m in final.items()} == {n: int(m.sum()) for n, m in init.items()}
        assert any((init[n] != final[n]).any() for n in init)  # the updates moved the masks
        history = folder_.history()
        assert {h["step"] for h in history} == set(range(2, summary["steps"] + 1, 2))
        assert all(h["pruned"] == h["grown"] for h in history) and sum(h["pruned"] for h in history) > 0
    assert main(["collect", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    html = (out / "report" / "report.html").read_text()
    assert "could not be computed" not in html
    tables_ = sorted((out / "report" / "tables" / "tiny-table").glob("criteria_table_*.csv"))
    assert len(tables_) == 2  # random and gradient growth: Table 5 and Table 6
    assert "(" in html and "<b>" in html and "<u>" in html


def test_gradient_checkpointing_gives_the_same_gradients(tiny):
    folder, _ = tiny
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = models.build("roberta", num_classes=5, model_path=str(folder))
        if checkpointing:
            model.gradient_checkpointing_enable()
        model.train()  # dropout on: the recomputation must replay its masks
        torch.manual_seed(1)
        x = torch.randint(3, 200, (2, 5, 9), generator=torch.Generator().manual_seed(0))
        model(x).logsumexp(1).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=0, atol=0, msg=name)
