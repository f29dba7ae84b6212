"""Synaptic delays: a spike of step t arrives at step t + d.

Simulations with delays 0-5 (and mixed, across populations declared in either order) equal an
independent torch simulation spike for spike; gradients on a feed-forward network equal torch
autograd (eProp is exact there, delays or not), and recurrent gradients equal the NumPy e-prop
with the same delays, under both eProp strategies.
"""

from __future__ import annotations

import numpy as np
import pytest

import snncc
from snncc import neurons
from tests.reference.numpy_eprop import eprop_gradients

torch_network = pytest.importorskip("tests.reference.torch_network")

V_TH, GAMMA, TAU_A, BETA = 0.5, 0.3, 60.0, 0.2


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def dyadic(rng, shape, scale) -> np.ndarray:
    """Weights that are multiples of 1/64: float32 sums of them are exact in any order, so the
    reference's matmul and snncc's event-driven sums give the same voltages."""
    return (np.round(rng.normal(0, scale, shape) * 64) / 64).astype(np.float32)


def two_populations(d: dict, seed: int = 0):
    """input -> h1 (ALIF) <-> h2 (LIF) -> out, every projection with the delay ``d`` gives it."""
    rng = np.random.default_rng(seed)
    W = {
        "in_h1": dyadic(rng, (6, 12), 0.6),
        "h1_h1": dyadic(rng, (12, 12), 0.3),
        "h1_h2": dyadic(rng, (12, 8), 0.5),
        "h2_h1": dyadic(rng, (8, 12), 0.3),
        "h1_out": dyadic(rng, (12, 3), 0.3),
        "h2_out": dyadic(rng, (8, 3), 0.3),
    }
    ends = {
        "in_h1": ("input", "h1"),
        "h1_h1": ("h1", "h1"),
        "h1_h2": ("h1", "h2"),
        "h2_h1": ("h2", "h1"),
        "h1_out": ("h1", "out"),
        "h2_out": ("h2", "out"),
    }
    net = snncc.Network(dt=1.0)
    net.add_input("input", 6)
    alif = neurons.ALIF(tau_m=20.0, tau_a=TAU_A, beta=BETA, v_th=V_TH, gamma=GAMMA)
    net.add_population("h1", 12, alif)
    net.add_population("h2", 8, neurons.LIF(tau_m=15.0, v_th=V_TH, gamma=GAMMA))
    net.add_population("out", 3, neurons.LeakyIntegrator(tau=20.0))
    for name, (pre, post) in ends.items():
        net.connect(pre, post, name=name, weight=W[name], delay=d[name])
    pops = [
        torch_network.Pop("input", 6, "input"),
        torch_network.Pop(
            "h1", 12, "alif",
            {"tau_m": 20.0, "tau_a": TAU_A, "beta": BETA, "v_th": V_TH, "gamma": GAMMA},
        ),
        torch_network.Pop("h2", 8, "lif", {"tau_m": 15.0, "v_th": V_TH, "gamma": GAMMA}),
        torch_network.Pop("out", 3, "readout", {"tau": 20.0, "bias": 0.0}),
    ]  # fmt: skip
    projs = [
        torch_network.Proj(name, *ends[name], W[name], net.projections[name].delay) for name in W
    ]
    return net, pops, projs


DELAYS = {
    "implicit": {k: None for k in ("in_h1", "h1_h1", "h1_h2", "h2_h1", "h1_out", "h2_out")},
    "all_2": dict.fromkeys(("in_h1", "h1_h1", "h1_h2", "h2_h1", "h1_out", "h2_out"), 2),
    "mixed_0_to_5": {
        "in_h1": 3, "h1_h1": 5, "h1_h2": 0, "h2_h1": 1, "h1_out": 4, "h2_out": 0,
    },
    "mixed_long": {
        "in_h1": 0, "h1_h1": 1, "h1_h2": 5, "h2_h1": 4, "h1_out": 1, "h2_out": 2,
    },
}  # fmt: skip


def _inputs(seed: int = 3, B: int = 3, T: int = 60):
    rng = np.random.default_rng(seed)
    return (rng.random((B, T, 6)) < 0.3).astype(np.uint8), rng.integers(0, 3, B)


@pytest.mark.parametrize("case", list(DELAYS))
def test_delayed_simulation_equals_an_independent_simulation(case):
    net, pops, projs = two_populations(DELAYS[case])
    x, labels = _inputs()
    ref = torch_network.run(pops, projs, x, labels)
    rec = snncc.compile(net, batch_size=3).run(x, record=["h1", "h2", "out.v"])
    for pop in ("h1", "h2"):
        assert 0.01 < rec[pop].mean() < 0.6, (pop, rec[pop].mean())
        np.testing.assert_array_equal(rec[pop], ref[f"z:{pop}"].astype(np.uint8), err_msg=pop)
    np.testing.assert_allclose(rec["out.v"], ref["y"], rtol=1e-5, atol=1e-5)


def test_a_delay_shifts_the_spikes_it_carries_by_exactly_its_steps():
    """A chain input -> relay (delay d): every input spike is relayed d steps later."""
    x = np.zeros((1, 30, 1), np.uint8)
    x[0, [2, 9, 17], 0] = 1
    for d in range(6):
        net = snncc.Network()
        net.add_input("input", 1)
        net.add_population("relay", 1, neurons.LIF(tau_m=1.0, v_th=0.5))
        net.connect("input", "relay", weight=1.0, delay=d)
        z = snncc.compile(net, batch_size=1).run(x, record=["relay"])["relay"][0, :, 0]
        assert list(np.flatnonzero(z)) == [2 + d, 9 + d, 17 + d], d


