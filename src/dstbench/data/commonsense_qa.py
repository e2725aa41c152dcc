"""CommonsenseQA (Talmor et al. 2019) from its official JSONL release, tokenised for a multiple-choice model.

One line per question: ``{"id": ..., "answerKey": "A".."E", "question": {"stem": ..., "choices": [{"label": "A",
"text": ...}, ... five]}}``. Splits as SMC-Bench uses them: ``train_rand_split.jsonl`` trains; the official test
set has no public answers, so SMC-Bench (like fairseq's RoBERTa example) reports accuracy on the dev set,
``dev_rand_split.jsonl``, which is here both the validation and the test split (9,741 / 1,221 / 1,221 questions).

Each (question, choice) pair becomes the input fairseq's CommonsenseQA task builds:
``<s> Q: {stem} </s> A: {choice} </s>``, as token ids of the model's tokenizer; a question too long for
`max_length` loses its last question tokens (never the answer's). The five inputs of a question are padded to the
longest input of the data set (at most `max_length`) with the tokenizer's pad id, so a split is one integer tensor
``(N, 5, L)`` and labels ``(N,)``; the model derives the attention mask from the padding. Tokenised splits are
cached next to the files (see `dstbench.data.cache`), keyed by the files' sha256, the tokenizer (a digest of its
full definition) and `max_length`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dstbench.data import cache as npy_cache
from dstbench.data.checksums import file_digest, warn_if_unofficial
from dstbench.data.errors import DataFormatError
from dstbench.data.locate import not_found
from dstbench.data.sources import COMMONSENSE_QA_DIR, COMMONSENSE_QA_FILES
from dstbench.data.splits import ArraySplit, DataSplits
from dstbench.errors import UserError
from dstbench.extras import missing_pretrained, require

LABELS = ("A", "B", "C", "D", "E")
TRAIN_FILE, DEV_FILE = "train_rand_split.jsonl", "dev_rand_split.jsonl"


@dataclass(frozen=True)
class Question:
    stem: str
    choices: tuple[str, ...]  # in label order A..E
    answer: int  # index into `choices`


def parse_line(line: str, where: str) -> Question:
    """One JSONL line as a `Question`; `where` ("file:line") names it in errors."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{where}: not a JSON object ({exc.msg}); the file is damaged, download it again") from None
    try:
        question = record["question"]
        stem, choices, key = question["stem"], question["choices"], record["answerKey"]
    except (KeyError, TypeError) as exc:
        raise DataFormatError(f"{where}: missing field {exc}; a CommonsenseQA line has answerKey and question "
                              "{stem, choices}") from None
    if not isinstance(stem, str) or not isinstance(choices, list):
        raise DataFormatError(f"{where}: question.stem must be text and question.choices a list")
    by_label = {}
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("text"), str) or "label" not in choice:
            raise DataFormatError(f"{where}: each choice needs a label and a text, got {choice!r}")
        by_label[choice["label"]] = choice["text"]
    if sorted(by_label) != list(LABELS) or len(choices) != len(LABELS):
        raise DataFormatError(f"{where}: a question has the five choices A-E, got labels "
                              f"{[c.get('label') for c in choices]}")
    if key not in LABELS:
        raise DataFormatError(f"{where}: answerKey {key!r} is not one of A-E (the official test file has no "
                              "answers and cannot be trained or evaluated on)")
    return Question(stem, tuple(by_label[label] for label in LABELS), LABELS.index(key))


def read_questions(path: Path) -> list[Question]:
    """Every question of a CommonsenseQA JSONL file (blank lines are skipped)."""
    questions = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                questions.append(parse_line(line, f"{path}:{number}"))
    if not questions:
        raise DataFormatError(f"{path}: no questions in the file; download it again")
    return questions


def _load_tokenizer(tokenizer: str):
    transformers = require("transformers", "nlp", "tokenising CommonsenseQA (Hugging Face's tokenizers)")
    folder = Path(tokenizer).expanduser()
    if not (folder / "tokenizer.json").is_file() and not (folder / "vocab.json").is_file():
        raise missing_pretrained(folder, "tokenizer (CommonsenseQA is tokenised with the model's own)")
    loaded = transformers.AutoTokenizer.from_pretrained(folder)
    if not loaded.is_fast or loaded.pad_token_id is None or loaded.bos_token_id is None or loaded.eos_token_id is None:
        raise UserError(f"tokenizer in {folder}: needs a fast tokenizer with <s>, </s> and <pad> tokens (RoBERTa's)")
    return loaded


