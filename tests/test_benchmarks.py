"""Smoke tests of the benchmark suite (benchmarks/): tiny sizes, every code path, no timing asserts.

The suite is only useful if it still runs when it is needed, so this runs it end to end with the
hidden ``smoke`` preset (a 20-16-4 network, a few steps) and checks the shape of what it writes.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from benchmarks.common import (
    Probe,
    fmt,
    md_table,
    poisson_spikes,
    profile_medians,
    run_child,
    summarize,
)
from benchmarks.training import fit_quadratic, solve_max

# ------------------------------------------------------------- child targets for run_child


def _raise(cfg: dict, probe: Probe) -> dict:
    raise ValueError("boom")


def _sleep(cfg: dict, probe: Probe) -> dict:
    time.sleep(60)
    return {}


def _allocate(cfg: dict, probe: Probe) -> dict:
    probe.baseline()
    a = np.ones(cfg["mb"] * 2**20 // 8)  # touched: resident
    return {"sum": float(a[::4096].sum())}


# ----------------------------------------------------------------------------- helpers


def test_summaries_and_tables():
    s = summarize([3.0, 1.0, 2.0])
    assert s["median_s"] == 2.0 and s["min_s"] == 1.0 and s["n"] == 3
    assert np.isnan(summarize([])["median_s"])
    prof = profile_medians([{"a": 1.0}, {"a": 2.0, "b": 1.0}], [2.0, 4.0])
    assert prof["a"] == 1.5 and prof["other"] == 1.0
    assert fmt(None) == "n/a" and fmt(float("nan")) == "n/a" and fmt(1234.5) == "1,234"
    assert fmt(0.012345) == "0.0123" and fmt(2.0, unit="x") == "2.00x"
    table = md_table(["a", "b"], [(1.0, "x"), (None, "y")])
    assert table.splitlines()[0] == "| a | b |" and "| n/a | y |" in table


def test_memory_fit_and_solve():
    ns = [64, 128, 256, 512]
    fit = fit_quadratic(ns, [100 + 2 * n + 0.01 * n * n for n in ns])
    assert fit == pytest.approx((100, 2, 0.01), rel=1e-6)
    n = solve_max(fit, 100 + 2 * 1000 + 0.01 * 1000**2)
    assert n == pytest.approx(1000)
    assert solve_max(fit_quadratic([1, 2], [10, 20]), 110) == pytest.approx(11)
    assert fit_quadratic([1], [1]) is None


def test_synthetic_inputs():
    x = poisson_spikes(4, 200, 50, 0.02, seed=1)
    assert x.shape == (4, 200, 50) and x.dtype == bool
    assert 0.015 < x.mean() < 0.025
    assert np.array_equal(x, poisson_spikes(4, 200, 50, 0.02, seed=1))
    from benchmarks.inference import smnist_like

    s = smnist_like(2, 79)
    assert s.shape == (2, 1568, 79) and s.any()
    assert np.array_equal(s[:, 0::2], s[:, 1::2])  # every spike duplicated


def test_peers_parameter_matching():
    from benchmarks.peers import lstm_hidden_for_params, lstm_param_count

    target = 79 * 256 + 256 * 255 + 256 * 10 + 10
    h = lstm_hidden_for_params(79, 10, target)
    assert abs(lstm_param_count(79, h, 10) - target) < lstm_param_count(79, 1, 10) + 8 * h


# ---------------------------------------------------------------------- child processes


def test_child_records_errors_timeouts_and_memory():
    recs = run_child(
        "tests.test_benchmarks:_raise", [{}, {}], threads=1, timeout=60
    )  # both configs still get a record
    assert [r["status"] for r in recs] == ["error: ValueError: boom"] * 2
    rec = run_child("tests.test_benchmarks:_allocate", [{"mb": 64}], threads=1, timeout=60)[0]
    assert rec["status"] == "ok"
    assert rec["train_mem_mb"] > 40  # the 64 MB array shows up in the child's peak RSS
    assert rec["peak_rss_mb"] >= rec["base_rss_mb"]
    rec = run_child("tests.test_benchmarks:_sleep", [{}], threads=1, timeout=3)[0]
    assert rec["status"].startswith("timeout")


# --------------------------------------------------------------------------- end to end


def test_cli_registers_bench():
    from snncc.bench import find_checkout
    from snncc.cli import COMMANDS, build_parser

    assert "bench" in [name for name, _, _ in COMMANDS]
    args = build_parser().parse_args(["bench", "--quick", "--only", "compile", "--threads", "1"])
    assert args.quick and args.only == ["compile"] and args.threads == 1
    root = find_checkout()
    assert root is not None and (root / "benchmarks" / "__main__.py").is_file()


@pytest.mark.slow
def test_smoke_suite_end_to_end(tmp_path):
    from benchmarks.__main__ import main

    assert main(["--preset", "smoke", "--out", str(tmp_path), "--threads", "1"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert not res.get("errors"), res.get("errors")
    tr = res["training"]
    for section in ("vs_T", "vs_batch"):
        rows = tr[section]
        assert {r["side"] for r in rows} >= {"snncc", "torch"}
        for r in rows:
            if r["side"] in ("snncc", "torch"):
                assert r["status"] == "ok", r
                assert r["median_s"] > 0 and r["peak_rss_mb"] > 0
    snncc_rows = [r for r in tr["vs_T"] if r["side"] == "snncc"]
    profile = set(snncc_rows[0]["profile_s"])  # CPU: forward and backward fused per element
    assert {"forward_backward", "accumulate", "optimize"} <= profile
    assert {"forward", "backward"} <= set(snncc_rows[0]["profile_unfused_s"])
    online = [r for r in tr["vs_T"] if r["side"] == "snncc-online"]
    assert online and all(r["status"] == "ok" or r["status"].startswith("n/a") for r in online)
    # every peer at the peer_Ts, beside each network's snncc side, pinned to one CPU
    from benchmarks.presets import PRESETS

    smoke = PRESETS["smoke"]
    at_peer_T = {r["side"]: r for r in tr["vs_T"] if r["config"]["T"] in smoke["peer_Ts"]}
    assert set(at_peer_T) >= {*smoke["peers"], "snncc", "snncc-lif", "torch"}
    for r in at_peer_T.values():
        assert r["status"] == "ok", r
        assert r["median_s"] > 0 and r["cpu_median_s"] > 0 and r["cpus"] == [r["cpus"][0]]
    assert at_peer_T["jax"]["first_call_s"] > 0 and at_peer_T["jax"]["backend"] == "cpu"
    assert at_peer_T["torch-sparse"]["input"] == "sparse COO"
    assert at_peer_T["snntorch"]["config"]["model"] == "lif"
    assert at_peer_T["snncc-lif"]["config"]["refractory"] == 0.0
    assert set(tr["max_hidden"]["sides"]) == {"snncc", "torch"}
    assert all(r["status"] == "ok" for r in res["inference"]["rows"])
    assert res["compile"]["backends"]["cpu"]["cold_s"] > 0
    md = (tmp_path / "results.md").read_text()
    for heading in ("## Headline", "## Targets", "## Where the time goes", "## Inference",
                    "## Compile time", "## Training: snncc vs every peer, ALIF network",
                    "## Training: snncc vs every peer, LIF network"):  # fmt: skip
        assert heading in md
    assert md.count("**(strongest peer)**") == 2  # one per network at the one peer T
    assert len(list((tmp_path / "img").glob("*.png"))) >= 4


def _fake_gpu_results() -> dict:
    """A results dict shaped like a --gpu run (no GPU needed to render it)."""
    from benchmarks.presets import PRESETS

    st = dict(PRESETS["gpu"], threads=16)

    def rec(side: str, key: str, value: int, seconds: float, **extra) -> dict:
        cfg = {"T": 1370, "B": 512, "n_hidden": 256, key: value}
        prof = {"forward": seconds / 2, "backward": seconds / 4, "other": seconds / 4}
        return {
            "side": side,
            "status": "ok",
            "config": cfg,
            "median_s": seconds,
            "profile_s": prof,
            "device_mem_mb": 1000.0 + value,
            **extra,
        }

    vs_t = [
        rec(s, "T", T, f * T / 1000, cpu_median_s=2 * f * T / 1000)
        for T in (100, 1370)
        for s, f in (("snncc", 0.05), ("torch", 1.0), ("snncc-online", 0.5))
    ]
    # the strongest peer changes with T: JAX at T=100, PyTorch sparse at T=1370
    vs_t += [
        rec("jax", "T", 100, 0.02, cpu_median_s=0.03, first_call_s=2.5),
        rec("torch-sparse", "T", 100, 0.06),
        rec("torch-sparse", "T", 1370, 0.5),
        {"side": "jax", "status": "n/a: JAX has no GPU backend here", "config": {"T": 1370}},
    ]
    vs_t += [rec("snncc-lif", "T", 1370, 0.05), rec("snntorch", "T", 1370, 2.0)]
    vs_b = [rec(s, "B", B, 0.01 * B) for B in (1, 512) for s in ("snncc", "torch")]
    rows = [rec(s, "n_hidden", n, 1.0) for n in (256, 512, 1024) for s in ("snncc", "torch")]
    sides = {
        s: {
            "points": [(256, 2000.0), (512, 5000.0), (1024, 14000.0)],
            "fit_mb": (100.0, 5.0, 0.01),
            "budget_mb": 140000.0,
            "predicted_max": 3500,
            "verified": {"n_hidden": 3392, "status": "ok"},
        }
        for s in ("snncc", "torch")
    }
    inf = [
        {
            "side": s,
            "status": "ok",
            "config": {"B": B},
            "median_s": 0.01 * B,
            "params": 88000,
            "hidden": 112,
            "energy_mj_per_inference": 5.0,
            "energy_above_idle_mj_per_inference": 2.0,
        }
        for B in (1, 512)
        for s in ("snncc", "torch")
    ]
    comp = {
        "cold_s": 3.0,
        "cached_s": 0.3,
        "cold_phases_s": {"build + load": 2.5},
        "cached_phases_s": {},
        "errors": ["boom"],
    }
    return {
        "meta": {
            "preset": "gpu",
            "settings": st,
            "threads": 16,
            "hardware": {"gpu": "NVIDIA H200, 143771 MiB", "date": "today"},
        },
        "training": {
            "vs_T": vs_t,
            "vs_batch": vs_b,
            "max_hidden": {
                "T": 1370,
                "B": 512,
                "rows": rows,
                "memory": "device_mem_mb",
                "sides": sides,
            },
        },
        "inference": {"rows": inf, "T": 1568, "lsnn_params": 88074},
        "compile": {"network": "SHD", "B": 512, "backends": {"cuda": comp}},
    }


def test_gpu_report_and_plots_render(tmp_path):
    from benchmarks.plots import plots
    from benchmarks.report import report

    res = _fake_gpu_results()
    md = report(res)
    assert "a batch of 512 at 1370 steps" in md and "energy per inference" in md
    assert "N=3392: ok" in md and "Failed: cuda: boom" in md
    # T=1000 is not in the GPU preset: the headline is the longest T, against its strongest peer
    assert "ALIF network, T=1370, batch 512, 16 threads each:** snncc eProp's speed-up" in md
    assert "PyTorch BPTT, sparse input projection, is 7.30x in wall time" in md
    assert "T=100: JAX BPTT (jit + lax.scan) (snncc's speed-up 4.00x)" in md
    assert "| 1370 | JAX BPTT (jit + lax.scan) | n/a: JAX has no GPU backend here |" in md
    assert "snnTorch BPTT (RLeaky, LIF) **(strongest peer)** | 2,000 |" in md
    files = plots(res, tmp_path)
    assert {f.name for f in files} >= {"training_vs_T_gpu.png", "max_hidden_gpu.png"}


def test_vs_T_runs_peers_at_their_T_beside_their_snncc_side():
    from benchmarks.presets import PRESETS
    from benchmarks.training import SIDES, run_jobs, vs_T_sides

    p = dict(PRESETS["cpu"], peers=("jax", "snntorch"))
    assert vs_T_sides(p, 300) == ["snncc", "torch", "snncc-online"]
    assert vs_T_sides(p, 1000) == ["snncc", "torch", "snncc-online", "jax", "snncc-lif",
                                   "snntorch"]  # fmt: skip
    calls = []

    def runner(target: str, configs: list[dict]) -> list[dict]:
        calls.append((target.split(":")[1], [c["T"] for c in configs]))
        return [{"status": "ok"} for _ in configs]

    jobs = [(side, {"T": T}) for T in (100, 1000) for side in ("snncc", "snntorch", "torch")]
    recs = run_jobs(runner, jobs, isolate=False)  # one child per target, all its jobs in it
    assert calls == [("snncc_train", [100, 1000]), ("torch_train", [100, 100, 1000, 1000])]
    assert [(r["side"], r["config"]["T"]) for r in recs] == [(s, c["T"]) for s, c in jobs]
    assert recs[1]["config"] == {"T": 100, "model": "lif", "refractory": 0.0, "peer": "snntorch"}
    calls.clear()
    run_jobs(runner, jobs, isolate=True)  # one child per job, in order
    assert [c[0] for c in calls] == [SIDES[s].target.split(":")[1] for s, _ in jobs]


def test_children_are_pinned_and_timed_in_cpu_time():
    from benchmarks.common import Stopwatch

    rec = run_child("tests.test_benchmarks:_allocate", [{"mb": 1}], threads=1, timeout=60)[0]
    assert len(rec["cpus"]) == 1
    clock = Stopwatch()
    with clock.timed():
        sum(range(200_000))  # busy: CPU time close to wall time
    with clock.timed():
        time.sleep(0.05)  # idle: wall time only
    s = clock.summary()
    assert s["n"] == 2 and s["cpu_times_s"][1] < 0.5 * s["times_s"][1]
    assert s["cpu_times_s"][0] > 0


def test_call_timer_waits_for_gpu_streams():
    from benchmarks.common import CallTimer

    events = []

    class Stream:
        def synchronize(self):
            events.append("sync")

    class Context:
        def push(self):
            events.append("push")

        def pop(self):
            events.append("pop")

    class Prog:
        stream, context = Stream(), Context()

        def call(self, name, B, T):
            events.append(name)

    class Model:
        programs = [Prog()]

        def convert_inputs(self, x):
            return x

    m = Model()
    timer = CallTimer(m)
    m.programs[0].call("forward", 2, 3)
    assert m.convert_inputs(5) == 5
    assert events == ["forward", "push", "sync", "pop"]  # launch, then wait for its kernels
    assert set(timer.take()) == {"forward", "host: convert inputs"} and timer.take() == {}
