"""CUDA: generated sources compile with nvcc here, and they must agree with the CPU.

The comparisons run on the CPU emulation of CUDA always (id "emulated", tests/cudaemu) and on
a real GPU when there is one (id "gpu": needs an NVIDIA GPU and PyCUDA, skipped without).
"""

import re
import subprocess

import numpy as np
import pytest

import snncc
from snncc import init, neurons
from snncc.backends.cuda import nvcc_compile, nvcc_path


def _nets():
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", 70)
    cell = neurons.ALIF(tau_m=np.linspace(10, 30, 64), refractory=5)
    hid = net.add_population("hidden", 64, cell)
    lif = net.add_population("lif", 16, neurons.LIF())
    out = net.add_population("output", 5, neurons.LeakyIntegrator(tau=20.0))
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 0.3))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 0.1), allow_self=False)
    net.connect(hid, lif, name="hid_lif", weight=init.Uniform(0, 0.2), p=0.3)
    net.connect(lif, hid, name="lif_hid", weight=0.05)  # backward projection: delayed
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 0.1))
    return net


needs_nvcc = pytest.mark.skipif(nvcc_path() is None, reason="nvcc not installed")


@pytest.fixture(params=["emulated", pytest.param("gpu", marks=pytest.mark.gpu)])
def cuda_target(request):
    """Where backend='cuda' runs: the emulator (installed as pycuda) or the real GPU."""
    if request.param == "emulated":
        request.getfixturevalue("cuda_emulator")
    return request.param


# Volta (the published GeNN comparison's Titan V; CUDA 13 dropped it, its oldest is sm_75) and
# Hopper (H100/H200)
ARCHS = ("sm_70", "sm_75", "sm_90")


def _need_arch(arch: str) -> None:
    """Skip, saying why, when this nvcc cannot build for ``arch``."""
    listed = subprocess.run([nvcc_path(), "--list-gpu-arch"], capture_output=True, text=True)
    if f"compute_{arch[3:]}" not in listed.stdout.split():
        pytest.skip(f"this nvcc cannot build for {arch} (it lists {listed.stdout.split()})")


@needs_nvcc
@pytest.mark.parametrize("arch", ARCHS)
def test_every_generated_cuda_source_compiles_to_ptx_without_doubles(arch):
    _need_arch(arch)
    for name, src in snncc.generate(_nets(), "cuda").items():
        ptx = nvcc_compile(src, name, arch, kind="ptx").read_text()
        assert ".entry simulate" in ptx
        assert not re.search(r"\.f64\b", ptx), "a double crept into the float32 kernels"


def _compare(net, x, keys, **tol):
    cpu = snncc.compile(net, batch_size=4, backend="cpu").run(x, record=keys)
    gpu = snncc.compile(net, batch_size=4, backend="cuda", device=0).run(x, record=keys)
    for k in keys:
        np.testing.assert_allclose(gpu[k], cpu[k], err_msg=k, **tol)


def test_cuda_matches_cpu(cuda_target):
    net = _nets()
    x = (np.random.default_rng(0).random((4, 200, 70)) < 0.05).astype(np.uint8)
    # --fmad=false and the same summation order make them agree (to float rounding of sums)
    _compare(net, x, ["hidden", "lif", "hidden.v", "output.v"], rtol=1e-5, atol=1e-5)


def _delay_net(delays: dict[str, int]):
    """Two hidden populations (refractory ALIF, LIF) with delayed, sparse and dense projections;
    ``delays`` by projection name (missing: the default, 0 from earlier, 1 otherwise)."""
    net = snncc.Network(dt=1.0, seed=3)
    inp = net.add_input("input", 40)
    hid = net.add_population("hidden", 32, neurons.ALIF(refractory=2))
    lif = net.add_population("lif", 16, neurons.LIF())
    out = net.add_population("output", 4, neurons.LeakyIntegrator(tau=20.0))
    d = delays.get
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 0.4), delay=d("in_hid"))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 0.2), allow_self=False,
                delay=d("hid_hid"))  # fmt: skip
    net.connect(hid, lif, name="hid_lif", weight=init.Uniform(0, 0.3), p=0.4, delay=d("hid_lif"))
    net.connect(lif, hid, name="lif_hid", weight=0.08, delay=d("lif_hid"))
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 0.2), delay=d("hid_out"))
    net.connect(lif, out, name="lif_out", weight=init.Normal(0.0, 0.2), delay=d("lif_out"))
    return net


def _uniform_delays(d: int) -> dict[str, int]:
    """Every projection delayed d steps (at least 1 where the spike is not known in time)."""
    later = ("hid_hid", "lif_hid")
    names = ("in_hid", "hid_lif", "hid_out", "lif_out", *later)
    return {n: max(d, 1) if n in later else d for n in names}


