"""A GPU cost model of snncc's CUDA training step, counted from the kernel plan: no GPU needed.

``python -m benchmarks --gpu-model [--gpu H200|TitanV] [--input-rate R] [--hidden-rate R]``
prints, per kernel of the manifest (the launches of one training step): the launches, bytes
to and from HBM and L2, lane operations, the exposed parallelism (threads), the longest
dependent chain of one thread or block (the latency floor), and from those a predicted time on
a named GPU. It adds the device memory of a batch, the largest hidden layer trainable on the
GPU's memory against PyTorch BPTT's (what its autograd saves, counted from
``benchmarks.peers.TorchSNN``), and the predicted scaling over several GPUs.

**Every figure is a prediction, not a measurement.** On a machine with a GPU the measured
per-kernel times (CUDA events around each launch) are printed beside the prediction
(``benchmarks/gpu.sh`` runs this); the CUDA emulator's events answer NaN, shown as "n/a".

The model (its assumptions, stated once):

* a kernel takes ``launches x launch + max(HBM bytes / (HBM bandwidth x f), L2 bytes /
  (L2 bandwidth x f), operations / lane throughput, chain)``, with ``f = min(1, threads /
  (SMs x 1024))``: fewer than 1024 threads per SM do not keep enough loads in flight to reach
  the bandwidth;
* lane throughput = fp32 FLOP/s / 2 (one fused multiply-add, 2 FLOPs, per lane per clock); every
  add, multiply, compare or select counts one operation;
* the persistent forward kernel's chain is T steps of: per population, a barrier, one L2 latency
  for its states, one L2 latency per group of spikes whose weight rows are loaded together
  (``cuda_layout.SPIKE_GROUP``), a shared-memory latency per spike word walked, and half its
  update's operations at 4 cycles each (a dependent chain with 2-way parallelism); then the
  readout error's warp (its sums over the classes run in order, as on the CPU);
* states, weights and the per-step Q rows a kernel reuses stay in L2 (their bytes are L2
  traffic); histories, spike rows, inputs and gradients move through HBM once;
* a thread walking T steps serially (the backward kernels) waits one HBM latency per unrolled
  group of steps (``UNROLL``), or its dependent chain, whichever is longer;
* BPTT's hidden backward (one block per batch element, T steps, a barrier per population and
  step) reads every weight its spikes leave by (W^T, L2) once per block and step; a thread's
  dot product W[j, :] . Q waits one L2 latency per unrolled group of its loads
  (``UNROLL["bptt"]``), its adds (``--fmad=false``: no fused multiply-add) 4 cycles each;
* scattered 4-byte stores (the transpose's rows) move a 32-byte sector each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from snncc.backends.base import DTYPES, shape_for

# ------------------------------------------------------------------------------ hardware


@dataclass(frozen=True)
class Gpu:
    """The figures the model uses; latencies in cycles (typical microbenchmark values)."""

    name: str
    hbm: float  # bytes/s
    l2: float  # bytes/s, L2 hit bandwidth
    sms: int
    fp32: float  # FLOP/s, non-tensor
    clock: float  # Hz (boost)
    memory: float  # bytes
    l2_latency: int = 270
    hbm_latency: int = 600
    shared_latency: int = 30
    barrier: int = 100  # __syncthreads of a block of a few warps
    launch: float = 3e-6  # back-to-back launches on one stream
    link: float = 450e9  # bytes/s per GPU and direction within a node (NVLink)
    network: float = 50e9  # bytes/s per GPU between nodes (InfiniBand)
    per_node: int = 8
    step_latency: float = 10e-6  # a (grouped) NCCL all-reduce within a node
    network_latency: float = 25e-6  # across nodes

    @property
    def lane_ops(self) -> float:
        return self.fp32 / 2


GPUS = {
    # H200 SXM: HBM3e 4.8 TB/s, 132 SMs, ~60 TFLOP/s fp32, 141 GB; NVLink 4 (900 GB/s both
    # ways), NDR InfiniBand 400 Gb/s per GPU; L2 bandwidth as measured on H100 (~7 TB/s)
    "H200": Gpu("H200", hbm=4.8e12, l2=7e12, sms=132, fp32=60e12, clock=1.98e9, memory=141e9),
    # Titan V (the published GeNN comparison): HBM2 653 GB/s, 80 SMs, 14.9 TFLOP/s fp32, 12 GB;
    # Volta latencies (L2 ~193, DRAM ~400 cycles), L2 ~2.1 TB/s; PCIe 3 between GPUs
    "TitanV": Gpu(
        "TitanV",
        hbm=653e9,
        l2=2.1e12,
        sms=80,
        fp32=14.9e12,
        clock=1.455e9,
        memory=12e9,
        l2_latency=193,
        hbm_latency=400,
        shared_latency=28,
        launch=5e-6,
        link=16e9,
        network=12e9,
        per_node=4,
    ),
}

#: Steps of a backward recursion whose loads the unrolled loop issues together (train.cu.j2).
UNROLL = {"readout": 8, "hidden": 4, "bptt": 8}
#: Threads per SM that keep enough memory requests in flight for full bandwidth.
SATURATING_THREADS = 1024
SECTOR = 32  # bytes moved by a scattered store


@dataclass(frozen=True)
class Rates:
    """Spikes per unit and step: SHD-like defaults (inputs 1.5 %, hidden 2 %)."""

    input: float = 0.015
    hidden: float = 0.02


# ------------------------------------------------------------------------------ counts


@dataclass
class KernelCost:
    name: str
    launches: int = 1
    hbm: float = 0.0  # bytes
    l2: float = 0.0  # bytes
    ops: float = 0.0  # lane operations
    threads: int = 1
    chain: float = 0.0  # seconds: the latency floor
    notes: list[str] = field(default_factory=list)

    def terms(self, gpu: Gpu) -> dict[str, float]:
        f = min(1.0, self.threads / (gpu.sms * SATURATING_THREADS))
        return {
            "HBM": self.hbm / (gpu.hbm * f),
            "L2": self.l2 / (gpu.l2 * f),
            "compute": self.ops / gpu.lane_ops,
            "latency": self.chain,
        }

    def time(self, gpu: Gpu) -> float:
        return self.launches * gpu.launch + max(self.terms(gpu).values())

    def bound(self, gpu: Gpu) -> str:
        terms = self.terms(gpu)
        return max(terms, key=terms.get)


def update_ops(pop) -> int:
    """Operations of one neuron's update (its statements, threshold and surrogate)."""
    upd = pop.update
    exprs = [st.expr for st in upd.statements] + [e for e in (upd.spike, upd.psi) if e is not None]
    return int(sum(sp.count_ops(e) for e in exprs))


