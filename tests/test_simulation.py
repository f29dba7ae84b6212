"""The CPU backend against analytic solutions and a plain NumPy simulation (bit for bit)."""

import numpy as np
import pytest

import snncc
from snncc import neurons


def _lif_constant_drive(I0, tau, v_th, T):
    net = snncc.Network(dt=1.0)
    net.add_input("input", 1)
    model = snncc.NeuronModel(
        "DrivenLIF",
        params={"tau_m": tau, "I0": I0, "v_th": v_th},
        state={"v": 0.0},
        dynamics=["dv/dt = (I0 - v) / tau_m"],
        reset={"v": "0"},
        threshold="v > v_th",
    )
    net.add_population("lif", 1, model)
    m = snncc.compile(net, batch_size=1)
    return m.run(np.zeros((1, T, 1), np.uint8), record=["lif", "lif.v"])


def test_lif_constant_drive_matches_analytic_spike_times():
    I0, tau, v_th, T = 1.5, 20.0, 1.0, 300
    rec = _lif_constant_drive(I0, tau, v_th, T)
    # exact integration: v after m steps from 0 is I0 (1 - exp(-m dt / tau)); it first exceeds
    # v_th after n = floor(tau ln(I0 / (I0 - v_th))) + 1 steps. The reset then takes one step.
    n = int(np.floor(tau * np.log(I0 / (I0 - v_th)))) + 1
    expected = np.arange(n - 1, T, n + 1)
    assert np.array_equal(np.flatnonzero(rec["lif"][0, :, 0]), expected)
    m = np.arange(1, n)
    np.testing.assert_allclose(rec["lif.v"][0, : n - 1, 0], I0 * (1 - np.exp(-m / tau)), rtol=1e-6)


def numpy_alif(x, W_in, W_rec, W_out, bias, tau_m, tau_a, beta, v_th, tau_out):
    """eprop.md's ALIF network in NumPy float32, summing synaptic input in spike order."""
    B, T, _ = x.shape
    N, K = W_rec.shape[0], W_out.shape[1]
    f32 = np.float32
    alpha = np.exp(-1.0 / np.asarray(tau_m, np.float64)).astype(f32)
    rho = f32(np.exp(-1.0 / tau_a))
    kappa = f32(np.exp(-1.0 / tau_out))
    beta, v_th = f32(beta), f32(v_th)
    v, a, z = (np.zeros((B, N), f32) for _ in range(3))
    y = np.zeros((B, K), f32)
    out = {k: np.zeros((B, T, n), f32) for k, n in [("z", N), ("v", N), ("a", N), ("y", K)]}
    for t in range(T):
        I = np.zeros((B, N), f32)
        Iy = np.zeros((B, K), f32)
        for b in range(B):
            for i in np.flatnonzero(x[b, t]):
                I[b] += W_in[i]
            for i in np.flatnonzero(z[b]):
                I[b] += W_rec[i]
        v = v * alpha
        a = a * rho
        v = np.where(z > 0, v - v_th, v)
        a = np.where(z > 0, a + f32(1), a)
        v = I + v
        z = (v > a * beta + v_th).astype(f32)
        for b in range(B):
            for i in np.flatnonzero(z[b]):
                Iy[b] += W_out[i]
        y = y * kappa
        y = Iy + bias + y
        for k, val in (("z", z), ("v", v), ("a", a), ("y", y)):
            out[k][:, t] = val
    return out


def _alif_net(n_in, N, K, tau_m, seed=3, sparse=False):
    rng = np.random.default_rng(seed)
    net = snncc.Network(dt=1.0, seed=seed)
    inp = net.add_input("input", n_in)
    hid = net.add_population("hidden", N, neurons.ALIF(tau_m=tau_m, tau_a=200.0, beta=0.07))
    out = net.add_population("output", K, neurons.LeakyIntegrator(tau=20.0, bias=0.05))
    W_in = (rng.normal(0, 1.5, (n_in, N)) / np.sqrt(n_in)).astype(np.float32)
    W_rec = (rng.normal(0, 1, (N, N)) / np.sqrt(N)).astype(np.float32)
    np.fill_diagonal(W_rec, 0)
    W_out = (rng.normal(0, 1, (N, K)) / np.sqrt(N)).astype(np.float32)
    if sparse:
        W_in[rng.random(W_in.shape) < 0.5] = 0
        pre, post = np.nonzero(W_in)
        net.connect(inp, hid, name="in_hid", weight=W_in, indices=(pre, post))
    else:
        net.connect(inp, hid, name="in_hid", weight=W_in)
    net.connect(hid, hid, name="hid_hid", weight=W_rec, allow_self=False)
    net.connect(hid, out, name="hid_out", weight=W_out)
    x = (rng.random((3, 1000, n_in)) < 0.05).astype(np.uint8)
    return net, x, (W_in, W_rec, W_out)


@pytest.mark.parametrize("heterogeneous", [False, True])
def test_recurrent_alif_matches_numpy_bit_for_bit(heterogeneous):
    N = 40
    tau_m = np.linspace(10.0, 40.0, N) if heterogeneous else 20.0
    net, x, (W_in, W_rec, W_out) = _alif_net(30, N, 5, tau_m)
    model = snncc.compile(net, batch_size=4)
    rec = model.run(x, record=["hidden", "hidden.v", "hidden.a", "output.v"])
    ref = numpy_alif(x, W_in, W_rec, W_out, np.float32(0.05), tau_m, 200.0, 0.07, 0.6, 20.0)
    assert ref["z"].sum() > 100, "the test network must spike"
    assert np.array_equal(rec["hidden"], ref["z"].astype(np.uint8))
    assert np.array_equal(rec["hidden.v"], ref["v"])
    assert np.array_equal(rec["hidden.a"], ref["a"])
    assert np.array_equal(rec["output.v"], ref["y"])


