"""RoBERTa with a multiple-choice head (Hugging Face `transformers`), for the paper's appendix C: DST fine-tuning
on CommonsenseQA as SMC-Bench ("Sparsity May Cry", Liu et al. 2023) sets it up.

An optional extra: ``pip install -e ".[nlp]"``. Registering the names needs nothing; building one imports
`transformers` and says how to install it when it is missing. The weights load from a local folder (a
`save_pretrained` layout with ``config.json``, ``model.safetensors`` and the tokenizer's files): no download at run
time. Fetch roberta-large once with::

    huggingface-cli download FacebookAI/roberta-large config.json model.safetensors vocab.json merges.txt \\
        tokenizer.json --local-dir ~/.cache/dstbench/data/roberta-large

(the default folder of `roberta_large` is ``<data root>/roberta-large``; `--model-path` names another). Only
safetensors weights are read, so loading never unpickles anything.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dstbench.extras import missing_pretrained, require
from dstbench.models.registry import register

# Which weights are sparse follows SMC-Bench's CommonsenseQA runs (Commonsense_Reasoning/scripts/oneshot_sparsify
# passes --no-pruning-emb-heads; fairseq_cli/sparse_core.py then masks every 2-D weight except the token and
# position embeddings and the classification head): every Linear weight of the encoder layers (query, key, value,
# attention output, the two feed-forward weights) is sparse; the embeddings, the classification head (in Hugging
# Face's model: the pooler's dense layer and the classifier, fairseq's head's dense and out_proj), the layer norms
# and all biases stay dense, out of the density.
SPARSE_SCOPES = {
    "smc": ("net.roberta.pooler", "net.classifier"),  # SMC-Bench's choice (the default)
    "all_linear": (),  # the pooler and the classifier too
}


class MultipleChoiceRoberta(nn.Module):
    """`RobertaForMultipleChoice` on token ids ``(N, choices, length)``; returns logits ``(N, choices)``.

    The attention mask is the non-padding positions (padding only ever follows the text). Sparse weights: see
    `SPARSE_SCOPES`; `dst_dense_modules` tells the DST engine which Linear weights stay dense.
    """

    def __init__(self, net: nn.Module, pad_token_id: int, num_choices: int, sparse_scope: str = "smc"):
        super().__init__()
        if sparse_scope not in SPARSE_SCOPES:
            raise ValueError(f"sparse_scope {sparse_scope!r}; valid: {', '.join(SPARSE_SCOPES)}")
        self.net = net
        self.pad_token_id = pad_token_id
        self.num_choices = num_choices
        self.dst_dense_modules = SPARSE_SCOPES[sparse_scope]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.num_choices or x.is_floating_point():
            raise ValueError(f"expected token ids of shape (N, {self.num_choices}, length), got {x.dtype} "
                             f"{tuple(x.shape)}")
        return self.net(input_ids=x, attention_mask=(x != self.pad_token_id).long()).logits

    def gradient_checkpointing_enable(self) -> None:
        """Recompute each layer's activations in the backward pass (non-reentrant, RNG state preserved, so
        dropout draws the same masks and the result is unchanged): memory for time on large models."""
        self.net.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def load_roberta(model_path: str | Path, *, num_classes: int, sparse_scope: str = "smc") -> MultipleChoiceRoberta:
    """RobertaForMultipleChoice from a local folder; the multiple-choice classifier is new (seeded by torch's RNG)."""
    transformers = require("transformers", "nlp", "RoBERTa (Hugging Face's model)")
    hf_logging = transformers.utils.logging
    folder = Path(model_path).expanduser()
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise missing_pretrained(folder, "RoBERTa weights (config.json and model.safetensors)")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights are newly initialized": the classifier, as intended
    try:
        net = transformers.RobertaForMultipleChoice.from_pretrained(folder, use_safetensors=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    return MultipleChoiceRoberta(net, net.config.pad_token_id, num_classes, sparse_scope)


@register("roberta", dataset="commonsense_qa", num_classes=5)
def roberta(*, num_classes: int, model_path: str = "", sparse_scope: str = "smc") -> MultipleChoiceRoberta:
    """RoBERTa of any size from the folder `model_path` (a multiple-choice head; SMC-Bench's sparse weights)."""
    return load_roberta(model_path, num_classes=num_classes, sparse_scope=sparse_scope)


@register("roberta_base", dataset="commonsense_qa", num_classes=5)
def roberta_base(*, num_classes: int, model_path: str = "", sparse_scope: str = "smc") -> MultipleChoiceRoberta:
    """RoBERTa-Base (125M weights; FacebookAI/roberta-base) with a multiple-choice head, from `model_path`."""
    return load_roberta(model_path, num_classes=num_classes, sparse_scope=sparse_scope)


@register("roberta_large", dataset="commonsense_qa", num_classes=5)
def roberta_large(*, num_classes: int, model_path: str = "", sparse_scope: str = "smc") -> MultipleChoiceRoberta:
    """RoBERTa-Large (355M weights; FacebookAI/roberta-large) with a multiple-choice head, from `model_path`.

    Sparse: the 144 Linear weights of its 24 encoder layers (302M), as SMC-Bench; dense: embeddings, pooler,
    classifier, layer norms, biases. ``sparse_scope="all_linear"`` makes the pooler and classifier sparse too.
    """
    return load_roberta(model_path, num_classes=num_classes, sparse_scope=sparse_scope)
