import json

import numpy as np
import pandas as pd
import pytest
import torch

import dstbench.data as data
from dstbench.data.errors import ChecksumMismatchWarning, DataFormatError, DataNotFoundError

N, FEATURES = 200, 4


def _table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(N, FEATURES)).astype(np.float32)
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(FEATURES)])
    frame["target"] = (np.arange(N) % 4 == 0).astype(int)  # 25% positives
    return frame


def write_arff(path, frame: pd.DataFrame) -> None:
    lines = ["% OpenML-style export", "@RELATION Higgs", ""]
    lines += [f"@ATTRIBUTE {c} NUMERIC" for c in frame.columns[:-1]] + ["@ATTRIBUTE target {0,1}", "", "@DATA"]
    lines += [",".join(f"{v:.9g}" for v in row[:-1]) + f",'{int(row[-1])}'" for row in frame.to_numpy()]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "arff"])
def test_higgs_formats_give_the_same_split(tmp_path, fmt):
    frame = _table()
    folder = tmp_path / "higgs"
    folder.mkdir()
    path = folder / f"higgs.{fmt}"
    {"parquet": lambda: frame.to_parquet(path), "csv": lambda: frame.to_csv(path, index=False),
     "arff": lambda: write_arff(path, frame)}[fmt]()
    splits = data.load("higgs", root=tmp_path)
    assert splits.sizes() == {"train": 140, "val": 30, "test": 30}
    assert (splits.task, splits.num_classes, splits.num_outputs, splits.input_shape) == ("binary", 2, 1, (4,))
    assert splits.train.x.dtype == torch.float32 and splits.train.y.dtype == torch.int64
    assert splits.mean is None and splits.std is None  # no feature scaling
    # stratified: of the 50 positives, 70% are in train and the rest split evenly
    positives = [int(splits.split(name).y.sum()) for name in ("train", "val", "test")]
    assert positives[0] == 35 and sorted(positives[1:]) == [7, 8]
    # the splits partition the rows, which come back unscaled
    rows = {tuple(np.round(r, 5)) for r in frame.iloc[:, :FEATURES].to_numpy()}
    seen = [tuple(np.round(r, 5)) for name in ("train", "val", "test") for r in splits.split(name).x.numpy()]
    assert len(seen) == len(set(seen)) == N and set(seen) == rows


def test_higgs_split_is_fixed_whatever_the_seed(tmp_path):
    _table().to_parquet(tmp_path / "h.parquet")
    a = data.load("higgs", root=tmp_path, seed=0)
    b = data.load("higgs", root=tmp_path, seed=7, cache=False)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.test.y, b.test.y)


def test_higgs_target_from_openml_description_and_checksum(tmp_path):
    frame = _table().rename(columns={"target": "signal"})
    frame = frame[["signal", *frame.columns[:-1]]]  # target first: only the description can tell
    frame.to_csv(tmp_path / "higgs.csv", index=False)
    (tmp_path / "description.json").write_text(json.dumps(
        {"data_set_description": {"default_target_attribute": "signal", "md5_checksum": "0" * 32}}))
    splits = data.load("higgs", root=tmp_path)
    assert splits.input_shape == (4,) and set(splits.train.y.tolist()) == {0, 1}


def test_higgs_arff_is_checked_against_the_published_md5(tmp_path):
    write_arff(tmp_path / "openml-44129.arff", _table())
    (tmp_path / "description.json").write_text(json.dumps({"data_set_description": {"md5_checksum": "0" * 32}}))
    with pytest.warns(ChecksumMismatchWarning, match=r"openml-44129.arff: md5 [0-9a-f]{32} does not match the "
                                                     r"official md5 0{32}"):
        data.load("higgs", root=tmp_path)


def test_higgs_missing_values_and_many_classes_are_errors(tmp_path):
    frame = _table()
    frame.loc[3, "f1"] = np.nan
    frame.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataFormatError, match=r"a.csv: missing values"):
        data.load("higgs", root=tmp_path)
    frame = _table()
    frame["target"] = np.arange(N) % 3
    frame.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataFormatError, match=r"a.csv: target 'target' has 3 classes"):
        data.load("higgs", root=tmp_path)


def test_higgs_malformed_arff_is_named(tmp_path):
    (tmp_path / "h.arff").write_text("@RELATION x\n@ATTRIBUTE a STRING\n@DATA\nfoo\n")
    with pytest.raises(DataFormatError, match=r"h.arff:2: attribute 'a' has type 'STRING'"):
        data.load("higgs", root=tmp_path)
    (tmp_path / "h.arff").write_text("@RELATION x\n@ATTRIBUTE a NUMERIC\n")
    with pytest.raises(DataFormatError, match=r"h.arff: no @data section"):
        data.load("higgs", root=tmp_path)


