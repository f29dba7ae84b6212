"""Compiler stages without a C compiler: parsing, discretisation and the kernel plan."""

import warnings

import numpy as np
import pytest
import sympy as sp

import snncc
from snncc import neurons
from snncc.codegen.plan import build_plan
from snncc.model.equations import parse_expr, parse_ode, symbol
from snncc.symbolic.integrate import DT, I_SYN, REFRAC, SPIKE_PREV, discretize

v, a, tau, tau_m, tau_s, I = (symbol(n) for n in ["v", "a", "tau", "tau_m", "tau_s", "I"])


def _num(expr, **values):
    """Evaluate a sympy expression of snncc symbols at ``values`` (names -> numbers)."""
    return float(expr.xreplace({symbol(k): sp.Float(x) for k, x in values.items()}))


# ------------------------------------------------------------------------------------ parsing
def test_parse_ode_string():
    var, rhs = parse_ode("dv/dt = (-v + I_syn)/tau_m", {"v", "I_syn", "tau_m"}, {"v": 0}, "test")
    assert var == "v"
    assert sp.simplify(rhs - (-v + I_SYN) / tau_m) == 0
    assert all(s.is_real for s in rhs.free_symbols)


def test_parse_ode_tolerates_spacing():
    var, rhs = parse_ode("  d v / dt=-v/tau ", {"v", "tau"}, {"v": 0}, "test")
    assert var == "v" and rhs == -v / tau


@pytest.mark.parametrize(
    "name",
    ["beta", "gamma", "I", "E", "S", "Q", "N", "O", "zeta", "Lambda", "lerchphi", "C", "re", "im"],
)
def test_names_that_sympy_knows_are_plain_real_symbols(name):
    expr = parse_expr(f"2 * {name} + {name}**2", {name}, "test")
    (sym,) = expr.free_symbols
    assert type(sym) is sp.Symbol and sym.name == name and sym.is_real
    assert expr == 2 * sym + sym**2
    # not the beta/gamma function, ImaginaryUnit, Euler's number, sympify's S, Q, N, ...
    assert not expr.has(sp.I, sp.E, sp.EulerGamma, sp.pi)
    assert not any(isinstance(e, sp.Function) for e in sp.preorder_traversal(expr))


def test_model_with_sympy_lookalike_names():
    m = snncc.NeuronModel(
        "Lookalikes",
        params={"beta": 0.1, "gamma": 0.3, "E": 1.0, "S": 2.0, "Q": 3.0, "N": 4.0, "O": 5.0},
        state={"v": 0.0, "I": 0.0},
        dynamics=["dv/dt = (-v + E + I * beta) / (S + Q)", "dI/dt = -I * gamma / (N + O)"],
        threshold="v > gamma",
    )
    odes = m.odes()
    assert set(odes) == {"v", "I"}
    names = {s.name for rhs in odes.values() for s in rhs.free_symbols}
    assert names == {"v", "E", "I", "beta", "S", "Q", "gamma", "N", "O"}
    for rhs in odes.values():
        assert not rhs.has(sp.I, sp.E)
        assert all(type(s) is sp.Symbol for s in rhs.free_symbols)
    upd = discretize(m)
    assert upd.method == "exact"
    # dv/dt = (-v + E + I beta) / (S + Q) with S + Q = 5: v decays with exp(-dt/5)
    assert _num(upd.constants["v_decay"], dt=1.0, S=2.0, Q=3.0) == pytest.approx(np.exp(-0.2))


def test_pi_is_the_number_and_numbers_are_exact():
    expr = parse_expr("pi * v / 2 + 1/3", {"v"}, "test")
    assert expr == sp.pi * v / 2 + sp.Rational(1, 3)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo hi')",
        "v.real",
        "v.__class__",
        "(lambda: v)()",
        "(lambda q: q)(v)",
        "v[0]",
        "[w for w in (v,)]",
        "{v: 1}",
        "exp(x=v)",
        "'v'",
        "f'{v}'",
        "True",
        "v if v else 0",
        "v and v",
        "not v",
        "v == 1",
        "v < 1",
        "(q := 3)",
        "eval('v')",
        "getattr(v, 'real')",
        "open('/etc/passwd')",
        "v @ v",
        "v // 2",
        "v % 2",
        "...",
        "None",
    ],
)
def test_no_eval_dangerous_or_unsupported_syntax_is_rejected(text):
    with pytest.raises(snncc.EquationError, match="neuron model 'Evil'"):
        snncc.NeuronModel("Evil", state={"v": 0.0}, dynamics=[f"dv/dt = {text}"])


