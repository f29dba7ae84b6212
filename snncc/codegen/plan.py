"""KernelPlan: what to generate, as plain data (no source text yet).

A plan lists every buffer (name, C type, shape in terms of the batch B and steps T), and for each
population its discrete update (sympy) and how its parameters reach the kernel: scalars go into
one ``<pop>_scalars`` array, heterogeneous (per-neuron) values get their own array. Printing and
templates turn the plan into source; backends allocate the buffers it lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from snncc.errors import ModelError
from snncc.model.equations import FLOAT32_MAX
from snncc.model.network import Network, Population, Projection
from snncc.symbolic.integrate import DT, DiscreteUpdate, discretize

Dim = int | str  # "B" (batch), "T" (steps), "TW" (words of one bit per step) or a number


@dataclass
class Buffer:
    """A device array. ``shape`` may contain "B", "T" and "TW"; ``init`` fills it at allocation.

    The buffer owns its layout: :meth:`index` writes the C index of an element from the shape
    (the batch dimension's stride is the compiled capacity ``Bcap``), and a scalar table names
    its entries (``slots``), read with :meth:`slot`. No template types an index by hand.
    """

    name: str
    ctype: str
    shape: tuple[Dim, ...]
    role: str
    init: float | np.ndarray = 0.0
    slots: tuple[str, ...] = ()

    def index(self, *idx: object) -> str:
        """The C expression of element ``idx`` (one expression per dimension), row-major."""
        if len(idx) != len(self.shape):
            raise ValueError(f"{self.name} has {len(self.shape)} dimensions, indexed by {idx}")
        out = f"(size_t)({idx[0]})"
        for dim, i in zip(self.shape[1:], idx[1:], strict=True):
            out = f"({out} * {'Bcap' if dim == 'B' else dim} + ({i}))"
        return out

    def at(self, *idx: object) -> str:
        """``name[index]``."""
        return f"{self.name}[{self.index(*idx)}]"

    def slot(self, name: str) -> str:
        """``name[k]`` for the entry ``name`` of a scalar table."""
        return f"{self.name}[{self.slots.index(name)}]"

    def __str__(self) -> str:
        dims = " x ".join(str(d) for d in self.shape)
        named = f" {{{', '.join(self.slots)}}}" if self.slots else ""
        return f"{self.ctype:>13} {self.name} [{dims}] ({self.role}){named}"


@dataclass
class PopulationPlan:
    name: str
    index: int
    size: int
    is_input: bool
    update: DiscreteUpdate | None
    scalars: list[str] = field(default_factory=list)  # names stored in <pop>_scalars
    per_neuron: list[str] = field(default_factory=list)  # names with an array each
    incoming: list[str] = field(default_factory=list)  # projection names, declaration order
    values: dict[str, float | np.ndarray] = field(default_factory=dict)
    init: dict[str, float] = field(default_factory=dict)
    ring: int = 0  # steps of spikes kept (bit words) for delayed projections from here
    trainable: list[str] = field(default_factory=list)  # the model's trainable parameters
    positive: list[str] = field(default_factory=list)  # parameters that must stay > 0

    @property
    def spiking(self) -> bool:
        return self.is_input or (self.update is not None and self.update.spike is not None)

    @property
    def states(self) -> list[str]:
        if self.update is None:
            return []
        extra = ["_refrac"] if self.update.refractory_steps else []
        return self.update.states + extra

    @property
    def spike_words(self) -> int:
        return (self.size + 31) // 32


@dataclass
class ProjectionPlan:
    name: str
    pre: str
    post: str
    n_pre: int
    n_post: int
    sparse: bool
    delay: int  # a spike of step t arrives at step t + delay
    pre_is_input: bool
    pre_first: bool  # the presynaptic population updates earlier in a step
    trainable: bool = True
    masked: bool = False  # dense, with absent synapses (no self-connection) that stay 0

    @property
    def from_ring(self) -> bool:
        """Its spikes are read from the presynaptic population's ring of past steps (an input's
        spikes are all known: read at step t - delay directly)."""
        if self.pre_is_input:
            return False
        return self.delay >= 2 or (self.delay == 1 and self.pre_first)


@dataclass
class KernelPlan:
    """Everything a backend needs to generate and run one network."""

    name: str
    dt: float
    batch_size: int
    populations: list[PopulationPlan]
    projections: list[ProjectionPlan]
    buffers: list[Buffer] = field(default_factory=list)
    training: object = None  # TrainingPlan when compiled with a learning rule
    target: str = "cpu"
    manifest: dict = field(default_factory=dict)  # pass -> kernels to launch (codegen.targets)

    def pop(self, name: str) -> PopulationPlan:
        return next(p for p in self.populations if p.name == name)

    def proj(self, name: str) -> ProjectionPlan:
        return next(p for p in self.projections if p.name == name)

    def buffer(self, name: str) -> Buffer:
        return next(b for b in self.buffers if b.name == name)

    def index(self, name: str) -> int:
        return next(i for i, b in enumerate(self.buffers) if b.name == name)

    def add(self, *buffers: Buffer) -> None:
        taken = {b.name for b in self.buffers}
        for buf in buffers:
            if buf.name in taken:
                raise ModelError(
                    f"two parts of the network need the buffer '{buf.name}' (e.g. population "
                    f"'a' with state 'b_v' and population 'a_b' with state 'v'); rename one"
                )
            taken.add(buf.name)
        self.buffers.extend(buffers)

    def __str__(self) -> str:
        lines = [f"KernelPlan {self.name}: dt={self.dt} ms, batch {self.batch_size}"]
        for p in self.populations:
            kind = "input" if p.is_input else (p.update.model if p.update else "?")
            lines.append(f"  population {p.name} ({p.size} x {kind}) <- {', '.join(p.incoming)}")
            if p.update is not None:
                lines += ["    " + ln for ln in str(p.update).splitlines()]
        for q in self.projections:
            kind = "sparse" if q.sparse else "dense"
            lag = f" (delay {q.delay})" if q.delay else ""
            lines.append(f"  projection {q.name}: {q.pre} -> {q.post} {kind}{lag}")
        lines.append("  buffers:")
        lines += [f"    {b}" for b in self.buffers]
        return "\n".join(lines)


def build_plan(net: Network, batch_size: int, target: str = "cpu") -> KernelPlan:
    """Discretise every population and lay out the buffers for simulation."""
    pops = [_population_plan(net, p) for p in net.populations.values()]
    projs = [
        ProjectionPlan(
            q.name,
            q.pre.name,
            q.post.name,
            q.pre.size,
            q.post.size,
            q.sparse,
            q.delay,
            q.pre.is_input,
            q.pre.index < q.post.index,
            q.trainable,
            q.mask is not None and not q.sparse,
        )
        for q in net.projections.values()
    ]
    plan = KernelPlan("snncc_net", float(net.dt), batch_size, pops, projs, target=target)
    for q in projs:
        if q.from_ring:
            pre = plan.pop(q.pre)
            pre.ring = max(pre.ring, q.delay + 1)
    for p in pops:
        _population_buffers(plan, p)
    for q in net.projections.values():
        _projection_buffers(plan, q)
    return plan


def _population_plan(net: Network, pop: Population) -> PopulationPlan:
    pp = PopulationPlan(pop.name, pop.index, pop.size, pop.is_input, None)
    pp.incoming = [q.name for q in net.incoming(pop)]
    if pop.is_input:
        return pp
    upd = discretize(pop.model, float(net.dt))
    pp.update = upd
    pp.init = dict(pop.model.state)
    where = f"population '{pop.name}' ({pop.model.name})"
    pp.values = values = parameter_values(upd, pop.model.params, float(net.dt), where)
    # trainable parameters are per neuron even when they start out equal
    pp.trainable = list(pop.model.trainable)
    pp.positive = list(pop.model.positive)
    pp.per_neuron = [
        k for k, v in values.items() if isinstance(v, np.ndarray) or k in pop.model.trainable
    ]
    pp.scalars = [k for k in values if k not in pp.per_neuron]
    return pp


def parameter_values(
    upd: DiscreteUpdate, params: dict, dt: float, where: str
) -> dict[str, float | np.ndarray]:
    """What a population's kernels read: its parameters, ``dt`` (Euler/RK updates use it like a
    parameter) and the hoisted constants evaluated from them."""
    values: dict[str, float | np.ndarray] = {**params, "dt": dt}
    for name, value in params.items():
        _check_float32(name, value, where, "parameter")
    for name, expr in upd.constants.items():
        values[name] = _evaluate(expr, values, dt, where, name)
        _check_float32(name, values[name], where, f"precomputed constant (= {expr})")
    return values


def _check_float32(name: str, value: float | np.ndarray, where: str, what: str) -> None:
    """The kernels read every value as float32: one beyond its range would silently be inf."""
    big = np.abs(np.asarray(value, np.float64)) > FLOAT32_MAX
    if big.any():
        shown = float(np.asarray(value).reshape(-1)[np.argmax(big.reshape(-1))])
        raise ModelError(
            f"{where}: {what} {name} = {shown:g} is beyond float32's range "
            f"(+-{FLOAT32_MAX:.3g}), which the kernels compute in; change the "
            "parameters"
        )


def _evaluate(expr: sp.Expr, values: dict, dt: float, where: str, name: str) -> float | np.ndarray:
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    f = sp.lambdify(syms, expr, "numpy")
    # float64 arrays, not Python floats, and numpy's errors raised: a division by zero is
    # reported with the constant and the fix, not as a ZeroDivisionError from inside lambdify
    args = [np.asarray(dt if s == DT else values[s.name], np.float64) for s in syms]
    with np.errstate(divide="raise", invalid="raise", over="ignore", under="ignore"):
        try:
            out = np.asarray(f(*args), dtype=np.float64)
        except (ArithmeticError, ValueError, TypeError) as err:
            raise ModelError(
                f"{where}: the precomputed constant {name} = {expr} cannot be evaluated for "
                f"these parameters ({err}: a zero time constant, or two equal time constants?); "
                "change the parameters"
            ) from None
    if not np.all(np.isfinite(out)):
        raise ModelError(
            f"{where}: the precomputed constant {name} = {expr} is not finite for these "
            "parameters (a zero time constant, or two equal time constants); change the "
            "parameters"
        )
    if name.lstrip("_").endswith("_decay") and np.any(np.abs(out) > 1.0):
        raise ModelError(
            f"{where}: the state would grow without bound: {name} = {expr} = "
            f"{float(np.max(np.abs(out))):g} > 1 in magnitude (a negative time constant, or "
            "dt too large for explicit integration); time constants must be > 0"
        )
    return float(out) if out.ndim == 0 else out


def _population_buffers(plan: KernelPlan, p: PopulationPlan) -> None:
    n = p.size
    if p.is_input:
        # spikes as bit words: unit i of step t is bit i % 32 of word [b, t, i / 32]
        plan.add(
            Buffer(f"{p.name}_bits", "unsigned", ("B", "T", p.spike_words), "input"),
            Buffer(f"rec_{p.name}", "unsigned", ("B", "T", p.spike_words), "record"),
        )
        return
    for s in p.states:
        plan.add(Buffer(f"{p.name}_{s}", "float", ("B", n), "state", p.init.get(s, 0.0)))
    if p.spiking:
        plan.add(
            # spikes double-buffered by step parity: slot t&1 is step t, the other step t-1
            Buffer(f"{p.name}_z", "float", (2, "B", n), "state"),
            Buffer(f"{p.name}_spk", "int", ("B", n), "state"),
            Buffer(f"{p.name}_nspk", "int", ("B",), "state"),
        )
    if p.ring:  # spike words of the last `ring` steps; step t at slot t % ring
        plan.add(Buffer(f"{p.name}_ring", "unsigned", ("B", p.ring, p.spike_words), "state"))
    if p.incoming:
        plan.add(Buffer(f"{p.name}_isyn", "float", ("B", n), "scratch"))
    if p.scalars:
        vals = np.array([p.values[k] for k in p.scalars], dtype=np.float32)
        plan.add(Buffer(f"{p.name}_scalars", "float", (len(p.scalars),), "param", vals))
    for k in p.per_neuron:
        vals = np.broadcast_to(np.float32(p.values[k]), (n,)).astype(np.float32)
        plan.add(Buffer(f"{p.name}_p_{k}", "float", (n,), "param", vals))
    if p.spiking:
        plan.add(Buffer(f"rec_{p.name}", "unsigned", ("B", "T", p.spike_words), "record"))
    for s in p.update.states:
        plan.add(Buffer(f"rec_{p.name}_{s}", "float", ("B", "T", n), "record"))


def _projection_buffers(plan: KernelPlan, q: Projection) -> None:
    """Connectivity and weight buffers; the weights' values are the network's, uploaded when a
    model is compiled, so a plan does not depend on them (and is cached without them)."""
    if q.sparse:
        mask = q.mask
        rows, cols = np.nonzero(mask)
        rowptr = np.zeros(q.pre.size + 1, dtype=np.int32)
        np.add.at(rowptr, rows + 1, 1)
        rowptr = np.cumsum(rowptr).astype(np.int32)
        # the same synapses by postsynaptic neuron (CSC), for backends that gather per neuron
        perm = np.lexsort((rows, cols)).astype(np.int32)
        colptr = np.zeros(q.post.size + 1, dtype=np.int32)
        np.cumsum(np.bincount(cols, minlength=q.post.size), out=colptr[1:])
        plan.add(
            Buffer(f"{q.name}_rowptr", "int", (q.pre.size + 1,), "connectivity", rowptr),
            Buffer(f"{q.name}_col", "int", (rows.size,), "connectivity", cols.astype(np.int32)),
            Buffer(f"{q.name}_colptr", "int", (q.post.size + 1,), "connectivity", colptr),
            Buffer(
                f"{q.name}_csc_row",
                "int",
                (rows.size,),
                "connectivity",
                rows[perm].astype(np.int32),
            ),
            Buffer(f"{q.name}_csc_perm", "int", (rows.size,), "connectivity", perm),
            Buffer(f"{q.name}_w", "float", (rows.size,), "weight"),
        )
    else:
        plan.add(Buffer(f"{q.name}_w", "float", (q.pre.size, q.post.size), "weight"))
        if q.mask is not None:  # absent synapses (no self-connection) stay 0 when trained
            mask = q.mask.astype(np.float32).reshape(-1)
            plan.add(Buffer(f"{q.name}_mask", "float", (mask.size,), "connectivity", mask))
