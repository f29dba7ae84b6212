"""BPTT and trained neuron parameters on the CUDA backend, against the CPU backend.

The CPU's BPTT and its trained parameters equal torch autograd (tests/test_bptt.py); here the
generated CUDA runs on the CPU emulation of CUDA (tests/cudaemu) in forward, reversed and
shuffled thread/block orders, which must agree bit for bit (no race, a fixed order in every
sum), and its gradients must equal the CPU's within 1e-5 relative (max|a - b| / max|b|).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import snncc
from snncc import init, neurons
from snncc.backends.cuda import nvcc_compile
from snncc.codegen import cuda_layout
from tests.cudaemu.fixture import same_in_every_order
from tests.test_bptt import TRAINED, _data, recurrent, rel
from tests.test_cuda import (  # noqa: F401 -- cuda_target: the emulator, or a real GPU
    ARCHS,
    _need_arch,
    _nets,
    _shd_net,
    cuda_target,
    needs_nvcc,
)
from tests.test_delays import DELAYS, two_populations

RTOL = 1e-5


def _mixed_net() -> snncc.Network:
    """Two spiking populations that both train their own parameters and feed each other: a
    sparse delayed projection one way, a dense delayed one back, both into the readout."""
    net = snncc.Network(dt=1.0, seed=4)
    net.add_input("input", 30)
    alif = neurons.ALIF(refractory=2, trainable=("tau_m", "v_th", "tau_a", "beta"))
    net.add_population("h", 40, alif.with_params(tau_m=np.linspace(12.0, 28.0, 40)))
    net.add_population("lif", 20, neurons.LIF(trainable=("tau_m",)))
    net.add_population("out", 3, neurons.LeakyIntegrator(tau=20.0))
    net.connect("input", "h", name="in_h", weight=init.Normal(0.0, 0.5))
    net.connect("h", "h", name="h_h", weight=init.Normal(0.0, 0.2), allow_self=False)
    net.connect("h", "lif", name="h_lif", weight=init.Uniform(0.0, 0.4), p=0.4, delay=2)
    net.connect("lif", "h", name="lif_h", weight=init.Normal(0.0, 0.2), delay=3)
    net.connect("h", "out", name="h_out", weight=init.Normal(0.0, 0.2))
    net.connect("lif", "out", name="lif_out", weight=init.Normal(0.0, 0.2), delay=1)
    return net


def _mixed_data(B: int = 4, T: int = 60):
    rng = np.random.default_rng(6)
    return (rng.random((B, T, 30)) < 0.12).astype(np.uint8), rng.integers(0, 3, B)


def _both(net, B: int, rule, optimizer=None, **cuda):
    """The CPU and the CUDA model of ``net``."""
    return [
        snncc.compile(net, batch_size=B, backend=b, rule=rule, optimizer=optimizer, **kw)
        for b, kw in (("cpu", {}), ("cuda", cuda))
    ]


def _agree(cpu, gpu, x, y, *, orders: bool = True) -> dict[str, np.ndarray]:
    """CUDA's gradients (every order alike) equal the CPU's within RTOL; the CPU's returned."""
    g_cpu = cpu.gradients(x, y)
    g_gpu = same_in_every_order(lambda: gpu.gradients(x, y)) if orders else gpu.gradients(x, y)
    assert g_gpu.keys() == g_cpu.keys()
    for k in g_cpu:
        assert np.abs(g_cpu[k]).max() > 0, k  # the check compares something
        assert rel(g_gpu[k], g_cpu[k]) < RTOL, (k, rel(g_gpu[k], g_cpu[k]))
    return g_cpu


@pytest.mark.parametrize("kind", ["lif", "alif", "cuba"])
def test_cuda_bptt_of_recurrent_networks_equals_the_cpu(cuda_emulator, kind):
    net, _, _ = recurrent(kind)
    x, labels = _data()
    cpu, gpu = _both(net, 4, snncc.rules.BPTT(readout="out"))
    names = [launch.name for launch in gpu.plan.manifest["gradient"]]
    assert "bptt_backward" in names and "backward_h" not in names
    _agree(cpu, gpu, x, labels)