def test_rejected_text_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    for kind in ("dynamics", "threshold", "reset"):
        spec = {
            "dynamics": {"dynamics": [f"dv/dt = {text}"]},
            "threshold": {"threshold": f"{text} > 0"},
            "reset": {"threshold": "v > 1", "reset": {"v": text}},
        }[kind]
        with pytest.raises(snncc.EquationError):
            snncc.NeuronModel("Evil", state={"v": 0.0}, **spec)
    assert not marker.exists()


def test_parse_rejects_non_text():
    with pytest.raises(snncc.EquationError, match="expected a string"):
        parse_expr(["v"], {"v"}, "test")
    with pytest.raises(snncc.EquationError, match="cannot parse"):
        parse_expr("v +", {"v"}, "test")


def test_sympy_equation_with_a_function_of_time():
    t = sp.Symbol("t")
    vf = sp.Function("v")
    ode = sp.Eq(sp.Derivative(vf(t), t), (-vf(t) + snncc.sym("I_syn")) / snncc.sym("tau_m"))
    m = snncc.NeuronModel("SympyLIF", params={"tau_m": 20.0}, state={"v": 0.0}, dynamics=[ode])
    ((var, rhs),) = m.odes().items()
    assert var == "v"
    assert sp.simplify(rhs - (-v + I_SYN) / tau_m) == 0
    assert all(type(s) is sp.Symbol and s.is_real for s in rhs.free_symbols)
    upd = discretize(m)
    assert upd.method == "exact"
    assert upd.constants["v_decay"] == sp.exp(-DT / tau_m)
    assert "Derivative(v(t), t)" in str(upd)  # the equation as written stays in comments


def test_sympy_equation_with_plain_symbols():
    t = sp.Symbol("t")
    x, k = sp.symbols("x k")  # not real=True: snncc swaps in its own symbols
    m = snncc.NeuronModel(
        "SympyPlain",
        params={"k": 0.5},
        state={"x": 1.0},
        dynamics=[sp.Eq(sp.Derivative(x, t), -k * x)],
    )
    assert m.odes() == {"x": -symbol("k") * symbol("x")}
    assert discretize(m).constants["x_decay"] == sp.exp(-DT * symbol("k"))


# ------------------------------------------------------------------------------ discretize
def test_exact_integration_of_a_leak():
    m = snncc.NeuronModel(
        "Leak", params={"tau": 10.0}, state={"v": 0.0}, dynamics=["dv/dt = -v/tau"]
    )
    upd = discretize(m, dt=1.0)
    assert upd.method == "exact"
    (st,) = upd.decay
    assert st.target == "v" and st.expr == v * symbol("v_decay")
    assert upd.constants == {"v_decay": sp.exp(-DT / tau)}
    assert st.kind == "decay" and "dv/dt = -v/tau" in st.source


def test_exact_integration_with_constant_drive_matches_the_analytic_solution():
    m = snncc.NeuronModel(
        "Drive",
        params={"tau": 10.0, "I0": 2.0},
        state={"v": 0.0},
        dynamics=["dv/dt = (I0 - v)/tau"],
    )
    upd = discretize(m)
    new = upd.state_update()["v"].xreplace({symbol(k): e for k, e in upd.constants.items()})
    vals = {"v": 0.3, "tau": 10.0, "I0": 2.0, "dt": 0.7}
    exact = 2.0 + (0.3 - 2.0) * np.exp(-0.7 / 10.0)
    assert _num(new, **vals) == pytest.approx(exact, rel=1e-14)


def _linear_system_model(integration="auto"):
    """Current-based exponential synapse: I decays with tau_s and drives v, I_syn feeds v."""
    return snncc.NeuronModel(
        f"ExpSyn_{integration}",
        params={"tau_m": 20.0, "tau_s": 5.0, "R": 1.5},
        state={"v": 0.0, "I": 0.0},
        dynamics=["dv/dt = (-v + R * I + I_syn) / tau_m", "dI/dt = -I / tau_s"],
        integration=integration,
    )


def test_linear_two_state_system_matches_the_matrix_exponential():
    linalg = pytest.importorskip("scipy.linalg")
    upd = discretize(_linear_system_model(), dt=1.0)
    assert upd.method == "exact"
    p = {"tau_m": 20.0, "tau_s": 5.0, "R": 1.5, "dt": 0.5}
    consts = {k: _num(e, **p) for k, e in upd.constants.items()}
    new = upd.state_update()
    # dX/dt = A X + b I_syn: augmented matrix [[A, b], [0, 0]]
    A = np.array([[-1 / 20.0, 1.5 / 20.0], [0.0, -1 / 5.0]])
    M = np.zeros((3, 3))
    M[:2, :2] = A
    M[0, 2] = 1 / 20.0
    E = linalg.expm(M * p["dt"])
    rng = np.random.default_rng(0)
    for _ in range(5):
        x0 = rng.normal(size=3)
        vals = {"v": x0[0], "I": x0[1], "I_syn": x0[2], **p, **consts}
        got = [_num(new["v"], **vals), _num(new["I"], **vals)]
        np.testing.assert_allclose(got, (E @ x0)[:2], rtol=1e-12, atol=1e-14)


