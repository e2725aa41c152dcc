"""Every data test gets its own cache folder and runs without the user's data-root or mirror settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTBENCH_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.delenv("DSTBENCH_DATA_ROOT", raising=False)
    monkeypatch.delenv("DSTBENCH_DATA_MIRROR", raising=False)
