"""NIR import/export (snncc.nir), tested against the real peer, snnTorch (docs/nir.md).

snnTorch simulates its own networks; snncc imports snnTorch's NIR export of them and must
produce the same spikes (and membranes), and the other way round for networks snncc trained.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import snncc
from snncc import init, neurons

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")
import snntorch.utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402

N_IN, N_HID, N_OUT, T, B = 12, 10, 4, 60, 3


def _inputs(seed: int = 0, p: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random((B, T, N_IN)) < p).astype(np.uint8)


def _dyadic(shape, rng, scale=16.0) -> torch.Tensor:
    """Weights k/16: every float32 sum of them is exact, whatever the order."""
    return torch.tensor(rng.integers(-8, 12, shape) / scale, dtype=torch.float32)


class _SnnTorchNet(torch.nn.Module):
    """Linear -> hidden (Leaky, RLeaky or Synaptic) -> Linear -> Leaky, as snnTorch users write."""

    def __init__(self, hidden: str, reset: str, dyadic: bool, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        ones = torch.ones(N_HID)
        # NIR needs per-neuron parameters: snnTorch's export of a scalar beta fails type checks
        kw = dict(beta=torch.full((N_HID,), 0.9), threshold=ones, reset_mechanism=reset)
        # a zero reset with snnTorch's default reset_delay=True drops the input of the step
        # after a spike in RLeaky and Synaptic (not in Leaky); NIR's reset keeps it
        delay = reset != "zero"
        self.fc1 = torch.nn.Linear(N_IN, N_HID, bias=not dyadic)
        if hidden == "leaky":
            self.lif1 = snn.Leaky(**kw, init_hidden=True)
        elif hidden == "rleaky":
            self.lif1 = snn.RLeaky(**kw, linear_features=N_HID, init_hidden=True, reset_delay=delay)
        else:
            self.lif1 = snn.Synaptic(
                alpha=torch.full((N_HID,), 0.75), **kw, init_hidden=True, reset_delay=delay
            )
        self.fc2 = torch.nn.Linear(N_HID, N_OUT, bias=False)
        self.lif2 = snn.Leaky(
            beta=torch.full((N_OUT,), 0.8),
            threshold=torch.full((N_OUT,), 0.5),
            reset_mechanism=reset,
            init_hidden=True,
        )
        if dyadic:
            with torch.no_grad():
                self.fc1.weight.copy_(_dyadic((N_HID, N_IN), rng))
                self.fc2.weight.copy_(_dyadic((N_OUT, N_HID), rng))
                if hidden == "rleaky":
                    self.lif1.recurrent.weight.copy_(_dyadic((N_HID, N_HID), rng) / 2)
                    self.lif1.recurrent.bias.zero_()

    def forward(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x))))


def _simulate(net: _SnnTorchNet, x: np.ndarray) -> dict[str, np.ndarray]:
    """snnTorch's own simulation: spikes and membrane of both layers, (B, T, n)."""
    rec = {"lif1": [], "lif2": [], "lif1.v": [], "lif2.v": []}

    def keep(name):
        def hook(module, inputs, spikes):  # returns None: the output stays as it is
            rec[name].append(spikes.detach().clone())
            rec[name + ".v"].append(module.mem.detach().clone())

        return hook

    hooks = [getattr(net, k).register_forward_hook(keep(k)) for k in ("lif1", "lif2")]
    snntorch.utils.reset(net)
    xt = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        for t in range(x.shape[1]):
            net(xt[:, t])
    for h in hooks:
        h.remove()
    return {k: torch.stack(v, 1).numpy() for k, v in rec.items()}


def _run(net: snncc.Network, x: np.ndarray, record) -> dict[str, np.ndarray]:
    return snncc.compile(net, batch_size=x.shape[0]).run(x, record=list(record))


def _from_snntorch(net, reset: str) -> snncc.Network:
    graph = export_to_nir(net, torch.zeros(N_IN))
    return snncc.nir.load(graph, dt=1e-4, integration="euler", reset=reset)


def _hidden(net: snncc.Network) -> str:
    return next(n for n in net.populations if n.startswith("lif1"))