def test_linear_system_coefficients_are_hoisted_constants():
    upd = discretize(_linear_system_model())
    assert {"v_decay", "I_decay"} <= set(upd.constants)
    for st in upd.decay:
        assert not st.expr.has(sp.exp), f"exp left in the per-step update: {st}"


def test_non_linear_ode_warns_and_uses_euler():
    m = snncc.NeuronModel(
        "Quadratic", params={"tau": 10.0}, state={"v": 0.0}, dynamics=["dv/dt = (v*v - v)/tau"]
    )
    with pytest.warns(UserWarning, match="(?s)Quadratic.*Euler"):
        upd = discretize(m)
    assert upd.method == "euler"
    new = upd.state_update()["v"].xreplace({symbol(k): e for k, e in upd.constants.items()})
    assert sp.simplify(new - (v + DT * (v * v - v) / tau)) == 0


def test_non_linear_ode_with_a_function_of_the_state_is_integrated():
    # AdEx-style exponential term: must fall back to Euler, not crash inside sympy.Poly
    m = snncc.NeuronModel(
        "ExpIF", params={"tau": 10.0, "d": 2.0}, state={"v": 0.0},
        dynamics=["dv/dt = (-v + d * exp(v / d)) / tau"],
    )  # fmt: skip
    with pytest.warns(UserWarning, match="Euler"):
        upd = discretize(m)
    assert upd.method == "euler"


