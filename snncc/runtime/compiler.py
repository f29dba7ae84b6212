"""``snncc.compile``: network (+ rule, optimiser) -> plan -> sources -> programs -> model."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from snncc.backends.cache import content_hash
from snncc.codegen.names import template_dir
from snncc.codegen.plan import build_plan
from snncc.codegen.render import render
from snncc.codegen.targets import get_target, manifest
from snncc.codegen.training_code import training_context
from snncc.codegen.training_plan import add_training
from snncc.errors import ModelError, SnnccError
from snncc.model.network import Network
from snncc.runtime import plan_cache
from snncc.runtime.model import CompiledModel


def load_program(backend: str, plan, sources, device: int = 0):
    """The Program class the target names, loading ``sources`` onto ``device``."""
    module, _, cls = get_target(backend).program.partition(":")
    return getattr(importlib.import_module(module), cls)(plan, sources, device=device)


def plan_and_render(net: Network, batch_size: int, backend: str, rule=None, optimizer=None):
    """Network (+ rule) -> (plan, training plan or None, sources)."""
    target = get_target(backend)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ModelError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(net, Network):
        raise ModelError(f"compile needs a snncc.Network, got {type(net).__name__}")
    if not any(p.is_input for p in net.populations.values()):
        raise ModelError("the network has no input population; add one with net.add_input")
    if optimizer is not None and rule is None:
        raise ModelError("an optimizer needs a learning rule: pass rule=snncc.rules.EProp(...)")
    _check_options(rule, optimizer)
    key = _spec_key(net, batch_size, backend, rule, optimizer)
    cached = plan_cache.load(key)
    if cached is not None:
        return cached
    plan = build_plan(net, batch_size, target.name)
    extra, tp = {}, None
    if rule is not None:
        tp = add_training(plan, rule, optimizer, target)
        extra = training_context(plan, tp, target)
    if target.prepare:  # the target's own buffers, and what its templates need of them
        module, _, fn = target.prepare.partition(":")
        extra |= getattr(importlib.import_module(module), fn)(plan)
    plan.manifest = manifest(plan, target)
    sources = render(plan, target, extra)
    plan_cache.store(key, plan, tp, sources)
    return plan, tp, sources


def _check_options(rule: object, optimizer: object) -> None:
    """rule and optimizer are instances of snncc's classes (a class or a name is a mistake)."""
    from snncc.runtime.optim import SGD, Adam
    from snncc.symbolic.eprop import RuleOptions

    if rule is not None and not isinstance(rule, RuleOptions):
        raise ModelError(
            "rule must be a learning rule such as snncc.rules.EProp(readout='output') or "
            f"snncc.rules.BPTT(readout='output'), got {rule!r}"
        )
    if optimizer is not None and not isinstance(optimizer, (SGD, Adam)):
        raise ModelError(
            f"optimizer must be snncc.optim.Adam(lr) or snncc.optim.SGD(lr), got {optimizer!r}"
        )


@functools.cache
def _code_version() -> str:
    """Hash of snncc's own code-generation sources and templates: a change invalidates plans."""
    root = Path(__file__).resolve().parents[1]
    files = sorted(root.rglob("*.py")) + sorted(template_dir().rglob("*.j2"))
    return content_hash(*(f.read_text() for f in files))


def _spec_key(net, batch_size, backend, rule, optimizer) -> str | None:
    """Content key of a compile request: the network's structure (not its weights), the batch
    capacity, the backend, the rule and the optimiser, as data. None if they cannot be
    described as data (then nothing is cached)."""
    from snncc.model.spec import structure
    from snncc.runtime.checkpoint import options_to_data

    try:
        request = [
            structure(net),
            batch_size,
            backend,
            options_to_data(rule),
            options_to_data(optimizer),
        ]
        text = json.dumps(request, sort_keys=True, allow_nan=False)
    except (SnnccError, TypeError, ValueError):  # e.g. a sympy construct with no text form
        return None
    return content_hash(_code_version(), text)


def compile(  # noqa: A001 - the public name the API promises
    net: Network,
    batch_size: int = 32,
    backend: str = "cpu",
    device: int | None = None,
    rule=None,
    optimizer=None,
    devices: Sequence[int] | None = None,
) -> CompiledModel:
    """Compile ``net`` into batched float32 kernels for ``backend`` ("cpu" or "cuda").

    With ``rule`` (e.g. ``snncc.rules.EProp(readout="output")``) and ``optimizer``
    (``snncc.optim.Adam(1e-3)``) the model can also train.

    ``devices=[0, 1, ...]`` splits each batch across several devices of this process (one
    program each; for "cpu" separate instances), ``batch_size`` being the capacity of each.
    ``device`` defaults to 0, or under MPI with backend "cuda" to the rank's index on its node
    (one rank per GPU). Under MPI rank 0 compiles first and the other ranks then load its
    build from the content-hash cache; the ranks start from rank 0's weights.
    """
    from snncc.runtime.parallel import world

    comm = world()
    devs = _devices(device, devices, backend, comm)
    plan, tp, sources = plan_and_render(net, batch_size, backend, rule, optimizer)
    programs = comm.first_rank0(
        lambda: [load_program(backend, plan, sources, d) for d in devs], "compiling"
    )
    model = CompiledModel(net, plan, programs, training=tp, optimizer=optimizer)
    model._comm = comm
    model.sync_replicas()  # e.g. a network built without a seed differs per rank
    return model


def _devices(device: object, devices: object, backend: str, comm) -> list:
    """The device indices to compile for, checked (CUDA checks that each exists when it loads)."""
    if devices is not None and device is not None:
        raise ModelError(
            f"give device={device!r} or devices={devices!r}, not both (devices=[...] splits "
            "each batch across several devices)"
        )
    if devices is not None:
        if not isinstance(devices, (list, tuple)):
            raise ModelError(
                f"devices must be a list of device indices such as [0, 1], got {devices!r}"
            )
        devs = list(devices)
    elif device is not None:
        devs = [device]
    else:
        devs = [comm.local_rank if comm.parallel and backend == "cuda" else 0]
    _check_devices(devs, backend)
    return devs


def _check_devices(devs: list, backend: str) -> None:
    """Device indices: distinct integers >= 0."""
    if not devs:
        raise ModelError("devices is empty; give at least one device, e.g. devices=[0]")
    for d in devs:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0:
            raise ModelError(f"devices: {d!r} is not a device index; give integers >= 0")
    if len(set(devs)) != len(devs):
        raise ModelError(f"devices {devs} name a device twice; give each device once")
    if backend == "cpu" and sorted(devs) != list(range(len(devs))):
        raise ModelError(
            f"devices {devs}: on the CPU a device is one more instance of the program, and they "
            f"are numbered from 0: give devices={list(range(len(devs)))}"
        )


def generate(
    net: Network, backend: str = "cpu", batch_size: int = 32, rule=None, optimizer=None
) -> dict[str, str]:
    """The sources ``compile`` would build, without compiling them."""
    return plan_and_render(net, batch_size, backend, rule, optimizer)[2]


__all__: Sequence[str] = ["compile", "generate"]
