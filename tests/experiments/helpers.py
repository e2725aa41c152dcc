"""Small specs and a helper to run sweeps in this process with a fake trainer."""

from __future__ import annotations

from pathlib import Path

from dstbench.experiments import load_spec

TESTS = Path(__file__).resolve().parents[1]

SMALL = """
name = "{name}"
description = "a tiny spec for tests"
arm = "dst"

[base]
model = "small_mlp"
dataset = "digits"
epochs = 3

[grid]
density = {densities}
seed = {seeds}

[arms.dense]
base = {{density = 1.0}}
grid = {{seed = [0]}}

[report]
kinds = ["accuracy_vs_density"]
"""


def small_spec(folder: Path, densities=(0.1, 0.2), seeds=(0, 1, 2), name: str = "small.toml"):
    """A spec of len(densities) * len(seeds) DST runs plus one dense run."""
    path = folder / name
    path.write_text(SMALL.format(name=path.stem, densities=list(densities), seeds=list(seeds)))
    return load_spec(path)


def env_with_tests_on_path() -> dict:
    """The environment for subprocesses that import `experiments.fake_trainers`."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH", "")]))
    env.pop("FAKE_SLEEP", None)
    return env
