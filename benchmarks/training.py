"""Training benchmarks: snncc eProp vs SpyTorch-style PyTorch BPTT of the same network.

Network (``snncc.experiment.build_network``, mlGeNN's SHD setup): 700 Poisson inputs -> 256
recurrent ALIF (tau_m 20, tau_a 2000, beta 0.0174, v_th 0.6, refractory 5 ms, no self
connections in snncc) -> 20 leaky-integrator readouts with a bias. Both sides: the same
surrogate (gamma 0.3 triangle), per-step softmax cross-entropy summed over time and batch,
Adam lr 1e-3, float32. snncc's firing-rate regulariser is switched off (``regularizer="none"``)
so that both sides minimise the same loss. Inputs: Bernoulli spikes, ``rate`` per input per
step (SHD-like density), random labels.

Sections (each a list of configurations run side by side):

* ``vs_T``: time per training batch and peak memory for T in the preset's list,
* ``vs_batch``: throughput (examples / s) for batch sizes 1..512,
* ``max_hidden``: peak memory against hidden size at T=1370, a quadratic fit, and the largest
  hidden layer the fit puts inside the device's memory (on a GPU also one real try at it).

Targets (``snncc_train``, ``torch_train``) run in child processes (benchmarks.common).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from benchmarks.common import (
    CallTimer,
    Probe,
    poisson_spikes,
    profile_medians,
    random_labels,
    summarize,
)

# ---------------------------------------------------------------------- child targets


def _net(cfg: dict):
    from snncc.experiment import TrainConfig, build_network

    tc = TrainConfig(
        neurons=int(cfg["n_hidden"]),
        tau_a=2000.0,
        seed=int(cfg.get("seed", 0)),
        refractory=float(cfg.get("refractory", 5.0)),
    )
    return build_network(tc, int(cfg["n_in"]), int(cfg["n_out"]))


def _rule(strategy: str):
    import snncc

    return snncc.rules.EProp(readout="output", regularizer="none", strategy=strategy)


def program_bytes(model: Any) -> int:
    """Bytes of every buffer the model's first program holds (backend independent)."""
    from snncc.backends.base import DTYPES

    prog = model.programs[0]
    total = 0
    for name, shape in getattr(prog, "_present", {}).items():
        item = np.dtype(DTYPES[prog.plan.buffer(name).ctype]).itemsize
        total += int(np.prod(shape, dtype=np.int64)) * item
    mem = getattr(prog, "_mem", None)  # CUDA: allocations only grow, count what is held
    if isinstance(mem, dict):
        total = max(total, sum(int(getattr(a, "nbytes", 0)) for a in mem.values()))
    return total


def time_buffers_mb(model: Any) -> dict[str, float]:
    """MB of each buffer whose shape grows with T (histories, records, input lists)."""
    from snncc.backends.base import DTYPES

    prog = model.programs[0]
    out = {}
    for buf in prog.plan.buffers:
        shape = getattr(prog, "_present", {}).get(buf.name)
        if shape is None or not any(isinstance(d, str) and "T" in d for d in buf.shape):
            continue
        item = np.dtype(DTYPES[buf.ctype]).itemsize
        out[buf.name] = int(np.prod(shape, dtype=np.int64)) * item / 2**20
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def online_status(cfg: dict) -> str | None:
    """None if ``strategy="online"`` builds its own kernels, else why it is not available."""
    import snncc

    net = _net(cfg)
    B, backend = int(cfg["B"]), cfg.get("backend", "cpu")
    try:
        online = snncc.generate(
            net, backend, B, rule=_rule("online"), optimizer=snncc.optim.Adam(1e-3)
        )
    except Exception as err:
        return f"n/a: strategy='online' does not compile ({type(err).__name__}: {err})"
    factorized = snncc.generate(
        net, backend, B, rule=_rule("factorized"), optimizer=snncc.optim.Adam(1e-3)
    )
    if online == factorized:
        return "n/a: strategy='online' generates the same code as 'factorized' (not implemented)"
    return None


