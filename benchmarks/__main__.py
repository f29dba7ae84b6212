"""The benchmark suite: ``python -m benchmarks [--quick] [--gpu] [--out DIR]`` (or ``snncc bench``).

Runs, on this machine and in this one run, every comparison side by side: snncc eProp vs BPTT
peers of the same network (PyTorch with a dense or a sparse input projection, JAX, snnTorch;
time per batch in wall and CPU time, peak memory, per-kernel profile, throughput vs batch,
largest hidden layer), snncc LSNN vs a PyTorch LSTM (inference latency, throughput, GPU energy),
and snncc's compile time cold and cached. Writes ``results.json`` (after every section, so an
interrupted run keeps what it measured), ``results.md`` (the tables, with the hardware, the
headline against the strongest peer and the targets met or missed) and ``img/*.png``.

Presets (``benchmarks.presets``): ``cpu`` (default, SHD sizes with batch 32; about 5-10 minutes
on 2 cores), ``cpu-quick`` (``--quick``), ``gpu`` (``--gpu``: batch 512, cuda backend, PyTorch
on the GPU), ``gpu-quick``, and ``smoke`` (tiny sizes, used by the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, default_threads, hardware, run_child, write_json
from benchmarks.plots import plots
from benchmarks.presets import PRESETS
from benchmarks.report import report

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
    if getattr(args, "gpu_model", None):
        from benchmarks import gpu_model

        return gpu_model.run(args)
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

    log(f"snncc benchmarks, preset '{name}', {p['threads']} CPU(s) for every side -> {out}")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
