import math

import pandas as pd
import pytest

from dstbench.analysis.aggregate import (
    CONDITION_FIELDS,
    curves,
    free_fields,
    independent_fields,
    loss_gap,
    matching,
    mode_of,
    setting_fields,
    sort_criteria,
    summarize,
    varying_fields,
)


def test_condition_fields_leave_out_seed_and_recording():
    assert "seed" not in CONDITION_FIELDS and "probe_steps" not in CONDITION_FIELDS
    assert {"model", "density", "prune", "grow", "update_period"} <= set(CONDITION_FIELDS)


def test_summarize_mean_sample_std_and_counts():
    df = pd.DataFrame({"prune": ["a", "a", "a", "b"], "seed": [2, 0, 1, 0], "acc": [0.5, 0.7, 0.6, 0.9]})
    out = summarize(df, "acc", ["prune"]).set_index("prune")
    assert out.loc["a", "mean"] == pytest.approx(0.6)
    assert out.loc["a", "std"] == pytest.approx(0.1)
    assert out.loc["a", "n"] == 3 and out.loc["a", "seeds"] == (0, 1, 2)
    assert math.isnan(out.loc["b", "std"]) and out.loc["b", "n"] == 1


def test_summarize_skips_missing_values_and_handles_empty():
    df = pd.DataFrame({"prune": ["a", "a"], "seed": [0, 1], "acc": [0.5, None]})
    assert summarize(df, "acc", ["prune"])["n"].tolist() == [1]
    assert summarize(df, "nothing", ["prune"]).empty


def test_varying_fields_counts_missing_as_a_value():
    df = pd.DataFrame({"model": ["m", "m"], "end_step": [None, 5.0], "density": [0.1, 0.1]})
    assert varying_fields(df, ["model", "end_step", "density"]) == ["end_step"]


def test_matching_ignores_fields_a_baseline_does_not_have():
    df = pd.DataFrame({"density": [0.1, 0.2, 0.1], "grow": ["random", "random", "gradient"]})
    assert len(matching(df, {"density": 0.1, "grow": "gradient"})) == 1
    assert len(matching(df, {"density": 0.1, "grow": "gradient"}, ignore=free_fields("static"))) == 2


def test_free_fields_names_valid_modes():
    assert "density" in free_fields("dense") and "density" not in free_fields("static")
    with pytest.raises(ValueError, match="valid modes: dst, static, dense"):
        free_fields("sparse")


def test_loss_gap_is_validation_minus_training_loss():
    metrics = pd.DataFrame({"run_id": ["r", "r"], "epoch": [1, 2], "train_loss": [1.0, 0.5],
                            "val_loss": [1.2, 0.9]})
    assert loss_gap(metrics)["loss_gap"].tolist() == pytest.approx([0.2, 0.4])
    with pytest.raises(ValueError, match="train_loss"):
        loss_gap(metrics.drop(columns="train_loss"))


def test_curves_average_seeds_per_epoch():
    metrics = pd.DataFrame({"run_id": ["r0", "r0", "r1", "r1"], "epoch": [1, 2, 1, 2],
                            "val_acc": [0.1, 0.3, 0.3, 0.5]})
    runs = pd.DataFrame({"run_id": ["r0", "r1"], "seed": [0, 1], "prune": ["m", "m"]})
    out = curves(metrics, runs, "val_acc", ["prune"])
    assert out["mean"].tolist() == pytest.approx([0.2, 0.4]) and out["n"].tolist() == [2, 2]
    with pytest.raises(ValueError, match="no column 'itop'"):
        curves(metrics, runs, "itop", ["prune"])


def test_criteria_in_paper_order_with_parameters_by_value():
    names = ["zeta", "snip", "mest:lam=10", "magnitude", "mest:lam=0.5", "mest", "set"]
    assert sort_criteria(names) == ["magnitude", "set", "mest", "mest:lam=0.5", "mest:lam=10", "snip", "zeta"]


def test_mode_from_column_or_config():
    assert mode_of(pd.Series({"mode": "static", "density": 0.1, "update_period": 800})) == "static"
    assert mode_of(pd.Series({"density": 1.0, "update_period": 0})) == "dense"
    assert mode_of(pd.Series({"density": 1.0, "update_period": 800})) == "dst"  # DST on the dense network
    assert mode_of(pd.Series({"density": 0.1, "update_period": 0})) == "static"
    assert mode_of(pd.Series({"density": 0.1, "update_period": 800})) == "dst"


def test_fields_set_per_model_are_dependent():
    # the spec's cases pair each model with its epochs and update period
    df = pd.DataFrame({"model": ["mlp", "mlp", "cnn", "cnn"], "dataset": ["a", "a", "b", "b"],
                       "epochs": [4, 4, 5, 5], "update_period": [5, 5, 10, 10], "density": [0.1, 0.2, 0.1, 0.2]})
    fields = ["model", "dataset", "epochs", "update_period", "density"]
    assert independent_fields(df, fields) == ["model", "dataset", "density"]
    assert independent_fields(df, ["epochs", "density"]) == ["epochs", "density"]
    assert setting_fields(df, exclude={"density"}) == ["model", "dataset"]
