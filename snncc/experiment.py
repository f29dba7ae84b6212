"""``snncc train``: build an eProp network for a dataset, train it, log and checkpoint a run.

A run directory holds config.json (the resolved configuration), metrics.jsonl and metrics.csv
(one row per epoch: training loss and accuracy, the validation split's, the epoch's wall time
and examples/s; then one row with the test set's, evaluated once at the end),
checkpoint.snncc (written atomically after every epoch), and PNG plots: learning_curves.png,
raster.png (hidden spikes of one test example) and readout.png (readout traces of a few).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from snncc.arguments import (
    count,
    devices,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
)
from snncc.errors import CliError

#: Per-dataset defaults; the command line overrides them.
DEFAULTS = {
    # digits: 40-step sequences, so a shorter adaptation time constant; no refractory period
    # (measured: 5 ms costs ~3 points here). The others follow mlGeNN (eprop.md).
    "digits": dict(neurons=256, epochs=30, batch_size=32, lr=2e-3, tau_a=200.0, refractory=0.0),
    "shd": dict(neurons=256, epochs=100, batch_size=512, lr=1e-3, tau_a=2000.0, refractory=5.0),
    "ssc": dict(neurons=256, epochs=100, batch_size=512, lr=1e-3, tau_a=2000.0, refractory=5.0),
    "smnist": dict(neurons=256, epochs=100, batch_size=512, lr=1e-3, tau_a=2000.0, refractory=5.0),
}
#: Options a resumed run may change; every other one must match the run's config.json.
RESUMABLE = ("epochs", "backend", "devices", "data_dir")


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
    validation: float = 0.1
    export_nir: str | None = None
    rule: str = "eprop"
    train_subset: int | None = None
    pixel_steps: int = 2


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
    elif cfg.model == "adlif":  # SE-adLIF (Baronig et al. 2024), its parameters trained
        cell = neurons.AdLIF(
            tau_m=20.0,
            tau_w=cfg.tau_a,
            v_th=0.6,
            refractory=cfg.refractory,
            trainable=("tau_m", "tau_w", "a", "b"),
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
    """(train, validation or None, test): the validation split is carved from the training
    set (stratified, by the seed), so the test set is touched once, at the end."""
    from snncc import data

    if cfg.dataset == "digits":
        train, test = (
            data.load_digits("train", seed=cfg.seed),
            data.load_digits("test", seed=cfg.seed),
        )
        if cfg.train_subset is not None:
            train = train.subset(cfg.train_subset)
    else:
        # only the subset is converted: the dense Fashion-MNIST train set alone is 3.7 GB
        encoding = {"duplicate": cfg.pixel_steps == 2} if cfg.dataset == "smnist" else {}
        train = data.load(
            cfg.dataset, cfg.data_dir, split="train", limit=cfg.train_subset, **encoding
        )
        test = data.load(cfg.dataset, cfg.data_dir, split="test", **encoding)
    if cfg.validation > 0:
        train, val = train.split(cfg.validation, seed=cfg.seed)
        return train, val, test
    return train, None, test


# --------------------------------------------------------------------------- arguments
def _per_dataset(key: str) -> str:
    values = {name: d[key] for name, d in DEFAULTS.items()}
    if len(set(values.values())) == 1:
        return str(next(iter(values.values())))
    return ", ".join(f"{v:g} ({k})" for k, v in values.items())


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        choices=list(DEFAULTS),
        default=None,  # not set unless given: a resumed run keeps its own
        help="dataset to train on (default: digits, the embedded spiking digits)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="directory with the dataset's files (SHD/SSC .h5, MNIST idx); default: none",
    )
    p.add_argument(
        "--neurons",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"hidden neurons (default: {_per_dataset('neurons')})",
    )
    p.add_argument(
        "--model",
        choices=["alif", "lif", "adlif"],
        default=None,
        help="hidden neuron model: alif (LSNN), lif, or adlif (SE-adLIF, its time constants and "
        "adaptation trained per neuron) (default: alif)",
    )
    p.add_argument(
        "--rule",
        choices=["eprop", "bptt"],
        default=None,
        help="learning rule: eprop (Bellec et al.) or bptt (exact surrogate-gradient BPTT of "
        "the same update) (default: eprop)",
    )
    p.add_argument(
        "--recurrent",
        dest="recurrent",
        action="store_true",
        default=None,
        help="recurrent hidden layer (the default)",
    )
    p.add_argument(
        "--feedforward",
        dest="recurrent",
        action="store_false",
        help="no recurrent connections",
    )
    p.add_argument(
        "--epochs",
        type=count,
        default=None,
        metavar="N",
        help=f"epochs to train; with --resume, the run's total (default: {_per_dataset('epochs')})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"examples per optimiser step (default: {_per_dataset('batch_size')})",
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help=f"Adam learning rate, decayed to 0 over the run by a cosine "
        f"(default: {_per_dataset('lr')})",
    )
    p.add_argument(
        "--tau-a",
        type=positive_float,
        default=None,
        metavar="MS",
        help="adaptation time constant in ms: ALIF's tau_a, adLIF's tau_w (its initial value, "
        f"then trained) (default: {_per_dataset('tau_a')})",
    )
    p.add_argument(
        "--refractory",
        type=non_negative_float,
        default=None,
        metavar="MS",
        help=f"refractory period of the hidden neurons in ms, 0 for none "
        f"(default: {_per_dataset('refractory')})",
    )
    p.add_argument(
        "--validation",
        type=fraction,
        default=None,
        metavar="F",
        help="fraction of the training set held out for per-epoch validation; the test set is "
        "evaluated once, at the end (default: 0.1)",
    )
    p.add_argument(
        "--train-subset",
        type=positive_int,
        default=None,
        metavar="N",
        help="train on the first N examples of the training set only (the validation split "
        "is carved from them; the test set stays whole) (default: all)",
    )
    p.add_argument(
        "--pixel-steps",
        type=int,
        choices=[1, 2],
        default=None,
        help="smnist only: time steps per pixel, 1 (784 steps per image) or 2 (tonic's "
        "duplicate=True, as mlGeNN: 1568 steps) (default: 2)",
    )
    p.add_argument(
        "--backend", choices=["cpu", "cuda"], default=None, help="where to train (default: cpu)"
    )
    p.add_argument(
        "--devices",
        type=devices,
        default=None,
        metavar="LIST",
        help="comma-separated devices to split each batch across, e.g. 0,1 (default: 0)",
    )
    p.add_argument(
        "--seed", type=count, default=None, help="seed of weights and shuffling (default: 0)"
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="run directory, which must not hold a run yet "
        "(default: runs/<dataset>-<model>-<time>)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run in DIR from its last checkpoint (default: start a new run)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they are shown only on a terminal anyway); one line per epoch",
    )
    p.add_argument(
        "--export-nir",
        metavar="FILE",
        default=None,
        help="write the trained network to FILE as a NIR graph (docs/nir.md); needs --model "
        "lif and trains NIR's LIF (reset to 0, no refractory period) with an LI readout "
        "(default: no export)",
    )


def _given(args: argparse.Namespace) -> dict:
    """The TrainConfig options the command line set explicitly."""
    names = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def resolve(args: argparse.Namespace) -> TrainConfig:
    """The run's configuration: config.json of a resumed run, else defaults + flags."""
    given = _given(args)
    if args.resume:
        run = Path(args.resume)
        if not run.is_dir():
            what = "is a file, not a run directory" if run.exists() else "no such run directory"
            raise CliError(f"--resume {run}: {what}; give the run's directory (its --out)")
        try:
            saved = json.loads((run / "config.json").read_text())
            cfg = TrainConfig(**saved)
            _check_saved(cfg)
        except FileNotFoundError:
            raise CliError(
                f"--resume {run}: it has no config.json; is it a run directory?"
            ) from None
        except (ValueError, TypeError) as err:
            raise CliError(
                f"--resume {run}: its config.json is damaged or not a run's configuration "
                f"({err}); restore it or start a new run"
            ) from None
        for key, value in given.items():
            if key not in RESUMABLE and value != getattr(cfg, key):
                flag = "--" + key.replace("_", "-")
                raise CliError(
                    f"{flag} {value} differs from the resumed run's {getattr(cfg, key)} "
                    f"({run}/config.json); a resumed run keeps its configuration (it may change "
                    f"{', '.join('--' + k.replace('_', '-') for k in RESUMABLE)}). Drop {flag}, "
                    "or start a new run"
                )
        for key in RESUMABLE:
            if key in given:
                setattr(cfg, key, given[key])
        return cfg
    dataset = given.get("dataset", "digits")
    model = given.get("model", "alif")
    _refuse_idle_flags(given, dataset, model)
    d = DEFAULTS[dataset]
    out = args.out or f"runs/{dataset}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"
    values = {**asdict(TrainConfig()), **d, **given, "out": out, "model": model}
    return TrainConfig(**{k: values[k] for k in asdict(TrainConfig())})


