"""Bad input: one test per mistake. Each checks the exception class, that the message names the
culprit (model, population, projection, equation or symbol) and that it says how to fix it."""

import shutil

import numpy as np
import pytest

import snncc
from snncc import neurons
from snncc.codegen.printer import Float32Printer

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


def test_every_error_is_an_snncc_error():
    for cls in (snncc.ModelError, snncc.EquationError, snncc.ShapeError, snncc.CompileError):
        assert issubclass(cls, snncc.SnnccError)
    assert issubclass(snncc.EquationError, snncc.ModelError)
    # and still the builtin a caller would expect
    assert issubclass(snncc.ModelError, ValueError) and issubclass(snncc.ShapeError, ValueError)


def lif(**kw):
    spec = dict(
        name="MyLIF",
        params={"tau_m": 20.0, "v_th": 1.0},
        state={"v": 0.0},
        dynamics=["dv/dt = -v / tau_m"],
        threshold="v > v_th",
        reset={"v": "v - v_th"},
        input={"v": "I_syn"},
    )
    spec.update(kw)
    return snncc.NeuronModel(**spec)


def small_net(hidden_model=None) -> snncc.Network:
    net = snncc.Network(dt=1.0, seed=0)
    net.add_input("input", 3)
    net.add_population("hidden", 4, hidden_model or neurons.ALIF())
    net.add_population("out", 2, neurons.LeakyIntegrator())
    net.connect("input", "hidden", name="in_hid", weight=0.5)
    net.connect("hidden", "out", name="hid_out", weight=0.1, p=0.5)
    return net


@pytest.fixture(scope="module")
def model():
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    return snncc.compile(small_net(), batch_size=2)


def x_ok(B=2, T=5, n=3):
    return np.zeros((B, T, n), np.uint8)


# ------------------------------------------------------------------------ equations, symbols
def test_unknown_symbol_in_an_ode():
    with pytest.raises(snncc.EquationError) as err:
        lif(dynamics=["dv/dt = -v / tau_n"])
    msg = str(err.value)
    for part in [
        "neuron model 'MyLIF'",
        "dv/dt",
        "unknown symbol 'tau_n'",
        "Did you mean 'tau_m'",
        "Declare it as a parameter or state variable",
        "-v / tau_n",
    ]:
        assert part in msg, part


def test_unknown_symbol_in_the_threshold():
    with pytest.raises(snncc.EquationError) as err:
        lif(threshold="v > v_thresh")
    msg = str(err.value)
    for part in [
        "neuron model 'MyLIF'",
        "threshold",
        "'v_thresh'",
        "Did you mean 'v_th'",
        "Declare it",
    ]:
        assert part in msg, part


def test_unknown_symbol_in_a_reset():
    with pytest.raises(snncc.EquationError) as err:
        lif(reset={"v": "v_reset"})
    msg = str(err.value)
    for part in ["neuron model 'MyLIF'", "reset of 'v'", "'v_reset'", "Declare it"]:
        assert part in msg, part


def test_unknown_symbol_in_on_spike_and_input():
    with pytest.raises(snncc.EquationError, match=r"on_spike of 'v'.*'jump'"):
        lif(on_spike={"v": "v + jump"})
    with pytest.raises(snncc.EquationError, match=r"input of 'v'.*'gain'"):
        lif(input={"v": "gain * I_syn"})


def test_unknown_symbol_in_the_surrogate():
    with pytest.raises(snncc.EquationError) as err:
        lif(surrogate="max(0, 1 - abs(margn))")
    msg = str(err.value)
    for part in ["neuron model 'MyLIF'", "surrogate", "'margn'", "Did you mean 'margin'"]:
        assert part in msg, part


def test_synaptic_input_in_the_threshold_explains_where_it_may_appear():
    with pytest.raises(snncc.EquationError) as err:
        lif(threshold="v + I_syn > v_th")
    msg = str(err.value)
    assert "threshold" in msg and "'I_syn'" in msg
    assert "ODEs and 'input' assignments" in msg
    assert "Declare it" not in msg  # I_syn is reserved: declaring it is not the fix


def test_margin_outside_the_surrogate_explains_where_it_may_appear():
    with pytest.raises(snncc.EquationError, match=r"(?s)reset of 'v'.*'margin'.*surrogate"):
        lif(reset={"v": "v - margin"})


