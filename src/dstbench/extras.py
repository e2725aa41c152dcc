"""Optional dependencies: import one where it is needed, or say which extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from dstbench.errors import UserError


def require(module: str, extra: str, what: str) -> ModuleType:
    """`module` imported, or a UserError naming `what` needs it and the pip extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f'{what} needs {module}: pip install -e ".[{extra}]"') from None


ROBERTA_LARGE_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json")


def missing_pretrained(folder: object, what: str) -> FileNotFoundError:
    """The error for a pretrained model's folder that lacks `what`: how to fetch roberta-large into it (the
    weights and the tokenizer's files lie together), or where else to point."""
    return FileNotFoundError(
        f"no {what} in {folder}; fetch the model once, e.g. `huggingface-cli download FacebookAI/roberta-large "
        f"{' '.join(ROBERTA_LARGE_FILES)} --local-dir {folder}`, or point --model-path at the folder that holds it"
    )
