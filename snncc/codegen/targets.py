"""Targets: what each backend is, as data, in one registry; and the kernel manifest.

A Target says which templates a backend renders, how its kernels keep spike histories, which
eProp strategies it generates and which Program class loads it. Codegen reads the target, and
writes the plan's *manifest*: for every pass (simulate, gradient, evaluate, optimize, ...) the
kernels to launch, in order, with their launch shape. The loader (backends/) launches what the
manifest says and re-derives nothing. Adding a backend is one entry here, its templates and its
Program.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from snncc.errors import ModelError


@dataclass(frozen=True)
class Launch:
    """One kernel launch of a pass, with the arguments (B, T). ``grid``: blocks per dimension,
    an int or "B" (the batch); ``block``: threads per block; ``shared``: dynamic shared memory
    (bytes); ``ready``: the gradient buffers that are final once this launch has run (a
    reducer may start on them)."""

    name: str
    grid: tuple[int | str, ...] = (1,)
    block: int = 1
    shared: int = 0
    ready: tuple[str, ...] = ()

    def __str__(self) -> str:
        shape = f" <<<{self.grid}, {self.block}, {self.shared}>>>" if self.block > 1 else ""
        return f"{self.name}{shape}"


@dataclass(frozen=True)
class Target:
    name: str
    sources: tuple[str, ...]  # templates/<name>/<source>.j2 -> <source>
    program: str  # "module:Class" of the Program that loads the sources
    strategies: tuple[str, ...] = ("factorized",)
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
    #: "module:function" adding the target's own buffers to a plan (after training was added)
    #: and returning extra template names; "" for none
    prepare: str = ""


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
        prepare="snncc.codegen.cuda_layout:add_buffers",
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
    """A batch is about ten launches, none per step (see codegen/cuda_layout.py)."""
    from snncc.codegen.cuda_layout import BACKWARD_THREADS, OPT_THREADS, PHASES, layout

    cu = layout(plan)

    def forward(name: str) -> Launch:
        return Launch(name, ("B",), cu.threads, cu.forward_shared)

    out = {"simulate": [forward("simulate")]}
    tr = plan.training
    if tr is None:
        return out
    r = tr.readout
    backward = [Launch("transpose_spikes", ("B",), 256, cu.transpose_shared)]
    backward.append(Launch(f"backward_{r.name}", ("B",), cu.readout_threads))
    for phase in PHASES:  # the readout's gradients, then the hidden populations'
        if phase == "hidden" and cu.exact is not None:  # BPTT: all populations in one kernel
            x = cu.exact
            if x.transposed:
                blocks = x.transpose_blocks[-1][2]
                backward.append(Launch("transpose_weights", (blocks,), OPT_THREADS))
            backward.append(Launch("bptt_backward", ("B",), x.threads, x.shared))
        elif phase == "hidden":
            for h in tr.hidden.values():
                grid = (_blocks(h.size, BACKWARD_THREADS), "B")
                backward.append(Launch(f"backward_{h.name}", grid, BACKWARD_THREADS))
        projections = cu.phase_projections(plan, phase)
        for q in projections:
            a = cu.accumulate[q.name]
            backward.append(Launch(f"accumulate_{q.name}", (q.n_pre, a.parts), a.threads))
        if phase in cu.sum_blocks:  # the batch parts of the weight gradients, added in order
            blocks = cu.sum_blocks[phase][-1][2]
            backward.append(Launch(f"sum_parts_{phase}", (blocks,), OPT_THREADS))
        if phase == "readout" and r.params:
            backward.append(Launch(f"reduce_{r.name}", (1,), cu.readout_threads))
        if phase == "hidden" and cu.hidden_params:  # the neurons' own parameters, over the batch
            blocks = cu.hidden_params[-1][3]
            backward.append(Launch("sum_batch_hidden", (blocks,), OPT_THREADS))
        ready = [f"grad_{q.name}" for q in projections]
        if phase == "readout":
            ready += [f"grad_{r.name}_{p}" for p in r.params]
        else:
            ready += [f"grad_{name}" for name, _, _, _ in cu.hidden_params]
        if ready:
            backward[-1] = dataclasses.replace(backward[-1], ready=tuple(ready))
    out |= {
        "forward": [forward("forward")],
        "evaluate": [forward("evaluate")],  # no histories written
        "gradient": [forward("forward"), *backward],
    }
    if tr.optimizer is not None:
        out["optimize"] = [Launch("optimize", (cu.opt_blocks[-1][1],), OPT_THREADS)]
    return out
