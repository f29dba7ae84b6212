"""What the CUDA kernels and their manifest must agree on, computed once from the plan.

The whole time loop of a batch runs in one *persistent* kernel: one block per batch element,
its threads striding over each population's neurons, populations in declaration order with one
``__syncthreads`` after each. Every spiking population keeps the spike words of its last R steps
in a ring (shared memory; global memory when the rings would not fit), so a projection of any
delay d reads the words of step t - d and adds the weight rows of the set bits. Training adds a
transpose of the spike words into per-unit rows (unit i: its bits over (b, t)), which the
weight-gradient kernels walk in ascending (b, t) order: a block per presynaptic unit, no atomics.
An exact rule (BPTT) couples the neurons backwards in time (a spike's dLoss/dz is the W row of
its neuron dotted with the Q its spikes reached), so its hidden backward is one block per batch
element too, its threads over each population's neurons, a barrier after each population and
step (:class:`ExactBackward`).

:func:`add_buffers` adds the buffers only these kernels use (the rows, the batch parts' sums,
BPTT's transposed weights); :func:`layout` gives the block sizes, the shared-memory layout and
the per-thread element counts, which ``codegen.targets._cuda_manifest`` turns into launches and
the templates into code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snncc.codegen.plan import Buffer, KernelPlan, ProjectionPlan
from snncc.errors import ModelError

#: Dynamic shared memory a block may ask for without raising the kernel's attribute.
SHARED_DEFAULT = 48 << 10
#: The most shared memory the spike rings may take (sm_70 allows 96 KiB, sm_90 227 KiB per
#: block); rings beyond it live in global memory (L1/L2-cached, same code).
RING_SHARED_LIMIT = 64 << 10
#: The most dynamic shared memory of a block on sm_70 (sm_80+ allow more; 96 KiB fits all).
SHARED_MAX = 96 << 10
#: Spikes whose weight rows (or Q rows) are loaded together before being added in order: the
#: loads are in flight at once, so a step costs about one memory latency per group, not per spike.
SPIKE_GROUP = 8
#: Threads of the weight-update kernel's blocks (one launch for every parameter), and of the
#: kernel adding the batch parts of the weight gradients.
OPT_THREADS = 256
#: Threads a weight-gradient kernel should expose (about 1024 per SM of a large GPU): a
#: projection with fewer presynaptic units cuts the batch into parts (at most MAX_PARTS), so
#: that it keeps enough loads in flight and each block's serial walk is shorter.
ACCUMULATE_THREADS = 128 * 1024
MAX_PARTS = 16
#: The gradient pass in two phases: the readout's gradients are complete before the hidden
#: populations' backward starts, so they can be all-reduced meanwhile (several GPUs).
PHASES = ("readout", "hidden")
#: Threads per block of the hidden backward kernel (one thread per (b, j)).
BACKWARD_THREADS = 128
#: The most threads of a block of BPTT's hidden backward (a wider population gives each thread
#: several neurons).
EXACT_THREADS = 1024
#: The most shared memory BPTT's rings of Q may take; beyond it they are read back from the
#: global Q histories (which the weight gradients read anyway).
Q_SHARED_LIMIT = 64 << 10


def _warps(n: int, cap: int = 1024) -> int:
    """Threads for ``n`` items: a whole number of warps, at least one, at most ``cap``."""
    return max(32, min(cap, (n + 31) // 32 * 32))


@dataclass(frozen=True)
class Ring:
    """One population's per-step row of ``words`` 32-bit words (its spike words, or its floats
    of Q) for the last ``slots`` steps; step t at slot t % slots."""

    pop: str
    slots: int
    words: int
    shared: bool  # in dynamic shared memory at word ``offset``, else the plan's <pop>_ring
    offset: int = 0


@dataclass(frozen=True)
class Accumulate:
    """The weight-gradient kernel of one trained projection: a block per presynaptic unit and
    part of the batch; the parts' sums are added in part order (``sum_parts``) when there are
    several."""

    name: str
    threads: int
    per_thread: int  # postsynaptic neurons (dense) or synapses of a row (sparse) per thread
    q_buffer: str  # the Q of the postsynaptic population, (B, T, n_post)
    parts: int = 1  # the batch is cut into this many parts, a block each

    @property
    def partial(self) -> str:
        """The buffer of the parts' sums, (parts, size) (only when parts > 1)."""
        return f"gsum_{self.name}"


@dataclass(frozen=True)
class ExactBackward:
    """BPTT's hidden backward, ``bptt_backward``: one block per batch element runs T steps
    backwards; within a step the populations in ``order`` (later-declared first: an earlier
    one's dLoss/dz reads the Q that later ones received in the same step), each neuron's
    recursion by a thread (``per_thread`` neurons each, adjoints in registers), a barrier after
    each population. Q of the last ``q_ring`` steps of a population that another reads is kept
    in ``q_rings`` (shared memory, or its global Q history when they would not fit). Dense
    projections the spikes leave by are read transposed (``wT_<q>``, made once per pass by
    ``transpose_weights``): the threads of a warp then read consecutive floats."""

    threads: int
    order: tuple[str, ...]
    per_thread: dict[str, int]
    q_rings: dict[str, Ring]
    shared: int  # bytes of dynamic shared memory (the rings held there)
    transposed: tuple[str, ...]  # dense projections read through wT_<q>
    transpose_blocks: tuple[tuple[str, int, int], ...]  # per transposed projection [start, end)


