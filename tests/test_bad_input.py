"""The bad-input catalogue: every input a user can get wrong, through the API and the CLI.

Each case asserts the snncc error class (a subclass of snncc.SnnccError) and words of the
message that name the culprit (model, population, projection, equation, option, flag or file)
and say how to fix it. tests/test_errors.py holds the older cases (unknown symbols, reserved
names, wrong input shapes, compile-error mapping); none is repeated here. Then: nothing is lost
(a refused value changes nothing; checkpoints survive kill -9 mid-write), and diverging
training stops without writing unusable weights.
"""

from __future__ import annotations

import copy
import glob
import io
import json
import os
import pickle
import shutil
import signal
import time
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import snncc
import snncc.data as D
from snncc import init, neurons
from snncc.cli import main

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")

EProp, Adam, SGD = snncc.rules.EProp, snncc.optim.Adam, snncc.optim.SGD
# the error classes, short for the tables
ME, EE, SE, UE = snncc.ModelError, snncc.EquationError, snncc.ShapeError, snncc.UnknownNameError
CE, DE, NF, TE = snncc.CheckpointError, D.DatasetError, D.DatasetNotFoundError, snncc.TrainingError


def check(exc: type, make, *words: str) -> BaseException:
    """``make()`` raises ``exc`` (an SnnccError) whose message holds every one of ``words``."""
    assert issubclass(exc, snncc.SnnccError)
    with pytest.raises(exc) as err:
        make()
    msg = str(err.value)
    for word in words:
        assert word in msg, f"{word!r} not in the message: {msg}"
    return err.value


def case(name: str, make, exc: type, *words: str):
    """One row of a table: what to call, the error class it raises, words of its message."""
    return pytest.param(make, exc, list(words), id=name)


def said(name: str, make, *words: str):
    """One row of a table of command lines: what to set up, words of what snncc prints."""
    return pytest.param(make, list(words), id=name)


def lif(**changes) -> snncc.NeuronModel:
    spec = dict(
        name="MyLIF",
        params={"tau_m": 20.0, "v_th": 1.0},
        state={"v": 0.0},
        dynamics=["dv/dt = -v / tau_m"],
        threshold="v > v_th",
        reset={"v": "v - v_th"},
        input={"v": "I_syn"},
        surrogate="0.3 * max(0, 1 - abs(margin))",
    )
    spec.update(changes)
    return snncc.NeuronModel(**spec)


def run_net(hidden=None) -> snncc.Network:
    net = snncc.Network(dt=1.0, seed=0)
    net.add_input("input", 3)
    net.add_population("hidden", 4, hidden or neurons.ALIF(tau_a=50.0))
    net.add_population("out", 2, neurons.LeakyIntegrator())
    net.connect("input", "hidden", name="in_hid", weight=init.Normal(0.0, 0.5))
    net.connect("hidden", "hidden", name="hid_hid", weight=init.Normal(0.0, 0.3), allow_self=False)
    net.connect("hidden", "out", name="hid_out", weight=init.Normal(0.0, 0.3))
    return net


def trainable(hidden=None, loss="cross_entropy", lr=1e-2) -> snncc.runtime.model.CompiledModel:
    rule = EProp(readout="out", loss=loss)
    return snncc.compile(run_net(hidden), batch_size=2, rule=rule, optimizer=Adam(lr))


@pytest.fixture(scope="module")
def model():
    return trainable()


@pytest.fixture(scope="module")
def mse_model():
    return trainable(loss="mse")


def spikes(B=2, T=5, n=3, seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).random((B, T, n)) < 0.3).astype(np.uint8)


LABELS = np.array([0, 1])


# ------------------------------------------------------------------------ NeuronModel fields
# fmt: off
NEURON_MODEL = [
    case("name-None", lambda: lif(name=None), ME, "name None", "e.g. 'CubaLIF'"),
    case("name-empty", lambda: lif(name=""), ME, "non-empty string"),
    case("params-list", lambda: lif(params=[("tau_m", 20.0)]), ME,
         "'MyLIF', params", "dict of name -> value"),
    case("params-huge-int", lambda: lif(params={"tau_m": 10**400, "v_th": 1.0}), ME,
         "parameter 'tau_m'", "too large", "float32's range"),
    case("params-dict-value", lambda: lif(params={"tau_m": {"a": 1}, "v_th": 1.0}), ME,
         "parameter 'tau_m'", "real number"),
    case("state-array", lambda: lif(state={"v": np.zeros(3)}), ME,
         "state variable 'v'", "single number"),
    case("state-string", lambda: lif(state={"v": "0"}), ME,
         "state variable 'v'", "string", "give a number"),
    case("dynamics-None", lambda: lif(dynamics=None), ME,
         "'MyLIF', dynamics", "list of ODEs", "not None"),
    case("dynamics-arity", lambda: lif(dynamics=["dv/dt = exp(v, v)"]), EE,
         "ODE #0", "exp() takes exactly one argument, got 2"),
    case("dynamics-max-one-arg", lambda: lif(dynamics=["dv/dt = -v / tau_m + max(v)"]), EE,
         "max() takes two or more arguments"),
    case("dynamics-too-long", lambda: lif(dynamics=["dv/dt = " + " + ".join(["v"] * 5000)]), EE,
         "ODE #0", "too long or too deeply nested", "more compactly"),
    case("dynamics-huge-literal", lambda: lif(dynamics=["dv/dt = -v / tau_m + 1e40"]), EE,
         "ODE #0", "1e+40", "float32's range", "rescale"),
    case("dynamics-keyword", lambda: lif(dynamics=["dv/dt = exp(x=v)"]), EE,
         "ODE #0", "keyword arguments are not allowed"),
    case("dynamics-modulo", lambda: lif(dynamics=["dv/dt = v % 2"]), EE,
         "ODE #0", "operator Mod is not allowed"),
    case("dynamics-import", lambda: lif(dynamics=["dv/dt = __import__('os')"]), EE,
         "unknown function '__import__'", "allowed: abs"),
    case("dynamics-attribute", lambda: lif(dynamics=["dv/dt = v.__class__"]), EE,
         "'v.__class__' is not allowed"),
    case("threshold-equal", lambda: lif(threshold="v == v_th"), EE,
         "threshold", "single '>' or '>='"),
    case("threshold-number", lambda: lif(threshold=5), ME, "threshold", "like 'v > v_th'"),
    case("reset-list", lambda: lif(reset=["v"]), ME, "'MyLIF', reset", "dict of name -> value"),
    case("reset-None", lambda: lif(reset={"v": None}), EE,
         "reset of 'v'", "expected a string or sympy expression"),
    case("reset-huge-number", lambda: lif(reset={"v": 1e39}), EE,
         "reset of 'v'", "float32's range"),
    case("on_spike-undeclared", lambda: lif(on_spike={"w": "1"}), ME,
         "on_spike", "undeclared variable 'w'", "Declared state variables: v"),
    case("input-margin", lambda: lif(input={"v": "margin"}), EE,
         "input of 'v'", "'margin'", "only appear in the surrogate"),
    case("refractory-string", lambda: lif(refractory="5"), ME,
         "refractory", "got '5'", "give e.g. 2.0"),
    case("refractory-nan", lambda: lif(refractory=float("nan")), ME,
         "refractory", "finite time >= 0"),
    case("surrogate-1/0", lambda: lif(surrogate="1/0"), EE,
         "surrogate", "divides by zero", "finite expression"),
    case("surrogate-I_syn", lambda: lif(surrogate="I_syn"), EE,
         "surrogate", "'I_syn' cannot be used here"),
    case("trainable-None", lambda: lif(trainable=None), ME,
         "trainable must be a list of parameter names", "got None"),
    case("trainable-string", lambda: lif(trainable="tau_m"), ME, "trainable", "e.g. ['tau_m']"),
    case("positive-string", lambda: lif(positive="tau_m"), ME,
         "positive must be a list", "e.g. ['tau_m']"),
    case("positive-unknown", lambda: lif(positive=["tau"]), ME,
         "positive: 'tau' is not a parameter", "tau_m, v_th"),
    case("positive-violated",
         lambda: lif(positive=["tau_m"], params={"tau_m": np.array([5.0, 0.0]), "v_th": 1.0}), ME,
         "'tau_m' must be > 0", "got 0 (index 1)"),
    case("positive-built-in", lambda: neurons.ALIF(tau_a=-1.0), ME,
         "'ALIF'", "'tau_a' must be > 0", "got -1"),
    case("integration-None", lambda: lif(integration=None), ME,
         "integration", "use auto, exact, euler, midpoint, rk4, symplectic_euler"),
    case("output-parameter", lambda: lif(output="tau_m"), ME,
         "output", "'tau_m' is not a state variable"),
]
# fmt: on


