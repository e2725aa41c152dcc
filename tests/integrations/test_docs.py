"""The README's integration examples (its section "Integrations") run as written."""

import re
from pathlib import Path

import pytest

from dstbench.cli import main

DOC = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.slow  # two real fits and a training run: about 15 s on a loaded 2-core machine
def test_the_python_examples_run_in_order(tmp_path, monkeypatch, capsys):
    pytest.importorskip("lightning")
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    monkeypatch.chdir(tmp_path)
    # what the shell example before the last block makes (without trackers: that part is tested on its own)
    assert main(["train", "--model", "small_mlp", "--dataset", "digits", "--density", "0.1", "--update-period", "10",
                 "--epochs", "1", "--no-progress", "--out", "runs/demo"]) == 0
    assert main(["export", "runs/demo", "--out", "demo.npz"]) == 0
    text = DOC.read_text()
    section = text[text.index("## Integrations"):text.index("\n## ", text.index("## Integrations") + 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    printed = capsys.readouterr().out
    assert "density 0.100, ITOP" in printed and "density 0.200 over" in printed
    assert (tmp_path / "hf-out" / "checkpoint-20" / "dst_state.pt").exists()
    assert [r.name for r in namespace["rows"]] == ["net.0.weight", "net.2.weight"]
