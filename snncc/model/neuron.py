"""NeuronModel: a neuron written as sympy equations.

One simulation step of a neuron, at step t, runs in this order (eprop.md's convention):

1. ``dynamics``: the ODEs advance the state over dt (exactly when linear);
2. ``reset``: if the neuron spiked at t-1, these assignments apply. Their spike is *detached*
   (a constant) when learning rules differentiate the update, as in Bellec et al.;
3. ``on_spike``: assignments that also apply after a spike at t-1 but whose spike keeps its
   gradient through the surrogate (e.g. ALIF's adaptation ``a = a + 1``);
4. ``input``: synaptic input ``I_syn`` of step t is added (delta synapses), e.g. ``{"v": "I_syn"}``;
   a model may instead use ``I_syn`` inside its ODEs, held constant over the step;
5. ``threshold``: a condition such as ``"v > v_th"``; the spike of step t. The surrogate
   (pseudo-derivative dz/d(margin)) may use the symbol ``margin`` = left side - right side.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from snncc.errors import ModelError
from snncc.model.equations import FUNCTIONS, parse_expr, parse_ode, symbol
from snncc.model.names import check_name

#: The integration schemes (symbolic/integrate.py applies them; the model layer only names them).
INTEGRATION = ("auto", "exact", "euler", "midpoint", "rk4", "symplectic_euler")

#: Names the compiler provides; a model may use them but not declare them.
RESERVED = {"dt": "the time step", "I_syn": "the synaptic input", "margin": "threshold margin"}

Equation = str | sp.Basic


@dataclass
class NeuronModel:
    """A neuron model: parameters, state variables and sympy equations.

    Args:
        name: shown in errors and generated code.
        params: name -> default value; a 1-D array gives one value per neuron.
        state: name -> initial value.
        dynamics: ODEs, as strings (``"dv/dt = -v/tau_m"``) or ``sympy.Eq(Derivative(v, t), ...)``.
        threshold: spike condition (``"v > v_th"``), or None for a non-spiking neuron.
        reset: state -> new value after a spike (spike detached for learning).
        on_spike: state -> new value after a spike (spike differentiable through the surrogate).
        input: state -> increment it receives from ``I_syn`` at every step.
        refractory: refractory period in ms (no spike and zero surrogate while refractory).
        surrogate: pseudo-derivative of the spike w.r.t. ``margin``; needed for learning.
        trainable: per-neuron parameters a learning rule may train (e.g. a readout's bias).
        positive: parameters that must be > 0 (time constants, thresholds); checked wherever
            a value is set.
        integration: "auto" (exact if linear, else Euler with a warning), "exact", "euler",
            "midpoint", "rk4" or "symplectic_euler" (the ODEs in order, each from the new
            values of those before it; see symbolic/integrate.py).
        output: the state variable a readout exposes (defaults to the first state).
    """

    name: str
    params: Mapping[str, object] = field(default_factory=dict)
    state: Mapping[str, float] = field(default_factory=dict)
    dynamics: Sequence[Equation] = ()
    threshold: Equation | None = None
    reset: Mapping[str, Equation] = field(default_factory=dict)
    on_spike: Mapping[str, Equation] = field(default_factory=dict)
    input: Mapping[str, Equation] = field(default_factory=dict)
    refractory: float = 0.0
    surrogate: Equation | None = None
    trainable: Sequence[str] = ()
    positive: Sequence[str] = ()
    integration: str = "auto"
    output: str | None = None
    is_input: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 500:
            raise ModelError(
                f"NeuronModel: name {self.name!r} must be a non-empty string of at most 500 "
                "characters, e.g. 'CubaLIF'"
            )
        for kind in ("params", "state", "reset", "on_spike", "input"):
            if not isinstance(getattr(self, kind), Mapping):
                raise ModelError(
                    f"{self.where(kind)} must be a dict of name -> value, got "
                    f"{type(getattr(self, kind)).__name__}"
                )
        if isinstance(self.dynamics, (str, sp.Basic)) or not isinstance(self.dynamics, Sequence):
            raise ModelError(
                f'{self.where("dynamics")} must be a list of ODEs, e.g. ["dv/dt = -v/tau"], '
                "not "
                + (
                    "a single equation"
                    if isinstance(self.dynamics, (str, sp.Basic))
                    else repr(self.dynamics)
                )
            )
        for kind in ("trainable", "positive"):  # a string would be read letter by letter
            names = getattr(self, kind)
            if isinstance(names, str) or not isinstance(names, Sequence):
                example = [names] if isinstance(names, str) else ["tau_m"]
                raise ModelError(
                    f"{self.where(kind)} must be a list of parameter names, e.g. {example!r}, "
                    f"got {names!r}"
                )
        self.params = {k: _check_param(self.name, k, v) for k, v in dict(self.params).items()}
        self.state = {
            k: float(_check_param(self.name, k, v, "state variable"))
            for k, v in dict(self.state).items()
        }
        self.dynamics = list(self.dynamics)
        self.reset, self.on_spike, self.input = (
            dict(self.reset),
            dict(self.on_spike),
            dict(self.input),
        )
        self.trainable = tuple(self.trainable)
        self.positive = tuple(self.positive)
        self._validate()

    # ------------------------------------------------------------------ parsing
    def where(self, what: str) -> str:
        return f"neuron model '{self.name}', {what}"

    @property
    def symbols(self) -> set[str]:
        return set(self.params) | set(self.state) | set(RESERVED)

    def odes(self) -> dict[str, sp.Expr]:
        """State name -> right-hand side of its ODE."""
        out: dict[str, sp.Expr] = {}
        for i, eq in enumerate(self.dynamics):
            var, rhs = parse_ode(eq, self.symbols - {"margin"}, self.state, self.where(f"ODE #{i}"))
            if var in out:
                raise ModelError(
                    f"{self.where('dynamics')}: two ODEs for '{var}'; merge them into one equation"
                )
            out[var] = rhs
        return out

    def ode_text(self) -> dict[str, str]:
        """State name -> the equation as the user wrote it (for comments in generated code)."""
        return {var: str(eq) for var, eq in zip(self.odes(), self.dynamics, strict=True)}

    def assignments(self, kind: str) -> dict[str, sp.Expr]:
        """Parsed ``reset``, ``on_spike`` or ``input`` assignments."""
        table = getattr(self, kind)
        names = self.symbols - {"margin"}
        if kind != "input":
            names = names - {"I_syn"}
        out = {}
        for var, text in table.items():
            if var not in self.state:
                raise ModelError(
                    f"{self.where(kind)}: assignment to undeclared variable '{var}'. "
                    f"Declared state variables: {', '.join(self.state) or 'none'}."
                )
            out[var] = parse_expr(text, names, self.where(f"{kind} of '{var}'"))
        return out

    def threshold_condition(self) -> tuple[sp.Expr, sp.Expr] | None:
        """(condition, margin): the condition as written, and margin = lhs - rhs."""
        if self.threshold is None:
            return None
        cond = parse_expr(
            self.threshold, self.symbols - {"margin", "I_syn"}, self.where("threshold")
        )
        if not isinstance(cond, (sp.StrictGreaterThan, sp.GreaterThan)):
            raise ModelError(
                f"{self.where('threshold')}: expected a condition like 'v > v_th', got {cond}"
            )
        return cond, sp.expand(cond.lhs - cond.rhs)

    def surrogate_expr(self) -> sp.Expr | None:
        if self.surrogate is None:
            return None
        return parse_expr(self.surrogate, self.symbols - {"I_syn"}, self.where("surrogate"))

    # --------------------------------------------------------------- validation
    def _validate(self) -> None:
        for names, kind in ((self.params, "parameter"), (self.state, "state variable")):
            for n in names:
                check_name(n, self.where(kind))
                if n in RESERVED or n in FUNCTIONS or n == "pi":
                    raise ModelError(
                        f"{self.where(kind)}: '{n}' is reserved ({RESERVED.get(n, 'a function')});"
                        " rename it."
                    )
        both = set(self.params) & set(self.state)
        if both:
            raise ModelError(
                f"{self.where('declaration')}: '{sorted(both)[0]}' is both a "
                "parameter and a state variable"
            )
        self.odes()
        for kind in ("reset", "on_spike", "input"):
            self.assignments(kind)
        self.threshold_condition()
        self.surrogate_expr()
        for kind in ("trainable", "positive"):
            for p in getattr(self, kind):
                if p not in self.params:
                    raise ModelError(
                        f"{self.where(kind)}: '{p}' is not a parameter "
                        f"(parameters: {', '.join(self.params) or 'none'})"
                    )
        self._check_positive(self.params)
        if self.output is not None and self.output not in self.state:
            raise ModelError(f"{self.where('output')}: '{self.output}' is not a state variable")
        if (
            not isinstance(self.refractory, numbers.Real)
            or isinstance(self.refractory, bool)
            or not np.isfinite(self.refractory)
            or self.refractory < 0
        ):
            raise ModelError(
                f"{self.where('refractory')}: must be a finite time >= 0 in ms, got "
                f"{self.refractory!r}; give e.g. 2.0 (or 0.0 for none)"
            )
        if self.integration not in INTEGRATION:
            raise ModelError(
                f"{self.where('integration')}: unknown method '{self.integration}'; "
                f"use {', '.join(INTEGRATION)}"
            )

    def _check_positive(self, values: Mapping[str, object]) -> None:
        for p in self.positive:
            if p in values and not np.all(np.asarray(values[p]) > 0):
                bad = np.asarray(values[p]).reshape(-1)
                at = "" if bad.size == 1 else f" (index {int(np.argmax(~(bad > 0)))})"
                raise ModelError(
                    f"{self.where('parameter')} '{p}' must be > 0, got "
                    f"{float(bad[~(bad > 0)][0]):g}{at}; a time constant or threshold of zero "
                    "or below has no meaning (it would divide by zero or grow without bound)"
                )

    # ------------------------------------------------------------------ helpers
    @property
    def spiking(self) -> bool:
        return self.threshold is not None or self.is_input

    @property
    def output_var(self) -> str | None:
        return self.output or next(iter(self.state), None)

    def with_params(self, **params: object) -> NeuronModel:
        """A copy with some parameters changed (checked like the originals)."""
        unknown = set(params) - set(self.params)
        if unknown:
            raise ModelError(
                f"{self.where('parameters')}: unknown parameter '{sorted(unknown)[0]}' "
                f"(parameters: {', '.join(self.params)})"
            )
        checked = {k: _check_param(self.name, k, v) for k, v in params.items()}
        self._check_positive(checked)
        new = copy.copy(self)
        new.params = {**self.params, **checked}
        return new

    def __str__(self) -> str:
        lines = [f"NeuronModel {self.name}"]
        lines += [f"  param {k} = {_fmt(v)}" for k, v in self.params.items()]
        lines += [f"  state {k} = {v}" for k, v in self.state.items()]
        lines += [f"  {eq}" for eq in self.dynamics]
        for kind in ("reset", "on_spike", "input"):
            op = "+=" if kind == "input" else "="
            lines += [f"  {kind}: {k} {op} {v}" for k, v in getattr(self, kind).items()]
        if self.threshold is not None:
            lines.append(f"  threshold: {self.threshold}  (refractory {self.refractory} ms)")
        if self.surrogate is not None:
            lines.append(f"  surrogate: {self.surrogate}")
        return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, np.ndarray):
        return f"array(shape={v.shape}, min={v.min():g}, max={v.max():g})"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _check_param(
    model: str, name: str, value: object, kind: str = "parameter"
) -> float | np.ndarray:
    """Numbers stay floats, sequences become float64 arrays; anything else is an error.

    Nothing is coerced silently: bools, strings and complex numbers are rejected, not converted.
    """
    what = f"neuron model '{model}': {kind} '{name}'"
    if isinstance(value, (bool, np.bool_)):
        raise ModelError(f"{what} must be a number, got bool {value!r}; give e.g. 1.0 or 0.0")
    if isinstance(value, (str, bytes)):
        raise ModelError(f"{what} must be a number, got the string {value!r}; give a number")
    raw = np.asarray(value)
    if raw.dtype == object and all(
        isinstance(e, numbers.Real) and not isinstance(e, (bool, np.bool_)) for e in raw.flat
    ):
        try:
            raw = raw.astype(np.float64)  # e.g. sympy numbers, Fractions, huge Python ints
        except OverflowError:
            raise ModelError(f"{what} is too large; give a number within float32's range") from None
    if raw.dtype.kind not in "iuf":
        kind_name = {"b": "bool", "c": "complex", "U": "string", "S": "bytes"}.get(
            raw.dtype.kind, str(raw.dtype)
        )
        raise ModelError(
            f"{what} must be a real number or 1-D array of real numbers, got {kind_name} "
            f"values ({value!r})"
        )
    arr = raw.astype(np.float64)
    if arr.ndim > 1:
        raise ModelError(
            f"{what} must be a scalar or 1-D (one value per neuron), got shape {arr.shape}"
        )
    if kind != "parameter" and arr.ndim != 0:
        raise ModelError(
            f"{what}: the initial value must be a single number, got shape {arr.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
    if bad.size:
        at = "" if arr.ndim == 0 else f" at index {int(bad[0])}"
        raise ModelError(
            f"{what} is not finite ({arr.reshape(-1)[bad[0]]}{at}); give a finite number."
        )
    return float(arr) if arr.ndim == 0 else arr


def sym(name: str) -> sp.Symbol:
    """Shorthand for snncc's symbol of ``name`` (for users writing sympy equations)."""
    return symbol(name)