# ------------------------------------------------------------------ snnTorch -> NIR -> snncc
@pytest.mark.parametrize("hidden", ["leaky", "rleaky", "synaptic"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_snntorch_network_imports_with_identical_spikes(hidden, reset):
    """Dyadic weights make every input sum exact, so the rest must be the same float32
    operations in the same order: spikes and membranes bit-identical."""
    peer = _SnnTorchNet(hidden, reset, dyadic=True)
    x = _inputs()
    ref = _simulate(peer, x)
    net = _from_snntorch(peer, "value" if reset == "zero" else "subtract")
    h = _hidden(net)
    got = _run(net, x, [h, "lif2", f"{h}.v", "lif2.v"])
    assert ref["lif1"].sum() > 50 and ref["lif2"].sum() > 10  # the comparison means something
    np.testing.assert_array_equal(got[h], ref["lif1"])
    np.testing.assert_array_equal(got["lif2"], ref["lif2"])
    if reset == "subtract":  # snnTorch subtracts after adding the input, snncc before
        np.testing.assert_allclose(got[f"{h}.v"], ref["lif1.v"], rtol=2e-6, atol=2e-6)
    elif hidden == "leaky":  # (reset_delay=False zeroes the others' recorded membrane)
        np.testing.assert_array_equal(got[f"{h}.v"], ref["lif1.v"])


@pytest.mark.parametrize("hidden", ["leaky", "rleaky"])
def test_snntorch_float_weights_and_biases(hidden):
    """Random float weights and biases (the recurrent Linear's own bias included): input
    sums may round differently, membranes agree to float32 rounding, spikes are equal."""
    peer = _SnnTorchNet(hidden, "zero", dyadic=False, seed=1)
    x = _inputs(1, p=0.5)
    ref = _simulate(peer, x)
    net = _from_snntorch(peer, "value")
    h = _hidden(net)
    got = _run(net, x, [h, "lif2", "lif2.v"])
    assert ref["lif1"].sum() > 20
    np.testing.assert_array_equal(got[h], ref["lif1"])
    np.testing.assert_array_equal(got["lif2"], ref["lif2"])
    np.testing.assert_allclose(got["lif2.v"], ref["lif2.v"], rtol=1e-5, atol=1e-6)


def test_snntorch_trouble_spots_are_visible():
    """The choices that make the import match are needed: each wrong one changes the spikes."""
    peer = _SnnTorchNet("rleaky", "subtract", dyadic=True)
    x = _inputs()
    ref = _simulate(peer, x)["lif1"]
    graph = export_to_nir(peer, torch.zeros(N_IN))
    hid = graph.nodes["lif1.lif"]
    # snnTorch writes v_reset = 0 for its subtract reset and its fixed dt into tau = dt / (1-beta)
    assert np.all(hid.v_reset == 0) and np.allclose(hid.tau, 1e-4 / (1 - 0.9), rtol=1e-6)
    assert isinstance(graph.nodes["lif1.w_rec"], nir.Affine)  # the recurrent bias travels too

    def spikes(**kw):
        net = snncc.nir.load(graph, **kw)
        return _run(net, x, [_hidden(net)])[_hidden(net)]

    np.testing.assert_array_equal(spikes(dt=1e-4, integration="euler", reset="subtract"), ref)
    assert not np.array_equal(spikes(dt=1e-4, integration="euler", reset="value"), ref)
    assert not np.array_equal(spikes(dt=1e-4, integration="exact", reset="subtract"), ref)
    assert not np.array_equal(spikes(dt=1e-3, integration="euler", reset="subtract"), ref)


# ------------------------------------------------------------------ snncc -> NIR -> snnTorch
def _trained(recurrent: bool, integration: str):
    """A small network trained a few eProp steps: the weights moved away from their draw."""
    dt, tau = 1.0, 20.0
    gain = 1 - np.exp(-dt / tau) if integration == "exact" else dt / tau
    net = snncc.Network(dt=dt, seed=3)
    inp = net.add_input("input", N_IN)
    hid = net.add_population(
        "hidden",
        N_HID,
        neurons.NIRLIF(tau=tau, v_threshold=0.6, r=1 / gain, integration=integration),
    )
    out = net.add_population("output", N_OUT, neurons.LI(tau=tau, r=1 / gain))
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.2, 0.3))
    if recurrent:
        net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 0.2), allow_self=False)
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 0.3))
    model = snncc.compile(
        net,
        batch_size=8,
        rule=snncc.rules.EProp(readout="output"),
        optimizer=snncc.optim.Adam(1e-2),
    )
    rng = np.random.default_rng(0)
    x = (rng.random((8, 40, N_IN)) < 0.2).astype(np.uint8)
    y = rng.integers(0, N_OUT, 8)
    before = model.weights["in_hid"].copy()
    for _ in range(3):
        model.train_batch(x, y)
    assert np.abs(model.weights["in_hid"] - before).max() > 1e-3
    return model, x


