"""Safe string -> sympy parsing.

User text is never passed to ``eval`` or ``sympify``: it is parsed with :mod:`ast` and every node
is mapped to sympy by hand, with a symbol table owned by snncc. Names such as ``beta``, ``gamma``,
``I``, ``E`` or ``S`` are therefore plain real symbols, never sympy built-ins.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable, Mapping

import numpy as np
import sympy as sp

from snncc.errors import EquationError

#: Functions an equation may call, mapped to their sympy counterparts.
FUNCTIONS: dict[str, object] = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "tanh": sp.tanh,
    "sin": sp.sin,
    "cos": sp.cos,
    "abs": sp.Abs,
    "max": sp.Max,
    "min": sp.Min,
    "sigmoid": lambda x: 1 / (1 + sp.exp(-x)),
}
#: Functions that take two or more arguments; every other one takes exactly one.
_VARIADIC = {"max", "min"}
#: Largest magnitude a literal may have: the kernels compute in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_COMPARE = {ast.Gt: sp.StrictGreaterThan, ast.GtE: sp.GreaterThan}

#: Names the compiler provides only in some equations, and where they may appear.
_CONTEXT_ONLY = {
    "I_syn": "the synaptic input I_syn may only appear in ODEs and 'input' assignments",
    "margin": "the threshold margin may only appear in the surrogate",
}

_ODE = re.compile(r"^\s*d\s*([A-Za-z_]\w*)\s*/\s*dt\s*=(.*)$", re.S)


def symbol(name: str) -> sp.Symbol:
    """The one symbol snncc uses for ``name`` (real-valued, so sympy simplifies safely)."""
    return sp.Symbol(name, real=True)


def canonical(expr: sp.Expr) -> sp.Expr:
    """Replace every free symbol of a user-built sympy expression with snncc's symbol."""
    expr = sp.sympify(expr)
    from sympy.core.function import AppliedUndef

    # v(t) written as a sympy Function becomes the plain symbol v
    expr = expr.replace(lambda e: isinstance(e, AppliedUndef), lambda e: sp.Symbol(e.func.__name__))
    return expr.xreplace({s: symbol(s.name) for s in expr.free_symbols})


