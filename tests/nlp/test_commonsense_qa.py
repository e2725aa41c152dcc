"""CommonsenseQA: the official JSONL format, its errors, the tokenised tensors and their cache, the download."""

import hashlib
import json

import pytest

pytest.importorskip("transformers")

import dstbench.data as dstdata  # noqa: E402
from data.server import Mirror  # noqa: E402  (tests/data, a package on the test path)
from dstbench.data import sources  # noqa: E402
from dstbench.data.commonsense_qa import encode, parse_line, read_questions  # noqa: E402
from dstbench.data.download import download  # noqa: E402
from dstbench.data.errors import ChecksumError, DataFormatError, DataNotFoundError  # noqa: E402
from dstbench.data.sources import Resource  # noqa: E402
from dstbench.errors import UserError  # noqa: E402

from .tiny import question_record, write_commonsense_qa, write_tiny_roberta  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::dstbench.data.ChecksumMismatchWarning")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_roberta(tmp_path_factory.mktemp("nlp") / "tiny-roberta")


def _line(**changes):
    import random

    record = question_record(0, random.Random(0))
    for key, value in changes.items():
        if key in ("stem", "choices"):
            record["question"][key] = value
        else:
            record[key] = value
    return json.dumps(record)


def test_a_line_is_parsed_in_label_order():
    record = {"answerKey": "C", "question": {"stem": "Where?", "choices": [
        {"label": label, "text": text} for label, text in zip("EDCBA", ["e", "d", "c", "b", "a"], strict=True)]}}
    question = parse_line(json.dumps(record), "f:1")
    assert question.choices == ("a", "b", "c", "d", "e") and question.answer == 2 and question.stem == "Where?"


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", r"f:3: not a JSON object"),
    (_line(answerKey="F"), r"f:3: answerKey 'F' is not one of A-E"),
    (json.dumps({"id": "x", "question": {"stem": "s", "choices": []}}), r"f:3: missing field 'answerKey'"),
    (_line(choices=[{"label": "A", "text": "x"}]), r"f:3: a question has the five choices A-E"),
    (_line(choices=[{"label": "A"}] * 5), r"f:3: each choice needs a label and a text"),
    (_line(stem=3), r"f:3: question.stem must be text"),
])
def test_malformed_lines_are_named_errors(line, message):
    with pytest.raises(DataFormatError, match=message):
        parse_line(line, "f:3")


def test_the_official_test_file_without_answers_is_refused(tmp_path):
    record = json.loads(_line())
    del record["answerKey"]
    path = tmp_path / "test_rand_split_no_answers.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(DataFormatError, match=r"test_rand_split_no_answers.jsonl:1: missing field 'answerKey'"):
        read_questions(path)
    path.write_text("\n\n")
    with pytest.raises(DataFormatError, match="no questions in the file"):
        read_questions(path)


