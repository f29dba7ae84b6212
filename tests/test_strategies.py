"""The two eProp strategies: factorised (adjoint over the sequence) and online (per-synapse
traces) must give the same gradients; a float64 NumPy prototype of the factorisation checks
the algebra itself against the per-synapse NumPy e-prop."""

import numpy as np
import pytest

import snncc
from snncc import init, neurons
from tests.reference.numpy_eprop import eprop_gradients


def _net(kind, sparse, n_in=20, N=30, K=4):
    net = snncc.Network(dt=1.0, seed=3)
    inp = net.add_input("input", n_in)
    cell = (
        neurons.ALIF(tau_a=200.0, beta=0.07, refractory=3)
        if kind == "alif"
        else neurons.LIF(tau_m=np.linspace(10, 30, N))
    )
    hid = net.add_population("hidden", N, cell)
    out = net.add_population("output", K, neurons.LeakyIntegrator(tau=20.0))
    net.connect(
        inp,
        hid,
        name="in_hid",
        weight=init.Normal(0, 1.5 / np.sqrt(n_in)),
        p=0.5 if sparse else None,
    )
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0, 1 / np.sqrt(N)), allow_self=False)
    net.connect(hid, out, name="hid_out", weight=init.Normal(0, 1 / np.sqrt(N)))
    return net


@pytest.mark.parametrize("kind", ["lif", "alif"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("reg", ["moving", "none"])
def test_online_and_factorized_gradients_agree(kind, sparse, reg, T=83):
    """83 steps: online runs in chunks of 16, so the last chunk is a partial one."""
    rng = np.random.default_rng(0)
    net = _net(kind, sparse)
    x = (rng.random((3, T, 20)) < 0.1).astype(np.uint8)
    y = rng.integers(0, 4, 3)
    grads = []
    for strategy in ("factorized", "online"):
        rule = snncc.rules.EProp(
            readout="output", c_reg=0.5, regularizer=reg, filter_gain="1 - kappa", strategy=strategy
        )
        grads.append(snncc.compile(net, batch_size=4, rule=rule).gradients(x, y))
    for k in grads[0]:
        scale = np.abs(grads[0][k]).max()
        assert scale > 0
        assert np.abs(grads[0][k] - grads[1][k]).max() / scale < 1e-5, k


TRAINED = {
    "lif": neurons.LIF(tau_m=np.linspace(10, 30, 30), trainable=("tau_m", "v_th")),
    "alif": neurons.ALIF(
        tau_a=200.0, beta=0.07, refractory=3, trainable=("tau_m", "tau_a", "v_th", "beta")
    ),
    # symplectic Euler: the traces of a, b, tau_w run through the coupled (v, w) update
    "adlif": neurons.AdLIF(trainable=("tau_m", "tau_w", "a", "b")),
}


@pytest.mark.parametrize("kind,readout_delay", [(k, 0) for k in TRAINED] + [("alif", 3)])
def test_online_trains_neuron_parameters_as_the_factorized_form(kind, readout_delay, T=83):
    """A neuron's own parameters under the online strategy: per-neuron traces of dM/dp, swept
    after each chunk like a synapse's; the gradients equal the factorised adjoint's, also with
    a delayed readout in a recurrent network."""
    rng = np.random.default_rng(1)
    net = snncc.Network(dt=1.0, seed=3)
    inp = net.add_input("input", 20)
    hid = net.add_population("hidden", 30, TRAINED[kind])
    out = net.add_population("output", 4, neurons.LeakyIntegrator(tau=20.0))
    gain = 8.0 if kind == "adlif" else 1.5  # adLIF's default threshold needs more input
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0, gain / np.sqrt(20)))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0, 1 / np.sqrt(30)), allow_self=False)
    net.connect(
        hid, out, name="hid_out", weight=init.Normal(0, 1 / np.sqrt(30)), delay=readout_delay
    )
    x = (rng.random((3, T, 20)) < 0.1).astype(np.uint8)
    assert snncc.compile(net, batch_size=4).run(x, record=["hidden"])["hidden"].mean() > 0.005
    y = rng.integers(0, 4, 3)
    grads = []
    for strategy in ("factorized", "online"):
        rule = snncc.rules.EProp(
            readout="output", c_reg=0.5, regularizer="moving", strategy=strategy
        )
        grads.append(snncc.compile(net, batch_size=4, rule=rule).gradients(x, y))
    params = [k for k in grads[0] if k.startswith("hidden.")]
    assert len(params) == len(TRAINED[kind].trainable)
    for k in grads[0]:
        scale = np.abs(grads[0][k]).max()
        assert scale > 0, k
        assert np.abs(grads[0][k] - grads[1][k]).max() / scale < 1e-5, k


