"""The command line's error contract (issues #9.5, #14.6): user errors are one line naming the problem and the fix,
OS errors one line naming the path, the cause and what to do; anything else is a bug, printed with its traceback."""

import errno

import pytest
import torch

from dstbench import cli
from dstbench.cli import main

TRAIN = ["train", "--model", "small_mlp", "--dataset", "digits", "--epochs", "1", "--no-progress"]


@pytest.mark.parametrize(("flags", "field"), [
    (["--device", "bogus"], "device = 'bogus'"),
    (["--num-threads", "-1"], "num_threads = -1"),
    (["--erk-power", "nan"], "erk_power = nan"),
    (["--prune", "magnitud"], "prune = 'magnitud'"),
    (["--prune", "mest:lam=abc"], "lam = 'abc'"),
    (["--distribution", "erk:power=x"], "erk_power"),
])
def test_bad_train_flags_fail_before_anything_is_written(tmp_path, capsys, flags, field):
    assert main([*TRAIN, "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dstbench train: error: invalid configuration: ") and field in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_an_unknown_rule_names_the_valid_ones(tmp_path, capsys):
    assert main([*TRAIN, "--out", str(tmp_path / "r"), "--prune", "magnitud"]) == 2
    assert "valid: magnitude, mest" in capsys.readouterr().err


def test_a_bug_prints_its_traceback_and_says_so(monkeypatch, capsys):
    def broken(args):
        raise KeyError("internal")

    parser = cli.build_parser()
    args = parser.parse_args(["list", "models"])
    monkeypatch.setattr(cli, "build_parser", lambda: _Fixed(parser, args, broken))
    assert main(["list", "models"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'internal'" in err
    assert "this is a bug in dstbench" in err


class _Fixed:
    """A parser whose parsed arguments call `func`."""

    def __init__(self, parser, args, func):
        self.parser, self.args, self.func = parser, args, func

    def parse_args(self, argv):
        self.args.func = self.func
        return self.args


@pytest.mark.parametrize(("code", "fix"), [
    (errno.ENOSPC, "free some space and rerun"),
    (errno.EROFS, "choose another output folder"),
    (errno.ENOTDIR, "is a file, not a folder"),
])
def test_os_errors_are_one_line_with_path_cause_and_fix(monkeypatch, capsys, code, fix):
    def fails(args):
        raise OSError(code, __import__("os").strerror(code), "/results/runs/abc/metrics.jsonl")

    parser = cli.build_parser()
    args = parser.parse_args(["list", "models"])
    monkeypatch.setattr(cli, "build_parser", lambda: _Fixed(parser, args, fails))
    assert main(["list", "models"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("dstbench list: error: /results/runs/abc/metrics.jsonl: ") and fix in err


def test_out_pointing_at_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main([*TRAIN, "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err.strip()
    assert "file" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_user_error_has_its_own_module_without_a_cycle_through_the_cli():
    import subprocess
    import sys

    code = "import sys, dstbench.errors, dstbench.store; print('dstbench.cli' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_failed_train_says_how_to_retry(tmp_path, capsys):
    from dstbench.config import RunConfig
    from dstbench.experiments.worker import write_failed
    from dstbench.train import resolve_config

    config = resolve_config(RunConfig(model="small_mlp", dataset="digits", epochs=1, progress=False))
    (tmp_path / "r").mkdir()
    write_failed(tmp_path / "r", config, "RuntimeError: boom", 1.0)
    assert main([*TRAIN, "--out", str(tmp_path / "r")]) == 1
    assert "failed: RuntimeError: boom (train it again with --retry-failed)" in capsys.readouterr().err
    assert main([*TRAIN, "--out", str(tmp_path / "r"), "--retry-failed"]) == 0
    assert "done" in capsys.readouterr().out


def test_a_spec_with_a_bad_rule_fails_at_sweep_start_and_in_dry_run(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('[base]\nmodel = "small_mlp"\ndataset = "digits"\n[grid]\nprune = ["magnitude", "mest:lam=abc"]\n')
    for extra in ([], ["--dry-run"]):
        assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "0", *extra]) == 2
        err = capsys.readouterr().err
        assert "bad.toml: [grid] prune = 'mest:lam=abc'" in err and "lam = 'abc'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


SPEC = '[base]\nmodel = "small_mlp"\ndataset = "digits"\nepochs = 1\ndensity = 0.5\n[grid]\nseed = [0, 1]\n'


@pytest.mark.parametrize(("flags", "says"), [
    (["--workers", "-1"], "workers must be at least 0 for local, got -1"),
    (["--group-size", "0"], "--group-size: group_size must be a positive integer or 'auto', got '0'"),
    (["--group-size", "-3"], "got '-3'"),
    (["--group-size", "abc"], "got 'abc'"),
    (["--group-size", "1.5"], "got '1.5'"),
    (["--group-size", ""], "got ''"),
    (["--num-threads", "0"], "num_threads = 0"),
    (["--device", "tpu"], "device = 'tpu'"),
    (["--no-wait"], "cannot detach"),
])
@pytest.mark.parametrize("dry_run", [False, True])
def test_the_dry_run_refuses_what_the_real_run_refuses_before_anything_is_written(tmp_path, capsys, flags, says,
                                                                                   dry_run):
    (tmp_path / "s.toml").write_text(SPEC)
    out = tmp_path / "out"
    argv = ["sweep", str(tmp_path / "s.toml"), "--out", str(out), "--no-progress", *flags]
    assert main(argv + (["--dry-run"] if dry_run else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("dstbench sweep: error: ") and says in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_dry_run_counts_the_selected_runs_per_arm(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SPEC + '[arms.dense]\nbase = {density = 1.0}\ngrid = {seed = [0]}\n')
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--dry-run",
                 "--only", "seed=0"]) == 0
    assert capsys.readouterr().out.startswith("s: 2 runs selected of 3 grid points (main: 1, dense: 1); 0 failed to retry\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "says"), [
    (["--dense-layers", "nosuch"], "dense layer 'nosuch' is not a sparse weight; valid: hidden.0.weight, "),
    (["--dense-layers", "hidden.0,nosuch"], "dense layer 'nosuch'"),
    (["--grow", "momentum", "--momentum", "0", "--no-nesterov"],
     "grow = 'momentum' reads the optimizer's momentum, which sgd with momentum 0.0 does not keep"),
    (["--probe-every", "5", "--probe-criteria", "magnitude", "--optimizer", "sgd", "--momentum", "0.9"], None),
    (["--momentum", "0"], "torch refuses the optimizer optimizer = 'sgd', lr = 0.05, momentum = 0.0, nesterov = True"),
    (["--optimizer", "adam", "--adam-betas", "0.9,1.5"], "Invalid beta parameter at index 1: 1.5"),
    (["--train-subset", "100000"], "train_subset must be between 1 and the training split's size 1257, got 100000"),
    (["--mask-snapshot-steps", "10,-5"], "step -5 is negative: mask_snapshot_steps are optimizer steps"),
    (["--probe-steps", "-3", "--probe-criteria", "magnitude"], "step -3 is negative: probe_steps"),
    pytest.param(["--device", "cuda"], "device 'cuda' was asked for but CUDA is not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")),
    (["--density", "0.5", "--schedule", "linear:every=-5"], "parameter every = -5 must be > 0 (default 600)"),
    (["--density", "0.5", "--schedule", "linear:factor=2"], "parameter factor = 2.0 must be > 0.0 and <= 1.0"),
    (["--density", "0.5", "--prune", "mest:lam=-1"], "parameter lam = -1.0 must be >= 0.0 (default 1.0)"),
    (["--distribution", "erk:power=-1"], "erk_power = -1"),
    (["--recipe", "nosuch"], "unknown recipe 'nosuch'; valid: "),
    (["--model", "lenet5_caffe", "--dropout", "0.1"], "model 'lenet5_caffe' has no dropout option"),
    (["--model", "lenet5_caffe", "--input-dropout", "0.1"], "has no option input_dropout"),
    (["--model", "lenet5_caffe", "--dataset", "breast_cancer"], "does not fit data set 'breast_cancer'"),
])
def test_user_mistakes_fail_as_one_line_before_anything_is_written(tmp_path, capsys, flags, says):
    """Issue #18.5 / #21.5: every bad value is refused before the run folder exists, as one line that names it."""
    argv = [*TRAIN, "--out", str(tmp_path / "r"), *flags]
    if says is None:  # a control: the same kind of flags, valid, trains
        assert main(argv) == 0
        return
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dstbench train: error: ") and says in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("base", "says"), [
    ('dense_layers = ["nosuch"]', "arm 'main': dense_layers of model 'small_mlp': dense layer 'nosuch'"),
    ('grow = "momentum"\nmomentum = 0.0\nnesterov = false', "grow = 'momentum' reads the optimizer's momentum"),
    ('schedule = "linear:every=-5"', "[base] schedule = 'linear:every=-5': schedule 'linear': parameter every"),
])
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_spec_with_a_value_the_run_would_refuse_fails_before_anything_is_written(tmp_path, capsys, base, says,
                                                                                  dry_run):
    (tmp_path / "s.toml").write_text(SPEC.replace("[grid]", base + "\n[grid]"))
    out = tmp_path / "out"
    argv = ["sweep", str(tmp_path / "s.toml"), "--out", str(out), "--workers", "0", "--no-progress"]
    assert main(argv + (["--dry-run"] if dry_run else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dstbench sweep: error: {tmp_path / 's.toml'}: ") and says in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
