"""Made-in-the-test stand-ins for the appendix-C pieces: a tiny RoBERTa folder (random weights, 2 layers, hidden 32,
a byte-level vocabulary of 262 tokens) and CommonsenseQA-format JSONL files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

LABELS = "ABCDE"
WORDS = ("fox", "hen", "house", "river", "bank", "money", "store", "tree", "bird", "car", "road", "book")


def question_record(index: int, rng: random.Random) -> dict:
    """A CommonsenseQA line: the answer is the word the stem names, so a model can learn it."""
    words = rng.sample(WORDS, 5)
    answer = rng.randrange(5)
    return {
        "id": f"q{index}",
        "answerKey": LABELS[answer],
        "question": {"question_concept": "thing", "stem": f"Which one is the {words[answer]}?",
                     "choices": [{"label": label, "text": word} for label, word in zip(LABELS, words, strict=True)]},
    }


def write_questions(path: Path, count: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(question_record(i, rng)) + "\n" for i in range(count)), encoding="utf-8")
    return path


def write_commonsense_qa(root: Path, train: int = 48, dev: int = 16) -> Path:
    """``root/commonsense_qa/{train,dev}_rand_split.jsonl``; returns `root`."""
    write_questions(root / "commonsense_qa" / "train_rand_split.jsonl", train, seed=0)
    write_questions(root / "commonsense_qa" / "dev_rand_split.jsonl", dev, seed=1)
    return root


def write_tiny_roberta(folder: Path, seed: int = 0) -> Path:
    """A `save_pretrained` folder: config, safetensors weights and a fast byte-level BPE tokenizer."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaConfig, RobertaForMultipleChoice, RobertaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {tok: i for i, tok in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *sorted(ByteLevel.alphabet())])}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=96, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2)
    torch.manual_seed(seed)
    RobertaForMultipleChoice(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