def _rate(plan, name: str, rates: Rates) -> float:
    return rates.input if plan.pop(name).is_input else rates.hidden


def _nnz(plan, q) -> int:
    return int(plan.buffer(f"{q.name}_w").shape[0]) if q.sparse else q.n_pre * q.n_post


def forward_cost(plan, cu, B: int, T: int, rates: Rates, gpu: Gpu, histories: bool = True):
    """The persistent forward kernel: one block per batch element runs all T steps."""
    tr = plan.training
    k = KernelCost("forward" if histories else "simulate", threads=B * cu.threads)
    step = 0.0  # cycles of one step on the block's critical path
    cyc = 1.0 / gpu.clock
    G = cu.spike_group
    for p in plan.populations:
        if p.is_input:
            if any(q.pre == p.name for q in plan.projections):
                k.hbm += B * T * 4 * p.spike_words  # its bit words, read once
            continue
        n, states = p.size, len(p.states)
        # stores of the states, the spike (double buffer) and isyn reach L2 (L1 writes
        # through); their loads hit L1: a block's own few kilobytes, touched every step
        k.l2 += B * T * n * 4 * (states + 1 + (1 if p.incoming else 0))
        ops = update_ops(p)
        k.ops += B * T * n * ops
        step += gpu.barrier + gpu.l2_latency + ops / 2 * 4
        for qname in p.incoming:
            q = plan.proj(qname)
            spikes = _rate(plan, q.pre, rates) * q.n_pre  # per step and batch element
            words = plan.pop(q.pre).spike_words
            if q.sparse:  # each neuron walks its column: index, permutation, bit test
                k.l2 += B * T * (_nnz(plan, q) * 8 + spikes * q.n_post * q_density(plan, q) * 4)
                k.ops += B * T * _nnz(plan, q) * 4
                step += gpu.l2_latency * max(1.0, _nnz(plan, q) / q.n_post / 8)
            else:
                k.l2 += B * T * spikes * q.n_post * 4
                k.ops += B * T * (spikes * q.n_post + cu.threads * (words + 6 * spikes))
                step += gpu.l2_latency * math.ceil(spikes / G) + words * gpu.shared_latency
        if p.spiking:
            k.ops += B * T * n  # the ballot
        if histories and tr is not None:
            if p.name in tr.hidden:
                h = tr.hidden[p.name]
                per_neuron = len(h.needs) + (1 if h.reg == "moving" else 0)
                k.hbm += B * T * n * 4 * per_neuron
            if p.name in tr.history_pops:
                k.hbm += B * T * p.spike_words * 4
    if tr is not None:  # the readout error: one warp, sums over the classes in order
        K = tr.readout.size
        k.hbm += B * T * K * 4 * (1 if histories else 0)
        k.ops += B * T * K * 40  # exp, softmax, loss and score per class
        step += 2 * K * 4 + 3 * gpu.shared_latency + gpu.l2_latency + 40
        k.notes.append(f"readout error by warp {cu.error_warp}")
    k.chain = T * step * cyc
    k.notes.append(f"chain: {T} steps x {step:.0f} cycles")
    return k


