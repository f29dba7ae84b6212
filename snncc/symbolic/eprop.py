"""eProp, derived symbolically from a neuron's discrete update (Bellec et al. 2020, Methods).

For hidden state h with update h^t = M(h^{t-1}, z^{t-1}, I^t) the eligibility vector of synapse
i->j follows eps^t = D^t eps^{t-1} + c^t s_i^t with

    D^t = dM/dh^{t-1}   (the reset's spike held constant; on_spike effects keep their gradient
                         through the surrogate: dz^{t-1}/dh^{t-1} = psi^{t-1} dmargin/dh)
    c^t = dM/dI^t       (how a unit of synaptic input enters the state)
    g^t = dz^t/dh^t = psi^t dmargin/dh^t,   e^t = g^t . eps^t

The rule on top is written as sympy as well (``RuleEquations``): the eligibility filter
ebar = filter_decay ebar + filter_gain e, the learning signal L = B E, the regulariser R, and the
accumulation dW += L ebar + R e. Because every coefficient is per neuron, the same equations also
give the factorised ("adjoint") form used when weights change once per batch:

    Lb^t = filter_gain L^t + filter_decay Lb^{t+1}
    lam^t = (Lb^t + R^t) g^t + lam^{t+1} D^{t+1},   Q^t = lam^t . c^t,   dW_ij = sum_t s_i^t Q_j^t
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from snncc.errors import ModelError
from snncc.model.equations import parse_expr, symbol
from snncc.model.values import check_number
from snncc.symbolic.integrate import I_SYN, SPIKE_PREV, DiscreteUpdate

#: The differentiable copy of the previous spike, used by on_spike effects.
SPIKE_GRAD = symbol("_zs")
PSI = symbol("psi")
PSI_PREV = symbol("_psi_prev")


def prev(name: str) -> sp.Symbol:
    """Symbol of state ``name`` at step t-1."""
    return symbol(f"{name}_prev")


@dataclass
class TraceSystem:
    """Per-neuron coefficients of the eligibility recursion of one population.

    In ``D`` and ``c`` a state ``x`` appears as ``x_prev`` (its value at t-1), ``_z`` is the spike
    at t-1, ``_psi_prev`` the surrogate at t-1 and ``I_syn`` the input at t. In ``g`` states and
    ``psi`` are at step t.
    """

    population: str
    model: str
    states: list[str]
    D: sp.Matrix
    c: sp.Matrix
    g: sp.Matrix
    param_c: dict[str, sp.Matrix] = field(default_factory=dict)  # dM/dp for trainable p
    param_g: dict[str, sp.Expr] = field(default_factory=dict)  # psi dmargin/dp (spiking)

    def __str__(self) -> str:
        lines = [f"eligibility traces of '{self.population}' ({self.model}), state {self.states}"]
        for k, s in enumerate(self.states):
            row = " + ".join(
                f"({self.D[k, m]})*eps_{self.states[m]}"
                for m in range(len(self.states))
                if self.D[k, m] != 0
            )
            cterm = f" + ({self.c[k]})*s" if self.c[k] != 0 else ""
            lines.append(f"  eps_{s} <- {row or '0'}{cterm}")
        e = " + ".join(
            f"({self.g[k]})*eps_{s}" for k, s in enumerate(self.states) if self.g[k] != 0
        )
        lines.append(f"  e = {e or '0'}")
        for p, col in self.param_c.items():
            lines.append(f"  d{self.states[0]}/d{p} source: {list(col)}")
        return "\n".join(lines)


def derive_traces(
    population: str, upd: DiscreteUpdate, output: str | None = None, trainable: tuple[str, ...] = ()
) -> TraceSystem:
    """Jacobians of ``upd`` -> TraceSystem. ``output`` marks a non-spiking readout (g = e_out)."""
    states = list(upd.states)
    h = [symbol(s) for s in states]
    # sequential statements -> one expression per state in terms of the state at t-1
    cur = {x: x for x in h}
    new = {st.target: st.expr.xreplace(cur) for st in upd.decay}
    cur = {**cur, **{symbol(k): v for k, v in new.items()}}
    for st in upd.spike_effects:
        if st.target == "_refrac":
            continue
        expr = st.expr
        if st.kind == "on_spike":
            # x <- x + z (effect - x): smooth in the spike, whose gradient flows via psi
            x, effect = symbol(st.target), st.expr.args[0].expr
            expr = x + SPIKE_GRAD * (effect - x)
        cur[symbol(st.target)] = expr.xreplace(cur)
    M = [sp.piecewise_fold(cur[x]) for x in h]
    rename = {x: prev(x.name) for x in h}
    if upd.margin is not None:
        dmargin = [sp.diff(upd.margin, x) for x in h]
    else:
        dmargin = [sp.Integer(0)] * len(h)
    n = len(h)
    D = sp.zeros(n, n)
    for k in range(n):
        dzs = _diff(M[k], SPIKE_GRAD)
        for m in range(n):
            d = _diff(M[k], h[m])
            if dzs != 0:
                d += dzs * PSI_PREV * dmargin[m]
            D[k, m] = _tidy(d.xreplace({SPIKE_GRAD: SPIKE_PREV}).xreplace(rename))
    c = sp.Matrix(
        [
            _tidy(_diff(M[k], I_SYN).xreplace({SPIKE_GRAD: SPIKE_PREV}).xreplace(rename))
            for k in range(n)
        ]
    )
    if output is not None:
        g = sp.Matrix([1 if s == output else 0 for s in states])
    else:
        if upd.psi is None:
            raise ModelError(
                f"population '{population}' ({upd.model}): eProp needs a surrogate "
                "(pseudo-derivative) on its neuron model; pass surrogate=... to NeuronModel"
            )
        g = sp.Matrix([_tidy(PSI * dm) for dm in dmargin])
    param_c, param_g = {}, {}
    for p in trainable:
        col = []
        for k in range(n):
            d = _diff(M[k], symbol(p))
            dzs = _diff(M[k], SPIKE_GRAD)
            if dzs != 0 and upd.margin is not None:  # p moved the spike of t-1 (its margin)
                d += dzs * PSI_PREV * sp.diff(upd.margin, symbol(p)).xreplace(rename)
            col.append(_tidy(d.xreplace({SPIKE_GRAD: SPIKE_PREV}).xreplace(rename)))
        param_c[p] = sp.Matrix(col)
        if output is None:  # the spike also depends on p directly, through the threshold
            param_g[p] = _tidy(PSI * sp.diff(upd.margin, symbol(p)))
    return TraceSystem(population, upd.model, states, D, c, g, param_c, param_g)


def _diff(expr: sp.Expr, x: sp.Symbol) -> sp.Expr:
    return sp.piecewise_fold(sp.diff(expr, x))


def _tidy(expr: sp.Expr) -> sp.Expr:
    """Simplify Piecewise branches that became equal after differentiation."""
    expr = sp.piecewise_fold(expr)
    if isinstance(expr, sp.Piecewise):
        values = {sp.simplify(a.expr) for a in expr.args}
        if len(values) == 1:
            return values.pop()
    return sp.simplify(expr) if expr.count_ops() < 40 else expr


# ---------------------------------------------------------------------------- the rule
@dataclass
class RuleEquations:
    """The rule's own equations (everything but the neuron Jacobians), as sympy."""

    filter_decay: sp.Expr  # ebar <- filter_decay * ebar + filter_gain * e
    filter_gain: sp.Expr
    reg_state: sp.Expr | None  # f <- reg_state (moving average), in f, z, dt, params
    reg_signal: sp.Expr  # R in terms of f (moving) or n_spikes, T (sequence)
    reg_mode: str
    traces: dict[str, TraceSystem] = field(default_factory=dict)
    readout_traces: TraceSystem | None = None

    def __str__(self) -> str:
        lines = ["eProp rule equations"]
        for ts in self.traces.values():
            lines += ["  " + ln for ln in str(ts).splitlines()]
        lines.append(f"  ebar <- ({self.filter_decay})*ebar + ({self.filter_gain})*e")
        lines.append("  L_j = sum_k B[j,k] E_k")
        if self.reg_state is not None:
            lines.append(f"  f <- {self.reg_state}")
        lines.append(f"  R = {self.reg_signal}   ({self.reg_mode} regulariser)")
        lines.append("  dW[i,j] += L_j*ebar_ij + R_j*e_ij")
        if self.readout_traces is not None:
            lines.append("  readout (exact):")
            lines += ["    " + ln for ln in str(self.readout_traces).splitlines()]
            lines.append("    dW_out[j,k] += E_k * zk_jk")
            for param in self.readout_traces.param_c:
                lines.append(f"    d{param}_k += E_k * (trace of d{param})_k")
        return "\n".join(lines)