def snncc_train(cfg: dict, probe: Probe) -> dict:
    """Time ``model.train_batch`` (and each generated function inside it) for one config."""
    import snncc

    strategy = cfg.get("strategy", "factorized")
    if strategy == "online":
        why = online_status(cfg)
        if why is not None:
            return {"side": "snncc-online", "status": why}
    net = _net(cfg)
    B, T = int(cfg["B"]), int(cfg["T"])
    t0 = time.perf_counter()
    model = snncc.compile(
        net,
        batch_size=B,
        backend=cfg.get("backend", "cpu"),
        rule=_rule(strategy),
        optimizer=snncc.optim.Adam(1e-3),
    )
    compile_s = time.perf_counter() - t0
    x = poisson_spikes(B, T, int(cfg["n_in"]), float(cfg["rate"]), int(cfg.get("seed", 0)))
    y = random_labels(B, int(cfg["n_out"]), int(cfg.get("seed", 0)))
    timer = CallTimer(model)
    probe.baseline()
    for _ in range(int(cfg.get("warmup", 1))):
        model.train_batch(x, y)
        timer.take()
    totals, splits, metrics = [], [], {}
    for _ in range(int(cfg.get("repeats", 3))):
        t0 = time.perf_counter()
        metrics = model.train_batch(x, y)
        totals.append(time.perf_counter() - t0)
        splits.append(timer.take())
    nbytes = program_bytes(model)
    unfused = unfused_profile(model, timer, x, y, int(cfg.get("repeats", 3)))
    out = {
        "side": "snncc" if strategy != "online" else "snncc-online",
        "times_s": totals,
        **summarize(totals),
        "profile_s": profile_medians(splits, totals),
        "profile_unfused_s": unfused,
        "buffers_mb": nbytes / 2**20,
        "time_buffers_mb": time_buffers_mb(model),
        "compile_s": compile_s,
        "loss": metrics.get("loss"),
        "input_spikes": int(x.sum()),
    }
    if cfg.get("backend") == "cuda":
        out["device_mem_mb"] = nbytes / 2**20
        out["device_total_mb"] = _cuda_total_mb()
    return out


def unfused_profile(model: Any, timer: CallTimer, x, y, repeats: int) -> dict[str, float]:
    """Where a fused gradient pass (CPU: forward_backward) spends its time: the same batches
    again through the separate forward and backward kernels, timed each ({} if not fused)."""
    from snncc.backends.base import Program

    prog = model.programs[0]
    if prog.gradient_pass == Program.gradient_pass:
        return {}
    prog.gradient_pass = Program.gradient_pass  # an instance attribute: this model only
    try:
        totals, splits = [], []
        for _ in range(repeats + 1):  # the first one warms the kernels' caches
            t0 = time.perf_counter()
            model.train_batch(x, y)
            totals.append(time.perf_counter() - t0)
            splits.append(timer.take())
        return profile_medians(splits[1:], totals[1:])
    finally:
        del prog.gradient_pass


def _cuda_total_mb(device: int = 0) -> float | None:
    try:
        import pycuda.driver as drv

        return drv.Device(device).total_memory() / 2**20
    except Exception:
        return None


