"""The float32 C printer never lets a double into a kernel, and the generated sources prove it.

A double literal (``0.5``), a double function (``exp``) or a double macro (``M_PI``) in a float
expression silently promotes the whole expression to double: slower on a GPU and no longer
bit-identical to a float32 NumPy reference. These tests pin the printer's output text, check that
every literal round-trips to the intended float32 value, and compile the generated CPU source with
``-Werror=double-promotion``.
"""

import re
import shutil
import subprocess

import jinja2
import numpy as np
import pytest
import sympy as sp

import snncc
from snncc import init, neurons
from snncc.codegen.printer import print_block, print_c
from snncc.model.equations import parse_expr, symbol

x, y, z = (symbol(n) for n in "xyz")

#: a numeric token of C source: digits, optional fraction and exponent, then any suffix letters
_NUMBER = re.compile(r"(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[A-Za-z]*")
_DOUBLE_FUNCS = re.compile(
    r"\b(exp|log|log2|log10|sqrt|pow|fabs|fmax|fmin|tanh|sinh|cosh|sin|cos|tan|floor|ceil|fmod"
    r"|atan2|erf|cbrt|hypot)\s*\("
)
_MACRO = re.compile(r"\bM_[A-Z0-9_]+\b")


def strip_comments(src: str) -> str:
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def float_literals(code: str) -> list[str]:
    """Every floating-point literal token of ``code`` (decimal point or exponent; hex excluded)."""
    out = []
    for tok in _NUMBER.findall(code):
        if tok.lower().startswith("0x"):
            continue
        body = tok.rstrip("FfLlUu")
        if "." in body or re.search(r"\d[eE][+-]?\d", body):
            out.append(tok)
    return out


def assert_float32_only(code: str, what: str = "code") -> None:
    code = strip_comments(code)
    bad = [t for t in float_literals(code) if not t.endswith(("F", "f"))]
    assert not bad, f"{what}: unsuffixed (double) literals {bad}"
    assert not re.search(r"\bdouble\b", code), f"{what}: 'double' appears"
    assert not _MACRO.search(code), f"{what}: math macro {_MACRO.search(code).group()}"
    m = _DOUBLE_FUNCS.search(code)
    assert m is None, f"{what}: double-precision function {m.group(1)}()"


def literal_value(token: str) -> np.float32:
    """Parse a printed C literal as float32 (what the C compiler will do with an F suffix)."""
    assert token.endswith("F"), token
    return np.float32(token[:-1])


# --------------------------------------------------------------------------- helpers themselves
def test_the_literal_scanner_finds_doubles_and_ignores_ints_and_comments():
    code = "a = 0.5F*b + 2.0*c - 1e-3 + 3e+2F; i = 32u + 0x1F; // 7.5 in a comment"
    assert float_literals(strip_comments(code)) == ["0.5F", "2.0", "1e-3", "3e+2F"]
    with pytest.raises(AssertionError, match="2.0"):
        assert_float32_only(code)
    for bad in ["double q = a;", "a*M_PI", "exp(a)", "pow(a, b)"]:
        with pytest.raises(AssertionError):
            assert_float32_only(bad)


# --------------------------------------------------------------------------------- literals
@pytest.mark.parametrize(
    "expr, value",
    [
        (sp.Integer(3), 3.0),
        (sp.Integer(-7), -7.0),
        (sp.Integer(0), 0.0),
        (sp.Integer(1), 1.0),
        (sp.Rational(1, 3), 1 / 3),
        (sp.Rational(-2, 7), -2 / 7),
        (sp.S.Half, 0.5),
        (sp.Float(0.1), 0.1),
        (sp.Float(1e-10), 1e-10),
        (sp.Float(-2.5e-7), -2.5e-7),
        (sp.Integer(10**12), 1e12),
        (sp.Integer(2**24 + 1), float(2**24 + 1)),  # not a float32: rounds like the compiler
        (sp.Float(3.4e38), 3.4e38),
        (sp.Float(1.1754944e-38), 1.1754944e-38),
        (sp.Float("0.1", 30), 0.1),  # high-precision sympy Float
        (sp.pi, np.pi),
        (sp.E, np.e),
        (sp.EulerGamma, 0.5772156649015329),
        (sp.GoldenRatio, (1 + 5**0.5) / 2),
    ],
    ids=repr,
)
def test_every_literal_has_an_F_suffix_and_round_trips_to_float32(expr, value):
    text = print_c(expr)
    token = text.lstrip("-")
    assert re.fullmatch(r"(\d+\.\d*|\d+(\.\d*)?e[+-]?\d+)F", token), text
    parsed = literal_value(token) * (np.float32(-1) if text.startswith("-") else np.float32(1))
    assert parsed == np.float32(value), (text, np.float32(value))
    # a float32 literal also keeps its type inside an expression
    assert_float32_only(print_c(expr * x + 1))


