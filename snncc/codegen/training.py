"""Training additions to a KernelPlan: eProp buffers and the printed code of its kernels.

``add_training`` derives the rule (symbolic/eprop.py), adds the buffers it needs (histories of
the per-neuron quantities the traces use, errors, adjoints, gradients, optimiser state) and
prints every formula with the float32 printer. Templates only place the lines in loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from snncc.codegen.names import cname, comment
from snncc.codegen.plan import Buffer, KernelPlan, PopulationPlan, ProjectionPlan, _evaluate
from snncc.codegen.printer import float_literal, kernel_printer
from snncc.codegen.render import flat_assign, param_loads
from snncc.errors import ModelError
from snncc.model.equations import symbol
from snncc.model.network import Network
from snncc.symbolic.eprop import (
    PSI,
    PSI_PREV,
    EProp,
    RuleEquations,
    TraceSystem,
    derive_traces,
    prev,
)
from snncc.symbolic.integrate import I_SYN, SPIKE_PREV


@dataclass
class HiddenCode:
    """Printed pieces for one population trained by eProp."""

    name: str
    size: int
    n_states: int
    forward: list[str]  # after the spike: psi, histories, regulariser
    backward_params: list[str]
    recursion: list[str]  # lam_k from lam_next, w and the histories
    q_expr: str  # Q = lam . c
    reg: str  # "moving", "sequence" or "none"
    reg_seq: str  # C expression of the per-sequence R (n_spikes, T known)
    feedback: str  # buffer holding B (N x K), row-major
    spike_at: str  # C expression (float) of the spike z of neuron j at step t, from history
    online_forward: list[str] = field(default_factory=list)  # psi, D/c/g and R of step t
    online_trace: list[str] = field(default_factory=list)  # one synapse: _e, _eb, _gacc update
    online_loads: list[str] = field(default_factory=list)  # one synapse: coefficient loads
    online_pointers: list[str] = field(default_factory=list)  # element b's coefficients
    trace_names: list[str] = field(default_factory=list)  # per-synapse trace buffers suffixes
    online_pre: list[str] = field(default_factory=list)  # copies of the state of step t-1


@dataclass
class ReadoutCode:
    name: str
    size: int
    n_states: int
    output: str
    error: list[str]  # E and loss at step t for one k (y, _ek = exp(y - ymax), label known)
    recursion: list[str]
    q_expr: str
    param_grads: list[tuple[str, str]]  # (parameter, C expression of dM/dp . lam)
    filtered: str  # Ebar <- gain*E + decay*Ebar_next
    score: str  # _score of unit k after a counted step (the class decision), or ""
    score_init: float  # _score before the first step
    reads_target: bool  # the error uses _target (mse): only then is targets a (B, T, K) buffer


@dataclass
class ProjectionGrad(ProjectionPlan):
    """A trainable projection; ``masked`` if absent synapses (no self-connection) stay 0."""

    masked: bool = False


@dataclass
class OptimizerCode:
    name: str
    state: list[str]  # per-parameter state buffers suffixes (e.g. m, v)
    update: list[str]  # C lines using w, g and the state; scalars come from opt_scalars
    scalars: list[str]


@dataclass
class TrainingPlan:
    rule: EProp
    equations: RuleEquations
    readout: ReadoutCode
    hidden: dict[str, HiddenCode] = field(default_factory=dict)
    projections: list[ProjectionGrad] = field(default_factory=list)
    params: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, name, size)
    optimizer: OptimizerCode | None = None
    online: bool = False  # the per-synapse (online) strategy is generated too
    online_chunk: int = 16  # online: steps whose per-neuron coefficients are kept at once
    online_spike_pops: list[str] = field(default_factory=list)  # their spikes kept per chunk
    online_readout: list[str] = field(default_factory=list)  # one readout synapse: _zk, _gacc
    online_bias: list[tuple[str, str]] = field(default_factory=list)  # (param, update of _bk)
    history_pops: list[str] = field(default_factory=list)  # populations with a z history
    rule_values: dict[str, float] = field(default_factory=dict)  # dt, tau_reg, c_reg, f_target

    def __str__(self) -> str:
        lines = [str(self.equations)]
        lines.append(f"  trainable: {', '.join(n for _, n, _ in self.params)}")
        return "\n".join(lines)


#: CPU: the batch is cut into this many parts (fewer for smaller batches), each summing its own
#: gradients, which are then added in part order. Threads take parts dynamically, so one thread
#: slowed by other work delays no one, and the sum does not depend on the thread count. 8 parts
#: balance 2-8 threads; each costs one gradient-sized buffer and one add.
GRAD_PARTS = 8


def add_training(
    plan: KernelPlan, net: Network, rule: EProp, optimizer, backend: str = "cpu"
) -> TrainingPlan:
    """Derive eProp for ``net`` and extend ``plan`` with what training needs.

    The CPU reads input spikes from their bit words when accumulating gradients and keeps
    the other spike histories as bit words (32x less memory traffic than floats), and it adds
    each step's s Q to the gradients as the backward pass computes Q, so Q is never stored.
    CUDA kernels scan dense float spike histories (inputs get one too) and a stored Q.
    """
    readout = net.populations.get(rule.readout)
    if readout is None:
        raise ModelError(
            f"EProp: the readout population '{rule.readout}' does not exist; populations are "
            f"{', '.join(net.populations)}. Pass EProp(readout=<name>)."
        )
    if readout.model.spiking:
        raise ModelError(
            f"EProp: readout '{readout.name}' must be non-spiking (e.g. LeakyIntegrator)"
        )
    rp = plan.pop(readout.name)
    eqs = rule.equations()
    trainable = [q for q in net.projections.values() if q.trainable]
    hidden = []
    for q in trainable:
        if q.post is readout:
            continue
        if q.post.is_input or not q.post.model.spiking:
            raise ModelError(
                f"EProp: projection '{q.name}' targets '{q.post.name}', which neither spikes "
                "nor is the readout; set trainable=False on it"
            )
        if q.post not in hidden:
            hidden.append(q.post)
    if not trainable:
        raise ModelError("EProp: no trainable projection in the network")
    bias_params = tuple(readout.model.trainable) if rule.train_bias else ()
    out_var = readout.model.output_var
    rts = derive_traces(readout.name, rp.update, output=out_var, trainable=bias_params)
    eqs.readout_traces = rts
    per_step = {PSI, PSI_PREV, SPIKE_PREV, I_SYN} | {prev(s) for s in rts.states}
    per_step |= {symbol(s) for s in rts.states}
    for expr in list(rts.D) + list(rts.c) + [e for col in rts.param_c.values() for e in col]:
        if expr.free_symbols & per_step:
            raise ModelError(
                f"EProp: readout '{readout.name}' ({readout.model.name}) must be linear with "
                f"constant coefficients; its Jacobian has {expr}"
            )
    if rts.D.shape != (1, 1):
        raise ModelError(f"EProp: readout '{readout.name}' must have exactly one state variable")
    K = readout.size
    dt = float(net.dt)
    rule_values = {
        "dt": dt,
        "tau_reg": rule.tau_reg,
        "c_reg": rule.c_reg,
        "f_target": rule.f_target * dt / 1000.0,
    }
    tp = TrainingPlan(rule, eqs, _readout_code(rp, rts, rule), rule_values=rule_values)
    fd, fg = filter_values(tp, rp.values)
    plan.add(
        Buffer("labels", "int", ("B",), "data"),
        Buffer("targets", "float", ("B", "T", K), "data"),
        Buffer("err", "float", ("B", "T", K), "history"),
        Buffer("errf", "float", ("B", "T", K), "history"),
        Buffer("loss", "float", ("B",), "scratch"),
        Buffer("score", "float", ("B", K), "scratch"),  # per-class decision, summed in-kernel
        Buffer(f"{readout.name}_Q", "float", ("B", "T", K), "history"),
        Buffer("filter_decay", "float", (K,), "rule", fd),
        Buffer("filter_gain", "float", (K,), "rule", fg),
        Buffer(
            "rule_scalars",
            "float",
            (4,),
            "rule",
            np.array(
                [rule.error_start, rule.c_reg, rule_values["f_target"], rule.tau_reg],
                dtype=np.float32,
            ),
        ),
    )
    for p in bias_params:
        plan.add(
            Buffer(f"gradp_{readout.name}_{p}", "float", ("B", K), "scratch"),
            Buffer(f"grad_{readout.name}_{p}", "float", (K,), "grad"),
        )
        tp.params.append(("param", f"{readout.name}_{p}", K))
    history = {q.pre.name for q in trainable if backend == "cuda" or not q.pre.is_input}
    history |= {h.name for h in hidden}
    tp.history_pops = [p for p in net.populations if p in history]
    bits = backend == "cpu"  # z histories as bit words, not one float per neuron (CUDA)
    for name in tp.history_pops:
        hp = plan.pop(name)
        if bits:
            words = ("B", "T", hp.spike_words)
            plan.add(Buffer(f"hist_{name}_zbits", "unsigned", words, "history"))
        else:
            plan.add(Buffer(f"hist_{name}_z", "float", ("B", "T", hp.size), "history"))
    for pop in hidden:
        hp = plan.pop(pop.name)
        ts = derive_traces(pop.name, hp.update)
        eqs.traces[pop.name] = ts
        fb = _feedback(plan, net, pop, readout, rule)
        tp.hidden[pop.name] = _hidden_code(plan, hp, ts, eqs, fb, rule_values, bits)
    for q in trainable:
        masked = q.mask is not None and not q.sparse
        tp.projections.append(ProjectionGrad(**vars(plan.proj(q.name)), masked=masked))
        size = q.nnz if q.sparse else q.pre.size * q.post.size
        plan.add(Buffer(f"grad_{q.name}", "float", (size,), "grad"))
        if backend == "cpu":  # one partial sum per part of the batch (see GRAD_PARTS)
            plan.add(Buffer(f"gpart_{q.name}", "float", (GRAD_PARTS, size), "scratch"))
        if masked:
            plan.add(
                Buffer(
                    f"{q.name}_mask",
                    "float",
                    (size,),
                    "rule",
                    q.mask.astype(np.float32).reshape(-1),
                )
            )
        tp.params.append(("weight", q.name, size))
    if optimizer is not None:
        tp.optimizer = optimizer.code()
        plan.add(Buffer("opt_scalars", "float", (len(tp.optimizer.scalars) + 2,), "rule"))
        # per parameter, after each step: the largest |w| and how many values are not finite
        # (divergence is seen on the device; the host reads 8 bytes per parameter)
        plan.add(Buffer("opt_health", "float", (len(tp.params), 2), "scratch"))
        for _kind, name, size in tp.params:
            for s in tp.optimizer.state:
                plan.add(Buffer(f"opt_{s}_{name}", "float", (size,), "optimizer"))
    if backend == "cpu" and rule.strategy != "factorized":
        add_online(plan, net, tp)
    plan.training = tp
    return tp


def filter_values(tp: TrainingPlan, readout_values: dict) -> tuple[np.ndarray, np.ndarray]:
    """The eligibility filter's decay and gain per readout unit, from the readout's parameter
    values (its decay is kappa)."""
    eqs, r = tp.equations, tp.readout
    where = f"population '{r.name}'"
    decay = eqs.readout_traces.D[0, 0]
    kappa = _evaluate(decay, readout_values, tp.rule_values["dt"], where, "kappa")
    kappa = np.broadcast_to(kappa, (r.size,))
    values = {**tp.rule_values, "kappa": kappa}
    fd = _rule_value(eqs.filter_decay, values, "filter_decay", r.size)
    return fd, _rule_value(eqs.filter_gain, values, "filter_gain", r.size)


def _rule_value(expr: sp.Expr, values: dict, what: str, K: int) -> np.ndarray:
    """An EProp expression (in kappa, dt, ...) evaluated per readout unit, as float32."""
    value = _evaluate(expr, values, values["dt"], "EProp", what)
    return np.broadcast_to(np.asarray(value, np.float32), (K,)).copy()


def _feedback(plan: KernelPlan, net: Network, pop, readout, rule: EProp) -> str:
    """The buffer that holds B (n_hidden x K): W_out itself, or a fixed random matrix."""
    if rule.feedback == "symmetric":
        direct = [q for q in net.projections.values() if q.pre is pop and q.post is readout]
        if len(direct) != 1 or direct[0].sparse:
            raise ModelError(
                f"EProp: symmetric feedback for '{pop.name}' needs exactly one dense projection "
                f"from '{pop.name}' to '{readout.name}'; use feedback='random' otherwise"
            )
        return f"{direct[0].name}_w"
    rng = np.random.default_rng(rule.seed + pop.index)
    B = (rng.standard_normal((pop.size, readout.size)) / np.sqrt(pop.size)).astype(np.float32)
    plan.add(Buffer(f"feedback_{pop.name}", "float", (pop.size, readout.size), "feedback", B))
    return f"feedback_{pop.name}"


def spike_history(p: PopulationPlan, t: str, bits: bool) -> str:
    """C expression (float 0/1) of neuron j's spike at step ``t`` of batch element b."""
    if bits:
        word = f"hist_{p.name}_zbits[((size_t)b * T + ({t})) * {p.spike_words} + (j >> 5)]"
        return f"(float)(({word} >> (j & 31)) & 1u)"
    return f"hist_{p.name}_z[((size_t)b * T + ({t})) * {p.size} + j]"