def test_unknown_function():
    with pytest.raises(snncc.EquationError) as err:
        lif(dynamics=["dv/dt = -v / tau_m + erf(v)"])
    msg = str(err.value)
    assert "unknown function 'erf'" in msg and "allowed: abs, cos, exp" in msg


def test_ode_for_an_undeclared_variable():
    with pytest.raises(snncc.EquationError) as err:
        lif(dynamics=["dv/dt = -v / tau_m", "dw/dt = -w / tau_m"])
    msg = str(err.value)
    for part in [
        "neuron model 'MyLIF'",
        "undeclared variable 'w'",
        "dw/dt = -w / tau_m",
        "Add 'w' to the model's state variables",
        "declared: v",
    ]:
        assert part in msg, part


def test_two_odes_for_one_variable():
    with pytest.raises(snncc.ModelError, match=r"'MyLIF'.*two ODEs for 'v'.*merge"):
        lif(dynamics=["dv/dt = -v / tau_m", "dv/dt = 1"])


def test_an_equation_that_is_not_an_ode():
    with pytest.raises(snncc.EquationError, match=r"'MyLIF'.*write it as 'dv/dt = "):
        lif(dynamics=["v = -v / tau_m"])


def test_a_threshold_that_is_not_a_condition():
    with pytest.raises(snncc.ModelError, match=r"'MyLIF', threshold.*like 'v > v_th'"):
        lif(threshold="v - v_th")
    with pytest.raises(snncc.EquationError, match=r"threshold.*single '>' or '>='"):
        lif(threshold="v < v_th")


def test_assignment_to_an_undeclared_state():
    with pytest.raises(snncc.ModelError, match=r"'MyLIF', reset.*undeclared variable 'u'.*: v"):
        lif(reset={"u": "0"})


# --------------------------------------------------------------------------------- params
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_parameter(bad):
    with pytest.raises(snncc.ModelError) as err:
        neurons.LIF(tau_m=bad)
    msg = str(err.value)
    assert "neuron model 'LIF'" in msg and "parameter 'tau_m'" in msg
    assert "not finite" in msg and "give a finite number" in msg


def test_a_non_finite_value_inside_a_per_neuron_array():
    tau = np.full(100, 20.0)
    tau[37] = np.nan
    with pytest.raises(snncc.ModelError) as err:
        neurons.ALIF(tau_m=tau)
    msg = str(err.value)
    assert "'ALIF'" in msg and "'tau_m'" in msg and "nan at index 37" in msg


def test_a_non_finite_initial_state():
    with pytest.raises(snncc.ModelError, match=r"'MyLIF': state variable 'v' is not finite"):
        lif(state={"v": float("nan")})


def test_a_per_neuron_parameter_of_the_wrong_length():
    net = snncc.Network()
    with pytest.raises(snncc.ShapeError) as err:
        net.add_population("hidden", 4, neurons.LIF(tau_m=np.full(3, 20.0)))
    msg = str(err.value)
    for part in ["population 'hidden'", "parameter 'tau_m'", "LIF", "(3,)", "shape (4,)"]:
        assert part in msg, part


def test_a_two_dimensional_parameter():
    with pytest.raises(snncc.ModelError, match=r"'tau_m' must be a scalar or 1-D.*\(2, 2\)"):
        neurons.LIF(tau_m=np.full((2, 2), 20.0))


@pytest.mark.parametrize(
    "bad, word",
    [
        (True, "bool"),
        (np.bool_(False), "bool"),
        (np.array([True, False]), "bool"),
        ("20", "string"),
        (2 + 1j, "complex"),
        (np.array([1j, 2.0]), "complex"),
        ([1.0, None], "object"),
    ],
    ids=repr,
)
def test_parameters_are_never_silently_coerced(bad, word):
    with pytest.raises(snncc.ModelError) as err:
        neurons.LIF(tau_m=bad)
    msg = str(err.value)
    assert "'tau_m'" in msg and word in msg


def test_with_params_checks_like_the_constructor():
    with pytest.raises(snncc.ModelError, match="'tau_m' is not finite"):
        neurons.LIF().with_params(tau_m=np.inf)
    with pytest.raises(snncc.ModelError, match=r"unknown parameter 'tau'.*tau_m"):
        neurons.LIF().with_params(tau=3.0)


