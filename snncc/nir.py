"""NIR (the Neuromorphic Intermediate Representation) import and export.

``export(model_or_net)`` writes a network of NIR-shaped neurons (``snncc.neurons.NIRLIF``,
``CubaLIF``, ``LI``, ``IF``, ``Integrator``) as a ``nir.NIRGraph``; ``load(graph, dt=...)``
builds a ``Network`` from one. NIR is continuous-time, so ``load`` needs the step ``dt`` and a
discretisation; docs/nir.md gives every equation, the reset semantics and the peers' conventions.

The ``nir`` package is imported only when one of these functions runs, so ``import snncc`` does
not need it. Node types are handled through two tables: ``NEURONS`` (a NIR neuron node <-> an
snncc model) and ``EDGE_NODES`` (nodes that sit on a connection: Linear, Affine, and Delay,
which becomes the projection's delay).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snncc.errors import NIRError, ShapeError
from snncc.model import neurons
from snncc.model.network import Network, Population

__all__ = ["export", "load", "NEURONS"]


def _nir():
    try:
        import nir
    except ImportError:
        raise NIRError(
            "NIR import/export needs the nir package: pip install nir (or pip install 'snncc[nir]')"
        ) from None
    return nir


@dataclass(frozen=True)
class NeuronKind:
    """One NIR neuron node and the snncc builder with the same parameters (NIR's names)."""

    nir_type: str  # class name in the nir package
    build: Callable  # snncc.neurons builder
    fields: tuple[str, ...]  # NIR parameters, equal to the builder's
    taus: tuple[str, ...] = ()  # time constants: the builder takes ``integration``
    spiking: bool = True  # the builder takes ``reset`` and ``gamma``


#: snncc model name -> its NIR node.
NEURONS: dict[str, NeuronKind] = {
    "NIRLIF": NeuronKind(
        "LIF", neurons.NIRLIF, ("tau", "r", "v_leak", "v_threshold", "v_reset"), ("tau",)
    ),
    "CubaLIF": NeuronKind(
        "CubaLIF",
        neurons.CubaLIF,
        ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
        ("tau_mem", "tau_syn"),
    ),
    "LI": NeuronKind("LI", neurons.LI, ("tau", "r", "v_leak"), ("tau",), spiking=False),
    "IF": NeuronKind("IF", neurons.IF, ("r", "v_threshold", "v_reset")),
    "Integrator": NeuronKind("I", neurons.Integrator, ("r",), spiking=False),
}
_BY_NIR_TYPE = {k.nir_type: (name, k) for name, k in NEURONS.items()}
_EXPORTABLE = ", ".join(f"snncc.neurons.{n}" for n in NEURONS)

#: NIR nodes snncc cannot import yet, and why.
_UNSUPPORTED = {
    "CubaLI": "snncc has no current-based leaky integrator model yet",
    "Threshold": "a bare Threshold node has no state; use a LIF or IF node",
    "Scale": "a Scale node is not supported; fold the scale into the weights of a Linear node",
    "Flatten": "snncc populations are 1-D; flatten the data before the Input node",
    "Conv1d": "snncc has no convolutions",
    "Conv2d": "snncc has no convolutions",
    "SumPool2d": "snncc has no pooling",
    "AvgPool2d": "snncc has no pooling",
}


# ===================================================================================== export
def export(
    source,
    path: str | Path | None = None,
    *,
    euler_dt: float | None = None,
    populations: Sequence[str] | None = None,
):
    """The network (of a ``Network``, or a ``CompiledModel`` with its trained weights and
    parameters) as a ``nir.NIRGraph``; also written to ``path`` with ``nir.write`` if given.

    By default every parameter is the model's own (float64), so ``load(graph, dt=net.dt,
    integration=<the model's>)`` rebuilds the network exactly. ``euler_dt`` instead rewrites
    the time constants so that forward Euler with step ``euler_dt`` reproduces snncc's discrete
    update (float32 values, chosen so float32 arithmetic recovers the decay factors exactly):
    snnTorch's importer steps every graph with Euler at its fixed dt = 1e-4, so hand it
    ``export(model, euler_dt=1e-4)``. ``populations`` exports only those populations and the
    projections between them (snnTorch's importer has no LI node, so leave the readout out).
    """
    nir = _nir()
    net = source.trained_network() if hasattr(source, "trained_network") else source
    if not isinstance(net, Network):
        raise NIRError(
            f"export: expected a snncc.Network or a compiled model, got {type(source).__name__}"
        )
    if euler_dt is not None and not (_positive(euler_dt)):
        raise NIRError(f"export: euler_dt must be a positive time step, got {euler_dt!r}")
    keep = list(net.populations) if populations is None else list(populations)
    unknown = [p for p in keep if p not in net.populations]
    if unknown:
        raise NIRError(
            f"export: no population '{unknown[0]}'; populations: {', '.join(net.populations)}"
        )
    pops = [p for p in net.populations.values() if p.name in keep]
    projs = [q for q in net.projections.values() if q.pre.name in keep and q.post.name in keep]
    dtype = np.float64 if euler_dt is None else np.float32
    nodes: dict[str, object] = {}
    bias: dict[str, np.ndarray] = {}
    for pop in pops:
        if pop.is_input:
            nodes[pop.name] = nir.Input(input_type={"input": np.array([pop.size])})
            continue
        kind, params = _exportable(pop)
        integration = pop.model.integration if kind.taus else None
        if euler_dt is not None:
            params = _euler_equivalent(kind, params, float(net.dt), integration, euler_dt)
        arrays = {f: np.array(params[f], dtype=dtype) for f in kind.fields if f in params}
        meta = {"snncc_model": pop.model.name}
        if integration is not None:
            meta["integration"] = "euler" if euler_dt is not None else integration
        if kind.spiking:
            meta["gamma"] = float(pop.model.params["gamma"])
        nodes[pop.name] = getattr(nir, kind.nir_type)(**arrays, metadata=meta)
        if np.any(params["bias"] != 0) or "bias" in pop.model.trainable:
            bias[pop.name] = np.array(params["bias"], dtype=dtype)
    edges: list[tuple[str, str]] = []
    for q in projs:
        weight = np.ascontiguousarray(q.weight.T, dtype=np.float32)  # NIR: (n_out, n_in)
        b = bias.pop(q.post.name, None)  # a population's bias rides on its first projection
        nodes[q.name] = nir.Affine(weight=weight, bias=b) if b is not None else nir.Linear(weight)
        default = 0 if q.pre.index < q.post.index else 1  # what a reader does without a Delay
        if q.delay != default:  # a Delay node after the weights, in the graph's time
            delay = _identifier(f"{q.name}_delay", nodes)
            step = float(net.dt if euler_dt is None else euler_dt)
            nodes[delay] = nir.Delay(np.full(q.post.size, q.delay * step))
            edges += [(q.pre.name, q.name), (q.name, delay), (delay, q.post.name)]
        else:
            edges += [(q.pre.name, q.name), (q.name, q.post.name)]
    if bias:
        name = next(iter(bias))
        raise NIRError(
            f"export: population '{name}' has a bias but no incoming projection; NIR carries a "
            "bias only on an Affine node, so connect something to it or set its bias to 0"
        )
    # the populations that project to no other one (a recurrent layer may be a sink)
    sinks = [
        p.name
        for p in pops
        if not p.is_input and not any(q.pre is p and q.post is not p for q in projs)
    ]
    for name in sinks:
        out = _identifier("output" if len(sinks) == 1 else f"output_{name}", nodes)
        nodes[out] = nir.Output(output_type={"output": np.array([net.populations[name].size])})
        edges.append((name, out))
    graph = nir.NIRGraph(
        nodes=nodes,
        edges=edges,
        metadata={
            "written_by": "snncc",
            "dt": float(net.dt if euler_dt is None else euler_dt),
            "time_unit": "ms",
        },
    )
    _check_delays(projs, graph)
    if path is not None:
        nir.write(str(path), graph)
    return graph


def _exportable(pop: Population) -> tuple[NeuronKind, dict[str, np.ndarray]]:
    """The NIR kind of ``pop``'s model and its parameters, one value per neuron; or an error."""
    model = pop.model
    where = f"export: population '{pop.name}' ({model.name})"
    if model.on_spike:
        raise NIRError(
            f"{where} has spike-triggered effects ({', '.join(model.on_spike)} after a spike, "
            "e.g. ALIF's threshold adaptation) and NIR has no node for them; snncc refuses "
            "rather than drop them (docs/nir.md). Export a network of "
            f"{_EXPORTABLE} neurons."
        )
    if model.refractory > 0:
        raise NIRError(f"{where} has a refractory period, which NIR's neurons do not have")
    kind = NEURONS.get(model.name)
    if kind is None:
        hint = ""
        if model.name == "LIF":
            hint = (
                " snncc's LIF resets by subtraction, which NIR cannot express; "
                "neurons.NIRLIF resets to v_reset as NIR does."
            )
        elif model.name == "LeakyIntegrator":
            hint = " Use neurons.LI, NIR's leaky integrator, as the readout."
        raise NIRError(f"{where}: only the NIR node models {_EXPORTABLE} export to NIR.{hint}")
    if kind.spiking and "v_reset" not in model.params:
        raise NIRError(
            f"{where} resets by subtracting v_threshold, which NIR cannot express (NIR's "
            "neurons reset to v_reset); build it with reset='value' to export it"
        )
    kwargs = {k: v for k, v in model.params.items() if k in (*kind.fields, "bias", "gamma")}
    if kind.taus:
        kwargs["integration"] = model.integration
    if not _same_model(model, kind.build(**kwargs)):
        raise NIRError(
            f"{where}: its equations differ from snncc.neurons.{model.name}'s, so it is not "
            f"NIR's {kind.nir_type} node; build it with snncc.neurons.{model.name}"
        )
    n = pop.size
    params = {k: np.broadcast_to(np.asarray(v, np.float64), (n,)) for k, v in model.params.items()}
    return kind, params


def _same_model(a, b) -> bool:
    def shape(m):
        return (
            m.dynamics,
            m.threshold,
            m.reset,
            m.on_spike,
            m.input,
            m.surrogate,
            m.integration,
            m.trainable,
            m.state,
            m.output_var,
            sorted(m.params),
        )

    return shape(a) == shape(b)


def _euler_equivalent(
    kind: NeuronKind, params: dict, dt: float, integration: str | None, euler_dt: float
) -> dict:
    """Parameters whose forward-Euler step of ``euler_dt`` is snncc's step of ``dt``.

    Each time constant becomes euler_dt / (1 - decay), decay being snncc's factor (exp(-dt/tau)
    or 1 - dt/tau); r and w_in stay, as the input gain r dt / tau then stays the same. The
    integrators' v += r dt I keeps its gain with r * dt / euler_dt.
    """
    out = dict(params)
    for tau in kind.taus:
        t = params[tau]
        decay = np.exp(-dt / t) if integration == "exact" else 1.0 - dt / t
        out[tau] = np.array([_euler_tau(float(d), euler_dt) for d in decay], dtype=np.float32)
    if not kind.taus:
        out["r"] = params["r"] * (dt / euler_dt)
    return out


def _euler_tau(decay: float, euler_dt: float) -> np.float32:
    """The float32 tau whose Euler factor 1 - euler_dt / tau is float32(decay) exactly, in
    float32 arithmetic (snnTorch's importer) and in float64 (snncc's) if one tau does both,
    else in float32 arithmetic alone; the nearest tau if neither is found within 64 ulps."""
    target = np.float32(decay)
    start = np.float32(euler_dt / (1.0 - decay))
    candidates = [start]
    up = down = start
    for _ in range(64):
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(0))
        candidates += [up, down]

    def in32(tau):
        return np.float32(1) - np.float32(euler_dt) / tau == target

    def in64(tau):
        return np.float32(1.0 - euler_dt / float(tau)) == target

    for test in (lambda t: in32(t) and in64(t), in32):
        found = next((t for t in candidates if test(t)), None)
        if found is not None:
            return found
    return start


