"""The grouping policy, in one place: which runs may train as one run group, how many, and which ones together.

- `group_size` (a sweep's ``--group-size`` or its spec's ``[execution] group_size``) is parsed by
  `parse_group_size`, once, where it is read; its default is `DEFAULT_GROUP_SIZE`.
- A run joins no group when `solo_reason` says why; runs of one group differ only in `vocab.GROUP_FREE`.
- ``auto`` fuses up to `AUTO_GROUP_SIZE` runs per model, and shares the runs out among the sweep's workers
  (`choose_members`); memory may lower the size (`split_for_memory`).

torch is imported only where memory is measured: a sweep plans its groups without it.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dstbench import vocab
from dstbench.config import RunConfig
from dstbench.errors import UserError

if TYPE_CHECKING:
    import torch

DEFAULT_GROUP_SIZE: int | str = vocab.AUTO
# "auto" group sizes per model: the most runs of one model worth fusing. Set for a GPU, where a small model's
# step is bound by launches and Python, so K members cost little more than one; NOT yet measured there
# (benchmarks/run_groups.py --device cuda does it). On a CPU fusion neither helps nor hurts a step much (README,
# "Run groups"); groups there save per-run overhead. Models not listed (the ImageNet ones, user models) train solo
# under "auto"; an explicit size fuses any model fusion accepts. Memory may lower the size (`split_for_memory`).
AUTO_GROUP_SIZE = {"small_mlp": 256, "large_mlp": 16, "lenet5_caffe": 32, "small_cnn": 32, "resnet56": 16,
                   "vgg16_bn": 8}
# Share of the free device memory (or of the available RAM on a CPU) a group may plan to use.
MEMORY_SHARE = 0.8
MEMORY_ENV = "DSTBENCH_GROUP_MEMORY_GB"  # a fixed budget instead (GB), e.g. for a node shared with others
# A group checkpoints after an epoch once this many seconds passed since its last checkpoint (0: every epoch):
# a killed group loses at most about that much work, and groups of tiny epochs do not spend their time saving.
CHECKPOINT_SECONDS = 30.0
CHECKPOINT_ENV = "DSTBENCH_GROUP_CHECKPOINT_SECONDS"

Run = TypeVar("Run")


class GroupError(UserError):
    """These runs cannot train as one group; the message says why and what to do."""


def parse_group_size(value: Any) -> int | str:
    """A sweep's group size: a positive int (1: every run solo) or "auto" (fuse where it pays)."""
    if isinstance(value, str) and value.strip().lower() == vocab.AUTO:
        return vocab.AUTO
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if isinstance(value, bool) or size < 1 or (isinstance(value, float) and value != size):
        raise ValueError(f"group_size must be a positive integer or 'auto', got {value!r}")
    return size


def group_id(run_ids: Sequence[str]) -> str:
    """A group's id: a hash of its members' run ids (order-free, so the same runs form the same group)."""
    return hashlib.sha256("|".join(sorted(run_ids)).encode()).hexdigest()[:16]


def group_checkpoint(groups_dir: Path, run_ids: Sequence[str]) -> Path:
    """Where the group of `run_ids` keeps its checkpoint: ``<groups_dir>/<group id>/checkpoint.pt``."""
    return Path(groups_dir) / group_id(run_ids) / vocab.CHECKPOINT


def checkpoint_seconds() -> float:
    """How often a group checkpoints (`CHECKPOINT_ENV` overrides `CHECKPOINT_SECONDS`)."""
    return float(os.environ.get(CHECKPOINT_ENV, CHECKPOINT_SECONDS))


def solo_reason(config: RunConfig) -> str | None:
    """Why a run cannot be a group member (it trains solo), or None if it can."""
    if config.dropout or config.input_dropout:
        return "dropout draws from one random stream shared by the members"
    if config.update_batch_size:
        return "a larger-batch update gradient (update_batch_size) needs a forward pass of its own"
    return None


