"""The online eProp strategy (CPU): per-synapse eligibility traces, memory constant in T.

The forward pass runs a chunk of steps, storing each neuron's trace coefficients (D, c, g),
learning signal and regulariser per step; then every synapse runs through the chunk's steps
while its traces are in L1 (instead of streaming all traces through memory every step). Each
synapse sees the same float operations, in the same order, as with one step at a time. The
per-sequence regulariser needs the whole sequence first, so a rule with it has no online form.
``add_online`` lays out the buffers; ``online_code`` prints.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from snncc.codegen.names import cname, comment
from snncc.codegen.plan import Buffer, KernelPlan
from snncc.codegen.printer import kernel_printer
from snncc.codegen.render import flat_assign
from snncc.codegen.training_plan import OnlinePlan, TrainingPlan
from snncc.model.equations import symbol

#: Steps per online chunk: the forward pass stores each neuron's trace coefficients for this
#: many steps, then every synapse runs through them while its traces are in L1.
ONLINE_CHUNK = 16


def _coefficients(ts, params: list[str]) -> dict[str, sp.Expr]:
    """The nonzero entries of D, c and g, named D<k><m>, c<k>, g<k>; for each trained
    parameter p, those of dM/dp (P<k>_<p>) and psi dmargin/dp (G_<p>)."""
    n = len(ts.states)
    coefs = {}
    for k in range(n):
        for m in range(n):
            if ts.D[k, m] != 0:
                coefs[f"D{k}{m}"] = ts.D[k, m]
        if ts.c[k] != 0:
            coefs[f"c{k}"] = ts.c[k]
        if ts.g[k] != 0:
            coefs[f"g{k}"] = ts.g[k]
    for p in params:
        for k, e in enumerate(ts.param_c[p]):
            if e != 0:
                coefs[f"P{k}_{p}"] = e
        if ts.param_g.get(p, 0) != 0:
            coefs[f"G_{p}"] = ts.param_g[p]
    return coefs


def add_online(plan: KernelPlan, tp: TrainingPlan) -> None:
    """Buffers of the online strategy (left out when the rule has no online form)."""
    eqs = tp.equations
    if eqs.reg_mode == "sequence":
        return
    if np.ptp(plan.buffer("filter_decay").init) != 0:  # one filter for all readout units
        return
    C = ONLINE_CHUNK
    pres = {q.pre for q in tp.projections if not q.pre_is_input}
    online = OnlinePlan(C, [p.name for p in plan.populations if p.name in pres])
    for name in online.spike_pops:
        online.lead[name] = max(q.delay for q in tp.projections if q.pre == name) or 1
    tp.online = online
    for name, hp in tp.hidden.items():
        N, n_coefs = hp.size, len(_coefficients(eqs.traces[name], hp.params))
        plan.add(
            Buffer(f"{name}_psi", "float", ("B", N), "state"),
            Buffer(f"oL_{name}", "float", ("B", C, N), "online"),
            Buffer(f"oR_{name}", "float", ("B", C, N), "online"),
            # all coefficients of one step in one buffer, [b][step][coefficient][j]: one base
            # pointer in the synapse loop instead of one per coefficient (too many registers)
            Buffer(f"oc_{name}", "float", ("B", C, n_coefs, N), "online"),
        )
        n_traces = _n_traces(hp)
        for pname in hp.params:  # a neuron's traces of its own parameter, like a synapse's
            plan.add(
                Buffer(f"otr_{name}_{pname}", "float", ("B", n_traces * N), "online"),
                Buffer(f"ogr_{name}_{pname}", "float", ("B", N), "online"),
            )
    for q in tp.projections:
        size = next(s for _, n, s in tp.params if n == q.name)
        n_traces = _n_traces(tp.hidden[q.post]) if q.post in tp.hidden else 1
        # one buffer: dense synapse (i, j) keeps trace k at [i][k][j], sparse synapse s at [k][s]
        plan.add(Buffer(f"otr_{q.name}", "float", ("B", n_traces * size), "online"))
        plan.add(Buffer(f"ogr_{q.name}", "float", ("B", size), "online"))
    r = tp.readout
    for pname in r.params:
        plan.add(
            Buffer(f"otr_{r.name}_{pname}", "float", ("B", r.size), "online"),
            Buffer(f"ogr_{r.name}_{pname}", "float", ("B", r.size), "online"),
        )
    # spikes of the chunk's steps and the `lead` steps before it, for the synapses to read
    for name in online.spike_pops:
        words = plan.pop(name).spike_words
        plan.add(Buffer(f"ospk_{name}", "unsigned", ("B", C + online.lead[name], words), "online"))


def _n_traces(hp) -> int:
    """Floats a synapse into ``hp`` keeps: its eps per state, ebar, and ebar of the last
    ``signal_delay`` steps (a delayed readout's error of step t meets ebar of t - delay)."""
    return len(hp.states) + 1 + hp.signal_delay


def online_code(plan: KernelPlan, tp: TrainingPlan, hidden: dict) -> dict:
    """The printed pieces of the online strategy, into ``hidden[name].online`` and the
    template context returned."""
    eqs, C = tp.equations, tp.online.chunk
    for name, hc in hidden.items():
        hc.online = _hidden_online(plan, tp, name, C)
    rts = eqs.readout_traces
    pr = kernel_printer()
    zk, s, bk = symbol("_zk"), symbol("_s"), symbol("_bk")
    return {
        "online": tp.online,
        "online_readout": [
            f"_zk = {pr.doprint(rts.D[0, 0] * zk + rts.c[0] * s)};",
            "_gacc += _E * _zk;",
        ],
        "online_bias": [
            (pname, f"_bk = {pr.doprint(rts.D[0, 0] * bk + col[0])};")
            for pname, col in rts.param_c.items()
        ],
        "pre_update": {name: hc.online["pre"] for name, hc in hidden.items()},
    }


def _hidden_online(plan: KernelPlan, tp: TrainingPlan, name: str, C: int) -> dict:
    from snncc.codegen.training_code import moving_regulariser

    p, eqs = plan.pop(name), tp.equations
    ts = eqs.traces[name]
    n, N = len(ts.states), p.size
    names = {f"{s}_prev": f"_prev_{s}" for s in ts.states}
    names |= {"_psi_prev": f"{p.name}_psi[bn]", "psi": "psi"}
    pr = kernel_printer(names)
    params = tp.hidden[name].params
    coefs = _coefficients(ts, params)
    row = {c: k for k, c in enumerate(coefs)}
    oc = plan.buffer(f"oc_{name}")
    fwd = [
        comment("online eProp: per-neuron coefficients of the trace update at step t"),
        *flat_assign("const float psi", p.update.psi, "_tp_", kernel_printer()),
    ]
    step = f"t % {C}"
    fwd += [f"{oc.at('b', step, row[c], 'j')} = {pr.doprint(e)};" for c, e in coefs.items()]
    fwd.append(f"{p.name}_psi[bn] = psi;")
    r_at = plan.buffer(f"oR_{name}").at("b", step, "j")
    if eqs.reg_mode == "moving":
        fwd += moving_regulariser(p, eqs, tp.rule_values, r_at)
    else:
        fwd.append(f"{r_at} = 0.0F;")
    # one synapse: eps <- D eps + c s;  e = g . eps;  ebar <- fd ebar + fg e;  dW += L ebar + R e
    e = [symbol(f"_e{k}") for k in range(n)]
    new = []
    for k in range(n):
        expr = sum(
            (symbol(f"_D{k}{m}") * e[m] for m in range(n) if f"D{k}{m}" in coefs), sp.Integer(0)
        )
        if f"c{k}" in coefs:
            expr += symbol(f"_c{k}") * symbol("_s")
        new.append(expr)
    el = sum(
        (symbol(f"_g{k}") * symbol(f"_n{k}") for k in range(n) if f"g{k}" in coefs), sp.Integer(0)
    )
    fd, fg, eb = symbol("_fd"), symbol("_fg"), symbol("_eb")
    pr0 = kernel_printer()
    # the sweep reads step _c of element b's chunk at constant offsets from three pointers
    pointers = [
        f"const float* __restrict__ {var} = {buf}_{p.name} + ((size_t)b * {C} + _c) * {width};"
        for var, buf, width in [("_oc", "oc", len(coefs) * N), ("_oL", "oL", N), ("_oR", "oR", N)]
    ]

    def loads(names) -> list[str]:
        out = [f"const float _{c} = _oc[{row[c] * N} + j];" for c in names]
        return out + ["const float _L = _oL[j], _R = _oR[j];"]

    # a delayed readout (delay d): sum_t B errf^(t+d) e^t = sum_t L^t ebar^(t-d), so the
    # learning signal of step t meets ebar of d steps before, kept in _eb1 .. _eb<d>
    d = tp.hidden[name].signal_delay
    eb_then = symbol(f"_eb{d}") if d else eb
    shift = [f"_eb{m} = _eb{m - 1};" for m in range(d, 1, -1)] + (["_eb1 = _eb;"] if d else [])

    def trace(new: list[sp.Expr], el: sp.Expr) -> list[str]:
        return (
            [f"const float _n{k} = {pr0.doprint(new[k])};" for k in range(n)]
            + [
                f"const float _el = {pr0.doprint(el)};",
                f"_eb = {pr0.doprint(fd * eb + fg * symbol('_el'))};",
                f"_gacc += {pr0.doprint(symbol('_L') * eb_then + symbol('_R') * symbol('_el'))};",
            ]
            + [f"_e{k} = _n{k};" for k in range(n)]
            + shift
        )

    # a trained parameter p of neuron j: the synapse's traces with dM/dp in place of c s, and
    # psi dmargin/dp added to e (the factorised form's lam . dM/dp + w psi dmargin/dp)
    param_traces = []
    for q in params:
        new_q = [
            expr.subs(symbol("_s"), 0) + (symbol(f"_P{k}_{q}") if f"P{k}_{q}" in coefs else 0)
            for k, expr in enumerate(new)
        ]
        el_q = el + (symbol(f"_G_{q}") if f"G_{q}" in coefs else 0)
        param_traces.append((q, trace(new_q, el_q)))
    synapse_coefs = [c for c in coefs if c[0] in "Dcg"]
    return {
        "forward": fwd,
        "trace": trace(new, el),
        "loads": loads(synapse_coefs),
        "param_loads": loads([c for c in coefs if c[0] != "c"]),
        "param_traces": param_traces,
        "pointers": pointers,
        "trace_names": [f"e{k}" for k in range(n)] + ["eb"] + [f"eb{m}" for m in range(1, d + 1)],
        "pre": [f"const float _prev_{s} = {cname(s)};" for s in ts.states],
    }