def _check_delays(projections: list, graph) -> None:
    """Without a delay of its own, snncc delivers a projection one step late when its source is
    declared at or after its target; NIR readers delay exactly the edges that close cycles.
    Refuse a mismatch (an explicit delay is a Delay node, exported as such)."""
    nodes, edges = _flatten(_nir(), graph)
    conns = _connections(nodes, edges)
    _, late = _order(nodes, conns)
    for q in projections:
        behind = q.pre.index >= q.post.index
        if behind != (q.name in {c.name for c in late}):
            when = "one step late" if behind else "in the same step"
            raise NIRError(
                f"export: projection '{q.name}' ({q.pre.name} -> {q.post.name}) is delivered "
                f"{when} in snncc (declaration order), but a NIR reader would deliver it "
                f"{'in the same step' if behind else 'one step late'}; declare the "
                "populations in the order spikes flow from the inputs"
            )


# ======================================================================================= load
@dataclass
class _Connection:
    """A path source -> edge nodes -> target: one snncc projection."""

    source: str
    target: str
    via: list[str] = field(default_factory=list)
    weight: np.ndarray | None = None  # (n_target, n_source); None: one-to-one identity
    bias: np.ndarray | None = None
    name: str = ""
    delay: np.ndarray | None = None  # a Delay node's delay per channel, in the graph's time