def check_compatible(configs: Sequence[RunConfig]) -> None:
    """Raise GroupError unless `configs` can train as one group."""
    if not configs:
        raise GroupError("a run group needs at least one run")
    for config in configs:
        reason = solo_reason(config)
        if reason is not None:
            raise GroupError(f"run {config.run_id()} cannot join a run group: {reason}; train it solo")
    keys = [vocab.group_key(c.model_dump(mode="json")) for c in configs]
    for config, key in zip(configs[1:], keys[1:], strict=True):
        if key != keys[0]:
            first, other = configs[0].model_dump(mode="json"), config.model_dump(mode="json")
            diff = sorted(k for k in first if k not in vocab.GROUP_FREE and first[k] != other[k])
            raise GroupError(f"runs {configs[0].run_id()} and {config.run_id()} differ in {', '.join(diff)}; the "
                             f"members of a group may differ only in {', '.join(sorted(vocab.GROUP_FREE))}")


def group_limit(config: RunConfig, group_size: int | str) -> int:
    """The most runs like `config` to fuse for a sweep's (parsed) `group_size` (1: solo)."""
    if solo_reason(config) is not None:
        return 1
    if group_size == vocab.AUTO:
        return AUTO_GROUP_SIZE.get(config.model, 1)
    return int(group_size)


def choose_members(first: Run, later: Sequence[Run], config_of: Callable[[Run], RunConfig], group_size: int | str,
                   workers: int, available: Callable[[Run], bool]) -> list[Run]:
    """The runs to train with `first` as one group: `first`, then the `later` runs (in their order) that share
    its group key, may join groups, and are `available` (wanted, held by no other worker), up to the limit.

    "auto" also shares the runs out: at most 1/(2 x workers) of the compatible runs still to train go in one
    group (guided scheduling), so that the last groups are small and no worker idles long at the end.
    """
    config = config_of(first)
    limit = group_limit(config, group_size)
    scan = limit * 2 * workers if group_size == vocab.AUTO else limit
    key = vocab.group_key(config.model_dump(mode="json"))
    chosen = [first]
    for other in later:
        if len(chosen) >= scan:
            break
        other_config = config_of(other)
        if (vocab.group_key(other_config.model_dump(mode="json")) == key and solo_reason(other_config) is None
                and available(other)):
            chosen.append(other)
    if group_size == vocab.AUTO:
        limit = min(limit, max(1, math.ceil(len(chosen) / (2 * workers))))
    return chosen[:limit]


def memory_budget(device: torch.device) -> int:
    """Bytes a group may plan to use on `device`: `MEMORY_ENV` if set, else a share of what is free."""
    import torch

    fixed = os.environ.get(MEMORY_ENV)
    if fixed:
        try:
            return int(float(fixed) * 1e9)
        except ValueError:
            raise UserError(f"{MEMORY_ENV}={fixed!r} is not a number of gigabytes") from None
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * MEMORY_SHARE)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(int(info["MemAvailable"].split()[0]) * 1024 * MEMORY_SHARE)
    except (OSError, KeyError, ValueError):
        return 1 << 62  # unknown: no limit from here (an out-of-memory error still splits the group)


def split_for_memory(configs: Sequence[RunConfig], data: Any, budget: int,
                     captured: bool = False) -> list[list[RunConfig]]:
    """`configs` in consecutive chunks whose estimated memory (`estimated_group_bytes`, of a `captured` step or
    an eager one) fits `budget`."""
    import torch

    from dstbench.models.fusion import estimated_group_bytes
    from dstbench.train.setup import build_for

    config = configs[0]
    model = build_for(config, data)
    example = torch.zeros((2, *data.input_shape))
    slots = 1 if config.optimizer == "sgd" else 2
    per_member = estimated_group_bytes(model, example, 1, config.batch_size, optimizer_slots=slots,
                                       captured=captured)
    size = max(1, min(len(configs), budget // max(1, per_member)))
    return [list(configs[i:i + size]) for i in range(0, len(configs), size)]
