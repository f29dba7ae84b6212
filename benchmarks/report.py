"""The Markdown report of a run (``results.md``) and its targets, from ``results.json``."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.common import fmt, get, md_table, ms, ratio
from benchmarks.presets import SHD, SMNIST
from benchmarks.training import NETWORKS, REFERENCE, SIDES

TARGETS_TEXT = {
    "cpu_10x": "CPU: snncc eProp >= 10x faster than the strongest peer at T=1000 (batch 32)",
    "cpu_every_T": "CPU: snncc faster than the strongest peer at every T >= 100",
    "online_flat": "online mode's peak memory flat as T grows (within 10 % from shortest to "
    "longest T)",
    "gpu_100ms": "GPU: a batch of 512 at 1370 steps trains in under 100 ms",
    "compile_cold": "compile the SHD model in at most 5 s cold",
    "compile_cached": "compile the SHD model in at most 0.2 s cached",
}


def side_rows(results: dict, section: str, side: str) -> dict[int, dict]:
    recs = get(results, "training", section, default=[])
    key = "T" if section == "vs_T" else "B"
    if not isinstance(recs, list):
        return {}
    return {r["config"][key]: r for r in recs if r.get("side") == side and "config" in r}


def is_ok(rec: dict | None) -> bool:
    return bool(rec) and rec.get("status") == "ok"


def ok_value(rec: dict | None, key: str) -> Any:
    return rec.get(key) if is_ok(rec) else None


def _status(rec: dict | None) -> str:
    if rec is None:
        return "not run"
    s = str(rec.get("status", "?"))
    return s if len(s) < 90 else s[:87] + "..."


def side_label(side: str) -> str:
    """A side's name in the tables (training.SIDES), the key itself if unknown."""
    return SIDES[side].label if side in SIDES else side


def peers_of(network: str) -> list[str]:
    """The sides that are not snncc and train ``network``."""
    return [k for k, s in SIDES.items() if s.network == network and not s.is_snncc]


def strongest_peer(results: dict, network: str, T: int) -> tuple[str, dict] | None:
    """The peer of ``network`` with the lowest median wall time per batch at T, if any ran."""
    best = None
    for side in peers_of(network):
        rec = side_rows(results, "vs_T", side).get(T)
        t = ok_value(rec, "median_s")
        if t is not None and (best is None or t < best[1]["median_s"]):
            best = (side, rec)
    return best


def speedups(
    results: dict, network: str = "alif", key: str = "median_s"
) -> dict[int, tuple[float | None, str | None]]:
    """Per T: (the strongest peer's ``key`` / snncc's, that peer) for ``network``; ``key`` is
    ``median_s`` (wall) or ``cpu_median_s``. The strongest peer is the fastest in wall time."""
    ours = side_rows(results, "vs_T", REFERENCE[network])
    out: dict[int, tuple[float | None, str | None]] = {}
    for T in sorted(ours):
        best = strongest_peer(results, network, T)
        if best is None:
            out[T] = (None, None)
        else:
            out[T] = (ratio(best[1].get(key), ok_value(ours[T], key)), best[0])
    return out


