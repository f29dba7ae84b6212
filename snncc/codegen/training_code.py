"""Training code: every formula of a TrainingPlan printed as float32 C, for the templates.

Printing only: nothing here adds a buffer or reads the Network. The templates place these
lines in loops and kernels; each index comes from the buffer that owns it (Buffer.index).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from snncc.codegen.names import cname, comment
from snncc.codegen.plan import KernelPlan, PopulationPlan
from snncc.codegen.printer import Float32Printer, float_literal, kernel_printer
from snncc.codegen.render import flat_assign, param_loads
from snncc.codegen.training_plan import POSITIVE_FLOOR, HiddenPlan, TrainingPlan
from snncc.model.equations import symbol
from snncc.symbolic.eprop import RuleEquations
from snncc.symbolic.loss import EK, YSUM


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
    reg_at: str  # the moving regulariser's R of neuron j at step t
    feedback: str  # buffer holding B (N x K), row-major
    spike_at: str  # C expression (float) of the spike z of neuron j at step t, from history
    q_at: str  # where Q of (b, t, j) is stored (a target that does not fuse it)
    param_grads: list[tuple[str, str]] = field(default_factory=list)  # (param, dLoss/dp at t)
    signal_delay: int = 0  # eProp: the learning signal of step t is the error of t + delay
    outgoing: list = field(default_factory=list)  # exact rules: ProjectionPlans its spikes leave
    q_ring: int = 1  # steps of Q kept
    psi_at: str = ""  # exact rules whose signal is used only times psi: psi of (b, t, j)
    online: dict = field(default_factory=dict)  # the online strategy's pieces (online.py)


@dataclass
class ReadoutCode:
    name: str
    size: int
    output: str
    error: list[str]  # E and loss at step t for one k (_y, _ek = exp(_y - _ymax), label known)
    recursion: list[str]
    q_expr: str
    param_grads: list[tuple[str, str]]  # (parameter, C expression of dM/dp . lam)
    filtered: str  # Ebar <- gain*E + decay*Ebar_next
    score: str  # _score of unit k after a counted step (the class decision), or ""
    reads_target: bool  # the error uses _target (mse): only then is targets a (B, T, K) buffer


@dataclass
class OptimizerCode:
    name: str
    state: tuple[str, ...]  # per-parameter state buffers suffixes (e.g. m, v)
    update: list[str]  # C lines using w, g and the state; scalars come from opt_scalars
    scalars: tuple[str, ...]


def optimizer_code(optimizer) -> OptimizerCode:
    pr = Float32Printer()
    lines = [f"{t} = {pr.doprint(e)};" for t, e in optimizer.update()]
    return OptimizerCode(type(optimizer).__name__, optimizer.state, lines, optimizer.scalar_names)


def spike_history(plan: KernelPlan, p: PopulationPlan, t: str) -> str:
    """C expression (float 0/1) of neuron j's spike at step ``t`` of batch element b."""
    word = plan.buffer(f"hist_{p.name}_zbits").at("b", t, "j >> 5")
    return f"(float)(({word} >> (j & 31)) & 1u)"


def _history_names(plan: KernelPlan, p: PopulationPlan, t: str) -> dict[str, str]:
    """Symbol -> C expression of its value at step ``t`` (states, psi, z, I_syn histories)."""
    have = {b.name for b in plan.buffers}

    def hist(q: str) -> str:
        name = f"hist_{p.name}_{q}"
        return plan.buffer(name).at("b", t, "j") if name in have else f"/* no {name} */0.0F"

    names = {s: hist(s) for s in p.update.states}
    names |= {"psi": hist("psi"), "I_syn": hist("isyn"), "_z": spike_history(plan, p, t)}
    return names


def _shifted(plan: KernelPlan, p: PopulationPlan, t: str) -> dict[str, str]:
    """Names for D/c at step ``t``: x_prev, _z, _psi_prev are step t-1 values (initial at t=0)."""
    now, before = _history_names(plan, p, t), _history_names(plan, p, f"{t} - 1")
    names = {"I_syn": now["I_syn"]}
    for s in p.update.states:
        init = float_literal(p.init.get(s, 0.0))
        names[f"{s}_prev"] = f"(({t}) > 0 ? {before[s]} : {init})"
    names["_z"] = f"(({t}) > 0 ? {before['_z']} : 0.0F)"
    names["_psi_prev"] = f"(({t}) > 0 ? {before['psi']} : 0.0F)"
    return names