@pytest.mark.parametrize(
    "value", [0.1, 1 / 3, 2 / 3, 0.6, 0.3, 0.0174, 20.0, 2000.0, np.exp(-1 / 20), 1e-30, 123456.789]
)
def test_printed_floats_are_exactly_the_float32_value(value):
    token = print_c(sp.Float(value))
    assert literal_value(token) == np.float32(value)
    # the shortest text that round-trips: no needless digits
    assert len(token) <= len(repr(np.float32(value).item())) + 2


@pytest.mark.parametrize(
    "expr",
    [
        sp.pi * x,
        sp.pi / 2 * x,
        x / sp.pi,
        2 / sp.sqrt(sp.pi) * x,
        sp.E * x,
        sp.log(2) * x,
        sp.log(10) * x,
        sp.sqrt(2) * x,
        1 / sp.sqrt(2) * x,
        sp.exp(x) * sp.pi + sp.log(2),
    ],
    ids=str,
)
def test_no_math_macros(expr):
    code = print_c(expr)
    assert "M_" not in code, code
    assert_float32_only(code, str(expr))


# -------------------------------------------------------------------------------- functions
@pytest.mark.parametrize(
    "expr, expected",
    [
        (sp.exp(x), "expf(x)"),
        (sp.log(x), "logf(x)"),
        (sp.sqrt(x), "sqrtf(x)"),
        (1 / sp.sqrt(x), "(1.0F/sqrtf(x))"),
        (x ** sp.Rational(3, 2), "powf(x, 1.5F)"),
        (x**y, "powf(x, y)"),
        (2**x, "powf(2.0F, x)"),
        (x**5, "powf(x, 5.0F)"),
        (sp.Abs(x), "fabsf(x)"),
        (sp.Max(x, y), "((x) > (y) ? (x) : (y))"),  # selects: loops stay vectorisable
        (sp.Min(x, y), "((x) < (y) ? (x) : (y))"),
        (sp.tanh(x), "tanhf(x)"),
        (sp.sin(x), "sinf(x)"),
        (sp.cos(x), "cosf(x)"),
    ],
    ids=str,
)
def test_functions_print_as_their_float_versions(expr, expected):
    code = print_c(expr)
    assert code == expected
    assert_float32_only(code)


def test_max_and_min_of_three_arguments_nest():
    xy = "((x) > (y) ? (x) : (y))"
    assert print_c(sp.Max(x, y, z)) == f"(({xy}) > (z) ? ({xy}) : (z))"
    one_x = "((1.0F) < (x) ? (1.0F) : (x))"
    assert print_c(sp.Min(x, y, 1)) == f"(({one_x}) < (y) ? ({one_x}) : (y))"


@pytest.mark.parametrize(
    "expr, expected",
    [
        (x**2, "(x*x)"),
        (x**3, "(x*x*x)"),
        (x**4, "(x*x*x*x)"),
        (x**-1, "(1.0F/(x))"),
        (x**-2, "(1.0F/(x*x))"),
        (x**-3, "(1.0F/(x*x*x))"),
        ((x + y) ** 2, "((x + y)*(x + y))"),
        (y / x**2, "y/(x*x)"),  # a product in a denominator stays one operand
    ],
    ids=str,
)
def test_small_integer_powers_are_expanded_into_products(expr, expected):
    code = print_c(expr)
    assert code == expected
    assert "pow" not in code


def test_expanded_powers_keep_their_meaning_numerically():
    vals = {"x": np.float32(1.7), "y": np.float32(-0.3)}
    exprs = [x**2, x**3, x**4, x**-2, (x + y) ** 2, (x - y) ** -3, 2 * x**2 * y]
    # powers in a denominator (e.g. the derivative of exp(-dt/tau) by tau): once printed a/x*x
    exprs += [y / x**2, y * sp.exp(-x) / x**2, 1 / (1 + x * y) ** 2, x / (y**2 * x**3)]
    for expr in exprs:
        code = print_c(expr).replace("F", "")
        got = eval(code, {"expf": np.exp}, dict(vals))  # our printer's arithmetic, never user text
        want = float(expr.subs({x: 1.7, y: -0.3}))
        assert got == pytest.approx(want, rel=1e-6), (expr, code)


def test_piecewise_prints_as_a_ternary():
    pw = sp.Piecewise((x, x > 0), (y, True))
    assert print_c(pw) == "((x > 0.0F) ? (x) : (y))"
    nested = sp.Piecewise((1, x > y), (2, x > 0), (0, True))
    code = print_c(nested)
    assert code.count("?") == 2 and code.count(":") == 2
    assert_float32_only(code)
    both = print_c(sp.Piecewise((1, (x > 0) & (y <= 0)), (0, True)))
    # nested selects, not '&&': branch-free, so the neuron loop vectorises
    assert "&&" not in both and both.count("?") == 2
    with pytest.raises(ValueError, match="final"):
        print_c(sp.Piecewise((x, x > 0)))