@pytest.mark.parametrize("make, exc, words", NEURON_MODEL)
def test_neuron_model_fields(request, make, exc, words):
    err = check(exc, make, *words)
    if not request.node.callspec.id.startswith("name-"):  # the model's name is the culprit's
        assert "neuron model 'MyLIF'" in str(err) or "neuron model 'ALIF'" in str(err)


def test_a_parameter_beyond_float32_is_refused_where_the_kernels_would_read_inf():
    big = lif(params={"tau_m": 20.0, "v_th": 1e300})  # a float64: NeuronModel keeps it
    check(
        ME,
        lambda: snncc.generate(run_net(big), "cpu"),
        "population 'hidden' (MyLIF)",
        "v_th = 1e+300",
        "float32's range",
        "change the parameters",
    )


# ---------------------------------------------------------------------------------- Network
def _net_with(**kw) -> snncc.Network:
    return snncc.Network(**kw)


# fmt: off
NETWORK = [
    case("dt-bool", lambda: _net_with(dt=True), ME,
         "dt must be a positive finite number", "got True", "dt=1.0"),
    case("dt-beyond-float32", lambda: _net_with(dt=1e300), ME,
         "dt", "float32's range", "got 1e+300"),
    case("dt-negative", lambda: _net_with(dt=-0.5), ME, "dt must be a positive finite number"),
    case("seed-negative", lambda: _net_with(seed=-1), ME,
         "seed must be an integer >= 0", "got -1", "seed=0"),
    case("seed-string", lambda: _net_with(seed="a"), ME, "seed must be an integer >= 0", "'a'"),
    case("seed-float", lambda: _net_with(seed=1.5), ME, "seed must be an integer >= 0", "1.5"),
    case("add_input-float-size", lambda: run_net().add_input("spikes", 3.0), ME,
         "population 'spikes'", "size must be a positive integer", "3.0"),
    case("add_input-negative-size", lambda: run_net().add_input("spikes", -2), ME,
         "population 'spikes'", "positive integer"),
    case("add_input-name-int", lambda: run_net().add_input(3, 3), ME,
         "population name 3", "a string such as 'hidden'"),
    case("add_input-duplicate", lambda: run_net().add_input("input", 3), ME,
         "duplicate name 'input'", "another name"),
    case("add_population-class", lambda: run_net().add_population("extra", 3, neurons.LIF), ME,
         "population 'extra'", "model must be a NeuronModel"),
    case("add_population-keyword", lambda: run_net().add_population("float", 3, neurons.LIF()), ME,
         "'float' is a C++/CUDA keyword", "rename it"),
]
# fmt: on


@pytest.mark.parametrize("make, exc, words", NETWORK)
def test_network_and_populations(make, exc, words):
    check(exc, make, *words)


def test_dt_may_be_any_real_number_type():
    assert snncc.Network(dt=np.float32(0.5)).dt == 0.5  # np.float32 was refused before


# ---------------------------------------------------------------------------------- connect
def _connect(**kw):
    """connect on run_net(); post=(name, model) adds that population first."""
    net = run_net()
    kw.setdefault("name", "extra")
    pre, post = kw.pop("pre", "input"), kw.pop("post", "out")
    if isinstance(post, tuple):
        post = net.add_population(post[0], 2, post[1])
    return net.connect(pre, post, **kw)


# fmt: off
CONNECT = [
    case("pre-int", lambda: _connect(pre=3), ME,
         "unknown population 3", "add it to this network first", "input, hidden, out"),
    case("pre-of-another-network", lambda: _connect(pre=run_net().populations["hidden"]), ME,
         "unknown population 'hidden'", "add it to this network first"),
    case("name-dash", lambda: _connect(name="in-out"), ME,
         "projection name 'in-out' is not allowed", "ASCII letters"),
    case("post-takes-no-input",
         lambda: _connect(post=("silent", snncc.NeuronModel("Silent", state={"v": 0.0}))), ME,
         "projection 'extra'",
         "neuron model 'Silent' of 'silent' takes no synaptic input", "{'v': 'I_syn'}"),
    case("weight-3d", lambda: _connect(weight=np.zeros((3, 2, 1))), SE,
         "projection 'extra'", "(3, 2, 1)", "(n_pre, n_post) = (3, 2)"),
    case("weight-string", lambda: _connect(weight="0.5"), ME,
         "projection 'extra'", "'0.5'", "a number or a NumPy array"),
    case("weight-object", lambda: _connect(weight=np.array([[None] * 2] * 3)), SE,
         "projection 'extra'", "dtype object", "give real numbers"),
    case("weight-nan-array", lambda: _connect(weight=np.full((3, 2), np.nan)), ME,
         "projection 'extra'", "NaN or inf", "give finite weights"),
    case("weight-huge-int", lambda: _connect(weight=10**40), ME,
         "projection 'extra'", "too large for float32", "scale it down"),
    case("init-normal-negative-sd", lambda: _connect(weight=init.Normal(0.0, -1.0)), ME,
         "Normal(mean=0.0, sd=-1.0)", "sd must be a finite number >= 0", "sd=0.1"),
    case("init-uniform-reversed", lambda: _connect(weight=init.Uniform(1.0, -1.0)), ME,
         "Uniform(low=1.0, high=-1.0)", "low must be <= high", "swap"),
    case("init-constant-huge", lambda: _connect(weight=init.Constant(1e40)), ME,
         "Constant(value=1e+40)", "float32's range"),
    case("init-constant-string", lambda: _connect(weight=init.Constant("a")), ME,
         "Constant(value='a')", "must be a finite number"),
    case("p-string", lambda: _connect(p="0.5"), ME,
         "projection 'extra'", "p='0.5' is not in [0, 1]", "p=0.1"),
    case("p-bool", lambda: _connect(p=True), ME, "p=True is not in [0, 1]"),
    case("p-negative", lambda: _connect(p=-0.1), ME, "p=-0.1 is not in [0, 1]"),
    case("p-and-indices", lambda: _connect(p=0.5, indices=([0], [0])), ME,
         "give either p or indices, not both"),
    case("indices-float", lambda: _connect(indices=([0.5], [0])), SE,
         "projection 'extra'", "pre indices have dtype float64", "integer arrays"),
    case("indices-not-a-pair", lambda: _connect(indices=[0, 1, 2]), SE,
         "indices must be a pair (pre, post)"),
    case("indices-unequal", lambda: _connect(indices=([0, 1], [0])), SE,
         "shapes (2,) and (1,)", "equal length"),
    case("indices-bool", lambda: _connect(indices=([True], [False])), snncc.ShapeError,
         "dtype bool"),
    case("indices-out-of-range", lambda: _connect(indices=([0, 1], [0, 2])), SE,
         "post index 2 is out of range", "2 neurons (indices 0 to 1)"),
    case("indices-duplicate", lambda: _connect(indices=([0, 0], [1, 1])), SE,
         "1 synapse(s) twice", "remove the duplicates"),
    case("allow_self-string", lambda: _connect(allow_self="no"), ME,
         "projection 'extra'", "allow_self must be True or False", "'no'"),
    case("allow_self-between-two", lambda: _connect(allow_self=False), ME,
         "'input' -> 'out' has no self-connections", "drop it"),
    case("trainable-None", lambda: _connect(trainable=None), ME,
         "projection 'extra'", "trainable must be True or False"),
]
# fmt: on


@pytest.mark.parametrize("make, exc, words", CONNECT)
def test_connect(make, exc, words):
    check(exc, make, *words)


def test_empty_indices_are_a_projection_without_synapses():
    q = _connect(indices=([], []))
    assert q.sparse and q.nnz == 0


# ---------------------------------------------------------------------------------- compile
def _compile(**kw):
    return snncc.compile(run_net(), batch_size=2, **kw)


