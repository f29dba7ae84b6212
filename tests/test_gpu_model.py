"""The GPU cost model's arithmetic (benchmarks/gpu_model.py): its counts against hand counts
and against the buffers of the plan. Nothing here times anything, and nothing needs a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import snncc
from benchmarks import gpu_model as gm
from snncc import init, neurons
from snncc.backends.base import DTYPES, shape_for
from snncc.codegen.cuda_layout import layout
from snncc.runtime.compiler import plan_and_render
from tests.test_cuda import _nets

B, T = 2, 10
RATES = gm.Rates(input=0.1, hidden=0.05)
H200 = gm.GPUS["H200"]


def _tiny_plan(rule: type = snncc.rules.EProp):
    """40 inputs -> 8 recurrent ALIF -> 2, eProp (or ``rule``) without regulariser, Adam, for
    CUDA."""
    net = snncc.Network(dt=1.0, seed=0)
    inp = net.add_input("input", 40)
    hid = net.add_population("hidden", 8, neurons.ALIF())
    out = net.add_population("output", 2, neurons.LeakyIntegrator())
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 0.2))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 0.2), allow_self=False)
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 0.2))
    return plan_and_render(net, B, "cuda", rule(readout="output", regularizer="none"),
                           snncc.optim.Adam())[0]  # fmt: skip


def _bytes(plan, name: str) -> int:
    buf = plan.buffer(name)
    return int(np.prod(shape_for(buf, B, T))) * np.dtype(DTYPES[buf.ctype]).itemsize


def test_forward_moves_the_inputs_and_the_histories_the_backward_reads():
    plan = _tiny_plan()
    k = gm.forward_cost(plan, layout(plan), B, T, RATES, H200)
    # by hand: input words (2 per step), psi (8 floats), spike words (1), errors (2 floats)
    assert k.hbm == 4 * B * T * (2 + 8 + 1 + 2)
    assert k.hbm == sum(_bytes(plan, n) for n in ("input_bits", "hist_hidden_psi",
                                                   "hist_hidden_zbits", "err"))  # fmt: skip
    # the weight rows of the spikes: 0.1 * 40 input and 0.05 * 8 hidden spikes per step
    # (8 postsynaptic floats each), and 0.05 * 8 hidden spikes into the readout (2 floats)
    rows = B * T * 4 * (0.1 * 40 * 8 + 0.05 * 8 * 8 + 0.05 * 8 * 2)
    # stores per step: hidden v, a, z, isyn; readout v, z, isyn
    stores = B * T * 4 * (8 * 4 + 2 * 3)
    assert k.l2 == pytest.approx(rows + stores)
    assert k.threads == B * layout(plan).threads


def test_backward_and_weight_gradient_bytes_by_hand():
    plan = _tiny_plan()
    tr = plan.training
    hidden = gm.hidden_backward_cost(plan, tr.hidden["hidden"], B, T, H200)
    assert hidden.hbm == 4 * B * T * (8 + 8 + 2)  # psi read, Q written, errf read
    readout = gm.readout_backward_cost(plan, B, T, H200)
    assert readout.hbm == 4 * B * T * 2 * 3  # err read, errf and Q written
    cu = layout(plan)
    a = cu.accumulate["in_hid"]
    acc = gm.accumulate_cost(plan, cu, plan.proj("in_hid"), B, T, RATES, H200)
    # rows of 40 units (1 word per example), Q of 8 neurons per step, the parts' sums
    assert acc.hbm == 4 * (40 * B * 1 + B * T * 8 + a.parts * 40 * 8)
    assert acc.l2 == pytest.approx(40 * (0.1 * B * T) * 8 * 4)  # each spike adds a Q row
    opt = gm.optimize_cost(plan, H200)
    n = 40 * 8 + 8 * 8 + 8 * 2 + 2  # weights and the readout bias
    assert opt.hbm == n * 4 * (4 + 3)  # w, g, m, v read; w, m, v written


def test_bptt_backward_reads_every_weight_its_spikes_leave_by_once_per_block_and_step():
    plan = _tiny_plan(snncc.rules.BPTT)
    cu = layout(plan)
    k = gm.bptt_backward_cost(plan, cu, B, T, H200)
    assert k.hbm == 4 * B * T * (8 + 8 + 2)  # psi read, Q written; the readout's Q read
    assert k.l2 == 4 * B * T * (8 * 8 + 8 * 2)  # W^T of hid_hid and hid_out, every step
    assert k.threads == B * cu.exact.threads == B * 32
    # a step: one barrier, two groups of loads (8 and 2 weights) an L2 latency each, the
    # recursion of ALIF's two states
    step = H200.barrier + 2 * H200.l2_latency + 8 * 2
    assert k.chain == pytest.approx(T * step / H200.clock)
    transpose = gm.transpose_weights_cost(plan, cu, H200)
    assert transpose.hbm == (8 * 8 + 8 * 2) * (gm.SECTOR + 4)


def test_every_launch_of_a_training_step_is_counted():
    """Several hidden populations, sparse and delayed projections: no kernel is unknown."""
    cell = neurons.ALIF(trainable=("tau_m", "v_th"))
    trained = snncc.Network(dt=1.0)
    trained.add_input("input", 10)
    trained.add_population("hidden", 16, cell)
    trained.add_population("output", 2, neurons.LeakyIntegrator())
    trained.connect("input", "hidden", weight=init.Normal(0.0, 0.2))
    trained.connect("hidden", "hidden", weight=init.Normal(0.0, 0.2), p=0.5)
    trained.connect("hidden", "output", weight=init.Normal(0.0, 0.2))
    rules = [
        (_nets(), snncc.rules.EProp(readout="output", feedback="random")),
        (_nets(), snncc.rules.BPTT(readout="output")),
        (trained, snncc.rules.BPTT(readout="output")),  # a sparse recurrent projection
        (trained, snncc.rules.EProp(readout="output")),
    ]
    for net, rule in rules:
        plan = plan_and_render(net, 4, "cuda", rule, snncc.optim.Adam())[0]
        costs = gm.step_costs(plan, 4, 30, RATES, H200)
        launches = plan.manifest["gradient"] + plan.manifest["optimize"]
        assert [c.name for c in costs] == [launch.name for launch in launches]
        assert all(c.time(H200) > 0 for c in costs)


def test_a_kernel_takes_its_slowest_term_and_the_launch():
    full = H200.sms * gm.SATURATING_THREADS
    k = gm.KernelCost("k", hbm=4.8e9, l2=1e9, ops=1e9, threads=full, chain=1e-4)
    assert k.bound(H200) == "HBM" and k.time(H200) == pytest.approx(1e-3 + H200.launch)
    half = gm.KernelCost("k", hbm=4.8e9, threads=full // 2)  # half the loads in flight
    assert half.time(H200) == pytest.approx(2e-3 + H200.launch)
    serial = gm.KernelCost("k", hbm=1.0, threads=full, chain=5e-3, launches=2)
    assert serial.bound(H200) == "latency"
    assert serial.time(H200) == pytest.approx(5e-3 + 2 * H200.launch)


def test_ring_all_reduce_time():
    assert gm.allreduce_time(1e6, 1, H200) == 0.0
    within = 2 * 3 / 4 * 1e6 / H200.link + H200.step_latency
    assert gm.allreduce_time(1e6, 4, H200) == pytest.approx(within)
    across = 2 * 31 / 32 * 1e6 / H200.network + H200.network_latency
    assert gm.allreduce_time(1e6, 32, H200) == pytest.approx(across)


def test_device_memory_extrapolates_to_the_plans_own_count():
    at = gm.snncc_bytes(B, T)  # fitted on 64, 128 and 256 hidden neurons
    for n in (96, 512):
        assert at(n) == pytest.approx(gm.device_bytes(gm.shd_plan(n, B), B, T), rel=1e-12)
    assert gm.largest_hidden(at(512) + 1, at) == 512
    assert gm.largest_hidden(at(512) - 1, at) == 480


def test_the_report_says_prediction_and_shows_emulated_times_as_not_available(cuda_emulator):
    text = gm.report(hidden=32, B=2, T=20)
    assert "PREDICTED" in text and "not measured" in text
    assert "measured ms" in text and "n/a" in text  # the emulator has no GPU time
    assert "largest hidden layer" in text and "32 GPUs" in text
    assert "training step (bptt)" in text and "bptt_backward" in text


def test_gemm_crossover_density():
    # float32 GEMM: 2 FLOPs per element and postsynaptic neuron against 4 bytes of L2 per spike
    assert gm.gemm_crossover(H200) == pytest.approx(H200.l2 / (2 * H200.fp32))
    assert gm.gemm_crossover(H200, 2) < gm.gemm_crossover(H200, 3) < gm.gemm_crossover(H200)