@dataclass
class CudaLayout:
    threads: int  # forward block size (every population's neurons stride over it)
    rings: dict[str, Ring] = field(default_factory=dict)
    ring_words: int = 0  # shared words of the rings (zeroed at kernel start)
    scratch: int = 0  # word offset of the readout error's 2 K floats
    forward_shared: int = 0  # bytes of dynamic shared memory of the forward kernels
    error_warp: int = 0  # the warp computing the readout error of each step
    step_barrier: bool = False  # a barrier ends each step (the readout updates first)
    rows: list[str] = field(default_factory=list)  # populations transposed to per-unit rows
    transpose_shared: int = 0  # bytes: 32 steps of the widest of them
    accumulate: dict[str, Accumulate] = field(default_factory=dict)
    readout_threads: int = 32
    opt_blocks: list[tuple[int, int]] = field(default_factory=list)  # per parameter [start, end)
    opt_threads: int = OPT_THREADS
    #: per phase ("readout": the projections into the readout, "hidden": the others), the
    #: projections cut into batch parts, with their blocks [start, end) in sum_parts_<phase>
    sum_blocks: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)
    #: the trained neuron parameters of spiking populations, summed over the batch by
    #: sum_batch_hidden: (parameter, neurons, blocks [start, end))
    hidden_params: list[tuple[str, int, int, int]] = field(default_factory=list)
    exact: ExactBackward | None = None  # BPTT's hidden backward (exact rules only)

    def phase_projections(self, plan: KernelPlan, phase: str) -> list[ProjectionPlan]:
        """The trained projections whose gradients the phase computes, in plan order."""
        readout = plan.training.readout.name
        return [q for q in plan.training.projections if (q.post == readout) == (phase == PHASES[0])]

    spike_group: int = SPIKE_GROUP

    def ring_slot(self, pop: str, step: str) -> str:
        """C expression of the first word of ``pop``'s spikes at ``step`` (a step >= 0)."""
        ring = self.rings[pop]
        return f"(ring_{pop} + (size_t)(({step}) % {ring.slots}) * {ring.words})"

    def q_slot(self, pop: str, step: str) -> str:
        """C expression of the first float of BPTT's Q of ``pop`` at ``step`` (a step < T):
        its ring in shared memory, or its row of the global Q history (``qr_<pop>``)."""
        ring = self.exact.q_rings[pop]
        slot = f"(({step}) % {ring.slots})" if ring.shared else f"({step})"
        return f"(qr_{pop} + (size_t){slot} * {ring.words})"


def rows_buffer(pop: str) -> str:
    return f"rows_{pop}"


def add_buffers(plan: KernelPlan) -> dict:
    """Add the CUDA-only buffers of a training plan; returns the extra template context."""
    tr = plan.training
    if tr is not None:
        for name in _row_populations(plan):
            pop = plan.pop(name)
            # unit i's spikes over the batch and the steps: bit t % 32 of word [i, b, t / 32]
            plan.add(Buffer(rows_buffer(name), "unsigned", (pop.size, "B", "TW"), "history"))
        cu = layout(plan)
        for a in cu.accumulate.values():
            if a.parts > 1:
                size = plan.buffer(f"grad_{a.name}").shape[0]
                plan.add(Buffer(a.partial, "float", (a.parts, size), "scratch"))
        for name in cu.exact.transposed if cu.exact else ():
            q = plan.proj(name)  # W^T (masked): row k holds every presynaptic unit's weight to k
            plan.add(Buffer(transposed_buffer(name), "float", (q.n_post, q.n_pre), "scratch"))
    return {"cu": layout(plan)}


def transposed_buffer(projection: str) -> str:
    return f"wT_{projection}"


def _row_populations(plan: KernelPlan) -> list[str]:
    pres = {q.pre for q in plan.training.projections}
    return [p.name for p in plan.populations if p.name in pres]


