"""The benchmark peers compute what snncc computes: same loss, same gradients.

Every peer of ``python -m benchmarks`` (PyTorch with a dense or a sparse input projection, JAX,
snnTorch) is compared, on a feed-forward and on a recurrent network, with the independent
torch autograd reference ``tests/reference/torch_bptt.py`` in float64 (the peers run in float64
here: the comparison is exact up to rounding, 1e-10), and on a feed-forward network, where eProp
*is* BPTT, with snncc's own float32 gradients (1e-4, as tests/test_eprop.py).

snnTorch has no adaptive neuron and no refractory period: it is checked on LIF networks only.
Its built-in ``surrogate.triangular`` is not the triangle (``test_snntorch_builtin_triangular``
shows the difference), so the peer passes the triangle as its ``spike_grad``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from tests.reference.torch_bptt import bptt_gradients  # noqa: E402

B, T, N_IN, N, K = 3, 60, 12, 8, 3
V_TH = 0.3
ALIF = {"model": "alif", "beta": 0.3, "tau_a": 40.0}
EXACT = 1e-10  # float64 peer vs float64 reference
RTOL32 = 1e-4  # float32 snncc vs float64 peer


def _data(seed: int, recurrent: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    w = {
        "W_in": rng.normal(0.0, 1.5 / np.sqrt(N_IN), (N_IN, N)),
        "W_rec": rng.normal(0.0, 1.0 / np.sqrt(N), (N, N)),
        "W_out": rng.normal(0.0, 1.0 / np.sqrt(N), (N, K)),
        "b_out": rng.normal(0.0, 0.1, K),
    }
    if not recurrent:
        del w["W_rec"]
    # float32-representable, so that snncc's float32 run sees the very same network
    w = {k: v.astype(np.float32).astype(np.float64) for k, v in w.items()}
    x = (rng.random((B, T, N_IN)) < 0.2).astype(np.uint8)
    return {"x": x, "labels": rng.integers(0, K, B), "weights": w}


def _torch(projection: str) -> Callable[..., Any]:
    def make(**kw: Any) -> Any:
        from benchmarks.peers import TorchSNN

        return TorchSNN(N_IN, N, K, dtype=torch.float64, input_projection=projection, **kw)

    return make


def _jax(**kw: Any) -> Any:
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    from benchmarks.jax_peer import JaxSNN

    return JaxSNN(N_IN, N, K, **kw)


def _snntorch(**kw: Any) -> Any:
    pytest.importorskip("snntorch")
    from benchmarks.snntorch_peer import SnnTorchSNN

    if kw.pop("model", "lif") != "lif" or kw.pop("n_ref", 0):
        pytest.skip("snnTorch has no ALIF neuron and no refractory period")
    for alif_only in ("beta", "tau_a"):
        kw.pop(alif_only, None)
    return SnnTorchSNN(N_IN, N, K, dtype=torch.float64, **kw)


PEERS = {"torch-dense": _torch("dense"), "torch-sparse": _torch("sparse"), "jax": _jax,
         "snntorch": _snntorch}  # fmt: skip
NETWORKS = {
    "lif": {"model": "lif"},
    "alif": ALIF,
    "alif_refractory3": {**ALIF, "n_ref": 3},
    "lif_refractory2_gamma0.5": {"model": "lif", "n_ref": 2, "gamma": 0.5},
}


def _float64(peer: str) -> Any:
    """A context in which the peer computes in float64 (JAX: ``enable_x64``)."""
    if peer != "jax":
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


def _peer_gradients(peer: str, d: dict, **kw: Any) -> tuple[float, dict[str, np.ndarray]]:
    """The peer's loss and gradients for ``d``, in float64."""
    with _float64(peer):
        net = PEERS[peer](v_th=V_TH, recurrent="W_rec" in d["weights"], seed=0, **kw)
        net.set_weights(d["weights"])
        return net.loss_and_gradients(d["x"], d["labels"])


def _reference(d: dict, **kw: Any) -> dict[str, Any]:
    w = d["weights"]
    return bptt_gradients(d["x"], w["W_in"], w.get("W_rec"), w["W_out"], w["b_out"],
                          v_th=V_TH, labels=d["labels"], **kw)  # fmt: skip


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("peer", list(PEERS))
def test_peer_equals_reference_bptt(peer: str, network: str, recurrent: bool) -> None:
    kw = NETWORKS[network]
    d = _data(1 if recurrent else 0, recurrent)
    ref = _reference(d, **kw)
    assert 0.02 < ref["z"].mean() < 0.5, "the test network should spike moderately"
    loss, grads = _peer_gradients(peer, d, **kw)
    assert set(grads) == set(d["weights"])
    assert loss == pytest.approx(ref["loss"], rel=EXACT)
    for name, g in grads.items():
        assert g.shape == ref[name].shape
        assert _rel(g, ref[name]) < EXACT, (name, _rel(g, ref[name]))