def _apply_weight(conn: _Connection, node_name: str, node, bias) -> None:
    if conn.weight is not None:
        raise NIRError(
            f"load: the connection {conn.source} -> ... has two weight nodes, '{conn.via[-1]}' "
            f"and '{node_name}'; an snncc projection holds one matrix, so multiply them into "
            "one Linear/Affine node"
        )
    weight = np.asarray(node.weight)
    if weight.ndim != 2:
        raise ShapeError(
            f"load: weight node '{node_name}' has a weight of shape {weight.shape}; snncc "
            "needs a matrix (n_out, n_in)"
        )
    conn.weight = weight
    conn.bias = None if bias is None else np.asarray(bias)


def _apply_delay(conn: _Connection, node_name: str, node) -> None:
    delay = np.asarray(node.delay, np.float64).reshape(-1)
    conn.delay = delay if conn.delay is None else conn.delay + delay


#: NIR nodes that sit on a connection, and how each changes it.
EDGE_NODES: dict[str, Callable] = {
    "Linear": lambda conn, name, node: _apply_weight(conn, name, node, None),
    "Affine": lambda conn, name, node: _apply_weight(conn, name, node, node.bias),
    "Delay": _apply_delay,
}


def _delay_steps(conn: _Connection, dt: float, late: bool) -> int | None:
    """The projection's delay in steps: a Delay node's time / dt (one value for all channels),
    or None (snncc's default: the step itself, one step late for a connection closing a cycle).
    A delay of 0 on a cycle is one step: the state of the loop's neurons has to carry it."""
    if conn.delay is None:
        return None
    steps = conn.delay / dt
    if not np.all(np.isfinite(steps)) or np.any(steps < 0):
        raise NIRError(f"load: Delay on '{conn.name}' has a negative or non-finite delay")
    rounded = np.round(steps)
    if np.ptp(rounded) != 0 or not np.allclose(steps, rounded, rtol=0, atol=1e-6):
        raise NIRError(
            f"load: the Delay on '{conn.name}' is {conn.delay.tolist()} (in the graph's time), "
            f"which is not one whole number of steps of dt={dt:g} for all channels; snncc has "
            "one delay per projection, a whole number of steps"
        )
    d = int(rounded[0])
    return max(d, 1) if late else d


