"""Self-consistency of the independent references (NumPy e-prop, torch BPTT, Bellec task)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.reference.bellec import NEST_LOSSES, TF_LOSSES, make_task, run_reference
from tests.reference.numpy_eprop import eprop_gradients, forward

torch = pytest.importorskip("torch")
from tests.reference.torch_bptt import bptt_gradients  # noqa: E402

B, T, N_IN, N, K = 3, 60, 12, 8, 3
KAPPA20 = 1.0 - np.exp(-1.0 / 20.0)


def _net(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x": (rng.random((B, T, N_IN)) < 0.2).astype(np.float64),
        "W_in": rng.normal(0.0, 1.5 / np.sqrt(N_IN), (N_IN, N)),
        "W_rec": rng.normal(0.0, 1.0 / np.sqrt(N), (N, N)),
        "W_out": rng.normal(0.0, 1.0 / np.sqrt(N), (N, K)),
        "b_out": rng.normal(0.0, 0.1, K),
        "labels": rng.integers(0, K, B),
        "targets": rng.normal(size=(B, T, K)),
        "tau_het": rng.uniform(10.0, 30.0, N),
    }


CASES = {
    "default": {},
    "refractory": {"n_ref": 5},
    "hetero_tau_error_start": {"tau_het": True, "beta": 0.5, "tau_a": 50.0, "n_ref": 3,
                               "error_start": 10},
    "mse_zeta_outscale": {"loss": "mse", "zeta": KAPPA20, "out_scale": KAPPA20,
                          "gain": "1-kappa", "beta": 0.3, "tau_a": 30.0},
    "sequence_reg": {"reg": "sequence", "c_reg": 3.0, "f_target": 0.05, "beta": 0.3,
                     "tau_a": 40.0, "n_ref": 2},
}  # fmt: skip


def _kwargs(net: dict, case: dict, model: str) -> tuple[dict, dict]:
    kw = {"model": model, "v_th": 0.3, "dtype": np.float64, "labels": net["labels"]}
    kw.update(case)
    if kw.pop("tau_het", False):
        kw["tau_m"] = net["tau_het"]
    if kw.get("loss") == "mse":
        kw["targets"] = net["targets"]
    kb = {k: v for k, v in kw.items() if k != "gain"}
    return kw, kb


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("model", ["lif", "alif"])
@pytest.mark.parametrize("case", list(CASES))
def test_feedforward_eprop_equals_bptt(model: str, case: str) -> None:
    net = _net()
    kw, kb = _kwargs(net, CASES[case], model)
    args = (net["x"], net["W_in"], None, net["W_out"], net["b_out"])
    e = eprop_gradients(*args, **kw)
    g = bptt_gradients(*args, **kb)
    assert 0.005 < e["z"].mean() < 0.5  # the network spikes, but not saturated
    np.testing.assert_array_equal(e["z"], g["z"])
    assert e["loss"] == pytest.approx(g["loss"], rel=1e-12)
    for k in ("W_in", "W_out", "b_out"):
        assert _rel(e[k], g[k]) < 1e-10, k
    assert "W_rec" not in e


@pytest.mark.parametrize("model", ["lif", "alif"])
@pytest.mark.parametrize("case", ["default", "mse_zeta_outscale", "hetero_tau_error_start"])
def test_recurrent_readout_grads_exact(model: str, case: str) -> None:
    net = _net(1)
    kw, kb = _kwargs(net, CASES[case], model)
    args = (net["x"], net["W_in"], net["W_rec"], net["W_out"], net["b_out"])
    e = eprop_gradients(*args, allow_self=False, **kw)
    g = bptt_gradients(*args, **kb)
    np.testing.assert_array_equal(e["z"], g["z"])
    np.testing.assert_allclose(e["y"], g["y"], rtol=1e-12, atol=1e-12)
    for k in ("W_out", "b_out"):
        assert _rel(e[k], g[k]) < 1e-10, k
    # e-prop truncates the recurrent gradient: close in sign pattern, not equal
    assert 1e-6 < _rel(e["W_rec"], g["W_rec"]) < 1.0
    assert np.all(np.diag(e["W_rec"]) == 0)


def test_refractory_spacing() -> None:
    net = _net(2)
    out = forward(net["x"], 4.0 * net["W_in"], None, net["W_out"], model="lif", v_th=0.3,
                  n_ref=5, dtype=np.float64)  # fmt: skip
    z = out["z"]
    gaps = [np.diff(np.flatnonzero(z[b, :, j])) for b in range(B) for j in range(N)]
    gaps = np.concatenate([g for g in gaps if len(g)])
    assert gaps.size > 20 and gaps.min() == 5


def test_forward_matches_gradient_records_and_float32() -> None:
    net = _net(3)
    args = (net["x"], net["W_in"], net["W_rec"], net["W_out"], net["b_out"])
    f = forward(*args, labels=net["labels"], dtype=np.float64)
    e = eprop_gradients(*args, labels=net["labels"], dtype=np.float64)
    for k in ("z", "v", "y"):
        np.testing.assert_array_equal(f[k], e[k])
    assert f["loss"] == e["loss"]
    e32 = eprop_gradients(*args, labels=net["labels"], dtype=np.float32)
    assert e32["W_in"].dtype == np.float32 and e32["z"].dtype == np.float32


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_readout_gradient_finite_difference(loss: str) -> None:
    net = _net(4)
    kw = {
        "model": "alif",
        "beta": 0.3,
        "tau_a": 40.0,
        "v_th": 0.3,
        "dtype": np.float64,
        "loss": loss,
        "labels": net["labels"],
        "targets": net["targets"],
        "error_start": 5,
    }
    if loss == "mse":
        kw["out_scale"] = KAPPA20
    args = (net["x"], net["W_in"], net["W_rec"])
    e = eprop_gradients(*args, net["W_out"], net["b_out"], **kw)
    fw = dict(kw)
    h = 1e-4
    num_w = np.zeros_like(net["W_out"])
    for idx in np.ndindex(*num_w.shape):
        wp, wm = net["W_out"].copy(), net["W_out"].copy()
        wp[idx] += h
        wm[idx] -= h
        lp = forward(*args, wp, net["b_out"], **fw)["loss"]
        lm = forward(*args, wm, net["b_out"], **fw)["loss"]
        num_w[idx] = (lp - lm) / (2 * h)
    num_b = np.zeros_like(net["b_out"])
    for i in range(K):
        bp, bm = net["b_out"].copy(), net["b_out"].copy()
        bp[i] += h
        bm[i] -= h
        lp = forward(*args, net["W_out"], bp, **fw)["loss"]
        lm = forward(*args, net["W_out"], bm, **fw)["loss"]
        num_b[i] = (lp - lm) / (2 * h)
    np.testing.assert_allclose(e["W_out"], num_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(e["b_out"], num_b, rtol=1e-6, atol=1e-7)


def test_bellec_task_draw() -> None:
    task = make_task()
    assert task["W_in"].shape == (100, 100) and task["W_in"].dtype == np.float32
    assert task["W_out"].shape == (100, 1) and task["feedback"].shape == (100, 1)
    assert np.all(np.diag(task["W_rec"]) == 0)
    assert task["x"].shape == (1, 1000, 100) and not task["x"][0, 0].any()
    s = task["target"][0, :, 0]
    assert s[0] == 0 and np.max(np.abs(s)) == 1.0


def test_bellec_losses_float64() -> None:
    losses = run_reference(np.float64)
    np.testing.assert_allclose(losses, NEST_LOSSES, rtol=1e-12)
    np.testing.assert_allclose(losses, TF_LOSSES, rtol=1e-7)


def test_bellec_losses_float32() -> None:
    losses = run_reference(np.float32)
    np.testing.assert_allclose(losses, TF_LOSSES, rtol=1e-5)
    np.testing.assert_allclose(losses, NEST_LOSSES, rtol=1e-5)


def test_torch_snn_peer_matches_bptt() -> None:
    from benchmarks.peers import TorchSNN

    net = TorchSNN(N_IN, N, K, model="alif", beta=0.3, tau_a=40.0, v_th=0.3, n_ref=3,
                   dtype=torch.float64, seed=0)  # fmt: skip
    d = _net(5)
    x = torch.as_tensor(d["x"])
    lab = torch.as_tensor(d["labels"])
    net.loss(net(x), lab).backward()
    w = {k: getattr(net, k).detach().numpy() for k in ("W_in", "W_rec", "W_out", "b_out")}
    g = bptt_gradients(d["x"], w["W_in"], w["W_rec"], w["W_out"], w["b_out"], model="alif",
                       beta=0.3, tau_a=40.0, v_th=0.3, n_ref=3, labels=d["labels"])  # fmt: skip
    for k in w:
        assert _rel(getattr(net, k).grad.numpy(), g[k]) < 1e-10, k
