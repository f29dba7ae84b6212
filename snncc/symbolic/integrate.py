"""Neuron ODEs -> one discrete step (DiscreteUpdate), as sympy.

Linear ODE systems dX/dt = A X + b (b may hold I_syn, held constant over the step) are solved
exactly with the matrix exponential of the augmented system [[A, b], [0, 0]] dt. Non-linear ones
fall back to forward Euler with a warning, or use the method the model names. Coefficients that
depend only on (non-trainable) parameters and dt are hoisted out as named constants, computed once
per population on the host (per neuron where a parameter is heterogeneous).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import sympy as sp

from snncc.errors import ModelError
from snncc.model.equations import symbol
from snncc.model.neuron import NeuronModel

DT = symbol("dt")
I_SYN = symbol("I_syn")
#: The neuron's own spike of the previous step (0 or 1), and its refractory countdown (steps).
SPIKE_PREV = symbol("_z")
REFRAC = symbol("_refrac")


@dataclass
class Statement:
    """``target = expr``; ``kind`` is decay, reset, on_spike or input; ``source`` the equation."""

    target: str
    expr: sp.Expr
    kind: str
    source: str

    def __str__(self) -> str:
        return f"{self.target} <- {self.expr}    # {self.kind}: {self.source}"


@dataclass
class DiscreteUpdate:
    """One time step of a neuron model, ready for differentiation and printing."""

    model: str
    method: str
    states: list[str]
    params: list[str]
    constants: dict[str, sp.Expr] = field(default_factory=dict)
    decay: list[Statement] = field(default_factory=list)  # applied simultaneously
    spike_effects: list[Statement] = field(default_factory=list)  # reset, on_spike, input
    margin: sp.Expr | None = None
    surrogate: sp.Expr | None = None
    spike: sp.Expr | None = None  # 1 or 0, refractoriness included
    psi: sp.Expr | None = None  # the surrogate, 0 while refractory
    refractory_steps: int = 0
    output: str | None = None

    @property
    def statements(self) -> list[Statement]:
        return self.decay + self.spike_effects

    def state_update(self) -> dict[str, sp.Expr]:
        """h^t as a function of h^{t-1}, the previous spike ``_z`` and ``I_syn``, in one piece."""
        h = {s: symbol(s) for s in self.states}
        h = {st.target: st.expr.xreplace(h) for st in self.decay} | {
            s: h[s] for s in self.states if s not in {st.target for st in self.decay}
        }
        for st in self.spike_effects:
            h[st.target] = st.expr.xreplace({symbol(s): h[s] for s in self.states})
        return h

    def __str__(self) -> str:
        lines = [f"DiscreteUpdate of {self.model} (integration: {self.method})"]
        lines += [f"  const {k} = {v}" for k, v in self.constants.items()]
        lines += [f"  {st}" for st in self.statements]
        if self.spike is not None:
            lines.append(f"  spike <- {self.spike}")
        if self.psi is not None:
            lines.append(f"  psi <- {self.psi}")
        return "\n".join(lines)


def discretize(
    model: NeuronModel, dt: float = 1.0, trainable: set[str] | None = None
) -> DiscreteUpdate:
    """Derive the discrete update of ``model`` for time step ``dt`` (ms)."""
    trainable = set(model.trainable) if trainable is None else trainable
    odes = model.odes()
    text = model.ode_text()
    states = list(model.state)
    upd = DiscreteUpdate(
        model=model.name,
        method="none",
        states=states,
        params=list(model.params),
        output=model.output_var,
    )
    hoistable = {symbol(p) for p in model.params if p not in trainable} | {DT}
    if odes:
        new, upd.method = _integrate(model, odes)
        for var in odes:
            expr = _hoist_linear(new[var], var, states, hoistable, upd.constants)
            upd.decay.append(Statement(var, expr, "decay", f"{text[var]}  [{upd.method}]"))
    for kind in ("reset", "on_spike", "input"):
        for var, expr in model.assignments(kind).items():
            src = f"{var} = {getattr(model, kind)[var]}"
            if kind == "input":
                src = f"{var} += {model.input[var]}"
                # an input gain such as r * dt / tau is precomputed once, like a decay factor,
                # so a gain of exactly 1 multiplies exactly (NIR's r = tau / dt inputs)
                expr = _hoist_linear(symbol(var) + expr, var, states, hoistable, upd.constants)
            else:
                expr = sp.Piecewise((expr, SPIKE_PREV > 0), (symbol(var), True))
                expr = hoist(expr, hoistable, upd.constants)
            upd.spike_effects.append(Statement(var, expr, kind, src))
    cond = model.threshold_condition()
    if cond is not None:
        fires, upd.margin = cond  # the condition exactly as written, for bit-exact spikes
        surrogate = model.surrogate_expr()
        if surrogate is not None:
            surrogate = surrogate.xreplace({symbol("margin"): upd.margin})
            upd.surrogate = hoist(surrogate, hoistable, upd.constants)
        upd.psi = upd.surrogate
        n_ref = int(round(model.refractory / dt)) if model.refractory else 0
        if n_ref > 1:
            # spike at t-1 blocks steps t .. t+n_ref-2, so spikes are >= n_ref steps apart
            upd.refractory_steps = n_ref
            countdown = sp.Piecewise(
                (sp.Integer(n_ref - 1), SPIKE_PREV > 0), (sp.Max(REFRAC - 1, 0), True)
            )
            upd.spike_effects.insert(
                0,
                Statement("_refrac", countdown, "refractory", f"refractory {model.refractory} ms"),
            )
            fires = fires & (REFRAC <= 0)
            if upd.psi is not None:
                upd.psi = sp.Piecewise((upd.psi, REFRAC <= 0), (0, True))
        upd.spike = sp.Piecewise((1, fires), (0, True))
    return upd


def _integrate(model: NeuronModel, odes: dict[str, sp.Expr]) -> tuple[dict[str, sp.Expr], str]:
    states = [symbol(s) for s in odes]
    rhs = [odes[s.name] for s in states]
    all_states = {symbol(s) for s in model.state}
    linear = all(
        not (sp.diff(f, x).free_symbols & all_states) for f in rhs for x in all_states
    ) and all(not f.has(sp.Piecewise, sp.Max, sp.Min, sp.Abs) for f in rhs)
    method = model.integration
    if method == "symplectic_euler":
        return _explicit(states, rhs, method), method
    if method == "auto":
        if linear:
            method = "exact"
        else:
            method = "euler"
            warnings.warn(
                f"neuron model '{model.name}': the ODEs are not linear in the state, so they are "
                "integrated with forward Euler; pass integration='rk4' or 'midpoint' for more "
                "accuracy",
                stacklevel=4,
            )
    if method == "exact":
        if not linear:
            raise ModelError(
                f"neuron model '{model.name}': integration='exact' needs ODEs linear in the "
                "state; use 'euler', 'midpoint' or 'rk4'"
            )
        return _exact(states, rhs), method
    return _explicit(states, rhs, method), method


def _exact(states: list[sp.Symbol], rhs: list[sp.Expr]) -> dict[str, sp.Expr]:
    n = len(states)
    A = sp.Matrix([[sp.diff(f, x) for x in states] for f in rhs])
    b = sp.Matrix([f.xreplace({x: 0 for x in states}) for f in rhs])
    if A.is_diagonal():
        # decoupled states: x' = e^{a dt} x + b (e^{a dt} - 1) / a  (x + b dt when a = 0)
        out = {}
        for i, x in enumerate(states):
            a = A[i, i]
            if a == 0:
                out[x.name] = x + b[i] * DT
            else:
                out[x.name] = sp.exp(a * DT) * x + b[i] * (sp.exp(a * DT) - 1) / a
        return out
    M = sp.zeros(n + 1, n + 1)
    M[:n, :n] = A * DT
    M[:n, n] = b * DT
    E = sp.simplify(M.exp())
    X = sp.Matrix(states + [1])
    new = E * X
    return {x.name: sp.simplify(new[i]) for i, x in enumerate(states)}


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge-Kutta method as data (Butcher tableau): stage k evaluates the ODEs at
    x + dt * sum_m a[k][m] k_m; the step is x + dt * sum_k b[k] k_k."""

    a: tuple[tuple[sp.Rational, ...], ...]
    b: tuple[sp.Rational, ...]


