"""The ``snncc`` command line.

    snncc inspect SPEC.py --out DIR [--backend cpu|cuda] [--batch-size N] [--plan]

A SPEC.py is the user's own Python file that builds a network and binds it to the name ``net``.

Subcommands are registered from :data:`COMMANDS`, a list of ``(name, add, run)``: ``add(parser)``
adds the subcommand's arguments to its own ``argparse`` parser, ``run(args)`` does the work and
returns the exit status. To add a subcommand (``train``, ``bench``, ...) write those two functions
and append one entry to ``COMMANDS``; ``main`` needs no change. Errors meant for the user are
raised as :class:`CliError` (or any :class:`snncc.SnnccError`) and printed without a traceback.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from snncc.arguments import positive_int
from snncc.errors import CliError, SnnccError

__all__ = ["CliError", "build_parser", "load_spec", "main"]


# ----------------------------------------------------------------------------- spec files
def load_spec(path: str | Path, name: str = "net") -> object:
    """Run the user's spec file and return the object it binds to ``name`` (a Network)."""
    return _network(run_spec(path), Path(path), name)


def run_spec(path: str | Path) -> dict:
    """Run the user's spec file (it is the user's own Python program, run like ``python
    SPEC.py``) and return its namespace.

    The file runs as a module named ``__snncc_spec__`` (so an ``if __name__ == "__main__":``
    block does not run), with its own folder on ``sys.path`` so it can import its neighbours.
    """
    path = Path(path)
    if not path.is_file():
        raise CliError(
            f"spec file '{path}' not found; give the path of a Python file that defines 'net'"
        )
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        return runpy.run_path(str(path), run_name="__snncc_spec__")
    except SnnccError as err:
        raise CliError(f"{path}: {err}") from err
    except SystemExit as err:
        raise CliError(f"{path} called exit({err.code}) while being loaded") from None
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        raise CliError(f"running {path} failed:\n{_user_traceback(err, path)}") from err
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass


def _network(namespace: dict, path: Path, name: str = "net") -> object:
    from snncc.model.network import Network

    if name not in namespace:
        raise CliError(
            f"{path} does not define '{name}'; end it with e.g. "
            f"'{name} = snncc.Network(dt=1.0)' followed by add_input/add_population/connect"
        )
    obj = namespace[name]
    if not isinstance(obj, Network):
        raise CliError(
            f"{path}: '{name}' is a {type(obj).__name__}, not a snncc.Network; bind the network "
            f"itself to '{name}'"
        )
    return obj


def _user_traceback(err: BaseException, path: Path) -> str:
    """The traceback from the first frame in the spec file on (runpy's frames left out)."""
    tb = err.__traceback__
    target = str(path.resolve())
    while tb is not None and str(Path(tb.tb_frame.f_code.co_filename).resolve()) != target:
        tb = tb.tb_next
    lines = traceback.format_exception(type(err), err, tb if tb is not None else err.__traceback__)
    return "".join(lines).rstrip()


# -------------------------------------------------------------------------------- inspect
def add_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC.py", help="Python file that defines `net`")
    parser.add_argument(
        "--backend",
        choices=("cpu", "cuda"),
        default="cpu",
        help="backend whose sources to generate (default: cpu)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="folder to write the sources into (created if missing)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        metavar="N",
        help="batch capacity the sources are generated for (default: 32)",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="also print the kernel plan (buffers and discrete updates)",
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="generate the training kernels too (error, backward, accumulate, optimiser), for "
        "the spec's `rule` and `optimizer` if it defines them, else --rule with its defaults "
        "and Adam; writes training.txt (the rule's equations, derived traces included)",
    )
    parser.add_argument(
        "--rule",
        choices=("eprop", "bptt"),
        default="eprop",
        help="with --train and no `rule` in the spec: EProp or BPTT, readout 'output' or the "
        "network's one non-spiking population (default: eprop)",
    )