@pytest.mark.parametrize("name", ["dt", "I_syn", "margin"])
@pytest.mark.parametrize("kind", ["params", "state"])
def test_reserved_names_cannot_be_declared(name, kind):
    spec = {"params": {}, "state": {"v": 0.0}}
    spec[kind] = {**spec[kind], name: 1.0}
    with pytest.raises(snncc.ModelError) as err:
        snncc.NeuronModel("Reserved", **spec)
    msg = str(err.value)
    assert "'Reserved'" in msg and f"'{name}' is reserved" in msg and "rename it" in msg


@pytest.mark.parametrize("name", ["exp", "max", "pi"])
def test_function_names_cannot_be_declared(name):
    with pytest.raises(snncc.ModelError, match=f"'{name}' is reserved.*rename it"):
        snncc.NeuronModel("Reserved", params={name: 1.0}, state={"v": 0.0})


def test_invalid_names():
    with pytest.raises(
        snncc.ModelError, match="parameter name '_x' is not allowed.*drop the leading"
    ):
        snncc.NeuronModel("Bad", params={"_x": 1.0})
    with pytest.raises(snncc.ModelError, match="'v' is both a parameter and a state variable"):
        snncc.NeuronModel("Bad", params={"v": 1.0}, state={"v": 0.0})


def test_misc_model_fields():
    with pytest.raises(snncc.ModelError, match=r"trainable.*'tau' is not a parameter"):
        lif(trainable=("tau",))
    with pytest.raises(snncc.ModelError, match=r"output.*'u' is not a state variable"):
        lif(output="u")
    with pytest.raises(snncc.ModelError, match=r"refractory.*finite time >= 0"):
        lif(refractory=-1.0)
    with pytest.raises(snncc.ModelError, match=r"unknown method 'rk45'.*rk4"):
        lif(integration="rk45")


def test_equal_time_constants_name_the_population_and_the_constant():
    model = snncc.NeuronModel(
        "ExpSynEqual",
        params={"tau_m": 10.0, "tau_s": 10.0},
        state={"v": 0.0, "I": 0.0},
        dynamics=["dv/dt = (-v + I) / tau_m", "dI/dt = -I / tau_s"],
        input={"I": "I_syn"},
    )
    with pytest.raises(snncc.ModelError) as err:
        snncc.generate(small_net(model), "cpu")
    msg = str(err.value)
    assert "population 'hidden' (ExpSynEqual)" in msg and "v_from_I" in msg
    assert "two equal time constants" in msg and "change the parameters" in msg


# ------------------------------------------------------------------------------ networks
def test_duplicate_population_name():
    net = small_net()
    with pytest.raises(snncc.ModelError, match="duplicate name 'hidden'.*population another name"):
        net.add_population("hidden", 3, neurons.LIF())


def test_duplicate_projection_name():
    net = small_net()
    with pytest.raises(snncc.ModelError, match="duplicate name 'in_hid'.*projection another name"):
        net.connect("input", "hidden", name="in_hid")
    with pytest.raises(snncc.ModelError, match="duplicate name 'out'.*projection"):
        net.connect("hidden", "out", name="out")  # clashes with a population


def test_network_structure_errors():
    net = small_net()
    with pytest.raises(snncc.ModelError, match=r"population 'x': size must be a positive integer"):
        net.add_population("x", 0, neurons.LIF())
    with pytest.raises(snncc.ModelError, match=r"population 'y': model must be a NeuronModel"):
        net.add_population("y", 3, "LIF")
    with pytest.raises(snncc.ModelError, match=r"unknown population 'hiden'.*input, hidden, out"):
        net.connect("input", "hiden")
    with pytest.raises(snncc.ModelError, match=r"cannot project onto input population 'input'"):
        net.connect("hidden", "input")
    with pytest.raises(snncc.ModelError, match=r"p=1.5 is not in \[0, 1\]"):
        net.connect("hidden", "hidden", p=1.5)
    with pytest.raises(
        snncc.ModelError, match="population name 'a b' is not allowed: use ASCII letters"
    ):
        net.add_population("a b", 3, neurons.LIF())
    with pytest.raises(snncc.ModelError, match="dt must be a positive finite number"):
        snncc.Network(dt=0.0)


