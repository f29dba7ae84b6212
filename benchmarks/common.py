"""Shared benchmark machinery: timing with medians, child processes with peak-memory probes,
the hardware description, synthetic data and the results writers (JSON, Markdown).

Every measurement of a side (snncc or a peer) runs in a child process started by
:func:`run_child`: ``python -c "from benchmarks.common import child_main; child_main()"``. The
child first restricts itself to ``threads`` CPUs (``sched_setaffinity``: the one limit every
library obeys; XLA ignores the thread-count variables), imports only what that side needs,
sets the thread count, runs a list of configurations
through a *target* function (``"benchmarks.training:snncc_train"``) and writes one JSON record
per configuration. Each target calls ``probe.baseline()`` once its setup (imports, model, data)
is done and before the measured work; the probe then reports

* ``base_rss_mb``: resident memory at that point,
* ``peak_rss_mb``: the process's peak resident memory *during the measured work* (Linux
  ``VmHWM``, reset at the baseline through ``/proc/self/clear_refs``; where that reset is not
  allowed, the whole-process peak ``ru_maxrss``),
* ``train_mem_mb``: ``peak_rss_mb - base_rss_mb``, the memory the work itself needed.

C/C++ and CUDA-host allocations are all in the RSS, which ``tracemalloc`` would not see. With
``isolate=True`` every configuration gets a fresh child, so one configuration's freed memory
can never hide in another's numbers (the CPU default); with ``isolate=False`` a side runs its
whole list in one child (GPU runs, where device memory comes from allocator statistics, and the
test suite's smoke run).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MB = 1024.0 * 1024.0

# --------------------------------------------------------------------------------- timing


def median(values: Iterable[float]) -> float:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.median(vals)) if vals else float("nan")


def summarize(times: Sequence[float]) -> dict[str, float]:
    """Median, min, max and inter-quartile range (seconds) of repeated timings."""
    t = np.asarray([float(x) for x in times], dtype=np.float64)
    if t.size == 0:
        return {
            "median_s": float("nan"),
            "min_s": float("nan"),
            "max_s": float("nan"),
            "iqr_s": float("nan"),
            "n": 0,
        }
    q1, q3 = np.percentile(t, [25, 75])
    return {
        "median_s": float(np.median(t)),
        "min_s": float(t.min()),
        "max_s": float(t.max()),
        "iqr_s": float(q3 - q1),
        "n": int(t.size),
    }


def time_repeats(
    fn: Callable[[], Any], repeats: int, warmup: int = 1, sync: Callable[[], Any] | None = None
) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
        if sync is not None:
            sync()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        out.append(time.perf_counter() - t0)
    return out


def time_for_at_least(
    fn: Callable[[], Any], seconds: float, max_calls: int = 100000
) -> list[float]:
    """Call ``fn`` until ``seconds`` have passed (at least once); the per-call times."""
    out: list[float] = []
    start = time.perf_counter()
    while not out or (time.perf_counter() - start < seconds and len(out) < max_calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class CallTimer:
    """Times every ``program.call(name, B, T)`` of a compiled snncc model, per function name
    (per pass, ``program.run(pass, B, T)``, on a backend whose kernels have no ``call``).

    Installs itself as an instance attribute over ``call`` (and over the model's
    ``convert_inputs``, the host-side packing of dense spikes into bit words), so the model's
    own ``train_batch``/``run`` are timed exactly as they run. On a GPU each call is followed
    by a wait for its stream, so a function's time is its kernels' time (and the batch's total
    includes the last function, the optimiser step, which ``train_batch`` does not wait for).
    ``take()`` returns and clears the seconds accumulated per name since the last ``take()``.
    """

    def __init__(self, model: Any):
        self.acc: dict[str, float] = {}
        self._model = model
        for prog in model.programs:
            attr = "call" if hasattr(prog, "call") else "run"
            self._wrap(prog, attr, lambda args: str(args[0]), wait=_waiter(prog))
        self._wrap(model, "convert_inputs", lambda args: "host: convert inputs")

    def _wrap(self, obj: Any, attr: str, key: Callable[[tuple], str], wait=None) -> None:
        orig = getattr(obj, attr)

        def timed(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                out = orig(*args, **kw)
                if wait is not None:
                    wait()
                return out
            finally:
                k = key(args)
                self.acc[k] = self.acc.get(k, 0.0) + time.perf_counter() - t0

        setattr(obj, attr, timed)

    def take(self) -> dict[str, float]:
        out, self.acc = self.acc, {}
        return out


def _waiter(prog: Any) -> Callable[[], None] | None:
    """A function that waits for a program's queued GPU work (CUDA launches are asynchronous:
    without it a launch would be timed, and its kernels billed to whatever waits next)."""
    stream, ctx = getattr(prog, "stream", None), getattr(prog, "context", None)
    if stream is None or not hasattr(stream, "synchronize"):
        return None

    def wait() -> None:
        if ctx is not None:
            ctx.push()
        try:
            stream.synchronize()
        finally:
            if ctx is not None:
                ctx.pop()

    return wait


class Stopwatch:
    """Wall-clock and CPU seconds of each timed block; CPU time is the whole process's (every
    thread: OpenMP, torch's intra-op pool, XLA's), so CPU / wall is the cores a side used."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @contextmanager
    def timed(self) -> Iterator[None]:
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall.append(time.perf_counter() - w0)
            self.cpu.append(time.process_time() - c0)

    def summary(self) -> dict[str, Any]:
        """``summarize`` of the wall times plus ``cpu_times_s`` and ``cpu_median_s``."""
        return {
            "times_s": list(self.wall),
            **summarize(self.wall),
            "cpu_times_s": list(self.cpu),
            "cpu_median_s": median(self.cpu),
        }


