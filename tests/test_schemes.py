"""Integration schemes as data: explicit Runge-Kutta tableaus and symplectic Euler, against
hand-written NumPy steps; the adaptive LIF (SE-adLIF) and its gradients against autograd."""

from __future__ import annotations

import numpy as np
import pytest

import snncc
from snncc import neurons
from snncc.model.neuron import INTEGRATION
from snncc.symbolic.integrate import TABLEAUS, discretize

torch_network = pytest.importorskip("tests.reference.torch_network")


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def test_every_scheme_a_model_may_name_is_implemented():
    assert set(INTEGRATION) == {"auto", "exact", "symplectic_euler", *TABLEAUS}


def _drive(model, I, T=60):
    """One neuron driven by a constant input (a projection from an always-on input)."""
    net = snncc.Network(dt=1.0)
    net.add_input("input", 1)
    net.add_population("n", 1, model)
    net.connect("input", "n", weight=float(I))
    return snncc.compile(net, batch_size=1).run(np.ones((1, T, 1), np.uint8), record=["n.v"])


def _numpy_rk(f, x, dt, tab):
    ks = []
    for row in tab.a:
        ks.append(f(x + dt * sum(float(c) * k for c, k in zip(row, ks, strict=False))))
    return x + dt * sum(float(c) * k for c, k in zip(tab.b, ks, strict=True))


@pytest.mark.parametrize("method", list(TABLEAUS))
def test_explicit_tableaus_equal_a_numpy_runge_kutta(method):
    """dv/dt = (-v**3 + I_syn) / tau, which no method integrates exactly."""
    model = snncc.NeuronModel(
        "Cubic",
        params={"tau": 5.0},
        state={"v": 0.0},
        dynamics=["dv/dt = (-v*v*v + I_syn) / tau"],
        integration=method,
    )
    v = _drive(model, 1.5)["n.v"][0, :, 0]
    ref, x = [], 0.0
    for _ in range(len(v)):
        x = _numpy_rk(lambda u: (-(u**3) + 1.5) / 5.0, x, 1.0, TABLEAUS[method])
        ref.append(x)
    np.testing.assert_allclose(v, ref, rtol=2e-6, atol=1e-6)


def _adlif_numpy(I, T, tau_m=20.0, tau_w=100.0, a=0.5, dt=1.0):
    """SE-adLIF's step without spikes: v first (w old), then w from the new v."""
    em, ew = np.exp(-dt / tau_m), np.exp(-dt / tau_w)
    v = w = 0.0
    vs, ws = [], []
    for _ in range(T):
        v = em * v + (1 - em) * (I - w)
        w = ew * w + (1 - ew) * a * v
        vs.append(v)
        ws.append(w)
    return np.array(vs), np.array(ws)


def test_symplectic_euler_steps_each_state_from_the_new_values_before_it():
    fast = {"tau_m": 4.0, "tau_w": 6.0, "a": 2.0, "v_th": 1e6}  # no spikes: the dynamics alone
    net = snncc.Network(dt=1.0)
    net.add_input("input", 1)
    net.add_population("n", 1, neurons.AdLIF(**fast))
    net.connect("input", "n", weight=0.8)
    x = np.ones((1, 200, 1), np.uint8)
    rec = snncc.compile(net, batch_size=1).run(x, record=["n.v", "n.w"])
    v, w = _adlif_numpy(0.8, 200, tau_m=4.0, tau_w=6.0, a=2.0)
    np.testing.assert_allclose(rec["n.v"][0, :, 0], v, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rec["n.w"][0, :, 0], w, rtol=1e-5, atol=1e-7)
    # the scheme matters: Euler integration of the same ODEs gives another trace
    trace = _drive(neurons.AdLIF(**fast, integration="euler"), 0.8, 200)
    assert rel(trace["n.v"][0, :, 0], v) > 1e-2


def test_symplectic_update_is_readable_and_hoisted():
    text = str(discretize(neurons.AdLIF()))
    assert "integration: symplectic_euler" in text and "const v_decay = exp(-dt/tau_m)" in text


def _adlif_net(trainable=(), recurrent=True, seed=0, N=16):
    rng = np.random.default_rng(seed)
    params = {"tau_m": 20.0, "tau_w": 100.0, "a": 0.5, "b": 1.0, "v_th": 0.5, "gamma": 0.3}
    W = {  # the membrane takes (1 - exp(-dt/tau_m)) of its input: strong weights
        "in_h": (rng.normal(0.5, 15.0, (6, N)) / np.sqrt(6)).astype(np.float32),
        "h_h": (rng.normal(0, 5.0, (N, N)) / np.sqrt(N)).astype(np.float32),
        "h_out": (rng.normal(0, 1.0, (N, 3)) / np.sqrt(N)).astype(np.float32),
    }
    net = snncc.Network(dt=1.0)
    net.add_input("input", 6)
    net.add_population("h", N, neurons.AdLIF(**params, trainable=trainable))
    net.add_population("out", 3, neurons.LeakyIntegrator(tau=20.0))
    net.connect("input", "h", name="in_h", weight=W["in_h"])
    projs = [torch_network.Proj("in_h", "input", "h", W["in_h"], 0)]
    if recurrent:
        net.connect("h", "h", name="h_h", weight=W["h_h"])
        projs.append(torch_network.Proj("h_h", "h", "h", W["h_h"], 1))
    net.connect("h", "out", name="h_out", weight=W["h_out"])
    projs.append(torch_network.Proj("h_out", "h", "out", W["h_out"], 0))
    pops = [
        torch_network.Pop("input", 6, "input"),
        torch_network.Pop("h", N, "adlif", params),
        torch_network.Pop("out", 3, "readout", {"tau": 20.0, "bias": 0.0}),
    ]
    return net, pops, projs


@pytest.mark.parametrize("rule,recurrent", [("EProp", False), ("BPTT", True)])
def test_adlif_gradients_with_trained_parameters_equal_autograd(rule, recurrent):
    trained = ("tau_m", "tau_w", "a", "b")
    net, pops, projs = _adlif_net(trained, recurrent)
    rng = np.random.default_rng(4)
    x, labels = (rng.random((4, 80, 6)) < 0.25).astype(np.uint8), rng.integers(0, 3, 4)
    ref = torch_network.run(pops, projs, x, labels, trainable={"h": list(trained)})
    options = {"c_reg": 0.0} if rule == "EProp" else {}
    model = snncc.compile(net, 4, rule=getattr(snncc.rules, rule)(readout="out", **options))
    z = model.run(x, record=["h"])["h"]
    assert 0.02 < z.mean() < 0.5, z.mean()
    np.testing.assert_array_equal(z, ref["z:h"].astype(np.uint8))
    g = model.gradients(x, labels)
    # float32 against float64: the adaptation's gradients sum terms of both signs over 80 steps
    # (measured up to 2e-5 for 'a'); the weights' within 1e-5 as elsewhere
    for name in [q.name for q in projs] + [f"h.{p}" for p in trained]:
        tol = 1e-5 if name in net.projections else 5e-5
        assert rel(g[name], ref[name]) < tol, (name, rel(g[name], ref[name]))
