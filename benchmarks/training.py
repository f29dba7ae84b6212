"""Training benchmarks: snncc eProp vs BPTT peers (PyTorch, JAX, snnTorch) of the same network.

Networks (``snncc.experiment.build_network``, mlGeNN's SHD setup): 700 Poisson inputs -> 256
recurrent hidden neurons -> 20 leaky-integrator readouts with a bias. ``alif`` (the headline):
ALIF (tau_m 20, tau_a 2000, beta 0.0174, v_th 0.6, refractory 5 ms). ``lif``: LIF without a
refractory period, the network snnTorch can express (it has neither). No self connections in
snncc. Every side: the same surrogate (gamma 0.3 triangle), per-step softmax cross-entropy
summed over time and batch, Adam lr 1e-3, float32. snncc's firing-rate regulariser is switched
off (``regularizer="none"``) so that every side minimises the same loss. Inputs: Bernoulli
spikes, ``rate`` per input per step (SHD-like density), random labels.

The sides (``SIDES``): snncc (factorised and online eProp), PyTorch BPTT with the input
projected before the loop densely (``torch``, SpyTorch's einsum) or sparsely (``torch-sparse``,
``torch.sparse.mm``), JAX (one jitted step over ``lax.scan``) and snnTorch (``RLeaky``, LIF only).

Sections (each a list of configurations run side by side):

* ``vs_T``: time per training batch (wall and CPU), peak memory for T in the preset's ``Ts``
  (snncc, ``torch``, online) and in its ``peer_Ts`` (every side in ``peers`` too, with the
  snncc side of each peer's network),
* ``vs_batch``: throughput (examples / s) for batch sizes 1..512 (snncc and ``torch``),
* ``max_hidden``: peak memory against hidden size at T=1370, a quadratic fit, and the largest
  hidden layer the fit puts inside the device's memory (on a GPU also one real try at it).

Targets (``snncc_train``, ``torch_train``, ``jax_train``) run in child processes
(benchmarks.common), pinned to the same number of CPUs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.common import (
    CallTimer,
    Probe,
    Stopwatch,
    poisson_spikes,
    profile_medians,
    random_labels,
)

# ---------------------------------------------------------------------- child targets


def _net(cfg: dict):
    from snncc.experiment import TrainConfig, build_network

    tc = TrainConfig(
        neurons=int(cfg["n_hidden"]),
        model=cfg.get("model", "alif"),
        tau_a=2000.0,
        seed=int(cfg.get("seed", 0)),
        refractory=float(cfg.get("refractory", 5.0)),
    )
    return build_network(tc, int(cfg["n_in"]), int(cfg["n_out"]))


def _rule(strategy: str, rule: str = "eprop"):
    import snncc

    if rule == "bptt":  # the same network, exact BPTT (as the peers compute)
        return snncc.rules.BPTT(readout="output", regularizer="none")
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


def batch_data(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """The batch every side of a configuration trains on: input spikes and labels."""
    B, T, seed = int(cfg["B"]), int(cfg["T"]), int(cfg.get("seed", 0))
    x = poisson_spikes(B, T, int(cfg["n_in"]), float(cfg["rate"]), seed)
    return x, random_labels(B, int(cfg["n_out"]), seed)


def snncc_train(cfg: dict, probe: Probe) -> dict:
    """Time ``model.train_batch`` (and each generated function inside it) for one config."""
    import snncc

    strategy = cfg.get("strategy", "factorized")
    if strategy == "online":
        why = online_status(cfg)
        if why is not None:
            return {"status": why}
    net = _net(cfg)
    B = int(cfg["B"])
    t0 = time.perf_counter()
    model = snncc.compile(
        net,
        batch_size=B,
        backend=cfg.get("backend", "cpu"),
        rule=_rule(strategy, cfg.get("rule", "eprop")),
        optimizer=snncc.optim.Adam(1e-3),
    )
    compile_s = time.perf_counter() - t0
    x, y = batch_data(cfg)
    timer = CallTimer(model)
    probe.baseline()
    for _ in range(int(cfg.get("warmup", 1))):
        model.train_batch(x, y)
        timer.take()
    clock, splits, metrics = Stopwatch(), [], {}
    for _ in range(int(cfg.get("repeats", 3))):
        with clock.timed():
            metrics = model.train_batch(x, y)
        splits.append(timer.take())
    nbytes = program_bytes(model)
    unfused = unfused_profile(model, timer, x, y, int(cfg.get("repeats", 3)))
    out = {
        **clock.summary(),
        "profile_s": profile_medians(splits, clock.wall),
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
    if not {"forward", "backward"} <= set(model.plan.manifest):
        return {}
    # an instance attribute: this model only runs the unfused passes
    model.gradient_passes = {**model.gradient_passes, "factorized": ("forward", "backward")}
    try:
        totals, splits = [], []
        for _ in range(repeats + 1):  # the first one warms the kernels' caches
            t0 = time.perf_counter()
            model.train_batch(x, y)
            totals.append(time.perf_counter() - t0)
            splits.append(timer.take())
        return profile_medians(splits[1:], totals[1:])
    finally:
        del model.gradient_passes


def _cuda_total_mb(device: int = 0) -> float | None:
    try:
        import pycuda.driver as drv

        return drv.Device(device).total_memory() / 2**20
    except Exception:
        return None


def _peer_size(cfg: dict) -> tuple[int, int, int]:
    return int(cfg["n_in"]), int(cfg["n_hidden"]), int(cfg["n_out"])


def _torch_model(cfg: dict, device: Any) -> Any:
    """``TorchSNN`` (dense or sparse input projection) or ``SnnTorchSNN`` for ``cfg``."""
    common = {"device": device, "seed": int(cfg.get("seed", 0))}
    if cfg.get("peer") == "snntorch":
        from benchmarks.snntorch_peer import SnnTorchSNN

        return SnnTorchSNN(*_peer_size(cfg), **common)
    from benchmarks.peers import TorchSNN

    return TorchSNN(
        *_peer_size(cfg),
        model=cfg.get("model", "alif"),
        n_ref=int(round(float(cfg.get("refractory", 5.0)))),
        tau_a=2000.0,
        input_projection=cfg.get("input_projection", "dense"),
        **common,
    )


def torch_train(cfg: dict, probe: Probe) -> dict:
    """Time training steps of a torch peer split into forward+loss, backward and Adam."""
    import torch

    from benchmarks.peers import set_torch_threads

    set_torch_threads(int(cfg.get("threads", 1)))
    dev = torch.device(cfg.get("device", "cpu"))
    cuda = dev.type == "cuda"
    if cuda:  # float32 everywhere, as snncc
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model = _torch_model(cfg, dev)
    xs, ys = batch_data(cfg)
    x = model.prepare_input(xs)  # once, before timing: a data loader would hand it over so
    del xs
    labels = torch.from_numpy(ys).to(dev)
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
        clock, splits, loss = Stopwatch(), [], float("nan")
        for _ in range(int(cfg.get("repeats", 3))):
            with clock.timed():
                split, loss = step()
            splits.append(split)
    except torch.cuda.OutOfMemoryError:
        return {"status": "out of memory"}
    out = {
        **clock.summary(),
        "profile_s": profile_medians(splits, clock.wall),
        "loss": loss / len(ys),
        "params": model.param_count(),
        "threads": torch.get_num_threads(),
        "input": "sparse COO" if x.is_sparse else "dense",
    }
    if cuda:
        out["device_mem_mb"] = torch.cuda.max_memory_reserved(dev) / 2**20
        out["device_allocated_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        out["device_total_mb"] = torch.cuda.get_device_properties(dev).total_memory / 2**20
    return out


def jax_train(cfg: dict, probe: Probe) -> dict:
    """Time ``JaxSNN.train_step`` (one compiled XLA call); the first call, which traces and
    compiles, is timed on its own (``first_call_s``) and not in the medians."""
    import jax

    if cfg.get("device", "cpu") == "cuda" and jax.default_backend() != "gpu":
        return {"status": f"n/a: JAX has no GPU backend here ({jax.default_backend()} only)"}
    from benchmarks.jax_peer import JaxSNN

    model = JaxSNN(
        *_peer_size(cfg),
        model=cfg.get("model", "alif"),
        n_ref=int(round(float(cfg.get("refractory", 5.0)))),
        tau_a=2000.0,
        seed=int(cfg.get("seed", 0)),
    )
    xs, ys = batch_data(cfg)
    x, labels = model.prepare_input(xs), jax.numpy.asarray(ys)
    del xs
    t0 = time.perf_counter()
    model.train_step(x, labels)
    first_call_s = time.perf_counter() - t0
    probe.baseline()  # after compiling: XLA's compiler memory is not the training's
    for _ in range(max(0, int(cfg.get("warmup", 1)) - 1)):  # the first call warmed it up
        model.train_step(x, labels)
    clock, loss = Stopwatch(), float("nan")
    for _ in range(int(cfg.get("repeats", 3))):
        with clock.timed():
            loss = model.train_step(x, labels)
    return {
        **clock.summary(),
        "first_call_s": first_call_s,
        "loss": loss / len(ys),
        "params": model.param_count(),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
    }


# ------------------------------------------------------------------------ sides


@dataclass(frozen=True)
class Side:
    """One side of the comparison: the child target that measures it, the network it trains
    (a key of NETWORKS), its label in the report and the settings it adds to a config."""

    target: str
    network: str
    label: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_snncc(self) -> bool:
        return self.target.endswith(":snncc_train")


#: settings of each network; "lif" is what snnTorch can express (no ALIF, no refractory period)
NETWORKS = {
    "alif": {"model": "alif", "refractory": 5.0},
    "lif": {"model": "lif", "refractory": 0.0},
}
#: the snncc side each network's peers are compared with
REFERENCE = {"alif": "snncc", "lif": "snncc-lif"}

_SNNCC, _TORCH = "benchmarks.training:snncc_train", "benchmarks.training:torch_train"
_JAX = "benchmarks.training:jax_train"
_DENSE = {"peer": "torch", "input_projection": "dense"}
_SPARSE = {"peer": "torch", "input_projection": "sparse"}
SIDES = {
    "snncc": Side(_SNNCC, "alif", "snncc eProp", {"strategy": "factorized"}),
    "snncc-online": Side(_SNNCC, "alif", "snncc eProp, online", {"strategy": "online"}),
    "snncc-bptt": Side(_SNNCC, "alif", "snncc BPTT", {"strategy": "factorized", "rule": "bptt"}),
    "torch": Side(_TORCH, "alif", "PyTorch BPTT, dense input projection", _DENSE),
    "torch-sparse": Side(_TORCH, "alif", "PyTorch BPTT, sparse input projection", _SPARSE),
    "jax": Side(_JAX, "alif", "JAX BPTT (jit + lax.scan)"),
    "snncc-lif": Side(_SNNCC, "lif", "snncc eProp (LIF)", {"strategy": "factorized"}),
    "torch-lif": Side(_TORCH, "lif", "PyTorch BPTT, dense input projection (LIF)", _DENSE),
    "torch-sparse-lif": Side(_TORCH, "lif", "PyTorch BPTT, sparse input projection (LIF)", _SPARSE),
    "jax-lif": Side(_JAX, "lif", "JAX BPTT (jit + lax.scan, LIF)"),
    "snntorch": Side(_TORCH, "lif", "snnTorch BPTT (RLeaky, LIF)", {"peer": "snntorch"}),
}


def side_config(side: str, cfg: dict) -> dict:
    """``cfg`` with the settings of ``side`` and of its network."""
    s = SIDES[side]
    c = {**cfg, **NETWORKS[s.network], **s.settings}
    online_repeats = c.pop("online_repeats", 1)
    if side == "snncc-online":  # seconds per batch: fewer repeats, no warm-up
        c["repeats"] = min(int(c.get("repeats", 1)), online_repeats)
        c["warmup"] = 0
    return c


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
    }


def run_jobs(runner, jobs: list[tuple[str, dict]], isolate: bool) -> list[dict]:
    """Run each (side, config) job; records tagged with ``side``, in the order of ``jobs``.

    ``isolate``: one fresh child per job, in the given order (the sides of one configuration
    back to back). Otherwise one child per target runs all of its jobs (the torch peers share
    one, as do the snncc sides): fewer interpreter and library start-ups.
    """
    jobs = [(side, side_config(side, c)) for side, c in jobs]
    if isolate:
        out = [runner(SIDES[side].target, [c])[0] for side, c in jobs]
    else:
        by_target: dict[str, list[int]] = {}
        for i, (side, _) in enumerate(jobs):
            by_target.setdefault(SIDES[side].target, []).append(i)
        out = [{} for _ in jobs]
        for target, idx in by_target.items():
            recs = runner(target, [jobs[i][1] for i in idx])
            for i, rec in zip(idx, recs, strict=True):
                out[i] = rec
    for (side, c), rec in zip(jobs, out, strict=True):
        rec["side"] = side
        rec.setdefault("config", c)  # a child that timed out or crashed wrote no record
    return out


def vs_T_sides(p: dict, T: int) -> list[str]:
    """The sides that run at T: snncc, ``torch`` (and online) at every T of ``Ts``; at the
    ``peer_Ts`` every side in ``peers`` too, each network's snncc side first."""
    sides = []
    if T in p["Ts"]:
        sides += ["snncc", "torch"] + (["snncc-online"] if p.get("online") else [])
    if T in p.get("peer_Ts", ()):
        peers = list(p.get("peers", ()))
        for network, ref in REFERENCE.items():
            mine = [s for s in peers if SIDES[s].network == network]
            if mine:
                sides += [s for s in [ref, *mine] if s not in sides]
    return sides


