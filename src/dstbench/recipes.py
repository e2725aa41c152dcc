"""The paper's training recipes (appendix A.2), the defaults a `RunConfig` takes for each model.

A model's recipe applies unless the config names another with `recipe` (a key of `RECIPES` or `VARIANTS`). The
tables live beside the config (not in train/) because the config checks recipe names and specs read them;
`dstbench.train.recipes.resolve_config` fills a config in from them.
"""

from __future__ import annotations

from typing import Any

_SMALL = dict(
    epochs=100, batch_size=128, optimizer="sgd", lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4,
    lr_milestones=(0.5, 0.75), lr_gamma=0.1, warmup_epochs=0, label_smoothing=0.0, warmup_steps=0,
    lr_decay="step",
)

RECIPES: dict[str, dict[str, Any]] = {
    "small_mlp": dict(_SMALL),
    "large_mlp": dict(_SMALL),
    "small_cnn": dict(_SMALL),
    "lenet5_caffe": dict(_SMALL),
    "resnet56": {**_SMALL, "epochs": 200, "lr": 0.1, "weight_decay": 1e-4},
    "vgg16_bn": {**_SMALL, "epochs": 200, "lr": 0.01, "weight_decay": 1e-4},
    # EfficientNet-B0 on Tiny-ImageNet: the authors' runs, not appendix A.2's sentence. A.2 says weight decay
    # 1e-4, Nesterov, and "We use the decay of 0.001" where every other recipe gives the LR decay factor
    # ("We use the decay of 0.1"), which reads as LR x0.001 at 50% and 75%. But the authors' code builds its
    # MultiStepLR without a gamma, so every model's LR drops by 0.1 and no factor of 0.001 can be set; and their
    # Tiny-ImageNet DST spec (specs/tinyimagenet/760c_dst.py) overrides weight decay to 1e-3 with Nesterov off.
    # So the "0.001" is the weight decay the figures were trained with. The text's reading is the variant
    # "efficientnet_b0:text" (below).
    "efficientnet_b0": {**_SMALL, "epochs": 100, "lr": 0.01, "weight_decay": 1e-3, "nesterov": False},
    # ResNet-50: A.2's recipe plus the 5 warm-up epochs and label smoothing 0.1 of the authors' ImageNet scripts
    # (the text mentions neither; fig2's spec says so).
    "resnet50": {**_SMALL, "epochs": 90, "batch_size": 256, "lr": 0.1, "weight_decay": 1e-4,
                 "warmup_epochs": 5, "label_smoothing": 0.1},
    # RoBERTa fine-tuned on CommonsenseQA as SMC-Bench does (VITA-Group/SMC-Bench, Commonsense_Reasoning/
    # scripts/oneshot_sparsify and examples/roberta/commonsense_qa/README.md, fairseq flags): --optimizer adam with
    # --weight-decay 0.01 (fairseq's Adam decouples weight decay: AdamW), --adam-betas (0.9, 0.98), --adam-eps
    # 1e-6, --lr 1e-05 with --lr-scheduler polynomial_decay (power 1: linear to 0) after --warmup-updates 150,
    # --batch-size 16, --max-update 3000, --max-positions 512, --clip-norm 0 (no clipping), dropout 0.1 (the
    # model's own config). 3,000 updates of 16 are 4.93 epochs of CommonsenseQA's 9,741 training questions; the
    # trainer counts whole epochs, so 5 epochs (3,045 steps) with the decay ending at the last one. SMC-Bench
    # trains in fp16 (--fp16); here bfloat16 autocast (`amp = true` in the specs). max_length 512 truncates
    # nothing (the longest CommonsenseQA input is far shorter) and the tensors are only as long as the longest.
    **{name: {**_SMALL, "epochs": 5, "batch_size": 16, "optimizer": "adamw", "lr": 1e-5, "momentum": 0.0,
              "nesterov": False, "weight_decay": 0.01, "adam_betas": (0.9, 0.98), "adam_eps": 1e-6,
              "lr_milestones": (), "lr_gamma": 1.0, "warmup_steps": 150, "lr_decay": "linear", "max_length": 512}
       for name in ("roberta", "roberta_base", "roberta_large")},
}

# The embedded data sets are not the paper's. Its small-model recipe (batch 128, LR 0.01) gives them 10 (digits)
# or 4 (breast_cancer) steps per epoch, so a short run barely moves: `--epochs 2` on digits made 20 steps with the
# LR cut tenfold after 10, and the small MLP at density 0.1 stayed at chance (10%). These take the batch and LR
# that every spec on them sets (batch 32, LR 0.05: 40 steps per epoch on digits); fields a config sets still win.
DATASET_RECIPES: dict[str, dict[str, Any]] = {
    "digits": {"batch_size": 32, "lr": 0.05},
    "breast_cancer": {"batch_size": 32, "lr": 0.05},
}

# Other readings, reachable by name (`RunConfig(recipe=...)`, `dstbench train --recipe ...`).
VARIANTS: dict[str, dict[str, Any]] = {
    # Appendix A.2's EfficientNet sentence read literally: LR x0.001 at each milestone, weight decay 1e-4, Nesterov.
    "efficientnet_b0:text": {**_SMALL, "epochs": 100, "lr": 0.01, "weight_decay": 1e-4, "lr_gamma": 0.001},
}

DEFAULT_RECIPE: dict[str, Any] = dict(_SMALL)


def recipe_for(model: str, dataset: str | None = None) -> dict[str, Any]:
    """The paper's recipe for `model` (models it does not know get the small-model recipe), with the changes
    `dataset` needs (`DATASET_RECIPES`)."""
    return {**RECIPES.get(model, DEFAULT_RECIPE), **DATASET_RECIPES.get(dataset or "", {})}


def named_recipe(name: str) -> dict[str, Any]:
    """A recipe by name: a model's (`RECIPES`) or a variant (`VARIANTS`)."""
    known = {**RECIPES, **VARIANTS}
    if name not in known:
        raise ValueError(f"unknown recipe {name!r}; valid: {', '.join(sorted(known))}")
    return dict(known[name])