# fmt: off
COMPILE = [
    case("backend-None", lambda: _compile(backend=None), ME,
         "unknown backend 'None'", "choose one of cpu, cuda"),
    case("batch_size-float", lambda: snncc.compile(run_net(), batch_size=2.5), ME,
         "batch_size must be a positive integer, got 2.5"),
    case("device-negative", lambda: _compile(device=-1), ME,
         "devices: -1 is not a device index", "integers >= 0"),
    case("device-string", lambda: _compile(device="0"), snncc.ModelError,
         "'0' is not a device index"),
    case("devices-int", lambda: _compile(devices=2), ME,
         "devices must be a list", "such as [0, 1]", "got 2"),
    case("devices-string", lambda: _compile(devices="0,1"), ME, "devices must be a list", "'0,1'"),
    case("devices-twice", lambda: _compile(devices=[0, 0]), ME,
         "devices [0, 0] name a device twice", "each device once"),
    case("devices-cpu-gap", lambda: _compile(devices=[0, 2]), ME,
         "devices [0, 2]", "numbered from 0", "devices=[0, 1]"),
    case("devices-empty", lambda: _compile(devices=[]), ME, "devices is empty", "devices=[0]"),
    case("device-and-devices", lambda: _compile(device=0, devices=[0, 1]), ME,
         "give device=0 or devices=[0, 1], not both"),
    case("rule-string", lambda: _compile(rule="eprop"), ME,
         "rule must be a learning rule", "EProp(readout='output')", "'eprop'"),
    case("rule-class", lambda: _compile(rule=EProp), snncc.ModelError,
         "rule must be a learning rule"),
    case("optimizer-string", lambda: _compile(rule=EProp(readout="out"), optimizer="adam"), ME,
         "optimizer must be snncc.optim.Adam(lr) or snncc.optim.SGD(lr)", "'adam'"),
    case("optimizer-without-rule", lambda: _compile(optimizer=Adam()), ME,
         "an optimizer needs a learning rule", "rule=snncc.rules.EProp"),
    case("readout-spiking", lambda: _compile(rule=EProp(readout="hidden")), ME,
         "readout 'hidden' must be non-spiking", "LeakyIntegrator"),
    case("no-surrogate",
         lambda: snncc.compile(
            run_net(lif(surrogate=None)), batch_size=2, rule=EProp(readout="out")
        ),
         ME, "population 'hidden' (MyLIF)", "needs a surrogate", "pass surrogate="),
    case("not-a-network", lambda: snncc.compile("net"), ME,
         "compile needs a snncc.Network, got str"),
]
# fmt: on


@pytest.mark.parametrize("make, exc, words", COMPILE)
def test_compile(make, exc, words):
    check(exc, make, *words)


# ----------------------------------------------------------------------- EProp and Adam/SGD
# fmt: off
OPTIONS = [
    case("c_reg-string", lambda: EProp(c_reg="0.1"), ME,
         "EProp: c_reg must be a finite number >= 0", "'0.1'"),
    case("c_reg-negative", lambda: EProp(c_reg=-1.0), ME,
         "EProp: c_reg must be a finite number >= 0"),
    case("f_target-nan", lambda: EProp(f_target=float("nan")), ME, "EProp: f_target (Hz)", "nan"),
    case("tau_reg-zero", lambda: EProp(tau_reg=0.0), ME,
         "EProp: tau_reg (ms) must be a positive finite number"),
    case("error_start-float", lambda: EProp(error_start=1.5), ME,
         "EProp: error_start must be an integer >= 0", "1.5"),
    case("error_start-string", lambda: EProp(error_start="1"), ME,
         "EProp: error_start must be an integer >= 0"),
    case("weight_clamp-negative", lambda: EProp(weight_clamp=-1.0), ME,
         "EProp: weight_clamp", "a bound c > 0"),
    case("weight_clamp-reversed", lambda: EProp(weight_clamp=(1.0, -1.0)), ME,
         "weight_clamp=(1.0, -1.0) has low >= high", "(low, high) with low < high"),
    case("weight_clamp-three", lambda: EProp(weight_clamp=(1.0, 2.0, 3.0)), ME,
         "is not a bound or a pair"),
    case("weight_clamp-string", lambda: EProp(weight_clamp="1"), ME,
         "weight_clamp='1' is not a bound or a pair"),
    case("train_bias-string", lambda: EProp(train_bias="no"), ME,
         "EProp: train_bias must be True or False"),
    case("seed-negative", lambda: EProp(seed=-1), ME, "EProp: seed must be an integer >= 0"),
    case("readout-int", lambda: EProp(readout=3), ME,
         "EProp: readout must be the name of the readout population"),
    case("feedback", lambda: EProp(feedback="sym"), ME,
         "EProp: feedback='sym' is not one of symmetric, random"),
    case("loss", lambda: EProp(loss="nll"), ME, "loss='nll' is not one of cross_entropy, mse"),
    case("filter_decay", lambda: EProp(filter_decay="kapa"), ME,
         "EProp filter_decay", "Did you mean 'kappa'"),
    case("adam-lr-inf", lambda: Adam(float("inf")), ME,
         "Adam: the learning rate lr must be a positive finite number", "inf"),
    case("adam-lr-string", lambda: Adam("1e-3"), ME, "Adam: the learning rate lr", "'1e-3'"),
    case("sgd-lr-beyond-float32", lambda: SGD(1e39), ME,
         "SGD: the learning rate lr must be within float32's range"),
    case("sgd-lr-bool", lambda: SGD(True), ME,
         "SGD: the learning rate lr must be a positive finite number", "True"),
    case("adam-beta1", lambda: Adam(beta1=1.0), ME,
         "Adam: beta1 must be in [0, 1), got 1.0", "e.g. 0.9"),
    case("adam-beta2-nan", lambda: Adam(beta2=float("nan")), ME,
         "Adam: beta2 must be a finite number >= 0"),
    case("adam-eps-zero", lambda: Adam(eps=0.0), ME,
         "Adam: eps must be a positive finite number", "eps=1e-8"),
    case("adam-decay-float", lambda: Adam(decay_steps=1.5), ME,
         "Adam: decay_steps must be an integer >= 0", "1.5"),
    case("sgd-lr_end-nan", lambda: SGD(1e-3, lr_end=float("nan")), ME,
         "SGD: lr_end must be a finite number >= 0"),
]
# fmt: on


@pytest.mark.parametrize("make, exc, words", OPTIONS)
def test_rule_and_optimiser_options(make, exc, words):
    check(exc, make, *words)


# ---------------------------------------------------------------------------------------- run
def _events(*times):
    return [(np.asarray(t, np.float64), np.zeros(len(t), np.int64)) for t in times]


# fmt: off
RUN = [
    case("empty-batch", lambda m: m.run(np.zeros((0, 5, 3), np.uint8)), SE,
         "input 'input'", "(0, 5, 3) has no examples", "at least one example"),
    case("T=0", lambda m: m.run(np.zeros((2, 0, 3), np.uint8)), SE,
         "input 'input'", "has no time steps"),
    case("empty-list", lambda m: m.run([]), SE, "the batch is empty", "at least one example"),
    case("huge-event-time", lambda m: m.run(_events([1.0], [1e9])), SE,
         "input 'input', example 1", "1e+09 ms", "times are in ms", "n_steps="),
    case("event-time-string", lambda m: m.run([(np.array(["a"]), np.array([0]))]), SE,
         "input 'input', example 0", "times must be numbers (ms)"),
    case("event-time-nan", lambda m: m.run([(np.array([np.nan]), np.array([0]))]), SE,
         "example 0: times must be finite and >= 0"),
    case("event-unit-float", lambda m: m.run([(np.array([1.0]), np.array([0.5]))]), SE,
         "units must be integers in [0, 3)"),
    case("event-unequal", lambda m: m.run([(np.ones(2), np.zeros(1, int))]), SE,
         "example 0: times and units must be equal 1-D"),
    case("n_steps-zero", lambda m: m.run(_events([1.0]), n_steps=0), SE,
         "n_steps must be a positive integer, got 0"),
    case("n_steps-float", lambda m: m.run(_events([1.0]), n_steps=2.5), SE,
         "n_steps must be a positive integer, got 2.5"),
    case("n_steps-with-dense", lambda m: m.run(spikes(T=5), n_steps=3), SE,
         "n_steps=3 applies to event lists", "slice it (x[:, :3])"),
    case("record-string", lambda m: m.run(spikes(), record="hidden"), ME,
         "record must be a list of keys", "['hidden', 'output.v']", "got 'hidden'"),
    case("record-int", lambda m: m.run(spikes(), record=[3]), ME,
         "record: 3 is not a key", "'hidden' or 'output.v'"),
    case("record-None", lambda m: m.run(spikes(), record=None), ME,
         "record must be a list of keys", "got None"),
    case("record-dot", lambda m: m.run(spikes(), record=["hidden."]), ME,
         "'hidden.' names no state variable", "give 'hidden' for its spikes", "'hidden.v'"),
    case("record-input-state", lambda m: m.run(spikes(), record=["input.v"]), ME,
         "'v' is not a state variable of 'input'"),
]
# fmt: on


