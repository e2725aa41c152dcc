"""The floors of the house (DESIGN.md section 1): each package imports only what lies on its floor or below, lazy
imports inside functions included, so that the arrows run one way. A new top-level module needs a floor here."""

import ast
from pathlib import Path

import pytest

import dstbench

ROOT = Path(dstbench.__file__).parent
# Lowest first. Foundations; the engine, models and data; configs and run folders; training; experiments;
# what reads stored results; the commands on top.
FLOORS = [
    {"errors", "vocab", "extras", "plugins", "lazy"},
    {"sparsity", "models", "data"},
    {"config", "recipes", "store", "weights", "claims", "trackers", "estimate"},
    {"train"},
    {"experiments", "integrations"},
    {"analysis"},
    {"report"},
    {"study", "cli", "listing", "__main__", "__init__"},
]
FLOOR = {name: level for level, names in enumerate(FLOORS) for name in names}
# Stricter than the floors: what reads stored results never imports training (DESIGN.md).
NEVER = {"analysis": {"train"}, "report": {"train"}}


def _imports(path: Path) -> set[str]:
    """The top-level dstbench modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("dstbench.") and n.split(".")[1] in FLOOR}
    return found


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


FILES = sorted(p for p in ROOT.rglob("*.py") if "specs" not in p.relative_to(ROOT).parts)


def test_every_module_has_a_floor():
    assert {_package(p) for p in FILES} <= FLOOR.keys()


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_nothing_from_a_higher_floor(path):
    own = _package(path)
    higher = sorted(m for m in _imports(path) if FLOOR[m] > FLOOR[own] or m in NEVER.get(own, set()))
    assert not higher, f"{path.relative_to(ROOT)} ({own}) imports {higher} from a higher floor"


def test_the_scan_sees_lazy_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from dstbench.experiments.worker import work\n    import dstbench.report\n")
    assert _imports(path) == {"experiments", "report"}
