"""A network spec as plain data: JSON-able values plus named NumPy arrays, and back.

This is what checkpoints store and what the compile cache is keyed by. Nothing in it is code:
equations are kept as the text the user wrote (a sympy expression the user passed is printed as
text the safe parser reads back, and refused if it would not come back equal), and a network is
rebuilt through the public API (``Network``, ``NeuronModel``, ``connect``), which validates
every field again. The format is documented in docs/checkpoints.md.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Mapping

import numpy as np
import sympy as sp
from sympy.printing.str import StrPrinter

from snncc.errors import ModelError
from snncc.model.equations import canonical, parse_expr
from snncc.model.network import Network
from snncc.model.neuron import RESERVED, NeuronModel
from snncc.model.neurons import SpikeInput

Arrays = dict[str, np.ndarray]

#: NeuronModel fields stored as they are (strings, numbers, lists of names).
_PLAIN = ("name", "refractory", "trainable", "integration", "output", "positive")
_EXPRESSIONS = ("threshold", "surrogate")
_ASSIGNMENTS = ("reset", "on_spike", "input")


class _EquationPrinter(StrPrinter):
    """sympy -> the equation syntax of snncc.model.equations (abs, max, min; no sympy names)."""

    def _print_Abs(self, expr: sp.Abs) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_Max(self, expr: sp.Max) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr: sp.Min) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Exp1(self, expr: sp.Expr) -> str:
        return "exp(1)"


def expression_text(value: object, names: set[str], where: str) -> str | float:
    """An equation field as storable text: strings as written, numbers as numbers, sympy printed
    (and checked to parse back to the same expression)."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, sp.Eq):  # dX/dt = rhs given as sympy
        lhs = value.lhs
        var = getattr(lhs, "expr", None)
        var = getattr(var, "name", None) or getattr(getattr(var, "func", None), "__name__", "")
        return f"d{var}/dt = {expression_text(value.rhs, names, where)}"
    if isinstance(value, sp.Basic):
        expr = canonical(value)
        text = _EquationPrinter().doprint(expr)
        try:
            back = parse_expr(text, names, where)
        except ModelError:
            back = None
        if back is None or not (back == expr or sp.simplify(back - expr) == 0):
            raise ModelError(
                f"{where}: the sympy expression {expr} cannot be stored as text that snncc reads "
                "back (it uses a construct the equation syntax lacks); write it as a string"
            )
        return text
    raise ModelError(f"{where}: cannot store {value!r}; give a string or a number")


def neuron_to_data(model: NeuronModel, prefix: str, arrays: Arrays) -> dict:
    """``model`` as JSON-able data; per-neuron parameter arrays go into ``arrays``."""
    if model.is_input:
        return {"input": True}
    names = set(model.params) | set(model.state) | set(RESERVED)
    where = model.where
    data: dict = {k: getattr(model, k) for k in _PLAIN}
    data["trainable"] = list(model.trainable)
    data["positive"] = list(model.positive)
    params: dict[str, float | str] = {}
    for k, v in model.params.items():
        if isinstance(v, np.ndarray):
            arrays[f"{prefix}params/{k}"] = v.astype(np.float64)
            params[k] = "array"
        else:
            params[k] = float(v)
    data["params"] = params
    data["state"] = {k: float(v) for k, v in model.state.items()}
    data["dynamics"] = [expression_text(eq, names, where("dynamics")) for eq in model.dynamics]
    for kind in _EXPRESSIONS:
        value = getattr(model, kind)
        data[kind] = None if value is None else expression_text(value, names, where(kind))
    for kind in _ASSIGNMENTS:
        data[kind] = {
            k: expression_text(v, names, where(f"{kind} of '{k}'"))
            for k, v in getattr(model, kind).items()
        }
    return data


def neuron_from_data(data: Mapping, prefix: str, arrays: Arrays, where: str) -> NeuronModel:
    """Rebuild a NeuronModel through its constructor (which validates every field)."""
    data = _mapping(data, where)
    if data.get("input") is True:
        return SpikeInput()
    fields = set(_PLAIN) | set(_EXPRESSIONS) | set(_ASSIGNMENTS) | {"params", "state", "dynamics"}
    unknown = set(data) - fields
    if unknown:
        raise ModelError(f"{where}: unknown neuron model field '{sorted(unknown)[0]}'")
    params = {}
    for k, v in _mapping(data.get("params", {}), f"{where} params").items():
        params[k] = _array(arrays, f"{prefix}params/{k}", where) if v == "array" else v
    kwargs = {k: data[k] for k in fields if k in data and k != "params"}
    return NeuronModel(params=params, **kwargs)