def torch_train(cfg: dict, probe: Probe) -> dict:
    """Time ``TorchSNN`` training steps split into forward+loss, backward and Adam."""
    import torch

    from benchmarks.peers import TorchSNN, set_torch_threads

    set_torch_threads(int(cfg.get("threads", 1)))
    dev = torch.device(cfg.get("device", "cpu"))
    cuda = dev.type == "cuda"
    if cuda:  # float32 everywhere, as snncc
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    B, T = int(cfg["B"]), int(cfg["T"])
    model = TorchSNN(
        int(cfg["n_in"]),
        int(cfg["n_hidden"]),
        int(cfg["n_out"]),
        n_ref=int(round(float(cfg.get("refractory", 5.0)))),
        tau_a=2000.0,
        device=dev,
        seed=int(cfg.get("seed", 0)),
    )
    xs = poisson_spikes(B, T, int(cfg["n_in"]), float(cfg["rate"]), int(cfg.get("seed", 0)))
    x = torch.from_numpy(xs).to(device=dev, dtype=torch.float32)
    del xs
    labels = torch.from_numpy(random_labels(B, int(cfg["n_out"]), int(cfg.get("seed", 0))))
    labels = labels.to(dev)
    opt = model.optimizer

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    def step() -> tuple[dict[str, float], float]:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model.loss(model(x), labels)
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        opt.step()
        sync()
        t3 = time.perf_counter()
        value = float(loss.detach())
        split = {"forward+loss": t1 - t0, "backward": t2 - t1, "adam": t3 - t2}
        return split, value

    probe.baseline()
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    try:
        for _ in range(int(cfg.get("warmup", 1))):
            step()
        totals, splits, loss = [], [], float("nan")
        for _ in range(int(cfg.get("repeats", 3))):
            t0 = time.perf_counter()
            split, loss = step()
            totals.append(time.perf_counter() - t0)
            splits.append(split)
    except torch.cuda.OutOfMemoryError:
        return {"side": "torch", "status": "out of memory"}
    out = {
        "side": "torch",
        "times_s": totals,
        **summarize(totals),
        "profile_s": profile_medians(splits, totals),
        "loss": loss / B,
        "params": model.param_count(),
        "threads": torch.get_num_threads(),
    }
    if cuda:
        out["device_mem_mb"] = torch.cuda.max_memory_reserved(dev) / 2**20
        out["device_allocated_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        out["device_total_mb"] = torch.cuda.get_device_properties(dev).total_memory / 2**20
    return out


TARGETS = {
    "snncc": "benchmarks.training:snncc_train",
    "snncc-online": "benchmarks.training:snncc_train",
    "torch": "benchmarks.training:torch_train",
}

# ------------------------------------------------------------------------ orchestration


def _base(p: dict) -> dict:
    n_in, n_hidden, n_out = p["shd"]
    return {
        "n_in": n_in,
        "n_hidden": n_hidden,
        "n_out": n_out,
        "rate": p["rate"],
        "backend": p["backend"],
        "device": p["device"],
        "threads": p["threads"],
        "seed": 0,
        "refractory": 5.0,
    }


def run_sides(runner, sides: list[str], configs: list[dict], isolate: bool) -> list[dict]:
    """Run every config for every side; one child per (config, side) if ``isolate``.

    Isolated runs go config by config, the sides of one config back to back. Returns flat
    records tagged with ``side``.
    """

    def cfg_for(side: str, c: dict) -> dict:
        c = dict(c)
        if side == "snncc-online":
            c["strategy"] = "online"
            c["repeats"] = min(int(c.get("repeats", 1)), c.pop("online_repeats", 1))
            c["warmup"] = 0
        elif side == "snncc":
            c["strategy"] = "factorized"
        c.pop("online_repeats", None)
        return c

    out = []
    if isolate:
        for c in configs:
            for side in sides:
                rec = runner(TARGETS[side], [cfg_for(side, c)])[0]
                rec.setdefault("side", side)
                out.append(rec)
    else:
        for side in sides:
            recs = runner(TARGETS[side], [cfg_for(side, c) for c in configs])
            for rec in recs:
                rec.setdefault("side", side)
            out += recs
    return out


def bench_vs_T(p: dict, runner, log) -> list[dict]:
    sides = ["snncc", "torch"] + (["snncc-online"] if p.get("online") else [])
    configs = [
        {
            **_base(p),
            "B": p["B"],
            "T": T,
            "repeats": p["repeats"],
            "warmup": p["warmup"],
            "online_repeats": p.get("online_repeats", 1),
        }
        for T in p["Ts"]
    ]
    log(f"  time and memory vs T: T in {list(p['Ts'])}, batch {p['B']}, sides {sides}")
    return run_sides(runner, sides, configs, p["isolate"])


def bench_vs_batch(p: dict, runner, log) -> list[dict]:
    configs = [
        {**_base(p), "B": B, "T": p["batch_T"], "repeats": p["batch_repeats"], "warmup": 1}
        for B in p["batches"]
    ]
    log(f"  throughput vs batch: B in {list(p['batches'])}, T={p['batch_T']}")
    return run_sides(runner, ["snncc", "torch"], configs, p["isolate"])


def fit_quadratic(ns: list[float], mem: list[float]) -> tuple[float, float, float] | None:
    """(a, b, c) of mem = a + b n + c n^2 by least squares (c >= 0), or None with < 2 points."""
    n, m = np.asarray(ns, float), np.asarray(mem, float)
    if n.size < 2:
        return None
    if n.size >= 3:
        c, b, a = np.polyfit(n, m, 2)
        if c >= 0:
            return float(a), float(b), float(c)
    b, a = np.polyfit(n, m, 1)
    return float(a), float(b), 0.0


def solve_max(fit: tuple[float, float, float], budget: float) -> float | None:
    """Largest n with a + b n + c n^2 <= budget."""
    a, b, c = fit
    if c > 0:
        disc = b * b - 4 * c * (a - budget)
        return (-b + math.sqrt(disc)) / (2 * c) if disc >= 0 else None
    if b > 0:
        return (budget - a) / b
    return None


def bench_max_hidden(p: dict, runner, log) -> dict:
    """Peak memory vs hidden size at T = p['hidden_T'], fit, predicted largest layer."""
    T, B = p["hidden_T"], p["hidden_B"]
    configs = [
        {**_base(p), "n_hidden": n, "B": B, "T": T, "repeats": 1, "warmup": 0}
        for n in p["hidden_sizes"]
    ]
    log(f"  largest hidden layer: memory at N in {list(p['hidden_sizes'])}, T={T}, batch {B}")
    rows = run_sides(runner, ["snncc", "torch"], configs, p["isolate"])
    gpu = p["device"] == "cuda"
    key = "device_mem_mb" if gpu else "peak_rss_mb"
    out: dict[str, Any] = {"T": T, "B": B, "rows": rows, "memory": key, "sides": {}}
    for side in ("snncc", "torch"):
        pts = [
            (r["config"]["n_hidden"], r[key])
            for r in rows
            if r.get("side") == side and r.get("status") == "ok" and r.get(key) is not None
        ]
        info: dict[str, Any] = {"points": pts}
        if gpu:
            totals = [r.get("device_total_mb") for r in rows if r.get("device_total_mb")]
            total = max(totals) if totals else None
            budget = None if total is None else total - p.get("gpu_headroom_mb", 2048)
        else:
            from benchmarks.common import mem_total_bytes

            total = (mem_total_bytes() or 0) / 2**20
            budget = total - p.get("cpu_headroom_mb", 1024)
        info["budget_mb"] = budget
        fit = fit_quadratic([n for n, _ in pts], [m for _, m in pts])
        info["fit_mb"] = fit
        n_max = solve_max(fit, budget) if (fit and budget) else None
        info["predicted_max"] = int(n_max) if n_max is not None else None
        out["sides"][side] = info
    if gpu and p.get("verify_max"):
        for side, info in out["sides"].items():
            n = info.get("predicted_max")
            if not n:
                continue
            n = max(64, int(n * 0.97) // 64 * 64)
            log(f"    trying one {side} training step at N={n}")
            cfg = {**_base(p), "n_hidden": n, "B": B, "T": T, "repeats": 1, "warmup": 0}
            rec = run_sides(
                lambda t, c: runner(t, c, timeout=p.get("verify_timeout", 240)),
                [side],
                [cfg],
                True,
            )[0]
            info["verified"] = {
                "n_hidden": n,
                "status": rec.get("status"),
                "median_s": rec.get("median_s"),
                key: rec.get(key),
            }
    return out


def run(p: dict, runner, log, results: dict, save) -> None:
    """All training sections into ``results['training']``; ``save()`` after each."""
    tr = results.setdefault("training", {})
    for name, fn in (
        ("vs_T", bench_vs_T),
        ("vs_batch", bench_vs_batch),
        ("max_hidden", bench_max_hidden),
    ):
        if name in p.get("skip", ()):
            continue
        try:
            tr[name] = fn(p, runner, log)
        except Exception as err:  # keep going: record and move on
            tr[name] = {"error": f"{type(err).__name__}: {err}"}
            log(f"  {name} failed: {err}")
        save()