@pytest.mark.usefixtures("cuda_target")
def test_cuda_bptt_and_trained_parameters_match_the_cpu():
    """On the emulator, and on a real GPU when there is one (its expf may differ from glibc's
    by an ulp, so 1e-4 here); then Adam steps on both."""
    net = _mixed_net()
    x, labels = _mixed_data()
    rule, opt = snncc.rules.BPTT(readout="out"), snncc.optim.Adam(1e-2)
    cpu, gpu = _both(net, 4, rule, opt)
    g_cpu, g_gpu = cpu.gradients(x, labels), gpu.gradients(x, labels)
    for k in g_cpu:
        assert rel(g_gpu[k], g_cpu[k]) < 1e-4, (k, rel(g_gpu[k], g_cpu[k]))
    for model in (cpu, gpu):
        for _ in range(3):
            model.train_batch(x, labels)
    for k in ("h.tau_m", "h.v_th", "lif.tau_m"):
        np.testing.assert_allclose(gpu.params[k], cpu.params[k], rtol=1e-4, err_msg=k)
    for k in ("in_h", "h_h", "h_lif", "lif_h"):
        np.testing.assert_allclose(gpu.weights[k], cpu.weights[k], atol=1e-4, err_msg=k)


def test_the_comparison_tells_bptt_from_eprop(cuda_emulator):
    """The check above can fail: CUDA's eProp, which drops the recurrent path, is far from the
    CPU's BPTT on the same network."""
    net, _, _ = recurrent("alif")
    x, labels = _data()
    exact = snncc.compile(net, 4, backend="cpu", rule=snncc.rules.BPTT(readout="out"))
    eprop = snncc.compile(
        net, 4, backend="cuda", rule=snncc.rules.EProp(readout="out", c_reg=0.0)
    ).gradients(x, labels)
    assert rel(eprop["in_h"], exact.gradients(x, labels)["in_h"]) > 1e-3


@pytest.mark.parametrize("case", ["mixed_0_to_5", "mixed_long"])
def test_cuda_bptt_through_two_populations_with_delays_equals_the_cpu(cuda_emulator, case):
    """Two recurrent populations, each feeding the other, delays 0 to 5: a step's Q of the
    later one is the earlier one's signal (the order within a step matters)."""
    net, _, _ = two_populations(DELAYS[case], seed=2)
    x, labels = _data(seed=4, B=3, T=70, n=6)
    cpu, gpu = _both(net, 3, snncc.rules.BPTT(readout="out"))
    assert [p for p in cpu.run(x, record=["h1", "h2"]).values() if p.mean() > 0.01]
    _agree(cpu, gpu, x, labels)


@pytest.mark.parametrize("regularizer", ["moving", "sequence"])
def test_cuda_bptt_with_sparse_delayed_and_regularised_populations_equals_the_cpu(
    cuda_emulator, regularizer
):
    """Refractory heterogeneous ALIF and a LIF, a sparse projection, a delayed backward one."""
    rng = np.random.default_rng(1)
    x, y = (rng.random((4, 80, 70)) < 0.05).astype(np.uint8), rng.integers(0, 5, 4)
    rule = snncc.rules.BPTT(readout="output", regularizer=regularizer, c_reg=0.05)
    cpu, gpu = _both(_nets(), 4, rule)
    assert any(q.sparse for q in map(gpu.plan.proj, gpu.plan.training.hidden["hidden"].outgoing))
    _agree(cpu, gpu, x, y)


def test_cuda_bptt_with_q_in_global_memory_and_several_neurons_per_thread(
    cuda_emulator, monkeypatch
):
    """Q rings too big for shared memory are read back from the global Q histories, and a
    population wider than the block gives each thread several neurons: same gradients."""
    from snncc.runtime import plan_cache

    monkeypatch.setattr(plan_cache, "load", lambda key: None)  # rendered with these limits
    monkeypatch.setattr(cuda_layout, "Q_SHARED_LIMIT", 0)
    monkeypatch.setattr(cuda_layout, "EXACT_THREADS", 32)
    net, _, _ = recurrent("alif", N=70, trainable=("tau_m", "v_th"))
    x, labels = _data()
    cpu, gpu = _both(net, 4, snncc.rules.BPTT(readout="out"))
    x_layout = cuda_layout.layout(gpu.plan).exact
    assert x_layout.threads == 32 and x_layout.per_thread["h"] == 3
    assert not x_layout.q_rings["h"].shared and x_layout.shared == 0
    source = gpu.sources()["network.cu"].split("void __launch_bounds__(32) bptt_backward")[1]
    assert "qr_h = h_Q + " in source and "lam_h2_0" in source  # global Q, 3 neurons a thread
    _agree(cpu, gpu, x, labels)