def load(
    graph,
    dt: float | None = None,
    *,
    integration: str = "euler",
    reset: str = "value",
    seed: int = 0,
) -> Network:
    """A ``Network`` from a ``nir.NIRGraph`` (or a NIR file, read with ``nir.read``).

    ``dt`` (ms, as every snncc time) is required: NIR's equations are continuous-time.
    ``integration``: "euler" (1 - dt/tau, how snnTorch and Norse step NIR graphs) or "exact"
    (exp(-dt/tau); what snncc integrates by default). ``reset``: "value" (NIR: v -> v_reset)
    or "subtract" (v -> v - v_threshold: snnTorch's default neurons, which its exporter writes
    with v_reset = 0). Populations and projections are named after the nodes.
    """
    nir = _nir()
    if isinstance(graph, (str, Path)):
        if not Path(graph).is_file():
            raise NIRError(f"load: no NIR file at '{graph}'")
        try:
            graph = nir.read(str(graph))
        except Exception as err:  # h5py/nir give many kinds; the user needs the file named
            raise NIRError(f"load: '{graph}' is not a readable NIR file ({err})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"load: expected a nir.NIRGraph or a NIR file, got {type(graph).__name__}")
    if dt is None:
        written = graph.metadata.get("dt") if isinstance(graph.metadata, dict) else None
        hint = f" (its metadata says it was written for dt={float(written):g})" if written else ""
        raise NIRError(
            "load: give the time step, e.g. load(graph, dt=1.0): NIR's neurons are "
            f"continuous-time, so the discrete step is the reader's choice{hint}. Graphs from "
            "snnTorch are written for its fixed dt=1e-4 and integration='euler'."
        )
    if not _positive(dt):
        raise NIRError(f"load: dt must be a positive finite time step in ms, got {dt!r}")
    if integration not in neurons.INTEGRATIONS:
        raise NIRError(
            f"load: integration '{integration}' is not one of {', '.join(neurons.INTEGRATIONS)}"
        )
    if reset not in neurons.RESETS:
        raise NIRError(f"load: reset '{reset}' is not one of {', '.join(neurons.RESETS)}")
    nodes, edges = _flatten(nir, graph)
    conns = _connections(nodes, edges)
    order, late = _order(nodes, conns)
    sizes = {name: _size(name, nodes[name]) for name in order}
    biases = _biases(conns, sizes)
    net = Network(dt=float(dt), seed=seed)
    names: dict[str, str] = {}
    for name in order:
        node = nodes[name]
        names[name] = _identifier(name, names.values())
        if isinstance(node, nir.Input):
            net.add_input(names[name], sizes[name])
            continue
        model = _model(name, node, biases.get(name, 0.0), integration, reset)
        net.add_population(names[name], sizes[name], model)
    for conn in conns:
        pre, post = sizes[conn.source], sizes[conn.target]
        if conn.weight is None:
            if pre != post:
                raise ShapeError(
                    f"load: node '{conn.source}' ({pre} neurons) feeds node '{conn.target}' "
                    f"({post} neurons) directly; a one-to-one edge needs equal sizes"
                )
            weight = np.eye(pre, dtype=np.float32)
        else:
            if conn.weight.shape != (post, pre):
                raise ShapeError(
                    f"load: weight node '{conn.via[0]}' has shape {conn.weight.shape}, but it "
                    f"connects '{conn.source}' ({pre} neurons) to '{conn.target}' ({post} "
                    f"neurons): NIR weights are (n_out, n_in) = ({post}, {pre})"
                )
            weight = conn.weight.T
        taken = set(net.populations) | set(net.projections)
        net.connect(
            names[conn.source],
            names[conn.target],
            name=_identifier(conn.name, taken),
            weight=np.ascontiguousarray(weight),
            delay=_delay_steps(conn, float(dt), any(conn is c for c in late)),
        )
    return net


def _flatten(nir, graph, prefix: str = "") -> tuple[dict[str, object], list[tuple[str, str]]]:
    """Nested NIRGraph nodes opened up (names joined by "."), their Input/Output nodes and
    Identity nodes contracted away: (nodes, edges) of one flat graph."""
    nodes: dict[str, object] = {}
    edges: list[tuple[str, str]] = []
    ports: dict[str, tuple[str, str]] = {}
    through: list[str] = []  # a list, not a set: the edges' order must not depend on hashing
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = _flatten(nir, node, full + ".")
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise NIRError(
                    f"load: subgraph '{full}' has {len(ins)} Input and {len(outs)} Output "
                    "nodes; snncc opens subgraphs with exactly one of each"
                )
            ports[full] = (f"{full}.{ins[0]}", f"{full}.{outs[0]}")
            through += ports[full]
            nodes.update(inner)
            edges += inner_edges
        else:
            nodes[full] = node
            if _kind_name(node) == "Identity":
                through.append(full)
    for a, b in graph.edges:
        for end in (a, b):
            if end not in graph.nodes:
                raise NIRError(f"load: edge ({a}, {b}) names '{prefix}{end}', which is no node")
        src = ports[prefix + a][1] if prefix + a in ports else prefix + a
        dst = ports[prefix + b][0] if prefix + b in ports else prefix + b
        edges.append((src, dst))
    for p in through:  # contract pass-through nodes: a -> p -> b becomes a -> b
        into = [a for a, b in edges if b == p and a != p]
        out_of = [b for a, b in edges if a == p and b != p]
        if (p, p) in edges:
            raise NIRError(f"load: a cycle without a neuron runs through node '{p}'")
        edges = [e for e in edges if p not in e] + [(a, b) for a in into for b in out_of]
        del nodes[p]
    return nodes, edges


def _kind_name(node) -> str:
    return type(node).__name__


def _connections(nodes: dict, edges: list[tuple[str, str]]) -> list[_Connection]:
    """Every path from an Input or neuron node through edge nodes to a neuron node."""
    for name, node in nodes.items():
        t = _kind_name(node)
        if t not in ("Input", "Output") and t not in _BY_NIR_TYPE and t not in EDGE_NODES:
            why = _UNSUPPORTED.get(t, "it is no NIR node type snncc knows")
            supported = ", ".join(["Input", "Output", *EDGE_NODES, *_BY_NIR_TYPE, "NIRGraph"])
            raise NIRError(f"load: node '{name}' is a {t} node: {why}. snncc imports {supported}.")
    succ: dict[str, list[str]] = {name: [] for name in nodes}
    for a, b in edges:
        succ[a].append(b)
    _refuse_cycles_without_neuron(nodes, succ)
    conns: list[_Connection] = []
    for src, node in nodes.items():
        t = _kind_name(node)
        if t not in _BY_NIR_TYPE and t != "Input":
            continue
        stack = [_Connection(src, "")]
        while stack:
            conn = stack.pop()
            at = conn.via[-1] if conn.via else src
            for nxt in reversed(succ[at]):
                nt = _kind_name(nodes[nxt])
                if nt == "Input":
                    raise NIRError(f"load: edge ({at}, {nxt}) leads into an Input node")
                if nt == "Output":
                    if conn.via:
                        raise NIRError(
                            f"load: Output node '{nxt}' is fed by edge node '{at}'; snncc's "
                            "outputs are populations, so put a neuron node (e.g. LI) before it"
                        )
                    continue
                if nt in _BY_NIR_TYPE:
                    conns.append(
                        _Connection(
                            src, nxt, list(conn.via), conn.weight, conn.bias, "", conn.delay
                        )
                    )
                    continue
                step = _Connection(
                    src, "", [*conn.via, nxt], conn.weight, conn.bias, "", conn.delay
                )
                EDGE_NODES[nt](step, nxt, nodes[nxt])
                stack.append(step)
    # in the order of the graph's edges (which nir.write keeps; node order it does not), so
    # the inputs of a population are summed in the order they were exported
    first_edge = {e: i for i, e in reversed(list(enumerate(edges)))}
    conns.sort(key=lambda c: first_edge[(c.source, c.via[0] if c.via else c.target)])
    per_via: dict[str, int] = {}
    for c in conns:
        key = c.via[0] if c.via else f"{c.source}_to_{c.target}"
        per_via[key] = per_via.get(key, 0) + 1
    for c in conns:
        key = c.via[0] if c.via else f"{c.source}_to_{c.target}"
        c.name = key if per_via[key] == 1 else f"{key}_{c.source}_{c.target}"
    return conns


def _refuse_cycles_without_neuron(nodes: dict, succ: dict[str, list[str]]) -> None:
    """A cycle through edge nodes only would be an algebraic loop: no state delays it."""
    edge_nodes = [n for n, v in nodes.items() if _kind_name(v) in EDGE_NODES]  # graph order
    state = dict.fromkeys(edge_nodes, 0)  # 0 new, 1 on the path, 2 done
    for root in edge_nodes:
        if state[root]:
            continue
        path, stack = [], [(root, iter(succ[root]))]
        state[root] = 1
        path.append(root)
        while stack:
            at, it = stack[-1]
            nxt = next((n for n in it if n in edge_nodes), None)
            if nxt is None:
                stack.pop()
                state[at] = 2
                path.pop()
            elif state[nxt] == 1:
                loop = path[path.index(nxt) :] + [nxt]
                raise NIRError(
                    f"load: the cycle {' -> '.join(loop)} has no neuron node; every "
                    "recurrent loop needs a neuron to hold its state from one step to the next"
                )
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(succ[nxt])))


