"""What the command line says before it trains (issue #22): `train` names the data, the steps and a time estimate
and warns about a topology that can never change; `sweep --dry-run` says what a sweep costs and whether its data
is there; a missing data set fails before anything is written."""

from dstbench import store
from dstbench.cli import main

TRAIN = ["train", "--model", "small_mlp", "--dataset", "digits", "--no-progress"]


def test_train_says_where_the_data_is_what_it_runs_and_about_how_long(tmp_path, capsys):
    assert main([*TRAIN, "--epochs", "1", "--update-period", "10", "--density", "0.2",
                 "--out", str(tmp_path / "r")]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "data: digits: embedded (scikit-learn load_digits)"
    assert lines[1] == "training: 1 epoch of 40 steps (40 steps, batch 32), 4 topology updates"
    assert lines[2].startswith("estimated time: ") and "on one CPU core" in lines[2] and "benchmarks/measured" in lines[2]
    assert lines[3].startswith("run ") and "warning" not in err
    # a finished run answers at once, without the plan
    assert main([*TRAIN, "--epochs", "1", "--update-period", "10", "--density", "0.2",
                 "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.startswith("run ")


def test_train_warns_when_the_update_period_is_longer_than_the_run(tmp_path, capsys):
    assert main([*TRAIN, "--epochs", "1", "--density", "0.1", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "dstbench train: warning: the update period (800 steps) is longer than the run (40 steps)" in err


def test_the_small_mlp_learns_digits_with_its_default_recipe(tmp_path, capsys):
    # The Higgs recipe (batch 128, LR 0.01) left it at chance (10%) after the 20 steps of two epochs.
    assert main([*TRAIN, "--epochs", "2", "--density", "0.1", "--out", str(tmp_path / "r")]) == 0
    summary = store.RunDir(tmp_path / "r").summary()
    assert summary["final_test_acc"] > 0.3


def test_a_missing_data_set_fails_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--model", "small_cnn", "--dataset", "cifar10", "--data-root", str(tmp_path / "data"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dstbench train: error: cifar10: data not found under ") and len(err.splitlines()) == 1
    assert f"dstbench data download cifar10 --root {tmp_path / 'data'}" in err
    assert not out.exists()


def test_a_dry_run_says_steps_costs_rates_and_missing_data(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('[base]\nmodel = "small_mlp"\nepochs = 2\nbatch_size = 32\n'
                    '[grid]\ndataset = ["digits", "cifar10"]\nseed = [0, 1]\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--dry-run", "--workers", "1",
                 "--data-root", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "s: 4 runs selected of 4" in out
    # digits: 40 steps per epoch; cifar10: 45,000 / 32 = 1,407 steps per epoch
    assert "  small_mlp / digits, 2 runs: 160 steps; CPU " in out
    assert "  small_mlp / cifar10, 2 runs: 5,628 steps; CPU " in out
    assert "  all 4 runs: 5,788 steps; CPU " in out and "with 1 worker on this machine's" in out
    assert "benchmarks/measured/run_groups-cpu.json" in out and "benchmarks/measured/gpu_check-h200.json" in out
    assert "  cifar10: MISSING: " in out and "  digits: found, embedded" in out
    assert not (tmp_path / "out").exists()


def test_list_filters_by_pattern_and_shows_specs_with_run_counts_and_descriptions(capsys):
    assert main(["list", "models", "*mlp*"]) == 0
    assert capsys.readouterr().out.split() == ["large_mlp", "small_mlp"]
    assert main(["list", "specs", "study-small-fig5"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[:3] == ["study-small-fig5", "16", "runs"] and "Update period sweep" in line
    assert main(["list", "criteria", "nothing*"]) == 2
    assert "no criteria match 'nothing*'" in capsys.readouterr().err