def _refuse_idle_flags(given: dict, dataset: str, model: str) -> None:
    """A flag that would change nothing in this run is refused, not silently ignored."""
    nir = "export_nir" in given  # NIR's LIF: no adaptation, no refractory period
    idle = {
        "pixel_steps": (
            dataset != "smnist",
            f"sets the SMNIST encoding; --dataset {dataset} has none",
            "train with --dataset smnist",
        ),
        "tau_a": (
            model == "lif" or nir,
            f"sets the adaptation time constant; {'--export-nir' if nir else '--model lif'} "
            "trains neurons without adaptation",
            "train with --model alif or adlif",
        ),
        "refractory": (
            nir,
            "sets the refractory period; --export-nir trains NIR's LIF, which has none",
            "train without --export-nir",
        ),
    }
    for key, (unused, why, fix) in idle.items():
        if key in given and unused:
            flag = "--" + key.replace("_", "-")
            raise CliError(f"{flag} {why}. Drop {flag}, or {fix}")


def _check_saved(cfg: TrainConfig) -> None:
    """A resumed run's config.json, checked like the flags that wrote it: a hand-edited value
    is refused here, naming the file, not deep inside the network builder."""
    checks = {
        "neurons": positive_int,
        "epochs": count,
        "batch_size": positive_int,
        "lr": positive_float,
        "tau_a": positive_float,
        "refractory": non_negative_float,
        "validation": fraction,
        "seed": count,
    }
    for key, check in checks.items():
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"'{key}' is {value!r}, not a number")
        try:
            check(str(value))
        except argparse.ArgumentTypeError as err:
            raise ValueError(f"'{key}': {err}") from None
    if cfg.train_subset is not None:  # null (all examples) or a count like --train-subset's
        subset = cfg.train_subset
        if isinstance(subset, bool) or not isinstance(subset, int) or subset <= 0:
            raise ValueError(f"'train_subset' is {subset!r}, not null or a positive integer")
    choices = {
        "dataset": list(DEFAULTS),
        "model": ["alif", "lif", "adlif"],
        "rule": ["eprop", "bptt"],
        "backend": ["cpu", "cuda"],
        "pixel_steps": [1, 2],
    }
    for key, options in choices.items():
        value = getattr(cfg, key)
        if isinstance(value, bool) or value not in options:  # true == 1 is no pixel count
            names = ", ".join(map(str, options))
            raise ValueError(f"'{key}' is {value!r}, not one of {names}")
    if not isinstance(cfg.recurrent, bool):
        raise ValueError(f"'recurrent' is {cfg.recurrent!r}, not true or false")
    if cfg.devices is not None:
        if not isinstance(cfg.devices, list) or not all(type(d) is int for d in cfg.devices):
            raise ValueError(f"'devices' is {cfg.devices!r}, not a list of device numbers")
        try:
            devices(",".join(map(str, cfg.devices)))
        except argparse.ArgumentTypeError as err:
            raise ValueError(f"'devices': {err}") from None


