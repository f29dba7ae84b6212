"""The compile cache of plans and sources, stored as JSON data, never as pickles.

Compiling an unchanged network again skips sympy and the templates: the plan, the training
plan and the rendered sources of the earlier request are read back from
``<cache>/build/plans/<key>.json``. The file holds only data: plain JSON values, NumPy arrays
(dtype, shape, base64 bytes), sympy expressions as trees of whitelisted class names, and
snncc's plan dataclasses by whitelisted name. Decoding builds nothing else, so a file written by
someone else cannot make snncc run code (and the cache refuses files it does not own anyway,
see backends/cache.py). Anything unreadable is a cache miss: the plan is derived again.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import numpy as np
import sympy as sp

from snncc.backends.cache import build_dir, trusted_file
from snncc.files import atomic_write


def _dataclasses() -> dict[str, type]:
    from snncc.codegen import plan, targets, training_plan
    from snncc.symbolic import bptt, eprop, integrate, loss, optim

    classes = [
        plan.KernelPlan,
        plan.PopulationPlan,
        plan.ProjectionPlan,
        plan.Buffer,
        integrate.DiscreteUpdate,
        integrate.Statement,
        targets.Launch,
        training_plan.TrainingPlan,
        training_plan.ReadoutPlan,
        training_plan.HiddenPlan,
        training_plan.OnlinePlan,
        loss.LossEquations,
        optim.Adam,
        optim.SGD,
        eprop.EProp,
        bptt.BPTT,
        eprop.RuleEquations,
        eprop.TraceSystem,
    ]
    return {c.__name__: c for c in classes}


#: sympy classes a cached expression may contain (rebuilt with evaluate=False: as stored).
_SYMPY = {
    c.__name__: c
    for c in (
        sp.Add, sp.Mul, sp.Pow, sp.exp, sp.log, sp.Abs, sp.Max, sp.Min, sp.sin, sp.cos, sp.tanh,
        sp.Heaviside, sp.sign, sp.floor, sp.ceiling, sp.Piecewise, sp.StrictGreaterThan,
        sp.GreaterThan, sp.StrictLessThan, sp.LessThan, sp.Equality, sp.Unequality, sp.And,
        sp.Or, sp.Not,
    )
}  # fmt: skip
_CONSTANTS = {"pi": sp.pi, "E": sp.E, "true": sp.true, "false": sp.false}
_DTYPES = {"<f4", "<f8", "<i4", "<i8", "<u4", "|u1", "|b1"}


class _Unsupported(Exception):
    """Something in the object graph is not in the whitelist: it is not cached."""


def _encode(obj: object) -> object:
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else {"f": repr(obj)}
    if isinstance(obj, np.generic):
        return _encode(obj.item())
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        if a.dtype.str not in _DTYPES:
            raise _Unsupported(a.dtype)
        data = base64.b64encode(a.tobytes()).decode()
        return {"a": [a.dtype.str, list(a.shape), data]}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, tuple):
        return {"t": [_encode(v) for v in obj]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise _Unsupported("dict keys")
        return {"d": {k: _encode(v) for k, v in obj.items()}}
    if isinstance(obj, sp.MatrixBase):
        return {"m": [obj.rows, obj.cols, [_expr(e) for e in obj]]}
    if isinstance(obj, sp.Basic):
        return {"s": _expr(obj)}
    if dataclasses.is_dataclass(obj) and type(obj).__name__ in _dataclasses():
        fields = {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return {"o": [type(obj).__name__, fields]}
    raise _Unsupported(type(obj).__name__)


def _expr(e: sp.Basic) -> list:
    if e.is_Symbol:
        return ["Symbol", e.name, bool(e.is_real)]
    if e.is_Integer:
        return ["Integer", int(e)]
    if e.is_Rational:
        return ["Rational", int(e.p), int(e.q)]
    if e.is_Float:
        return ["Float", float(e)]
    for name, value in _CONSTANTS.items():
        if e is value:  # singletons
            return [name]
    name = type(e).__name__
    if isinstance(e, sp.Piecewise):
        return [name, *[[_expr(a.expr), _expr(a.cond)] for a in e.args]]
    if name not in _SYMPY:
        raise _Unsupported(name)
    return [name, *[_expr(a) for a in e.args]]


def _decode(obj: object) -> object:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ValueError("not a cache record")
    ((tag, value),) = obj.items()
    if tag == "f":
        return float(value) if value in ("inf", "-inf", "nan") else _bad(value)
    if tag == "t":
        return tuple(_decode(v) for v in value)
    if tag == "d":
        return {str(k): _decode(v) for k, v in value.items()}
    if tag == "a":
        dtype, shape, data = value
        if dtype not in _DTYPES:
            raise ValueError(dtype)
        return np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(shape).copy()
    if tag == "m":
        rows, cols, items = value
        return sp.ImmutableMatrix(int(rows), int(cols), [_sympy(e) for e in items])
    if tag == "s":
        return _sympy(value)
    if tag == "o":
        name, fields = value
        return _dataclasses()[name](**{k: _decode(v) for k, v in fields.items()})
    raise ValueError(tag)


def _bad(value: object):
    raise ValueError(value)


def _sympy(node: list) -> sp.Basic:
    head, *args = node
    if head == "Symbol":
        return sp.Symbol(str(args[0]), real=True) if args[1] else sp.Symbol(str(args[0]))
    if head == "Integer":
        return sp.Integer(int(args[0]))
    if head == "Rational":
        return sp.Rational(int(args[0]), int(args[1]))
    if head == "Float":
        return sp.Float(float(args[0]))
    if head in _CONSTANTS:
        return _CONSTANTS[head]
    if head == "Piecewise":
        return sp.Piecewise(*[(_sympy(e), _sympy(c)) for e, c in args], evaluate=False)
    return _SYMPY[head](*[_sympy(a) for a in args], evaluate=False)


def _path(key: str) -> Path:
    return build_dir("plans") / f"{key}.json"


def load(key: str | None):
    """The cached (plan, training plan, sources) of ``key``, or None (missing or unreadable)."""
    if key is None:
        return None
    path = _path(key)
    if not path.exists():
        return None
    trusted_file(path)  # refuses (raises) a file someone else could have written
    try:
        plan, tp, sources = _decode(json.loads(path.read_text()))
        plan.training = tp
        return plan, tp, sources
    except Exception:  # written by another snncc version, truncated...: derive again
        return None


def store(key: str | None, plan, tp, sources: dict[str, str]) -> None:
    if key is None:
        return
    try:
        training, plan.training = plan.training, None  # stored once, beside the plan
        try:
            text = json.dumps(_encode((plan, tp, sources)), separators=(",", ":"))
        finally:
            plan.training = training
        atomic_write(_path(key), text.encode(), durable=False)
    except (_Unsupported, OSError):  # caching is an optimisation; never fail a compile
        pass