def _order(nodes: dict, conns: list[_Connection]) -> tuple[list[str], list[_Connection]]:
    """Population order and the connections delivered one step late.

    A depth-first walk from the Input nodes (in the graph's order) marks each connection into
    a node still on the walk's path as late: it closes a cycle, like a recurrent projection.
    The populations are then sorted so every other connection runs forward (ties keep the
    graph's order), which makes snncc deliver exactly the marked ones a step late.
    """
    pops = [
        n for n, v in nodes.items() if _kind_name(v) == "Input" or _kind_name(v) in _BY_NIR_TYPE
    ]
    out: dict[str, list[_Connection]] = {n: [] for n in pops}
    for c in conns:
        out[c.source].append(c)
    state = dict.fromkeys(pops, 0)
    late: list[_Connection] = []
    roots = [n for n in pops if _kind_name(nodes[n]) == "Input"] + pops
    for root in roots:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:
            at, it = stack[-1]
            c = next(it, None)
            if c is None:
                state[at] = 2
                stack.pop()
            elif state[c.target] == 1:
                late.append(c)
            elif state[c.target] == 0:
                state[c.target] = 1
                stack.append((c.target, iter(out[c.target])))
    forward = [c for c in conns if not any(c is x for x in late)]
    indeg = dict.fromkeys(pops, 0)
    for c in forward:
        indeg[c.target] += 1
    order: list[str] = []
    ready = [n for n in pops if indeg[n] == 0]
    while ready:
        n = min(ready, key=pops.index)
        ready.remove(n)
        order.append(n)
        for c in forward:
            if c.source == n:
                indeg[c.target] -= 1
                if indeg[c.target] == 0:
                    ready.append(c.target)
    return order, late