def q_density(plan, q) -> float:
    return _nnz(plan, q) / (q.n_pre * q.n_post)


def transpose_cost(plan, cu, B: int, T: int, gpu: Gpu) -> KernelCost:
    k = KernelCost("transpose_spikes", threads=B * 256)
    TW = (T + 31) // 32
    for name in cu.rows:
        p = plan.pop(name)
        k.hbm += B * T * p.spike_words * 4 + p.size * B * TW * SECTOR
        k.ops += p.size * B * TW * 32 * 4
    k.chain = TW * len(cu.rows) * (2 * gpu.barrier + gpu.hbm_latency) / gpu.clock
    return k


def readout_backward_cost(plan, B: int, T: int, gpu: Gpu) -> KernelCost:
    r = plan.training.readout
    k = KernelCost(f"backward_{r.name}", threads=B * 32)
    k.hbm = B * T * r.size * 4 * 3  # err read; errf and Q written
    k.ops = B * T * r.size * 10
    per_step = max(4 * 4, gpu.hbm_latency / UNROLL["readout"])
    k.chain = T * per_step / gpu.clock
    return k


def _history_bytes(h) -> int:
    """Bytes of one neuron and step a hidden backward moves: the histories read, Q written."""
    return 4 * (len(h.needs) + 1 + (1 if h.reg == "moving" else 0))


def hidden_backward_cost(plan, h, B: int, T: int, gpu: Gpu) -> KernelCost:
    K = plan.training.readout.size
    k = KernelCost(f"backward_{h.name}", threads=B * h.size)
    k.hbm = B * T * h.size * _history_bytes(h) + B * T * K * 4  # errf: a row per (b, t), shared
    k.hbm += B * h.size * 4 * len(h.params)  # the per-example sums of its trained parameters
    k.ops = B * T * h.size * (2 * K + 8 * len(h.states) + 4 * len(h.params))
    per_step = max(8 * len(h.states), gpu.hbm_latency / UNROLL["hidden"])
    k.chain = T * per_step / gpu.clock
    return k


def transpose_weights_cost(plan, cu, gpu: Gpu) -> KernelCost:
    """W^T of the dense projections BPTT's signal reads: W read a float per scattered 32-byte
    sector, W^T written coalesced."""
    n = sum(plan.proj(name).n_pre * plan.proj(name).n_post for name in cu.exact.transposed)
    k = KernelCost("transpose_weights", hbm=n * (SECTOR + 4), ops=4 * n, threads=n)
    k.chain = 2 * gpu.hbm_latency / gpu.clock
    return k