def test_a_missing_file_names_it_and_the_download(tmp_path, tiny_model):
    (tmp_path / "commonsense_qa").mkdir()
    write_commonsense_qa(tmp_path)
    (tmp_path / "commonsense_qa" / "dev_rand_split.jsonl").unlink()
    with pytest.raises(DataNotFoundError, match=r"missing commonsense_qa/dev_rand_split.jsonl; get them with "
                                                r"`dstbench data download commonsense_qa"):
        dstdata.load("commonsense_qa", root=tmp_path, tokenizer=str(tiny_model), max_length=64)
    with pytest.raises(UserError, match="needs a model's tokenizer and max_length"):
        dstdata.load("commonsense_qa", root=tmp_path)
    write_commonsense_qa(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no tokenizer .* in .*empty; fetch the model once, e.g. `huggingface-cli download"):
        dstdata.load("commonsense_qa", root=tmp_path, tokenizer=str(tmp_path / "empty"), max_length=64)


def test_inputs_are_fairseqs_question_answer_pairs(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    questions = [parse_line(_line(), "f:1")]
    ids, labels = encode(questions, tok, max_length=64)
    assert ids.shape[:2] == (1, 5) and labels.tolist() == [questions[0].answer]
    for choice, row in zip(questions[0].choices, ids[0], strict=True):
        text = tok.decode([t for t in row.tolist() if t != tok.pad_token_id])
        assert text == f"<s>Q: {questions[0].stem}</s>A: {choice}</s>"
    assert ids.shape[2] == max(int((row != tok.pad_token_id).sum()) for row in ids[0])  # padded to the longest
    short, _ = encode(questions, tok, max_length=12)  # the question is cut, the answer kept
    assert short.shape[2] == 12
    assert tok.decode(short[0, 0].tolist()).endswith(f"</s>A: {questions[0].choices[0]}</s>")


def test_splits_and_the_cache_keyed_by_tokenizer_and_length(tmp_path, tiny_model):
    write_commonsense_qa(tmp_path, train=10, dev=4)
    first = dstdata.load("commonsense_qa", root=tmp_path, tokenizer=str(tiny_model), max_length=64)
    assert first.sizes() == {"train": 10, "val": 4, "test": 4} and first.task == "multiple_choice"
    assert first.val is first.test and first.num_outputs == 5 and first.input_shape[0] == 5
    entries = lambda: sorted(p.name for p in (tmp_path / "commonsense_qa" / ".dstbench-cache").iterdir())  # noqa: E731
    assert len(entries()) == 1
    again = dstdata.load("commonsense_qa", root=tmp_path, tokenizer=str(tiny_model), max_length=64)
    assert (again.train.x == first.train.x).all() and len(entries()) == 1
    dstdata.load("commonsense_qa", root=tmp_path, tokenizer=str(tiny_model), max_length=20)
    assert len(entries()) == 2
    other = write_tiny_roberta(tmp_path / "other-tokenizer")
    (other / "tokenizer.json").write_text((other / "tokenizer.json").read_text().replace('"<mask>"', '"<MASK>"'))
    dstdata.load("commonsense_qa", root=tmp_path, tokenizer=str(other), max_length=64)
    assert len(entries()) == 3
    x, y = next(iter(first.batches("train", 4, seed=0)))
    assert x.dtype == first.train.x.dtype and tuple(x.shape) == (4, *first.input_shape) and y.max() < 5


def test_download_verifies_sha256_from_a_mirror(tmp_path, monkeypatch):
    served = write_commonsense_qa(tmp_path / "served" / "commensenseqa", train=6, dev=3) / "commonsense_qa"
    resources = [Resource(r.url, r.filename, hashlib.sha256((served / r.filename.split("/")[-1]).read_bytes())
                          .hexdigest()) for r in sources.RESOURCES["commonsense_qa"]]
    assert [r.url.rsplit("/", 1)[-1] for r in resources] == ["train_rand_split.jsonl", "dev_rand_split.jsonl"]
    for name in ("train_rand_split.jsonl", "dev_rand_split.jsonl"):
        (tmp_path / "served" / "commensenseqa" / name).write_bytes((served / name).read_bytes())
    monkeypatch.setitem(sources.RESOURCES, "commonsense_qa", resources)
    with Mirror(tmp_path / "served") as mirror:
        paths = download("commonsense_qa", tmp_path / "root", mirror=mirror.url, report=lambda _: None)
        assert [p.relative_to(tmp_path / "root").as_posix() for p in paths] == [
            "commonsense_qa/train_rand_split.jsonl", "commonsense_qa/dev_rand_split.jsonl"]
        assert [path for path, _ in mirror.log] == ["/commensenseqa/train_rand_split.jsonl",
                                                   "/commensenseqa/dev_rand_split.jsonl"]
        bad = [Resource(resources[0].url, "elsewhere/train.jsonl", "0" * 64)]
        monkeypatch.setitem(sources.RESOURCES, "commonsense_qa", bad)
        with pytest.raises(ChecksumError, match="sha256 .* differs from the official 0000"):
            download("commonsense_qa", tmp_path / "root", mirror=mirror.url, report=lambda _: None)
    assert not (tmp_path / "root" / "elsewhere" / "train.jsonl.part").exists()


def test_the_official_sources_are_the_s3_release():
    urls = [r.url for r in sources.RESOURCES["commonsense_qa"]]
    assert urls == ["https://s3.amazonaws.com/commensenseqa/train_rand_split.jsonl",
                    "https://s3.amazonaws.com/commensenseqa/dev_rand_split.jsonl"]
    assert all(r.algorithm == "sha256" for r in sources.RESOURCES["commonsense_qa"])