def _check_out(run: Path) -> None:
    if run.exists() and not run.is_dir():
        raise CliError(f"--out {run} is a file; give a directory for the run")
    if (run / "config.json").exists() or (run / "checkpoint.snncc").exists():
        raise CliError(
            f"--out {run} holds a run already; continue it with --resume {run}, or choose "
            "another --out (nothing was overwritten)"
        )


# --------------------------------------------------------------------------------- run
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
    from snncc.data import DatasetNotFoundError
    from snncc.errors import TrainingError
    from snncc.model.spec import first_difference, structure

    def say(*a, **kw) -> None:  # rank 0 speaks for the job
        if comm.is_root:
            print(*a, **kw)

    cfg = resolve(args)
    if cfg.export_nir and cfg.model != "lif":
        raise CliError("--export-nir needs --model lif: NIR has no adaptive neuron (docs/nir.md)")
    cfg.out = comm.bcast(cfg.out)  # the default name has the time in it
    run = Path(args.resume or cfg.out)
    ckpt = run / "checkpoint.snncc"
    if args.resume and not ckpt.is_file():
        raise CliError(
            f"--resume {run}: it has no checkpoint.snncc (no epoch finished?); start the run "
            "again in a new --out"
        )
    if not args.resume:
        comm.guarded(lambda: _check_out(run), "checking --out", run=comm.is_root)
    try:
        train, val, test = comm.guarded(lambda: load_data(cfg), "loading the data")
    except DatasetNotFoundError as err:  # carries the instructions
        print(f"snncc train: {err}", file=sys.stderr)
        return 2
    net = build_network(cfg, train.n_inputs, train.n_classes)
    if args.resume:
        model = snncc.load(ckpt, backend=cfg.backend, devices=cfg.devices)
        diff = first_difference(structure(model.net), structure(net))
        if diff is not None:
            raise CliError(
                f"--resume {run}: its checkpoint holds another network than its config.json "
                f"describes ({diff}, checkpoint vs config); restore the run's files"
            )
        done = int(model.progress.get("epoch", 0))
        remaining = max(cfg.epochs - done, 0)
        say(f"resuming {run} after epoch {done}; {remaining} epochs to go")
    else:
        share = comm.max_share(cfg.batch_size)  # the global batch is split by rank first
        per_device = max(1, -(-share // len(cfg.devices or [0])))
        rules = {"eprop": snncc.rules.EProp, "bptt": snncc.rules.BPTT}
        rule = rules[cfg.rule](readout="output", c_reg=cfg.c_reg, f_target=10.0)
        model = snncc.compile(
            net,
            batch_size=per_device,
            backend=cfg.backend,
            rule=rule,
            # cosine decay to 0 over the run: the last epochs settle instead of oscillating
            # (without it the digits' final accuracy varied 89-94 % with the seed)
            optimizer=snncc.optim.Adam(
                cfg.lr, decay_steps=max(1, cfg.epochs * -(-len(train) // cfg.batch_size))
            ),
            devices=cfg.devices,
        )
        if comm.is_root:  # only now: a run that failed to start (e.g. bad devices) leaves no
            run.mkdir(parents=True, exist_ok=True)  # config.json that blocks its --out
            (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        remaining = cfg.epochs
    kind = "recurrent" if cfg.recurrent else "feed-forward"
    ranks = f", {comm.size} MPI ranks" if comm.parallel else ""
    held = f", validating on {len(val)}" if val is not None else ""
    say(
        f"training {cfg.model.upper()} x {cfg.neurons} ({kind}) on {train}{held} with "
        f"{'eProp' if cfg.rule == 'eprop' else 'BPTT'}, "
        f"backend {cfg.backend}{ranks}; run directory {run}"
    )

    def log(record: dict) -> None:
        if args.no_progress or not sys.stderr.isatty():
            print(_line(record), flush=True)
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        _write_csv(run)

    try:
        model.fit(
            train,
            epochs=remaining,
            validation=val,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            checkpoint=str(ckpt),
            progress=False if args.no_progress else None,
            on_epoch=log,
        )
    except TrainingError as err:  # the loss is global: every rank stops here
        say(f"snncc train: stopped: {err}", file=sys.stderr)
        return 1
    if not ckpt.exists() and comm.is_root:  # --epochs 0: the initial model is the run's
        model.save(ckpt)
    final = model.evaluate(test)
    if comm.is_root:
        log({f"test_{k}": v for k, v in final.items()})
    say(f"test accuracy {final.get('accuracy', float('nan')):.4f}, loss {final['loss']:.4f}")
    if comm.is_root:
        plot_run(run, model, test, cfg, final)
        if cfg.export_nir:
            snncc.nir.export(model, cfg.export_nir)
            say(f"wrote the trained network as NIR to {cfg.export_nir}")
    return 0


def _line(record: dict) -> str:
    return " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
    )


def _rows(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _write_csv(run: Path) -> None:
    rows = _rows(run)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "epoch", k))
    with open(run / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def plot_run(run: Path, model, test, cfg: TrainConfig, final: dict) -> None:
    """learning_curves.png, raster.png (hidden spikes of the first test example) and
    readout.png (the readout's traces for the first test examples)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = final.get("accuracy")
    title = f"{cfg.model.upper()} x {cfg.neurons} on {cfg.dataset}" + (
        f": test accuracy {100 * acc:.1f} %" if acc is not None else ""
    )
    rows = [r for r in _rows(run) if "epoch" in r]
    if rows:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        ep = [r["epoch"] for r in rows]
        for panel, key, label in ((0, "loss", "loss per example"), (1, "accuracy", "accuracy")):
            ax[panel].plot(ep, [r.get(key, np.nan) for r in rows], "o-", label="train")
            if any(f"val_{key}" in r for r in rows):
                vals = [r.get(f"val_{key}", np.nan) for r in rows]
                ax[panel].plot(ep, vals, "s-", label="validation")
            if key in final:
                ax[panel].axhline(final[key], color="k", ls="--", label="test (end)")
            ax[panel].set(xlabel="epoch", ylabel=label)
            ax[panel].legend()
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(run / "learning_curves.png", dpi=100)
        plt.close(fig)
    n = min(3, len(test))
    rec = model.run(test.x[:n], record=["hidden", "output.v"])
    t, i = np.nonzero(rec["hidden"][0])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(t, i, "|k", markersize=2, label="spike")
    ax.set(xlabel="time step", ylabel="hidden neuron")
    ax.legend(loc="upper right")
    ax.set_title(f"hidden spikes of test example 0 (label {test.y[0]})\n{title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(run / "raster.png", dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False)
    for k, ax in enumerate(axes[0]):
        v = rec["output.v"][k]
        others = [c for c in range(v.shape[1]) if c != test.y[k]]
        for c in others:
            ax.plot(v[:, c], lw=0.8, label="other classes" if c == others[0] else None)
        ax.plot(v[:, test.y[k]], lw=2.2, color="k", label=f"class {test.y[k]} (true)")
        ax.set(xlabel="time step", ylabel="readout v", title=f"test example {k}, label {test.y[k]}")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"readout traces; {title}")
    fig.tight_layout()
    fig.savefig(run / "readout.png", dpi=100)
    plt.close(fig)