def _history_names(p: PopulationPlan, t: str, bits: bool) -> dict[str, str]:
    """Symbol -> C expression of its value at step ``t`` (states, psi, z, I_syn histories)."""
    n = p.size
    idx = f"((size_t)b * T + ({t})) * {n} + j"
    names = {s: f"hist_{p.name}_{s}[{idx}]" for s in p.update.states}
    names |= {
        "psi": f"hist_{p.name}_psi[{idx}]",
        "I_syn": f"hist_{p.name}_isyn[{idx}]",
        "_z": spike_history(p, t, bits),
    }
    return names


def _shifted(p: PopulationPlan, t: str, bits: bool) -> dict[str, str]:
    """Names for D/c at step ``t``: x_prev, _z, _psi_prev are step t-1 values (initial at t=0)."""
    now, before = _history_names(p, t, bits), _history_names(p, f"{t} - 1", bits)
    names = {"I_syn": now["I_syn"]}
    for s in p.update.states:
        init = float_literal(p.init.get(s, 0.0))
        names[f"{s}_prev"] = f"(({t}) > 0 ? {before[s]} : {init})"
    names["_z"] = f"(({t}) > 0 ? {before['_z']} : 0.0F)"
    names["_psi_prev"] = f"(({t}) > 0 ? {before['psi']} : 0.0F)"
    return names