@pytest.mark.parametrize("method", ["rk4", "midpoint", "euler"])
def test_explicit_methods_are_accepted_without_warning(method):
    m = snncc.NeuronModel(
        f"Logistic_{method}", params={"r": 0.5}, state={"v": 0.1},
        dynamics=["dv/dt = r * v * (1 - v)"], integration=method,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upd = discretize(m, dt=0.1)
    assert upd.method == method
    new = upd.state_update()["v"].xreplace({symbol(k): e for k, e in upd.constants.items()})
    got = _num(new, v=0.1, r=0.5, dt=0.1)

    def f(x):
        return 0.5 * x * (1 - x)

    h, x = 0.1, 0.1
    if method == "euler":
        want = x + h * f(x)
    elif method == "midpoint":
        want = x + h * f(x + h / 2 * f(x))
    else:
        k1 = f(x)
        k2 = f(x + h / 2 * k1)
        k3 = f(x + h / 2 * k2)
        k4 = f(x + h * k3)
        want = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    assert got == pytest.approx(want, rel=1e-13)


def test_rk4_on_a_linear_ode_is_accepted_and_close_to_exact():
    m = snncc.NeuronModel(
        "LeakRK4", params={"tau": 10.0}, state={"v": 1.0}, dynamics=["dv/dt = -v/tau"],
        integration="rk4",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upd = discretize(m)
    assert upd.method == "rk4"
    new = upd.state_update()["v"].xreplace({symbol(k): e for k, e in upd.constants.items()})
    assert _num(new, v=1.0, tau=10.0, dt=1.0) == pytest.approx(np.exp(-0.1), rel=1e-7)


def test_exact_on_a_non_linear_ode_is_an_error():
    with pytest.raises(snncc.ModelError, match="(?s)'Quad'.*linear.*rk4"):
        discretize(
            snncc.NeuronModel(
                "Quad", state={"v": 0.0}, dynamics=["dv/dt = v*v"], integration="exact"
            )
        )


def test_spike_effects_follow_the_documented_order():
    upd = discretize(neurons.ALIF())
    kinds = [(st.kind, st.target) for st in upd.spike_effects]
    assert kinds == [("reset", "v"), ("on_spike", "a"), ("input", "v")]
    reset = upd.spike_effects[0].expr
    assert isinstance(reset, sp.Piecewise) and reset.args[0].cond == (SPIKE_PREV > 0)
    # the spike is the threshold condition exactly as written (for bit-exact comparisons)
    assert upd.spike == sp.Piecewise((1, v > symbol("v_th") + symbol("beta") * a), (0, True))
    assert upd.margin == v - symbol("v_th") - symbol("beta") * a
    assert upd.psi is not None and upd.psi.has(sp.Abs, sp.Max)


def test_discrete_update_str_is_readable():
    text = str(discretize(neurons.ALIF(refractory=3.0)))
    for part in [
        "DiscreteUpdate of ALIF (integration: exact)",
        "const v_decay = exp(-dt/tau_m)",
        "const a_decay = exp(-dt/tau_a)",
        "dv/dt = -v / tau_m",
        "da/dt = -a / tau_a",
        "reset: v = v - v_th",
        "on_spike: a = a + 1",
        "input: v += I_syn",
        "refractory 3.0 ms",
        "spike <- ",
        "psi <- ",
    ]:
        assert part in text, part
    assert text.count("\n") >= 9


def _alif_net(tau_m=20.0, refractory=0.0):
    net = snncc.Network(dt=1.0)
    net.add_input("input", 4)
    net.add_population("hidden", 6, neurons.ALIF(tau_m=tau_m, refractory=refractory))
    net.add_population("out", 2, neurons.LeakyIntegrator(tau=20.0))
    net.connect("input", "hidden", weight=0.1)
    net.connect("hidden", "hidden", weight=0.1, allow_self=False)
    net.connect("hidden", "out", weight=0.1)
    return net


def test_kernel_plan_str_is_readable():
    text = str(build_plan(_alif_net(), batch_size=8))
    for part in [
        "KernelPlan",
        "batch 8",
        "population hidden (6 x ALIF) <- input_to_hidden, hidden_to_hidden",
        "population out (2 x LeakyIntegrator)",
        "dv/dt = -v / tau_m",
        "const v_decay = exp(-dt/tau_m)",
        "projection hidden_to_hidden: hidden -> hidden dense (delay 1)",
        "buffers:",
        "hidden_v [B x 6] (state)",
    ]:
        assert part in text, part


def test_heterogeneous_time_constants_give_per_neuron_constants():
    tau_m = np.linspace(10.0, 35.0, 6)
    plan = build_plan(_alif_net(tau_m=tau_m), batch_size=2)
    hidden = plan.pop("hidden")
    assert "v_decay" in hidden.per_neuron and "tau_m" in hidden.per_neuron
    assert "a_decay" in hidden.scalars and "v_decay" not in hidden.scalars
    np.testing.assert_allclose(hidden.values["v_decay"], np.exp(-1.0 / tau_m), rtol=1e-15)
    buf = plan.buffer("hidden_p_v_decay")
    assert buf.shape == (6,) and buf.init.dtype == np.float32
    np.testing.assert_array_equal(buf.init, np.exp(-1.0 / tau_m).astype(np.float32))
    homogeneous = build_plan(_alif_net(), batch_size=2).pop("hidden")
    assert "v_decay" in homogeneous.scalars and "v_decay" not in homogeneous.per_neuron


def test_trainable_parameters_are_per_neuron_and_not_hoisted():
    plan = build_plan(_alif_net(), batch_size=2)
    out = plan.pop("out")
    assert "bias" in out.per_neuron
    (inp,) = [st for st in out.update.spike_effects if st.kind == "input"]
    assert symbol("bias") in inp.expr.free_symbols


def test_refractory_period_creates_a_countdown_state():
    upd = discretize(neurons.LIF(refractory=5.0), dt=1.0)
    assert upd.refractory_steps == 5
    first = upd.spike_effects[0]
    assert first.target == "_refrac" and first.kind == "refractory"
    # a spike at t-1 starts the countdown at 4: steps t..t+3 cannot spike
    assert first.expr.xreplace({SPIKE_PREV: 1, REFRAC: 0}) == 4
    assert first.expr.xreplace({SPIKE_PREV: 0, REFRAC: 3}) == 2
    assert first.expr.xreplace({SPIKE_PREV: 0, REFRAC: 0}) == 0
    v_th = symbol("v_th")
    assert upd.spike.xreplace({REFRAC: 2, v: 10, v_th: 1}) == 0  # blocked while refractory
    assert upd.spike.xreplace({REFRAC: 0, v: 10, v_th: 1}) == 1
    assert upd.psi.xreplace({REFRAC: 2}) == 0  # no surrogate gradient while refractory
    pop = build_plan(_alif_net(refractory=5.0), batch_size=2).pop("hidden")
    assert "_refrac" in pop.states


def test_refractory_period_scales_with_dt():
    assert discretize(neurons.LIF(refractory=5.0), dt=0.5).refractory_steps == 10
    none = discretize(neurons.LIF(refractory=0.0))
    assert none.refractory_steps == 0
    assert all(st.target != "_refrac" for st in none.spike_effects)