def tokenizer_digest(tokenizer) -> str:
    """A digest of everything that decides the token ids: the fast tokenizer's full definition."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


def encode(questions: list[Question], tokenizer, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids ``(N, 5, L)`` (int32, padded) and labels ``(N,)``, as the module describes."""
    if max_length < 8:
        raise UserError(f"max_length {max_length} is too short for a question and an answer; use e.g. 512")
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    stems = tokenizer([f"Q: {q.stem}" for q in questions], add_special_tokens=False)["input_ids"]
    answers = tokenizer([f"A: {c}" for q in questions for c in q.choices], add_special_tokens=False)["input_ids"]
    rows = []
    for i, stem in enumerate(stems):
        for answer in answers[i * len(LABELS):(i + 1) * len(LABELS)]:
            answer = answer[:max_length - 4]  # room for <s>, </s>, </s> and one question token at least
            room = max_length - 3 - len(answer)
            rows.append([bos, *stem[:room], eos, *answer, eos])
    length = max(len(r) for r in rows)
    ids = np.full((len(rows), length), pad, dtype=np.int32)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = row
    labels = np.array([q.answer for q in questions], dtype=np.int64)
    return ids.reshape(len(questions), len(LABELS), length), labels


def questions_folder(root: Path) -> Path:
    """The folder with CommonsenseQA's two JSONL files under `root`."""
    folder = root / COMMONSENSE_QA_DIR
    missing = [name for name in (TRAIN_FILE, DEV_FILE) if not (folder / name).is_file()]
    if missing:
        raise not_found("commonsense_qa", root, [f"{COMMONSENSE_QA_DIR}/{m}" for m in missing])
    return folder


def load_commonsense_qa(root: Path, *, tokenizer: str | None = None, max_length: int | None = None,
                        cache: bool = True) -> DataSplits:
    """CommonsenseQA under ``root/commonsense_qa/``, tokenised with the tokenizer in folder `tokenizer`."""
    if tokenizer is None or max_length is None:
        raise UserError("commonsense_qa is text: it needs a model's tokenizer and max_length (train a RoBERTa model "
                        "on it, e.g. --model roberta_large, whose recipe sets max_length 512)")
    folder = questions_folder(root)
    digests = {}
    for name in (TRAIN_FILE, DEV_FILE):
        digests[name] = file_digest(folder / name)
    warn_if_unofficial("commonsense_qa", "sha256", [(f"{folder / name}", digests[name], COMMONSENSE_QA_FILES[name])
                                                    for name in (TRAIN_FILE, DEV_FILE)])
    tok = _load_tokenizer(tokenizer)
    key_text = "|".join([digests[TRAIN_FILE], digests[DEV_FILE], tokenizer_digest(tok), str(max_length)])
    key = "commonsense_qa-" + hashlib.sha256(key_text.encode()).hexdigest()[:20]

    def build() -> tuple[npy_cache.Arrays, npy_cache.Meta]:
        train_q, dev_q = read_questions(folder / TRAIN_FILE), read_questions(folder / DEV_FILE)
        ids, labels = encode(train_q + dev_q, tok, max_length)
        n = len(train_q)
        return ({"train_x": ids[:n], "train_y": labels[:n], "dev_x": ids[n:], "dev_y": labels[n:]},
                {"tokenizer": tokenizer_digest(tok), "max_length": max_length})

    arrays, _ = npy_cache.cached(key, folder, build, enabled=cache)
    train = ArraySplit.from_numpy(arrays["train_x"].astype(np.int64), arrays["train_y"])
    dev = ArraySplit.from_numpy(arrays["dev_x"].astype(np.int64), arrays["dev_y"])
    return DataSplits(
        name="commonsense_qa", task="multiple_choice", num_classes=len(LABELS),
        input_shape=tuple(train.x.shape[1:]), train=train, val=dev, test=dev, classes=LABELS,
        notes=f"official JSONL; dev set = validation and test (as SMC-Bench); '<s> Q: stem </s> A: choice </s>' "
              f"tokenised with {tokenizer}, max_length {max_length}, padded to {train.x.shape[2]}",
    )