def profile_medians(
    splits: Sequence[dict[str, float]], totals: Sequence[float]
) -> dict[str, float]:
    """Median seconds per part over repeats; ``other`` is the total minus the timed parts."""
    keys: list[str] = []
    for s in splits:
        keys += [k for k in s if k not in keys]
    out = {k: median(s.get(k, 0.0) for s in splits) for k in keys}
    out["other"] = median(t - sum(s.values()) for s, t in zip(splits, totals, strict=True))
    return out


# ----------------------------------------------------------------------------- memory


def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def maxrss_mb() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``, kB on Linux)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / MB


def reset_peak_rss() -> bool:
    """Reset Linux's peak-RSS counter (``VmHWM``) to the current RSS; False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Probe:
    """Memory probe of one configuration in a child (see the module docstring)."""

    def __init__(self) -> None:
        self.base: float | None = None
        self.hwm_reset = False
        self.extra: dict[str, Any] = {}

    def baseline(self) -> None:
        import gc

        gc.collect()
        self.base = rss_mb()
        self.hwm_reset = reset_peak_rss()

    def report(self) -> dict[str, Any]:
        peak = _status_kb("VmHWM") if self.hwm_reset else None
        peak_mb = peak / 1024.0 if peak is not None else maxrss_mb()
        out: dict[str, Any] = {
            "base_rss_mb": self.base,
            "peak_rss_mb": peak_mb,
            "peak_rss_method": "VmHWM reset at baseline" if self.hwm_reset else "ru_maxrss",
            "process_peak_rss_mb": maxrss_mb(),
        }
        if self.base is not None and peak_mb is not None:
            out["train_mem_mb"] = peak_mb - self.base
        return out


# ------------------------------------------------------------------------------ children


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_child(
    target: str,
    configs: Sequence[dict],
    *,
    threads: int,
    timeout: float,
    env: dict[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run ``target(config, probe)`` for each config in one fresh child process.

    Returns one record per config: the target's dict plus the probe's memory fields and
    ``status`` ("ok", "error: ...", "timeout after N s", "crashed: ..."). A config the child
    never reached (timeout, crash) gets only ``status``.
    """
    if not configs:
        return []
    with tempfile.TemporaryDirectory(prefix="snncc_bench_") as tmp:
        spec = Path(tmp) / "spec.json"
        out = Path(tmp) / "out.jsonl"
        spec.write_text(
            json.dumps({"target": target, "configs": list(configs), "threads": threads})
        )
        cmd = [
            sys.executable,
            "-c",
            "from benchmarks.common import child_main; child_main()",
            str(spec),
            str(out),
        ]
        e = child_env(threads)
        if env:
            e.update(env)
        status = None
        try:
            proc = subprocess.run(
                cmd, env=e, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout
            )
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-6:]
                status = f"crashed (exit {proc.returncode}): " + " | ".join(tail)
        except subprocess.TimeoutExpired:
            status = f"timeout after {timeout:.0f} s"
        records = []
        if out.exists():
            records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    while len(records) < len(configs):
        records.append({"status": status or "no result"})
    if status and log:
        log(f"    {target}: {status}")
    return records


