"""Inference benchmarks: snncc LSNN vs a PyTorch LSTM of comparable parameter count.

Task shape: spiking sequential MNIST as snncc's ``load_smnist`` (and mlGeNN) use it: 79 input
neurons (tonic's threshold-crossing encoding, 39 "up" + 39 "down" + 1 "at 255"), each of the
784 pixels shown for 2 steps (``duplicate``), so T = 1568 steps, 10 classes. No dataset is
downloaded: the images are scikit-learn's bundled 8x8 digits scaled up to 28x28 and encoded
exactly that way (Poisson spikes of the same density if scikit-learn is missing).

* snncc: the mlGeNN SMNIST network (256 recurrent ALIF, leaky readout) compiled for inference
  only (no rule); one call is ``model.run(x, record=["output.v"])`` plus the class decision
  (argmax of the softmax summed over time).
* PyTorch: ``TorchLSTM`` (``nn.LSTM`` + linear readout on the last step) whose hidden size
  gives the parameter count closest to the LSNN's, under ``torch.inference_mode()``, input
  as a dense float32 (B, T, 79) tensor, class = argmax of the logits.

Latency is the median wall time of one batch-1 call; throughput is examples per second at
batch 512. On a GPU the board's energy counter (NVML) gives energy per inference, in total
and above the idle power measured just before.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.common import CallTimer, Nvml, Probe, summarize

SMNIST = (79, 256, 10)  # inputs, hidden ALIF, classes
SMNIST_T = 1568


def smnist_like(B: int, n_in: int = 79, seed: int = 0, duplicate: bool = True) -> np.ndarray:
    """(B, 784 * (2 if duplicate else 1), n_in) bool spikes, tonic's SMNIST encoding."""
    rng = np.random.default_rng(seed)
    T = 784 * (2 if duplicate else 1)
    try:
        from sklearn.datasets import load_digits

        images = load_digits().images  # (1797, 8, 8), grey levels 0..16
    except Exception:
        x = rng.random((B, T, n_in), dtype=np.float32) < 0.004
        return x
    half = (n_in - 1) // 2
    thresholds = np.linspace(0.0, 254.0, half).astype(np.uint8)
    out = np.zeros((B, T, n_in), dtype=bool)
    for b, k in enumerate(rng.integers(0, len(images), B)):
        img = np.kron(images[k], np.ones((3, 3)))  # 24 x 24
        img = np.pad(img, 2) * (255.0 / 16.0)
        img = np.clip(np.round(img), 0, 255).astype(np.uint8).reshape(-1)  # 784 pixels
        lower = img[:, None] < thresholds[None, :]
        higher = ~lower
        on_t, on_i = np.nonzero(lower[:-1] & higher[1:])
        off_t, off_i = np.nonzero(higher[:-1] & lower[1:])
        touch_t = np.nonzero(img == 255)[0]
        t = np.concatenate([on_t, off_t, touch_t])
        i = np.concatenate([on_i, off_i + half, np.full(touch_t.shape, 2 * half)])
        if duplicate:
            out[b, 2 * t, i] = True
            out[b, 2 * t + 1, i] = True
        else:
            out[b, t, i] = True
    return out


def _decide(y: np.ndarray) -> np.ndarray:
    """argmax over classes of the softmax summed over time (snncc's "sum" decision)."""
    e = np.exp(y - y.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).sum(1).argmax(-1)


def _measure(fn, cfg: dict, sync=None, after_warmup=None) -> tuple[list[float], list[Any]]:
    """Warm-up calls, then calls for at least cfg['seconds'] (min/max call counts)."""
    for _ in range(int(cfg.get("warmup", 2))):
        fn()
    if sync:
        sync()
    if after_warmup:
        after_warmup()
    times: list[float] = []
    start = time.perf_counter()
    lo, hi, secs = int(cfg.get("min_calls", 3)), int(cfg.get("max_calls", 200)), cfg["seconds"]
    while len(times) < lo or (time.perf_counter() - start < secs and len(times) < hi):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return times, []


def _energy(fn, B: int, seconds: float, sync=None) -> dict[str, Any]:
    """Board energy per inference from NVML's counter: total and above idle."""
    nv = Nvml()
    if not nv.available:
        return {"energy": "n/a: NVML energy counter not available"}
    if sync:
        sync()
    e0, t0 = nv.energy_mj(), time.perf_counter()
    time.sleep(1.0)
    idle_w = (nv.energy_mj() - e0) / 1000.0 / (time.perf_counter() - t0)
    calls = 0
    e0, t0 = nv.energy_mj(), time.perf_counter()
    while calls < 1 or time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    if sync:
        sync()
    elapsed = time.perf_counter() - t0
    e = nv.energy_mj() - e0
    per = e / (calls * B)
    return {
        "idle_w": idle_w,
        "avg_w": e / 1000.0 / elapsed,
        "energy_mj_per_inference": per,
        "energy_above_idle_mj_per_inference": (e - idle_w * 1000.0 * elapsed) / (calls * B),
        "energy_calls": calls,
    }


