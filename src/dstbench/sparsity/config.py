"""The options of a DST run, in one place: `DST` takes them, the trainer builds them from a run config."""

from __future__ import annotations

from dataclasses import dataclass

from dstbench.sparsity.registry import RuleSpec


@dataclass(frozen=True)
class SparsityConfig:
    """What the engine does. ``density=1.0`` trains densely, ``update_period=0`` keeps the initial mask.

    Rules (`distribution`, `prune`, `grow`, `schedule`) are registered names, optionally with parameters
    (``"mest:lam=0.5"``); `DST` resolves them. `end_step` (default `total_steps`) is where updates stop and the
    prune-fraction schedule ends.
    """

    density: float
    distribution: str = "erk"
    erk_power: float = 1.0
    prune: RuleSpec = "magnitude"
    grow: RuleSpec = "random"
    update_period: int = 800
    prune_fraction: float = 0.5
    schedule: RuleSpec = "cosine"
    total_steps: int | None = None
    end_step: int | None = None
    seed: int = 0
    global_pruning: bool = False
    dense_layers: tuple[str, ...] = ()
    regrow_just_pruned: bool = True
    grow_init: str = "zero"

    def __post_init__(self) -> None:
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if not 0.0 <= self.prune_fraction < 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1), got {self.prune_fraction}")
        if self.update_period < 0:
            raise ValueError(f"update_period must be >= 0 (0 = static sparse), got {self.update_period}")
        if self.grow_init not in ("zero", "fresh"):
            raise ValueError(f"grow_init must be 'zero' or 'fresh', got {self.grow_init!r}")
        if self.updates and self.last_update_step is None:
            raise ValueError("DST updates need total_steps (or end_step): the prune-fraction schedule ends there")
        object.__setattr__(self, "dense_layers", tuple(self.dense_layers))

    @property
    def updates(self) -> bool:
        """Whether the topology is ever updated (sparse, with an update period)."""
        return self.density < 1.0 and self.update_period > 0

    @property
    def last_update_step(self) -> int | None:
        return self.end_step if self.end_step is not None else self.total_steps
