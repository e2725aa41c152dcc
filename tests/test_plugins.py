"""A user's own criterion, registered in their module, used by the CLI and by worker processes."""

import os
import sys
import textwrap

import pytest

from dstbench import list_criteria, plugins, store
from dstbench.cli import main

PLUGIN = textwrap.dedent('''
    import dstbench

    @dstbench.register_criterion("test_plugin_squared", needs_grad=True)
    def squared(weight, grad, active, *, generator, lam: float = 1.0):
        """|w| + lam * w^2 |g|: magnitude with a second-order nudge."""
        return weight.abs() + lam * weight.pow(2) * grad.abs()
''')


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "my_criteria_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV, "")  # restored after the test, whatever load_plugins sets
    yield "my_criteria_plugin"
    sys.modules.pop("my_criteria_plugin", None)


def test_cli_plugin_registers_a_criterion_for_training(tmp_path, plugin_module, capsys):
    out = tmp_path / "run"
    code = main(["--plugin", plugin_module, "train", "--model", "small_mlp", "--dataset", "digits", "--epochs", "1",
                 "--density", "0.2", "--prune", "test_plugin_squared:lam=0.5", "--update-period", "5",
                 "--no-progress", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "test_plugin_squared" in list_criteria()
    assert os.environ[plugins.ENV] == plugin_module  # inherited by worker processes
    assert store.RunDir(out).summary()["status"] == "done"


def test_missing_plugin_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setenv(plugins.ENV, "")  # restored after the test, whatever load_plugins sets
    assert main(["--plugin", "no_such_module_xyz", "list", "criteria"]) == 2
    assert "no_such_module_xyz" in capsys.readouterr().err
