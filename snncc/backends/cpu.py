"""CPU backend: the generated C++ is compiled with g++ -O3 -fopenmp and loaded with ctypes.

``-ffp-contract=off`` keeps a*b+c from fusing into FMA, so the float32 results equal a plain
NumPy computation done in the same order (checked bit for bit in the tests).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np

from snncc.backends.base import Program
from snncc.backends.cache import build_dir, content_hash, publish, trusted_file
from snncc.backends.diagnostics import explain
from snncc.codegen.plan import KernelPlan
from snncc.errors import CompileError

CXX = os.environ.get("CXX", "g++")
# -fno-trapping-math lets branches become selects (vectorised neuron loops); -fno-math-errno lets
# sqrtf be one vector instruction (the Adam step vectorises). Both leave results unchanged.
#: -march=native: AVX2 where the CPU has it (~1.3x); no FMA contraction is allowed, so the
#: results stay bit-identical. SNNCC_MARCH overrides it ("" leaves the compiler's default).
MARCH = os.environ.get("SNNCC_MARCH", "native")
FLAGS = [
    "-O3",
    *([f"-march={MARCH}"] if MARCH else []),
    "-fno-trapping-math",
    "-fno-math-errno",
    "-fopenmp",
    "-ffp-contract=off",
    "-fPIC",
    "-shared",
    "-std=c++17",
    "-w",
]


@functools.cache
def host_cpu() -> str:
    """What -march=native compiles for: a build is only reused on the same kind of CPU."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        keep = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
        return "\n".join(keep)
    except OSError:
        return platform.machine() + platform.processor()


def compile_sources(sources: dict[str, str]) -> Path:
    """Compile (or fetch from the cache) the shared library for ``sources``."""
    if shutil.which(CXX) is None:
        raise CompileError(f"the CPU backend needs a C++ compiler; '{CXX}' was not found")
    text = "\n".join(f"// file {k}\n{v}" for k, v in sorted(sources.items()))
    key = content_hash(text, CXX, " ".join(FLAGS), host_cpu())
    lib = build_dir("cpu") / f"snncc_{key}.so"
    if lib.exists():
        return trusted_file(lib)
    with tempfile.TemporaryDirectory(prefix="snncc_build_") as tmp:
        files = []
        for name, src in sources.items():
            (Path(tmp) / name).write_text(src)
            files.append(str(Path(tmp) / name))
        out = Path(tmp) / "lib.so"
        proc = subprocess.run([CXX, *FLAGS, *files, "-o", str(out)], capture_output=True, text=True)
        if proc.returncode != 0:
            name = next((n for n in sources if n in proc.stderr), next(iter(sources)))
            raise CompileError(explain(sources[name], proc.stderr, name))
        publish(out, lib)
    return lib


class ThreadChoice:
    """Per generated function, the OpenMP thread count (1 or all) that has been faster lately.

    Beside a program that keeps one core busy, a parallel region waits for the thread that
    shares that core (a scheduler time slice, milliseconds, at each barrier), and 2 threads can
    be slower than 1. The generated code gives the same result for any thread count (fixed
    batch parts, sums in part order), so the count is free to follow the measurements: each
    count is timed (seconds per example-step, median of its last 5 calls) and the faster one
    runs, while the other is retried now and then (every 4th call at first, backing off to every
    64th while the choice holds) so that a change of load is noticed.
    """

    def __init__(self, most: int):
        self.most = most
        self._times: dict[str, dict[int, deque]] = {}
        self._calls: dict[str, int] = {}
        self._period: dict[str, int] = {}

    def _times_of(self, fn: str) -> dict[int, deque]:
        return self._times.setdefault(fn, {1: deque(maxlen=5), self.most: deque(maxlen=5)})

    def pick(self, fn: str) -> int:
        if self.most <= 1:
            return 1
        times = self._times_of(fn)
        calls = self._calls[fn] = self._calls.get(fn, 0) + 1
        if min(len(t) for t in times.values()) < 2:  # each count measured twice first
            return min(times, key=lambda n: (len(times[n]), -n))
        best = _fastest(times)
        if calls % self._period.get(fn, 4) == 0:
            return 1 if best == self.most else self.most
        return best

    def record(self, fn: str, threads: int, seconds: float, work: int) -> None:
        if self.most <= 1:
            return
        times = self._times_of(fn)
        before = _fastest(times)
        times[threads].append(seconds / max(work, 1))
        period = self._period.get(fn, 4)  # back off while the choice holds
        self._period[fn] = min(2 * period, 64) if _fastest(times) == before else 4


def _fastest(times: dict[int, deque]) -> int | None:
    if not all(times.values()):
        return None
    return min(times, key=lambda n: statistics.median(times[n]))


class CpuProgram(Program):
    backend = "cpu"

    def __init__(self, plan: KernelPlan, sources: dict[str, str], device: int = 0):
        self._arrays: dict[str, np.ndarray] = {}
        self.lib = ctypes.CDLL(str(compile_sources(sources)))
        # the library's OpenMP runtime: its thread count is set per call (ThreadChoice)
        self._set_threads = self.lib.omp_set_num_threads
        self._set_threads.argtypes = [ctypes.c_int]
        self.threads = ThreadChoice(int(self.lib.omp_get_max_threads()))
        super().__init__(plan, sources)

    def _store(self, name: str, array: np.ndarray) -> None:
        self._arrays[name] = array
        self._present[name] = array.shape

    def _load(self, name: str) -> np.ndarray:
        return self._arrays[name].copy()

    def _drop(self, name: str) -> None:
        del self._arrays[name], self._present[name]

    def pointers(self) -> ctypes.Array:
        ptrs = (ctypes.c_void_p * len(self.plan.buffers))()
        for i, buf in enumerate(self.plan.buffers):
            arr = self._arrays.get(buf.name)
            ptrs[i] = arr.ctypes.data if arr is not None else None
        return ptrs

    def launch(self, launch, B: int, T: int) -> None:
        self.call(launch.name, B, T)

    def call(self, function: str, B: int, T: int) -> None:
        """Run the generated function ``snncc_<function>`` on B examples of T steps."""
        fn = getattr(self.lib, f"snncc_{function}")
        fn.restype = ctypes.c_int
        threads = self.threads.pick(function)
        self._set_threads(threads)
        start = time.perf_counter()
        rc = fn(self.pointers(), ctypes.c_int(B), ctypes.c_int(T))
        self.threads.record(function, threads, time.perf_counter() - start, B * T)
        if rc != 0:
            raise RuntimeError(f"generated function snncc_{function} returned {rc}")
