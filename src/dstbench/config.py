"""The configuration of one run: the one vocabulary shared by the CLI, the spec files and the run folders.

A `RunConfig` names everything that decides a run's result. Recipe fields left as ``None`` take the paper's
defaults for the model (see `dstbench.train.recipes`); `resolved()` fills them in, and the run id is a hash of
the resolved config, so two configs that train the same thing share one run folder.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Fields that change where or how fast a run executes but never its result: left out of the run id.
EXECUTION_FIELDS = frozenset({"data_root", "device", "num_threads", "progress"})


class RunConfig(BaseModel):
    """One training run: model, data, sparsity, recipe and what to record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # what is trained on what
    model: str
    dataset: str
    seed: int = 0
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    input_dropout: float = Field(0.0, ge=0.0, lt=1.0)  # MLPs: dropout on the input too (the paper's fig. 4)
    preprocessing: Literal["paper", "exact"] = "paper"  # data normalisation/padding: see dstbench.data.splits

    # sparsity (density 1.0 = dense; update_period 0 = static sparse)
    density: float = Field(1.0, gt=0.0, le=1.0)
    distribution: str = "erk"
    erk_power: float = 1.0
    prune: str = "magnitude"
    grow: str = "random"
    update_period: int = Field(800, ge=0)
    prune_fraction: float = Field(0.5, ge=0.0, lt=1.0)
    schedule: str = "cosine"
    end_step: int | None = Field(None, ge=0)
    global_pruning: bool = False
    regrow_just_pruned: bool = True
    grow_init: Literal["zero", "fresh"] = "zero"
    dense_layers: tuple[str, ...] = ()
    update_batch_size: int | None = Field(None, gt=0)

    # recipe (None = the paper's default for the model, or for the named `recipe`: see dstbench.train.recipes)
    recipe: str | None = None
    epochs: int | None = Field(None, gt=0)
    batch_size: int | None = Field(None, gt=0)
    optimizer: Literal["sgd", "adam", "adamw"] | None = None
    lr: float | None = Field(None, gt=0.0)
    momentum: float | None = Field(None, ge=0.0, lt=1.0)
    nesterov: bool | None = None
    weight_decay: float | None = Field(None, ge=0.0)
    lr_milestones: tuple[float, ...] | None = None
    lr_gamma: float | None = Field(None, gt=0.0)
    warmup_epochs: int | None = Field(None, ge=0)
    label_smoothing: float | None = Field(None, ge=0.0, lt=1.0)
    train_subset: int | None = Field(None, gt=0)
    amp: bool = False  # bfloat16 autocast for forward and loss (weights, gradients, masks stay float32)

    # what to record beyond metrics.jsonl and summary.json
    mask_snapshot_steps: tuple[int, ...] = ()
    probe_steps: tuple[int, ...] = ()
    probe_every: int = Field(0, ge=0)
    probe_criteria: tuple[str, ...] = ()
    probe_fractions: tuple[float, ...] = ()
    init_from: str | None = None

    # execution only (not part of the run id)
    data_root: str | None = None
    device: str = "auto"
    num_threads: int | None = None
    progress: bool = True

    @field_validator("probe_fractions")
    @classmethod
    def _fractions_in_range(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        for f in value:
            if not 0.0 < f < 1.0:
                raise ValueError(f"probe fraction {f} is outside (0, 1)")
        return value

    @field_validator("lr_milestones")
    @classmethod
    def _milestones_are_fractions(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None:
            for m in value:
                if not 0.0 < m < 1.0:
                    raise ValueError(f"lr milestone {m} must be a fraction of the epochs in (0, 1)")
        return value

    @model_validator(mode="after")
    def _probes_need_criteria(self) -> RunConfig:
        if (self.probe_steps or self.probe_every) and not self.probe_criteria:
            raise ValueError("probe_steps/probe_every need probe_criteria (e.g. ['magnitude', 'snip'])")
        return self

    @property
    def mode(self) -> str:
        """'dense', 'static' (sparse, never updated) or 'dst'."""
        if self.density >= 1.0:
            return "dense"
        return "static" if self.update_period == 0 else "dst"

    def identity(self) -> dict[str, Any]:
        """The fields that decide the result, as plain JSON values."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if k not in EXECUTION_FIELDS}

    def run_id(self) -> str:
        """A stable id: the hash of the canonical JSON of `identity()`. Call it on a resolved config."""
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some fields changed."""
        return RunConfig.model_validate({**self.model_dump(), **changes})