def _hidden_code(
    plan: KernelPlan,
    p: PopulationPlan,
    ts: TraceSystem,
    eqs: RuleEquations,
    feedback: str,
    rule_values: dict,
    bits: bool,
) -> HiddenCode:
    n = len(ts.states)
    used: set[str] = set()
    exprs = list(ts.D) + list(ts.c) + list(ts.g)
    for e in exprs:
        used |= {s.name for s in e.free_symbols}
    need = {"psi"} | {s for s in p.update.states if s in used or f"{s}_prev" in used}
    if "I_syn" in used:
        need.add("isyn")
    N = p.size
    for q in sorted(need):
        plan.add(Buffer(f"hist_{p.name}_{q}", "float", ("B", "T", N), "history"))
    if not bits:  # the CPU uses each step's Q as it is computed
        plan.add(Buffer(f"{p.name}_Q", "float", ("B", "T", N), "history"))
    printer = kernel_printer()
    fwd = [
        comment(f"eProp: surrogate of '{p.name}' and the per-step quantities its traces need"),
        *flat_assign("const float psi", p.update.psi, "_tp_", printer),
    ]
    idx = f"((size_t)b * T + t) * {N} + j"
    for q in sorted(need):
        value = {"isyn": "I_syn", "psi": "psi"}.get(q) or cname(q)
        fwd.append(f"hist_{p.name}_{q}[{idx}] = {value};")
    sub = {symbol(k): sp.Float(v) for k, v in rule_values.items()}
    if eqs.reg_mode == "moving":
        plan.add(
            Buffer(f"{p.name}_f", "float", ("B", N), "state", rule_values["f_target"]),
            Buffer(f"hist_{p.name}_R", "float", ("B", "T", N), "history"),
        )
        fwd += _moving_regulariser(p, eqs, rule_values, f"hist_{p.name}_R[{idx}]")
    reg_seq = "0.0F"
    if eqs.reg_mode == "sequence":
        reg_seq = kernel_printer({"T": "(float)T", "n_spikes": "_n_spikes"}).doprint(
            eqs.reg_signal.xreplace(sub)
        )
    # backward: lam_k = w g_k + sum_m lam_next_m D_mk(t+1);  Q = lam . c(t)
    g_names = _history_names(p, "t", bits)
    d_names = _shifted(p, "t + 1", bits)
    c_names = _shifted(p, "t", bits)
    pg, pd, pc = kernel_printer(g_names), kernel_printer(d_names), kernel_printer(c_names)
    rec = []
    for k in range(n):
        gk = pg.doprint(ts.g[k]) if ts.g[k] != 0 else None
        terms = [f"_w * ({gk})"] if gk else []
        for m in range(n):
            if ts.D[m, k] != 0:  # step t+1 does not exist at t = T-1 (and lam_next is 0)
                terms.append(f"_lamn{m} * (t + 1 < T ? ({pd.doprint(ts.D[m, k])}) : 0.0F)")
        body = " + ".join(terms) or "0.0F"
        rec.append(f"_lam{k} = {body};  // {ts.states[k]}")
    q_terms = [f"_lam{k} * ({pc.doprint(ts.c[k])})" for k in range(n) if ts.c[k] != 0]
    return HiddenCode(
        p.name,
        N,
        n,
        fwd,
        param_loads(p),
        rec,
        " + ".join(q_terms) or "0.0F",
        eqs.reg_mode,
        reg_seq,
        feedback,
        spike_history(p, "t", bits),
    )