@pytest.mark.parametrize("kind", list(TRAINED))
@pytest.mark.parametrize("rule", ["EProp", "BPTT"])
def test_cuda_trained_neuron_parameters_equal_the_cpu(cuda_emulator, kind, rule):
    """tau_m, v_th (LIF); tau_m, tau_a, beta, v_th (ALIF); tau_m, tau_s (CubaLIF), per neuron,
    under both rules (eProp: its own parameter gradients, the same recursions)."""
    net, _, _ = recurrent(kind, seed=10, trainable=TRAINED[kind], hetero=kind != "cuba")
    x, labels = _data(seed=11)
    options = {"c_reg": 0.0} if rule == "EProp" else {}
    cpu, gpu = _both(net, 4, getattr(snncc.rules, rule)(readout="out", **options))
    g = _agree(cpu, gpu, x, labels)
    assert {f"h.{p}" for p in TRAINED[kind]} <= set(g)


COUPLED = {
    "eprop": snncc.rules.EProp(readout="out"),
    "bptt": snncc.rules.BPTT(readout="out"),
    # NEST's mean over the counted steps: the parameters' batch sums are scaled on the device
    "bptt-average": snncc.rules.BPTT(readout="out", average_gradient=True, error_start=10),
}


@pytest.mark.parametrize("case", COUPLED)
def test_cuda_parameters_of_two_coupled_populations_equal_the_cpu(cuda_emulator, case):
    x, labels = _mixed_data()
    cpu, gpu = _both(_mixed_net(), 4, COUPLED[case])
    rec = cpu.run(x, record=["h", "lif"])
    assert rec["h"].mean() > 0.01 and rec["lif"].mean() > 0.01  # both carry spikes
    g = _agree(cpu, gpu, x, labels)
    assert {"h.tau_m", "h.v_th", "h.tau_a", "h.beta", "lif.tau_m"} <= set(g)


def test_cuda_bptt_and_parameter_kernels_read_only_what_they_own(cuda_emulator, tmp_path):
    """AddressSanitizer (tests/cudaemu): training steps under BPTT and eProp with trained
    parameters, Q in shared and in global memory, one and several neurons per thread."""
    from tests.test_cuda_emulated import _ASAN_PRELUDE, _asan_run

    script = """
    import snncc
    from snncc.codegen import cuda_layout
    from snncc.runtime import plan_cache
    from tests.test_cuda_bptt import _mixed_data, _mixed_net
    plan_cache.load = lambda key: None  # rendered with the limits below
    x, y = _mixed_data(B=3, T=12)
    for shared, threads in ((64 << 10, 1024), (0, 32)):
        cuda_layout.Q_SHARED_LIMIT, cuda_layout.EXACT_THREADS = shared, threads
        for rule in (snncc.rules.BPTT(readout="out", regularizer="sequence", c_reg=0.1),
                     snncc.rules.EProp(readout="out")):
            model = snncc.compile(_mixed_net(), batch_size=4, backend="cuda", rule=rule,
                                  optimizer=snncc.optim.Adam(1e-3))
            model.train_batch(x, y)
            source = model.sources()["network.cu"]
            assert ("qr_h = h_Q + " in source) == (rule.exact and shared == 0)
    print("clean")
    """
    proc = _asan_run(_ASAN_PRELUDE + script, tmp_path)
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.filterwarnings("ignore:training is diverging")
@pytest.mark.parametrize("rule", ["EProp", "BPTT"])
def test_cuda_optimiser_steps_keep_positive_parameters_at_the_floor(cuda_emulator, rule):
    """Adam steps of 30 (about 30 per parameter, whatever its gradient's size): the CUDA steps
    equal the CPU's, and a time constant or threshold a step would take below 0 stays at the
    floor (1e-3)."""
    net, _, _ = recurrent("alif", trainable=("tau_m", "v_th", "tau_a", "beta"), hetero=True)
    x, labels = _data()
    cpu, gpu = _both(net, 4, getattr(snncc.rules, rule)(readout="out"), snncc.optim.Adam(30.0))
    g = cpu.gradients(x, labels)
    for _ in range(3):
        cpu.train_batch(x, labels)
        gpu.train_batch(x, labels)
    at_floor = 0
    for p in ("h.tau_m", "h.v_th", "h.tau_a", "h.beta"):
        np.testing.assert_allclose(gpu.params[p], cpu.params[p], rtol=1e-5, atol=1e-6, err_msg=p)
        if p in ("h.tau_m", "h.v_th", "h.tau_a"):  # declared positive
            assert np.all(gpu.params[p] >= np.float32(1e-3)), p
            at_floor += int(np.sum(gpu.params[p] == np.float32(1e-3)))
    assert at_floor > 0  # some step did reach below 0
    assert np.any(np.abs(g["h.beta"]) > 0)
    assert np.any(gpu.params["h.beta"] < 0)  # beta is not positive: nothing floors it


