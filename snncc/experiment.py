"""``snncc train``: build an eProp network for a dataset, train it, log and checkpoint a run.

A run directory holds config.json (the resolved configuration), metrics.jsonl and metrics.csv
(one row per epoch), checkpoint.snncc (written atomically after every epoch), and PNG plots:
learning_curves.png and raster.png (hidden spikes of one test example).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Per-dataset defaults; the command line overrides them.
DEFAULTS = {
    # digits: 40-step sequences, so a shorter adaptation time constant; no refractory period
    # (measured: 5 ms costs ~3 points here). The others follow mlGeNN (eprop.md).
    "digits": dict(neurons=256, epochs=30, batch_size=32, lr=2e-3, tau_a=200.0, refractory=0.0),
    "shd": dict(neurons=256, epochs=100, batch_size=512, lr=1e-3, tau_a=2000.0, refractory=5.0),
    "ssc": dict(neurons=256, epochs=100, batch_size=512, lr=1e-3, tau_a=2000.0, refractory=5.0),
    "smnist": dict(neurons=256, epochs=100, batch_size=512, lr=1e-3, tau_a=2000.0, refractory=5.0),
}


@dataclass
class TrainConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    neurons: int = 256
    model: str = "alif"
    recurrent: bool = True
    epochs: int = 25
    batch_size: int = 32
    lr: float = 5e-3
    tau_a: float = 200.0
    backend: str = "cpu"
    devices: list[int] | None = None
    seed: int = 0
    out: str = ""
    c_reg: float = 0.001
    refractory: float = 5.0
    export_nir: str | None = None


def build_network(cfg: TrainConfig, n_inputs: int, n_classes: int):
    """mlGeNN's eProp setup (eprop.md), sized for the dataset."""
    import snncc
    from snncc import init, neurons

    net = snncc.Network(dt=1.0, seed=cfg.seed)
    inp = net.add_input("input", n_inputs)
    if cfg.export_nir:  # NIR's own LIF and LI (reset to 0, no refractory period): exportable
        gain = 1 - np.exp(-net.dt / 20.0)  # r = 1 / gain: a spike of weight w adds w to v
        cell = neurons.NIRLIF(tau=20.0, v_threshold=0.6, r=1 / gain)
    elif cfg.model == "alif":
        cell = neurons.ALIF(
            tau_m=20.0, tau_a=cfg.tau_a, beta=0.0174, v_th=0.6, refractory=cfg.refractory
        )
    else:
        cell = neurons.LIF(tau_m=20.0, v_th=0.6, refractory=cfg.refractory)
    hid = net.add_population("hidden", cfg.neurons, cell)
    readout = neurons.LI(tau=20.0, r=1 / gain) if cfg.export_nir else neurons.LeakyIntegrator(20.0)
    out = net.add_population("output", n_classes, readout)
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 1 / np.sqrt(n_inputs)))
    if cfg.recurrent:
        net.connect(
            hid,
            hid,
            name="hid_hid",
            weight=init.Normal(0.0, 1 / np.sqrt(cfg.neurons)),
            allow_self=False,
        )
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 1 / np.sqrt(cfg.neurons)))
    return net


def load_data(cfg: TrainConfig):
    from snncc import data

    if cfg.dataset == "digits":
        return data.load_digits("train", seed=cfg.seed), data.load_digits("test", seed=cfg.seed)
    return (
        data.load(cfg.dataset, cfg.data_dir, split="train"),
        data.load(cfg.dataset, cfg.data_dir, split="test"),
    )


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=list(DEFAULTS), default="digits")
    p.add_argument("--data-dir", default=None, help="directory with the dataset's files")
    p.add_argument("--neurons", type=int, default=None)
    p.add_argument("--model", choices=["alif", "lif"], default="alif")
    p.add_argument("--recurrent", dest="recurrent", action="store_true", default=True)
    p.add_argument("--feedforward", dest="recurrent", action="store_false")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--backend", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--devices",
        type=lambda s: [int(d) for d in s.split(",")],
        default=None,
        help="comma-separated devices to split each batch across, e.g. 0,1",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>-<time>)")
    p.add_argument("--resume", default=None, help="run directory to continue")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--export-nir",
        metavar="FILE",
        default=None,
        help="write the trained network to FILE as a NIR graph (docs/nir.md); needs --model "
        "lif and trains NIR's LIF (reset to 0, no refractory period) with an LI readout",
    )


def resolve(args: argparse.Namespace) -> TrainConfig:
    if args.resume:
        saved = json.loads((Path(args.resume) / "config.json").read_text())
        cfg = TrainConfig(**saved)
        if args.epochs is not None:
            cfg.epochs = args.epochs
        return cfg
    d = DEFAULTS[args.dataset]
    out = args.out or f"runs/{args.dataset}-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    return TrainConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        neurons=args.neurons or d["neurons"],
        model=args.model,
        recurrent=args.recurrent,
        epochs=args.epochs if args.epochs is not None else d["epochs"],
        batch_size=args.batch_size or d["batch_size"],
        lr=args.lr or d["lr"],
        tau_a=d["tau_a"],
        refractory=d["refractory"],
        backend=args.backend,
        devices=args.devices,
        seed=args.seed,
        out=out,
        export_nir=args.export_nir,
    )


