"""The benchmark suite: ``python -m benchmarks [--quick] [--gpu] [--out DIR]`` (or ``snncc bench``).

Runs, on this machine and in this one run, every comparison side by side: snncc eProp vs a
SpyTorch-style PyTorch BPTT of the same network (time per batch, peak memory, per-kernel
profile, throughput vs batch, largest hidden layer), snncc LSNN vs a PyTorch LSTM (inference
latency, throughput, GPU energy), and snncc's compile time cold and cached. Writes
``results.json`` (after every section, so an interrupted run keeps what it measured),
``results.md`` (the tables, with the hardware and the targets met or missed) and ``img/*.png``.

Presets: ``cpu`` (default, SHD sizes with batch 32; about 5-10 minutes on 2 cores), ``cpu-quick``
(``--quick``), ``gpu`` (``--gpu``: batch 512, cuda backend, PyTorch on the GPU), ``gpu-quick``,
and ``smoke`` (tiny sizes, used by the tests).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ROOT,
    default_threads,
    fmt,
    get,
    hardware,
    md_table,
    ms,
    ratio,
    run_child,
    write_json,
)

SHD = (700, 256, 20)
SMNIST = (79, 256, 10)
RATE = 0.015  # input spikes per input per 1 ms step (SHD: roughly 1-2 %)

_CPU = dict(
    device="cpu",
    backend="cpu",
    shd=SHD,
    smnist=SMNIST,
    rate=RATE,
    B=32,
    Ts=(100, 300, 685, 1000, 1370),
    repeats=5,
    warmup=1,
    online=True,
    online_repeats=1,
    batch_T=300,
    batches=(1, 4, 16, 64, 256, 512),
    batch_repeats=3,
    hidden_T=1370,
    hidden_B=32,
    hidden_sizes=(128, 256, 512, 1024),
    verify_max=False,
    infer_T=1568,
    infer_batch=512,
    latency_seconds=3.0,
    throughput_seconds=6.0,
    compile_cold=3,
    compile_cached=5,
    compile_nvcc=True,
    isolate=True,
    timeout=900.0,
)
_GPU = dict(
    _CPU,
    device="cuda",
    backend="cuda",
    B=512,
    Ts=(100, 300, 685, 1370),
    repeats=5,
    batch_T=1370,
    batches=(1, 4, 16, 64, 256, 512),
    batch_repeats=3,
    hidden_B=512,
    hidden_sizes=(256, 512, 1024, 2048),
    verify_max=True,
    verify_timeout=240,
    latency_seconds=3.0,
    throughput_seconds=4.0,
    energy_seconds=3.0,
    compile_cold=2,
    compile_cached=3,
    compile_nvcc=False,
    isolate=False,
    timeout=300.0,
)
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": _CPU,
    "cpu-quick": dict(
        _CPU,
        Ts=(100, 300, 1000),
        repeats=3,
        batch_T=100,
        batches=(1, 8, 32, 128),
        batch_repeats=2,
        hidden_sizes=(64, 128, 256),
        latency_seconds=1.0,
        throughput_seconds=2.0,
        infer_batch=128,
        compile_cold=1,
        compile_cached=2,
        compile_nvcc=False,
    ),
    "gpu": _GPU,
    "gpu-quick": dict(
        _GPU,
        Ts=(100, 1370),
        repeats=3,
        batches=(1, 32, 512),
        batch_repeats=2,
        hidden_sizes=(256, 512, 1024),
        verify_max=False,
        latency_seconds=1.0,
        throughput_seconds=2.0,
        energy_seconds=2.0,
        compile_cold=1,
        compile_cached=1,
    ),
    "smoke": dict(
        _CPU,
        shd=(20, 16, 4),
        smnist=(9, 16, 4),
        B=2,
        Ts=(10, 20),
        repeats=1,
        warmup=1,
        batch_T=10,
        batches=(1, 3),
        batch_repeats=1,
        hidden_T=20,
        hidden_B=2,
        hidden_sizes=(8, 16, 24),
        infer_T=40,
        infer_batch=3,
        latency_seconds=0.0,
        throughput_seconds=0.0,
        max_calls=2,
        compile_cold=1,
        compile_cached=1,
        compile_nvcc=False,
        isolate=False,
        timeout=300.0,
    ),
}

TARGETS_TEXT = {
    "cpu_10x": "CPU: snncc eProp >= 10x faster than PyTorch BPTT at T=1000 (batch 32)",
    "cpu_every_T": "CPU: snncc faster than PyTorch BPTT at every T >= 100",
    "online_flat": "online mode's peak memory flat as T grows (within 10 % from shortest to "
    "longest T)",
    "gpu_100ms": "GPU: a batch of 512 at 1370 steps trains in under 100 ms",
    "compile_cold": "compile the SHD model in at most 5 s cold",
    "compile_cached": "compile the SHD model in at most 0.2 s cached",
}


# ----------------------------------------------------------------------------- running


def build_parser() -> argparse.ArgumentParser:
    from snncc.bench import add_bench

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    add_bench(parser)
    return parser


def preset_for(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    name = args.preset or (("gpu" if args.gpu else "cpu") + ("-quick" if args.quick else ""))
    if name not in PRESETS:
        raise SystemExit(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
    p = dict(PRESETS[name])
    p["threads"] = args.threads or default_threads()
    if args.timeout:
        p["timeout"] = float(args.timeout)
    return name, p


def run(args: argparse.Namespace) -> int:
    """Run the suite described by ``args`` (see snncc.bench.add_bench); returns 0."""
    if getattr(args, "render", None):
        return render(Path(args.render), plots_too=not args.no_plots)
    name, p = preset_for(args)
    sections = list(args.only or ("compile", "training", "inference"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or ROOT / "runs" / f"bench-{name}-{stamp}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {msg}", flush=True)

    if p["device"] == "cuda":
        _check_gpu()
    results: dict[str, Any] = {
        "meta": {
            "preset": name,
            "settings": {k: v for k, v in p.items() if not callable(v)},
            "hardware": hardware(gpu=p["device"] == "cuda"),
            "threads": p["threads"],
            "command": " ".join(sys.argv),
            "loadavg_start": _loadavg(),
        }
    }

    def save() -> None:
        results["meta"]["elapsed_s"] = time.perf_counter() - started
        results["meta"]["loadavg_end"] = _loadavg()
        write_json(out / "results.json", results)
        try:  # the tables so far, so that a stopped run still leaves them
            (out / "results.md").write_text(report(results))
        except Exception as err:
            log(f"  (results.md not written: {type(err).__name__}: {err})")

    def runner(
        target: str, configs: list[dict], timeout: float | None = None, env: dict | None = None
    ) -> list[dict]:
        limit = timeout or p["timeout"] * max(1, len(configs))
        return run_child(target, configs, threads=p["threads"], timeout=limit, env=env, log=log)

    log(f"snncc benchmarks, preset '{name}', {p['threads']} threads for both sides -> {out}")
    save()
    from benchmarks import compile as compile_bench
    from benchmarks import inference, training

    modules = {"compile": compile_bench, "training": training, "inference": inference}
    status = 0
    try:
        for section in sections:
            log(f"{section}:")
            try:
                modules[section].run(p, runner, log, results, save)
            except Exception as err:  # record and continue with the next section
                results.setdefault("errors", []).append(f"{section}: {type(err).__name__}: {err}")
                log(f"  {section} failed: {type(err).__name__}: {err}")
            save()
    except KeyboardInterrupt:  # Ctrl-C or gpu.sh's time limit: keep what was measured
        results.setdefault("errors", []).append("interrupted; later sections not run")
        log("interrupted: writing what was measured")
        status = 130
    save()
    if not args.no_plots:
        try:
            plots(results, out / "img")
        except Exception as err:
            log(f"plots failed: {type(err).__name__}: {err}")
    print()
    print(report(results))
    log(f"done: {out / 'results.json'}, {out / 'results.md'}, {out / 'img'}")
    return status


def render(folder: Path, plots_too: bool = True) -> int:
    """Rewrite results.md (and the plots) of an earlier run from its results.json."""
    results = json.loads((folder / "results.json").read_text())
    text = report(results)
    (folder / "results.md").write_text(text)
    if plots_too:
        plots(results, folder / "img")
    print(text)
    return 0


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _check_gpu() -> None:
    try:
        import pycuda.driver as drv

        drv.init()
        if drv.Device.count() == 0:
            raise RuntimeError("no CUDA device")
    except Exception as err:
        raise SystemExit(
            f"--gpu needs PyCUDA and an NVIDIA GPU ({type(err).__name__}: {err}); on a fresh "
            "machine run benchmarks/gpu.sh"
        ) from None


# ------------------------------------------------------------------------------ report


def _rows(results: dict, section: str, side: str) -> dict[int, dict]:
    recs = get(results, "training", section, default=[])
    key = "T" if section == "vs_T" else "B"
    if not isinstance(recs, list):
        return {}
    return {r["config"][key]: r for r in recs if r.get("side") == side and "config" in r}


def _ok(rec: dict | None) -> bool:
    return bool(rec) and rec.get("status") == "ok"


def _val(rec: dict | None, key: str) -> Any:
    return rec.get(key) if _ok(rec) else None


def _status(rec: dict | None) -> str:
    if rec is None:
        return "not run"
    s = str(rec.get("status", "?"))
    return s if len(s) < 90 else s[:87] + "..."


def speedups(results: dict) -> dict[int, float | None]:
    s, t = _rows(results, "vs_T", "snncc"), _rows(results, "vs_T", "torch")
    return {T: ratio(_val(t.get(T), "median_s"), _val(s.get(T), "median_s")) for T in sorted(s)}


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every target this run can speak to."""
    out = []
    gpu = get(results, "meta", "settings", "device") == "cuda"
    sp = speedups(results)
    B = get(results, "meta", "settings", "B")
    if sp and not gpu:
        have = {T: v for T, v in sp.items() if v is not None}
        if 1000 in have:
            v, how = have[1000], "at T=1000"
        else:
            lo = max((T for T in have if T < 1000), default=None)
            hi = min((T for T in have if T > 1000), default=None)
            if lo and hi:
                w = (math.log(1000) - math.log(lo)) / (math.log(hi) - math.log(lo))
                v, how = have[lo] ** (1 - w) * have[hi] ** w, f"interpolated from T={lo}, {hi}"
            else:
                v, how = None, "T=1000 not measured"
        out.append(
            (
                TARGETS_TEXT["cpu_10x"] + f" [batch {B} here]",
                f"{fmt(v, unit='x')} ({how})",
                _verdict(v is not None and v >= 10, v),
            )
        )
        big = {T: v for T, v in have.items() if T >= 100}
        if big:
            worst = min(big, key=big.get)
            out.append(
                (
                    TARGETS_TEXT["cpu_every_T"],
                    f"slowest ratio {fmt(big[worst])}x at T={worst}",
                    _verdict(big[worst] > 1, big[worst]),
                )
            )
    online = _rows(results, "vs_T", "snncc-online")
    oks = {T: r for T, r in online.items() if _ok(r)}
    if online:
        if len(oks) >= 2:
            t0, t1 = min(oks), max(oks)
            key = "device_mem_mb" if gpu else "train_mem_mb"
            m0, m1 = oks[t0].get(key), oks[t1].get(key)
            grow = ratio(m1, m0)
            what = "device memory" if gpu else "memory added by training (peak minus RSS before)"
            out.append(
                (
                    TARGETS_TEXT["online_flat"],
                    f"{what}: {fmt(m0)} MB at T={t0} -> {fmt(m1)} MB at T={t1}",
                    _verdict(grow is not None and grow <= 1.10, grow),
                )
            )
        else:
            first = next(iter(online.values()))
            out.append((TARGETS_TEXT["online_flat"], _status(first), "not measured"))
    if gpu:
        r = _rows(results, "vs_T", "snncc").get(1370)
        v = _val(r, "median_s")
        out.append(
            (
                TARGETS_TEXT["gpu_100ms"] + f" [batch {B} here]",
                f"{ms(v)} ms",
                _verdict(v is not None and v < 0.1, v),
            )
        )
    backends = get(results, "compile", "backends", default={}) or {}
    for label, c in backends.items():
        if "nvcc only" in label:
            continue
        cold, cached = c.get("cold_s"), c.get("cached_s")
        out.append(
            (
                TARGETS_TEXT["compile_cold"] + f" [{label}]",
                f"{fmt(cold)} s",
                _verdict(cold is not None and cold <= 5.0, cold),
            )
        )
        out.append(
            (
                TARGETS_TEXT["compile_cached"] + f" [{label}]",
                f"{fmt(cached)} s",
                _verdict(cached is not None and cached <= 0.2, cached),
            )
        )
    return out


