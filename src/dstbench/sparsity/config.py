"""The options of a DST run, declared once: `DST` takes them, and `RunConfig` (dstbench.config) derives its
engine fields from them (default, range and allowed values; `engine_field`), so a run config and the engine cannot
disagree on what is valid. A new engine option is one field here, one line in `RunConfig` and nothing else.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from dstbench.sparsity.distributions import DISTRIBUTIONS
from dstbench.sparsity.registry import Range, RuleSpec
from dstbench.vocab import default_update_period

# Plain Python (no torch): `dstbench.config` reads these declarations, and so does the report's process.
GrowInit = Literal["zero", "fresh"]
InitMask = Literal["random", "magnitude", "global_magnitude"]


def option(default: Any, *, bounds: Range | None = None, doc: str = "") -> Any:
    """A `SparsityConfig` field: its default, its range (numbers) and a line of help for the command line."""
    return field(default=default, metadata={"bounds": bounds, "doc": doc})


@dataclass(frozen=True)
class SparsityConfig:
    """What the engine does. ``update_period=0`` keeps the initial mask: dense training at ``density=1.0``, static
    sparse training below. `update_period` left out is 800 below density 1 and 0 at density 1 (dense training).
    With an update period, ``density=1.0`` is DST on the dense network: every update prunes
    ``ceil(rho * n)`` weights of each layer and regrows as many (only the just-pruned ones can be), so they restart
    at zero with zeroed optimizer state, as in the paper's code.

    `update_full_layers`: below density 1, layers the distribution makes dense (ERK caps the classifier of the
    paper's small models at 1) take part in updates too, as the paper's code does; by default they are left alone.

    `init_mask`: where the initial mask comes from. "random" (the default) draws each layer's count uniformly at
    random; "magnitude" keeps each layer's largest-magnitude weights (its count from the distribution), the natural
    start when fine-tuning loaded weights; "global_magnitude" ranks the magnitudes of all layers the distribution
    leaves sparse together and keeps the distribution's total of them, so each layer's count is what the ranking
    gives it (SMC-Bench's one-shot magnitude pruning, with ``distribution="uniform"``: density x all weights).
    Counts stay exact: ties go to the lower index. The counts then stay fixed for the run, as always.

    Rules (`distribution`, `prune`, `grow`, `schedule`) are registered names, optionally with parameters
    (``"mest:lam=0.5"``); `DST` resolves them. `end_step` (default `total_steps`) is where updates stop and the
    prune-fraction schedule ends.
    """

    density: float = option(1.0, bounds=Range(gt=0.0, le=1.0))
    distribution: str = "erk"
    erk_power: float = option(1.0, bounds=DISTRIBUTIONS.get("erk").ranges["power"])
    prune: RuleSpec = "magnitude"
    grow: RuleSpec = "random"
    # None: DEFAULT_UPDATE_PERIOD below density 1, 0 (dense training) at 1 (`vocab.default_update_period`)
    update_period: int | None = option(None, bounds=Range(ge=0), doc="0: static sparse (dense at density 1)")
    prune_fraction: float = option(0.5, bounds=Range(ge=0.0, lt=1.0))
    schedule: RuleSpec = "cosine"
    total_steps: int | None = option(None, bounds=Range(ge=0))
    end_step: int | None = option(None, bounds=Range(ge=0))
    seed: int = 0
    global_pruning: bool = False
    dense_layers: tuple[str, ...] = ()
    regrow_just_pruned: bool = True
    grow_init: GrowInit = "zero"
    update_full_layers: bool = option(False, doc="layers the distribution makes dense take part in updates")
    init_mask: InitMask = "random"

    def __post_init__(self) -> None:
        if self.update_period is None:
            object.__setattr__(self, "update_period", default_update_period(self.density))
        problems = option_problems(self)
        if problems:
            name, problem = problems[0]
            raise ValueError(f"{name} = {getattr(self, name)!r}: {problem}")
        if self.updates and self.last_update_step is None:
            raise ValueError("DST updates need total_steps (or end_step): the prune-fraction schedule ends there")
        object.__setattr__(self, "dense_layers", tuple(self.dense_layers))

    @property
    def updates(self) -> bool:
        """Whether the topology is ever updated (an update period; at density 1.0 too)."""
        return self.update_period > 0

    @property
    def last_update_step(self) -> int | None:
        return self.end_step if self.end_step is not None else self.total_steps


def engine_options() -> dict[str, Any]:
    """Each option's `dataclasses.Field`, by name (its default, type, and ``bounds`` and ``doc`` metadata)."""
    return {f.name: f for f in fields(SparsityConfig)}


@functools.cache
def option_types() -> dict[str, Any]:
    """Each option's type (the annotation, evaluated)."""
    return typing.get_type_hints(SparsityConfig)


def choices(name: str) -> tuple[Any, ...] | None:
    """The values an option of a Literal type may take (None: any value of its type)."""
    kind = option_types()[name]
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else None


def option_problems(config: SparsityConfig) -> list[tuple[str, str]]:
    """(option, what is wrong) for each option out of its range or choices."""
    problems = []
    for name, spec in engine_options().items():
        value = getattr(config, name)
        bounds, allowed = spec.metadata.get("bounds"), choices(name)
        if bounds is not None and not (value is None and spec.default is None) and value not in bounds:
            problems.append((name, f"must be {bounds}"))
        if allowed is not None and value not in allowed:
            problems.append((name, f"must be one of {', '.join(map(repr, allowed))}"))
    return problems