def bench_vs_T(p: dict, runner, log) -> list[dict]:
    Ts = sorted(set(p["Ts"]) | set(p.get("peer_Ts", ())))
    jobs = []
    for T in Ts:
        cfg = {**_base(p), "B": p["B"], "T": T, "repeats": p["repeats"], "warmup": p["warmup"],
               "online_repeats": p.get("online_repeats", 1)}  # fmt: skip
        jobs += [(side, cfg) for side in vs_T_sides(p, T)]
    log(
        f"  time and memory vs T: T in {list(p['Ts'])} (snncc, torch), peers "
        f"{list(p.get('peers', ()))} at T in {list(p.get('peer_Ts', ()))}, batch {p['B']}"
    )
    return run_jobs(runner, jobs, p["isolate"])


def bench_vs_batch(p: dict, runner, log) -> list[dict]:
    configs = [
        {**_base(p), "B": B, "T": p["batch_T"], "repeats": p["batch_repeats"], "warmup": 1}
        for B in p["batches"]
    ]
    log(f"  throughput vs batch: B in {list(p['batches'])}, T={p['batch_T']}")
    return run_jobs(runner, [(s, c) for c in configs for s in ("snncc", "torch")], p["isolate"])


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
    rows = run_jobs(runner, [(s, c) for c in configs for s in ("snncc", "torch")], p["isolate"])
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
            rec = run_jobs(
                lambda t, c: runner(t, c, timeout=p.get("verify_timeout", 240)),
                [(side, cfg)],
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