def bptt_backward_cost(plan, cu, B: int, T: int, gpu: Gpu) -> KernelCost:
    """BPTT's hidden backward: one block per batch element walks T steps, the populations of a
    step one after another (a barrier each); every block reads the weights of every projection
    the spikes leave by once per step (W^T from L2), the readout's Q once (HBM)."""
    tr, x = plan.training, cu.exact
    k = KernelCost("bptt_backward", threads=B * x.threads)
    step = 0.0  # cycles of one step on the block's critical path
    group = UNROLL["bptt"]
    for name in x.order:
        h = tr.hidden[name]
        k.hbm += B * T * h.size * _history_bytes(h) + B * h.size * 4 * len(h.params)
        dot = 0.0  # multiply-adds of one neuron's dLoss/dz
        loads = 0  # unrolled groups of its loads
        for q in map(plan.proj, h.outgoing):
            row = _nnz(plan, q) / q.n_pre
            if q.sparse:  # its CSR row: weight and column index per synapse, Q from shared
                k.l2 += B * T * _nnz(plan, q) * 8
            else:
                k.l2 += B * T * q.n_pre * q.n_post * 4
            if q.post == tr.readout.name:  # the readout's Q row of t + d, once per block
                k.hbm += B * T * q.n_post * 4
            elif not x.q_rings[q.post].shared:  # Q read back (a broadcast per warp)
                k.l2 += B * T * (x.threads // 32) * q.n_post * 4
            dot += row
            loads += math.ceil(row / group)
        k.ops += B * T * h.size * (2 * dot + 8 * len(h.states) + 4 * len(h.params))
        thread = loads * max(gpu.l2_latency, group * 4) + 8 * len(h.states)
        step += gpu.barrier + x.per_thread[name] * thread
    k.chain = T * step / gpu.clock
    k.notes.append(f"chain: {T} steps x {step:.0f} cycles")
    return k


def sum_batch_cost(plan, cu, B: int, gpu: Gpu) -> KernelCost:
    """A thread per neuron and trained parameter adds its B values in order (4 loads in
    flight, unrolled)."""
    n = sum(size for _, size, _, _ in cu.hidden_params)
    k = KernelCost("sum_batch_hidden", hbm=(B + 1) * n * 4, ops=B * n, threads=n)
    k.chain = B / 4 * gpu.hbm_latency / gpu.clock
    return k


def accumulate_cost(plan, cu, q, B: int, T: int, rates: Rates, gpu: Gpu) -> KernelCost:
    """A block per presynaptic unit (and batch part) walks its spike row and adds the Q rows
    of its spikes; the Q rows stay in L2 while the blocks walk the batch together."""
    a = cu.accumulate[q.name]
    TW = (T + 31) // 32
    k = KernelCost(f"accumulate_{q.name}", threads=q.n_pre * a.parts * a.threads)
    spikes = _rate(plan, q.pre, rates) * B * max(0, T - q.delay)  # per presynaptic unit
    row = q.n_post * q_density(plan, q)  # the postsynaptic values a spike adds
    k.hbm = q.n_pre * B * TW * 4 + B * T * q.n_post * 4 + a.parts * _nnz(plan, q) * 4
    k.l2 = q.n_pre * spikes * row * 4
    k.ops = q.n_pre * (spikes * row + B * TW * 4)
    words = B * TW / a.parts  # of one block's part of the row
    cycles = words / a.threads * (2 * gpu.barrier + gpu.l2_latency)
    cycles += words * gpu.shared_latency / 4 + spikes / a.parts / cu.spike_group * gpu.l2_latency
    k.chain = cycles / gpu.clock
    if a.parts > 1:
        k.notes.append(f"batch in {a.parts} parts")
    return k


def sum_parts_cost(plan, cu, phase: str, gpu: Gpu) -> KernelCost:
    """The batch parts of one phase's weight gradients, added in order."""
    k = KernelCost(f"sum_parts_{phase}")
    for name, _, _ in cu.sum_blocks[phase]:
        parts, nnz = cu.accumulate[name].parts, _nnz(plan, plan.proj(name))
        k.hbm += nnz * 4 * (parts + 1)
        k.ops += nnz * parts
        k.threads += nnz
    k.chain = 2 * gpu.hbm_latency / gpu.clock
    return k


def reduce_cost(plan, B: int, gpu: Gpu) -> KernelCost:
    """A thread per readout unit adds its B values in order (4 loads in flight, unrolled)."""
    r = plan.training.readout
    k = KernelCost(f"reduce_{r.name}", hbm=B * r.size * 4 * len(r.params), threads=r.size)
    k.ops = B * r.size * len(r.params)
    k.chain = len(r.params) * B / 4 * gpu.hbm_latency / gpu.clock
    return k


def optimize_cost(plan, gpu: Gpu) -> KernelCost:
    tr = plan.training
    n = sum(size for _, _, size in tr.params)
    state = len(tr.optimizer.state) if tr.optimizer is not None else 0
    k = KernelCost("optimize", threads=n)
    k.hbm = n * 4 * (2 + state) + n * 4 * (1 + state)  # read w, g, state; write w, state
    k.ops = n * 20
    k.chain = 2 * gpu.hbm_latency / gpu.clock
    return k


def step_costs(plan, B: int, T: int, rates: Rates, gpu: Gpu) -> list[KernelCost]:
    """One KernelCost per launch of a training step (the manifest's gradient + optimize)."""
    from snncc.codegen.cuda_layout import layout

    cu = layout(plan)
    tr = plan.training
    out = []
    for launch in plan.manifest["gradient"] + plan.manifest.get("optimize", []):
        name = launch.name
        if name == "forward":
            out.append(forward_cost(plan, cu, B, T, rates, gpu))
        elif name == "transpose_spikes":
            out.append(transpose_cost(plan, cu, B, T, gpu))
        elif name == f"backward_{tr.readout.name}":
            out.append(readout_backward_cost(plan, B, T, gpu))
        elif name.startswith("backward_"):
            out.append(hidden_backward_cost(plan, tr.hidden[name[9:]], B, T, gpu))
        elif name.startswith("accumulate_"):
            out.append(accumulate_cost(plan, cu, plan.proj(name[11:]), B, T, rates, gpu))
        elif name.startswith("sum_parts_"):
            out.append(sum_parts_cost(plan, cu, name[10:], gpu))
        elif name.startswith("reduce_"):
            out.append(reduce_cost(plan, B, gpu))
        elif name == "transpose_weights":
            out.append(transpose_weights_cost(plan, cu, gpu))
        elif name == "bptt_backward":
            out.append(bptt_backward_cost(plan, cu, B, T, gpu))
        elif name == "sum_batch_hidden":
            out.append(sum_batch_cost(plan, cu, B, gpu))
        elif name == "optimize":
            out.append(optimize_cost(plan, gpu))
        else:
            raise ValueError(f"the cost model does not know kernel '{name}'")
    return out


# ------------------------------------------------------------------------------ GEMM


#: Tensor-core TF32 FLOP/s (dense) of the GPUs that have them (H200: as H100 SXM). A gradient
#: within 1e-5 needs float32-exact products: plain TF32 (10-bit mantissa) is off by ~1e-3, so
#: the GEMM would split Q into a TF32 high and low part ("2xTF32": the 0/1 spikes are exact in
#: TF32; general operands need three products, "3xTF32").
TF32 = {"H200": 495e12}


def gemm_crossover(gpu: Gpu, passes: int | None = None) -> float:
    """The spike density above which dW = S^T Q as a dense GEMM would beat the event-driven
    sum: per element of S the GEMM does 2 n_post FLOPs whatever its value, the event-driven
    kernel reads n_post floats of Q from L2 per spike. ``passes``: 2 or 3 TF32 products on
    tensor cores, or None for float32 on the CUDA cores."""
    rate = gpu.fp32 if passes is None else TF32[gpu.name] / passes
    return gpu.l2 / (2 * rate)


# ------------------------------------------------------------------------------ memory


def device_bytes(plan, B: int, T: int) -> int:
    """Device memory of a training step: every buffer the program holds (static ones, the
    input bits, the histories of T steps; records are dropped while training)."""
    total = 0
    for buf in plan.buffers:
        if buf.role in ("record", "online"):
            continue
        total += int(np.prod(shape_for(buf, B, T))) * np.dtype(DTYPES[buf.ctype]).itemsize
    return total


#: The rules the cost model counts: the benchmarks' eProp, and exact BPTT of the same network.
RULES = ("eprop", "bptt")


def _rule(rule: str, regularizer: str = "none"):
    import snncc

    make = {"eprop": snncc.rules.EProp, "bptt": snncc.rules.BPTT}[rule]
    return make(readout="output", regularizer=regularizer)


def shd_plan(hidden: int = 256, batch: int = 512, regularizer: str = "none", rule: str = "eprop"):
    """The plan of the SHD benchmark network (700 -> hidden recurrent ALIF -> 20), the
    benchmarks' rule (eProp, cross-entropy; or ``rule="bptt"``) and Adam, compiled for CUDA
    (no nvcc needed)."""
    import snncc
    from snncc.experiment import TrainConfig, build_network
    from snncc.runtime.compiler import plan_and_render

    net = build_network(TrainConfig(neurons=hidden, tau_a=2000.0, refractory=5.0), 700, 20)
    return plan_and_render(net, batch, "cuda", _rule(rule, regularizer), snncc.optim.Adam())[0]


def snncc_bytes(B: int, T: int, regularizer: str = "none") -> Callable[[int], float]:
    """Device memory of a training batch as a function of the hidden size N (a multiple of
    32), extrapolated from the plans of three sizes: each buffer's element count is at most
    quadratic in N (weights N^2, histories B T N, words N / 32), except the batch parts of
    the weight gradients, whose number follows cuda_layout.batch_parts."""
    from snncc.codegen.cuda_layout import _warps, batch_parts

    sizes = np.array([64.0, 128.0, 256.0])
    plans = [shd_plan(int(n), B, regularizer) for n in sizes]
    inverse = np.linalg.inv(np.vander(sizes, 3, increasing=True))

    def fit(name: str) -> np.ndarray:
        return inverse @ [np.prod(shape_for(plan.buffer(name), B, T)) for plan in plans]

    terms = [  # (bytes per element, quadratic coefficients)
        (np.dtype(DTYPES[buf.ctype]).itemsize, fit(buf.name))
        for buf in plans[0].buffers
        if buf.role not in ("record", "online") and not buf.name.startswith("gsum_")
    ]
    projections = [(q, fit(f"grad_{q.name}")) for q in plans[0].training.projections]

    def bytes_at(N: int) -> float:
        total = sum(itemsize * (coeffs @ [1.0, N, N * N]) for itemsize, coeffs in terms)
        for q, coeffs in projections:  # gsum_<q>: (parts, size) when cut in parts
            n_pre = N if q.pre == "hidden" else q.n_pre
            parts = batch_parts(n_pre, _warps(N if q.post == "hidden" else q.n_post), B)
            total += 4 * (coeffs @ [1.0, N, N * N]) * (parts if parts > 1 else 0)
        return total

    return bytes_at


def torch_bytes(B: int, T: int) -> Callable[[int], float]:
    """What PyTorch BPTT (benchmarks.peers.TorchSNN, SHD sizes) holds for its backward pass,
    as a function of the hidden size N: the tensors autograd saves, counted with saved-tensor
    hooks on small runs (distinct storages) and extrapolated (linear in B T and in N), plus
    parameters, gradients and Adam's two states. The backward pass's own temporaries (e.g. the
    gradient of the input projection, B T N floats) come on top at its peak."""
    import torch

    from benchmarks.peers import TorchSNN

    def saved(n: int, b: int, t: int) -> float:
        seen: dict[int, int] = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
            return tensor

        model = TorchSNN(700, n, 20, model="alif", n_ref=5, seed=0)
        x = torch.zeros(b, t, 700)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model.loss(model(x), torch.zeros(b, dtype=torch.long))
        return float(sum(seen.values()))

    # per example and step, at two sizes: linear in N (its slope and intercept)
    per_32 = (saved(32, 2, 8) - saved(32, 2, 4)) / 8
    per_64 = (saved(64, 2, 8) - saved(64, 2, 4)) / 8
    slope = (per_64 - per_32) / 32

    def bytes_at(N: int) -> float:
        params = 700 * N + N * N + N * 20 + 20
        return B * T * (per_32 + slope * (N - 32)) + params * 4 * 4

    return bytes_at


def largest_hidden(memory: float, bytes_of) -> int:
    """The largest multiple of 32 neurons whose ``bytes_of(N)`` fits in ``memory``."""
    lo, hi = 32, 32
    while bytes_of(hi) <= memory:
        lo, hi = hi, 2 * hi
    while hi - lo > 32:
        mid = (lo + hi) // 64 * 32
        lo, hi = (mid, hi) if bytes_of(mid) <= memory else (lo, mid)
    return lo if bytes_of(lo) <= memory else 0


# ------------------------------------------------------------------------------ scaling


def allreduce_time(nbytes: float, gpus: int, gpu: Gpu) -> float:
    """A ring all-reduce of ``nbytes`` over ``gpus`` (NVLink within a node, the network
    across nodes), one grouped NCCL call."""
    if gpus <= 1:
        return 0.0
    inter = gpus > gpu.per_node
    bandwidth = gpu.network if inter else gpu.link
    latency = gpu.network_latency if inter else gpu.step_latency
    return 2 * (gpus - 1) / gpus * nbytes / bandwidth + latency


def scaling(B: int, T: int, rates: Rates, gpu: Gpu, gpus: int, weak: bool, hidden: int = 256):
    """(time per global batch, efficiency) on ``gpus`` GPUs: strong (the global batch B split)
    or weak (B per GPU). The gradients of the readout reduce while the hidden backward runs;
    the rest of the all-reduce is exposed."""
    per_gpu = B if weak else max(1, B // gpus)
    plan = shd_plan(hidden, per_gpu)
    costs = step_costs(plan, per_gpu, T, rates, gpu)
    one = sum(c.time(gpu) for c in step_costs(shd_plan(hidden, B), B, T, rates, gpu))
    compute = sum(c.time(gpu) for c in costs)
    tr = plan.training
    # the readout's gradients are done before the hidden backward starts: they reduce meanwhile
    early = sum(4 * size for kind, name, size in tr.params if _of_readout(plan, kind, name))
    late = sum(4 * size for _, _, size in tr.params) - early
    launches = plan.manifest["gradient"]
    start = next(k for k, launch in enumerate(launches) if launch.ready) + 1
    hidden_work = sum(c.time(gpu) for c in costs[start : len(launches)])  # the hidden phase
    exposed = allreduce_time(late, gpus, gpu)
    exposed += max(0.0, allreduce_time(early, gpus, gpu) - hidden_work)
    total = compute + exposed
    efficiency = one / total if weak else one / (gpus * total)
    return total, efficiency


def _of_readout(plan, kind: str, name: str) -> bool:
    """Whether trained parameter ``name`` is the readout's (a bias, or a projection into it)."""
    return kind != "weight" or plan.proj(name).post == plan.training.readout.name


# ------------------------------------------------------------------------------ measuring


def measured_times(
    hidden: int, B: int, T: int, rates: Rates, rule: str = "eprop"
) -> dict[str, float] | None:
    """Per-kernel milliseconds on this machine's GPU (CUDA events around each launch of a
    training step of the SHD network under ``rule``), or None without one. On the CUDA
    emulator every time is NaN (it has no GPU time)."""
    try:
        import pycuda.driver as drv

        drv.init()
        if drv.Device.count() == 0:
            return None
    except Exception:
        return None
    import snncc
    from benchmarks.common import poisson_spikes, random_labels
    from snncc.experiment import TrainConfig, build_network

    net = build_network(TrainConfig(neurons=hidden, tau_a=2000.0, refractory=5.0), 700, 20)
    opt = snncc.optim.Adam()
    model = snncc.compile(net, batch_size=B, backend="cuda", rule=_rule(rule), optimizer=opt)
    x, y = poisson_spikes(B, T, 700, rates.input), random_labels(B, 20)
    model.train_batch(x, y)  # warm: compiles, allocates the histories, uploads the inputs
    prog = model.programs[0]
    times = prog.timed_run("gradient", B, T) + prog.timed_run("optimize", B, 1)
    return {name: ms for name, ms in times}


# ------------------------------------------------------------------------------ report


def table(costs: list[KernelCost], gpu: Gpu, measured: dict[str, float] | None) -> str:
    head = ["kernel", "launches", "HBM MB", "L2 MB", "Gop", "threads", "chain ms", "bound"]
    head += ["predicted ms"] + (["measured ms"] if measured is not None else [])
    rows = []
    for c in costs:
        row = [c.name, str(c.launches), f"{c.hbm / 1e6:.1f}", f"{c.l2 / 1e6:.1f}"]
        row += [f"{c.ops / 1e9:.2f}", f"{c.threads}", f"{c.chain * 1e3:.3f}", c.bound(gpu)]
        row.append(f"{c.time(gpu) * 1e3:.3f}")
        if measured is not None:
            value = measured.get(c.name, math.nan)
            row.append("n/a" if math.isnan(value) else f"{value:.3f}")
        rows.append(row)
    total = sum(c.time(gpu) for c in costs)
    last = ["total", str(sum(c.launches for c in costs)), f"{sum(c.hbm for c in costs) / 1e6:.1f}"]
    last += [f"{sum(c.l2 for c in costs) / 1e6:.1f}", f"{sum(c.ops for c in costs) / 1e9:.2f}"]
    last += ["", "", "", f"{total * 1e3:.3f}"]
    if measured is not None:
        values = [v for v in measured.values() if not math.isnan(v)]
        last.append(f"{sum(values):.3f}" if values else "n/a")
    rows.append(last)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def report(gpu_name: str = "H200", hidden: int = 256, B: int = 512, T: int = 1370,
           rates: Rates = Rates(), measure: bool = True) -> str:  # fmt: skip
    gpu = GPUS[gpu_name]
    out, memory = [], []
    for rule in RULES:
        plan = shd_plan(hidden, B, rule=rule)
        costs = step_costs(plan, B, T, rates, gpu)
        measured = measured_times(hidden, B, T, rates, rule) if measure else None
        out += [
            f"snncc CUDA training step ({rule}), SHD 700 -> {hidden} recurrent ALIF -> 20, "
            f"batch {B}, T = {T}, spike rates {rates.input:.1%} (input) / {rates.hidden:.1%} "
            f"(hidden), on {gpu.name}: PREDICTED by benchmarks/gpu_model.py, not measured"
            + ("" if measured is None else " (measured: this machine's GPU, CUDA events)"),
            "",
            table(costs, gpu, measured),
            "",
        ]
        memory.append(f"{device_bytes(plan, B, T) / 1e9:.2f} GB ({rule})")
    out.append(f"device memory of a training batch: {', '.join(memory)} (counted from the plans)")
    ours = largest_hidden(gpu.memory, snncc_bytes(B, T))
    line = f"largest hidden layer trainable at T = {T}, batch {B} on {gpu.name} "
    line += f"({gpu.memory / 1e9:.0f} GB): snncc eProp {ours}"
    try:
        theirs = largest_hidden(gpu.memory, torch_bytes(B, T))
        line += f", PyTorch BPTT {theirs} (its saved tensors, counted from TorchSNN)"
    except ImportError:
        line += " (PyTorch BPTT: torch is not installed here)"
    out.append(line)
    line = "dense GEMM for the weight gradients would win above a spike density of "
    line += f"{gemm_crossover(gpu):.1%} (float32 CUDA cores)"
    if gpu.name in TF32:
        line += f", {gemm_crossover(gpu, 2):.1%} (2xTF32), {gemm_crossover(gpu, 3):.1%} (3xTF32)"
    out.append(line)
    out.append("")
    out.append(f"scaling over {gpu.name}s (data parallel, NCCL all-reduce):")
    for gpus in (4, 32):
        for weak in (False, True):
            total, eff = scaling(B, T, rates, gpu, gpus, weak, hidden)
            kind = f"weak, batch {B} per GPU" if weak else f"strong, batch {B} split"
            out.append(f"  {gpus:>2} GPUs, {kind}: {total * 1e3:.2f} ms per step, "
                       f"efficiency {eff:.0%}")  # fmt: skip
    return "\n".join(out)


def run(args: Any) -> int:
    """``python -m benchmarks --gpu-model [NAME]``: print the prediction (and, on a GPU, the
    measured per-kernel times beside it)."""
    rates = Rates(args.input_rate, args.hidden_rate)
    print(report(args.gpu_model, rates=rates))
    return 0