def layout(plan: KernelPlan) -> CudaLayout:
    """Block sizes, shared memory and per-kernel shapes of ``plan`` (deterministic)."""
    neurons = [p.size for p in plan.populations if not p.is_input]
    out = CudaLayout(threads=_warps(max(neurons, default=32)))
    rings = []
    for p in plan.populations:
        if p.spiking and not p.is_input:
            rings.append((p.name, max(2, p.ring), p.spike_words, p.ring > 0))
    shared_words = sum(slots * words for _, slots, words, _ in rings)
    offset = 0
    for name, slots, words, may_go_global in rings:
        # too big for shared memory: the rings that have a global buffer (ring > 0) go there
        shared = not may_go_global or 4 * shared_words <= RING_SHARED_LIMIT
        out.rings[name] = Ring(name, slots, words, shared, offset if shared else 0)
        if shared:
            offset += slots * words
    out.ring_words = offset
    tr = plan.training
    warps = out.threads // 32
    if tr is None:
        out.forward_shared = 4 * max(1, offset)
        _check_shared(out)
        return out
    K = tr.readout.size
    out.scratch = offset
    out.forward_shared = 4 * (offset + 2 * K)
    out.error_warp = warps - 1
    first = next(p for p in plan.populations if not p.is_input)
    out.step_barrier = first.name == tr.readout.name
    out.rows = _row_populations(plan)
    out.transpose_shared = 4 * 32 * max(plan.pop(n).spike_words for n in out.rows)
    out.readout_threads = _warps(K)
    for q in tr.projections:
        out.accumulate[q.name] = _accumulate(plan, q)
    out.opt_blocks = _block_ranges([size for _, _, size in tr.params])
    for phase in PHASES:
        split = [q for q in out.phase_projections(plan, phase) if out.accumulate[q.name].parts > 1]
        ranges = _block_ranges([_size(plan, q) for q in split])
        if split:
            out.sum_blocks[phase] = [
                (q.name, a, z) for q, (a, z) in zip(split, ranges, strict=True)
            ]
    hidden_params = [(n, size) for kind, n, size in tr.params if _hidden_param(plan, kind, n)]
    ranges = _block_ranges([size for _, size in hidden_params])
    out.hidden_params = [
        (n, size, a, z) for (n, size), (a, z) in zip(hidden_params, ranges, strict=True)
    ]
    if tr.rule.exact:
        out.exact = _exact(plan)
    _check_shared(out)
    return out


def _hidden_param(plan: KernelPlan, kind: str, name: str) -> bool:
    """Whether trained parameter ``name`` belongs to a spiking population (not the readout)."""
    return kind == "param" and plan.training.owners[name][0] != plan.training.readout.name


def _exact(plan: KernelPlan) -> ExactBackward:
    tr = plan.training
    hidden = list(tr.hidden.values())
    threads = _warps(max(h.size for h in hidden), EXACT_THREADS)
    read = {q.post for h in hidden for q in map(plan.proj, h.outgoing) if q.post in tr.hidden}
    rings = [(h.name, h.q_ring, h.size) for h in hidden if h.name in read]
    fits = 4 * sum(slots * size for _, slots, size in rings) <= Q_SHARED_LIMIT
    q_rings, offset = {}, 0
    for name, slots, size in rings:
        q_rings[name] = Ring(name, slots, size, fits, offset if fits else 0)
        offset += slots * size if fits else 0
    transposed = [q.name for h in hidden for q in map(plan.proj, h.outgoing) if not q.sparse]
    sizes = [plan.proj(n).n_pre * plan.proj(n).n_post for n in transposed]
    blocks = [(n, a, z) for n, (a, z) in zip(transposed, _block_ranges(sizes), strict=True)]
    return ExactBackward(
        threads,
        tuple(h.name for h in reversed(hidden)),
        {h.name: -(-h.size // threads) for h in hidden},
        q_rings,
        4 * offset,
        tuple(transposed),
        tuple(blocks),
    )


def _block_ranges(sizes: list[int]) -> list[tuple[int, int]]:
    """Consecutive block ranges [start, end) of OPT_THREADS threads covering each size."""
    out, start = [], 0
    for size in sizes:
        end = start + max(1, -(-size // OPT_THREADS))
        out.append((start, end))
        start = end
    return out


def _size(plan: KernelPlan, q: ProjectionPlan) -> int:
    return plan.buffer(f"{q.name}_w").shape[0] if q.sparse else q.n_pre * q.n_post


def _check_shared(out: CudaLayout) -> None:
    for what, size in (("spike rings", out.forward_shared), ("transpose", out.transpose_shared)):
        if size > SHARED_MAX:
            raise ModelError(
                f"the CUDA kernels' {what} need {size} bytes of shared memory per block, more "
                f"than the {SHARED_MAX} a GPU offers; use smaller populations (or the cpu backend)"
            )


def _accumulate(plan: KernelPlan, q: ProjectionPlan) -> Accumulate:
    if q.sparse:
        rowptr = plan.buffer(f"{q.name}_rowptr").init
        widest = int(max(rowptr[1:] - rowptr[:-1], default=0)) if len(rowptr) > 1 else 0
    else:
        widest = q.n_post
    threads = _warps(widest)
    per_thread = max(1, -(-widest // threads))
    parts = batch_parts(q.n_pre, threads, plan.batch_size)
    return Accumulate(q.name, threads, per_thread, f"{q.post}_Q", parts)


def batch_parts(n_pre: int, threads: int, batch: int) -> int:
    """Parts of the batch for a weight-gradient kernel of ``n_pre`` blocks of ``threads``."""
    want = -(-ACCUMULATE_THREADS // (n_pre * threads))
    return max(1, min(MAX_PARTS, batch, want))


__all__ = [
    "Accumulate",
    "CudaLayout",
    "ExactBackward",
    "Ring",
    "add_buffers",
    "batch_parts",
    "layout",
    "rows_buffer",
    "transposed_buffer",
]