@pytest.mark.parametrize("peer", list(PEERS))
def test_tolerance_tells_surrogates_apart(peer: str) -> None:
    """The comparison can fail: a 10 % steeper surrogate is far outside the tolerance."""
    d = _data(1, True)
    ref = _reference(d, model="lif")
    _, grads = _peer_gradients(peer, d, model="lif", gamma=0.33)
    assert _rel(grads["W_in"], ref["W_in"]) > 1e-3


@pytest.mark.parametrize("peer", [p for p in PEERS if p != "torch-dense"])
def test_adam_steps_equal_torch_adam(peer: str) -> None:
    """Three training steps move every peer's weights exactly as torch.optim.Adam moves the
    dense PyTorch peer's (optax's Adam has torch's defaults)."""
    d = _data(1, True)

    def train(name: str) -> dict[str, np.ndarray]:
        with _float64(name):
            net = PEERS[name](model="lif", v_th=V_TH, seed=0, lr=0.01)
            net.set_weights(d["weights"])
            x = net.prepare_input(d["x"])
            for _ in range(3):
                net.train_step(x, torch.as_tensor(d["labels"]))
            return net.weights()

    ours, ref = train(peer), train("torch-dense")
    for name, w in ref.items():
        assert np.abs(w - d["weights"][name]).max() > 1e-3  # the steps did move the weights
        np.testing.assert_allclose(ours[name], w, rtol=0, atol=1e-12, err_msg=name)


def test_snntorch_builtin_triangular_is_not_the_triangle() -> None:
    """Why the snnTorch peer passes its own ``spike_grad``: snnTorch's ``triangular`` backward
    is ``+-threshold`` (sign flip at the threshold), not ``max(0, 1 - |u|/v_th)``."""
    pytest.importorskip("snntorch")
    from snntorch import surrogate

    d = _data(1, True)
    net = _snntorch(v_th=V_TH, seed=0)
    net.set_weights(d["weights"])
    net.hidden.spike_grad = surrogate.triangular(V_TH)
    x = torch.as_tensor(d["x"], dtype=torch.float32)  # the built-in casts spikes to float32
    net.float().loss(net(x), torch.as_tensor(d["labels"])).backward()
    ref = _reference(d, model="lif")
    assert _rel(net.fc_in.weight.grad.T.double().numpy(), ref["W_in"]) > 0.1


@pytest.fixture(scope="module")
def snncc_feedforward() -> Callable[[str], dict[str, np.ndarray]]:
    """snncc's eProp gradients of the feed-forward networks (exactly BPTT there), per network."""
    import snncc
    from snncc import neurons

    d = _data(0, False)
    w = {k: v.astype(np.float32) for k, v in d["weights"].items()}
    cache: dict[str, dict[str, np.ndarray]] = {}

    def gradients(network: str) -> dict[str, np.ndarray]:
        if network not in cache:
            kw = NETWORKS[network]
            common = {"v_th": V_TH, "gamma": kw.get("gamma", 0.3),
                      "refractory": float(kw.get("n_ref", 0))}  # fmt: skip
            if kw["model"] == "alif":
                hidden = neurons.ALIF(tau_m=20.0, tau_a=kw["tau_a"], beta=kw["beta"], **common)
            else:
                hidden = neurons.LIF(tau_m=20.0, **common)
            net = snncc.Network(dt=1.0)
            inp = net.add_input("input", N_IN)
            hid = net.add_population("hidden", N, hidden)
            out = net.add_population(
                "output", K, neurons.LeakyIntegrator(tau=20.0, bias=w["b_out"])
            )
            net.connect(inp, hid, name="in_hid", weight=w["W_in"])
            net.connect(hid, out, name="hid_out", weight=w["W_out"])
            rule = snncc.rules.EProp(readout="output", regularizer="none")
            g = snncc.compile(net, batch_size=B, rule=rule).gradients(d["x"], d["labels"])
            cache[network] = {"W_in": g["in_hid"], "W_out": g["hid_out"], "b_out": g["output.bias"]}
        return cache[network]

    return gradients


@pytest.mark.slow
@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("peer", list(PEERS))
def test_peer_equals_snncc_on_a_feedforward_network(peer: str, network: str,
                                                    snncc_feedforward) -> None:  # fmt: skip
    kw = NETWORKS[network]
    d = _data(0, False)
    _, grads = _peer_gradients(peer, d, **kw)
    ours = snncc_feedforward(network)
    for name in ("W_in", "W_out", "b_out"):
        assert _rel(ours[name], grads[name]) < RTOL32, (name, _rel(ours[name], grads[name]))