@pytest.mark.parametrize("call, exc, words", RUN)
def test_run(model, call, exc, words):
    check(exc, lambda: call(model), *words)


# ------------------------------------------------------------------- gradients and train_batch
# fmt: off
LABEL_CASES = [
    case("labels-2d", lambda m: m.gradients(spikes(), np.array([[0], [1]])), SE,
         "labels: expected 2 integer class labels", "shape (2, 1)"),
    case("labels-too-many", lambda m: m.gradients(spikes(), np.array([0, 1, 1])), SE,
         "expected 2 integer class labels", "shape (3,)"),
    case("labels-bool", lambda m: m.gradients(spikes(), np.array([True, False])), SE,
         "integer class labels", "dtype bool"),
    case("labels-string", lambda m: m.gradients(spikes(), np.array(["0", "1"])), SE,
         "integer class labels", "dtype <U1"),
    case("labels-None", lambda m: m.gradients(spikes(), None), SE,
         "integer class labels", "dtype object"),
    case("labels-huge", lambda m: m.gradients(spikes(), np.array([2**63, 0], np.uint64)), SE,
         "9223372036854775808 is out of range for readout 'out'", "labels must be in [0, 2)"),
    case("train-label-range", lambda m: m.train_batch(spikes(), np.array([0, 5])), SE,
         "5 is out of range for readout 'out' with 2 classes", "[0, 2)"),
    case("train-input-shape", lambda m: m.train_batch(spikes(n=4), LABELS), SE,
         "input 'input'", "(2, 5, 4) is not (batch, time, 3)"),
]
# fmt: on


@pytest.mark.parametrize("call, exc, words", LABEL_CASES)
def test_labels(model, call, exc, words):
    before = {k: model.weights[k] for k in model.weights}
    step = model.step
    check(exc, lambda: call(model), *words)
    assert model.step == step  # nothing changed
    for k, w in before.items():
        np.testing.assert_array_equal(model.weights[k], w)


@pytest.mark.parametrize(
    "targets, words",
    [
        (np.full((2, 5, 2), np.nan), ["targets contain NaN or inf"]),
        (np.zeros((2, 5, 3)), ["targets: expected a (batch, time, 2) = (2, 5, 2) array", "mse"]),
        (np.full((2, 5, 2), "a"), ["targets: expected a (batch, time, 2)", "mse"]),
    ],
    ids=["nan", "shape", "strings"],
)
def test_mse_targets(mse_model, targets, words):
    check(snncc.ShapeError, lambda: mse_model.gradients(spikes(), targets), *words)


# ---------------------------------------------------------------------------------------- fit
X4, Y4 = spikes(B=4, seed=1), np.array([0, 1, 0, 1])

# fmt: off
FIT = [
    case("data-int", lambda m: m.fit(3, progress=False), SE,
         "fit: train: cannot read int as data", "a SpikeDataset", "a pair (x, y)"),
    case("data-lengths", lambda m: m.fit((X4, Y4[:3]), progress=False), SE,
         "fit: train: 4 examples but 3 labels", "one label per example"),
    case("data-empty", lambda m: m.fit((X4[:0], Y4[:0]), progress=False), SE,
         "fit: train has no examples"),
    case("data-event-list", lambda m: m.fit((_events([1.0], [2.0]), LABELS), progress=False), SE,
         "fit shuffles the examples by index", "bin them first"),
    case("data-labels", lambda m: m.fit((X4, np.array([0, 1, 0, 7])), progress=False), SE,
         "7 is out of range for readout 'out'"),
    case("epochs-negative", lambda m: m.fit((X4, Y4), epochs=-1, progress=False), ME,
         "fit: epochs must be an integer >= 0", "got -1"),
    case("epochs-string", lambda m: m.fit((X4, Y4), epochs="2", progress=False), ME,
         "fit: epochs must be an integer >= 0", "'2'"),
    case("epochs-float", lambda m: m.fit((X4, Y4), epochs=1.5, progress=False), ME,
         "fit: epochs", "1.5"),
    case("batch_size-zero", lambda m: m.fit((X4, Y4), batch_size=0, progress=False), ME,
         "fit: batch_size must be an integer >= 1", "got 0"),
    case("seed-negative", lambda m: m.fit((X4, Y4), seed=-1, progress=False), ME,
         "fit: seed must be an integer >= 0"),
    case("on_epoch", lambda m: m.fit((X4, Y4), on_epoch=3, progress=False), ME,
         "fit: on_epoch must be a function", "got 3"),
    case("checkpoint-int", lambda m: m.fit((X4, Y4), checkpoint=3, progress=False), CE,
         "checkpoint path must be a file name", "'run/checkpoint.snncc'", "got 3"),
    case("validation", lambda m: m.fit((X4, Y4), validation=(X4, Y4[:2]), progress=False), SE,
         "fit: validation: 4 examples but 2 labels"),
    case("evaluate-empty", lambda m: m.evaluate((X4[:0], Y4[:0])), SE,
         "evaluate: data has no examples"),
    case("evaluate-int", lambda m: m.evaluate(3), SE, "evaluate: data: cannot read int as data"),
    case("evaluate-batch_size", lambda m: m.evaluate((X4, Y4), batch_size=0), ME,
         "evaluate: batch_size must be an integer >= 1"),
]
# fmt: on


@pytest.mark.parametrize("call, exc, words", FIT)
def test_fit_and_evaluate(model, call, exc, words):
    step = model.step
    check(exc, lambda: call(model), *words)
    assert model.step == step  # refused before any training step


def test_fit_refuses_a_directory_as_checkpoint_before_training(model, tmp_path):
    step = model.step
    check(
        CE,
        lambda: model.fit((X4, Y4), checkpoint=str(tmp_path), progress=False),
        f"{tmp_path} is a directory",
        f"e.g. {tmp_path / 'checkpoint.snncc'}",
    )
    assert model.step == step and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------- model.weights[...] / params[...]
def _set_weight(m, name, value):
    m.weights[name] = value


def _set_param(m, key, value):
    m.params[key] = value


