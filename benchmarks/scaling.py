"""Data-parallel scaling on CPU ranks: time per global batch with 1 and 2 MPI ranks.

    python -m benchmarks.scaling [--quick] [--out DIR] [--max-ranks N]

Each configuration runs in its own ``mpiexec -n R`` launch (one OpenMP thread per rank unless
stated) and trains the same network on the same global batches:

* strong scaling: the global batch B is fixed; efficiency E(R) = t(1) / (R t(R));
* weak scaling: the batch per rank b is fixed (global batch R b); efficiency E(R) = t(1) / t(R);
* references: 1 rank with R OpenMP threads (the same cores used by threads instead of ranks),
  and R CPU "devices" in one process (``compile(devices=[...])``; they run one after another,
  so this is the correctness path of multi-GPU training, not a speed-up on a CPU).

A step is timed from a barrier to the end of ``train_batch`` on every rank; the step time is the
maximum over ranks, and the reported value is the median over the timed steps (with the
quartiles). Each rank also reports its time per generated function (forward and backward,
fused on the CPU, accumulate, optimize) and inside the gradient reduction
(``Communicator.reduce``, which includes waiting for a slower rank). A separate
micro-benchmark times the all-reduce of the gradient bytes alone. Results:
``DIR/scaling.json`` and ``DIR/scaling.md``; docs/scaling.md explains them and the model used
for projections.

The machine's load average is recorded before and after: other work on the same cores makes the
numbers (especially with OpenMP threads, whose barriers wait for a descheduled thread) worse.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# the generated functions of one gradient pass (CPU: forward_backward + accumulate)
GRADIENT_FUNCTIONS = ("forward", "backward", "forward_backward", "accumulate")

PRESETS = {
    # SHD-sized network (benchmarks/training.py): 700 inputs, 256 recurrent ALIF, 20 outputs
    "default": dict(n_in=700, n_hidden=256, n_out=20, T=100, rate=0.015, batch=64,
                    per_rank=32, warmup=3, steps=15),
    "quick": dict(n_in=100, n_hidden=64, n_out=10, T=50, rate=0.05, batch=32, per_rank=16,
                  warmup=2, steps=6),
}  # fmt: skip


# --------------------------------------------------------------------------- the worker
def _model(cfg: dict, capacity: int, devices: int):
    import snncc
    from snncc.experiment import TrainConfig, build_network

    net = build_network(TrainConfig(neurons=cfg["n_hidden"], tau_a=2000.0, seed=0),
                        cfg["n_in"], cfg["n_out"])  # fmt: skip
    rule = snncc.rules.EProp(readout="output", regularizer="none")
    return snncc.compile(net, batch_size=capacity, rule=rule, optimizer=snncc.optim.Adam(1e-3),
                         devices=list(range(devices)))  # fmt: skip


def _batch(cfg: dict, step: int, size: int):
    rng = np.random.default_rng([11, step])
    x = (rng.random((size, cfg["T"], cfg["n_in"])) < cfg["rate"]).astype(np.uint8)
    return x, rng.integers(0, cfg["n_out"], size)


def worker(cfg: dict) -> None:
    """One configuration, run on every rank; rank 0 prints one JSON line."""
    from snncc.runtime import parallel

    comm = parallel.world()
    B, devices = cfg["global_batch"], cfg["devices"]
    cap = max(1, -(-comm.max_share(B) // devices))
    t0 = time.perf_counter()
    model = _model(cfg, cap, devices)
    compile_s = time.perf_counter() - t0
    spent: dict[str, float] = {}  # wall seconds per function this step; "cpu:" + key: CPU

    def timed(fn, key):
        def wrapper(*a, **kw):
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - t
                spent["cpu:" + key] = spent.get("cpu:" + key, 0.0) + time.process_time() - c

        return wrapper

    for prog in model.programs:
        call = prog.call
        prog.call = lambda f, b, T, _call=call: timed(_call, f)(f, b, T)
    comm.reduce = timed(comm.reduce, "reduce")
    batches = [_batch(cfg, s, B) for s in range(cfg["warmup"] + cfg["steps"])]
    steps, parts, work = [], [], []
    for k, (x, y) in enumerate(batches):
        comm.barrier()
        spent.clear()
        t, c = time.perf_counter(), time.process_time()
        model.train_batch(x, y)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        if k >= cfg["warmup"]:
            steps.append(dt)
            parts.append(dict(spent))
            # CPU time of the step outside the reduction (where MPI polls while it waits):
            # what this rank computed, whether or not other processes shared its core
            work.append(dc - spent.get("cpu:reduce", 0.0))
    # all-reduce of the gradient bytes alone (what the reduction costs without waiting)
    n_params = sum(size for _, _, size in model.training.params)
    buf = np.ones(n_params, np.float32)
    red = []
    if comm.parallel:
        from mpi4py import MPI

        for k in range(110):  # 10 warm-up
            comm.barrier()
            t = time.perf_counter()
            comm.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            if k >= 10:
                red.append(time.perf_counter() - t)
    mine = (steps, parts, work)
    everyone = comm.comm.gather(mine, root=0) if comm.parallel else [mine]
    if not comm.is_root:
        return
    step_max = np.max([s for s, _, _ in everyone], axis=0)  # the slowest rank sets the pace
    work_max = np.max([w for _, _, w in everyone], axis=0)
    keys = sorted({k for _, ps, _ in everyone for p in ps for k in p if ":" not in k})
    breakdown = {}  # per step the mean over ranks, then the median over steps
    for k in keys:
        per_step = [
            np.mean([ps[i].get(k, 0.0) for _, ps, _ in everyone]) for i in range(len(steps))
        ]
        breakdown[k] = float(np.median(per_step))
    out = dict(
        cfg,
        ranks=comm.size,
        capacity=cap,
        params=n_params,
        grad_bytes=4 * n_params,
        compile_s=compile_s,
        step_s=float(np.median(step_max)),
        step_q1_s=float(np.percentile(step_max, 25)),
        step_q3_s=float(np.percentile(step_max, 75)),
        breakdown_s=breakdown,
        work_s=float(np.median(work_max)),
        allreduce_s=float(np.median(red)) if red else 0.0,
        omp_threads=int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
    )
    print("SCALING " + json.dumps(out), flush=True)


# --------------------------------------------------------------------------- the driver
def _mpiexec() -> str:
    for cand in (Path(sys.executable).parent / "mpiexec", shutil.which("mpiexec")):
        if cand and Path(cand).exists():
            return str(cand)
    raise SystemExit("benchmarks.scaling needs mpiexec next to mpi4py: pip install mpich")


def launch(cfg: dict, ranks: int, threads: int, devices: int = 1) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SNNCC_MPI"}
    env["OMP_NUM_THREADS"] = str(threads)
    env["OMP_PROC_BIND"] = "false"
    spec = json.dumps(dict(cfg, devices=devices))
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "benchmarks.scaling",
           "--worker", spec]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SCALING ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("SCALING ") :])


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def hardware() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mpi = subprocess.run([sys.executable, "-c", "from mpi4py import MPI; "
                              "print(MPI.Get_library_version().splitlines()[0])"],
                             capture_output=True, text=True, timeout=60).stdout.strip()  # fmt: skip
    except Exception:
        mpi = "?"
    return dict(cpu=cpu, cores=len(os.sched_getaffinity(0)), python=platform.python_version(),
                mpi=mpi, machine=platform.node())  # fmt: skip


def run(preset: str, max_ranks: int, repeats: int) -> dict:
    cfg = dict(PRESETS[preset])
    R = max_ranks
    b, B = cfg["per_rank"], cfg["batch"]
    res: dict = {"preset": preset, "config": cfg, "hardware": hardware(), "repeats": repeats,
                 "load_before": load_average(), "runs": {}}  # fmt: skip
    plan = {
        f"1 rank, B={b}": (dict(cfg, global_batch=b), 1, 1, 1),
        f"1 rank, B={B}": (dict(cfg, global_batch=B), 1, 1, 1),
        f"{R} ranks, B={B}": (dict(cfg, global_batch=B), R, 1, 1),
        f"{R} ranks, B={R * b}": (dict(cfg, global_batch=R * b), R, 1, 1),
        f"1 rank x {R} threads, B={B}": (dict(cfg, global_batch=B), 1, R, 1),
        f"1 process, {R} CPU devices, B={B}": (dict(cfg, global_batch=B), 1, 1, R),
    }
    for rep in range(repeats):  # interleaved, best of the repeats: the least disturbed
        for name, (c, ranks, threads, devices) in plan.items():
            print(f"  [{rep + 1}/{repeats}] {name} ...", flush=True)
            r = launch(c, ranks, threads, devices)
            r["all_step_s"] = res["runs"].get(name, {}).get("all_step_s", []) + [r["step_s"]]
            if name not in res["runs"] or r["step_s"] < res["runs"][name]["step_s"]:
                res["runs"][name] = r
            else:
                res["runs"][name]["all_step_s"] = r["all_step_s"]
    runs = res["runs"]
    one_B, R_B = runs[f"1 rank, B={B}"], runs[f"{R} ranks, B={B}"]
    one_b, R_Rb = runs[f"1 rank, B={b}"], runs[f"{R} ranks, B={R * b}"]

    def est(r: dict) -> float:  # CPU work of the slowest rank + the all-reduce alone
        return r["work_s"] + r["allreduce_s"]

    res["strong"] = dict(ranks=R, batch=B, t1=one_B["step_s"], tR=R_B["step_s"],
                         efficiency=one_B["step_s"] / (R * R_B["step_s"]),
                         efficiency_work=est(one_B) / (R * est(R_B)))  # fmt: skip
    res["weak"] = dict(ranks=R, per_rank=b, t1=one_b["step_s"], tR=R_Rb["step_s"],
                       efficiency=one_b["step_s"] / R_Rb["step_s"],
                       efficiency_work=est(one_b) / est(R_Rb))  # fmt: skip
    res["references"] = dict(
        omp_speedup=one_B["step_s"] / runs[f"1 rank x {R} threads, B={B}"]["step_s"],
        devices_speedup=one_B["step_s"] / runs[f"1 process, {R} CPU devices, B={B}"]["step_s"],
    )
    res["model"] = fit_model(runs, cfg, R)
    res["load_after"] = load_average()
    return res


def fit_model(runs: dict, cfg: dict, R: int) -> dict:
    """t(r, B) = t_fix + (c + h) B / r + t_opt + t_red(r), from the 1-rank runs.

    t_fix + c b: forward + backward + accumulate of one pass of b examples (the two 1-rank
    batch sizes give both); t_opt: the optimiser step, replicated on every rank; h: the rest
    of a 1-rank step (input conversion, copies) per example, done on each rank's shard;
    t_red(r): a ring all-reduce of the gradient bytes S, 2 (r-1)/r S/beta + 2 (r-1) alpha, with
    beta solved from the all-reduce measured at R ranks and a nominal alpha of 5 us (shared
    memory). All times from the least disturbed repeat. Projections for r > R assume one free
    core per rank.
    """
    b, B = cfg["per_rank"], cfg["batch"]
    small, big = runs[f"1 rank, B={b}"], runs[f"1 rank, B={B}"]

    def local(r):
        bd = r["breakdown_s"]
        return sum(bd.get(k, 0.0) for k in GRADIENT_FUNCTIONS)

    c = (local(big) - local(small)) / (B - b)
    t_fix = max(local(small) - c * b, 0.0)
    t_opt = float(np.median([big["breakdown_s"].get("optimize", 0.0),
                             small["breakdown_s"].get("optimize", 0.0)]))  # fmt: skip
    t_host = max(big["step_s"] - local(big) - t_opt, 0.0)
    h = t_host / B
    red = runs[f"{R} ranks, B={B}"]["allreduce_s"]
    S = runs[f"{R} ranks, B={B}"]["grad_bytes"]
    alpha = 5e-6
    beta = 2 * (R - 1) / R * S / max(red - 2 * (R - 1) * alpha, 1e-7)

    def predict(r: int, batch: int) -> float:
        t_red = 0.0 if r == 1 else 2 * (r - 1) / r * S / beta + 2 * (r - 1) * alpha
        return t_fix + (c + h) * batch / r + t_opt + t_red

    projection = {
        str(r): dict(
            strong_efficiency=predict(1, B) / (r * predict(r, B)),
            weak_efficiency=predict(1, b) / predict(r, r * b),
        )
        for r in (2, 4, 8, 16)
    }
    return dict(t_fix_s=t_fix, per_example_s=c, t_opt_s=t_opt, t_host_s=t_host,
                host_per_example_s=h,
                allreduce_s=red, grad_bytes=S, alpha_s=alpha, beta_Bps=beta,
                predicted_R_s=predict(R, B), measured_R_s=runs[f"{R} ranks, B={B}"]["step_s"],
                projection=projection)  # fmt: skip


def markdown(res: dict) -> str:
    hw = res["hardware"]

    def ms(v: float) -> str:
        return f"{1e3 * v:.1f}"

    lines = [
        f"# Data-parallel scaling on CPU ranks ({res['preset']})",
        "",
        f"{hw['cpu']}, {hw['cores']} cores, Python {hw['python']}, {hw['mpi']}. "
        f"Best of {res['repeats']} interleaved repeats. Load average before "
        f"{res['load_before']}, after {res['load_after']}.",
        "",
        "Measured (ms; step = median over steps of the slowest rank; parts = mean over ranks):",
        "",
        "| configuration | OMP threads/rank | step | quartiles | all repeats | CPU work | "
        "forward (CPU: fused with backward) | backward | accumulate | optimize | reduce | "
        "all-reduce alone |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in res["runs"].items():
        bd = r["breakdown_s"]
        reps = ", ".join(ms(v) for v in r["all_step_s"])
        fwd = bd.get("forward", 0) + bd.get("forward_backward", 0)
        lines.append(
            f"| {name} | {r['omp_threads']} | {ms(r['step_s'])} | {ms(r['step_q1_s'])}-"
            f"{ms(r['step_q3_s'])} | {reps} | {ms(r['work_s'])} | {ms(fwd)} | "
            f"{ms(bd.get('backward', 0))} | {ms(bd.get('accumulate', 0))} | "
            f"{ms(bd.get('optimize', 0))} | {ms(bd.get('reduce', 0))} | {ms(r['allreduce_s'])} |"
        )
    s, w, o, m = res["strong"], res["weak"], res["references"], res["model"]
    lines += [
        "",
        f"* Strong scaling, B={s['batch']}, {s['ranks']} ranks: measured speed-up "
        f"{s['t1'] / s['tR']:.2f}x, efficiency {100 * s['efficiency']:.0f}% "
        f"(from CPU work + all-reduce alone: {100 * s['efficiency_work']:.0f}%).",
        f"* Weak scaling, b={w['per_rank']} per rank: measured efficiency "
        f"{100 * w['efficiency']:.0f}% (from CPU work + all-reduce alone: "
        f"{100 * w['efficiency_work']:.0f}%).",
        f"* The same cores as OpenMP threads of one rank: speed-up {o['omp_speedup']:.2f}x; "
        f"{s['ranks']} CPU devices in one process: {o['devices_speedup']:.2f}x.",
        f"* Model (projection, see docs/scaling.md): t_fix {ms(m['t_fix_s'])} ms, "
        f"{1e6 * m['per_example_s']:.0f} us per example, optimiser {ms(m['t_opt_s'])} ms, "
        f"host {ms(m['t_host_s'])} ms, all-reduce of {m['grad_bytes'] / 1e6:.2f} MB "
        f"{ms(m['allreduce_s'])} ms; predicts {ms(m['predicted_R_s'])} ms at {s['ranks']} "
        f"ranks (measured {ms(m['measured_R_s'])} ms).",
        "",
        "| ranks (projected) | strong efficiency | weak efficiency |",
        "|---|---|---|",
    ]
    for r, v in m["projection"].items():
        lines.append(
            f"| {r} | {100 * v['strong_efficiency']:.0f}% | {100 * v['weak_efficiency']:.0f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small network (a minute)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--max-ranks", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (best kept)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    preset = "quick" if args.quick else "default"
    print(f"scaling benchmark ({preset}), 1 and {args.max_ranks} ranks")
    res = run(preset, args.max_ranks, args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(res, indent=2))
    (out / "scaling.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