def run_train(args: argparse.Namespace) -> int:
    """Train an eProp network (default: recurrent ALIF on the embedded spiking digits).

    Writes config.json, metrics.jsonl/csv, checkpoint.snncc and PNG plots to the run directory;
    --resume DIR continues a run exactly where its last checkpoint left it.

    Under MPI (``mpirun -n 4 snncc train ...``, one rank per GPU) --batch-size is global: each
    rank trains on its share of every batch and rank 0 alone prints and writes the run
    directory. If any rank fails, every rank stops and the job exits non-zero naming the rank.
    """
    from snncc.runtime.parallel import RankFailure, abort, describe, world

    comm = world()
    if not comm.parallel:
        return _train(args, comm)
    try:
        return _train(args, comm)
    except RankFailure as err:  # raised on every rank at once: all exit together
        if comm.is_root or comm.rank in err.ranks:
            print(f"snncc train: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # this rank alone: the others would wait for it forever
        abort(describe(err))
        raise


def _train(args: argparse.Namespace, comm) -> int:
    import snncc
    from snncc.errors import SnnccError, TrainingError

    def say(*a, **kw) -> None:  # rank 0 speaks for the job
        if comm.is_root:
            print(*a, **kw)

    cfg = resolve(args)
    if cfg.export_nir and cfg.model != "lif":
        say("snncc train: --export-nir needs --model lif: NIR has no adaptive neuron (docs/nir.md)")
        return 2
    cfg.out = comm.bcast(cfg.out)  # the default name has the time in it
    run = Path(args.resume or cfg.out)
    if comm.is_root:
        run.mkdir(parents=True, exist_ok=True)
    try:
        train, test = comm.guarded(lambda: load_data(cfg), "loading the data")
    except FileNotFoundError as err:  # DatasetNotFoundError carries the instructions
        print(f"snncc train: {err}", file=sys.stderr)
        return 2
    ckpt = run / "checkpoint.snncc"
    if args.resume:
        model = snncc.load(ckpt, backend=cfg.backend, devices=cfg.devices)
        done = int(model.progress.get("epoch", 0))
        remaining = max(cfg.epochs - done, 0)
        say(f"resuming {run} after epoch {done}; {remaining} epochs to go")
    else:
        if comm.is_root:
            (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        net = build_network(cfg, train.n_inputs, train.n_classes)
        share = comm.max_share(cfg.batch_size)  # the global batch is split by rank first
        per_device = max(1, -(-share // len(cfg.devices or [0])))
        rule = snncc.rules.EProp(readout="output", c_reg=cfg.c_reg, f_target=10.0)
        model = snncc.compile(
            net,
            batch_size=per_device,
            backend=cfg.backend,
            rule=rule,
            # cosine decay to 0 over the run: the last epochs settle instead of oscillating
            # (without it the digits' final accuracy varied 89-94 % with the seed)
            optimizer=snncc.optim.Adam(
                cfg.lr, decay_steps=cfg.epochs * -(-len(train) // cfg.batch_size)
            ),
            devices=cfg.devices,
        )
        remaining = cfg.epochs
    kind = "recurrent" if cfg.recurrent else "feed-forward"
    ranks = f", {comm.size} MPI ranks" if comm.parallel else ""
    say(
        f"training {cfg.model.upper()} x {cfg.neurons} ({kind}) on {train} with eProp, "
        f"backend {cfg.backend}{ranks}; run directory {run}"
    )

    def log(record: dict) -> None:
        if args.no_progress:
            print(
                " ".join(
                    f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in record.items()
                ),
                flush=True,
            )
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        _write_csv(run)

    try:
        model.fit(
            train,
            epochs=remaining,
            validation=test,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            checkpoint=str(ckpt),
            progress=not args.no_progress,
            on_epoch=log,
        )
    except TrainingError as err:  # the loss is global: every rank stops here
        say(f"snncc train: stopped: {err}\nThe last good checkpoint is {ckpt}.", file=sys.stderr)
        return 1
    except SnnccError as err:
        if comm.parallel:  # run_train tells a failure of all ranks from one of this rank
            raise
        print(f"snncc train: {err}", file=sys.stderr)
        return 2
    final = model.evaluate(test)
    say(f"test accuracy {final.get('accuracy', float('nan')):.4f}, loss {final['loss']:.4f}")
    if comm.is_root:
        plot_run(run, model, test)
        if cfg.export_nir:
            snncc.nir.export(model, cfg.export_nir)
            say(f"wrote the trained network as NIR to {cfg.export_nir}")
    return 0


def _write_csv(run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "epoch", k))
    with open(run / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def plot_run(run: Path, model, test) -> None:
    """learning_curves.png and raster.png (hidden spikes of the first test example)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    if rows:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
        ep = [r["epoch"] for r in rows]
        ax[0].plot(ep, [r["loss"] for r in rows], label="train")
        ax[0].plot(ep, [r.get("val_loss", np.nan) for r in rows], label="test")
        ax[0].set(xlabel="epoch", ylabel="loss per example")
        ax[1].plot(ep, [r.get("accuracy", np.nan) for r in rows], label="train")
        ax[1].plot(ep, [r.get("val_accuracy", np.nan) for r in rows], label="test")
        ax[1].set(xlabel="epoch", ylabel="accuracy")
        ax[1].legend()
        fig.tight_layout()
        fig.savefig(run / "learning_curves.png", dpi=100)
        plt.close(fig)
    spikes = model.run(test.x[:1], record=["hidden"])["hidden"][0]
    t, i = np.nonzero(spikes)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(t, i, "|k", markersize=2)
    ax.set(xlabel="time step", ylabel="hidden neuron", title=f"hidden spikes, label {test.y[0]}")
    fig.tight_layout()
    fig.savefig(run / "raster.png", dpi=100)
    plt.close(fig)