# fmt: off
ASSIGN = [
    case("weights-unknown", lambda m: _set_weight(m, "in_out", np.zeros((3, 2))), UE,
         "no projection 'in_out'", "in_hid, hid_hid, hid_out"),
    case("weights-string", lambda m: _set_weight(m, "in_hid", "a"), SE,
         "projection 'in_hid'", "shape ()", "(n_pre, n_post) = (3, 4)"),
    case("weights-nan", lambda m: _set_weight(m, "in_hid", np.full((3, 4), np.nan)), SE,
         "projection 'in_hid'", "is nan", "must be finite"),
    case("weights-beyond-float32", lambda m: _set_weight(m, "in_hid", np.full((3, 4), 1e40)), ME,
         "projection 'in_hid'", "too large for float32", "scale the weights down"),
    case("weights-object", lambda m: _set_weight(m, "in_hid", np.array([[None] * 4] * 3)), SE,
         "projection 'in_hid'", "dtype object", "give real numbers"),
    case("weights-self-connection", lambda m: _set_weight(m, "hid_hid", np.ones((4, 4))), SE,
         "projection 'hid_hid'", "weight [0, 0] = 1.0 is where no synapse exists", "set it to 0"),
    case("params-unknown", lambda m: _set_param(m, "hidden.tau", 3.0), UE,
         "no neuron parameter 'hidden.tau'", "'<population>.<name>'", "hidden.tau_m"),
    case("params-no-population", lambda m: _set_param(m, "tau_m", 3.0), UE,
         "no neuron parameter 'tau_m'", "hidden.tau_m"),
    case("params-input-population", lambda m: _set_param(m, "input.x", 3.0), UE,
         "no neuron parameter 'input.x'"),
    case("params-zero-time-constant", lambda m: _set_param(m, "hidden.tau_m", 0.0), ME,
         "'ALIF'", "'tau_m' must be > 0", "got 0"),
    case("params-nan", lambda m: _set_param(m, "hidden.tau_m", np.nan), SE,
         "parameter 'hidden.tau_m'", "must be finite"),
    case("params-string", lambda m: _set_param(m, "hidden.tau_m", "20"), SE,
         "parameter 'hidden.tau_m'", "real number or an array of shape (4,)", "<U2"),
    case("params-bool", lambda m: _set_param(m, "hidden.tau_m", True), SE,
         "parameter 'hidden.tau_m'", "bool"),
    case("params-shape", lambda m: _set_param(m, "hidden.tau_m", np.ones(3)), SE,
         "shape (4,)", "float64 of shape (3,)"),
    case("params-per-neuron", lambda m: _set_param(m, "hidden.tau_m", np.arange(1.0, 5.0)), SE,
         "'hidden.tau_m' is one value for all neurons", "ALIF(tau_m=np.full(4, ...))",
         "compile again"),
    case("params-beyond-float32", lambda m: _set_param(m, "out.bias", 1e40), ME,
         "population 'out'", "bias = 1e+40", "float32's range"),
]
# fmt: on


@pytest.mark.parametrize("call, exc, words", ASSIGN)
def test_weight_and_parameter_assignment(model, call, exc, words):
    before = model.state_dict()
    check(exc, lambda: call(model), *words)
    after = model.state_dict()
    for group in ("weights", "params"):  # nothing was uploaded
        for k, v in before[group].items():
            np.testing.assert_array_equal(after[group][k], v, err_msg=k)


def test_unknown_names_are_still_key_errors(model):
    assert issubclass(snncc.UnknownNameError, KeyError)
    assert "in_out" not in model.weights and model.params.get("hidden.tau") is None


# ----------------------------------------------------------------------------- load_state_dict
def _changed(state, change):
    state = copy.deepcopy(state)
    change(state)
    return state


# fmt: off
STATES = [
    case("another-model", lambda s, other: other, ME,
         "belongs to another network", "tau_a: 50.0 vs 2000.0", "strict=False"),
    case("not-a-dict", lambda s, o: [1], SE, "state: expected state_dict()'s dict, got list"),
    case("missing-group", lambda s, o: _changed(s, lambda d: d.pop("optimizer")), SE,
         "state does not fit this model", "missing ['optimizer']", "saved from another model"),
    case("missing-weight", lambda s, o: _changed(s, lambda d: d["weights"].pop("in_hid")), SE,
         "state['weights']", "missing ['in_hid']"),
    case("extra-key",
         lambda s, o: _changed(s, lambda d: d["params"].__setitem__("hidden.tau", np.ones(4))), SE,
         "state['params']", "unknown ['hidden.tau']"),
    case("transposed-weight",
         lambda s, o: _changed(s, lambda d: d["weights"].__setitem__("in_hid", np.zeros((4, 3)))),
         SE, "state['weights']['in_hid']", "shape (3, 4)", "got float64 of shape (4, 3)"),
    case("nan-weight",
         lambda s, o: _changed(s, lambda d: d["weights"]["hid_out"].__setitem__((1, 1), np.nan)),
         SE, "state['weights']['hid_out'] contains NaN or inf", "diverged run"),
    case("inf-optimizer",
         lambda s, o: _changed(s, lambda d: d["optimizer"]["m/in_hid"].__setitem__(0, np.inf)), SE,
         "state['optimizer']['m/in_hid'] contains NaN or inf"),
    case("per-neuron-into-scalar",
         lambda s, o: _changed(
            s, lambda d: d["params"].__setitem__("hidden.tau_m", np.arange(1.0, 5.0))
        ),
         SE, "state['params']['hidden.tau_m'] holds different values per neuron", "compile again"),
    case("zero-time-constant",
         lambda s, o: _changed(s, lambda d: d["params"].__setitem__("out.tau", np.zeros(2))), ME,
         "'tau' must be > 0"),
    case("negative-step", lambda s, o: _changed(s, lambda d: d.__setitem__("step", -1)), SE,
         "state['step'] must be an integer >= 0, got -1"),
]
# fmt: on


@pytest.fixture(scope="module")
def other_state():
    other = run_net(neurons.ALIF())  # tau_a 2000 instead of 50: another network
    rule = EProp(readout="out")
    return snncc.compile(other, batch_size=2, rule=rule, optimizer=Adam()).state_dict()


@pytest.mark.parametrize("make, exc, words", STATES)
def test_load_state_dict(model, other_state, make, exc, words):
    before = model.state_dict()
    check(exc, lambda: model.load_state_dict(make(before, other_state)), *words)
    after = model.state_dict()
    for group in ("weights", "params", "optimizer"):  # checked before anything was uploaded
        for k, v in before[group].items():
            np.testing.assert_array_equal(after[group][k], v, err_msg=k)


# --------------------------------------------------------------------------------- snncc.load
@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "good.snncc"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    return path, members


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=array.dtype == object)
    return buf.getvalue()


def _meta(members: dict, change) -> dict:
    meta = json.loads(members["meta.json"])
    change(meta)
    return {**members, "meta.json": json.dumps(meta).encode()}


W = "state/weights/in_hid.npy"

