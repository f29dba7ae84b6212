"""Training beside a busy core: ``python -m benchmarks.busy_core [--repeats N] [--out FILE]``.

A 2-core machine where another program keeps one core busy is the common case on a shared
workstation or CI runner. With a static split of the batch across OpenMP threads, the thread
that shares its core with the other program sets the pace and 2 threads ran 2x slower than 1.
snncc now hands out batch parts dynamically (codegen/targets.py, Target.grad_parts), runs
small loops on one thread (Target.serial_below: each parallel region ends in a barrier that
waits for the slowed thread), and picks per generated function the thread count, 1 or all,
that has been faster lately (backends/cpu.py, ThreadChoice; results do not depend on it).

The workload is the default ``snncc train`` (recurrent ALIF on the embedded digits, batch 32),
3 epochs, and the figure is the training time per epoch that the run itself logs (``epoch_s``
in metrics.jsonl, so start-up and evaluation are left out). Each configuration runs
``--repeats`` times, interleaved:

* threads 1 and 2 (OMP_NUM_THREADS), on a quiet machine and beside a busy core: a process that
  spins on CPU 1 for the whole run, at the same priority. snncc may use CPUs 0 and 1.

The peer is snncc itself with 1 thread on the same loaded machine: the ratio
t(2 threads, busy) / t(1 thread, busy) is what the static split made 2. Medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _spin() -> subprocess.Popen:
    code = "import os\nos.sched_setaffinity(0, {1})\nwhile True:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def epoch_seconds(threads: int, epochs: int) -> float:
    """Median training seconds per epoch of one `snncc train` run with ``threads`` threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="snncc_busy_") as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "snncc", "train", "--epochs", str(epochs)]
        cmd += ["--validation", "0", "--no-progress", "--out", str(out)]
        subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=tmp)
        rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["epoch_s"] for r in rows if "epoch_s" in r)


def run(repeats: int, epochs: int) -> dict:
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs Linux and at least 2 CPUs (CPU 1 is kept busy)")
    configs = [(t, busy) for busy in (False, True) for t in (1, 2)]
    label = {c: f"{c[0]} threads, {'busy' if c[1] else 'quiet'}" for c in configs}
    times: dict[str, list[float]] = {
        f"{t} threads, {'busy' if b else 'quiet'}": [] for t, b in configs
    }
    for r in range(repeats):
        for threads, busy in configs:
            spinner = _spin() if busy else None
            try:
                if spinner is not None:
                    time.sleep(0.5)  # the spinner has its core before training starts
                s = epoch_seconds(threads, epochs)
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
            key = label[(threads, busy)]
            times[key].append(s)
            print(f"  repeat {r + 1}: {key}: {s:.3f} s per epoch", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "workload": f"snncc train (digits, batch 32), {epochs} epochs, training s per epoch",
        "repeats": repeats,
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg()[0],
        "seconds": times,
        "median_s": med,
        "busy_2_over_1": med["2 threads, busy"] / med["1 threads, busy"],
        "quiet_2_over_1": med["2 threads, quiet"] / med["1 threads, quiet"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.busy_core", description=__doc__)
    p.add_argument("--repeats", type=int, default=5, help="runs per configuration (default 5)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    res = run(args.repeats, args.epochs)
    for key, value in res["median_s"].items():
        print(f"{key}: {value:.3f} s per epoch (median of {args.repeats})")
    print(f"beside a busy core, 2 threads / 1 thread = {res['busy_2_over_1']:.2f} (static: ~2)")
    print(f"quiet machine, 2 threads / 1 thread = {res['quiet_2_over_1']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
