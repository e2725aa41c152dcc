"""The configuration of one run: the one vocabulary shared by the CLI, the spec files and the run folders.

A `RunConfig` names everything that decides a run's result. Recipe fields left as ``None`` take the paper's
defaults for the model (see `dstbench.recipes`); `resolved()` fills them in, and the run id is a hash of
the resolved config, so two configs that train the same thing share one run folder. For the same reason every
rule string is stored in one canonical form (`canonical_rule`): ``"mest"``, ``" mest:"`` and ``"mest:lam=1"`` all
become ``"mest:lam=1.0"``, and a bad rule, parameter, model or data set fails here, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dstbench.sparsity.config import GrowInit, InitMask
from dstbench.vocab import (
    CAPTURE_MODES,
    DEFAULT_UPDATE_PERIOD,
    EXECUTION_FIELDS,
    TRACKERS,
    default_update_period,
    format_rule,
    id_fields,
    parse_rule,
    run_mode,
)

# RunConfig fields that name engine rules, and the registry (in dstbench.sparsity) that knows them.
RULE_FIELDS = {
    "prune": "CRITERIA",
    "probe_criteria": "CRITERIA",
    "grow": "GROWTH",
    "schedule": "SCHEDULES",
    "distribution": "DISTRIBUTIONS",
}
# Rule parameters that are RunConfig fields of their own: "erk:power=2" is stored as erk = "erk", erk_power = 2.
_FIELD_PARAMS = {"distribution": {"power": "erk_power"}}
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def canonical_rule(field: str, spec: Any) -> str:
    """The one form of a rule string (`Registry.canonical`: registered name, every parameter with its default
    filled in, sorted, checked); raises ValueError naming the rule, the parameter and the valid ones. RunConfig and
    specs validate rule strings only here."""
    import dstbench.sparsity as sparsity
    from dstbench.plugins import load_plugins

    load_plugins()  # a worker process validates plugin rules too
    registry = getattr(sparsity, RULE_FIELDS[field])
    return registry.canonical(spec, exclude=tuple(_FIELD_PARAMS.get(field, {})))


def engine_field(name: str, **overrides: Any) -> Any:
    """A RunConfig field for the engine option `name`, from its one declaration (`SparsityConfig`): its default,
    its range as pydantic bounds (finite), its help; `overrides` are pydantic Field arguments."""
    from dstbench.sparsity.config import engine_options

    spec = engine_options()[name]
    bounds = spec.metadata.get("bounds")
    kwargs: dict[str, Any] = {"default": spec.default}
    if spec.metadata.get("doc"):
        kwargs["description"] = spec.metadata["doc"]
    if bounds is not None:
        kwargs.update({k: v for k, v in vars(bounds).items() if v is not None})
        if isinstance(spec.default, float):
            kwargs["allow_inf_nan"] = False
    return Field(**{**kwargs, **overrides})


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

    # sparsity: the engine's options, each declared in `SparsityConfig` (default, range, choices; `engine_field`).
    # update_period 0: dense at density 1.0, static sparse below; left out: 800 below 1.0, 0 at 1.0; density 1.0
    # with an update period is DST on the dense network. Rules are stored in canonical form (str).
    density: float = engine_field("density")
    distribution: str = engine_field("distribution")
    erk_power: float = engine_field("erk_power")
    prune: str = engine_field("prune")
    grow: str = engine_field("grow")
    update_period: int = engine_field("update_period", default=DEFAULT_UPDATE_PERIOD,
                                      description=f"(default: {DEFAULT_UPDATE_PERIOD} below density 1, 0 at density 1)")
    prune_fraction: float = engine_field("prune_fraction")
    schedule: str = engine_field("schedule")
    end_step: int | None = engine_field("end_step")
    global_pruning: bool = engine_field("global_pruning")
    regrow_just_pruned: bool = engine_field("regrow_just_pruned")
    grow_init: GrowInit = engine_field("grow_init")
    dense_layers: tuple[str, ...] = engine_field("dense_layers")
    update_full_layers: bool = engine_field("update_full_layers")
    init_mask: InitMask = engine_field("init_mask")
    update_batch_size: int | None = Field(None, gt=0)

    # recipe (None = the paper's default for the model, or for the named `recipe`: see dstbench.recipes)
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
    warmup_steps: int | None = Field(None, ge=0)  # a warm-up in optimizer steps (fine-tuning recipes); adds to epochs'
    lr_decay: Literal["step", "linear"] | None = None  # step: x lr_gamma at lr_milestones; linear: to 0 at the end
    adam_betas: tuple[float, float] | None = None  # Adam/AdamW betas (None: torch's defaults)
    adam_eps: float | None = Field(None, gt=0.0)
    max_length: int | None = Field(None, gt=0)  # text data: tokens per (question, choice) at most
    label_smoothing: float | None = Field(None, ge=0.0, lt=1.0)
    train_subset: int | None = Field(None, gt=0)
    amp: bool = False  # bfloat16 autocast for forward and loss (weights, gradients, masks stay float32)
    gradient_checkpointing: bool = False  # recompute activations in backward (models that support it; same result)

    # what to record beyond metrics.jsonl and summary.json
    mask_snapshot_steps: tuple[int, ...] = ()
    probe_steps: tuple[int, ...] = ()
    probe_every: int = Field(0, ge=0)
    probe_criteria: tuple[str, ...] = ()
    probe_fractions: tuple[float, ...] = ()
    init_from: str | None = None  # a finished run's folder or its model.npz, or a state dict file
    # load only the tensors of init_from that fit (a new classifier head), listing the others; else they must all fit
    init_partial: bool = False

    # execution only (not part of the run id)
    data_root: str | None = None
    model_path: str | None = None  # a pretrained model's folder (default: <data root>/<model name, '_' -> '-'>)
    device: str = "auto"
    num_threads: int | None = Field(None, ge=1)
    progress: bool = True
    keep_checkpoints: bool = False  # a finished run keeps checkpoint.pt (the optimizer state) beside model.npz
    track: tuple[str, ...] = Field((), description=f"live trackers to log to while training: {', '.join(TRACKERS)}")
    capture: Literal[CAPTURE_MODES] = Field(  # type: ignore[valid-type]
        "auto", description="the training step as a CUDA graph: auto (on a GPU where the run can be captured), off")

    @model_validator(mode="before")
    @classmethod
    def _rule_parameters_with_fields(cls, data: Any) -> Any:
        """Parameters of a rule that are fields of their own move there: "erk:power=2" -> erk_power = 2."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if data.get("update_period") is None:  # left out: none at density 1 (dense training), else the paper's
            data["update_period"] = default_update_period(data.get("density", 1.0))
        for rule_field, moved in _FIELD_PARAMS.items():
            if not isinstance(data.get(rule_field), str):
                continue
            name, params = parse_rule(data[rule_field])
            for param, target in moved.items():
                if param in params:
                    value = params.pop(param)
                    if target in data and data[target] != value:
                        raise ValueError(f"{rule_field} {data[rule_field]!r} sets {param} = {value!r} but "
                                         f"{target} = {data[target]!r}; set one of them")
                    data[target] = value
            data[rule_field] = format_rule(name, params)
        return data

    @field_validator("prune", "grow", "schedule", "distribution")
    @classmethod
    def _canonical_rule(cls, value: str, info: Any) -> str:
        return canonical_rule(info.field_name, value)

    @field_validator("probe_criteria")
    @classmethod
    def _canonical_criteria(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(canonical_rule("probe_criteria", v) for v in value)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        from dstbench.models import registry

        registry.info(value)
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        from dstbench.data import registry

        registry.info(value)
        return value

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, value: str | None) -> str | None:
        from dstbench.recipes import named_recipe

        if value is not None:
            named_recipe(value)
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"device {value!r} is not one of auto, cpu, mps, cuda, cuda:N")
        return value

    @field_validator("mask_snapshot_steps", "probe_steps")
    @classmethod
    def _steps_are_steps(cls, value: tuple[int, ...], info: Any) -> tuple[int, ...]:
        for step in value:
            if step < 0:
                raise ValueError(f"step {step} is negative: {info.field_name} are optimizer steps, 0 or more")
        return value

    @field_validator("track")
    @classmethod
    def _known_trackers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in value if t not in TRACKERS]
        if unknown:
            raise ValueError(f"tracker {', '.join(map(repr, unknown))} is not one of {', '.join(TRACKERS)}")
        return tuple(dict.fromkeys(value))

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
        return run_mode(self.density, self.update_period)

    def identity(self) -> dict[str, Any]:
        """The fields that decide the result, as plain JSON values."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if k not in EXECUTION_FIELDS}

    def run_id(self) -> str:
        """A stable id: the hash of the canonical JSON of `identity()` (less fields added later at the value
        earlier runs had: `vocab.ID_NEUTRAL`). Call it on a resolved config."""
        canonical = json.dumps(id_fields(self.identity()), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some fields changed."""
        return RunConfig.model_validate({**self.model_dump(), **changes})


def validation_message(exc: Any) -> str:
    """A pydantic ValidationError as one line per problem: ``field = value: what is wrong``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "config"
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        value = err.get("input")
        shown = f" = {value!r}" if where != "config" and not isinstance(value, Mapping) else ""
        parts.append(f"{where}{shown}: {message}")
    return "invalid configuration: " + "; ".join(parts)


# The fields that decide a run's result (its id): every field but the execution ones.
IDENTITY_FIELDS: tuple[str, ...] = tuple(f for f in RunConfig.model_fields if f not in EXECUTION_FIELDS)