def _run_snntorch(module, x: np.ndarray) -> np.ndarray:
    snntorch.utils.reset(module)
    xt = torch.tensor(x, dtype=torch.float32)
    out, state = [], None
    with torch.no_grad():
        for t in range(x.shape[1]):
            o, state = module(xt[:, t], state)
            out.append(o)
    return torch.stack(out, 1).numpy()


@pytest.mark.parametrize("integration", ["exact", "euler"])
def test_trained_snncc_network_runs_in_snntorch(integration):
    """snnTorch's own importer (Euler, fixed dt = 1e-4) reproduces snncc's spikes exactly."""
    model, x = _trained(recurrent=False, integration=integration)
    spikes = model.run(x, record=["hidden"])["hidden"]
    # snnTorch's importer has no LI node: hand it the spiking layer
    graph = snncc.nir.export(model, euler_dt=1e-4, populations=["input", "hidden"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = import_from_nir(graph)
    got = _run_snntorch(peer, x)
    assert spikes.sum() > 100
    np.testing.assert_array_equal(got, spikes)


def test_trained_recurrent_network_runs_in_snntorch_rleaky():
    """snnTorch's importer wires a recurrent graph's input through W_rec (docs/nir.md), so the
    recurrent layer is built as an RLeaky from the exported graph's nodes."""
    model, x = _trained(recurrent=True, integration="exact")
    spikes = model.run(x, record=["hidden"])["hidden"]
    graph = snncc.nir.export(model, euler_dt=1e-4, populations=["input", "hidden"])
    lif, w_in, w_rec = graph.nodes["hidden"], graph.nodes["in_hid"], graph.nodes["hid_hid"]
    assert ("hidden", "hid_hid") in graph.edges and ("hid_hid", "hidden") in graph.edges
    beta = 1 - 1e-4 / lif.tau  # what snnTorch's importer computes, in float32
    fc = torch.nn.Linear(N_IN, N_HID, bias=False)
    cell = snn.RLeaky(
        beta=torch.tensor(beta),
        threshold=float(lif.v_threshold[0]),
        linear_features=N_HID,
        reset_mechanism="zero",
        reset_delay=False,
        init_hidden=True,
    )
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(w_in.weight))
        cell.recurrent.weight.copy_(torch.tensor(w_rec.weight))
        cell.recurrent.bias.zero_()
    snntorch.utils.reset(cell)
    xt = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        got = torch.stack([cell(fc(xt[:, t])) for t in range(x.shape[1])], 1).numpy()
    assert spikes.sum() > 100
    np.testing.assert_array_equal(got, spikes)


# ----------------------------------------------------------------- snncc -> file -> snncc
def _rich_network() -> snncc.Network:
    """Every exportable model, heterogeneous parameters, biases, recurrence."""
    net = snncc.Network(dt=0.5, seed=7)
    rng = np.random.default_rng(7)
    inp = net.add_input("input", N_IN)
    a = net.add_population(
        "a",
        N_HID,
        neurons.NIRLIF(
            tau=rng.uniform(10, 30, N_HID),
            v_threshold=0.7,
            r=3.3,
            v_leak=0.05,
            v_reset=-0.1,
            bias=rng.normal(0, 0.05, N_HID),
            gamma=0.5,
        ),
    )
    c = net.add_population(
        "c", 6, neurons.CubaLIF(tau_mem=15.0, tau_syn=4.0, v_threshold=0.2, r=2.0, w_in=1.5)
    )
    i_f = net.add_population("i_f", 5, neurons.IF(v_threshold=0.3, r=1.7))
    out = net.add_population("out", N_OUT, neurons.LI(tau=12.0, r=2.2, bias=0.01))
    net.connect(inp, a, name="in_a", weight=init.Normal(0.3, 0.4))
    net.connect(a, a, name="a_a", weight=init.Normal(0.0, 0.2), allow_self=False)
    net.connect(a, c, name="a_c", weight=init.Normal(0.5, 0.4))
    net.connect(c, i_f, name="c_if", weight=init.Normal(0.6, 0.4))
    net.connect(i_f, out, name="if_out", weight=init.Normal(0.0, 0.4))
    net.connect(c, out, name="c_out", weight=init.Normal(0.0, 0.4))
    return net


def test_round_trip_through_a_file_is_bit_identical(tmp_path):
    net = _rich_network()
    path = tmp_path / "net.nir"
    snncc.nir.export(net, path)
    back = snncc.nir.load(path, dt=net.dt, integration="exact")
    assert list(back.projections) == list(net.projections)
    for name, q in net.projections.items():
        np.testing.assert_array_equal(back.projections[name].weight, q.weight)
        assert back.projections[name].delay == q.delay
    for name, pop in net.populations.items():
        other = back.populations[name].model
        assert other.name == pop.model.name and set(other.params) == set(pop.model.params)
        for k, v in pop.model.params.items():
            np.testing.assert_array_equal(
                np.broadcast_to(other.params[k], (pop.size,)), np.broadcast_to(v, (pop.size,))
            )
    x = _inputs(2, p=0.4)
    rec = ["a", "c", "i_f", "out.v", "c.I"]
    ref, got = _run(net, x, rec), _run(back, x, rec)
    assert ref["a"].sum() > 50 and ref["c"].sum() > 10 and ref["i_f"].sum() > 10
    for k in rec:
        np.testing.assert_array_equal(got[k], ref[k])


def test_export_carries_trained_weights_and_bias(tmp_path):
    model, x = _trained(recurrent=True, integration="exact")
    path = tmp_path / "trained.nir"
    snncc.nir.export(model, path)
    back = snncc.nir.load(path, dt=1.0, integration="exact")
    for name in model.net.projections:
        np.testing.assert_array_equal(back.projections[name].weight, model.weights[name])
    trained_bias = model.trained_network().populations["output"].model.params["bias"]
    assert np.any(trained_bias != 0)  # eProp moved the readout's bias
    np.testing.assert_array_equal(back.populations["output"].model.params["bias"], trained_bias)
    ref = model.run(x, record=["hidden", "output.v"])
    got = _run(back, x, ["hidden", "output.v"])
    np.testing.assert_array_equal(got["hidden"], ref["hidden"])
    np.testing.assert_array_equal(got["output.v"], ref["output.v"])


def test_a_network_exports_its_initial_weights():
    net = _rich_network()
    graph = snncc.nir.export(net)
    np.testing.assert_array_equal(graph.nodes["in_a"].weight, net.projections["in_a"].weight.T)
    np.testing.assert_array_equal(
        graph.nodes["in_a"].bias, net.populations["a"].model.params["bias"]
    )
    assert isinstance(graph.nodes["a_c"], nir.Linear)


def test_euler_tau_recovers_every_decay_in_float32_and_float64():
    from snncc.nir import _euler_tau

    both = 0
    # tau from 3 to 500 steps (below ~2 steps float32 cannot always hit the decay)
    for decay in np.float32(np.exp(-1.0 / np.linspace(3, 500, 2000))).astype(np.float64):
        tau = _euler_tau(decay, 1e-4)
        assert np.float32(1) - np.float32(1e-4) / tau == np.float32(decay)  # snnTorch's reading
        both += np.float32(1.0 - 1e-4 / float(tau)) == np.float32(decay)  # snncc's
    assert both >= 1990


# ------------------------------------------------------------------------------- errors
def _graph(nodes, edges, **kw):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False, **kw)