def test_symbols_are_renamed_by_the_printer_table():
    assert print_c(x * y + 1, names={"x": "v[j]"}) == "v[j]*y + 1.0F"


def test_print_block_declares_and_shares_subexpressions():
    lines = print_block([("a", sp.exp(-x) * y + sp.exp(-x)), ("b", 2 * sp.exp(-x))], declare={"a"})
    assert lines[0].startswith("const float _cse0 = expf(")
    assert lines[1].startswith("float a = ") and lines[2].startswith("b = ")
    for line in lines:
        assert_float32_only(line)


@pytest.mark.parametrize(
    "text",
    [
        "sigmoid(v)",
        "gamma / v_th * max(0, 1 - abs(margin) / v_th)",
        "exp(-v / 2) + log(1 + v**2) + sqrt(abs(v)) + tanh(v) * pi",
        "v**-2 + v**3 - 0.001 * v + 1e-10",
        "min(v, 1) ** 0.7 + sin(v) * cos(v)",
    ],
)
def test_equation_strings_print_as_float32_c(text):
    expr = parse_expr(text, {"v", "v_th", "gamma", "margin"}, "test")
    assert_float32_only(print_c(expr), text)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_values_beyond_float32_range_are_refused_not_printed_as_inf():
    # 1e39 has no float32 value; printing it must fail loudly instead of writing "inf.0F"
    # (invalid C) or an infinity.
    for big in (sp.Float(1e39), sp.Integer(2**200), sp.Float(-3.5e38)):
        with pytest.raises(ValueError):
            print_c(big * x)


# ------------------------------------------------------------------------ generated sources
def alif_network() -> snncc.Network:
    """A realistic network: heterogeneous ALIF with refractoriness, a LIF layer, a readout."""
    net = snncc.Network(dt=1.0, seed=1)
    inp = net.add_input("input", 20)
    hid = net.add_population(
        "hidden", 32, neurons.ALIF(tau_m=np.linspace(10.0, 30.0, 32), refractory=5.0)
    )
    lif = net.add_population("lif", 8, neurons.LIF(tau_m=15.0))
    out = net.add_population("output", 3, neurons.LeakyIntegrator(tau=20.0, bias=0.1))
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 0.3))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 0.1), allow_self=False)
    net.connect(hid, lif, name="hid_lif", weight=init.Uniform(0.0, 0.2), p=0.3)
    net.connect(lif, hid, name="lif_hid", weight=0.05)
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 0.1))
    return net


def function_zoo_network() -> snncc.Network:
    """Every allowed function and awkward constants, in the parts of a model printed per step."""
    net = snncc.Network(dt=0.5)
    net.add_input("input", 4)
    model = snncc.NeuronModel(
        name="PrinterZoo",
        params={"tau": 20.0, "v_th": 0.6, "g": 0.25},
        state={"v": 0.0, "w": 0.1},
        dynamics=["dv/dt = (-v + w / 3) / tau", "dw/dt = -w / (2 * tau)"],
        reset={"v": "v - v_th * exp(-abs(w)) + pi * 1e-10", "w": "max(w, 0) ** 3 + min(v, 1)"},
        on_spike={"w": "w + sqrt(abs(v)) + log(1 + v**2) + tanh(v) * 0.001"},
        input={"v": "g * I_syn * sigmoid(v) + sin(v) * cos(w) / 7 + v**-2 * 1e-12"},
        threshold="v >= v_th + 0.5 * w",
        refractory=2.0,
        surrogate="g * max(0, 1 - abs(margin) / v_th)",
    )
    net.add_population("zoo", 6, model)
    net.connect("input", "zoo", weight=0.4)
    return net


def _training(which: str) -> dict:
    """generate() arguments that add the eProp training kernels (skipped if not available)."""
    rules = pytest.importorskip("snncc.rules")
    optim = pytest.importorskip("snncc.runtime.optim")
    if which == "adam":
        return {
            "rule": rules.EProp(readout="output", feedback="random"),
            "optimizer": optim.Adam(1e-3),
        }
    return {
        "rule": rules.EProp(
            readout="output", feedback="random", strategy="online", regularizer="sequence",
            weight_clamp=1.0,
        ),
        "optimizer": optim.SGD(0.01),
    }  # fmt: skip


NETWORKS = {
    "alif": (alif_network, None),
    "zoo": (function_zoo_network, None),
    "alif+eprop-adam": (alif_network, "adam"),
    "alif+eprop-online-sgd": (alif_network, "sgd"),
}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def cpu_sources(request):
    build, training = NETWORKS[request.param]
    extra = _training(training) if training else {}
    return request.param, snncc.generate(build(), "cpu", batch_size=4, **extra)