def _size(name: str, node) -> int:
    if _kind_name(node) == "Input":
        shape = np.asarray(next(iter(node.input_type.values())))
        if shape.size != 1:
            raise ShapeError(
                f"load: Input node '{name}' has shape {shape.tolist()}; snncc inputs are 1-D "
                "(flatten the data first)"
            )
        return int(shape[0])
    _, kind = _BY_NIR_TYPE[_kind_name(node)]
    shapes = {f: np.shape(getattr(node, f)) for f in kind.fields if getattr(node, f) is not None}
    first = next(iter(shapes.values()))
    if len(first) != 1 or any(s != first for s in shapes.values()):
        raise ShapeError(
            f"load: node '{name}' ({_kind_name(node)}) has parameters of shapes "
            f"{ {f: list(s) for f, s in shapes.items()} }; snncc needs one value per neuron, "
            "the same shape (n,) for every parameter"
        )
    return int(first[0])


def _biases(conns: list[_Connection], sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """Each neuron node's constant input: the sum of the Affine biases on its connections."""
    out: dict[str, np.ndarray] = {}
    for c in conns:
        if c.bias is None:
            continue
        if c.bias.shape != (sizes[c.target],):
            raise ShapeError(
                f"load: Affine node '{c.via[0]}' has a bias of shape {c.bias.shape}; it feeds "
                f"'{c.target}' ({sizes[c.target]} neurons)"
            )
        out[c.target] = out.get(c.target, 0.0) + c.bias.astype(np.float64)
    return out


def _model(name: str, node, bias, integration: str, reset: str):
    """The snncc model of one NIR neuron node (uniform parameters become numbers)."""
    _, kind = _BY_NIR_TYPE[_kind_name(node)]
    kwargs = {f: _value(getattr(node, f)) for f in kind.fields}
    kwargs["bias"] = _value(bias)
    meta = node.metadata if isinstance(node.metadata, dict) else {}
    for tau in kind.taus:
        if np.any(np.asarray(kwargs[tau]) <= 0):
            raise NIRError(f"load: node '{name}' has a time constant {tau} <= 0")
    if kind.taus:
        kwargs["integration"] = integration
        written = meta.get("integration")
        if written is not None and str(written) != integration:
            warnings.warn(
                f"NIR node '{name}' was written for integration='{written}'; it is loaded "
                f"with integration='{integration}' as asked",
                stacklevel=3,
            )
    if kind.spiking:
        kwargs["reset"] = reset
        if "gamma" in meta:  # only learning uses it: the surrogate's scale
            kwargs["gamma"] = float(meta["gamma"])
        if reset == "subtract":
            if np.any(np.asarray(kwargs["v_reset"]) != 0):
                raise NIRError(
                    f"load: reset='subtract' reads graphs whose v_reset is 0 (snnTorch writes "
                    f"0 for its subtract-reset neurons), but node '{name}' resets to "
                    f"{kwargs['v_reset']}; load it with reset='value'"
                )
            del kwargs["v_reset"]
    return kind.build(**kwargs)


def _value(a) -> float | np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0 or (arr.size and np.all(arr == arr.reshape(-1)[0])):
        return float(arr.reshape(-1)[0])
    return arr.copy()


def _identifier(name: str, taken) -> str:
    base = re.sub(r"\W", "_", name) or "node"
    if not base[0].isalpha() and base[0] != "_":
        base = "n_" + base
    out, k = base, 2
    while out in set(taken):
        out, k = f"{base}_{k}", k + 1
    return out


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0
