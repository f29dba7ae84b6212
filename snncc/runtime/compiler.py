"""``snncc.compile``: network (+ rule, optimiser) -> plan -> sources -> programs -> model."""

from __future__ import annotations

from collections.abc import Sequence

from snncc.codegen.plan import build_plan
from snncc.codegen.render import render
from snncc.errors import ModelError
from snncc.model.network import Network
from snncc.runtime.model import CompiledModel

BACKENDS = ("cpu", "cuda")


def load_program(backend: str, plan, sources, device: int = 0):
    if backend == "cpu":
        from snncc.backends.cpu import CpuProgram

        return CpuProgram(plan, sources)
    from snncc.backends.cuda import CudaProgram

    return CudaProgram(plan, sources, device=device)


def compile(  # noqa: A001 - the public name the API promises
    net: Network,
    batch_size: int = 32,
    backend: str = "cpu",
    device: int = 0,
) -> CompiledModel:
    """Compile ``net`` into batched float32 kernels for ``backend`` ("cpu" or "cuda")."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ModelError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not any(p.is_input for p in net.populations.values()):
        raise ModelError("the network has no input population; add one with net.add_input")
    plan = build_plan(net, batch_size)
    sources = render(plan, backend)
    return CompiledModel(net, plan, [load_program(backend, plan, sources, device)])


def generate(net: Network, backend: str = "cpu", batch_size: int = 32) -> dict[str, str]:
    """The sources ``compile`` would build, without compiling them."""
    return render(build_plan(net, batch_size), backend)


__all__: Sequence[str] = ["compile", "generate"]