def _feedforward(d_in: int, d_out: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    W_in, W_out = dyadic(rng, (6, 16), 0.6), dyadic(rng, (16, 3), 0.3)
    net = snncc.Network(dt=1.0)
    net.add_input("input", 6)
    net.add_population("h", 16, neurons.ALIF(tau_a=TAU_A, beta=BETA, v_th=V_TH, gamma=GAMMA))
    net.add_population("out", 3, neurons.LeakyIntegrator(tau=20.0))
    net.connect("input", "h", name="in_h", weight=W_in, delay=d_in)
    net.connect("h", "out", name="h_out", weight=W_out, delay=d_out)
    pops = [
        torch_network.Pop("input", 6, "input"),
        torch_network.Pop(
            "h", 16, "alif",
            {"tau_m": 20.0, "tau_a": TAU_A, "beta": BETA, "v_th": V_TH, "gamma": GAMMA},
        ),
        torch_network.Pop("out", 3, "readout", {"tau": 20.0, "bias": 0.0}),
    ]  # fmt: skip
    projs = [
        torch_network.Proj("in_h", "input", "h", W_in, d_in),
        torch_network.Proj("h_out", "h", "out", W_out, d_out),
    ]
    return net, pops, projs


@pytest.mark.parametrize("d_in,d_out", [(0, 0), (3, 0), (0, 2), (4, 3)])
@pytest.mark.parametrize("rule", ["EProp", "EProp-online", "BPTT"])
def test_feedforward_gradients_with_delays_equal_autograd(d_in, d_out, rule):
    """EProp-online: a delayed readout's error meets each synapse's ebar of d_out steps before
    (a shift register in its traces), across the 16-step chunks (T = 70)."""
    net, pops, projs = _feedforward(d_in, d_out)
    x, labels = _inputs(seed=5, B=4, T=70)
    ref = torch_network.run(pops, projs, x, labels)
    if rule == "BPTT":
        r = snncc.rules.BPTT(readout="out")
    else:
        strategy = "online" if rule == "EProp-online" else "factorized"
        r = snncc.rules.EProp(readout="out", c_reg=0.0, strategy=strategy)
    g = snncc.compile(net, batch_size=4, rule=r).gradients(x, labels)
    assert 0.01 < ref["z:h"].mean() < 0.6
    for name in ("in_h", "h_out", "out.bias"):
        assert rel(g[name], ref[name]) < 1e-5, (name, rel(g[name], ref[name]))


@pytest.mark.parametrize("strategy", ["factorized", "online"])
@pytest.mark.parametrize("in_delay,rec_delay", [(2, 1), (0, 3), (4, 5)])
def test_recurrent_eprop_with_delays_equals_numpy_eprop(strategy, in_delay, rec_delay):
    rng = np.random.default_rng(7)
    N_in, N, K, B, T = 8, 16, 3, 3, 80
    W_in = (rng.normal(0, 1.5, (N_in, N)) / np.sqrt(N_in)).astype(np.float32)
    W_rec = (rng.normal(0, 1, (N, N)) / np.sqrt(N)).astype(np.float32)
    np.fill_diagonal(W_rec, 0)
    W_out = (rng.normal(0, 1, (N, K)) / np.sqrt(N)).astype(np.float32)
    b = rng.normal(0, 0.1, K).astype(np.float32)
    x = (rng.random((B, T, N_in)) < 0.15).astype(np.uint8)
    labels = rng.integers(0, K, B)
    net = snncc.Network(dt=1.0)
    net.add_input("input", N_in)
    net.add_population("hidden", N, neurons.ALIF(tau_a=TAU_A, beta=BETA, v_th=V_TH, gamma=GAMMA))
    net.add_population("output", K, neurons.LeakyIntegrator(tau=20.0, bias=b))
    net.connect("input", "hidden", name="in_hid", weight=W_in, delay=in_delay)
    net.connect("hidden", "hidden", name="hid_hid", weight=W_rec, allow_self=False, delay=rec_delay)
    net.connect("hidden", "output", name="hid_out", weight=W_out)
    rule = snncc.rules.EProp(readout="output", regularizer="none", strategy=strategy)
    g = snncc.compile(net, batch_size=B, rule=rule).gradients(x, labels)
    ref = eprop_gradients(
        x, W_in, W_rec, W_out, b, model="alif", tau_a=TAU_A, beta=BETA, v_th=V_TH, gamma=GAMMA,
        labels=labels, dtype=np.float64, allow_self=False, in_delay=in_delay, rec_delay=rec_delay,
    )  # fmt: skip
    assert 0.02 < ref["z"].mean() < 0.5
    for name, key in (("in_hid", "W_in"), ("hid_hid", "W_rec"), ("hid_out", "W_out")):
        assert rel(g[name], ref[key]) < 1e-4, (name, rel(g[name], ref[key]))


def test_bad_delays_are_refused_naming_the_projection():
    net = snncc.Network()
    net.add_input("input", 2)
    net.add_population("h", 3, neurons.LIF())
    with pytest.raises(snncc.ModelError, match=r"'rec'.*delay 0 from 'h' to itself.*delay >= 1"):
        net.connect("h", "h", name="rec", delay=0)
    with pytest.raises(snncc.ModelError, match=r"'in_h'.*delay must be an integer"):
        net.connect("input", "h", name="in_h", delay=1.5)
    with pytest.raises(snncc.ModelError, match=r"'per_syn'.*per-synapse delay arrays.*Split"):
        net.connect("input", "h", name="per_syn", delay=np.ones((2, 3), int))
    with pytest.raises(snncc.ModelError, match=r"more than 1000 steps"):
        net.connect("input", "h", name="far", delay=5000)
