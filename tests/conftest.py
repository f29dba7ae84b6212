import os

import pytest

from tests.cudaemu.fixture import (  # noqa: F401 -- the CUDA emulator (and NCCL's stand-in)
    cuda_emulator,
    emulated_nccl,
)

# Tiny test networks on a shared 2-core machine: busy-waiting OpenMP threads only get in the way.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Keep builds of one test session together, away from the user's cache."""
    if "SNNCC_CACHE" not in os.environ:
        os.environ["SNNCC_CACHE"] = str(tmp_path_factory.mktemp("snncc_cache"))
    yield


def has_gpu() -> bool:
    try:
        import pycuda.driver as drv

        drv.init()
        return drv.Device.count() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if has_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU and PyCUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