class _Builder(ast.NodeVisitor):
    def __init__(self, names: Iterable[str], where: str, text: str):
        self.names = set(names)
        self.where = where
        self.text = text

    def fail(self, msg: str) -> EquationError:
        return EquationError(f"{self.where}: {msg}\n    in: {self.text!r}")

    def visit_Expression(self, node: ast.Expression) -> sp.Expr:
        return self.visit(node.body)

    def visit_Constant(self, node: ast.Constant) -> sp.Expr:
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise self.fail(f"unsupported constant {node.value!r}")
        return _literal(node.value, self.where, self.text)

    def visit_Name(self, node: ast.Name) -> sp.Expr:
        if node.id in self.names:
            return symbol(node.id)
        if node.id == "pi":
            return sp.pi
        if node.id in _CONTEXT_ONLY:
            raise self.fail(f"'{node.id}' cannot be used here: {_CONTEXT_ONLY[node.id]}.")
        close = difflib.get_close_matches(node.id, sorted(self.names), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        known = ", ".join(sorted(self.names)) or "none"
        raise self.fail(
            f"unknown symbol '{node.id}'.{hint} Declare it as a parameter or state variable "
            f"(known symbols: {known})."
        )

    def visit_BinOp(self, node: ast.BinOp) -> sp.Expr:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(f"operator {type(node.op).__name__} is not allowed")
        return op(self.visit(node.left), self.visit(node.right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> sp.Expr:
        if isinstance(node.op, ast.USub):
            return -self.visit(node.operand)
        if isinstance(node.op, ast.UAdd):
            return self.visit(node.operand)
        raise self.fail(f"operator {type(node.op).__name__} is not allowed")

    def visit_Call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = getattr(node.func, "id", ast.unparse(node.func))
            raise self.fail(f"unknown function '{name}'; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise self.fail("keyword arguments are not allowed in equations")
        name, n = node.func.id, len(node.args)
        if (n < 2) if name in _VARIADIC else (n != 1):
            wanted = "two or more arguments" if name in _VARIADIC else "exactly one argument"
            raise self.fail(f"{name}() takes {wanted}, got {n}")
        return FUNCTIONS[name](*[self.visit(a) for a in node.args])

    def visit_Compare(self, node: ast.Compare) -> sp.Expr:
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            raise self.fail("a condition must be a single '>' or '>=' comparison")
        return _COMPARE[type(node.ops[0])](self.visit(node.left), self.visit(node.comparators[0]))

    def generic_visit(self, node: ast.AST) -> sp.Expr:
        raise self.fail(f"'{ast.unparse(node)}' is not allowed in an equation")


def parse_expr(text: str | sp.Expr | float, names: Iterable[str], where: str) -> sp.Expr:
    """Parse ``text`` into sympy using only ``names`` as symbols; ``where`` prefixes errors."""
    names = set(names)
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _finite(_literal(text, where, text), where, text)
    if isinstance(text, sp.Basic):
        expr = canonical(text)
        unknown = sorted(s.name for s in expr.free_symbols if s.name not in names)
        if unknown:
            raise EquationError(
                f"{where}: unknown symbol '{unknown[0]}' in {expr}. Declare it as a parameter "
                f"or state variable (known symbols: {', '.join(sorted(names))})."
            )
        return _finite(expr, where, text)
    if not isinstance(text, str):
        raise EquationError(f"{where}: expected a string or sympy expression, got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
        expr = _Builder(names, where, text).visit(tree)
    except SyntaxError as err:
        raise EquationError(f"{where}: cannot parse {text!r}: {err.msg}") from None
    except RecursionError:  # Python's parser and the visitor recurse once per nesting level
        raise EquationError(
            f"{where}: the equation ({len(text)} characters) is too long or too deeply nested "
            f"to parse, starting {text[:60]!r}; write it more compactly"
        ) from None
    return _finite(expr, where, text)


def _literal(value: int | float, where: str, text: object) -> sp.Expr:
    """A number of an equation, which must fit float32: the kernels would print it as inf."""
    if abs(value) > FLOAT32_MAX:
        shown = repr(value)
        shown = shown if len(shown) < 24 else f"{shown[:8]}... ({len(shown)} digits)"
        raise EquationError(
            f"{where}: the constant {shown} is beyond float32's range (+-{FLOAT32_MAX:.3g}); "
            f"rescale the equation (e.g. other units)\n    in: {text!r}"
        )
    return sp.Integer(value) if isinstance(value, int) else sp.Float(value)


def _finite(expr: sp.Basic, where: str, text: object) -> sp.Basic:
    """``expr`` unless it holds an infinity or NaN (e.g. from ``1/0``): refused where written."""
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise EquationError(
            f"{where}: {text!r} divides by zero or is infinite (sympy made it {expr}); "
            "write a finite expression"
        )
    return expr


def parse_ode(
    eq: str | sp.Eq, names: Iterable[str], states: Mapping[str, object], where: str
) -> tuple[str, sp.Expr]:
    """Parse ``"dX/dt = rhs"`` (or ``Eq(Derivative(X, t), rhs)``) into ``(X, rhs)``."""
    if isinstance(eq, sp.Eq):
        lhs, rhs = eq.lhs, eq.rhs
        if not isinstance(lhs, sp.Derivative) or len(lhs.variables) != 1:
            raise EquationError(f"{where}: expected Eq(Derivative(x, t), rhs), got {eq}")
        var = lhs.expr
        var = getattr(var, "name", None) or getattr(getattr(var, "func", None), "__name__", "")
        rhs_expr = parse_expr(rhs, names, f"{where} (d{var}/dt)")
        text = str(eq)
    else:
        m = _ODE.match(str(eq))
        if not m:
            raise EquationError(
                f"{where}: cannot read {eq!r} as an ODE; write it as 'dv/dt = (-v + I_syn)/tau_m'"
            )
        var, rhs_text = m.group(1), m.group(2)
        text = eq
        rhs_expr = None
    if var not in states:
        raise EquationError(
            f"{where}: ODE for undeclared variable '{var}' in {text!r}. Add '{var}' to the "
            f"model's state variables (declared: {', '.join(states) or 'none'})."
        )
    if rhs_expr is None:
        rhs_expr = parse_expr(rhs_text, names, f"{where} (d{var}/dt)")
    return var, rhs_expr