def _lif(n=3):
    return nir.LIF(tau=np.full(n, 10.0), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


def _io(n_in=2, n_out=3):
    return {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "out": nir.Output(output_type={"output": np.array([n_out])}),
    }


def test_missing_dt_is_an_error_that_says_what_to_do():
    graph = snncc.nir.export(_rich_network())
    with pytest.raises(snncc.NIRError, match=r"give the time step.*dt=0\.5"):
        snncc.nir.load(graph)


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (nir.Threshold(threshold=np.ones(3)), "Threshold node"),
        (nir.Scale(scale=np.ones(3)), "Scale node"),
    ],
)
def test_unknown_or_unsupported_node_names_it(node, message):
    graph = _graph(
        {**_io(), "w": nir.Linear(weight=np.ones((3, 2))), "odd": node, "lif": _lif()},
        [("in", "w"), ("w", "odd"), ("odd", "lif"), ("lif", "out")],
    )
    with pytest.raises(snncc.NIRError, match=f"node 'odd'.*{message}"):
        snncc.nir.load(graph, dt=1.0)


def test_shape_mismatch_names_the_nodes():
    graph = _graph(
        {**_io(), "w": nir.Linear(weight=np.ones((3, 4))), "lif": _lif()},
        [("in", "w"), ("w", "lif"), ("lif", "out")],
    )
    with pytest.raises(snncc.ShapeError, match=r"'w' has shape \(3, 4\).*'in' \(2 neurons\)"):
        snncc.nir.load(graph, dt=1.0)


