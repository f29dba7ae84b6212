"""The float32 C printer shared by the CPU (C++) and CUDA backends.

It subclasses sympy's C99 printer with ``float32`` as the real type, so functions print as
``expf``/``logf`` and literals carry an ``F`` suffix. On top of that it never emits a double:
no ``M_PI``/``M_LN2`` macros, no unsuffixed literal, small integer powers expanded into products.
Piecewise and Max/Min print as selects (ternaries), which keep neuron loops vectorisable.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy as sp
from sympy.codegen.ast import float32, real
from sympy.printing.c import C99CodePrinter

from snncc.codegen.names import cname

_MAX_EXPANDED_POWER = 4


class Float32Printer(C99CodePrinter):
    """Prints sympy expressions as float32 C; ``names`` renames symbols (e.g. v -> v[j]).

    With ``mangle`` (inside generated kernels) a model symbol whose name the kernel already
    uses (``b``, ``t``, a C keyword...) prints as ``name_u``; see ``cname``.
    """

    def __init__(self, names: Mapping[str, str] | None = None, mangle: bool = False):
        super().__init__({"type_aliases": {real: float32}, "math_macros": {}})
        self.names = dict(names or {})
        self.mangle = mangle

    # --- symbols and numbers -------------------------------------------------
    def _print_Symbol(self, expr: sp.Symbol) -> str:
        if expr.name in self.names:
            return self.names[expr.name]
        return cname(expr.name) if self.mangle else expr.name

    def _print_Float(self, expr: sp.Float) -> str:
        return float_literal(float(expr))

    def _print_Integer(self, expr: sp.Integer) -> str:
        return float_literal(float(expr))

    def _print_Rational(self, expr: sp.Rational) -> str:
        return float_literal(float(expr))

    def _print_NumberSymbol(self, expr: sp.Expr) -> str:  # pi, E, EulerGamma...
        return float_literal(float(expr))

    _print_Pi = _print_NumberSymbol
    _print_Exp1 = _print_NumberSymbol

    def _print_Half(self, expr: sp.Expr) -> str:
        return "0.5F"

    def _print_One(self, expr: sp.Expr) -> str:
        return "1.0F"

    def _print_Zero(self, expr: sp.Expr) -> str:
        return "0.0F"

    def _print_NegativeOne(self, expr: sp.Expr) -> str:
        return "-1.0F"

    # --- operations -----------------------------------------------------------
    def _print_Pow(self, expr: sp.Pow) -> str:
        base, exp = expr.base, expr.exp
        if exp.is_Integer and 0 < abs(int(exp)) <= _MAX_EXPANDED_POWER:
            b = self.parenthesize(base, 100)  # always bracket the base
            prod = "*".join([f"({self._print(base)})" if not base.is_Atom else b] * abs(int(exp)))
            # bracketed: the power is one operand wherever the Mul printer puts it, a/x**2
            # included (unbracketed it printed a/x*x, which is a)
            return f"({prod})" if exp > 0 else f"(1.0F/({prod}))"
        if exp == sp.Rational(1, 2):
            return f"sqrtf({self._print(base)})"
        if exp == -sp.Rational(1, 2):
            return f"(1.0F/sqrtf({self._print(base)}))"
        return f"powf({self._print(base)}, {self._print(exp)})"

    def _fold(self, op: str, expr: sp.Expr) -> str:
        """Max/Min as selects: g++ keeps fmaxf/fminf as calls (for their NaN rules), and a call
        stops the neuron loop from vectorising. (With a NaN operand the result may differ.)"""
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"(({out}) {op} ({a}) ? ({out}) : ({a}))"
        return out

    def _print_Max(self, expr: sp.Max) -> str:
        return self._fold(">", expr)

    def _print_Min(self, expr: sp.Min) -> str:
        return self._fold("<", expr)

    def _print_Abs(self, expr: sp.Abs) -> str:
        return f"fabsf({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        if expr.args[-1].cond != sp.true:
            raise ValueError("Piecewise needs a final (value, True) branch to print as C")
        out = self._print(expr.args[-1].expr)
        for e, c in reversed(expr.args[:-1]):
            value = self._print(e)
            if isinstance(c, sp.And):  # a ? (b ? e : out) : out selects, so loops vectorise
                for part in reversed(c.args):
                    value = f"(({self._print(part)}) ? ({value}) : ({out}))"
                out = value
            else:
                out = f"(({self._print(c)}) ? ({value}) : ({out}))"
        return out

    def _print_And(self, expr: sp.And) -> str:
        # comparisons have no side effects: '&' keeps the loop free of branches (vectorisable)
        return " & ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Relational(self, expr: sp.Expr) -> str:
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        return f"(({self._print(expr.args[0])}) > 0.0F ? 1.0F : 0.0F)"


def float_literal(x: float) -> str:
    with np.errstate(over="ignore"):
        f = np.float32(x)
    if not np.isfinite(f):
        raise ValueError(f"constant {x} is not a finite float32 and cannot be printed")
    text = str(f)  # shortest text that round-trips the float32 value
    if "e" not in text and "." not in text:
        text += ".0"
    return f"{text}F"


def print_c(expr: sp.Expr, names: Mapping[str, str] | None = None) -> str:
    """Print one expression as float32 C."""
    return Float32Printer(names).doprint(expr)


def flatten(expr: sp.Expr, prefix: str) -> tuple[list[tuple[str, sp.Expr]], sp.Expr]:
    """Pull non-trivial operands of Max/Min and Piecewise branches into temporaries.

    Every temporary is computed unconditionally and then selected: g++ if-converts such code
    into vector selects, which nested calls inside ternaries prevent. The arithmetic is the
    same, so results are bit-identical.
    """
    temps: list[tuple[str, sp.Expr]] = []

    def temp(e: sp.Expr) -> sp.Expr:
        if e.is_Atom:
            return e
        name = f"{prefix}{len(temps)}"
        temps.append((name, e))
        return sp.Symbol(name, real=True)

    def visit(e: sp.Expr) -> sp.Expr:
        if e.is_Atom:
            return e
        if isinstance(e, sp.Piecewise):
            return sp.Piecewise(*[(temp(visit(a.expr)), a.cond) for a in e.args], evaluate=False)
        args = [visit(a) for a in e.args]
        if isinstance(e, (sp.Max, sp.Min)):
            return e.func(*[temp(a) for a in args], evaluate=False)
        return e.func(*args)

    return temps, visit(expr)


def kernel_printer(names: Mapping[str, str] | None = None) -> Float32Printer:
    """The printer for model expressions inside generated kernels (names mangled)."""
    return Float32Printer(names, mangle=True)


def print_block(
    assignments: list[tuple[str, sp.Expr]],
    names: Mapping[str, str] | None = None,
    declare: set[str] | frozenset[str] = frozenset(),
    prefix: str = "_cse",
    mangle: bool = False,
) -> list[str]:
    """Print ``target = expr`` lines, with common subexpressions pulled out by ``sympy.cse``.

    Targets in ``declare`` get a ``float`` declaration.
    """
    printer = Float32Printer(names, mangle=mangle)
    exprs = [e for _, e in assignments]
    subs, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(prefix, real=True))
    lines = [f"const float {s} = {printer.doprint(e)};" for s, e in subs]
    for (target, _), e in zip(assignments, reduced, strict=True):
        decl = "float " if target in declare else ""
        lines.append(f"{decl}{printer.doprint(sp.Symbol(target))} = {printer.doprint(e)};")
    return lines