def network_to_data(net: Network) -> tuple[dict, Arrays]:
    """(spec, arrays) of ``net``: every population, its model, every projection and weight."""
    arrays: Arrays = {}
    pops = [
        {
            "name": p.name,
            "size": p.size,
            "model": neuron_to_data(p.model, f"populations/{p.name}/", arrays),
        }
        for p in net.populations.values()
    ]
    projs = []
    for q in net.projections.values():
        arrays[f"projections/{q.name}/weight"] = q.weight
        if q.mask is not None:
            arrays[f"projections/{q.name}/mask"] = q.mask
        projs.append(
            {
                "name": q.name,
                "pre": q.pre.name,
                "post": q.post.name,
                "sparse": q.sparse,
                "masked": q.mask is not None,
                "trainable": q.trainable,
                "delay": q.delay,
            }
        )
    spec = {"dt": net.dt, "seed": net.seed, "populations": pops, "projections": projs}
    return spec, arrays


def network_from_data(spec: Mapping, arrays: Arrays) -> Network:
    """Rebuild a Network from :func:`network_to_data`'s output, through the public API."""
    where = "network spec"
    spec = _mapping(spec, where)
    net = Network(dt=spec.get("dt", 1.0), seed=spec.get("seed", 0))
    for i, p in enumerate(_list(spec.get("populations", []), f"{where} populations")):
        p = _mapping(p, f"{where} population #{i}")
        name = p.get("name")
        model = neuron_from_data(
            p.get("model", {}), f"populations/{name}/", arrays, f"{where}, population {name!r}"
        )
        net.add_population(name, p.get("size"), model)
    for i, q in enumerate(_list(spec.get("projections", []), f"{where} projections")):
        q = _mapping(q, f"{where} projection #{i}")
        name = q.get("name")
        at = f"{where}, projection {name!r}"
        weight = _array(arrays, f"projections/{name}/weight", at)
        mask = _array(arrays, f"projections/{name}/mask", at) if q.get("masked") else None
        kwargs: dict = {
            "name": name,
            "weight": weight,
            "trainable": q.get("trainable", True),
            "delay": q.get("delay"),
        }
        if q.get("sparse"):
            if mask is None or mask.dtype != bool or mask.shape != weight.shape:
                raise ModelError(f"{at}: a sparse projection needs a boolean mask of its shape")
            kwargs["indices"] = np.nonzero(mask)
        elif mask is not None:  # the only dense mask is the removed diagonal
            kwargs["allow_self"] = False
        proj = net.connect(q.get("pre"), q.get("post"), **kwargs)
        if mask is not None and not np.array_equal(proj.mask, mask):
            raise ModelError(f"{at}: its mask is neither sparse nor a removed diagonal")
    return net


def digest(spec: object, arrays: Arrays | None = None) -> str:
    """sha256 of a spec: its canonical JSON and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays or {}):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _mapping(value: object, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ModelError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, where: str) -> list:
    if not isinstance(value, list):
        raise ModelError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _array(arrays: Arrays, key: str, where: str) -> np.ndarray:
    if key not in arrays:
        raise ModelError(f"{where}: the array '{key}' is missing")
    return arrays[key]


def structure(net: Network) -> dict:
    """What a trained state belongs to: the spec without its initial weights (masks and
    per-neuron parameters by digest). Two networks that differ only in weights share it."""
    spec, arrays = network_to_data(net)
    spec["arrays"] = {
        k: digest(None, {k: v}) for k, v in arrays.items() if not k.endswith("/weight")
    }
    return spec


def first_difference(a: object, b: object, path: str = "") -> str | None:
    """Where two JSON-able values first differ, as 'path: a vs b', or None if equal."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}{k}: {'missing' if k not in a else 'present'} vs " + (
                    "missing" if k not in b else "present"
                )
            found = first_difference(a[k], b[k], f"{path}{k}.")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path.rstrip('.')}: {len(a)} entries vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}{i}.")
            if found:
                return found
        return None
    return None if a == b else f"{path.rstrip('.')}: {a!r} vs {b!r}"
