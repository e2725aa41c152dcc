"""The README's library example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_training_loop_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    loop = next(b for b in blocks if "DST(model, opt" in b)
    exec(compile(loop, str(README), "exec"), {})  # noqa: S102 - our own README, not a config
    printed = capsys.readouterr().out
    assert printed.startswith("density 0.1") and "ITOP" in printed
