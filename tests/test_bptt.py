"""Exact BPTT (snncc.rules.BPTT) and trainable neuron parameters against torch autograd.

The reference (tests/reference/torch_network.py) writes every neuron's step by hand in torch
and differentiates the summed loss: recurrent LIF and ALIF, README's CubaLIF, two recurrent
populations with delays, and parameters (tau_m, v_th, tau_a, beta) trained per neuron. snncc
computes in float32, the reference in float64 from the same float32 values; both must spike
alike, and gradients agree within 1e-5 relative (max|a - b| / max|b|).
"""

from __future__ import annotations

import numpy as np
import pytest

import snncc
from snncc import neurons

torch_network = pytest.importorskip("tests.reference.torch_network")

RTOL = 1e-5
V_TH, GAMMA = 0.5, 0.3


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def cuba(trainable=()) -> snncc.NeuronModel:
    """README's current-based LIF: the input kicks a current that decays into the membrane."""
    return snncc.NeuronModel(
        "CubaLIF",
        params={"tau_m": 20.0, "tau_s": 5.0, "v_th": V_TH, "gamma": GAMMA},
        state={"v": 0.0, "I": 0.0},
        dynamics=["dv/dt = (-v + I) / tau_m", "dI/dt = -I / tau_s"],
        input={"I": "I_syn"},
        threshold="v > v_th",
        reset={"v": "v - v_th"},
        surrogate="gamma / v_th * max(0, 1 - abs(margin) / v_th)",
        trainable=trainable,
        positive=("tau_m", "tau_s", "v_th"),
    )


KINDS = {
    "lif": (lambda tr: neurons.LIF(tau_m=20.0, v_th=V_TH, gamma=GAMMA, trainable=tr),
            {"tau_m": 20.0, "v_th": V_TH, "gamma": GAMMA}),
    "alif": (lambda tr: neurons.ALIF(tau_m=20.0, tau_a=60.0, beta=0.2, v_th=V_TH, gamma=GAMMA,
                                     trainable=tr),
             {"tau_m": 20.0, "tau_a": 60.0, "beta": 0.2, "v_th": V_TH, "gamma": GAMMA}),
    "cuba": (cuba, {"tau_m": 20.0, "tau_s": 5.0, "v_th": V_TH, "gamma": GAMMA}),
}  # fmt: skip


def recurrent(kind: str, seed: int = 0, N: int = 20, trainable=(), hetero=False):
    make, params = KINDS[kind]
    rng = np.random.default_rng(seed)
    W = {
        "in_h": (rng.normal(0, 1.2, (8, N)) / np.sqrt(8)).astype(np.float32),
        "h_h": (rng.normal(0, 1.0, (N, N)) / np.sqrt(N)).astype(np.float32),
        "h_out": (rng.normal(0, 1.0, (N, 3)) / np.sqrt(N)).astype(np.float32),
    }
    np.fill_diagonal(W["h_h"], 0)
    if hetero:  # per-neuron values, which the trained parameters are anyway
        params = {**params, "tau_m": rng.uniform(10, 30, N)}
    net = snncc.Network(dt=1.0)
    net.add_input("input", 8)
    model = make(trainable)
    if hetero:
        model = model.with_params(tau_m=params["tau_m"])
    net.add_population("h", N, model)
    net.add_population("out", 3, neurons.LeakyIntegrator(tau=20.0))
    net.connect("input", "h", name="in_h", weight=W["in_h"])
    net.connect("h", "h", name="h_h", weight=W["h_h"], allow_self=False)
    net.connect("h", "out", name="h_out", weight=W["h_out"])
    mask = ~np.eye(N, dtype=bool)
    pops = [
        torch_network.Pop("input", 8, "input"),
        torch_network.Pop("h", N, kind, params),
        torch_network.Pop("out", 3, "readout", {"tau": 20.0, "bias": 0.0}),
    ]
    projs = [
        torch_network.Proj("in_h", "input", "h", W["in_h"], 0),
        torch_network.Proj("h_h", "h", "h", W["h_h"], 1, mask=mask.astype(np.float32)),
        torch_network.Proj("h_out", "h", "out", W["h_out"], 0),
    ]
    return net, pops, projs


def _data(seed=3, B=4, T=80, n=8):
    rng = np.random.default_rng(seed)
    return (rng.random((B, T, n)) < 0.2).astype(np.uint8), rng.integers(0, 3, B)


def _check(g, ref, names):
    for name in names:
        assert rel(g[name], ref[name]) < RTOL, (name, rel(g[name], ref[name]))


@pytest.mark.parametrize("kind", list(KINDS))
def test_bptt_gradients_of_recurrent_networks_equal_autograd(kind):
    net, pops, projs = recurrent(kind)
    x, labels = _data()
    ref = torch_network.run(pops, projs, x, labels)
    model = snncc.compile(net, batch_size=4, rule=snncc.rules.BPTT(readout="out"))
    rec = model.run(x, record=["h"])["h"]
    assert 0.02 < rec.mean() < 0.5, rec.mean()
    np.testing.assert_array_equal(rec, ref["z:h"].astype(np.uint8))
    _check(model.gradients(x, labels), ref, ("in_h", "h_h", "h_out", "out.bias"))