def _moving_regulariser(
    p: PopulationPlan, eqs: RuleEquations, rule_values: dict, target: str
) -> list[str]:
    """f <- reg_state (per neuron, in the forward pass); ``target`` <- R = reg_signal(f)."""
    sub = {symbol(k): sp.Float(v) for k, v in rule_values.items()}
    f_new = eqs.reg_state.xreplace(sub).xreplace(
        {symbol("z"): symbol("_spike"), symbol("f"): symbol("_f_old")}
    )
    signal = eqs.reg_signal.xreplace(sub).xreplace({symbol("f"): symbol("_f")})
    printer = kernel_printer()
    return [
        comment(f"regulariser: f <- {eqs.reg_state}"),
        f"const float _f_old = {p.name}_f[bn];",
        f"const float _f = {printer.doprint(f_new)};",
        f"{p.name}_f[bn] = _f;",
        f"{target} = {printer.doprint(signal)};",
    ]


def _readout_code(rp: PopulationPlan, rts: TraceSystem, rule: EProp) -> ReadoutCode:
    pr = kernel_printer()
    y, m, S, lab, tgt = (symbol(s) for s in ("_y", "_ymax", "_ysum", "_onehot", "_target"))
    score, score_init = "", 0.0
    if rule.loss == "cross_entropy":
        p = symbol("_p")
        err = [
            f"const float _p = {pr.doprint(symbol('_ek') / S)};",  # softmax, exp computed once
            f"const float _E = {pr.doprint(p - lab)};",
            f"const float _loss_term = {pr.doprint(-lab * (y - m - sp.log(S)))};",
        ]
        # the decisions of TrainingMixin._decide, as running per-step updates
        score, score_init = {
            "sum": ("_score += _p;", 0.0),
            "max": ("_score = fmaxf(_score, _y);", -3.4e38),
            "last": ("_score = _y;", 0.0),
        }[rule.decision]
    else:
        e = y - tgt
        err = [
            f"const float _E = {pr.doprint(e)};",
            f"const float _loss_term = {pr.doprint(e**2 / 2)};",
        ]
    lam = "_lam0"
    rec = [f"_lam0 = _E + _lamn0 * ({pr.doprint(rts.D[0, 0])});"]
    grads = [(p, f"{lam} * ({pr.doprint(col[0])})") for p, col in rts.param_c.items()]
    fd, fg, E, Ef = (symbol(s) for s in ("_fd", "_fg", "_E", "_Ebar_next"))
    filt = pr.doprint(fg * E + fd * Ef)
    return ReadoutCode(
        rp.name,
        rp.size,
        1,
        rts.states[0],
        err,
        rec,
        f"{lam} * ({pr.doprint(rts.c[0])})",
        grads,
        filt,
        score,
        score_init,
        rule.loss == "mse",
    )