def test_compiling_without_an_input_population():
    net = snncc.Network()
    net.add_population("hidden", 3, neurons.LIF())
    with pytest.raises(snncc.ModelError, match="no input population.*add_input"):
        snncc.generate(net, "cpu")


# ------------------------------------------------------------------------------- weights
def test_weight_array_of_the_wrong_shape_at_connect():
    net = small_net()
    with pytest.raises(snncc.ShapeError) as err:
        net.connect("hidden", "out", name="w2", weight=np.zeros((2, 4), np.float32))
    msg = str(err.value)
    assert "projection 'w2'" in msg and "(2, 4)" in msg and "(n_pre, n_post) = (4, 2)" in msg
    assert "transpose" in msg


@pytest.mark.parametrize(
    "weight, exc, words",
    [
        (True, snncc.ModelError, ["bool", "1.0"]),
        (np.ones((3, 2), bool), snncc.ShapeError, ["dtype bool", "real numbers"]),
        (np.ones((3, 2), complex), snncc.ShapeError, ["dtype complex128", "real numbers"]),
        (np.full((3, 2), 2**25 + 1), snncc.ModelError, ["33554433", "no exact float32 value"]),
        (2**25 + 1, snncc.ModelError, ["33554433", "no exact float32 value"]),
        (np.full((3, 2), 1e40), snncc.ModelError, ["too large for float32"]),
        (float("nan"), snncc.ModelError, ["NaN or inf", "finite"]),
        ([[0.5] * 2] * 3, snncc.ModelError, ["init.Constant/Normal/Uniform", "NumPy array"]),
    ],
    ids=[
        "bool",
        "bool-array",
        "complex",
        "inexact-int-array",
        "inexact-int",
        "overflow",
        "nan",
        "list",
    ],
)
def test_weights_are_never_silently_coerced(weight, exc, words):
    net = small_net()
    with pytest.raises(exc) as err:
        net.connect("input", "out", name="w3", weight=weight)
    msg = str(err.value)
    assert "projection 'w3'" in msg
    for w in words:
        assert w in msg, w


def test_exact_integer_weights_are_accepted():
    q = small_net().connect("input", "out", weight=np.full((3, 2), -7, np.int64))
    assert q.weight.dtype == np.float32 and np.all(q.weight == -7.0)
    q = small_net().connect("input", "out", weight=np.int16(3))
    assert np.all(q.weight == 3.0)


def test_weight_array_of_the_wrong_shape_at_assignment(model):
    with pytest.raises(snncc.ShapeError) as err:
        model.weights["in_hid"] = np.zeros((4, 3), np.float32)
    msg = str(err.value)
    assert "projection 'in_hid'" in msg and "(4, 3)" in msg and "(3, 4)" in msg
    assert "transpose" in msg


@pytest.mark.parametrize(
    "value, words",
    [
        (np.ones((3, 4), complex), ["dtype complex128", "real numbers"]),
        (np.ones((3, 4), bool), ["dtype bool"]),
        (np.full((3, 4), 2**25 + 1), ["no exact float32 value"]),
        (np.full((3, 4), np.inf), ["must be finite"]),
    ],
    ids=["complex", "bool", "inexact-int", "inf"],
)
def test_weight_assignment_is_never_silently_coerced(model, value, words):
    before = model.weights["in_hid"]
    with pytest.raises(snncc.SnnccError) as err:
        model.weights["in_hid"] = value
    assert "projection 'in_hid'" in str(err.value)
    for w in words:
        assert w in str(err.value), w
    np.testing.assert_array_equal(model.weights["in_hid"], before)  # nothing was uploaded


def test_weight_assignment_accepts_exact_ints(model):
    before = model.weights["in_hid"]
    model.weights["in_hid"] = np.full((3, 4), 2, np.int32)
    assert np.all(model.weights["in_hid"] == 2.0)
    model.weights["in_hid"] = before


def test_weight_outside_a_sparse_mask(model):
    mask = model.net.projections["hid_out"].mask
    i, j = map(int, np.argwhere(~mask)[0])
    w = np.zeros((4, 2), np.float32)
    w[i, j] = 1.0
    with pytest.raises(
        snncc.ShapeError, match=rf"'hid_out'.*\[{i}, {j}\].*no synapse.*set it to 0"
    ):
        model.weights["hid_out"] = w