_H = sp.Rational(1, 2)
#: The explicit methods, applied by one generic machine (``_runge_kutta``).
TABLEAUS = {
    "euler": Tableau(((),), (1,)),
    "midpoint": Tableau(((), (_H,)), (0, 1)),
    "rk4": Tableau(
        ((), (_H,), (0, _H), (0, 0, 1)),
        (sp.Rational(1, 6), sp.Rational(1, 3), sp.Rational(1, 3), sp.Rational(1, 6)),
    ),
}


def _explicit(states: list[sp.Symbol], rhs: list[sp.Expr], method: str) -> dict[str, sp.Expr]:
    if method == "symplectic_euler":
        return _symplectic(states, rhs)
    return _runge_kutta(states, rhs, TABLEAUS[method])


def _runge_kutta(states: list[sp.Symbol], rhs: list[sp.Expr], tab: Tableau) -> dict[str, sp.Expr]:
    def f(values: list[sp.Expr]) -> list[sp.Expr]:
        sub = dict(zip(states, values, strict=True))
        return [r.xreplace(sub) for r in rhs]

    ks: list[list[sp.Expr]] = []
    for row in tab.a:
        at = [
            x + DT * sum((c * k[i] for c, k in zip(row, ks, strict=False) if c), sp.Integer(0))
            for i, x in enumerate(states)
        ]
        ks.append(f(at))
    new = [
        x + DT * sum((c * k[i] for c, k in zip(tab.b, ks, strict=True) if c), sp.Integer(0))
        for i, x in enumerate(states)
    ]
    return {s.name: e for s, e in zip(states, new, strict=True)}