# fmt: off
FILES = [
    case("missing", lambda d, m: d / "absent.snncc", CE,
         "no checkpoint at", "absent.snncc", "does not exist"),
    case("directory", lambda d, m: d, CE, "is a directory, not a checkpoint file", "give the file"),
    case("not-a-zip", lambda d, m: _write(d / "t.snncc", b"hello"), CE,
         "t.snncc is not a usable snncc checkpoint", "not a zip archive"),
    case("empty-file", lambda d, m: _write(d / "e.snncc", b""), CE, "not a zip archive"),
    case("old-pickle", lambda d, m: _write(d / "p.snncc", pickle.dumps({"weights": 1})), CE,
         "a Python pickle", "never opened", "can run code"),
    case("truncated", lambda d, m: _write(d / "h.snncc", (d / "good.snncc").read_bytes()[:900]), CE,
         "not a usable snncc checkpoint"),
    case("no-meta",
         lambda d, m: _zip(d / "nm.snncc", {k: v for k, v in m.items() if k != "meta.json"}), CE,
         "it has no meta.json"),
    case("meta-not-json", lambda d, m: _zip(d / "bj.snncc", {**m, "meta.json": b"{nope"}), CE,
         "it is damaged"),
    case("meta-not-ours", lambda d, m: _zip(d / "fm.snncc", {**m, "meta.json": b"[1, 2]"}), CE,
         "does not say format 'snncc-checkpoint'"),
    case("version",
         lambda d, m: _zip(d / "v.snncc", _meta(m, lambda x: x.__setitem__("version", 1))), CE,
         "it is version 1; this snncc reads version 2"),
    case("member-shape",
         lambda d, m: _zip(d / "sh.snncc", {**m, W: _npy(np.zeros((4, 3), np.float32))}), CE, W,
         "its header does not match meta.json"),
    case("member-dtype",
         lambda d, m: _zip(d / "dt.snncc", {**m, W: _npy(np.zeros((3, 4), np.float64))}), CE, W,
         "its header does not match meta.json"),
    case("member-object",
         lambda d, m: _zip(d / "ob.snncc", {**m, W: _npy(np.array([[None] * 4] * 3))}), CE, W,
         "does not match"),
    case("member-object-declared",
         lambda d, m: _zip(
            d / "od.snncc",
            _meta(
                {**m, W: _npy(np.array([[None] * 4] * 3))},
                lambda x: x["arrays"].__setitem__(W[:-4], {"dtype": "|O", "shape": [3, 4]}),
            ),
        ),
         CE, W, "is not allowed"),
    case("member-bad-header",
         lambda d, m: _zip(d / "hd.snncc", {**m, W: b"\x93NUMPY\x01\x00garbage"}), CE,
         "it is damaged"),
    case("member-truncated", lambda d, m: _zip(d / "tr.snncc", {**m, W: m[W][:-4]}), CE,
         W, "holds 44 bytes, not 48"),
    case("extra-member", lambda d, m: _zip(d / "ex.snncc", {**m, "run.py": b"print('hi')"}), CE,
         "member 'run.py' is missing or not described in meta.json"),
    case("missing-member",
         lambda d, m: _zip(d / "mi.snncc", {k: v for k, v in m.items() if k != W}), CE,
         f"member '{W}' is missing"),
    case("tampered-spec",
         lambda d, m: _zip(d / "ts.snncc", _meta(m, lambda x: x["network"].__setitem__("dt", 0.5))),
         CE, "its network spec does not match its checksum"),
    case("tampered-equation",
         lambda d, m: _zip(
            d / "te.snncc",
            _meta(
                m,
                lambda x: x["network"]["populations"][1]["model"].__setitem__(
                    "dynamics", ["dv/dt = __import__('os')"]
                ),
            ),
        ),
         CE, "network spec is invalid", "unknown function '__import__'"),
    case("tampered-optimizer",
         lambda d, m: _zip(d / "o.snncc", _meta(m, lambda x: x["optimizer"].__setitem__("lr", -1))),
         CE, "optimizer: invalid Adam options", "learning rate"),
    case("tampered-rule",
         lambda d, m: _zip(d / "tu.snncc", _meta(m, lambda x: x["rule"].__setitem__("c_reg", "x"))),
         CE, "rule: invalid EProp options", "c_reg"),
    case("tampered-batch-size",
         lambda d, m: _zip(d / "tb.snncc", _meta(m, lambda x: x.__setitem__("batch_size", "x"))),
         CE, "meta.json has no valid batch_size ('x'"),
    case("tampered-backend",
         lambda d, m: _zip(d / "tk.snncc", _meta(m, lambda x: x.__setitem__("backend", "tpu"))), CE,
         "meta.json has no valid backend ('tpu'"),
    case("tampered-progress",
         lambda d, m: _zip(
            d / "tp.snncc", _meta(m, lambda x: x.__setitem__("progress", {"epoch": "x"}))
        ),
         CE, "no valid training progress"),
    case("tampered-step",
         lambda d, m: _zip(d / "tt.snncc", _meta(m, lambda x: x.__setitem__("step", -3))), CE,
         "state['step'] must be an integer >= 0, got -3"),
    case("nan-member",
         lambda d, m: _zip(d / "na.snncc", {**m, W: _npy(np.full((3, 4), np.nan, np.float32))}), CE,
         "state['weights']['in_hid'] contains NaN or inf"),
]
# fmt: on


@pytest.mark.parametrize("make, exc, words", FILES)
def test_snncc_load(saved, make, exc, words):
    path, members = saved
    bad = make(path.parent, members)
    err = check(exc, lambda: snncc.load(bad), *words)
    assert str(bad.name) in str(err)  # the file is named


class _Touch:
    """Unpickling this creates ``marker``: proof that a file was (or was not) unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_old_pickles_are_never_unpickled(tmp_path):
    marker = tmp_path / "code-ran"
    ckpt = _write(tmp_path / "old.snncc", pickle.dumps(_Touch(marker)))
    pickle.loads(pickle.dumps(_Touch(tmp_path / "probe")))  # the trick works
    assert (tmp_path / "probe").exists()
    check(CE, lambda: snncc.load(ckpt), "a Python pickle", "never opened")
    data = tmp_path / "data.npz"
    y = np.zeros(1, np.int64)
    np.savez(data, x=np.array([_Touch(marker)]), y=y, n_classes=1, name="evil", dt=1.0)
    check(DE, lambda: D.SpikeDataset.load(data), "pickled Python objects")
    assert not marker.exists()


def test_snncc_load_arguments(saved):
    path, _ = saved
    check(snncc.CheckpointError, lambda: snncc.load(None), "needs the path of a checkpoint file")
    check(snncc.ModelError, lambda: snncc.load(path, batch_size=0), "batch_size must be a positive")
    check(snncc.ModelError, lambda: snncc.load(path, backend="tpu"), "unknown backend 'tpu'")
    assert snncc.load(path).batch_size == 2  # and the file itself is fine


def test_save_refuses_paths_it_cannot_write(model, tmp_path):
    check(snncc.CheckpointError, lambda: model.save(tmp_path), "is a directory", "give a file name")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    check(
        CE,
        lambda: model.save(blocker / "c.snncc"),
        "cannot write the checkpoint",
        "not a writable directory",
    )
    assert blocker.read_text() == "x"


# -------------------------------------------------------------------------------- data loaders
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network access (any attempt fails the test) and an empty private cache."""
    import socket
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SNNCC_CACHE", str(cache))
    return cache


def _h5(path: Path, **datasets) -> Path:
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f.create_dataset(name, data=data)
    return path


# fmt: off
DATA = [
    case("unknown-dataset", lambda d: D.load("cifar"), DE,
         "unknown dataset 'cifar'", "digits, shd, ssc, smnist"),
    case("dataset-int", lambda d: D.load(3), DE, "dataset name 3 must be a string", "digits, shd"),
    case("shd-split", lambda d: D.load("shd", d, split="valid"), DE,
         "SHD split must be one of ['train', 'test']", "SpikeDataset.split()"),
    case("ssc-split", lambda d: D.load("ssc", d, split="validation"), DE,
         "SSC split must be one of ['train', 'valid', 'test']"),
    case("smnist-split", lambda d: D.load("smnist", d, split="val"), DE,
         "SMNIST split must be one of ['train', 'test']"),
    case("digits-split", lambda d: D.load("digits", split="val"), DE,
         "digits split must be 'train' or 'test'"),
    case("shd-dt", lambda d: D.load("shd", d, dt=0.0), DE,
         "SHD: dt must be a bin width > 0 in ms", "dt=1.0"),
    case("ssc-limit", lambda d: D.load("ssc", d, limit=-1), DE,
         "SSC: limit must be None or an integer >= 0"),
    case("smnist-n_steps", lambda d: D.load("smnist", d, n_steps=0), DE,
         "SMNIST: n_steps must be None or an integer >= 1"),
    case("shd-missing-file", lambda d: D.load("shd", d, split="test"), NF,
         "shd_test.h5", "https://zenkelab.org/datasets/", "--data-dir", "never downloads"),
    case("smnist-missing-files", lambda d: D.load("smnist", d), NF,
         "train-images-idx3-ubyte", "dataset-fashion-mnist", "never downloads"),
    case("missing-directory", lambda d: D.load("shd", d / "nowhere"), NF,
         "does not exist", "--data-dir"),
    case("h5-without-spikes",
         lambda d: D.load("shd", _h5(d / "shd_train.h5", foo=np.zeros(3)).parent, cache=False), DE,
         "shd_train.h5 is not a readable SHD file", "'spikes/times'", "Download it again"),
    case("h5-not-hdf5",
         lambda d: D.load("ssc", _write(d / "ssc_train.h5", b"not hdf5").parent, cache=False), DE,
         "ssc_train.h5 is not a readable SSC file"),
    case("dataset-fractional-spikes",
         lambda d: D.SpikeDataset(np.full((2, 3, 4), 0.5), np.array([0, 1])), DE,
         "x must hold 0/1 spikes, found", "0.5", "bin the data"),
    case("dataset-count-spikes",
         lambda d: D.SpikeDataset(np.full((2, 3, 4), 2, np.uint8), np.array([0, 1])), DE,
         "x must hold 0/1 spikes", "2"),
    case("dataset-float-labels",
         lambda d: D.SpikeDataset(np.zeros((2, 3, 4)), np.array([0.5, 1.0])), DE,
         "labels y must be integers", "float64"),
    case("dataset-strings", lambda d: D.SpikeDataset(np.full((2, 3, 4), "a"), np.array([0, 1])), DE,
         "x has dtype <U1", "0/1 spikes"),
    case("dataset-file-not-npz",
         lambda d: D.SpikeDataset.load(_write(d / "ds.npz", pickle.dumps([1]))), DE,
         "ds.npz is not a dataset written by SpikeDataset.save"),
    case("bin-nan", lambda d: D.bin_events([np.nan], [0], 3, 1.0), DE,
         "event time nan is not finite"),
    case("bin-huge-time", lambda d: D.bin_events([1e12], [0], 3, 1.0), DE,
         "times are in ms", "n_steps="),
    case("bin-string-time", lambda d: D.bin_events(["a"], [0], 3, 1.0), DE,
         "event times must be numbers (ms)"),
    case("bin-float-unit", lambda d: D.bin_events([1.0], [0.5], 3, 1.0), DE,
         "unit indices must be integers", "float64"),
]
# fmt: on