def headline(results: dict) -> list[str]:
    """One sentence per network: snncc's speed-up over the strongest peer at the headline T
    (1000 where measured, else the longest T with a peer), among the ``peer_Ts`` where every
    peer ran."""
    st = get(results, "meta", "settings", default={}) or {}
    peer_Ts = set(st.get("peer_Ts") or st.get("Ts") or ())
    out = []
    for network in NETWORKS:
        sp = speedups(results, network).items()
        wall = {T: v for T, v in sp if v[0] is not None and T in peer_Ts}
        if not wall:
            continue
        T = 1000 if 1000 in wall else max(wall)
        v, side = wall[T]
        cpu = speedups(results, network, "cpu_median_s").get(T, (None, None))[0]
        what = "ALIF network" if network == "alif" else "LIF network (no refractory period)"
        n = get(results, "meta", "threads")
        out.append(
            f"**{what}, T={T}, batch {st.get('B')}, {n} thread{'s' if n != 1 else ''} "
            f"each:** snncc eProp's speed-up over the strongest peer measured in this run, "
            f"{side_label(side)}, is {fmt(v, unit='x')} in wall time per training batch "
            f"({fmt(cpu, unit='x')} in CPU time)."
        )
    bptt = side_rows(results, "vs_T", "snncc-bptt")
    ours = side_rows(results, "vs_T", REFERENCE["alif"])
    for T in sorted(T for T in bptt if T in peer_Ts and is_ok(bptt[T])):
        best = strongest_peer(results, "alif", T)
        if best is None:
            continue
        t = bptt[T]["median_s"]
        out.append(
            f"**snncc BPTT, ALIF network, T={T}:** the same gradients as the peers compute, "
            f"{fmt(ratio(best[1]['median_s'], t), unit='x')} faster than the strongest peer "
            f"({side_label(best[0])}) in wall time; it takes "
            f"{fmt(ratio(t, ok_value(ours.get(T), 'median_s')), unit='x')} snncc eProp's time."
        )
    return out


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every target this run can speak to."""
    out = []
    gpu = get(results, "meta", "settings", "device") == "cuda"
    sp = speedups(results)
    B = get(results, "meta", "settings", "B")
    if sp and not gpu:
        have = {T: v for T, (v, _) in sp.items() if v is not None}
        peer = {T: side_label(side) for T, (_, side) in sp.items() if side is not None}
        if 1000 in have:
            v, how = have[1000], f"vs {peer[1000]}, at T=1000"
        else:
            lo = max((T for T in have if T < 1000), default=None)
            hi = min((T for T in have if T > 1000), default=None)
            if lo and hi:
                w = (math.log(1000) - math.log(lo)) / (math.log(hi) - math.log(lo))
                v = have[lo] ** (1 - w) * have[hi] ** w
                how = f"interpolated from T={lo} (vs {peer[lo]}), T={hi} (vs {peer[hi]})"
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
                    f"slowest ratio {fmt(big[worst])}x at T={worst} (vs {peer[worst]})",
                    _verdict(big[worst] > 1, big[worst]),
                )
            )
    online = side_rows(results, "vs_T", "snncc-online")
    oks = {T: r for T, r in online.items() if is_ok(r)}
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
        r = side_rows(results, "vs_T", "snncc").get(1370)
        v = ok_value(r, "median_s")
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
                    f"{meta.get('threads')} for every side: each measuring process is pinned to "
                    f"{meta.get('threads')} CPU(s) (sched_setaffinity, which XLA obeys too), "
                    "OMP_NUM_THREADS for snncc's OpenMP, torch.set_num_threads and "
                    "OMP/MKL_NUM_THREADS for PyTorch and snnTorch",
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
    lines = headline(results)
    if lines:
        parts += ["", "## Headline", ""] + [f"* {line}" for line in lines]
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


def mem_key(gpu: bool) -> str:
    return "device_mem_mb" if gpu else "peak_rss_mb"


def _training_tables(results: dict, gpu: bool) -> list[str]:
    parts: list[str] = []
    s, t = side_rows(results, "vs_T", "snncc"), side_rows(results, "vs_T", "torch")
    o = side_rows(results, "vs_T", "snncc-online")
    B = get(results, "meta", "settings", "B")
    mk = mem_key(gpu)
    if s or t:
        mem_what = "device memory (MB)" if gpu else "peak RSS (MB)"
        head = [
            "T",
            "snncc eProp (ms)",
            "PyTorch BPTT, dense input projection (ms)",
            "speed-up vs PyTorch dense",
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
                ms(ok_value(a, "median_s")),
                ms(ok_value(b, "median_s")),
                fmt(ratio(ok_value(b, "median_s"), ok_value(a, "median_s")), unit="x"),
                fmt(ok_value(a, mk)),
                fmt(ok_value(b, mk)),
            ]
            if not gpu:
                row += [fmt(ok_value(a, "train_mem_mb")), fmt(ok_value(b, "train_mem_mb"))]
            if o:
                r = o.get(T)
                if is_ok(r):
                    row += [ms(ok_value(r, "median_s")), fmt(ok_value(r, mk))]
                else:
                    row += [_status(r), ""]
                if not gpu:
                    row += [fmt(ok_value(r, "train_mem_mb"))]
            rows.append(row)
        parts += [
            "",
            f"## Training: time per batch and memory vs sequence length (batch {B})",
            "",
            "snncc against SpyTorch's PyTorch BPTT (input projected densely before the loop) at "
            "every T; every other peer follows in 'snncc vs every peer'. "
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
        ok_online = sorted(T for T, r in o.items() if is_ok(r))
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
    parts += _peers_tables(results, gpu)
    parts += _batch_table(results)
    parts += _max_hidden_table(results, gpu)
    return parts


def _peers_tables(results: dict, gpu: bool) -> list[str]:
    """Per network: every side at every T where peers ran, with wall and CPU time, cores,
    speed-ups and memory; the strongest peer per T marked."""
    st = get(results, "meta", "settings", default={}) or {}
    mk = mem_key(gpu)
    parts: list[str] = []
    for network in NETWORKS:
        ours = side_rows(results, "vs_T", REFERENCE[network])
        extra = [k for k, v in SIDES.items() if v.network == network and v.is_snncc]
        extra = [k for k in extra if k not in (REFERENCE[network], "snncc-online")]
        others = {side: side_rows(results, "vs_T", side) for side in extra + peers_of(network)}
        Ts = [T for T in sorted(ours) if T in (st.get("peer_Ts") or ())]
        if not Ts:
            continue
        head = ["T", "side", "wall (ms)", "CPU (ms)", "cores (CPU / wall)", "speed-up (wall)",
                "speed-up (CPU)", "memory (MB)" if gpu else "peak RSS (MB)"]  # fmt: skip
        head += [] if gpu else ["+MB during training"]
        head += ["first call (s)"]
        rows, notes = [], []
        for T in Ts:
            best = strongest_peer(results, network, T)
            ref = ours.get(T)
            for side in [REFERENCE[network], *others]:
                rec = ref if side == REFERENCE[network] else others[side].get(T)
                if rec is None:
                    continue
                name = side_label(side)
                if best and best[0] == side:
                    name += " **(strongest peer)**"
                if not is_ok(rec):
                    rows.append([str(T), name, _status(rec)] + [""] * (len(head) - 3))
                    continue
                wall, cpu = rec.get("median_s"), rec.get("cpu_median_s")
                mine = side == REFERENCE[network]
                row = [
                    str(T),
                    name,
                    ms(wall),
                    ms(cpu),
                    fmt(ratio(cpu, wall)),
                    "" if mine else fmt(ratio(wall, ok_value(ref, "median_s")), unit="x"),
                    "" if mine else fmt(ratio(cpu, ok_value(ref, "cpu_median_s")), unit="x"),
                    fmt(rec.get(mk)),
                ]
                row += [] if gpu else [fmt(rec.get("train_mem_mb"))]
                first = rec.get("first_call_s")
                row += ["" if first is None else fmt(first)]
                rows.append(row)
            if best:
                v = ratio(best[1]["median_s"], ok_value(ref, "median_s"))
                notes.append(f"T={T}: {side_label(best[0])} (snncc's speed-up {fmt(v, unit='x')})")
        what = (
            "ALIF network (the headline)"
            if network == "alif"
            else "LIF network without a refractory period (what snnTorch can express)"
        )
        parts += [
            "",
            f"## Training: snncc vs every peer, {what}, batch {st.get('B')}",
            "",
            "Medians over the repeats (after warm-up). Wall: time per training batch; CPU: "
            "the process's CPU time over the same batch (all its threads), so CPU / wall is "
            "the cores a side used. Speed-up: the peer's time / snncc's (above 1: snncc is "
            "faster). First call: JAX traces and compiles the training step in its first call "
            "(not in the medians). The strongest peer is the fastest in wall time at that T. "
            "Cores below 1 mean the side waited for its CPU (other load on the machine).",
            "",
            md_table(head, rows),
            "",
            "Strongest peer: " + ("; ".join(notes) or "none measured") + ".",
        ]
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
        if not is_ok(r):
            continue
        p = r.get("profile_s", {})
        up = r.get("profile_unfused_s") or {}
        tp = (t.get(T) or {}).get("profile_s", {}) if is_ok(t.get(T)) else {}
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
    s, t = side_rows(results, "vs_batch", "snncc"), side_rows(results, "vs_batch", "torch")
    if not (s or t):
        return []
    T = get(results, "meta", "settings", "batch_T")
    rows = []
    for B in sorted(set(s) | set(t)):
        a, b = s.get(B), t.get(B)
        ta, tb = ok_value(a, "median_s"), ok_value(b, "median_s")
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
        if not is_ok(r)
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
            fmt(ok_value(s1, "params") or inf.get("lsnn_params")),
            f"{fmt(ok_value(t1, 'params'))} (hidden {ok_value(t1, 'hidden')})",
            "",
        ],
        [
            "latency, batch 1 (ms, median)",
            ms(ok_value(s1, "median_s")),
            ms(ok_value(t1, "median_s")),
            fmt(ratio(ok_value(t1, "median_s"), ok_value(s1, "median_s")), unit="x"),
        ],
        [
            f"throughput, batch {big} (examples/s)",
            fmt(ratio(big, ok_value(sb, "median_s"))),
            fmt(ratio(big, ok_value(tb, "median_s"))),
            fmt(ratio(ok_value(tb, "median_s"), ok_value(sb, "median_s")), unit="x"),
        ],
    ]
    if gpu:
        for B, a, b in ((1, s1, t1), (big, sb, tb)):
            ea, eb = ok_value(a, "energy_mj_per_inference"), ok_value(b, "energy_mj_per_inference")
            lines.append(
                [
                    f"energy per inference, batch {B} (mJ, board total)",
                    fmt(ea),
                    fmt(eb),
                    fmt(ratio(eb, ea), unit="x"),
                ]
            )
            ea = ok_value(a, "energy_above_idle_mj_per_inference")
            eb = ok_value(b, "energy_above_idle_mj_per_inference")
            lines.append(
                [
                    f"energy per inference, batch {B} (mJ, above idle)",
                    fmt(ea),
                    fmt(eb),
                    fmt(ratio(eb, ea), unit="x"),
                ]
            )
    fails = [
        f"{r.get('side')} batch {get(r, 'config', 'B')}: {_status(r)}" for r in rows if not is_ok(r)
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
    if is_ok(s1) and s1.get("profile_s"):
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