def _symplectic(states: list[sp.Symbol], rhs: list[sp.Expr]) -> dict[str, sp.Expr]:
    """Symplectic Euler: the ODEs in declaration order, each from the new values of the states
    before it and the old values of those after it. Each equation's own linear decay
    (dx/dt = a x + r, a free of x) is taken exactly, x' = e^{a dt} x + (e^{a dt} - 1)/a r,
    which is how SE-adLIF (Baronig et al. 2024) steps the adaptive LIF; otherwise Euler."""
    new: dict[sp.Symbol, sp.Expr] = {}
    for x, f in zip(states, rhs, strict=True):
        a = sp.diff(f, x)
        if a != 0 and not a.has(*states):  # linear in x: its own decay exactly
            decay = sp.exp(a * DT)
            step = decay * x + (decay - 1) / a * sp.expand(f - a * x)
        else:
            step = x + DT * f
        # the states before x enter at their new values, held over the step like I_syn
        new[x] = step.xreplace(new)
    return {s.name: new[s] for s in states}


def _hoist_linear(
    expr: sp.Expr,
    var: str,
    states: list[str],
    hoistable: set[sp.Symbol],
    constants: dict[str, sp.Expr],
) -> sp.Expr:
    """Write ``expr`` as sum(k * x) + k_in * I_syn + k0, hoisting each parameter-only k."""
    expr = sp.expand(expr)
    terms = [symbol(s) for s in states] + [I_SYN]
    if not expr.is_polynomial(*terms) or sp.Poly(expr, *terms).total_degree() > 1:
        return hoist(expr, hoistable, constants)
    out = sp.Integer(0)
    for term in terms + [sp.Integer(1)]:
        coeff = expr.coeff(term) if term != 1 else expr.xreplace({t: 0 for t in terms})
        coeff = sp.simplify(coeff)
        if coeff == 0:
            continue
        if coeff.free_symbols <= hoistable and not (coeff.is_Atom):
            name = (
                f"{var}_decay"
                if term == symbol(var)
                else f"{var}_const"
                if term == 1
                else f"{var}_from_{term}"
            )
            taken = {s.name for s in hoistable} | set(states) | set(constants)
            while name in taken:  # never shadow a user parameter of the same name
                name = "_" + name
            constants[name] = coeff
            coeff = symbol(name)
        else:
            coeff = hoist(coeff, hoistable, constants)
        out += coeff * term
    return out


def hoist(expr: sp.Expr, hoistable: set[sp.Symbol], constants: dict[str, sp.Expr]) -> sp.Expr:
    """Replace parameter-only subexpressions holding a function (exp, log...) by constants."""
    if expr.is_Atom:
        return expr
    if expr.free_symbols <= hoistable and _costly(expr):
        for name, value in constants.items():
            if value == expr:
                return symbol(name)
        name = f"_k{len(constants)}"
        constants[name] = expr
        return symbol(name)
    return expr.func(*[hoist(a, hoistable, constants) for a in expr.args])


def _costly(expr: sp.Expr) -> bool:
    return any(
        isinstance(e, sp.Function) or (isinstance(e, sp.Pow) and not e.exp.is_Integer)
        for e in sp.preorder_traversal(expr)
    )