@pytest.mark.parametrize("call, exc, words", DATA)
def test_data_loaders(offline, tmp_path, call, exc, words):
    data = tmp_path / "data"
    data.mkdir()
    check(exc, lambda: call(data), *words)
    assert not offline.exists() or not any(offline.rglob("*.npz"))  # nothing was converted


def test_a_pickled_dataset_file_is_refused_without_advice_to_load_it(tmp_path):
    evil = tmp_path / "evil.npz"
    y = np.zeros(1, np.int64)
    np.savez(evil, x=np.array([object()]), y=y, n_classes=1, name="evil", dt=1.0)
    err = check(D.DatasetError, lambda: D.SpikeDataset.load(evil), "pickled Python objects")
    assert "allow_pickle" not in str(err)  # numpy's advice to load it anyway is not passed on


# ------------------------------------------------------------------------- snncc train flags
TINY = ["--neurons", "8", "--no-progress", "--validation", "0"]

FLAGS = [
    ("--neurons", "0", "expected a positive integer, got 0"),
    ("--neurons", "-3", "expected a positive integer, got -3"),
    ("--neurons", "abc", "expected a positive integer, got 'abc'"),
    ("--epochs", "-1", "expected an integer >= 0, got -1"),
    ("--epochs", "x", "expected an integer >= 0, got 'x'"),
    ("--batch-size", "0", "expected a positive integer, got 0"),
    ("--batch-size", "2.5", "expected a positive integer, got '2.5'"),
    ("--lr", "0", "expected a positive finite number, got 0"),
    ("--lr", "-1", "expected a positive finite number, got -1"),
    ("--lr", "nan", "expected a positive finite number, got nan"),
    ("--lr", "x", "expected a positive number, got 'x'"),
    ("--validation", "1", "expected a fraction in [0, 1), got 1"),
    ("--validation", "x", "expected a fraction in [0, 1), got 'x'"),
    ("--seed", "-1", "expected an integer >= 0, got -1"),
    ("--devices", "-1,99", "expected comma-separated distinct device numbers >= 0, such as 0,1"),
    ("--devices", "0,0", "expected comma-separated distinct device numbers"),
    ("--devices", "a", "expected comma-separated distinct device numbers"),
    ("--dataset", "cifar", "invalid choice: 'cifar'"),
    ("--model", "snn", "invalid choice: 'snn'"),
    ("--backend", "tpu", "invalid choice: 'tpu'"),
    ("--train-subset", "0", "expected a positive integer, got 0"),
    ("--train-subset", "all", "expected a positive integer, got 'all'"),
    ("--pixel-steps", "3", "invalid choice: 3"),
    ("--tau-a", "0", "expected a positive finite number, got 0"),
    ("--refractory", "-1", "expected a finite number >= 0, got -1"),
    ("--refractory", "inf", "expected a finite number >= 0, got inf"),
]


@pytest.mark.parametrize("flag, value, words", FLAGS, ids=[f"{f}={v}" for f, v, _ in FLAGS])
def test_train_flags(tmp_path, capsys, flag, value, words):
    with pytest.raises(SystemExit) as exit_:
        main(["train", f"{flag}={value}", "--out", str(tmp_path / "run"), *TINY])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: {words}" in err, err  # argparse names the flag
    assert not (tmp_path / "run").exists()


def _train(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["train", *argv])
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run of --epochs 0: it evaluates the initial model and writes its files."""
    run = tmp_path_factory.mktemp("runs") / "run0"
    assert main(["train", "--epochs", "0", "--out", str(run), *TINY]) == 0
    return run


def test_epochs_zero_writes_a_run(finished_run):
    names = {p.name for p in finished_run.iterdir()}
    assert {"config.json", "checkpoint.snncc", "metrics.jsonl", "raster.png"} <= names
    rows = [json.loads(r) for r in (finished_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and "test_accuracy" in rows[0]  # no epoch, one test row
    assert snncc.load(finished_run / "checkpoint.snncc").progress == {}


def test_devices_beyond_the_cpu_leave_no_run_behind(tmp_path, capsys):
    run = tmp_path / "run"
    rc, err = _train(capsys, "--devices", "99", "--epochs", "0", "--out", str(run), *TINY)
    assert rc == 1 and "devices [99]" in err and "numbered from 0" in err
    assert not (run / "config.json").exists()  # so the corrected command may use this --out


def test_out_pointing_at_a_file_or_a_run(tmp_path, capsys, finished_run):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    rc, err = _train(capsys, "--out", str(afile), *TINY)
    assert rc == 1 and f"--out {afile} is a file" in err and "give a directory" in err
    assert afile.read_text() == "mine"
    before = (finished_run / "checkpoint.snncc").read_bytes()
    rc, err = _train(capsys, "--out", str(finished_run), *TINY)
    assert rc == 1 and "holds a run already" in err and f"--resume {finished_run}" in err
    assert "nothing was overwritten" in err
    assert (finished_run / "checkpoint.snncc").read_bytes() == before


# fmt: off
IDLE_FLAGS = [
    said("pixel-steps-without-pixels", ["--pixel-steps", "1"],
         "--pixel-steps sets the SMNIST encoding; --dataset digits has none",
         "Drop --pixel-steps, or train with --dataset smnist"),
    said("tau-a-of-lif", ["--tau-a", "100", "--model", "lif"],
         "--tau-a sets the adaptation time constant; --model lif trains neurons without "
         "adaptation", "train with --model alif or adlif"),
    said("refractory-of-nir", ["--refractory", "2", "--model", "lif", "--export-nir", "n.nir"],
         "--refractory sets the refractory period; --export-nir trains NIR's LIF, which has "
         "none", "Drop --refractory"),
]
# fmt: on


@pytest.mark.parametrize("flags, words", IDLE_FLAGS)
def test_a_flag_that_would_change_nothing_is_refused(tmp_path, capsys, flags, words):
    rc, err = _train(capsys, *flags, "--out", str(tmp_path / "run"), *TINY)
    assert rc == 1
    for word in words:
        assert word in err, err
    assert not (tmp_path / "run").exists()


def _run_dir(tmp_path: Path, config: str | None, checkpoint: bool = False) -> Path:
    run = tmp_path / "resume_me"
    run.mkdir()
    if config is not None:
        (run / "config.json").write_text(config)
    if checkpoint:
        (run / "checkpoint.snncc").write_bytes(b"")
    return run


# fmt: off
RESUMES = [
    said("missing-run", lambda t, r: t / "nope",
         "--resume", "nope: no such run directory", "its --out"),
    said("a-file", lambda t, r: _write(t / "f", b"x"), "is a file, not a run directory"),
    said("no-config", lambda t, r: _run_dir(t, None),
         "it has no config.json", "is it a run directory?"),
    said("corrupt-config", lambda t, r: _run_dir(t, "{bad"),
         "config.json is damaged", "restore it or start a new run"),
    said("config-list", lambda t, r: _run_dir(t, "[1]"), "config.json is damaged"),
    said("config-bad-value", lambda t, r: _run_dir(t, '{"neurons": -5}', True),
         "'neurons': expected a positive integer, got -5", "restore it"),
    said("config-bad-dataset", lambda t, r: _run_dir(t, '{"dataset": "cifar"}', True),
         "'dataset' is 'cifar'", "digits, shd"),
    said("config-string-lr", lambda t, r: _run_dir(t, '{"lr": "fast"}', True),
         "'lr' is 'fast', not a number"),
    said("config-bad-subset", lambda t, r: _run_dir(t, '{"train_subset": -5}', True),
         "'train_subset' is -5, not null or a positive integer"),
    said("config-bool-pixel-steps", lambda t, r: _run_dir(t, '{"pixel_steps": true}', True),
         "'pixel_steps' is True, not one of 1, 2"),
    said("config-negative-refractory", lambda t, r: _run_dir(t, '{"refractory": -5}', True),
         "'refractory': expected a finite number >= 0, got -5"),
    said("config-bad-rule", lambda t, r: _run_dir(t, '{"rule": "hebb"}', True),
         "'rule' is 'hebb', not one of eprop, bptt"),
    said("config-unknown-key", lambda t, r: _run_dir(t, '{"bogus": 1}', True),
         "unexpected keyword argument 'bogus'"),
    said("no-checkpoint", lambda t, r: _run_dir(t, "{}"),
         "it has no checkpoint.snncc", "in a new --out"),
    said("empty-checkpoint", lambda t, r: _run_dir(t, (r / "config.json").read_text(), True),
         "not a usable snncc checkpoint", "not a zip archive"),
]
# fmt: on


@pytest.mark.parametrize("make, words", RESUMES)
def test_resume(tmp_path, capsys, finished_run, make, words):
    run = make(tmp_path, finished_run)
    rc, err = _train(capsys, "--resume", str(run), "--no-progress")
    assert rc == 1 and "snncc train: error: " in err, err
    for word in words:
        assert word in err, err


def test_resume_refuses_a_flag_that_differs_from_the_run(capsys, finished_run):
    rc, err = _train(capsys, "--resume", str(finished_run), "--neurons", "16")
    assert rc == 1 and "--neurons 16 differs from the resumed run's 8" in err
    assert "Drop --neurons, or start a new run" in err
    rc, _ = _train(capsys, "--resume", str(finished_run), "--neurons", "8", "--epochs", "0")
    assert rc == 0  # the same value, and --epochs (which a resume may change), are fine


# ------------------------------------------------------------------- checkpoints under kill -9
def _child(work) -> int:
    """Fork a process that runs ``work()`` and exits (0 if it returned); returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            work()
            status = 0
        finally:
            os._exit(status)
    return pid


