"""CUDA: generated sources compile with nvcc here; on a GPU they must agree with the CPU."""

import re

import numpy as np
import pytest

import snncc
from snncc import init, neurons
from snncc.backends.cuda import nvcc_compile, nvcc_path


def _nets():
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", 70)
    hid = net.add_population("hidden", 64, neurons.ALIF(tau_m=np.linspace(10, 30, 64), refractory=5))
    lif = net.add_population("lif", 16, neurons.LIF())
    out = net.add_population("output", 5, neurons.LeakyIntegrator(tau=20.0))
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 0.3))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 0.1), allow_self=False)
    net.connect(hid, lif, name="hid_lif", weight=init.Uniform(0, 0.2), p=0.3)
    net.connect(lif, hid, name="lif_hid", weight=0.05)  # backward projection: delayed
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 0.1))
    return net


needs_nvcc = pytest.mark.skipif(nvcc_path() is None, reason="nvcc not installed")


@needs_nvcc
def test_every_generated_cuda_source_compiles_to_ptx_without_doubles():
    for name, src in snncc.generate(_nets(), "cuda").items():
        ptx = nvcc_compile(src, name, "sm_80", kind="ptx").read_text()
        assert ".entry update_hidden" in ptx
        assert not re.search(r"\.f64\b", ptx), "a double crept into the float32 kernels"


def _compare(net, x, keys, **tol):
    cpu = snncc.compile(net, batch_size=4, backend="cpu").run(x, record=keys)
    gpu = snncc.compile(net, batch_size=4, backend="cuda", device=0).run(x, record=keys)
    for k in keys:
        np.testing.assert_allclose(gpu[k], cpu[k], err_msg=k, **tol)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    net = _nets()
    x = (np.random.default_rng(0).random((4, 200, 70)) < 0.05).astype(np.uint8)
    # --fmad=false and the same summation order make them agree (to float rounding of sums)
    _compare(net, x, ["hidden", "lif", "hidden.v", "output.v"], rtol=1e-5, atol=1e-5)
