"""snncc's eProp against independent references.

* Feed-forward networks (no recurrent weights), symmetric feedback, no regulariser: e-prop is
  exact, so ``model.gradients`` must equal torch autograd BPTT (tests/reference/torch_bptt.py).
* Recurrent networks: the readout gradients are still exact (torch BPTT); the input and
  recurrent gradients must equal the plain NumPy e-prop (tests/reference/numpy_eprop.py) for
  every rule option (regulariser, filter gain, random feedback, error_start, mse loss).
* User-defined neurons: the symbolically derived traces equal a hand derivation, and the
  compiled gradients equal a BPTT written here with torch autograd.

snncc computes in float32, the references in float64 from the same float32 weights and inputs;
every comparison first checks that both produced the same spikes, then compares gradients with
``max|a - b| / max|b|``.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import snncc
from snncc import neurons
from snncc.errors import ModelError, ShapeError
from snncc.symbolic.eprop import PSI, PSI_PREV, derive_traces, prev
from snncc.symbolic.integrate import SPIKE_PREV, discretize
from tests.reference.numpy_eprop import eprop_gradients

#: Relative tolerance of every gradient comparison (float32 kernels vs float64 references).
#: The observed differences are ~1e-6.
RTOL = 1e-4

N_IN, N, K, B, T = 16, 24, 3, 4, 100
V_TH, TAU_A, BETA, TAU_OUT = 0.3, 50.0, 0.3, 20.0
GAMMA = 0.3
TRIANGLE = neurons.TRIANGLE


@pytest.fixture(scope="module")
def bptt():
    pytest.importorskip("torch")
    from tests.reference.torch_bptt import bptt_gradients

    return bptt_gradients


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-relative difference max|a - b| / max|b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def data(seed: int) -> dict[str, np.ndarray]:
    """Weights (pre, post), inputs and targets, all exactly representable in float32."""
    rng = np.random.default_rng(seed)
    W_rec = (rng.normal(0, 1, (N, N)) / np.sqrt(N)).astype(np.float32)
    np.fill_diagonal(W_rec, 0)
    return {
        "W_in": (rng.normal(0, 1.5, (N_IN, N)) / np.sqrt(N_IN)).astype(np.float32),
        "W_rec": W_rec,
        "W_out": (rng.normal(0, 1, (N, K)) / np.sqrt(N)).astype(np.float32),
        "b": rng.normal(0, 0.1, K).astype(np.float32),
        "feedback": (rng.normal(0, 1, (N, K)) / np.sqrt(N)).astype(np.float32),
        "x": (rng.random((B, T, N_IN)) < 0.1).astype(np.uint8),
        "labels": rng.integers(0, K, B),
        "targets": rng.normal(0, 1, (B, T, K)).astype(np.float32),
        "tau_het": rng.uniform(10.0, 30.0, N),
    }


def hidden_model(kind: str, tau_m: object = 20.0, refractory: float = 0.0) -> snncc.NeuronModel:
    if kind == "alif":
        return neurons.ALIF(tau_m=tau_m, tau_a=TAU_A, beta=BETA, v_th=V_TH, gamma=GAMMA,
                            refractory=refractory)  # fmt: skip
    return neurons.LIF(tau_m=tau_m, v_th=V_TH, gamma=GAMMA, refractory=refractory)


def network(hidden: snncc.NeuronModel, d: dict, recurrent: bool) -> snncc.Network:
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", N_IN)
    hid = net.add_population("hidden", N, hidden)
    out = net.add_population("output", K, neurons.LeakyIntegrator(tau=TAU_OUT, bias=d["b"]))
    net.connect(inp, hid, name="in_hid", weight=d["W_in"])
    if recurrent:
        net.connect(hid, hid, name="hid_hid", weight=d["W_rec"], allow_self=False)
    net.connect(hid, out, name="hid_out", weight=d["W_out"])
    return net


def targets_of(d: dict, loss: str) -> np.ndarray:
    return d["targets"] if loss == "mse" else d["labels"]


def spikes(model, x: np.ndarray) -> np.ndarray:
    return model.run(x, record=["hidden"])["hidden"]


def check_same_spikes(model, d: dict, ref_z: np.ndarray) -> None:
    z = spikes(model, d["x"])
    assert 0.02 < z.mean() < 0.5, f"the test network should spike moderately, rate {z.mean()}"
    np.testing.assert_array_equal(z, ref_z.astype(np.uint8))


# ------------------------------------------------------------------ feed-forward == BPTT
FF_CASES = {
    "lif": ("lif", {}),
    "alif": ("alif", {}),
    "alif_heterogeneous_tau_refractory5": ("alif", {"het": True, "refractory": 5}),
    "lif_heterogeneous_refractory5_mse_error_start": (
        "lif", {"het": True, "refractory": 5, "loss": "mse", "error_start": 30}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FF_CASES))
def test_feedforward_gradients_equal_bptt(case: str, bptt) -> None:
    kind, opt = FF_CASES[case]
    d = data(0)
    tau_m = d["tau_het"] if opt.get("het") else 20.0
    n_ref = opt.get("refractory", 0)
    loss = opt.get("loss", "cross_entropy")
    rule = snncc.rules.EProp(readout="output", feedback="symmetric", regularizer="none",
                             loss=loss, error_start=opt.get("error_start", 0))  # fmt: skip
    model = snncc.compile(network(hidden_model(kind, tau_m, n_ref), d, False), batch_size=B,
                          rule=rule)  # fmt: skip
    y = targets_of(d, loss)
    g = model.gradients(d["x"], y)
    assert set(g) == {"in_hid", "hid_out", "output.bias"}
    kw = {"model": kind, "tau_m": tau_m, "tau_a": TAU_A, "beta": BETA, "v_th": V_TH,
          "gamma": GAMMA, "n_ref": n_ref, "tau_out": TAU_OUT,
          "loss": "mse" if loss == "mse" else "ce", "error_start": opt.get("error_start", 0),
          "dtype": np.float64}  # fmt: skip
    if loss == "mse":
        kw["targets"] = y
    else:
        kw["labels"] = y
    ref = bptt(d["x"], d["W_in"], None, d["W_out"], d["b"], **kw)
    check_same_spikes(model, d, ref["z"])
    for name, key in (("in_hid", "W_in"), ("hid_out", "W_out"), ("output.bias", "b_out")):
        assert g[name].shape == ref[key].shape
        assert rel(g[name], ref[key]) < RTOL, (name, rel(g[name], ref[key]))
    if n_ref:  # the refractory period matters for this input
        free = bptt(d["x"], d["W_in"], None, d["W_out"], d["b"], **{**kw, "n_ref": 0})
        assert not np.array_equal(free["z"], ref["z"])


# ------------------------------------------------------- recurrent == NumPy e-prop
REC_CASES = {
    "plain": {},
    "moving_reg_gain_1_minus_kappa": {"regularizer": "moving", "c_reg": 0.5, "f_target": 20.0,
                                      "tau_reg": 100.0, "filter_gain": "1 - kappa"},
    "random_feedback_mse_error_start": {"feedback": "random", "loss": "mse", "error_start": 30,
                                        "regularizer": "moving", "c_reg": 0.2},
    "sequence_reg": {"regularizer": "sequence", "c_reg": 30.0, "f_target": 20.0},
}  # fmt: skip


def numpy_options(opt: dict, d: dict) -> dict:
    """EProp options -> keyword arguments of the NumPy reference."""
    return {
        "feedback": d["feedback"] if opt.get("feedback") == "random" else None,
        "gain": "1-kappa" if opt.get("filter_gain") == "1 - kappa" else "1",
        "reg": opt.get("regularizer", "none"),
        "c_reg": opt.get("c_reg", 0.0),
        "f_target": opt.get("f_target", 10.0) / 1000.0,  # Hz -> spikes per 1 ms step
        "tau_reg": opt.get("tau_reg", 500.0),
        "error_start": opt.get("error_start", 0),
    }


@pytest.mark.parametrize("case", list(REC_CASES))
@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_recurrent_gradients_equal_numpy_eprop(kind: str, case: str, bptt) -> None:
    opt = REC_CASES[case]
    d = data(1)
    rule = snncc.rules.EProp(readout="output", **{"regularizer": "none", **opt})
    model = snncc.compile(network(hidden_model(kind), d, True), batch_size=B, rule=rule)
    if opt.get("feedback") == "random":
        model.set_feedback("hidden", d["feedback"])
    loss = opt.get("loss", "cross_entropy")
    y = targets_of(d, loss)
    g = model.gradients(d["x"], y)
    assert set(g) == {"in_hid", "hid_hid", "hid_out", "output.bias"}

    common = {"model": kind, "tau_a": TAU_A, "beta": BETA, "v_th": V_TH, "gamma": GAMMA,
              "tau_out": TAU_OUT, "loss": "mse" if loss == "mse" else "ce",
              ("targets" if loss == "mse" else "labels"): y, "dtype": np.float64}  # fmt: skip
    args = (d["x"], d["W_in"], d["W_rec"], d["W_out"], d["b"])
    ref = eprop_gradients(*args, **common, **numpy_options(opt, d), allow_self=False)
    check_same_spikes(model, d, ref["z"])
    for name, key in (("in_hid", "W_in"), ("hid_hid", "W_rec")):
        assert rel(g[name], ref[key]) < RTOL, (name, rel(g[name], ref[key]))
    # the recurrent projection has no self-connections: their gradient is exactly 0
    assert np.all(np.diag(g["hid_hid"]) == 0.0)

    # readout gradients are exact: torch BPTT
    exact = bptt(*args, **common, error_start=opt.get("error_start", 0))
    np.testing.assert_array_equal(exact["z"], ref["z"])
    for name, key in (("hid_out", "W_out"), ("output.bias", "b_out")):
        assert rel(g[name], exact[key]) < RTOL, (name, rel(g[name], exact[key]))

    # the options of this case change the gradient far beyond the tolerance (they are tested)
    if opt:
        base = {**common, "labels": d["labels"], "loss": "ce"}
        base.pop("targets", None)
        plain = eprop_gradients(*args, **base, **numpy_options({}, d), allow_self=False)
        assert rel(plain["W_in"], ref["W_in"]) > 100 * RTOL
        assert rel(plain["W_rec"], ref["W_rec"]) > 100 * RTOL


def test_random_feedback_is_fixed_and_seeded() -> None:
    d = data(1)

    def feedback(seed: int) -> np.ndarray:
        rule = snncc.rules.EProp(feedback="random", seed=seed, regularizer="none")
        model = snncc.compile(network(hidden_model("lif"), d, True), batch_size=B, rule=rule,
                              optimizer=snncc.optim.SGD(1e-3))  # fmt: skip
        before = model.programs[0].get("feedback_hidden").copy()
        model.train_batch(d["x"], d["labels"])
        np.testing.assert_array_equal(model.programs[0].get("feedback_hidden"), before)
        return before

    a, b = feedback(3), feedback(4)
    assert a.shape == (N, K) and not np.array_equal(a, b)
    assert 0.5 < a.std() * np.sqrt(N) < 1.5  # Normal(0, 1/sqrt(n_hidden))


# ------------------------------------------------------------------- custom neurons
def cuba_lif(tau_s: object = 5.0, v_th: float = 1.0) -> snncc.NeuronModel:
    """LIF with an exponentially decaying synaptic current."""
    return snncc.NeuronModel(
        "CubaLIF",
        params={"tau_m": 20.0, "tau_s": tau_s, "v_th": v_th, "gamma": GAMMA},
        state={"v": 0.0, "I": 0.0},
        dynamics=["dv/dt = (-v + I) / tau_m", "dI/dt = -I / tau_s"],
        input={"I": "I_syn"},
        threshold="v > v_th",
        reset={"v": "v - v_th"},
        surrogate=TRIANGLE,
    )


def threshold_adaptive(v_th: float = V_TH) -> snncc.NeuronModel:
    """Threshold adaptation that saturates: a jumps by (1 - a)/10 at each spike."""
    return snncc.NeuronModel(
        "SaturatingALIF",
        params={"tau_m": 20.0, "tau_a": TAU_A, "beta": 2.0, "v_th": v_th, "gamma": GAMMA},
        state={"v": 0.0, "a": 0.0},
        dynamics=["dv/dt = -v / tau_m", "da/dt = -a / tau_a"],
        reset={"v": "v - v_th"},
        on_spike={"a": "a + (1 - a) / 10"},
        input={"v": "I_syn"},
        threshold="v > v_th + beta * a",
        surrogate=TRIANGLE,
    )


def traces_of(model: snncc.NeuronModel):
    """Derived traces with the hoisted constants substituted back (in tau, dt, ...)."""
    upd = discretize(model, 1.0)
    ts = derive_traces("hidden", upd)
    back = {snncc.sym(k): v for k, v in upd.constants.items()}
    return ts, (lambda e: sp.sympify(e).xreplace(back))


def same(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.simplify(sp.expand(a - b)) == 0


def test_exponential_current_traces_match_hand_derivation() -> None:
    ts, full = traces_of(cuba_lif())
    assert ts.states == ["v", "I"]
    tm, tsyn, dt = snncc.sym("tau_m"), snncc.sym("tau_s"), snncc.sym("dt")
    # By hand: dv/dt = (I - v)/tau_m, dI/dt = -I/tau_s with I constant-free, so
    # I(t) = I0 exp(-t/tau_s) and v(t) = v0 exp(-t/tau_m)
    #   + I0 tau_s/(tau_m - tau_s) (exp(-t/tau_m) - exp(-t/tau_s)).
    # The reset's spike is detached, so D = exp(A dt); the input enters I only.
    alpha, rho = sp.exp(-dt / tm), sp.exp(-dt / tsyn)
    D = sp.Matrix([[alpha, tsyn / (tm - tsyn) * (alpha - rho)], [0, rho]])
    for i in range(2):
        for j in range(2):
            assert same(full(ts.D[i, j]), D[i, j]), (i, j, ts.D[i, j])
    assert list(ts.c) == [0, 1]
    assert list(ts.g) == [PSI, 0]
    # and the hand formula is the matrix exponential of the ODE system
    A = sp.Matrix([[-1 / tm, 1 / tm], [0, -1 / tsyn]])
    vals = {tm: sp.Rational(20), tsyn: sp.Rational(5), dt: sp.Rational(1)}
    assert (D.subs(vals) - (A * dt).subs(vals).exp()).norm().evalf() < 1e-12


def test_threshold_adaptation_traces_match_hand_derivation() -> None:
    ts, full = traces_of(threshold_adaptive())
    assert ts.states == ["v", "a"]
    tm, ta, dt, beta = (snncc.sym(s) for s in ("tau_m", "tau_a", "dt", "beta"))
    alpha, rho = sp.exp(-dt / tm), sp.exp(-dt / ta)
    a_prev, z, psi_prev = prev("a"), SPIKE_PREV, PSI_PREV
    # Step: v' = alpha v - v_th z (z detached);  a' = rho a + z (1 - rho a)/10 (z keeps its
    # gradient: dz^{t-1}/dv^{t-1} = psi^{t-1}, dz^{t-1}/da^{t-1} = -beta psi^{t-1}).
    jump = (1 - rho * a_prev) / 10  # d a' / d z
    hand = sp.Matrix(
        [
            [alpha, 0],
            [jump * psi_prev, rho * (1 - z / 10) - beta * jump * psi_prev],
        ]
    )
    for i in range(2):
        for j in range(2):
            assert same(full(ts.D[i, j]), hand[i, j]), (i, j, ts.D[i, j])
    assert list(ts.c) == [1, 0]
    assert same(ts.g[0], PSI) and same(ts.g[1], -beta * PSI)
    # the built-in ALIF is the special case a' = rho a + z
    alif, full_alif = traces_of(neurons.ALIF())
    assert same(full_alif(alif.D[1, 0]), psi_prev)
    assert same(full_alif(alif.D[1, 1]), rho - beta * psi_prev)


def _torch_bptt(d: dict, n_hidden_state: int, step, margin, v_th: float):
    """BPTT with torch autograd for a feed-forward net of a custom neuron (float64).

    ``step(state, z_prev, I)`` returns the new state (tuple of tensors); ``margin(state)``
    the threshold margin. The spike's surrogate is Bellec's triangle in the margin.
    """
    import torch

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, m):
            ctx.save_for_backward(m)
            return (m > 0).to(m.dtype)

        @staticmethod
        def backward(ctx, grad):
            (m,) = ctx.saved_tensors
            return grad * GAMMA / v_th * torch.clamp(1 - torch.abs(m) / v_th, min=0.0)

    f64 = torch.float64
    x = torch.as_tensor(d["x"], dtype=f64)
    w_in = torch.tensor(d["W_in"], dtype=f64, requires_grad=True)
    w_out = torch.tensor(d["W_out"], dtype=f64, requires_grad=True)
    b = torch.tensor(d["b"], dtype=f64, requires_grad=True)
    kappa = float(np.exp(-1.0 / TAU_OUT))
    state = tuple(torch.zeros(B, N, dtype=f64) for _ in range(n_hidden_state))
    z = torch.zeros(B, N, dtype=f64)
    y = torch.zeros(B, K, dtype=f64)
    loss, zs = 0.0, []
    lab = torch.as_tensor(d["labels"])
    for t in range(T):
        state = step(state, z, x[:, t] @ w_in)
        z = Spike.apply(margin(state))
        y = kappa * y + z @ w_out + b
        loss = loss - torch.log_softmax(y, -1)[torch.arange(B), lab].sum()
        zs.append(z.detach())
    grads = torch.autograd.grad(loss, [w_in, w_out, b])
    return [g.numpy() for g in grads], torch.stack(zs, 1).numpy()


def _compare_custom(model_def: snncc.NeuronModel, d: dict, step, margin, n_state, v_th):
    net = network(model_def, d, False)
    model = snncc.compile(net, batch_size=B, rule=snncc.rules.EProp(regularizer="none"))
    g = model.gradients(d["x"], d["labels"])
    (gi, go, gb), z = _torch_bptt(d, n_state, step, margin, v_th)
    check_same_spikes(model, d, z)
    for name, ref in (("in_hid", gi), ("hid_out", go), ("output.bias", gb)):
        assert rel(g[name], ref) < RTOL, (name, rel(g[name], ref))
    return model


def test_exponential_current_gradients_equal_torch_bptt(bptt) -> None:
    import torch

    d = data(2)
    tau_s = np.random.default_rng(7).uniform(3.0, 8.0, N)  # one per neuron
    tm, v_th = 20.0, 0.3
    alpha = torch.as_tensor(np.exp(-1.0 / tm))
    rho = torch.as_tensor(np.exp(-1.0 / tau_s))
    c_vi = torch.as_tensor(tau_s / (tm - tau_s) * (np.exp(-1.0 / tm) - np.exp(-1.0 / tau_s)))

    def step(state, z_prev, I_syn):
        v, I = state
        v, I = alpha * v + c_vi * I, rho * I  # exact decay over dt
        v = v - v_th * z_prev.detach()  # reset, spike detached
        return v, I + I_syn

    model = _compare_custom(cuba_lif(tau_s, v_th), d, step, lambda s: s[0] - v_th, 2, v_th)
    assert "eps_I" in str(model.training)


def test_threshold_adaptation_gradients_equal_torch_bptt(bptt) -> None:
    import torch

    d = data(3)
    alpha = torch.as_tensor(np.exp(-1.0 / 20.0))
    rho = torch.as_tensor(np.exp(-1.0 / TAU_A))

    def step(state, z_prev, I_syn):
        v, a = state
        v, a = alpha * v, rho * a
        v = v - V_TH * z_prev.detach()
        a = a + z_prev * (1 - a) / 10  # on_spike: differentiable through the surrogate
        return v + I_syn, a

    def margin(state):
        v, a = state
        return v - (V_TH + 2.0 * a)

    _compare_custom(threshold_adaptive(), d, step, margin, 2, V_TH)


# ------------------------------------------------------------------------ training
def test_sgd_step_is_w_minus_lr_grad_and_loss_matches_reference() -> None:
    d = data(1)
    lr = 1e-3
    rule = snncc.rules.EProp(regularizer="none")
    model = snncc.compile(network(hidden_model("alif"), d, True), batch_size=B, rule=rule,
                          optimizer=snncc.optim.SGD(lr))  # fmt: skip
    g = model.gradients(d["x"], d["labels"])
    before = {k: model.weights[k].copy() for k in ("in_hid", "hid_hid", "hid_out")}
    evaluated = model.evaluate((d["x"], d["labels"]))  # its own kernel: no histories
    out = model.train_batch(d["x"], d["labels"])
    ref = eprop_gradients(d["x"], d["W_in"], d["W_rec"], d["W_out"], d["b"], model="alif",
                          tau_a=TAU_A, beta=BETA, v_th=V_TH, labels=d["labels"],
                          dtype=np.float64)  # fmt: skip
    assert out["loss"] == pytest.approx(ref["loss"] / B, rel=1e-5)
    assert evaluated["loss"] == pytest.approx(ref["loss"] / B, rel=1e-5)
    for k, w in before.items():
        expected = (w - np.float32(lr) * g[k]).astype(np.float32)
        np.testing.assert_allclose(model.weights[k], expected, rtol=0, atol=1e-6)
        assert not np.array_equal(model.weights[k], w)
    bias = model.params["output.bias"]
    np.testing.assert_allclose(bias, d["b"] - lr * g["output.bias"], rtol=0, atol=1e-6)


def test_cosine_learning_rate_schedule_reaches_the_kernel() -> None:
    sgd = snncc.optim.SGD(0.1, decay_steps=4, lr_end=0.02)
    expected = [0.1, 0.02 + 0.04 * (1 + np.cos(np.pi / 4)), 0.06, None, 0.02, 0.02]
    expected[3] = 0.02 + 0.04 * (1 + np.cos(3 * np.pi / 4))
    assert [sgd.scalars(s)[0] for s in range(1, 7)] == pytest.approx(expected)
    assert snncc.optim.Adam(1e-3).scalars(10)[0] == 1e-3  # no decay by default
    for bad, why in (
        (dict(decay_steps=-1), "decay_steps must be an integer >= 0"),
        (dict(lr_end=0.2), "lr_end=0.2 is above lr=0.1"),
        (dict(lr_end=-0.1), "lr_end must be a finite number >= 0"),
    ):
        with pytest.raises(ModelError, match=why):
            snncc.optim.SGD(0.1, **bad)
    d = data(1)
    rule = snncc.rules.EProp(regularizer="none")
    model = snncc.compile(network(hidden_model("lif"), d, True), batch_size=B, rule=rule,
                          optimizer=sgd)  # fmt: skip
    for step in (1, 2, 3):  # each step moves the weights by its own lr times the gradient
        g = model.gradients(d["x"], d["labels"])["in_hid"]
        w = model.weights["in_hid"].copy()
        model.train_batch(d["x"], d["labels"])
        expected = (w - np.float32(sgd.lr_at(step)) * g).astype(np.float32)
        np.testing.assert_allclose(model.weights["in_hid"], expected, rtol=0, atol=1e-6)


def test_adam_training_keeps_mask_and_clamp() -> None:
    d = data(4)
    lo, hi = -0.2, 0.25
    rule = snncc.rules.EProp(regularizer="moving", c_reg=0.1, weight_clamp=(lo, hi))
    model = snncc.compile(network(hidden_model("alif"), d, True), batch_size=B, rule=rule,
                          optimizer=snncc.optim.Adam(1e-2))  # fmt: skip
    before = {k: model.weights[k].copy() for k in model.weights}
    for _ in range(5):
        out = model.train_batch(d["x"], d["labels"])
        assert np.isfinite(out["loss"]) and 0.0 <= out["accuracy"] <= 1.0
        W = model.weights["hid_hid"]
        assert np.all(np.diag(W) == 0.0), "masked self-connections must stay exactly 0"
    assert model.step == 5
    for k, w in before.items():
        now = model.weights[k]
        assert not np.array_equal(now, w), k
        assert now.min() >= np.float32(lo) and now.max() <= np.float32(hi), k
    # the clamp was active: initial weights reach beyond it
    assert max(w.max() for w in before.values()) > hi
    assert any(np.any(model.weights[k] == np.float32(hi)) for k in before)
    assert np.all(np.diag(model.gradients(d["x"], d["labels"])["hid_hid"]) == 0.0)


def test_train_batch_reduces_loss_on_a_fixed_batch() -> None:
    d = data(5)
    rule = snncc.rules.EProp(regularizer="moving", c_reg=0.1)  # the same code as above
    model = snncc.compile(network(hidden_model("alif"), d, True), batch_size=B, rule=rule,
                          optimizer=snncc.optim.Adam(5e-3))  # fmt: skip
    losses = [model.train_batch(d["x"], d["labels"])["loss"] for _ in range(15)]
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("decision", ["sum", "max", "last"])
def test_accuracy_counts_the_decision_of_the_recorded_outputs(decision) -> None:
    """Training passes decide in the kernel (scores summed as the error is computed); the
    decision is recomputed here in float64 NumPy from the recorded readout of ``run``."""
    d = data(7)
    start = 10
    rule = snncc.rules.EProp(decision=decision, error_start=start)
    net = network(hidden_model("alif"), d, True)
    model = snncc.compile(net, batch_size=B, rule=rule)
    rng = np.random.default_rng(7)
    x = (rng.random((3 * B, T, N_IN)) < 0.05).astype(np.uint8)  # 3 passes of B
    y = model.run(x, record=["output.v"])["output.v"][:, start:].astype(np.float64)
    if decision == "sum":
        p = np.exp(y - y.max(-1, keepdims=True))
        chosen = (p / p.sum(-1, keepdims=True)).sum(1).argmax(-1)
    elif decision == "max":
        chosen = y.max(1).argmax(-1)
    else:
        chosen = y[:, -1].argmax(-1)
    assert len(set(chosen.tolist())) > 1  # not one class for everything
    assert model.evaluate((x, chosen))["accuracy"] == 1.0
    assert model.evaluate((x, (chosen + 1) % K))["accuracy"] == 0.0


# -------------------------------------------------------------------------- errors
def _small(rule=None, optimizer=None, readout_name: str = "output"):
    d = data(0)
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", N_IN)
    hid = net.add_population("hidden", N, hidden_model("lif"))
    out = net.add_population(readout_name, K, neurons.LeakyIntegrator())
    net.connect(inp, hid, weight=d["W_in"])
    net.connect(hid, out, weight=d["W_out"])
    return snncc.compile(net, batch_size=2, rule=rule, optimizer=optimizer), d


def test_labels_out_of_range_name_the_readout() -> None:
    model, d = _small(snncc.rules.EProp(readout="out_layer"), readout_name="out_layer")
    x = d["x"][:2, :20]
    with pytest.raises(ShapeError, match=r"3 is out of range for readout 'out_layer'"):
        model.gradients(x, np.array([0, 3]))
    with pytest.raises(ShapeError, match="out of range"):
        model.gradients(x, np.array([-1, 0]))
    with pytest.raises(ShapeError, match="labels"):
        model.gradients(x, np.array([0.0, 1.0]))  # not integers


def test_mse_targets_must_have_the_readout_shape() -> None:
    model, d = _small(snncc.rules.EProp(loss="mse"))
    with pytest.raises(ShapeError, match=r"\(2, 20, 3\)"):
        model.gradients(d["x"][:2, :20], np.zeros((2, 20, 2)))


def test_missing_readout_is_named() -> None:
    with pytest.raises(ModelError, match="'readout'.*does not exist"):
        _small(snncc.rules.EProp(readout="readout"))


def test_gradients_without_a_rule() -> None:
    model, d = _small()
    with pytest.raises(ModelError, match="without a learning rule"):
        model.gradients(d["x"][:2, :20], np.array([0, 1]))
    with pytest.raises(ModelError):
        model.train_batch(d["x"][:2, :20], np.array([0, 1]))
