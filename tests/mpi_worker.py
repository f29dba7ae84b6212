"""Run by tests/test_parallel.py under ``mpiexec -n N`` (and imported by it for the single-process
references). Small network: 20 inputs, 30 ALIF, 4 outputs, T = 50.

    python tests/mpi_worker.py train OUT [--batch 7] [--steps 3] [--devices 1] [--events]
    python tests/mpi_worker.py fit OUT --epochs E [--resume]
    python tests/mpi_worker.py fail OUT --rank R [--step S]   (rank R's device fails at step S)
    python tests/mpi_worker.py raise OUT --rank R             (rank R raises outside training)
    python tests/mpi_worker.py save-fails OUT                 (rank 0's checkpoint write fails)

Rank 0 writes OUT/weights.npz (and OUT/losses.json); every call of the checkpoint writer
appends its rank to OUT/writers.txt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import snncc  # noqa: E402
from snncc import init, neurons  # noqa: E402

N_IN, N_HID, N_OUT, T = 20, 30, 4, 50


def network() -> snncc.Network:
    net = snncc.Network(dt=1.0, seed=3)
    inp = net.add_input("input", N_IN)
    cell = neurons.ALIF(tau_m=20.0, tau_a=200.0, beta=0.0174, v_th=0.6, refractory=5.0)
    hid = net.add_population("hidden", N_HID, cell)
    out = net.add_population("output", N_OUT, neurons.LeakyIntegrator(tau=20.0))
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 1.5 / np.sqrt(N_IN)))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 1 / np.sqrt(N_HID)),
                allow_self=False)  # fmt: skip
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 1 / np.sqrt(N_HID)))
    return net


def model(capacity: int, devices: int = 1, lr: float = 1e-3):
    rule = snncc.rules.EProp(readout="output", c_reg=1e-3)
    return snncc.compile(network(), batch_size=capacity, rule=rule,
                         optimizer=snncc.optim.Adam(lr), devices=list(range(devices)))  # fmt: skip


def batch(step: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The global batch of a step: the same on every rank."""
    rng = np.random.default_rng([7, step])
    x = (rng.random((size, T, N_IN)) < 0.1).astype(np.uint8)
    return x, rng.integers(0, N_OUT, size)


def as_events(x: np.ndarray, quiet_after: int = 20, quiet: int = 3) -> list[tuple]:
    """Dense spikes -> (times_ms, units) per example; the first ``quiet`` examples stop early,
    so a shard of them alone would run fewer steps than the whole batch."""
    out = []
    for k, ex in enumerate(x):
        t, i = np.nonzero(ex[:quiet_after] if k < quiet else ex)
        out.append((t.astype(np.float64), i))
    return out


def dataset(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    return batch(1000, n)


def weights(m) -> dict[str, np.ndarray]:
    state = {k: np.asarray(m.weights[k]) for k in m.weights}
    state["output.bias"] = m.state_dict()["params"]["output.bias"]
    return state


def train_steps(m, steps: int, size: int, events: bool = False) -> list[dict]:
    out = []
    for s in range(steps):
        x, y = batch(s, size)
        out.append(m.train_batch(as_events(x) if events else x, y))
    return out


def capacity(global_batch: int, devices: int) -> int:
    from snncc.runtime.parallel import world

    share = world().max_share(global_batch)
    return max(1, -(-share // devices))


def record_writers(out: Path) -> None:
    """Log which rank calls the checkpoint writer."""
    from snncc.runtime import checkpoint
    from snncc.runtime.parallel import world

    original = checkpoint.write_archive

    def logged(path, meta, arrays):
        with open(out / "writers.txt", "a") as fh:
            fh.write(f"{world().rank}\n")
        original(path, meta, arrays)

    checkpoint.write_archive = logged


def fail_writes() -> None:
    """Make this rank's checkpoint writes fail half-way, as a full disk would."""
    import errno

    from snncc.files import atomic_file
    from snncc.runtime import checkpoint

    def disk_full(path, meta, arrays):
        with atomic_file(path, durable=True) as fh:
            fh.write(b"PK\x03\x04 the first bytes of a zip")
            raise OSError(errno.ENOSPC, "No space left on device")

    checkpoint.write_archive = disk_full


def main(argv: list[str] | None = None) -> None:
    from snncc.runtime.parallel import world

    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "fit", "fail", "raise", "save-fails"])
    p.add_argument("out", type=Path)
    p.add_argument("--batch", type=int, default=7)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--rank", type=int, default=1)
    p.add_argument("--step", type=int, default=2)
    p.add_argument("--events", action="store_true", help="inputs as (times, units) lists")
    args = p.parse_args(argv)
    comm = world()
    out = args.out
    if args.mode == "raise":
        if comm.rank == args.rank:
            raise RuntimeError(f"deliberate failure on rank {comm.rank}")
        comm.barrier()  # the others wait for it: only the abort ends the job
        return
    record_writers(out)
    ckpt = out / "checkpoint.snncc"
    if args.mode in ("fit", "save-fails"):
        m = snncc.load(ckpt) if args.resume else model(capacity(args.batch, args.devices))
        if args.mode == "save-fails" and comm.is_root:
            fail_writes()
        hist = m.fit(dataset(), epochs=args.epochs, batch_size=args.batch, seed=5,
                     checkpoint=str(ckpt), progress=False)  # fmt: skip
        losses = [h["loss"] for h in hist]
    else:
        m = model(capacity(args.batch, args.devices), args.devices)
        if args.mode == "fail" and comm.rank == args.rank:
            prog = m.programs[0]
            call = prog.call

            def failing(function, B, T_):
                if function == "accumulate" and m.step + 1 == args.step:
                    raise RuntimeError("injected device failure")
                return call(function, B, T_)

            prog.call = failing
        losses = [r["loss"] for r in train_steps(m, args.steps, args.batch, args.events)]
    if comm.is_root:
        np.savez(out / "weights.npz", **weights(m))
        (out / "losses.json").write_text(json.dumps({"losses": losses, "size": comm.size}))


if __name__ == "__main__":
    main()