def test_generated_cpu_source_has_no_double(cpu_sources):
    which, sources = cpu_sources
    assert sources
    for name, src in sources.items():
        assert_float32_only(src, f"{which}: {name}")


def test_generated_source_carries_the_equations_as_comments(cpu_sources):
    which, sources = cpu_sources
    text = "\n".join(sources.values())
    comments = "\n".join(re.findall(r"//[^\n]*", text))
    if which.startswith("alif"):
        for eq in [
            "dv/dt = -v / tau_m",
            "da/dt = -a / tau_a",
            "reset: v = v - v_th",
            "on_spike: a = a + 1",
            "threshold:",
            "refractory 5.0 ms",
        ]:
            assert eq in comments, eq
    else:
        for eq in ["dv/dt = (-v + w / 3) / tau", "dw/dt = -w / (2 * tau)", "reset: w = max(w, 0)"]:
            assert eq in comments, eq


def _gxx_syntax_check(src: str, path) -> subprocess.CompletedProcess:
    path.write_text(src)
    cmd = [
        shutil.which("g++"), "-fsyntax-only", "-std=c++17", "-fopenmp",
        "-Wdouble-promotion", "-Werror=double-promotion",
        "-Wfloat-conversion", "-Werror=float-conversion",
        str(path),
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_generated_cpu_source_compiles_without_double_promotion(cpu_sources, tmp_path):
    which, sources = cpu_sources
    for name, src in sources.items():
        proc = _gxx_syntax_check(src, tmp_path / name)
        assert proc.returncode == 0, f"{which}: {name}:\n{proc.stderr}"
        assert "double" not in proc.stderr, proc.stderr


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_the_gxx_check_would_catch_a_double(tmp_path):
    src = "float f(float a) { return a * 0.5; }\n"
    proc = _gxx_syntax_check(src, tmp_path / "promote.cpp")
    assert proc.returncode != 0 and "double" in proc.stderr


def test_generated_cuda_source_has_no_double():
    try:
        sources = snncc.generate(alif_network(), "cuda", batch_size=4)
    except jinja2.TemplateNotFound:
        pytest.skip("CUDA templates not written yet")
    for name, src in sources.items():
        assert_float32_only(src, name)


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_euler_ode_source_declares_every_symbol(tmp_path):
    # A non-linear ODE is integrated with Euler; its update keeps dt (and parameters) in the
    # expression, so the kernel must define them.
    net = snncc.Network(dt=0.5)
    net.add_input("input", 2)
    model = snncc.NeuronModel(
        "QuadraticIF",
        params={"tau": 10.0, "v_c": 0.5},
        state={"v": 0.0},
        dynamics=["dv/dt = v * (v - v_c) / tau"],
        input={"v": "I_syn"},
        threshold="v > 1",
        reset={"v": "0"},
        integration="euler",
    )
    net.add_population("qif", 3, model)
    net.connect("input", "qif", weight=0.3)
    src = snncc.generate(net, "cpu", batch_size=2)["network.cpp"]
    assert_float32_only(src)
    proc = _gxx_syntax_check(src, tmp_path / "network.cpp")
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------- user names meet generated names
def _named_model_run(names: dict[str, str]) -> np.ndarray:
    """Simulate one model whose parameter names come from ``names`` (canonical -> used)."""
    tau, g = names["tau"], names["g"]
    net = snncc.Network(dt=1.0)
    net.add_input("input", 2)
    model = snncc.NeuronModel(
        "Names_" + "_".join(names.values()),
        params={tau: 10.0, g: 0.7},
        state={"v": 0.0},
        dynamics=[f"dv/dt = -v / {tau}"],
        input={"v": f"I_syn * {g}"},
        threshold=f"v > {g}",
        reset={"v": "0"},
    )
    net.add_population("pop", 3, model)
    net.connect("input", "pop", weight=0.5)
    m = snncc.compile(net, batch_size=4)
    x = np.zeros((4, 20, 2), np.uint8)
    x[:, ::3, 0] = 1
    x[1:, 1::4, 1] = 1
    rec = m.run(x, record=["pop.v", "pop"])
    return np.concatenate([rec["pop.v"], rec["pop"]], axis=-1)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
@pytest.mark.parametrize("name", ["b", "t", "j", "T", "bn", "p", "v_decay"])
def test_parameter_names_cannot_collide_with_generated_names(name):
    # A parameter called b (Izhikevich's a, b, c, d!) must not shadow the batch index, one
    # called v_decay must not be overwritten by the hoisted constant of dv/dt, and p must not
    # shadow the buffer table (C keywords are refused where they are declared).
    ref = _named_model_run({"tau": "tau", "g": "g"})
    got = _named_model_run({"tau": "tau", "g": name})
    np.testing.assert_array_equal(got, ref)
