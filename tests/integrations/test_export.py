"""Sparse export: a run's model as values plus bit-packed masks, exact when read back, with a per-layer table."""

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dstbench import DST, store
from dstbench.cli import main
from dstbench.errors import UserError
from dstbench.integrations.export import export_model, export_run, format_table, layer_table
from dstbench.weights import read_final_weights, read_weights


def test_flops_per_sample_are_two_per_multiply_accumulate_at_each_output_position():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(18, 4))
    masks = {"0.weight": torch.zeros(2, 1, 3, 3, dtype=torch.bool), "2.weight": torch.ones(4, 18, dtype=torch.bool)}
    masks["0.weight"].view(-1)[:5] = True
    rows = {r.name: r for r in layer_table(model, masks, torch.zeros(1, 1, 5, 5))}
    conv, fc = rows["0.weight"], rows["2.weight"]
    # the 3x3 kernel lands on 3x3 output pixels of a 5x5 input: 18 weights x 9 positions
    assert (conv.shape, conv.nonzeros, conv.dense_flops, conv.sparse_flops) == ((2, 1, 3, 3), 5, 2 * 18 * 9, 2 * 5 * 9)
    assert conv.density == pytest.approx(5 / 18)
    assert (fc.dense_flops, fc.sparse_flops, fc.density) == (2 * 72, 2 * 72, 1.0)
    text = format_table(list(rows.values()))
    assert "total" in text and f"{2 * 18 * 9 + 144:,}" in text and f"{2 * 5 * 9 + 144:,}" in text
    assert all(r.dense_flops is None for r in layer_table(model, masks))  # no sample, no FLOPs


def test_an_exported_dst_model_reads_back_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    dst = DST(model, opt, density=0.2, update_period=3, total_steps=12, prune="magnitude", grow="gradient")
    x, y = torch.randn(32, 16), torch.randint(0, 4, (32,))
    for _ in range(12):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        dst.step()
    rows = export_model(model, dst.masks, tmp_path / "m.npz", torch.zeros(1, 16))
    back = read_weights(tmp_path / "m.npz")
    for name, value in model.state_dict().items():
        assert torch.equal(back[name], value)
        active = dst.masks.get(name, torch.ones_like(value, dtype=torch.bool))
        assert torch.equal(back[name].view(torch.int32)[active], value.view(torch.int32)[active])
    assert [r.nonzeros for r in rows] == [int(m.sum()) for m in dst.masks.values()]


@pytest.mark.parametrize("density", [0.5, 0.2])
def test_dstbench_export_of_a_trained_run(tmp_path, capsys, density):
    run = tmp_path / "run"
    assert main(["train", "--model", "small_mlp", "--dataset", "digits", "--epochs", "1", "--no-progress",
                 "--density", str(density), "--update-period", "5", "--out", str(run)]) == 0
    out = tmp_path / "model.npz"
    assert main(["export", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "hidden.1.weight" in printed and "sparse FLOPs" in printed and "total" in printed
    final = read_final_weights(run)
    exported = read_weights(out)
    assert all(torch.equal(exported[k], final[k]) for k in final) and list(exported) == list(final)
    dense = io.BytesIO()
    torch.save(final, dense)  # what a run folder held before: model.pt, the dense state dict
    assert out.stat().st_size < dense.getbuffer().nbytes * (density + 0.1)
    masks = store.RunDir(run).masks("final")
    rows = {r.name: r for r in export_run(run, tmp_path / "again.npz")}
    assert all(rows[n].nonzeros == int(m.sum()) for n, m in masks.items())


def test_export_refuses_an_unfinished_run(tmp_path):
    (tmp_path / "r").mkdir()
    store.atomic_write_json(tmp_path / "r" / store.CONFIG, {"model": "small_mlp", "dataset": "digits"})
    with pytest.raises(UserError, match="not a finished run"):
        export_run(tmp_path / "r", tmp_path / "m.npz")