def test_cycle_without_a_neuron_is_refused():
    graph = _graph(
        {
            **_io(),
            "w1": nir.Linear(weight=np.ones((3, 2))),
            "w2": nir.Linear(weight=np.ones((3, 3))),
            "w3": nir.Linear(weight=np.ones((3, 3))),
            "lif": _lif(),
        },
        [("in", "w1"), ("w1", "w2"), ("w2", "w3"), ("w3", "w2"), ("w2", "lif"), ("lif", "out")],
    )
    with pytest.raises(snncc.NIRError, match="cycle w2 -> w3 -> w2 has no neuron"):
        snncc.nir.load(graph, dt=1.0)


def test_nested_subgraph_opens_up():
    """A recurrent layer as a nested NIRGraph (snnTorch's older export form) reads as a
    recurrent population with its projection delayed one step."""
    sub = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([3])}),
            "lif": _lif(),
            "w_rec": nir.Linear(weight=np.eye(3)),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    graph = _graph(
        {**_io(), "w": nir.Linear(weight=np.ones((3, 2))), "rnn": sub},
        [("in", "w"), ("w", "rnn"), ("rnn", "out")],
    )
    net = snncc.nir.load(graph, dt=1.0)
    assert list(net.populations) == ["in", "rnn_lif"]
    assert net.projections["rnn_w_rec"].delayed and not net.projections["w"].delayed


def test_subtract_reset_needs_v_reset_zero():
    node = _lif()
    node.v_reset = np.full(3, 0.2)
    graph = _graph(
        {**_io(), "w": nir.Linear(weight=np.ones((3, 2))), "lif": node},
        [("in", "w"), ("w", "lif"), ("lif", "out")],
    )
    with pytest.raises(snncc.NIRError, match="node 'lif' resets to 0.2"):
        snncc.nir.load(graph, dt=1.0, reset="subtract")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (neurons.ALIF(), "spike-triggered effects.*no node for them"),
        (neurons.LIF(), "resets by subtraction"),
        (neurons.NIRLIF(reset="subtract"), "resets by subtracting v_threshold"),
        (neurons.LeakyIntegrator(), "only the NIR node models"),
    ],
)
def test_models_nir_cannot_express_are_refused(model, message):
    net = snncc.Network()
    net.add_input("input", 2)
    net.add_population("hidden", 3, model)
    net.connect("input", "hidden", weight=0.1)
    with pytest.raises(snncc.NIRError, match=f"population 'hidden'.*{message}"):
        snncc.nir.export(net)