def template_context(plan: KernelPlan, tp: TrainingPlan) -> dict:
    """The names the training templates use, besides the plan and the printed code."""
    r = tp.readout
    rp = plan.pop(r.name)
    return {
        "training": tp,
        "readout_params": param_loads(rp),
        "sizes": {name: size for kind, name, size in tp.params if kind == "weight"},
        "param_buffer": {f"{r.name}_{p}": f"{r.name}_p_{p}" for p, _ in r.param_grads},
        "masked": {q.name: q.masked for q in tp.projections},
        "tr_loss": tp.rule.loss,
        "exp_term": kernel_printer().doprint(sp.exp(symbol("_y") - symbol("_ymax"))),
        "pre_update": {h.name: h.online_pre for h in tp.hidden.values()} if tp.online else {},
        "online_block": 128,  # online: postsynaptic neurons per block of the synapse sweep
        "grad_parts": GRAD_PARTS,
    }


# --------------------------------------------------------------------- online strategy
#: Steps per online chunk: the forward pass stores each neuron's trace coefficients for this
#: many steps, then every synapse runs through them while its traces are in L1 (instead of
#: streaming all traces through memory every step). Memory stays constant in T.
ONLINE_CHUNK = 16


def add_online(plan: KernelPlan, net: Network, tp: TrainingPlan) -> None:
    """Per-synapse eligibility traces updated every step (memory constant in T).

    Generated for the CPU; the per-sequence regulariser needs the whole sequence first, so a
    rule with it has no online form. Each synapse's traces see the same float operations, in
    the same order, as with one step at a time.
    """
    eqs = tp.equations
    if eqs.reg_mode == "sequence":
        return
    kappa = plan.buffer("filter_decay").init
    if np.ptp(kappa) != 0:  # one filter for all readout units: ebar is per synapse, not per k
        return
    tp.online = True
    tp.online_chunk = C = ONLINE_CHUNK
    for name, hc in tp.hidden.items():
        _online_hidden(plan, plan.pop(name), eqs.traces[name], eqs, tp.rule_values, hc, C)
    for q in tp.projections:
        size = next(s for _, n, s in tp.params if n == q.name)
        n_traces = len(tp.hidden[q.post].trace_names) if q.post in tp.hidden else 1
        # one buffer: dense synapse (i, j) keeps trace k at [i][k][j], sparse synapse s at [k][s]
        plan.add(Buffer(f"otr_{q.name}", "float", ("B", n_traces * size), "online"))
        plan.add(Buffer(f"ogr_{q.name}", "float", ("B", size), "online"))
    r = tp.readout
    rts = eqs.readout_traces
    pr = kernel_printer()
    zk, s = symbol("_zk"), symbol("_s")
    tp.online_readout = [
        f"_zk = {pr.doprint(rts.D[0, 0] * zk + rts.c[0] * s)};",
        "_gacc += _E * _zk;",
    ]
    for pname, col in rts.param_c.items():
        bk = symbol("_bk")
        tp.online_bias.append((pname, f"_bk = {pr.doprint(rts.D[0, 0] * bk + col[0])};"))
        plan.add(
            Buffer(f"otr_{r.name}_{pname}", "float", ("B", r.size), "online"),
            Buffer(f"ogr_{r.name}_{pname}", "float", ("B", r.size), "online"),
        )
    # spikes of the chunk's steps (slot 0: the step before the chunk) for synapses to read
    pres = {q.pre for q in tp.projections if not q.pre_is_input}
    tp.online_spike_pops = [p.name for p in plan.populations if p.name in pres]
    for name in tp.online_spike_pops:
        words = plan.pop(name).spike_words
        plan.add(Buffer(f"ospk_{name}", "unsigned", ("B", C + 1, words), "online"))