def hidden_code(plan: KernelPlan, tp: TrainingPlan, hp: HiddenPlan) -> HiddenCode:
    p = plan.pop(hp.name)
    eqs = tp.equations
    ts = eqs.traces[hp.name]
    n = len(ts.states)
    printer = kernel_printer()
    fwd = [
        comment(f"eProp: surrogate of '{p.name}' and the per-step quantities its traces need"),
        *flat_assign("const float psi", p.update.psi, "_tp_", printer),
    ]
    for q in hp.needs:
        value = {"isyn": "I_syn", "psi": "psi"}.get(q) or cname(q)
        fwd.append(f"{plan.buffer(f'hist_{p.name}_{q}').at('b', 't', 'j')} = {value};")
    reg_at = ""
    if hp.reg == "moving":
        reg_at = plan.buffer(f"hist_{p.name}_R").at("b", "t", "j")
        fwd += moving_regulariser(p, eqs, tp.rule_values, reg_at)
    reg_seq = "0.0F"
    if hp.reg == "sequence":
        sub = {symbol(k): sp.Float(v) for k, v in tp.rule_values.items()}
        reg_seq = kernel_printer({"T": "(float)T", "n_spikes": "_n_spikes"}).doprint(
            eqs.reg_signal.xreplace(sub)
        )
    # backward: lam_k = w g_k + sum_m lam_next_m D_mk(t+1);  Q = lam . c(t)
    pg = kernel_printer(_history_names(plan, p, "t"))
    pd = kernel_printer(_shifted(plan, p, "t + 1"))
    pc = kernel_printer(_shifted(plan, p, "t"))
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
    # a trained parameter p: lam^t . dM^t/dp, and w^t psi^t dmargin/dp for the spike's own p
    param_grads = []
    for name in hp.params:
        terms = [f"_lam{k} * ({pc.doprint(e)})" for k, e in enumerate(ts.param_c[name]) if e != 0]
        if ts.param_g.get(name, 0) != 0:
            terms.append(f"_w * ({pg.doprint(ts.param_g[name])})")
        param_grads.append((name, " + ".join(terms) or "0.0F"))
    q_name = f"{p.name}_Q"
    q_at = plan.buffer(q_name).at("b", "t", "j") if q_name in {b.name for b in plan.buffers} else ""
    return HiddenCode(
        p.name,
        p.size,
        n,
        fwd,
        param_loads(p),
        rec,
        " + ".join(q_terms) or "0.0F",
        hp.reg,
        reg_seq,
        reg_at,
        hp.feedback,
        spike_history(plan, p, "t"),
        q_at,
        param_grads,
        hp.signal_delay,
        [plan.proj(q) for q in hp.outgoing],
        hp.q_ring,
        plan.buffer(f"hist_{p.name}_psi").at("b", "t", "j") if hp.psi_gated else "",
    )


def moving_regulariser(
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


def readout_code(tp: TrainingPlan) -> ReadoutCode:
    r, rts, loss = tp.readout, tp.equations.readout_traces, tp.readout.loss
    pr = kernel_printer()
    err = []
    if loss.softmax:  # the softmax with exp computed once, by the template
        err.append(f"const float _p = {pr.doprint(EK / YSUM)};")
    err += [
        f"const float _E = {pr.doprint(loss.error)};",
        f"const float _loss_term = {pr.doprint(loss.loss_term)};",
    ]
    score = "" if loss.score is None else f"_score = {pr.doprint(loss.score)};"
    lam = "_lam0"
    rec = [f"_lam0 = _E + _lamn0 * ({pr.doprint(rts.D[0, 0])});"]
    grads = [(p, f"{lam} * ({pr.doprint(col[0])})") for p, col in rts.param_c.items()]
    fd, fg, E, Ef = (symbol(s) for s in ("_fd", "_fg", "_E", "_Ebar_next"))
    return ReadoutCode(
        r.name,
        r.size,
        r.output,
        err,
        rec,
        f"{lam} * ({pr.doprint(rts.c[0])})",
        grads,
        pr.doprint(fg * E + fd * Ef),
        score,
        loss.reads_target,
    )


def training_context(plan: KernelPlan, tp: TrainingPlan, target) -> dict:
    """The names the training templates use, besides the plan and the printed update code."""
    r = tp.readout
    rp = plan.pop(r.name)
    hidden = {name: hidden_code(plan, tp, hp) for name, hp in tp.hidden.items()}
    ctx = {
        "training": tp,
        "tr": tp,
        "hidden": hidden,
        "readout": readout_code(tp),
        "readout_params": param_loads(rp),
        "optimizer": optimizer_code(tp.optimizer) if tp.optimizer is not None else None,
        "sizes": {name: size for kind, name, size in tp.params if kind == "weight"},
        "param_buffer": {name: f"{pop}_p_{p}" for name, (pop, p) in tp.owners.items()},
        "param_sizes": {name: size for kind, name, size in tp.params if kind == "param"},
        "masked": {q.name: q.masked for q in tp.projections},
        "floors": {name: float_literal(POSITIVE_FLOOR) for name in tp.positive},
        "exp_term": kernel_printer().doprint(sp.exp(symbol("_y") - symbol("_ymax"))),
        "pre_update": {},
        "online_block": 128,  # online: postsynaptic neurons per block of the synapse sweep
        "grad_parts": target.grad_parts,
        "serial_below": target.serial_below,
    }
    if tp.online is not None:
        from snncc.codegen.online import online_code

        ctx.update(online_code(plan, tp, hidden))
    return ctx


__all__ = ["HiddenCode", "OptimizerCode", "ReadoutCode", "training_context"]