def snncc_infer(cfg: dict, probe: Probe) -> dict:
    import snncc
    from snncc.experiment import TrainConfig, build_network

    n_in, n_hidden, n_out = cfg["n_in"], cfg["n_hidden"], cfg["n_out"]
    B = int(cfg["B"])
    net = build_network(TrainConfig(neurons=n_hidden, tau_a=2000.0, refractory=5.0), n_in, n_out)
    params = n_out if "bias" in net.populations["output"].model.params else 0
    for q in net.projections.values():
        params += int(q.mask.sum()) if q.mask is not None else q.pre.size * q.post.size
    model = snncc.compile(net, batch_size=B, backend=cfg.get("backend", "cpu"))
    x = smnist_like(B, n_in, seed=int(cfg.get("seed", 0)))[:, : cfg.get("T", SMNIST_T)]
    key = f"output.{net.populations['output'].model.output_var}"

    def infer() -> np.ndarray:
        return _decide(model.run(x, record=[key])[key])

    timer = CallTimer(model)
    probe.baseline()
    times, _ = _measure(infer, cfg, after_warmup=timer.take)
    prof = {k: v / len(times) for k, v in timer.take().items()}  # means over the timed calls
    prof["other"] = float(np.mean(times)) - sum(prof.values())
    out = {
        "side": "snncc",
        "params": params,
        "times_s": times,
        **summarize(times),
        "profile_s": prof,
        "input_spikes_per_example": float(x.sum() / B),
    }
    if cfg.get("energy"):
        out.update(_energy(infer, B, cfg.get("energy_seconds", 3.0)))
    return out


def torch_infer(cfg: dict, probe: Probe) -> dict:
    import torch

    from benchmarks.peers import TorchLSTM, lstm_hidden_for_params, set_torch_threads

    set_torch_threads(int(cfg.get("threads", 1)))
    dev = torch.device(cfg.get("device", "cpu"))
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    n_in, n_out, B = cfg["n_in"], cfg["n_out"], int(cfg["B"])
    hidden = lstm_hidden_for_params(n_in, n_out, int(cfg["target_params"]))
    model = TorchLSTM(n_in, hidden, n_out, device=dev, seed=int(cfg.get("seed", 0))).eval()
    xs = smnist_like(B, n_in, seed=int(cfg.get("seed", 0)))[:, : cfg.get("T", SMNIST_T)]
    x = torch.from_numpy(xs).to(device=dev, dtype=torch.float32)

    def infer():
        with torch.inference_mode():
            return model(x).argmax(-1)

    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else None
    probe.baseline()
    times, _ = _measure(infer, cfg, sync)
    out = {
        "side": "torch",
        "hidden": hidden,
        "params": model.param_count(),
        "times_s": times,
        **summarize(times),
        "threads": torch.get_num_threads(),
        "cudnn": bool(cuda and torch.backends.cudnn.is_available()),
    }
    if cfg.get("energy"):
        out.update(_energy(infer, B, cfg.get("energy_seconds", 3.0), sync))
    return out


def run(p: dict, runner, log, results: dict, save) -> None:
    """Latency at batch 1 and throughput at the preset's large batch, both sides."""
    n_in, n_hidden, n_out = p["smnist"]
    lsnn_params = n_in * n_hidden + n_hidden * (n_hidden - 1) + n_hidden * n_out + n_out
    base = {
        "n_in": n_in,
        "n_hidden": n_hidden,
        "n_out": n_out,
        "backend": p["backend"],
        "device": p["device"],
        "threads": p["threads"],
        "T": p["infer_T"],
        "target_params": lsnn_params,
        "energy": p["device"] == "cuda",
        "energy_seconds": p.get("energy_seconds", 3.0),
    }
    rows = []
    log(
        f"  inference: LSNN {n_in}-{n_hidden}-{n_out} vs LSTM, T={p['infer_T']}, "
        f"batch 1 and {p['infer_batch']}"
    )
    for B, secs in ((1, p["latency_seconds"]), (p["infer_batch"], p["throughput_seconds"])):
        cfg = {
            **base,
            "B": B,
            "seconds": secs,
            "min_calls": 3 if B > 1 else 5,
            "max_calls": p.get("max_calls", 200),
        }
        for side, target in (
            ("snncc", "benchmarks.inference:snncc_infer"),
            ("torch", "benchmarks.inference:torch_infer"),
        ):
            rec = runner(target, [cfg])[0]
            rec.setdefault("side", side)
            rows.append(rec)
        results["inference"] = {"rows": rows, "T": p["infer_T"], "lsnn_params": lsnn_params}
        save()