def test_online_and_factorized_agree_on_a_sequence_shorter_than_a_chunk():
    from snncc.codegen.online import ONLINE_CHUNK

    test_online_and_factorized_gradients_agree("alif", False, "moving", T=ONLINE_CHUNK // 2 + 1)


def test_auto_strategy_switches_to_online_over_the_memory_budget(monkeypatch):
    import snncc.runtime.training as tr

    model = snncc.compile(
        _net("alif", False), batch_size=4, rule=snncc.rules.EProp(readout="output")
    )
    assert model.strategy(100) == "factorized"
    monkeypatch.setattr(tr, "MEMORY_BUDGET", 1000)
    assert model.strategy(100) == "online"


def test_online_is_refused_where_it_cannot_be_generated():
    rule = snncc.rules.EProp(readout="output", regularizer="sequence", c_reg=1.0, strategy="online")
    model = snncc.compile(_net("lif", False), batch_size=4, rule=rule)
    x = np.zeros((1, 10, 20), np.uint8)
    with pytest.raises(snncc.ModelError, match="factorized"):
        model.gradients(x, np.zeros(1, np.int64))


def _factorized_prototype(x, W_in, W_rec, W_out, labels, tau_m, tau_a, beta, v_th, tau_out):
    """float64 NumPy: forward pass, then Lb/G backward recursions and one GEMM per projection
    (the formulas of the issue: G^t = Lb^{t+1} psi^{t+1} + (rho - beta psi^{t+1}) G^{t+1})."""
    B, T, _ = x.shape
    N, K = W_rec.shape[0], W_out.shape[1]
    alpha, rho, kappa = np.exp(-1 / tau_m), np.exp(-1 / tau_a), np.exp(-1 / tau_out)
    v, a, z, y = np.zeros((B, N)), np.zeros((B, N)), np.zeros((B, N)), np.zeros((B, K))
    Z, PSI, E = np.zeros((B, T, N)), np.zeros((B, T, N)), np.zeros((B, T, K))
    for t in range(T):
        I = x[:, t] @ W_in + z @ W_rec
        v = alpha * v - v_th * z + I
        a = rho * a + z
        A = v_th + beta * a
        z = (v > A).astype(float)
        PSI[:, t] = 0.3 / v_th * np.maximum(0, 1 - np.abs(v - A) / v_th)
        y = kappa * y + z @ W_out
        p = np.exp(y - y.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        E[:, t] = p - np.eye(K)[labels]
        Z[:, t] = z
    L = E @ W_out.T  # symmetric feedback
    Lb, G = np.zeros((B, T, N)), np.zeros((B, N))
    acc = np.zeros((B, N))
    for t in range(T - 1, -1, -1):
        acc = L[:, t] + kappa * acc
        Lb[:, t] = acc
    Q = np.zeros((B, T, N))
    for t in range(T - 1, -1, -1):
        if t + 1 < T:
            G = Lb[:, t + 1] * PSI[:, t + 1] + (rho - beta * PSI[:, t + 1]) * G
        Q[:, t] = PSI[:, t] * (Lb[:, t] - beta * G)

    # zbar-form: grad = sum_t zbar_i psi_j (Lb - beta G)_j, zbar the alpha-filtered input
    def zbar(s):
        out, acc = np.zeros_like(s), np.zeros(s.shape[::2])
        for t in range(T):
            acc = alpha * acc + s[:, t]
            out[:, t] = acc
        return out

    s_rec = np.concatenate([np.zeros((B, 1, N)), Z[:, :-1]], axis=1)
    g_in = np.einsum("bti,btj->ij", zbar(x), Q)
    g_rec = np.einsum("bti,btj->ij", zbar(s_rec), Q)
    return g_in, g_rec


def test_float64_prototype_of_the_factorisation_equals_per_synapse_eprop():
    rng = np.random.default_rng(5)
    B, T, n_in, N, K = 2, 60, 12, 16, 3
    x = (rng.random((B, T, n_in)) < 0.15).astype(float)
    W_in = rng.normal(0, 1.5 / np.sqrt(n_in), (n_in, N))
    W_rec = rng.normal(0, 1 / np.sqrt(N), (N, N))
    W_out = rng.normal(0, 1 / np.sqrt(N), (N, K))
    labels = rng.integers(0, K, B)
    params = dict(tau_m=20.0, tau_a=200.0, beta=0.07, v_th=0.6, tau_out=20.0)
    g_in, g_rec = _factorized_prototype(x, W_in, W_rec, W_out, labels, **params)
    ref = eprop_gradients(
        x, W_in, W_rec, W_out, None, model="alif", labels=labels, dtype=np.float64, **params
    )
    assert np.abs(ref["W_in"]).max() > 0
    np.testing.assert_allclose(g_in, ref["W_in"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_rec, ref["W_rec"], rtol=1e-10, atol=1e-12)