#: delays 0-5 on every projection, and a mix of them (ring lengths 2 to 6)
DELAY_CASES = {f"delay-{d}": _uniform_delays(d) for d in range(6)}
DELAY_CASES["mixed"] = {"in_hid": 3, "hid_hid": 1, "hid_lif": 0, "lif_hid": 5, "hid_out": 2,
                        "lif_out": 4}  # fmt: skip


def _train_net(sparse=False):
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", 70)
    hid = net.add_population("hidden", 64, neurons.ALIF(refractory=5))
    out = net.add_population("output", 5, neurons.LeakyIntegrator(tau=20.0))
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 0.3), p=0.5 if sparse else None)
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 0.1), allow_self=False)
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 0.1))
    return net


@needs_nvcc
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("regularizer", ["moving", "sequence"])
def test_training_kernels_compile_for_cuda(regularizer, arch):
    _need_arch(arch)
    rule = snncc.rules.EProp(readout="output", regularizer=regularizer, c_reg=0.1)
    src = snncc.generate(_train_net(sparse=True), "cuda", rule=rule, optimizer=snncc.optim.Adam())
    for name, text in src.items():
        ptx = nvcc_compile(text, name, arch, kind="ptx").read_text()
        kernels = ("forward", "evaluate", "transpose_spikes", "backward_hidden", "backward_output")
        kernels += ("accumulate_in_hid", "accumulate_hid_out", "reduce_output", "optimize")
        for kernel in kernels:
            assert f".entry {kernel}(" in ptx, kernel
        assert not re.search(r"\.f64\b", ptx)


def test_cuda_gradients_and_training_match_cpu(cuda_target):
    rng = np.random.default_rng(1)
    x = (rng.random((8, 120, 70)) < 0.05).astype(np.uint8)
    y = rng.integers(0, 5, 8)
    rule = snncc.rules.EProp(readout="output", c_reg=0.01)
    models = [
        snncc.compile(
            _train_net(), batch_size=8, backend=b, rule=rule, optimizer=snncc.optim.Adam(1e-3)
        )
        for b in ("cpu", "cuda")
    ]
    g_cpu, g_gpu = (m.gradients(x, y) for m in models)
    for k in g_cpu:
        scale = np.abs(g_cpu[k]).max() + 1e-12
        assert np.abs(g_gpu[k] - g_cpu[k]).max() / scale < 1e-4, k
    for m in models:
        for _ in range(3):
            m.train_batch(x, y)
    for k in ("in_hid", "hid_hid", "hid_out"):
        np.testing.assert_allclose(models[1].weights[k], models[0].weights[k], atol=1e-5)


def _shd_net(hidden: int = 256) -> snncc.Network:
    """The SHD network of the published comparison: 700 -> recurrent ALIF -> 20."""
    net = snncc.Network(dt=1.0, seed=0)
    inp = net.add_input("input", 700)
    cell = neurons.ALIF(tau_m=20.0, tau_a=2000.0, beta=0.0174, v_th=0.6, refractory=5)
    hid = net.add_population("hidden", hidden, cell)
    out = net.add_population("output", 20, neurons.LeakyIntegrator(tau=20.0))
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 1 / np.sqrt(700)))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 1 / np.sqrt(hidden)),
                allow_self=False)  # fmt: skip
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 1 / np.sqrt(hidden)))
    return net


def test_cuda_training_step_is_eleven_launches_reading_the_input_bits():
    """No launch per step, no float copy of the inputs, no float spike history; the readout's
    gradients are complete before the hidden backward starts (a reducer can start on them)."""
    from snncc.runtime.compiler import plan_and_render

    rule = snncc.rules.EProp(readout="output")
    plan, _, _ = plan_and_render(_shd_net(), 512, "cuda", rule, snncc.optim.Adam())
    step = plan.manifest["gradient"] + plan.manifest["optimize"]
    assert [launch.name for launch in step] == [
        "forward",
        "transpose_spikes",
        "backward_output",
        "accumulate_hid_out",
        "sum_parts_readout",
        "reduce_output",
        "backward_hidden",
        "accumulate_in_hid",
        "accumulate_hid_hid",
        "sum_parts_hidden",
        "optimize",
    ]
    ready = {launch.name: launch.ready for launch in step if launch.ready}
    assert ready == {
        "reduce_output": ("grad_hid_out", "grad_output_bias"),
        "sum_parts_hidden": ("grad_in_hid", "grad_hid_hid"),
    }
    assert step[0].grid == ("B",) and step[0].block == 256  # a block per batch element
    per_step = [b for b in plan.buffers if "T" in b.shape]
    floats = {b.name for b in per_step if b.ctype == "float"}
    assert not any("input" in name for name in floats)
    assert {b.name for b in per_step if b.ctype == "unsigned"} == {
        "input_bits",
        "rec_input",
        "rec_hidden",
        "hist_hidden_zbits",
    }
    rows = plan.buffer("rows_input")
    assert rows.shape == (700, "B", "TW") and rows.ctype == "unsigned"