def pin_cpus(n: int) -> list[int] | None:
    """Restrict this process (and the threads it starts later) to ``n`` of its usable CPUs;
    returns them (None where affinity cannot be set)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))[: max(1, int(n))]
        os.sched_setaffinity(0, cpus)
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return None
    return cpus


def child_main() -> None:
    """Entry point of a child: argv = [spec.json, out.jsonl]."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    cpus = pin_cpus(spec["threads"])  # before any library starts its thread pool
    module, _, name = spec["target"].partition(":")
    func = getattr(importlib.import_module(module), name)
    for cfg in spec["configs"]:
        probe = Probe()
        t0 = time.perf_counter()
        try:
            rec = dict(func(cfg, probe) or {})
            rec.setdefault("status", "ok")
        except Exception as err:  # recorded, and the next config still runs
            msg = "".join(traceback.format_exception_only(type(err), err)).strip()
            rec = {"status": f"error: {msg}"}
            if os.environ.get("SNNCC_BENCH_TRACEBACK"):
                traceback.print_exc()
        if probe.base is not None and rec.get("status") == "ok":
            rec.update(probe.report())
        rec["config"] = cfg
        rec["cpus"] = cpus
        rec["child_wall_s"] = time.perf_counter() - t0
        rec["loadavg_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        with open(out, "a") as fh:
            fh.write(json.dumps(rec, default=_jsonable) + "\n")
        _release_memory()


def _release_memory() -> None:
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------------------ data


def poisson_spikes(B: int, T: int, n: int, rate: float, seed: int = 0) -> np.ndarray:
    """(B, T, n) bool spikes, each (step, unit) independently on with probability ``rate``.

    Exactly Bernoulli(rate) per entry, drawn as a binomial spike count per example and that
    many distinct positions, so large batches cost no (B, T, n) array of random floats.
    """
    rng = np.random.default_rng(seed)
    x = np.zeros((B, T * n), dtype=bool)
    for b in range(B):
        k = int(rng.binomial(T * n, rate))
        x[b, rng.choice(T * n, size=k, replace=False)] = True
    return x.reshape(B, T, n)


def random_labels(B: int, n_classes: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, n_classes, B).astype(np.int64)


# ------------------------------------------------------------------------------ hardware


def _first(path: str, key: str) -> str | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.split(":")[0].strip() == key:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cmd(args: list[str]) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def mem_total_bytes() -> int | None:
    kb = _first("/proc/meminfo", "MemTotal")
    return int(kb.split()[0]) * 1024 if kb else None


def hardware(gpu: bool = False) -> dict[str, Any]:
    """What the benchmark ran on: CPU, cores, memory, OS, compilers, versions, GPU."""
    import snncc

    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "usable_cpus": default_threads(),
        "mem_total_gb": round((mem_total_bytes() or 0) / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "snncc": snncc.__version__,
        "cxx": (_cmd([os.environ.get("CXX", "g++"), "--version"]) or "").splitlines()[:1],
    }
    info["cxx"] = info["cxx"][0] if info["cxx"] else None
    commit = _cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if commit:
        dirty = _cmd(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
        info["commit"] = commit + ("+local changes" if dirty else "")
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    if gpu:
        smi = _cmd(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        )
        info["gpu"] = smi.splitlines()[0] if smi else None
        nvcc = _cmd(["nvcc", "--version"])
        info["nvcc"] = nvcc.splitlines()[-1] if nvcc else None
    return info


# ------------------------------------------------------------------------------ NVML energy


class Nvml:
    """Board energy counter through NVML (``nvmlDeviceGetTotalEnergyConsumption``, mJ).

    Uses ``pynvml`` (nvidia-ml-py) when importable, else ``libnvidia-ml.so.1`` through ctypes.
    ``energy_mj()`` returns None where the counter is not available.
    """

    def __init__(self, index: int = 0):
        self._get: Callable[[], int] | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._get = lambda: int(pynvml.nvmlDeviceGetTotalEnergyConsumption(h))
            self._get()
            return
        except Exception:
            self._get = None
        try:
            import ctypes

            lib = ctypes.CDLL("libnvidia-ml.so.1")
            if lib.nvmlInit_v2() != 0:
                return
            handle = ctypes.c_void_p()
            if lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
                return
            val = ctypes.c_ulonglong()

            def get() -> int:
                rc = lib.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(val))
                if rc != 0:
                    raise RuntimeError(f"NVML error {rc}")
                return int(val.value)

            get()
            self._get = get
        except Exception:
            self._get = None

    @property
    def available(self) -> bool:
        return self._get is not None

    def energy_mj(self) -> int | None:
        return self._get() if self._get is not None else None


# ------------------------------------------------------------------------------ writers


def _no_nan(obj: Any) -> Any:
    """NaN/inf -> None, so that the file is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    return obj


def write_json(path: Path, data: dict) -> None:
    from snncc.files import atomic_write

    text = json.dumps(_no_nan(json.loads(json.dumps(data, default=_jsonable))), indent=1)
    atomic_write(path, text.encode(), durable=False)


def fmt(value: Any, digits: int = 3, unit: str = "") -> str:
    """A number for a table: ``n/a`` for None/NaN, 3 significant digits otherwise."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0" + unit
    mag = math.floor(math.log10(abs(v)))
    dec = max(0, digits - 1 - mag)
    return f"{v:,.{dec}f}{unit}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |")
    return "\n".join(lines)


def ms(seconds: float | None) -> str:
    return fmt(None if seconds is None else seconds * 1e3)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None if either is missing or b is 0."""
    try:
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
            return None
    except TypeError:
        return None
    return a / b


def get(rec: dict | None, *keys: str, default: Any = None) -> Any:
    """Nested lookup that tolerates missing pieces (failed configurations)."""
    cur: Any = rec
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            return default
        cur = cur[k]
    return cur