def test_heterogeneous_time_constants_change_the_dynamics():
    N = 40
    net_h, x, _ = _alif_net(30, N, 5, np.linspace(5.0, 60.0, N))
    net_c, _, _ = _alif_net(30, N, 5, 20.0)
    rh = snncc.compile(net_h, batch_size=4).run(x, record=["hidden.v"])["hidden.v"]
    rc = snncc.compile(net_c, batch_size=4).run(x, record=["hidden.v"])["hidden.v"]
    assert not np.array_equal(rh, rc)


def test_sparse_equals_dense_with_same_weights():
    net_s, x, (W_in, _, _) = _alif_net(30, 40, 5, 20.0, sparse=True)
    net_d, _, _ = _alif_net(30, 40, 5, 20.0)
    dense = snncc.compile(net_d, batch_size=4)
    dense.weights["in_hid"] = W_in  # the same zeros as the sparse projection
    sparse = snncc.compile(net_s, batch_size=4)
    assert net_s.projections["in_hid"].sparse
    np.testing.assert_array_equal(sparse.weights["in_hid"], W_in)
    keys = ["hidden", "hidden.v", "output.v"]
    rs, rd = sparse.run(x, record=keys), dense.run(x, record=keys)
    for k in keys:
        assert np.array_equal(rs[k], rd[k]), k


def test_event_list_input_equals_dense_input():
    net, x, _ = _alif_net(30, 40, 5, 20.0)
    model = snncc.compile(net, batch_size=4)
    events = []
    for b in range(x.shape[0]):
        t, i = np.nonzero(x[b])
        events.append((t * 1.0 + 0.3, i))
    rd = model.run(x, record=["hidden"])
    re = model.run(events, record=["hidden"], n_steps=x.shape[1])
    assert np.array_equal(rd["hidden"], re["hidden"])


@pytest.mark.parametrize("n", [1, 31, 32, 33, 64, 700])
def test_input_spikes_pack_into_bit_words_and_back(n):
    """Dense arrays (bool, uint8, float) and event lists give the same words; unit i of a
    step is bit i % 32 of word i // 32 (checked by unpacking with NumPy); late events drop."""
    from snncc.runtime.inputs import as_bits, unpack_spikes

    rng = np.random.default_rng(n)
    x = rng.random((3, 9, n)) < 0.3
    words = as_bits(x, "in", n, 1.0)
    assert words.dtype == np.uint32 and words.shape == (3, 9, (n + 31) // 32)
    assert np.array_equal(unpack_spikes(words, n), x)
    for dense in (x.astype(np.uint8), x.astype(np.float32)):
        assert np.array_equal(as_bits(dense, "in", n, 1.0), words)
    events = []
    for b in range(3):
        t, i = np.nonzero(x[b])
        late = np.array([9.5, 20.0]), np.array([0, n - 1])  # after the last step: dropped
        events.append((np.concatenate([t + 0.5, late[0]]), np.concatenate([i, late[1]])))
    assert np.array_equal(as_bits(events, "in", n, 1.0, n_steps=9), words)


def test_batches_larger_than_capacity_are_chunked_and_runs_are_independent():
    net, x, _ = _alif_net(30, 40, 5, 20.0)
    model = snncc.compile(net, batch_size=2)
    full = model.run(x, record=["hidden.v"])["hidden.v"]
    one = model.run(x[2:3], record=["hidden.v"])["hidden.v"]
    assert np.array_equal(full[2:3], one)


def test_weights_roundtrip_and_assignment():
    net, x, (W_in, W_rec, _) = _alif_net(30, 40, 5, 20.0)
    model = snncc.compile(net, batch_size=4)
    np.testing.assert_array_equal(model.weights["hid_hid"], W_rec)
    model.weights["in_hid"] = np.zeros_like(W_in)
    assert model.run(x, record=["hidden"])["hidden"].sum() == 0


def test_custom_neuron_with_exponential_current():
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", 1)
    m = snncc.NeuronModel(
        "CubaLIF",
        params={"tau_m": 10.0, "tau_s": 5.0, "v_th": 10.0},
        state={"v": 0.0, "I": 0.0},
        dynamics=["dv/dt = (-v + I) / tau_m", "dI/dt = -I / tau_s"],
        input={"I": "I_syn"},
        threshold="v > v_th",
        reset={"v": "v - v_th"},
    )
    net.add_population("cell", 1, m)
    net.connect(inp, "cell", weight=1.0)
    model = snncc.compile(net, batch_size=1)
    x = np.zeros((1, 60, 1), np.uint8)
    x[0, 0, 0] = 1
    v = model.run(x, record=["cell.v"])["cell.v"][0, :, 0]
    # impulse at step 0 sets I = 1, v = 0; afterwards the analytic two-exponential solution
    t = np.arange(1, 60)
    tm, ts = 10.0, 5.0
    exact = ts / (tm - ts) * (np.exp(-t / tm) - np.exp(-t / ts))
    np.testing.assert_allclose(v[1:], exact, rtol=2e-5, atol=1e-7)


def test_recompiling_unchanged_model_hits_the_cache():
    import time

    net, _, _ = _alif_net(30, 40, 5, 20.0)
    snncc.compile(net, batch_size=4)
    t0 = time.perf_counter()
    snncc.compile(net, batch_size=4)
    assert time.perf_counter() - t0 < 1.0
