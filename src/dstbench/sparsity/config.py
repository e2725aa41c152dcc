"""The options of a DST run, in one place: `DST` takes them, the trainer builds them from a run config."""

from __future__ import annotations

from dataclasses import dataclass

from dstbench.sparsity.masks import INIT_MASKS
from dstbench.sparsity.registry import RuleSpec
from dstbench.vocab import default_update_period


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

    density: float
    distribution: str = "erk"
    erk_power: float = 1.0
    prune: RuleSpec = "magnitude"
    grow: RuleSpec = "random"
    update_period: int | None = None  # None: DEFAULT_UPDATE_PERIOD below density 1, 0 (dense training) at 1
    prune_fraction: float = 0.5
    schedule: RuleSpec = "cosine"
    total_steps: int | None = None
    end_step: int | None = None
    seed: int = 0
    global_pruning: bool = False
    dense_layers: tuple[str, ...] = ()
    regrow_just_pruned: bool = True
    grow_init: str = "zero"
    update_full_layers: bool = False
    init_mask: str = "random"

    def __post_init__(self) -> None:
        if self.update_period is None:
            object.__setattr__(self, "update_period", default_update_period(self.density))
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if not 0.0 <= self.prune_fraction < 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1), got {self.prune_fraction}")
        if self.update_period < 0:
            raise ValueError(f"update_period must be >= 0 (0 = static sparse), got {self.update_period}")
        if self.init_mask not in INIT_MASKS:
            raise ValueError(f"init_mask must be one of {', '.join(INIT_MASKS)}, got {self.init_mask!r}")
        if self.grow_init not in ("zero", "fresh"):
            raise ValueError(f"grow_init must be 'zero' or 'fresh', got {self.grow_init!r}")
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