def _state_k(model, base: dict, k: int) -> dict:
    """The k-th state the writer saves: every synapse's weight shifted by k."""
    out = {}
    for name, w in base.items():
        mask = model.net.projections[name].mask  # no synapse (the diagonal): stays 0
        out[name] = w + (np.float32(k) if mask is None else np.where(mask, np.float32(k), 0))
    return out


def test_checkpoints_survive_kill_9_mid_write(tmp_path):
    model = snncc.compile(run_net(), batch_size=2)  # a model without training: small, fast
    base = {name: model.weights[name] for name in model.weights}
    path = tmp_path / "checkpoint.snncc"
    temps = str(tmp_path / ".checkpoint*.tmp")

    def write_forever() -> None:
        for k in range(1, 1 << 30):
            for name, w in _state_k(model, base, k).items():
                model.weights[name] = w
            model.step = k
            model.save(path)

    began = time.perf_counter()
    model.save(tmp_path / "probe.snncc")  # how long one write takes, to spread the kills over
    write_s = time.perf_counter() - began
    rng = np.random.default_rng(20260512)
    absent = mid_write = 0
    for trial in range(24):
        if path.exists():
            path.unlink()
        pid = _child(write_forever)
        time.sleep(rng.uniform(0.0, 6 * write_s + 0.002))  # some kills before the first write
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)  # reaped: its pid is dead for the stale-temp check
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, trial
        mid_write += bool(glob.glob(temps))
        if not path.exists():
            absent += 1
        else:
            back = snncc.load(path)  # never corrupt: one of the states written, whole
            assert back.step >= 1, trial
            for name, w in _state_k(model, base, back.step).items():
                np.testing.assert_array_equal(back.weights[name], w, err_msg=f"{trial}")
        saver = _child(lambda: model.save(path))  # one more save, by a new process
        _, status = os.waitpid(saver, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, trial
        assert glob.glob(temps) == [], trial  # the dead writer's temp file was removed
        assert snncc.load(path).step == 0  # the new process's own state
    assert mid_write >= 3, f"only {mid_write} of 24 kills hit a write in progress"
    assert absent < 24, "no kill came after a finished write"


# ------------------------------------------------------------------------------- divergence
def _fit_quietly(m, **kw):
    return m.fit((X4, Y4), batch_size=2, progress=False, **kw)


def test_a_huge_learning_rate_warns_then_stops_and_the_last_checkpoint_is_good(tmp_path):
    m = trainable(lr=1e-2)
    ckpt = tmp_path / "c.snncc"
    _fit_quietly(m, epochs=1, checkpoint=str(ckpt))
    good = ckpt.read_bytes()
    m.optimizer.lr = 1e8  # Adam moves each weight by ~lr per step: never NaN, but hopeless
    with pytest.warns(RuntimeWarning, match=r"training is diverging: \|w\| of '.*' reached"):
        err = check(
            snncc.TrainingError,
            lambda: _fit_quietly(m, epochs=3, checkpoint=str(ckpt)),
            "training diverged",
            "learning rate 1e+08",
            "beyond 2^24",
            "Lower the learning rate",
            f"The last good checkpoint is {ckpt} (after epoch 1)",
        )
    names = [n for n in ("in_hid", "hid_hid", "hid_out", "out.bias") if f"'{n}'" in str(err)]
    assert len(names) == 1  # the parameter is named
    assert ckpt.read_bytes() == good
    back = snncc.load(ckpt)
    assert back.progress["epoch"] == 1
    for name in back.weights:
        assert np.isfinite(back.weights[name]).all() and np.abs(back.weights[name]).max() < 1e4
    # the diverged model neither overwrites the good checkpoint nor trains on
    check(snncc.TrainingError, lambda: m.save(ckpt), "not saved to", "left as it was")
    assert ckpt.read_bytes() == good
    check(snncc.TrainingError, lambda: m.train_batch(X4[:2], Y4[:2]), "training stopped")
    m.load_state_dict(back.state_dict())  # a good state again: it may train and save
    m.optimizer.lr = 1e-2
    m.train_batch(X4[:2], Y4[:2])
    m.save(tmp_path / "after.snncc")


def test_divergence_before_the_first_checkpoint_names_no_file(tmp_path):
    m = trainable(lr=1e8)
    ckpt = tmp_path / "c.snncc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        err = check(
            snncc.TrainingError,
            lambda: _fit_quietly(m, epochs=2, checkpoint=str(ckpt)),
            "training diverged",
            "No checkpoint was written: training stopped before its first epoch ended",
        )
    assert str(ckpt) not in str(err) and not ckpt.exists()


def test_a_zero_threshold_never_reaches_a_checkpoint(tmp_path, monkeypatch):
    # v_th = 0 in a custom model without 'positive': its surrogate divides by zero at run time
    zero = lif(
        params={"tau_m": 20.0, "v_th": 0.0, "gamma": 0.3},
        surrogate="gamma / v_th * max(0, 1 - abs(margin) / v_th)",
    )
    m = trainable(zero)
    with pytest.warns(RuntimeWarning, match=r"gradients of .* hold NaN or inf.*threshold of 0"):
        m.gradients(X4[:2], Y4[:2])
    ckpt = tmp_path / "c.snncc"
    check(
        TE,
        lambda: _fit_quietly(m, epochs=2, checkpoint=str(ckpt)),
        "NaN or infinite",
        "a threshold of 0 in a surrogate",
        "No checkpoint was written",
    )
    assert not ckpt.exists()
    check(snncc.TrainingError, lambda: m.save(ckpt), "not saved to", "training stopped")
    assert not ckpt.exists()
    # without the optimiser's health report, save itself still refuses the NaN weights
    fresh = trainable(zero)
    monkeypatch.setattr(type(fresh), "_check_health", lambda self, health: None)
    fresh.train_batch(X4[:2], Y4[:2])
    assert not np.isfinite(fresh.weights["in_hid"]).all()  # the weights did become NaN
    check(snncc.TrainingError, lambda: fresh.save(ckpt), "holds NaN or inf", "left as it was")
    assert not ckpt.exists()
