import os

import pytest
from hypothesis import HealthCheck, settings

# A loaded two-core machine (CI runs two test workers beside the slow tests' processes) can take seconds to
# generate a handful of examples: that is the machine, not the strategy, so the timing health checks are off.
settings.register_profile("dstbench", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dstbench")

# Two cores are shared by the test workers: one intra-op thread each keeps them from fighting.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _single_thread_torch():
    import torch

    torch.set_num_threads(1)
    yield


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip cleanly where CUDA is not available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