def test_higgs_not_found_says_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"higgs: data not found .* `dstbench data download higgs --root "):
        data.load("higgs", root=tmp_path)


def test_breast_cancer_is_standardised_with_training_statistics():
    splits = data.load("breast_cancer")
    assert tuple(splits.sizes().values()) == data.info("breast_cancer").split_sizes
    assert (splits.task, splits.num_outputs, splits.input_shape) == ("binary", 1, (30,))
    x = torch.cat([x for x, _ in splits.eval_batches("train")])
    assert torch.allclose(x.mean(0), torch.zeros(30), atol=1e-4)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(30), atol=1e-4)


def test_digits_are_small_uint8_images():
    splits = data.load("digits")
    assert tuple(splits.sizes().values()) == data.info("digits").split_sizes
    assert splits.train.x.shape[1:] == (1, 8, 8) and splits.train.x.dtype == torch.uint8
    assert int(splits.train.x.max()) == 16 and splits.pixel_scale == 16.0
    x = torch.cat([x for x, _ in splits.eval_batches("train")])
    assert x.mean().item() == pytest.approx(0.0, abs=1e-5) and x.std(unbiased=False).item() == pytest.approx(1.0)
    counts = torch.bincount(splits.test.y, minlength=10)
    assert counts.min() >= 25  # stratified: ~27 per class


def test_unknown_names_and_options_list_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown data set 'mnist'; valid names: breast_cancer, cifar10"):
        data.load("mnist")
    with pytest.raises(ValueError, match=r"higgs: unknown option\(s\) bogus; valid: cache, target"):
        data.load("higgs", root=tmp_path, bogus=1)
    assert data.info("Tiny-ImageNet").name == "tinyimagenet"
    assert data.list() == sorted(data.list()) and "higgs" in data.list()


def test_train_subset_is_drawn_with_the_seed():
    full = data.load("digits")
    a, b, c = (data.load("digits", train_subset=100, seed=s) for s in (0, 0, 1))
    assert len(a.train) == 100 and torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.y, c.train.y)
    assert torch.equal(a.val.x, full.val.x)
    with pytest.raises(ValueError, match="train_subset must be between 1 and"):
        data.load("digits", train_subset=10_000)


def test_higgs_split_is_the_paper_codes():
    """The paper's code holds out 30% (stratified, random_state 42), splits that 30%, in the order scikit-learn
    returns it, into halves, and calls the first half test and the second validation."""
    from sklearn.model_selection import train_test_split

    from dstbench.data.higgs import paper_split

    labels = np.random.default_rng(3).integers(0, 2, 200)
    train, val, test = paper_split(labels)
    rows = np.arange(200)
    _, held = train_test_split(rows, test_size=0.3, random_state=42, stratify=labels)
    first_half, second_half = train_test_split(held, test_size=0.5, random_state=42, stratify=labels[held])
    assert test.tolist() == sorted(first_half) and val.tolist() == sorted(second_half)
    assert (len(train), len(val), len(test)) == (140, 30, 30)
    assert sorted([*train, *val, *test]) == list(range(200))


def test_synthetic_tabular_is_higgs_shaped_and_the_same_bytes_for_the_same_seed():
    from dstbench.data.embedded import synthetic_table

    splits = data.load("synthetic_tabular")
    assert (splits.task, splits.num_outputs, splits.input_shape) == ("binary", 1, (24,))
    assert tuple(splits.sizes().values()) == data.info("synthetic_tabular").split_sizes == (14_000, 3_000, 3_000)
    assert splits.mean is None and splits.std is None and "synthetic" in splits.notes
    again = data.load("synthetic_tabular")
    for name in ("train", "val", "test"):
        assert splits.split(name).x.numpy().tobytes() == again.split(name).x.numpy().tobytes()
        assert splits.split(name).y.numpy().tobytes() == again.split(name).y.numpy().tobytes()
    x, y = synthetic_table(5, rows=300)
    assert x.tobytes() == synthetic_table(5, rows=300)[0].tobytes() and y.tobytes() == synthetic_table(5, rows=300)[1].tobytes()
    assert x.tobytes() != synthetic_table(6, rows=300)[0].tobytes()
    assert x.dtype == np.float32 and y.dtype == np.int64 and set(y.tolist()) == {0, 1}
    # stratified split of balanced classes
    assert abs(float(splits.train.y.float().mean()) - 0.5) < 0.01