def test_unknown_projection_in_weights(model):
    with pytest.raises(KeyError, match="no projection 'in_hidden'.*in_hid, hid_out"):
        model.weights["in_hidden"]


# -------------------------------------------------------------------------------- inputs
@pytest.mark.parametrize(
    "x, words",
    [
        (np.zeros((2, 5, 4), np.uint8), ["input 'input'", "(2, 5, 4)", "(batch, time, 3)"]),
        (np.zeros((5, 3), np.uint8), ["input 'input'", "(5, 3)", "(batch, time, 3)"]),
        (np.zeros((1, 2, 5, 3), np.uint8), ["(batch, time, 3)"]),
    ],
    ids=["wrong-n_in", "2-D", "4-D"],
)
def test_input_of_the_wrong_shape(model, x, words):
    with pytest.raises(snncc.ShapeError) as err:
        model.run(x)
    for w in words:
        assert w in str(err.value), w


@pytest.mark.parametrize(
    "x, words",
    [
        (np.full((2, 5, 3), "0"), ["input 'input'", "dtype <U1", "bool/uint8"]),
        (np.zeros((2, 5, 3), complex), ["dtype complex128", "bool/uint8"]),
        (np.full((2, 5, 3), 0.5), ["spikes must be 0 or 1", "0.5", "bin your data"]),
        (np.full((2, 5, 3), 2, np.int64), ["spikes must be 0 or 1", "2"]),
        (np.full((2, 5, 3), np.nan), ["spikes must be 0 or 1", "nan"]),
        (np.full((2, 5, 3), -1.0), ["spikes must be 0 or 1", "-1"]),
    ],
    ids=["strings", "complex", "half", "two", "nan", "negative"],
)
def test_input_of_the_wrong_dtype_or_values(model, x, words):
    with pytest.raises(snncc.ShapeError) as err:
        model.run(x)
    for w in words:
        assert w in str(err.value), w


def test_valid_input_dtypes_are_accepted(model):
    x = np.zeros((2, 5, 3), bool)
    x[:, 0, 0] = True
    for arr in (x, x.astype(np.uint8), x.astype(np.float32), x.astype(np.float64)):
        model.run(arr, record=["hidden.v"])


def test_bad_event_lists(model):
    with pytest.raises(snncc.ShapeError, match=r"input 'input', example 0: units.*\[0, 3\)"):
        model.run([(np.array([1.0]), np.array([5]))])
    with pytest.raises(snncc.ShapeError, match=r"example 1: times must be finite and >= 0"):
        model.run([(np.array([1.0]), np.array([0])), (np.array([-1.0]), np.array([0]))])
    with pytest.raises(snncc.ShapeError, match="expected a .* 0/1 array or a list"):
        model.run("spikes.npy")


def test_nested_list_input_is_not_silently_read_as_events(model):
    dense = [[[0, 1, 0], [1, 0, 0]], [[0, 0, 1], [0, 0, 0]]]  # (B=2, T=2, n=3) as lists
    with pytest.raises(snncc.ShapeError) as err:
        model.run(dense, record=["input"])
    msg = str(err.value)
    assert "input 'input'" in msg and "ambiguous" in msg and "np.asarray(x)" in msg
    got = model.run(np.asarray(dense), record=["input"])["input"]
    np.testing.assert_array_equal(got, dense)
    # event pairs as tuples (or ragged lists) stay unambiguous
    events = [([0.0, 1.0, 1.5], [1, 0, 2]), ([0.5, 0.2, 1.0], [2, 0, 1])]
    model.run(events, record=["input"])
    model.run([[[0.0], [1]], [[0.5, 1.0], [2, 0]]], record=["input"])


def test_input_dict_with_wrong_keys(model):
    with pytest.raises(snncc.ShapeError, match=r"expected keys \['input'\].*unknown \['inp'\]"):
        model.run({"inp": x_ok()})


# -------------------------------------------------------------------------------- record
def test_unknown_record_population(model):
    with pytest.raises(snncc.ModelError, match=r"unknown population 'hiden'.*input, hidden, out"):
        model.run(x_ok(), record=["hiden"])