RULE_SYMBOLS = {"kappa", "dt", "tau_reg", "c_reg", "f_target", "f", "z", "n_spikes", "T"}


def rule_equations(
    filter_decay: str, filter_gain: str, reg_mode: str, reg_state: str | None, reg_signal: str
) -> RuleEquations:
    names = RULE_SYMBOLS
    fd = parse_expr(filter_decay, names, "EProp filter_decay")
    fg = parse_expr(filter_gain, names, "EProp filter_gain")
    rs = parse_expr(reg_state, names, "EProp reg_state") if reg_state else None
    rsig = parse_expr(reg_signal, names, "EProp reg_signal")
    return RuleEquations(fd, fg, rs, rsig, reg_mode)


# ----------------------------------------------------------------------- user options
LOSSES = ("cross_entropy", "mse")
DECISIONS = ("sum", "max", "last")


@dataclass
class RuleOptions:
    """Options every gradient rule shares (see EProp and BPTT for their meaning)."""

    readout: str = "output"
    regularizer: str = "moving"
    c_reg: float = 0.0
    f_target: float = 10.0
    tau_reg: float = 500.0
    reg_state: str | None = None
    reg_signal: str | None = None
    loss: str = "cross_entropy"
    decision: str = "sum"
    error_start: int = 0
    weight_clamp: float | tuple[float, float] | None = None
    train_bias: bool = True
    average_gradient: bool = False

    #: eProp's learning signal is fed back through B; an exact rule's is the true adjoint
    exact = False

    def _one_of(self, name: str, options: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in options:
            raise ModelError(
                f"{type(self).__name__}: {name}={value!r} is not one of {', '.join(options)}"
            )

    def __post_init__(self) -> None:
        self._one_of("regularizer", ("moving", "sequence", "none"))
        self._one_of("loss", LOSSES)
        self._one_of("decision", DECISIONS)
        name = type(self).__name__
        if not isinstance(self.readout, str):
            raise ModelError(
                f"{name}: readout must be the name of the readout population, got {self.readout!r}"
            )
        check_number(self.c_reg, f"{name}: c_reg", minimum=0)
        check_number(self.f_target, f"{name}: f_target (Hz)", minimum=0)
        check_number(self.tau_reg, f"{name}: tau_reg (ms)", minimum=0, exclusive=True)
        check_number(self.error_start, f"{name}: error_start", minimum=0, integer=True)
        for flag in ("train_bias", "average_gradient"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise ModelError(
                    f"{name}: {flag} must be True or False, got {getattr(self, flag)!r}"
                )
        self.weight_clamp = _clamp(self.weight_clamp, name)
        self.equations()  # parse early: a bad string fails here, naming the option

    def _regulariser(self) -> tuple[str, str | None, str]:
        """(mode, state equation, signal equation) of the firing-rate regulariser."""
        if self.c_reg == 0 and self.reg_signal is None:
            # the default signals scale with c_reg: with c_reg = 0 there is no regulariser, and
            # no history of it (it would be all zeros: 718 MB at SHD's batch 512, T = 1370)
            return "none", None, "0"
        if self.regularizer == "moving":
            state = self.reg_state or "exp(-dt/tau_reg)*f + (1 - exp(-dt/tau_reg))*z"
            return "moving", state, self.reg_signal or "c_reg*(f - f_target)"
        if self.regularizer == "sequence":
            return "sequence", None, self.reg_signal or "c_reg*(n_spikes/T - f_target)/T"
        return "none", None, "0"


@dataclass
class EProp(RuleOptions):
    """eProp options. Every modelling choice of Bellec et al. is an option, none hard-coded.

    Args:
        readout: name of the readout population (non-spiking, e.g. LeakyIntegrator).
        feedback: "symmetric" (B = W_out) or "random" (a fixed B ~ Normal(0, 1/sqrt(n_hidden))).
        filter_decay, filter_gain: the eligibility filter ebar <- decay*ebar + gain*e, in terms
            of ``kappa`` (the readout's decay); gain "1" (mlGeNN) or "1 - kappa" (Bellec).
        regularizer: "moving" (moving average f with tau_reg), "sequence" (spike count per
            sequence, Bellec) or "none"; strength c_reg (0: no regulariser); f_target in Hz.
        reg_state, reg_signal: override the regulariser's equations (strings in f, z, dt,
            tau_reg, c_reg, f_target; for "sequence" in n_spikes and T).
        loss: "cross_entropy" (per time step, softmax) or "mse" (targets per step).
        decision: how predictions are read: "sum" (argmax of summed softmax), "max", "last".
        error_start: the error counts only from this step on.
        weight_clamp: None, a bound c (|w| <= c) or (low, high), applied after each step.
        train_bias: train the readout's trainable parameters (its bias) too. A hidden
            population's own trainable parameters (``NeuronModel(trainable=...)``) are always
            trained.
        strategy: "auto", "factorized" (exact adjoint over the sequence, O(B T N) memory) or
            "online" (per-synapse traces, memory constant in T).
        seed: seed of the random feedback matrix.
        average_gradient: divide the gradients by the number of steps the error counts
            (T - error_start), as NEST's e-prop models do; off: summed over time (mlGeNN).
    """

    feedback: str = "symmetric"
    filter_decay: str = "kappa"
    filter_gain: str = "1"
    strategy: str = "auto"
    seed: int = 1234

    def __post_init__(self) -> None:
        self._one_of("feedback", ("symmetric", "random"))
        self._one_of("strategy", ("auto", "factorized", "online"))
        check_number(self.seed, "EProp: seed", minimum=0, integer=True)
        super().__post_init__()

    def equations(self) -> RuleEquations:
        mode, state, signal = self._regulariser()
        return rule_equations(self.filter_decay, self.filter_gain, mode, state, signal)


def _clamp(clamp: object, rule: str) -> tuple[float, float] | None:
    """weight_clamp as (low, high): None, a bound c > 0 for |w| <= c, or a pair low < high."""
    usage = "give None, a bound c > 0 (|w| <= c) or a pair (low, high) with low < high"
    if clamp is None:
        return None
    if isinstance(clamp, numbers.Real) and not isinstance(clamp, (bool, np.bool_)):
        c = check_number(clamp, f"{rule}: weight_clamp", minimum=0, exclusive=True, hint=usage)
        return (-float(c), float(c))
    if not isinstance(clamp, (tuple, list)) or len(clamp) != 2:
        raise ModelError(f"{rule}: weight_clamp={clamp!r} is not a bound or a pair; {usage}")
    low, high = (check_number(c, f"{rule}: weight_clamp", hint=usage) for c in clamp)
    if not low < high:
        raise ModelError(f"{rule}: weight_clamp={clamp!r} has low >= high; {usage}")
    return (float(low), float(high))