def test_eprop_drops_the_recurrent_path_that_bptt_follows():
    """On the recurrent network eProp's W_in gradient differs from the exact one (the test above
    is not vacuous), while on the feed-forward network both rules give the same gradients."""
    net, pops, projs = recurrent("alif")
    x, labels = _data()
    ref = torch_network.run(pops, projs, x, labels)
    eprop = snncc.compile(net, batch_size=4, rule=snncc.rules.EProp(readout="out", c_reg=0.0))
    g = eprop.gradients(x, labels)
    assert rel(g["in_h"], ref["in_h"]) > 1e-3
    ff = snncc.Network(dt=1.0)
    ff.add_input("input", 8)
    ff.add_population("h", 20, neurons.ALIF(tau_a=60.0, beta=0.2, v_th=V_TH, gamma=GAMMA))
    ff.add_population("out", 3, neurons.LeakyIntegrator(tau=20.0))
    ff.connect("input", "h", name="in_h", weight=net.projections["in_h"].weight)
    ff.connect("h", "out", name="h_out", weight=net.projections["h_out"].weight)
    ge = snncc.compile(ff, 4, rule=snncc.rules.EProp(readout="out", c_reg=0.0)).gradients(x, labels)
    gb = snncc.compile(ff, 4, rule=snncc.rules.BPTT(readout="out")).gradients(x, labels)
    for name in ("in_h", "h_out", "out.bias"):
        assert rel(ge[name], gb[name]) < 1e-6, name


def test_bptt_through_two_recurrent_populations_with_delays_equals_autograd():
    from tests.test_delays import DELAYS, two_populations

    net, pops, projs = two_populations(DELAYS["mixed_0_to_5"], seed=2)
    x, labels = _data(seed=4, B=3, T=70, n=6)
    ref = torch_network.run(pops, projs, x, labels)
    model = snncc.compile(net, batch_size=3, rule=snncc.rules.BPTT(readout="out"))
    rec = model.run(x, record=["h1", "h2"])
    for pop in ("h1", "h2"):
        np.testing.assert_array_equal(rec[pop], ref[f"z:{pop}"].astype(np.uint8))
    _check(model.gradients(x, labels), ref, list(net.projections) + ["out.bias"])


def test_bptt_with_the_mse_loss_equals_autograd():
    net, pops, projs = recurrent("lif", seed=5)
    x, _ = _data(seed=6)
    targets = np.random.default_rng(7).normal(0, 1, (4, 80, 3)).astype(np.float32)
    ref = torch_network.run(pops, projs, x, targets=targets)
    rule = snncc.rules.BPTT(readout="out", loss="mse")
    g = snncc.compile(net, batch_size=4, rule=rule).gradients(x, targets)
    _check(g, ref, ("in_h", "h_h", "h_out", "out.bias"))


def test_bptt_with_the_per_sequence_regulariser_equals_autograd():
    """The rate loss c_reg/2 sum (n_spikes/T - f_target)^2 differentiated exactly (reference:
    tests/reference/torch_bptt.py, which writes it out)."""
    from tests.reference.torch_bptt import bptt_gradients

    net, _, _ = recurrent("alif", seed=8)
    x, labels = _data(seed=9)
    W = {k: q.weight for k, q in net.projections.items()}
    f_hz, c_reg = 20.0, 0.5
    ref = bptt_gradients(
        x, W["in_h"], W["h_h"], W["h_out"], np.zeros(3, np.float32), model="alif", tau_a=60.0,
        beta=0.2, v_th=V_TH, gamma=GAMMA, labels=labels, reg="sequence", c_reg=c_reg,
        f_target=f_hz / 1000.0, allow_self=False, dtype=np.float64,
    )  # fmt: skip
    rule = snncc.rules.BPTT(readout="out", regularizer="sequence", c_reg=c_reg, f_target=f_hz)
    g = snncc.compile(net, batch_size=4, rule=rule).gradients(x, labels)
    for name, key in (("in_h", "W_in"), ("h_h", "W_rec"), ("h_out", "W_out")):
        assert rel(g[name], ref[key]) < RTOL, (name, rel(g[name], ref[key]))


TRAINED = {
    "lif": ("tau_m", "v_th"),
    "alif": ("tau_m", "tau_a", "beta", "v_th"),
    "cuba": ("tau_m", "tau_s"),
}


@pytest.mark.parametrize("kind", list(TRAINED))
def test_trained_neuron_parameters_equal_autograd_under_bptt(kind):
    net, pops, projs = recurrent(kind, seed=10, trainable=TRAINED[kind], hetero=kind != "cuba")
    x, labels = _data(seed=11)
    ref = torch_network.run(pops, projs, x, labels, trainable={"h": list(TRAINED[kind])})
    model = snncc.compile(net, batch_size=4, rule=snncc.rules.BPTT(readout="out"))
    g = model.gradients(x, labels)
    assert {f"h.{p}" for p in TRAINED[kind]} <= set(g)
    _check(g, ref, ["in_h", "h_h", *(f"h.{p}" for p in TRAINED[kind])])


