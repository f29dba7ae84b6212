"""The training plan: what a learning rule adds to a KernelPlan, as plain data and buffers.

``add_training`` derives the rule's equations (snncc.symbolic: the eligibility traces, the loss,
the filter and the regulariser) and lays out what training needs: histories of the per-neuron
quantities the traces use, errors, adjoints, gradients and optimiser state. It reads only the
plan (never the Network) and prints nothing: training_code.py prints, online.py adds the
per-synapse strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from snncc.codegen.plan import Buffer, KernelPlan, PopulationPlan, ProjectionPlan, _evaluate
from snncc.codegen.targets import Target
from snncc.errors import ModelError
from snncc.model.equations import symbol
from snncc.symbolic.eprop import PSI, PSI_PREV, EProp, RuleEquations, derive_traces, prev
from snncc.symbolic.integrate import I_SYN, SPIKE_PREV
from snncc.symbolic.loss import LossEquations, loss_equations

#: A trained parameter that must stay > 0 (a time constant, a threshold) is clamped to at least
#: this after each optimiser step (in its own units: ms for a time constant).
POSITIVE_FLOOR = 1e-3


@dataclass
class ReadoutPlan:
    """The non-spiking readout: its output state, loss and trained parameters."""

    name: str
    size: int
    output: str
    loss: LossEquations
    params: tuple[str, ...]  # its trained per-neuron parameters (e.g. bias)


@dataclass
class HiddenPlan:
    """A spiking population with a backward recursion (its incoming weights or its own
    parameters are trained, or, for an exact rule, its spikes carry the gradient)."""

    name: str
    size: int
    states: list[str]
    needs: list[str]  # per-step quantities the traces read back: psi, states, isyn
    feedback: str  # eProp: buffer of B (n_hidden x n_readout); exact rules: ""
    reg: str  # "moving", "sequence" or "none"
    params: list[str] = field(default_factory=list)  # its own trained parameters
    signal_delay: int = 0  # eProp: its spikes reach the readout this many steps later
    outgoing: list[str] = field(default_factory=list)  # exact: projections its spikes leave by
    q_ring: int = 1  # steps of its Q kept (a later step's Q is an earlier one's signal)
    # dLoss/dz(t) enters the recursion only times psi(t) (sympy checked): an exact signal
    # need not be computed for a neuron whose psi is 0
    psi_gated: bool = False


@dataclass
class OnlinePlan:
    """The per-synapse (online) strategy: traces advance in chunks of ``chunk`` steps."""

    chunk: int
    spike_pops: list[str]  # populations whose spikes the synapses read, kept per chunk
    lead: dict[str, int] = field(default_factory=dict)  # steps kept before the chunk, per pop


@dataclass
class TrainingPlan:
    rule: EProp
    equations: RuleEquations
    readout: ReadoutPlan
    hidden: dict[str, HiddenPlan] = field(default_factory=dict)
    projections: list[ProjectionPlan] = field(default_factory=list)  # the trained ones
    params: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, name, size)
    optimizer: object = None  # a snncc.symbolic.optim optimiser, or None
    online: OnlinePlan | None = None
    history_pops: list[str] = field(default_factory=list)  # populations with a z history
    rule_values: dict[str, float] = field(default_factory=dict)  # dt, tau_reg, c_reg, f_target
    positive: list[str] = field(default_factory=list)  # trained parameters kept > 0
    owners: dict[str, tuple[str, str]] = field(default_factory=dict)  # param -> (pop, name)

    def __str__(self) -> str:
        lines = [str(self.equations), "  " + str(self.readout.loss).replace("\n", "\n  ")]
        lines.append(f"  trainable: {', '.join(n for _, n, _ in self.params)}")
        if self.optimizer is not None:
            opt = type(self.optimizer).__name__
            lines += [f"  {opt}: {t} <- {e}" for t, e in self.optimizer.update()]
        return "\n".join(lines)


def add_training(plan: KernelPlan, rule: EProp, optimizer, target: Target) -> TrainingPlan:
    """Derive ``rule`` for the network of ``plan`` and extend the plan with what it needs."""
    rp = next((p for p in plan.populations if p.name == rule.readout), None)
    if rp is None:
        raise ModelError(
            f"EProp: the readout population '{rule.readout}' does not exist; populations are "
            f"{', '.join(p.name for p in plan.populations)}. Pass EProp(readout=<name>)."
        )
    if rp.spiking:
        raise ModelError(f"EProp: readout '{rp.name}' must be non-spiking (e.g. LeakyIntegrator)")
    eqs = rule.equations()
    trained = [q for q in plan.projections if q.trainable]
    if not trained:
        raise ModelError("EProp: no trainable projection in the network")
    hidden: list[PopulationPlan] = []
    for q in trained:
        post = plan.pop(q.post)
        if post is rp:
            continue
        if not post.spiking or post.is_input:
            raise ModelError(
                f"EProp: projection '{q.name}' targets '{post.name}', which neither spikes "
                "nor is the readout; set trainable=False on it"
            )
        if post not in hidden:
            hidden.append(post)
    readout_params = tuple(rp.trainable) if rule.train_bias else ()
    rts = derive_traces(rp.name, rp.update, output=rp.update.output, trainable=readout_params)
    _check_readout(rp, rts)
    eqs.readout_traces = rts
    K, dt = rp.size, plan.dt
    rule_values = {
        "dt": dt,
        "tau_reg": rule.tau_reg,
        "c_reg": rule.c_reg,
        "f_target": rule.f_target * dt / 1000.0,
    }
    loss = loss_equations(rule.loss, rule.decision)
    tp = TrainingPlan(
        rule,
        eqs,
        ReadoutPlan(rp.name, K, rts.states[0], loss, readout_params),
        projections=trained,
        optimizer=optimizer,
        rule_values=rule_values,
    )
    fd, fg = filter_values(tp, rp.values)
    plan.add(
        Buffer("labels", "int", ("B",), "data"),
        # the mse targets, (B, T, K); one element for cross-entropy, which never reads it
        Buffer("targets", "float", ("B", "T", K) if loss.reads_target else (1,), "data"),
        Buffer("err", "float", ("B", "T", K), "history"),
        Buffer("errf", "float", ("B", "T", K), "history"),
        Buffer("loss", "float", ("B",), "scratch"),
        Buffer("score", "float", ("B", K), "scratch"),  # per-class decision, summed in-kernel
        Buffer(f"{rp.name}_Q", "float", ("B", "T", K), "history"),
        Buffer("filter_decay", "float", (K,), "rule", fd),
        Buffer("filter_gain", "float", (K,), "rule", fg),
        Buffer(
            "rule_scalars",
            "float",
            (5,),
            "rule",
            np.array(
                [rule.error_start, rule.c_reg, rule_values["f_target"], rule.tau_reg, 1.0],
                dtype=np.float32,
            ),
            # grad_scale: every gradient is multiplied by it (1, or 1/(T - error_start) for
            # average_gradient; set per pass by the runtime)
            slots=("error_start", "c_reg", "f_target", "tau_reg", "grad_scale"),
        ),
    )
    for p in readout_params:
        plan.add(
            Buffer(f"gradp_{rp.name}_{p}", "float", ("B", K), "scratch"),
            Buffer(f"grad_{rp.name}_{p}", "float", (K,), "grad"),
        )
        tp.params.append(("param", f"{rp.name}_{p}", K))
        tp.owners[f"{rp.name}_{p}"] = (rp.name, p)
    # spike histories as bit words (32x less memory traffic than floats); an input's own bits
    # are its history
    history = {q.pre for q in trained if not q.pre_is_input} | {h.name for h in hidden}
    tp.history_pops = [p.name for p in plan.populations if p.name in history]
    for name in tp.history_pops:
        words = ("B", "T", plan.pop(name).spike_words)
        plan.add(Buffer(f"hist_{name}_zbits", "unsigned", words, "history"))
    if rule.exact:  # every spiking population carries the gradient back through its spikes
        hidden = [p for p in plan.populations if p.spiking and not p.is_input]
    for hp in hidden:
        ts = derive_traces(hp.name, hp.update, trainable=tuple(hp.trainable))
        eqs.traces[hp.name] = ts
        tp.hidden[hp.name] = _hidden_plan(plan, hp, ts, eqs, rule, rule_values, target)
    if rule.exact:
        for h in tp.hidden.values():
            h.outgoing = [q.name for q in plan.projections if q.pre == h.name]
            for q in plan.projections:
                if q.pre == h.name and q.post in tp.hidden:
                    post = tp.hidden[q.post]
                    post.q_ring = max(post.q_ring, q.delay + 1)
                elif q.pre == h.name and q.post != rp.name:
                    raise ModelError(
                        f"BPTT: projection '{q.name}' leads to '{q.post}', which neither spikes "
                        "nor is the readout; its gradient path cannot be followed"
                    )
    for h in tp.hidden.values():
        for p in h.params:
            plan.add(
                Buffer(f"gradp_{h.name}_{p}", "float", ("B", h.size), "scratch"),
                Buffer(f"grad_{h.name}_{p}", "float", (h.size,), "grad"),
            )
            tp.params.append(("param", f"{h.name}_{p}", h.size))
            tp.owners[f"{h.name}_{p}"] = (h.name, p)
    for q in trained:
        size = _size(plan, q)
        plan.add(Buffer(f"grad_{q.name}", "float", (size,), "grad"))
        if target.grad_parts:  # one partial sum per part of the batch (see Target.grad_parts)
            plan.add(Buffer(f"gpart_{q.name}", "float", (target.grad_parts, size), "scratch"))
        tp.params.append(("weight", q.name, size))
    if optimizer is not None:
        names = (*optimizer.scalar_names, "clamp_lo", "clamp_hi")
        plan.add(Buffer("opt_scalars", "float", (len(names),), "rule", slots=names))
        # per parameter, after each step: the largest |w| and how many values are not finite
        # (divergence is seen on the device; the host reads 8 bytes per parameter)
        plan.add(Buffer("opt_health", "float", (len(tp.params), 2), "scratch"))
        for _kind, name, size in tp.params:
            for s in optimizer.state:
                plan.add(Buffer(f"opt_{s}_{name}", "float", (size,), "optimizer"))
    for name, (pop, pname) in tp.owners.items():  # time constants, thresholds stay > 0
        if pname in plan.pop(pop).positive:
            tp.positive.append(name)
    if "online" in target.strategies and rule.strategy != "factorized":
        from snncc.codegen.online import add_online

        add_online(plan, tp)
    plan.training = tp
    return tp


def _size(plan: KernelPlan, q: ProjectionPlan) -> int:
    return plan.buffer(f"{q.name}_w").shape[0] if q.sparse else q.n_pre * q.n_post


def _check_readout(rp: PopulationPlan, rts) -> None:
    per_step = {PSI, PSI_PREV, SPIKE_PREV, I_SYN} | {prev(s) for s in rts.states}
    per_step |= {symbol(s) for s in rts.states}
    for expr in list(rts.D) + list(rts.c) + [e for col in rts.param_c.values() for e in col]:
        if expr.free_symbols & per_step:
            raise ModelError(
                f"EProp: readout '{rp.name}' ({rp.update.model}) must be linear with "
                f"constant coefficients; its Jacobian has {expr}"
            )
    if rts.D.shape != (1, 1):
        raise ModelError(f"EProp: readout '{rp.name}' must have exactly one state variable")


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


def _feedback(plan: KernelPlan, hp: PopulationPlan, rule: EProp) -> str:
    """The buffer that holds B (n_hidden x K): W_out itself, or a fixed random matrix."""
    rp = plan.pop(rule.readout)
    if rule.feedback == "symmetric":
        direct = [q for q in plan.projections if q.pre == hp.name and q.post == rp.name]
        if len(direct) != 1 or direct[0].sparse:
            raise ModelError(
                f"EProp: symmetric feedback for '{hp.name}' needs exactly one dense projection "
                f"from '{hp.name}' to '{rp.name}'; use feedback='random' otherwise"
            )
        return f"{direct[0].name}_w"
    rng = np.random.default_rng(rule.seed + hp.index)
    B = (rng.standard_normal((hp.size, rp.size)) / np.sqrt(hp.size)).astype(np.float32)
    plan.add(Buffer(f"feedback_{hp.name}", "float", (hp.size, rp.size), "feedback", B))
    return f"feedback_{hp.name}"


def _hidden_plan(
    plan: KernelPlan,
    hp: PopulationPlan,
    ts,
    eqs: RuleEquations,
    rule: EProp,
    rule_values: dict,
    target: Target,
) -> HiddenPlan:
    used: set[str] = set()
    exprs = list(ts.D) + list(ts.c) + list(ts.g) + list(ts.param_g.values())
    exprs += [e for col in ts.param_c.values() for e in col]
    for e in exprs:
        used |= {s.name for s in e.free_symbols}
    needs = {"psi"} | {s for s in hp.update.states if s in used or f"{s}_prev" in used}
    if "I_syn" in used:
        needs.add("isyn")
    N = hp.size
    for q in sorted(needs):
        plan.add(Buffer(f"hist_{hp.name}_{q}", "float", ("B", "T", N), "history"))
    if not target.fused_q:  # the CPU adds each step's Q to the gradient as it is computed
        plan.add(Buffer(f"{hp.name}_Q", "float", ("B", "T", N), "history"))
    if eqs.reg_mode == "moving":
        plan.add(
            Buffer(f"{hp.name}_f", "float", ("B", N), "state", rule_values["f_target"]),
            Buffer(f"hist_{hp.name}_R", "float", ("B", "T", N), "history"),
        )
    feedback = "" if rule.exact else _feedback(plan, hp, rule)
    direct = [q for q in plan.projections if q.pre == hp.name and q.post == rule.readout]
    no_psi = {PSI: 0}
    gated = all(sp.simplify(e.xreplace(no_psi)) == 0 for e in [*ts.g, *ts.param_g.values()])
    return HiddenPlan(
        hp.name,
        N,
        list(ts.states),
        sorted(needs),
        feedback,
        eqs.reg_mode,
        params=list(hp.trainable),
        signal_delay=direct[0].delay if len(direct) == 1 else 0,
        psi_gated=gated,
    )