def test_a_step_late_projection_nir_would_deliver_at_once_is_refused():
    net = snncc.Network()
    net.add_input("input", 2)
    a = net.add_population("a", 3, neurons.NIRLIF())
    b = net.add_population("b", 3, neurons.NIRLIF())
    net.connect("input", b, name="in_b", weight=0.5)
    net.connect(b, a, name="b_a", weight=0.5)  # a is declared first: b -> a comes a step late
    with pytest.raises(snncc.NIRError, match="projection 'b_a'.*one step late"):
        snncc.nir.export(net)


def test_importing_snncc_does_not_import_nir():
    code = "import sys, snncc; assert 'nir' not in sys.modules, 'nir was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_nir_package_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)  # makes `import nir` raise ImportError
    with pytest.raises(snncc.NIRError, match="pip install nir"):
        snncc.nir.export(snncc.Network())


def test_snncc_train_export_nir(tmp_path, capsys):
    """`snncc train --export-nir` writes the trained network; it loads back with its weights."""
    from snncc.cli import main

    out, path = tmp_path / "run", tmp_path / "net.nir"
    args = ["train", "--model", "lif", "--neurons", "16", "--epochs", "1", "--no-progress"]
    assert main([*args, "--out", str(out), "--export-nir", str(path)]) == 0
    model = snncc.load(out / "checkpoint.snncc")
    back = snncc.nir.load(path, dt=1.0, integration="exact")
    for name in model.net.projections:
        np.testing.assert_array_equal(back.projections[name].weight, model.weights[name])
    assert main(["train", "--export-nir", str(path), "--epochs", "1"]) == 1  # ALIF: refused
    assert "--export-nir needs --model lif" in capsys.readouterr().err


def _delayed_network() -> snncc.Network:
    """Explicit delays forward, recurrent and into the readout (Delay nodes in NIR)."""
    net = snncc.Network(dt=0.5, seed=3)
    inp = net.add_input("inp", N_IN)
    a = net.add_population("a", N_HID, neurons.NIRLIF(tau=6.0, v_threshold=0.5, r=3.0))
    out = net.add_population("out", N_OUT, neurons.LI(tau=12.0, r=2.0))
    net.connect(inp, a, name="in_a", weight=init.Normal(0.4, 0.5), delay=3)
    net.connect(a, a, name="a_a", weight=init.Normal(0.0, 0.3), delay=4)
    net.connect(a, out, name="a_out", weight=init.Normal(0.0, 0.4), delay=2)
    return net


def test_delays_round_trip_through_delay_nodes_bit_identically(tmp_path):
    net = _delayed_network()
    path = tmp_path / "delayed.nir"
    graph = snncc.nir.export(net, path)
    delays = {k: v for k, v in graph.nodes.items() if isinstance(v, nir.Delay)}
    assert sorted(delays) == ["a_a_delay", "a_out_delay", "in_a_delay"]
    np.testing.assert_array_equal(delays["in_a_delay"].delay, np.full(N_HID, 3 * 0.5))
    back = snncc.nir.load(path, dt=net.dt, integration="exact")
    assert {n: q.delay for n, q in back.projections.items()} == {"in_a": 3, "a_a": 4, "a_out": 2}
    x = (np.random.default_rng(0).random((2, 60, N_IN)) < 0.3).astype(np.uint8)
    keys = ["a", "out.v"]
    want = snncc.compile(net, batch_size=2).run(x, record=keys)
    got = snncc.compile(back, batch_size=2).run(x, record=keys)
    for k in keys:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert want["a"].any()


def test_a_delay_node_that_is_no_whole_number_of_steps_is_refused():
    graph = _graph(
        {**_io(), "w": nir.Linear(weight=np.ones((3, 2))),
         "d": nir.Delay(np.array([1.0, 1.0, 2.5])), "lif": _lif()},
        [("in", "w"), ("w", "d"), ("d", "lif"), ("lif", "out")],
    )  # fmt: skip
    with pytest.raises(snncc.NIRError, match=r"not one whole number of steps of dt=1"):
        snncc.nir.load(graph, dt=1.0)
    with pytest.raises(snncc.NIRError, match=r"one delay per projection"):
        snncc.nir.load(graph, dt=0.5)  # 2, 2 and 5 steps: whole, but not one value
