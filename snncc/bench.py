"""``snncc bench``: runs the benchmark suite of a source checkout (``benchmarks/``).

The suite itself is not part of the installed package (it needs PyTorch and compares against
it); it lives in the repository's ``benchmarks/`` folder next to ``snncc/``. This shim only
defines the command line and finds that folder: next to the imported ``snncc`` package (an
editable install or a checkout on ``PYTHONPATH``) or in the current directory. From an
installed wheel without a checkout, clone the repository and run ``snncc bench`` (or
``python -m benchmarks``) inside it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

SECTIONS = ("compile", "training", "inference")


def add_bench(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="GPU sizes (batch 512) on the cuda backend, PyTorch on the GPU; adds NVML energy",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer sequence lengths, sizes and repeats (a few minutes; CI-like)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=None,
        metavar="SECTION",
        help=f"run only these sections ({', '.join(SECTIONS)}; default: all)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="results folder: results.json, results.md, img/*.png (default runs/bench-...)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for both sides: OMP_NUM_THREADS for snncc, torch.set_num_threads "
        "for PyTorch (default: the CPUs this process may use)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds one measurement child may run before it is stopped",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--render",
        metavar="DIR",
        default=None,
        help="measure nothing: rewrite DIR/results.md and DIR/img/*.png from DIR/results.json",
    )
    parser.add_argument(
        "--gpu-model",
        nargs="?",
        const="H200",
        default=None,
        choices=("H200", "TitanV"),
        metavar="GPU",
        help="measure nothing: print the GPU cost model's prediction of a CUDA training step "
        "(SHD sizes) for GPU (H200, or TitanV); on a GPU, measured per-kernel times beside it",
    )
    parser.add_argument(
        "--input-rate",
        type=float,
        default=0.015,
        metavar="R",
        help="--gpu-model: input spikes per unit and step (default 0.015, SHD-like)",
    )
    parser.add_argument(
        "--hidden-rate",
        type=float,
        default=0.02,
        metavar="R",
        help="--gpu-model: hidden spikes per neuron and step (default 0.02)",
    )
    parser.add_argument("--preset", default=None, help=argparse.SUPPRESS)  # tests: "smoke"


def find_checkout() -> Path | None:
    """The folder holding ``benchmarks/`` (with its suite) beside ``snncc/``, if any."""
    import snncc

    candidates = [Path(snncc.__file__).resolve().parents[1], Path.cwd().resolve()]
    for root in candidates:
        if (root / "benchmarks" / "__main__.py").is_file() and (
            root / "benchmarks" / "common.py"
        ).is_file():
            return root
    return None


def load_suite():
    """Import ``benchmarks.__main__`` from the checkout (not some other 'benchmarks')."""
    from snncc.errors import CliError

    root = find_checkout()
    if root is None:
        raise CliError(
            "snncc bench needs a source checkout: the benchmarks/ folder is not installed with "
            "the package. Clone the repository, `pip install -e '.[dev]'` there (PyTorch is "
            "the peer), and run `snncc bench` or `python -m benchmarks` inside it"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module("benchmarks.__main__")
    if Path(module.__file__).resolve().parents[1] != root:
        raise CliError(
            f"a different 'benchmarks' package shadows the suite in {root}: "
            f"{module.__file__}; run `python -m benchmarks` from {root}"
        )
    return module


def run_bench(args: argparse.Namespace) -> int:
    """Benchmark snncc against PyTorch BPTT and an LSTM (needs a source checkout).

    Training time and memory vs sequence length, throughput vs batch size, the largest hidden
    layer that fits, inference latency/throughput (and energy on a GPU), compile time.
    Writes results.json, results.md and PNG plots to --out.
    """
    return int(load_suite().run(args) or 0)
