"""Targets: what each backend is, as data, in one registry; and the kernel manifest.

A Target says which templates a backend renders, how its kernels keep spike histories, which
eProp strategies it generates and which Program class loads it. Codegen reads the target, and
writes the plan's *manifest*: for every pass (simulate, gradient, evaluate, optimize, ...) the
kernels to launch, in order, with their launch shape. The loader (backends/) launches what the
manifest says and re-derives nothing. Adding a backend is one entry here, its templates and its
Program.
"""

from __future__ import annotations

from dataclasses import dataclass

from snncc.errors import ModelError


@dataclass(frozen=True)
class Launch:
    """One kernel launch of a pass. ``grid``: blocks per dimension, an int or "B" (the batch);
    ``block``: threads per block; ``shared``: dynamic shared memory (bytes); ``per_step``: the
    kernel is launched once per time step (its arguments are t and T, not B and T)."""

    name: str
    grid: tuple[int | str, ...] = (1,)
    block: int = 1
    shared: int = 0
    per_step: bool = False

    def __str__(self) -> str:
        shape = f" <<<{self.grid}, {self.block}, {self.shared}>>>" if self.block > 1 else ""
        return f"{self.name}{shape}{' per step' if self.per_step else ''}"


@dataclass(frozen=True)
class Target:
    name: str
    sources: tuple[str, ...]  # templates/<name>/<source>.j2 -> <source>
    program: str  # "module:Class" of the Program that loads the sources
    strategies: tuple[str, ...] = ("factorized",)
    history_bits: bool = True  # spike histories as (B, T, words) uint32, else float per neuron
    input_history: bool = False  # inputs get a history too (else their bits are read)
    fused_q: bool = False  # Q is added to the gradient as computed, never stored
    #: the batch is cut into this many parts (fewer for smaller batches), each summing its own
    #: gradients, which are then added in part order. Threads take parts dynamically, so one
    #: thread slowed by other work delays no one, and the sum does not depend on the thread
    #: count. 8 parts balance 2-8 threads; each costs one gradient-sized buffer and one add.
    grad_parts: int = 0
    #: a loop over fewer elements than this (a gradient reduction, an optimiser step on a small
    #: matrix) runs on one thread: a parallel region ends in a barrier, and a barrier waits a
    #: whole scheduler time slice (milliseconds) for a thread whose core another program shares,
    #: far longer than such a loop takes alone (measured: 2 threads 2.5-8x slower than 1 beside
    #: a busy core with a parallel region per optimiser parameter; benchmarks/busy_core.py)
    serial_below: int = 1 << 20
    ring_delays: bool = True  # delays of 2+ steps (and delayed reads of earlier populations)
    exact_rules: bool = True  # BPTT (its signal crosses populations)
    neuron_params: bool = True  # trained parameters of spiking populations


TARGETS: dict[str, Target] = {
    "cpu": Target(
        "cpu",
        sources=("network.cpp",),
        program="snncc.backends.cpu:CpuProgram",
        strategies=("factorized", "online"),
        fused_q=True,
        grad_parts=8,
    ),
    "cuda": Target(
        "cuda",
        sources=("network.cu",),
        program="snncc.backends.cuda:CudaProgram",
        history_bits=False,
        input_history=True,
        ring_delays=False,
        exact_rules=False,
        neuron_params=False,
    ),
}


def get_target(name: object) -> Target:
    if name not in TARGETS:
        raise ModelError(f"unknown backend '{name}'; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


def _blocks(n: int, per_block: int) -> int:
    return max(1, (n + per_block - 1) // per_block)


def manifest(plan, target: Target) -> dict[str, list[Launch]]:
    """The passes of ``plan`` on ``target``: pass name -> kernels in launch order."""
    return {"cpu": _cpu_manifest, "cuda": _cuda_manifest}[target.name](plan)


def _cpu_manifest(plan) -> dict[str, list[Launch]]:
    out = {"simulate": [Launch("simulate")]}
    tr = plan.training
    if tr is None:
        return out
    out |= {
        # forward and backward fused per batch element: its histories are still in cache
        "gradient": [Launch("forward_backward"), Launch("accumulate")],
        "evaluate": [Launch("evaluate")],  # no histories written
        "forward": [Launch("forward")],  # the unfused passes, for profiling
        "backward": [Launch("backward"), Launch("accumulate")],
    }
    if tr.online is not None:
        out["online"] = [Launch("forward_online"), Launch("reduce_online")]
    if tr.optimizer is not None:
        out["optimize"] = [Launch("optimize")]
    return out


def _cuda_manifest(plan) -> dict[str, list[Launch]]:
    def step(prefix: str) -> list[Launch]:
        out = []
        for pop in plan.populations:
            if pop.is_input:
                out.append(Launch(f"{prefix}inject_{pop.name}", (1, "B"), 256, per_step=True))
            else:
                grid = (_blocks(pop.size, 128), "B")
                out.append(Launch(f"{prefix}update_{pop.name}", grid, 128, per_step=True))
        return out

    out = {"simulate": step("")}
    tr = plan.training
    if tr is None:
        return out
    r = tr.readout
    forward = step("train_") + [Launch(f"error_{r.name}", (1, "B"), 32, per_step=True)]
    backward = [Launch(f"backward_{r.name}", (_blocks(r.size, 64), "B"), 64)]
    backward += [
        Launch(f"backward_{h.name}", (_blocks(h.size, 128), "B"), 128) for h in tr.hidden.values()
    ]
    acc = []
    for q in tr.projections:
        size = next(s for _, n, s in tr.params if n == q.name)
        grid = (
            (_blocks(size, 128), 1) if q.sparse else (_blocks(q.n_post, 128), _blocks(q.n_pre, 16))
        )
        acc.append(Launch(f"accumulate_{q.name}", grid, 128))
    acc += [Launch(f"reduce_{r.name}_{p}", (_blocks(r.size, 64), 1), 64) for p in r.params]
    out |= {"forward": forward, "evaluate": forward, "gradient": forward + backward + acc}
    if tr.optimizer is not None:
        out["optimize"] = [
            Launch(f"optimize_{name}", (_blocks(size, 256), 1), 256) for _, name, size in tr.params
        ]
    return out