def run_inspect(args: argparse.Namespace) -> int:
    """Write the generated sources, the kernel plan, each population's discrete update and,
    with --train, the training kernels and the rule's derived equations."""
    import jinja2

    from snncc.runtime.compiler import plan_and_render

    namespace = run_spec(args.spec)
    net = _network(namespace, Path(args.spec))
    rule = optimizer = None
    if args.train:
        rule, optimizer = _training_of(namespace, args.spec)
        rule = rule if rule is not None else _default_rule(net, args.rule)
    try:
        plan, tp, sources = plan_and_render(net, args.batch_size, args.backend, rule, optimizer)
    except jinja2.TemplateNotFound as err:
        raise CliError(f"the {args.backend} backend has no template '{err.name}' yet") from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} is a file; give a folder for the sources")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"cannot create output folder '{out}': {err.strerror}") from None
    files: dict[str, str] = dict(sources)
    files["plan.txt"] = str(plan) + "\n"
    files["manifest.txt"] = "".join(
        f"{name}: {', '.join(str(k) for k in kernels)}\n" for name, kernels in plan.manifest.items()
    )
    for pop in plan.populations:
        if pop.update is not None:
            files[f"update_{pop.name}.txt"] = str(pop.update) + "\n"
    if tp is not None:
        files["training.txt"] = str(tp) + "\n"
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        written.append(path)
    if args.plan:
        print(plan)
        print()
    print(f"wrote {len(written)} files to {out}:")
    for path in written:
        print(f"  {path}")
    return 0


def _training_of(namespace: dict, path: str) -> tuple[object, object]:
    """The spec's own `rule` (or None) and `optimizer` (else Adam with its defaults)."""
    from snncc.symbolic.eprop import RuleOptions
    from snncc.symbolic.optim import SGD, Adam

    rule, optimizer = namespace.get("rule"), namespace.get("optimizer")
    if rule is not None and not isinstance(rule, RuleOptions):
        raise CliError(f"{path}: 'rule' is a {type(rule).__name__}, not snncc.rules.EProp/BPTT")
    if optimizer is not None and not isinstance(optimizer, (Adam, SGD)):
        raise CliError(f"{path}: 'optimizer' is a {type(optimizer).__name__}, not Adam/SGD")
    return rule, optimizer if optimizer is not None else Adam()


def _default_rule(net, kind: str):
    """EProp()/BPTT() reading out 'output', or the network's one non-spiking population."""
    import snncc

    readouts = [p.name for p in net.populations.values() if not p.model.spiking]
    name = "output" if "output" in readouts else (readouts[0] if len(readouts) == 1 else None)
    if name is None:
        raise CliError(
            "--train: which population is the readout? The spec has "
            f"{len(readouts)} non-spiking populations ({', '.join(readouts) or 'none'}); define "
            "`rule = snncc.rules.EProp(readout=...)` in the spec"
        )
    return (snncc.rules.BPTT if kind == "bptt" else snncc.rules.EProp)(readout=name)


# ---------------------------------------------------------------------------------- main
from snncc.bench import add_bench, run_bench  # noqa: E402 - kept beside the registry
from snncc.experiment import add_train, run_train  # noqa: E402 - kept beside the registry

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

#: (name, add arguments, run) per subcommand; the first line of run's docstring is its help.
COMMANDS: list[tuple[str, AddArguments, Run]] = [
    ("train", add_train, run_train),
    ("inspect", add_inspect, run_inspect),
    ("bench", add_bench, run_bench),
]


def build_parser() -> argparse.ArgumentParser:
    from snncc import __version__

    parser = argparse.ArgumentParser(
        prog="snncc",
        description="snncc: a code-generating compiler for spiking neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"snncc {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full Python traceback on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, add, run in COMMANDS:
        doc = (run.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc)
        add(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``snncc`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except SnnccError as err:
        if args.traceback:
            raise
        print(f"snncc {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