def test_unknown_record_variable(model):
    with pytest.raises(snncc.ModelError) as err:
        model.run(x_ok(), record=["hidden.w"])
    msg = str(err.value)
    assert "'w' is not a state variable of 'hidden'" in msg and "ALIF: v, a" in msg


def test_recording_spikes_of_a_non_spiking_population(model):
    with pytest.raises(snncc.ModelError, match=r"'out' does not spike; record a state.*'out.v'"):
        model.run(x_ok(), record=["out"])


# ------------------------------------------------------------------------------ backends
def test_unknown_backend():
    with pytest.raises(snncc.ModelError, match="unknown backend 'tpu'; choose one of cpu, cuda"):
        snncc.compile(small_net(), backend="tpu")
    with pytest.raises(snncc.ModelError, match="unknown backend 'tpu'; choose one of cpu, cuda"):
        snncc.generate(small_net(), "tpu")


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "8"])
def test_bad_batch_size(bad):
    with pytest.raises(
        snncc.ModelError, match=f"batch_size must be a positive integer, got {bad!r}"
    ):
        snncc.generate(small_net(), "cpu", batch_size=bad)


# ----------------------------------------------------------------- compile error mapping
PROBE_FN = "snncc_no_such_function"


def _probe_net(name: str, with_projection: bool, abs_ode: bool = False) -> snncc.Network:
    net = snncc.Network(dt=1.0)
    net.add_input("input", 2)
    if abs_ode:
        ode = "dvprobe/dt = -abs(vprobe) / tau_probe + I_syn"
        extra = {"integration": "euler"}
    else:
        ode = "dvprobe/dt = (-vprobe + I_syn) / tau_probe"
        extra = {}
    model = snncc.NeuronModel(
        name,
        params={"tau_probe": 10.0, "th_probe": 1.0},
        state={"vprobe": 0.0},
        dynamics=[ode],
        threshold="vprobe > th_probe",
        reset={"vprobe": "0"},
        **extra,
    )
    net.add_population("probe_pop", 3, model)
    if with_projection:
        net.connect("input", "probe_pop", name="feed", weight=0.5)
    return net, ode


def _check_compile_error(msg: str, model_name: str, ode: str) -> None:
    assert PROBE_FN in msg  # the compiler's own complaint is quoted
    assert model_name in msg, "the neuron model is named"
    assert "population 'probe_pop'" in msg, "the population is named"
    assert ode in msg, "the ODE text is shown"
    assert "network.cpp:" in msg
    context = [ln for ln in msg.splitlines() if "|" in ln]
    assert len(context) >= 3, "surrounding source lines are shown"
    marked = [ln for ln in context if ln.lstrip().startswith(">>")]
    assert len(marked) == 1 and PROBE_FN in marked[0], "the failing line is marked"


@needs_gxx
@pytest.mark.parametrize(
    "model_name, with_projection",
    [("DiagnosticProbeExact", False), ("DiagnosticProbeFed", True)],  # fed: names it still
)
def test_compile_error_points_back_to_model_population_and_ode(
    monkeypatch, model_name, with_projection
):
    # Break the printer for one symbol only: the hoisted decay constant of this model's ODE.
    original = Float32Printer._print_Symbol

    def broken(self, expr):
        out = original(self, expr)
        return f"{PROBE_FN}({out})" if expr.name == "vprobe_decay" else out

    monkeypatch.setattr(Float32Printer, "_print_Symbol", broken)
    net, ode = _probe_net(model_name, with_projection=with_projection)
    with pytest.raises(snncc.CompileError) as err:
        snncc.compile(net, batch_size=1, backend="cpu")
    _check_compile_error(str(err.value), model_name, ode)


@needs_gxx
def test_compile_error_of_a_printed_function_in_an_euler_ode(monkeypatch):
    monkeypatch.setattr(
        Float32Printer, "_print_Abs", lambda self, e: f"{PROBE_FN}({self._print(e.args[0])})"
    )
    net, ode = _probe_net("DiagnosticProbeAbs", with_projection=False, abs_ode=True)
    with pytest.raises(snncc.CompileError) as err:
        snncc.compile(net, batch_size=1, backend="cpu")
    _check_compile_error(str(err.value), "DiagnosticProbeAbs", ode)
