"""The ``cuda_emulator`` fixture and the order check the emulated tests share."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from snncc.backends.cuda import nvcc_compile
from tests.cudaemu import build, driver


@pytest.fixture
def cuda_emulator(request, monkeypatch):
    """Installs the emulator as ``pycuda`` / ``pycuda.driver`` for one test; yields the driver.

    Two devices, forward order; parametrise indirectly with "reverse" or "shuffle" to start in
    another order, or call ``driver.set_order`` between runs.
    """
    reason = build.unavailable_reason()
    if reason:
        pytest.skip(reason)
    driver.configure(devices=2, order=getattr(request, "param", "forward"), seed=0)
    package = types.ModuleType("pycuda")
    package.__path__ = []
    package.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    yield driver
    driver.configure()


@pytest.fixture
def emulated_nccl(cuda_emulator, monkeypatch):
    """The stand-in for ``cupy.cuda.nccl`` (tests/cudaemu/nccl.py) over the emulated devices,
    with SNNCC_NCCL=1 (the opt-in); yields the stand-in."""
    from tests.cudaemu import nccl

    cupy, cuda = types.ModuleType("cupy"), types.ModuleType("cupy.cuda")
    cupy.__path__, cuda.__path__ = [], []
    cupy.cuda, cuda.nccl = cuda, nccl
    for name, module in (("cupy", cupy), ("cupy.cuda", cuda), ("cupy.cuda.nccl", nccl)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("SNNCC_NCCL", "1")
    yield nccl


def emulated_module(source: str, device: int = 0) -> driver.Module:
    """Hand-written CUDA ``source`` compiled by nvcc and loaded in the emulator, with
    ``device``'s context pushed (the fixture's teardown clears the context stack)."""
    driver.init()
    driver.Device(device).retain_primary_context().push()
    return driver.module_from_file(str(nvcc_compile(source, "kernels.cu", "sm_90")))


def assert_bit_identical(a: Any, b: Any, where: str = "result") -> None:
    """``a`` and ``b`` (arrays, numbers, or dicts/lists of them) are equal bit for bit."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_bit_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_bit_identical(x, y, f"{where}[{i}]")
    else:
        x, y = np.asarray(a), np.asarray(b)
        assert x.dtype == y.dtype and x.shape == y.shape, where
        differ = np.flatnonzero(x.reshape(-1).view(np.uint8) != y.reshape(-1).view(np.uint8))
        assert differ.size == 0, f"{where} differs bitwise at byte {differ[:5]}"


def same_in_every_order(run: Callable[[], Any], seed: int = 0) -> Any:
    """``run()`` under forward, reverse and shuffled thread/block orders: bit-identical results
    (a race would make them differ). Returns the forward result."""
    results = {}
    for order in driver.ORDERS:
        driver.set_order(order, seed)
        results[order] = run()
    driver.set_order("forward")
    for order in driver.ORDERS[1:]:
        assert_bit_identical(results[order], results["forward"], f"{order} order")
    return results["forward"]