def _verdict(ok: bool, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not measured"
    return "met" if ok else "**missed**"


def report(results: dict) -> str:
    meta = results.get("meta", {})
    hw, st = meta.get("hardware", {}), meta.get("settings", {})
    gpu = st.get("device") == "cuda"
    n_in, n_hidden, n_out = st.get("shd", SHD)
    parts = [f"# snncc benchmarks ({meta.get('preset')})", ""]
    parts.append(
        md_table(
            ["", ""],
            [
                ("date", hw.get("date", "?")),
                (
                    "CPU",
                    f"{hw.get('cpu')} ({hw.get('usable_cpus')} usable of {hw.get('logical_cpus')} "
                    f"logical CPUs), {hw.get('mem_total_gb')} GB RAM",
                ),
                *([("GPU", str(hw.get("gpu"))), ("nvcc", str(hw.get("nvcc")))] if gpu else []),
                (
                    "threads",
                    f"{meta.get('threads')} for both sides (OMP_NUM_THREADS for snncc's "
                    "OpenMP; torch.set_num_threads and OMP/MKL_NUM_THREADS for PyTorch)",
                ),
                (
                    "software",
                    f"snncc {hw.get('snncc')} ({hw.get('commit', '?')}), torch "
                    f"{hw.get('torch')}, numpy {hw.get('numpy')}, Python {hw.get('python')}, "
                    f"{hw.get('cxx')}",
                ),
                ("OS", str(hw.get("os"))),
                (
                    "network",
                    f"{n_in} inputs -> {n_hidden} recurrent ALIF -> {n_out} leaky readouts; "
                    f"Bernoulli input spikes at {st.get('rate')} per input per 1 ms step, "
                    "random labels; Adam 1e-3, per-step cross-entropy, float32",
                ),
                ("run time", f"{fmt(meta.get('elapsed_s'))} s"),
                (
                    "load average (1, 5, 15 min)",
                    f"{meta.get('loadavg_start')} at start, "
                    f"{meta.get('loadavg_end')} at end (other work on the machine skews timings)",
                ),
            ],
        )
    )
    tg = targets(results)
    if tg:
        parts += ["", "## Targets", "", md_table(["target", "measured", "verdict"], tg)]
    parts += _training_tables(results, gpu)
    parts += _inference_table(results, gpu)
    parts += _compile_table(results)
    errs = list(results.get("errors", []))
    for section in ("vs_T", "vs_batch", "max_hidden"):
        e = get(results, "training", section, "error")
        if e:
            errs.append(f"training {section}: {e}")
    if errs:
        parts += ["", "## Failures", ""] + [f"* {e}" for e in errs]
    return "\n".join(parts) + "\n"


def _mem_key(gpu: bool) -> str:
    return "device_mem_mb" if gpu else "peak_rss_mb"


def _training_tables(results: dict, gpu: bool) -> list[str]:
    parts: list[str] = []
    s, t = _rows(results, "vs_T", "snncc"), _rows(results, "vs_T", "torch")
    o = _rows(results, "vs_T", "snncc-online")
    B = get(results, "meta", "settings", "B")
    mk = _mem_key(gpu)
    if s or t:
        mem_what = "device memory (MB)" if gpu else "peak RSS (MB)"
        head = [
            "T",
            "snncc eProp (ms)",
            "PyTorch BPTT (ms)",
            "speed-up",
            f"snncc {mem_what}",
            f"PyTorch {mem_what}",
        ]
        if not gpu:
            head += ["snncc +MB during training", "PyTorch +MB during training"]
        if o:
            head += ["snncc online (ms)", f"online {mem_what}"]
            if not gpu:
                head += ["online +MB during training"]
        rows = []
        for T in sorted(set(s) | set(t)):
            a, b = s.get(T), t.get(T)
            row = [
                str(T),
                ms(_val(a, "median_s")),
                ms(_val(b, "median_s")),
                fmt(ratio(_val(b, "median_s"), _val(a, "median_s")), unit="x"),
                fmt(_val(a, mk)),
                fmt(_val(b, mk)),
            ]
            if not gpu:
                row += [fmt(_val(a, "train_mem_mb")), fmt(_val(b, "train_mem_mb"))]
            if o:
                r = o.get(T)
                row += [ms(_val(r, "median_s")), fmt(_val(r, mk))] if _ok(r) else [_status(r), ""]
                if not gpu:
                    row += [fmt(_val(r, "train_mem_mb"))]
            rows.append(row)
        parts += [
            "",
            f"## Training: time per batch and memory vs sequence length (batch {B})",
            "",
            "Medians over the repeats (after one warm-up batch). Peak RSS is the "
            "child process's peak during the measured batches (including the interpreter,"
            " the model and the input already in memory); '+MB' is that peak minus the "
            "RSS just before the first batch."
            if not gpu
            else "Medians over the repeats. Device memory: snncc's buffers; PyTorch's "
            "max_memory_reserved (the input is a dense float32 tensor there, spike bit "
            "words in snncc).",
            "",
            md_table(head, rows),
        ]
        ok_online = sorted(T for T, r in o.items() if _ok(r))
        if ok_online:
            r = o[ok_online[-1]]
            bufs = ", ".join(
                f"{k} {fmt(v)}" for k, v in list(r.get("time_buffers_mb", {}).items())[:6]
            )
            prof = ", ".join(f"{k} {ms(v)}" for k, v in (r.get("profile_s") or {}).items())
            parts += [
                "",
                f"snncc online at T={ok_online[-1]}: ms per batch: {prof}. Buffers that "
                f"grow with T (MB): {bufs or 'none'}.",
            ]
        elif o:
            parts += ["", f"snncc online: {_status(next(iter(o.values())))}"]
        parts += _profile_table(s, t)
    parts += _batch_table(results)
    parts += _max_hidden_table(results, gpu)
    return parts


def _profile_table(s: dict, t: dict) -> list[str]:
    keys: list[str] = []
    for r in s.values():
        for k in r.get("profile_s") or {}:
            if k not in keys:
                keys.append(k)
    order = ["host: convert inputs", "forward_backward", "forward", "backward", "accumulate"]
    order.append("optimize")
    keys = [k for k in order if k in keys] + [k for k in keys if k not in order and k != "other"]
    keys.append("other")
    ukeys = ["forward", "backward"]  # the fused pass run again as separate kernels
    unfused = any(r.get("profile_unfused_s") for r in s.values())
    tkeys = ["forward+loss", "backward", "adam"]
    rows = []
    for T in sorted(s):
        r = s[T]
        if not _ok(r):
            continue
        p = r.get("profile_s", {})
        up = r.get("profile_unfused_s") or {}
        tp = (t.get(T) or {}).get("profile_s", {}) if _ok(t.get(T)) else {}
        rows.append(
            [
                str(T),
                *[ms(p.get(k)) for k in keys],
                ms(r.get("median_s")),
                *([ms(up.get(k)) for k in ukeys] if unfused else []),
                *[ms(tp.get(k)) for k in tkeys],
            ]
        )
    if not rows:
        return []
    head = ["T", *[f"snncc {k}" for k in keys], "snncc total"]
    head += [f"snncc {k} (unfused)" for k in ukeys] if unfused else []
    head += [f"PyTorch {k}" for k in tkeys]
    text = (
        "snncc: each generated function timed around `model.programs[0].call(name, B, T)` "
        "inside `train_batch`; 'host: convert inputs' is the packing of the dense spike array "
        "into bit words, 'other' the rest of `train_batch` on the host (uploads, loss). "
        "PyTorch: forward incl. loss, `loss.backward()`, `Adam.step()`."
    )
    if unfused:
        text += (
            " The CPU runs forward and backward fused per batch element (`forward_backward`, "
            "while the element's histories are in cache); the '(unfused)' columns are the same "
            "batches run again through the separate forward and backward kernels, to show "
            "the split (their sum exceeds the fused time by what the fusion saves)."
        )
    title = "## Where the time goes (ms per batch, medians)"
    return ["", title, "", text, "", md_table(head, rows)]


def _batch_table(results: dict) -> list[str]:
    s, t = _rows(results, "vs_batch", "snncc"), _rows(results, "vs_batch", "torch")
    if not (s or t):
        return []
    T = get(results, "meta", "settings", "batch_T")
    rows = []
    for B in sorted(set(s) | set(t)):
        a, b = s.get(B), t.get(B)
        ta, tb = _val(a, "median_s"), _val(b, "median_s")
        ea, eb = ratio(B, ta), ratio(B, tb)
        rows.append([str(B), ms(ta), ms(tb), fmt(ea), fmt(eb), fmt(ratio(ea, eb), unit="x")])
    return [
        "",
        f"## Training throughput vs batch size (T={T})",
        "",
        md_table(
            [
                "batch",
                "snncc (ms/batch)",
                "PyTorch (ms/batch)",
                "snncc (examples/s)",
                "PyTorch (examples/s)",
                "snncc / PyTorch",
            ],
            rows,
        ),
    ]


def _max_hidden_table(results: dict, gpu: bool) -> list[str]:
    mh = get(results, "training", "max_hidden")
    if not isinstance(mh, dict) or "sides" not in mh:
        return []
    key = mh.get("memory")
    what = "device memory" if gpu else "peak RSS"
    rows = []
    for side, info in mh["sides"].items():
        pts = ", ".join(f"{n}: {fmt(m)}" for n, m in info.get("points", []))
        fit = info.get("fit_mb")
        fit_s = f"{fmt(fit[0])} + {fmt(fit[1])} N + {fmt(fit[2])} N^2" if fit else "n/a"
        ver = info.get("verified")
        ver_s = f"N={ver['n_hidden']}: {ver.get('status')}" if ver else "not tried"
        rows.append(
            [
                side,
                pts or "n/a",
                fit_s,
                fmt(info.get("budget_mb")),
                fmt(info.get("predicted_max")),
                ver_s,
            ]
        )
    fails = [
        f"{r.get('side')} N={get(r, 'config', 'n_hidden')}: {_status(r)}"
        for r in mh.get("rows", [])
        if not _ok(r)
    ]
    out = [
        "",
        f"## Largest hidden layer at T={mh.get('T')} (batch {mh.get('B')})",
        "",
        f"{what} (MB) measured at a few hidden sizes (one training batch each), fitted with "
        "a + b N + c N^2, solved for the memory budget (total memory minus headroom). "
        + (
            ""
            if gpu
            else "Extrapolated, not run: a CPU batch at those sizes would take minutes to hours."
        )
        + f" Memory key: `{key}`.",
        "",
        md_table(
            [
                "side",
                f"N: {what} (MB)",
                "fit (MB)",
                "budget (MB)",
                "largest N (predicted)",
                "verified",
            ],
            rows,
        ),
    ]
    if fails:
        out += ["", "Failed points: " + "; ".join(fails)]
    return out


def _inference_table(results: dict, gpu: bool) -> list[str]:
    inf = results.get("inference")
    if not isinstance(inf, dict):
        return []
    rows = inf.get("rows", [])

    def pick(side: str, B: int) -> dict | None:
        return next((r for r in rows if r.get("side") == side and get(r, "config", "B") == B), None)

    big = max((get(r, "config", "B") or 0 for r in rows), default=0)
    s1, t1, sb, tb = pick("snncc", 1), pick("torch", 1), pick("snncc", big), pick("torch", big)
    lines = [
        [
            "parameters",
            fmt(_val(s1, "params") or inf.get("lsnn_params")),
            f"{fmt(_val(t1, 'params'))} (hidden {_val(t1, 'hidden')})",
            "",
        ],
        [
            "latency, batch 1 (ms, median)",
            ms(_val(s1, "median_s")),
            ms(_val(t1, "median_s")),
            fmt(ratio(_val(t1, "median_s"), _val(s1, "median_s")), unit="x"),
        ],
        [
            f"throughput, batch {big} (examples/s)",
            fmt(ratio(big, _val(sb, "median_s"))),
            fmt(ratio(big, _val(tb, "median_s"))),
            fmt(ratio(_val(tb, "median_s"), _val(sb, "median_s")), unit="x"),
        ],
    ]
    if gpu:
        for B, a, b in ((1, s1, t1), (big, sb, tb)):
            ea, eb = _val(a, "energy_mj_per_inference"), _val(b, "energy_mj_per_inference")
            lines.append(
                [
                    f"energy per inference, batch {B} (mJ, board total)",
                    fmt(ea),
                    fmt(eb),
                    fmt(ratio(eb, ea), unit="x"),
                ]
            )
            ea = _val(a, "energy_above_idle_mj_per_inference")
            eb = _val(b, "energy_above_idle_mj_per_inference")
            lines.append(
                [
                    f"energy per inference, batch {B} (mJ, above idle)",
                    fmt(ea),
                    fmt(eb),
                    fmt(ratio(eb, ea), unit="x"),
                ]
            )
    fails = [
        f"{r.get('side')} batch {get(r, 'config', 'B')}: {_status(r)}" for r in rows if not _ok(r)
    ]
    n_in, n_hidden, n_out = get(results, "meta", "settings", "smnist", default=SMNIST)
    out = [
        "",
        f"## Inference: snncc LSNN vs PyTorch LSTM (T={inf.get('T')}, {n_in} inputs)",
        "",
        f"SMNIST-shaped input ({n_in} threshold-crossing inputs, T={inf.get('T')}); LSNN "
        f"{n_in}-{n_hidden} ALIF-{n_out} via `model.run` + class decision; LSTM of about the "
        "same parameter count under `torch.inference_mode()`.",
        "",
        md_table(["", "snncc LSNN", "PyTorch LSTM", "snncc advantage"], lines),
    ]
    if _ok(s1) and s1.get("profile_s"):
        prof = ", ".join(f"{k} {ms(v)} ms" for k, v in s1["profile_s"].items())
        out += ["", f"snncc batch-1 call: {prof}."]
    if fails:
        out += ["", "Failed: " + "; ".join(fails)]
    return out


def _compile_table(results: dict) -> list[str]:
    c = results.get("compile")
    if not isinstance(c, dict) or not c.get("backends"):
        return []
    rows = []
    for label, b in c["backends"].items():
        cp, hp = b.get("cold_phases_s", {}), b.get("cached_phases_s", {})
        rows.append(
            [
                label,
                fmt(b.get("cold_s")),
                ", ".join(f"{k} {fmt(v)}" for k, v in cp.items()) or "n/a",
                fmt(b.get("cached_s")),
                ", ".join(f"{k} {fmt(v)}" for k, v in hp.items()) or "n/a",
                fmt(b.get("warm_process_s")),
                fmt(b.get("import_s")),
            ]
        )
    notes = [f"{k}: {b['note']}" for k, b in c["backends"].items() if b.get("note")]
    errs = [f"{k}: {e}" for k, b in c["backends"].items() for e in b.get("errors", [])]
    out = [
        "",
        f"## Compile time: {c.get('network')}, batch {c.get('B')} (seconds, medians)",
        "",
        "Cold: fresh process, empty build cache. Cached: fresh process, the build already "
        "cached. Warm process: the same compile again in the process that just did it. "
        "`import snncc` is not included (its own column).",
        "",
        md_table(
            [
                "backend",
                "cold",
                "cold phases",
                "cached",
                "cached phases",
                "warm process",
                "import snncc",
            ],
            rows,
        ),
    ]
    if notes:
        out += [""] + [f"* {n}" for n in notes]
    if errs:
        out += ["", "Failed: " + "; ".join(errs)]
    return out


# ------------------------------------------------------------------------------- plots


def plots(results: dict, folder: Path) -> list[Path]:
    """PNG plots of whatever the results hold; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    gpu = get(results, "meta", "settings", "device") == "cuda"
    tag = "gpu" if gpu else "cpu"
    mk = _mem_key(gpu)
    written = []
    colors = {"snncc": "C0", "torch": "C3", "snncc-online": "C2"}
    labels = {"snncc": "snncc eProp", "torch": "PyTorch BPTT", "snncc-online": "snncc online"}

    def save(fig, name: str) -> None:
        fig.tight_layout()
        path = folder / f"{name}_{tag}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    sides = {k: _rows(results, "vs_T", k) for k in ("snncc", "torch", "snncc-online")}
    if any(sides.values()):
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
        for side, rows in sides.items():
            pts = sorted((T, r) for T, r in rows.items() if _ok(r))
            if not pts:
                continue
            Ts = [T for T, _ in pts]
            ax[0].plot(
                Ts,
                [r["median_s"] * 1e3 for _, r in pts],
                "o-",
                color=colors[side],
                label=labels[side],
            )
            ax[1].plot(
                Ts, [r.get(mk) for _, r in pts], "o-", color=colors[side], label=labels[side]
            )
            if not gpu:  # the part the training itself added (peak minus RSS before it)
                ax[1].plot(Ts, [r.get("train_mem_mb") for _, r in pts], "s--", ms=3,
                           color=colors[side], alpha=0.7)  # fmt: skip
        for T, v in speedups(results).items():
            if v is not None and _ok(sides["torch"].get(T)):
                ax[0].annotate(
                    f"{v:.1f}x",
                    (T, sides["torch"][T]["median_s"] * 1e3),
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                    fontsize=8,
                )
        B = get(results, "meta", "settings", "B")
        ax[0].set(
            xlabel="sequence length T (steps)",
            ylabel="ms per training batch",
            title=f"time per batch (batch {B})",
            yscale="log",
        )
        ax[1].set(
            xlabel="sequence length T (steps)",
            ylabel="device memory (MB)" if gpu else "MB",
            title="device memory" if gpu else "peak RSS (solid); peak minus RSS before (dashed)",
        )
        ax[0].legend()
        save(fig, "training_vs_T")

        prof = sorted(
            (T, r["profile_s"]) for T, r in sides["snncc"].items() if _ok(r) and r.get("profile_s")
        )
        tprof = {
            T: r["profile_s"] for T, r in sides["torch"].items() if _ok(r) and r.get("profile_s")
        }
        if prof:
            fig, ax = plt.subplots(figsize=(8, 3.8))
            keys = []
            for _, pr in prof:
                keys += [k for k in pr if k not in keys]
            x = list(range(len(prof)))
            bottom = [0.0] * len(prof)
            for i, k in enumerate(keys):
                vals = [max(pr.get(k, 0.0), 0.0) * 1e3 for _, pr in prof]
                ax.bar(
                    [xi - 0.2 for xi in x],
                    vals,
                    0.38,
                    bottom=bottom,
                    label=f"snncc {k}",
                    color=plt.cm.tab10(i),
                )
                bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
            tb = [0.0] * len(prof)
            for i, k in enumerate(("forward+loss", "backward", "adam")):
                vals = [max(tprof.get(T, {}).get(k, 0.0), 0.0) * 1e3 for T, _ in prof]
                ax.bar(
                    [xi + 0.2 for xi in x],
                    vals,
                    0.38,
                    bottom=tb,
                    label=f"PyTorch {k}",
                    color=plt.cm.Pastel1(i),
                    edgecolor="k",
                    linewidth=0.3,
                )
                tb = [b + v for b, v in zip(tb, vals, strict=True)]
            ax.set_xticks(x, [f"T={T}" for T, _ in prof])
            ax.set(
                ylabel="ms per batch",
                title="where the time goes (left: snncc, right: PyTorch)",
            )
            ax.legend(fontsize=7, ncol=2)
            save(fig, "profile_vs_T")

    bs = {k: _rows(results, "vs_batch", k) for k in ("snncc", "torch")}
    if any(bs.values()):
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for side, rows in bs.items():
            pts = sorted((B, r) for B, r in rows.items() if _ok(r))
            if pts:
                ax.plot(
                    [B for B, _ in pts],
                    [B / r["median_s"] for B, r in pts],
                    "o-",
                    color=colors[side],
                    label=labels[side],
                )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="batch size",
            ylabel="examples / s",
            title=f"training throughput (T={get(results, 'meta', 'settings', 'batch_T')})",
        )
        ax.legend()
        save(fig, "throughput_vs_batch")

    mh = get(results, "training", "max_hidden")
    if isinstance(mh, dict) and mh.get("sides"):
        import numpy as np

        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for side, info in mh["sides"].items():
            pts = info.get("points") or []
            if not pts:
                continue
            ax.plot(
                [n for n, _ in pts],
                [m for _, m in pts],
                "o",
                color=colors[side],
                label=labels[side],
            )
            fit, nmax = info.get("fit_mb"), info.get("predicted_max")
            if fit:
                hi = max(nmax or 0, max(n for n, _ in pts)) * 1.1
                ns = np.linspace(0, hi, 100)
                ax.plot(
                    ns, fit[0] + fit[1] * ns + fit[2] * ns**2, "-", color=colors[side], alpha=0.5
                )
            if nmax:
                ax.axvline(nmax, color=colors[side], ls=":", lw=1)
            if info.get("budget_mb"):
                ax.axhline(info["budget_mb"], color="k", ls="--", lw=0.8)
        ax.set(
            xlabel="hidden neurons N",
            ylabel="device memory (MB)" if gpu else "peak RSS (MB)",
            title=f"memory at T={mh.get('T')}, batch {mh.get('B')} (fit, budget)",
        )
        ax.legend()
        save(fig, "max_hidden")

    inf = results.get("inference")
    if isinstance(inf, dict) and inf.get("rows"):
        rows = inf["rows"]
        big = max((get(r, "config", "B") or 0 for r in rows), default=0)
        fig, ax = plt.subplots(1, 2, figsize=(8, 3.4))
        for k, (B, what) in enumerate(
            ((1, "latency, batch 1 (ms)"), (big, f"throughput, batch {big} (examples/s)"))
        ):
            vals = []
            for side in ("snncc", "torch"):
                r = next(
                    (r for r in rows if r.get("side") == side and get(r, "config", "B") == B), None
                )
                v = _val(r, "median_s")
                vals.append((v * 1e3 if k == 0 else B / v) if v else 0.0)
            ax[k].bar(
                ["snncc LSNN", "PyTorch LSTM"], vals, color=[colors["snncc"], colors["torch"]]
            )
            ax[k].set(title=what)
        save(fig, "inference")
    return written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["PRESETS", "main", "plots", "render", "report", "run"]