@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_trained_neuron_parameters_equal_autograd_under_eprop_feedforward(kind):
    """eProp is exact on a feed-forward network, for the neurons' own parameters too."""
    make, params = KINDS[kind]
    rng = np.random.default_rng(12)
    W_in = (rng.normal(0, 1.2, (8, 20)) / np.sqrt(8)).astype(np.float32)
    W_out = (rng.normal(0, 1, (20, 3)) / np.sqrt(20)).astype(np.float32)
    net = snncc.Network(dt=1.0)
    net.add_input("input", 8)
    net.add_population("h", 20, make(TRAINED[kind]))
    net.add_population("out", 3, neurons.LeakyIntegrator(tau=20.0))
    net.connect("input", "h", name="in_h", weight=W_in)
    net.connect("h", "out", name="h_out", weight=W_out)
    pops = [
        torch_network.Pop("input", 8, "input"),
        torch_network.Pop("h", 20, kind, params),
        torch_network.Pop("out", 3, "readout", {"tau": 20.0, "bias": 0.0}),
    ]
    projs = [
        torch_network.Proj("in_h", "input", "h", W_in, 0),
        torch_network.Proj("h_out", "h", "out", W_out, 0),
    ]
    x, labels = _data(seed=13)
    ref = torch_network.run(pops, projs, x, labels, trainable={"h": list(TRAINED[kind])})
    rule = snncc.rules.EProp(readout="out", c_reg=0.0)
    g = snncc.compile(net, batch_size=4, rule=rule).gradients(x, labels)
    _check(g, ref, ["in_h", "h_out", *(f"h.{p}" for p in TRAINED[kind])])


@pytest.mark.filterwarnings("ignore:training is diverging")
def test_trained_time_constants_and_thresholds_stay_positive():
    net, _, _ = recurrent("lif", trainable=("tau_m", "v_th"))
    x, labels = _data()
    model = snncc.compile(
        net, batch_size=4, rule=snncc.rules.BPTT(readout="out"), optimizer=snncc.optim.SGD(1e3)
    )
    g = model.gradients(x, labels)
    model.train_batch(x, labels)
    for p in ("h.tau_m", "h.v_th"):
        value = model.params[p]
        assert np.all(value > 0), (p, value)
        # a step that would have taken it below zero left it at the floor (1e-3)
        below = (20.0 if p == "h.tau_m" else V_TH) - 1e3 * g[p] <= 0
        assert below.any() and np.allclose(value[below], 1e-3), p


def test_average_gradient_divides_by_the_counted_steps():
    net, _, _ = recurrent("lif")
    x, labels = _data()
    summed = snncc.compile(net, 4, rule=snncc.rules.BPTT(readout="out", error_start=20))
    mean = snncc.compile(
        net, 4, rule=snncc.rules.BPTT(readout="out", error_start=20, average_gradient=True)
    )
    gs, gm = summed.gradients(x, labels), mean.gradients(x, labels)
    for name in gs:
        np.testing.assert_allclose(gm[name], gs[name] / (80 - 20), rtol=1e-6, atol=1e-12)


def test_nest_adam_places_epsilon_outside_the_bias_correction():
    """One step of each Adam variant against the formula written out here."""
    g, lr, b1, b2, eps = np.float64(0.3), 0.01, 0.9, 0.999, 1e-2
    m, v = (1 - b1) * g, (1 - b2) * g * g
    c1, c2 = 1 - b1, 1 - b2
    expect = {
        "bias_corrected": -lr * (m / c1) / (np.sqrt(v / c2) + eps),
        "nest": -lr * np.sqrt(c2) / c1 * m / (np.sqrt(v) + eps),
    }
    assert abs(expect["nest"] - expect["bias_corrected"]) > 1e-6  # they differ
    for placement, step in expect.items():
        net = snncc.Network()
        net.add_input("input", 1)
        net.add_population("h", 1, neurons.LIF())
        net.add_population("out", 1, neurons.LeakyIntegrator(bias=False))
        net.connect("input", "h", weight=0.0, trainable=False)
        net.connect("h", "out", name="w", weight=0.0)
        opt = snncc.optim.Adam(lr, eps=eps, epsilon=placement)
        model = snncc.compile(net, 1, rule=snncc.rules.EProp(readout="out", loss="mse"),
                              optimizer=opt)  # fmt: skip
        prog = model.programs[0]  # one optimiser step on the gradient g, set directly
        prog.set("grad_w", np.array([g], np.float32))
        model.step = 1
        scalars = np.array([*opt.scalars(1), -3.4e38, 3.4e38], np.float32)
        prog.set("opt_scalars", scalars)
        prog.set("opt_health", np.zeros((1, 2), np.float32))
        prog.run("optimize", 1, 1)
        assert model.weights["w"][0, 0] == pytest.approx(step, rel=1e-5), placement
