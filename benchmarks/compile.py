"""Compile-time benchmark: the SHD training model (700-256 ALIF-20, eProp + Adam), cold and cached.

* cold: a fresh process and an empty build cache (``SNNCC_CACHE`` pointed at a new folder);
* cached: a fresh process whose cache already holds the build (the next run of a script);
* warm process: compiling the same network again inside the process that just compiled it.

``snncc.compile`` is timed end to end after ``import snncc`` (whose time is reported apart),
and split into its two phases by timing the compiler module's own functions while it runs:
``derive + render`` (``plan_and_render``: symbolic eProp derivation, plan, printed C, Jinja2)
and ``build + load`` (``load_program``: g++/nvcc or the cache hit, then loading the library).
Where the CUDA backend is asked for on a machine without a GPU, the CUDA sources are still
built with nvcc for ``arch`` (default sm_90, the H100/H200) to time the compiler alone.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Probe, median


def _phase_timers() -> dict[str, float]:
    """Wrap snncc.runtime.compiler's phases with timers; returns the dict they fill."""
    import snncc.runtime.compiler as comp

    acc: dict[str, float] = {}
    for name, label in (("plan_and_render", "derive + render"), ("load_program", "build + load")):
        orig = getattr(comp, name)

        def timed(*a: Any, _orig=orig, _label=label, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _orig(*a, **k)
            finally:
                acc[_label] = acc.get(_label, 0.0) + time.perf_counter() - t0

        setattr(comp, name, timed)
    return acc


def compile_child(cfg: dict, probe: Probe) -> dict:
    t0 = time.perf_counter()
    import snncc

    import_s = time.perf_counter() - t0
    from snncc.experiment import TrainConfig, build_network

    tc = TrainConfig(neurons=int(cfg["n_hidden"]), tau_a=2000.0, refractory=5.0)
    net = build_network(tc, int(cfg["n_in"]), int(cfg["n_out"]))
    rule = snncc.rules.EProp(readout="output", regularizer="none")
    backend, B = cfg["backend"], int(cfg["B"])
    out: dict[str, Any] = {"import_s": import_s, "backend": backend}
    if cfg.get("nvcc_only"):
        from snncc.backends.cuda import nvcc_compile
        from snncc.runtime.compiler import plan_and_render

        t0 = time.perf_counter()
        _, _, sources = plan_and_render(net, B, "cuda", rule, snncc.optim.Adam(1e-3))
        t1 = time.perf_counter()
        name = next(iter(sources))
        nvcc_compile(sources[name], name, cfg.get("arch", "sm_90"))
        t2 = time.perf_counter()
        out.update(
            compile_s=t2 - t0, phases_s={"derive + render": t1 - t0, "build + load": t2 - t1}
        )
        out["note"] = f"nvcc only, for {cfg.get('arch', 'sm_90')} (no GPU to load it on)"
        return out
    phases = _phase_timers()
    t0 = time.perf_counter()
    snncc.compile(net, batch_size=B, backend=backend, rule=rule, optimizer=snncc.optim.Adam(1e-3))
    out["compile_s"] = time.perf_counter() - t0
    out["phases_s"] = dict(phases)
    phases.clear()
    t0 = time.perf_counter()
    snncc.compile(net, batch_size=B, backend=backend, rule=rule, optimizer=snncc.optim.Adam(1e-3))
    out["warm_process_s"] = time.perf_counter() - t0
    out["warm_process_phases_s"] = dict(phases)
    return out


def run(p: dict, runner, log, results: dict, save) -> None:
    n_in, n_hidden, n_out = p["shd"]
    base = {"n_in": n_in, "n_hidden": n_hidden, "n_out": n_out, "B": p["B"]}
    backends = [(p["backend"], False)]
    if p["backend"] == "cpu" and p.get("compile_nvcc"):
        from snncc.backends.cuda import nvcc_path

        if nvcc_path() is not None:
            backends.append(("cuda", True))
    out: dict[str, Any] = {
        "network": f"{n_in}-{n_hidden} ALIF-{n_out}, eProp + Adam",
        "B": p["B"],
        "backends": {},
    }
    results["compile"] = out
    target = "benchmarks.compile:compile_child"
    for backend, nvcc_only in backends:
        label = backend + (" (nvcc only)" if nvcc_only else "")
        n_cold, n_cached = p["compile_cold"], p["compile_cached"]
        log(f"  compile {label}: {n_cold} cold, {n_cached} cached (fresh processes)")
        cfg = {**base, "backend": backend, "nvcc_only": nvcc_only, "arch": p.get("arch", "sm_90")}
        cold, cached = [], []
        keep = Path(tempfile.mkdtemp(prefix="snncc_bench_cache_"))
        try:
            for k in range(n_cold):
                cache = keep if k == 0 else Path(tempfile.mkdtemp(prefix="snncc_bench_cache_"))
                try:
                    cold += runner(target, [cfg], env={"SNNCC_CACHE": str(cache)})
                finally:
                    if cache != keep:
                        shutil.rmtree(cache, ignore_errors=True)
            for _ in range(n_cached):
                cached += runner(target, [cfg], env={"SNNCC_CACHE": str(keep)})
        finally:
            shutil.rmtree(keep, ignore_errors=True)
        out["backends"][label] = summarize_compile(cold, cached)
        save()


def summarize_compile(cold: list[dict], cached: list[dict]) -> dict[str, Any]:
    def ok(rs: list[dict]) -> list[dict]:
        return [r for r in rs if r.get("status") == "ok"]

    def phases(rs: list[dict]) -> dict[str, float]:
        keys = sorted({k for r in rs for k in r.get("phases_s", {})})
        return {k: median(r["phases_s"].get(k, 0.0) for r in rs) for k in keys}

    c, h = ok(cold), ok(cached)
    errors = [r.get("status") for r in cold + cached if r.get("status") != "ok"]
    return {
        "cold_s": median(r["compile_s"] for r in c),
        "cold_all_s": [r["compile_s"] for r in c],
        "cold_phases_s": phases(c),
        "cached_s": median(r["compile_s"] for r in h),
        "cached_all_s": [r["compile_s"] for r in h],
        "cached_phases_s": phases(h),
        "warm_process_s": median(r.get("warm_process_s", float("nan")) for r in h),
        "import_s": median(r["import_s"] for r in c + h),
        "note": next((r["note"] for r in c + h if r.get("note")), None),
        "errors": errors,
    }