def _online_hidden(
    plan: KernelPlan,
    p: PopulationPlan,
    ts: TraceSystem,
    eqs: RuleEquations,
    rule_values: dict,
    hc: HiddenCode,
    C: int,
) -> None:
    n, N = len(ts.states), p.size
    at = f"((size_t)b * {C} + t % {C}) * {N} + j"  # neuron j at step t, in the chunk's buffers
    names = {f"{s}_prev": f"_prev_{s}" for s in ts.states}
    names |= {"_psi_prev": f"{p.name}_psi[bn]", "psi": "psi"}
    pr = kernel_printer(names)
    coefs = {}
    for k in range(n):
        for m in range(n):
            if ts.D[k, m] != 0:
                coefs[f"D{k}{m}"] = ts.D[k, m]
        if ts.c[k] != 0:
            coefs[f"c{k}"] = ts.c[k]
        if ts.g[k] != 0:
            coefs[f"g{k}"] = ts.g[k]
    plan.add(
        Buffer(f"{p.name}_psi", "float", ("B", N), "state"),
        Buffer(f"oL_{p.name}", "float", ("B", C, N), "online"),
        Buffer(f"oR_{p.name}", "float", ("B", C, N), "online"),
    )
    # all coefficients of one step in one buffer, [b][step][coefficient][j]: one base pointer
    # in the synapse loop instead of one per coefficient (too many for the registers)
    plan.add(Buffer(f"oc_{p.name}", "float", ("B", C, len(coefs), N), "online"))
    row = {c: k for k, c in enumerate(coefs)}
    fwd = [
        "// online eProp: per-neuron coefficients of the trace update at step t",
        *flat_assign("const float psi", p.update.psi, "_tp_", kernel_printer()),
    ]
    at_k = f"((size_t)b * {C} + t % {C}) * {len(coefs) * N} + {{k}} * {N} + j"
    fwd += [f"oc_{p.name}[{at_k.format(k=row[c])}] = {pr.doprint(e)};" for c, e in coefs.items()]
    fwd.append(f"{p.name}_psi[bn] = psi;")
    if eqs.reg_mode == "moving":
        fwd += _moving_regulariser(p, eqs, rule_values, f"oR_{p.name}[{at}]")
    else:
        fwd.append(f"oR_{p.name}[{at}] = 0.0F;")
    hc.online_forward = fwd
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
    hc.online_pointers = [
        f"const float* __restrict__ {name} = {buf}_{p.name} + ((size_t)b * {C} + _c) * {width};"
        for name, buf, width in [("_oc", "oc", len(coefs) * N), ("_oL", "oL", N), ("_oR", "oR", N)]
    ]
    hc.online_loads = [f"const float _{c} = _oc[{row[c] * N} + j];" for c in coefs]
    hc.online_loads.append("const float _L = _oL[j], _R = _oR[j];")
    hc.online_trace = (
        [f"const float _n{k} = {pr0.doprint(new[k])};" for k in range(n)]
        + [
            f"const float _el = {pr0.doprint(el)};",
            f"_eb = {pr0.doprint(fd * eb + fg * symbol('_el'))};",
            f"_gacc += {pr0.doprint(symbol('_L') * eb + symbol('_R') * symbol('_el'))};",
        ]
        + [f"_e{k} = _n{k};" for k in range(n)]
    )
    hc.trace_names = [f"e{k}" for k in range(n)] + ["eb"]
    hc.online_pre = [f"const float _prev_{s} = {cname(s)};" for s in ts.states]