def test_cuda_bptt_on_two_devices_sums_the_parameter_gradients(emulated_nccl):
    """Two devices all-reduce where the gradients live: the hidden phase's last launch marks the
    trained neuron parameters ready too, so their sums equal the CPU's (an uneven batch)."""
    net, _, _ = recurrent("lif", trainable=("tau_m", "v_th"))
    x, labels = _data(B=7)  # 4 on the first device, 3 (less than its capacity) on the second
    rule = snncc.rules.BPTT(readout="out")
    cpu = snncc.compile(net, 7, backend="cpu", rule=rule)
    two = snncc.compile(net, 4, backend="cuda", devices=[0, 1], rule=rule)
    assert two._engine._device_reducer() is not None
    last = two.plan.manifest["gradient"][-1]
    assert last.name == "sum_batch_hidden" and {"grad_h_tau_m", "grad_h_v_th"} <= set(last.ready)
    _agree(cpu, two, x, labels, orders=False)


def test_cuda_bptt_step_launches():
    """The SHD network under BPTT: the readout's gradients first (ready for a reducer), then the
    weights transposed, one BPTT backward with a block per batch element, the weight gradients."""
    from snncc.runtime.compiler import plan_and_render

    rule = snncc.rules.BPTT(readout="output")
    plan, _, _ = plan_and_render(_shd_net(), 512, "cuda", rule, snncc.optim.Adam())
    step = plan.manifest["gradient"] + plan.manifest["optimize"]
    assert [launch.name for launch in step] == [
        "forward",
        "transpose_spikes",
        "backward_output",
        "accumulate_hid_out",
        "sum_parts_readout",
        "reduce_output",
        "transpose_weights",
        "bptt_backward",
        "accumulate_in_hid",
        "accumulate_hid_hid",
        "sum_parts_hidden",
        "optimize",
    ]
    backward = step[7]
    assert backward.grid == ("B",) and backward.block == 256
    assert backward.shared == 4 * 2 * 256  # Q of 2 steps (the recurrent delay 1 + 1)
    assert plan.buffer("wT_hid_hid").shape == (256, 256)
    assert plan.buffer("wT_hid_out").shape == (20, 256)


@needs_nvcc
@pytest.mark.parametrize("arch", [a for a in ARCHS if a != "sm_70"])
def test_bptt_and_parameter_kernels_compile_for_cuda_without_doubles(arch):
    _need_arch(arch)
    cases = [  # (network, rule, whether neuron parameters are trained)
        (_nets(), snncc.rules.BPTT(readout="output", regularizer="sequence", c_reg=0.1), False),
        (recurrent("alif", trainable=TRAINED["alif"])[0], snncc.rules.BPTT(readout="out"), True),
        (recurrent("cuba", trainable=TRAINED["cuba"])[0], snncc.rules.EProp(readout="out"), True),
    ]
    for net, rule, params in cases:
        src = snncc.generate(net, "cuda", rule=rule, optimizer=snncc.optim.Adam())
        for name, text in src.items():
            ptx = nvcc_compile(text, name, arch, kind="ptx").read_text()
            exact = ".entry bptt_backward(" in ptx and ".entry transpose_weights(" in ptx
            assert exact == rule.exact
            assert (".entry sum_batch_hidden(" in ptx) == params
            assert not re.search(r"\.f64\b", ptx), "a double crept into the float32 kernels"
