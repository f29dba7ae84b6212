"""Printed code + Jinja2 templates -> sources.

The printer turns each population's sympy statements into C lines here, in Python; the templates
only place those lines inside loops and kernels. Templates are looked up in
``templates/<backend>`` first and ``templates/common`` second (shared macros), with
``StrictUndefined`` so a missing name fails loudly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import jinja2
import sympy as sp

from snncc.codegen.names import cname, comment, comment_text, template_dir
from snncc.codegen.plan import KernelPlan, PopulationPlan
from snncc.codegen.printer import flatten, kernel_printer, print_block


@functools.cache
def environment(backend: str) -> jinja2.Environment:
    """One Jinja2 environment per backend and process (it caches compiled templates)."""
    root = template_dir()
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(str(root / backend)),
            jinja2.FileSystemLoader(str(root / "common")),
        ]
    )
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["comment_text"] = comment_text  # free text inside a // comment (model names)
    return env


@dataclass
class PopulationCode:
    """C lines for one population's neuron update at index ``bn = b*N + j``."""

    name: str
    size: int
    consts: list[str] = field(default_factory=list)  # loop-invariant: before the neuron loop
    load: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    store: list[str] = field(default_factory=list)
    record: list[str] = field(default_factory=list)  # reads the stored state back


def param_loads(p: PopulationPlan, names: set[str] | None = None, which: str = "all") -> list[str]:
    """``const float x = ...;`` for the parameters and constants a body uses.

    ``which``: "scalar" (loop-invariant, placed before the neuron loop), "neuron" or "all".
    """
    lines = []
    if which in ("all", "scalar"):
        for i, k in enumerate(p.scalars):
            if names is None or k in names:
                lines.append(f"const float {cname(k)} = {p.name}_scalars[{i}];")
    if which in ("all", "neuron"):
        for k in p.per_neuron:
            if names is None or k in names:
                lines.append(f"const float {cname(k)} = {p.name}_p_{k}[j];")
    return lines


def population_code(p: PopulationPlan) -> PopulationCode:
    """Print one population's discrete update as C statements."""
    upd = p.update
    pc = PopulationCode(p.name, p.size)
    used: set[str] = set()
    for st in upd.statements:
        used |= {s.name for s in st.expr.free_symbols}
    for e in (upd.spike, upd.psi):
        if e is not None:
            used |= {s.name for s in e.free_symbols}
    pc.consts = param_loads(p, used, "scalar")
    pc.load = param_loads(p, used, "neuron")
    for s in p.states:
        pc.load.append(f"float {cname(s)} = {p.name}_{s}[bn];")
    if p.spiking:
        pc.load.append(f"const float _z = {spike_slot(p, 'prev')}[bn];")
    if "I_syn" in used:
        pc.load.append(
            f"const float I_syn = {p.name}_isyn[bn];" if p.incoming else "const float I_syn = 0.0F;"
        )
    printer = kernel_printer()
    if upd.decay:
        # all ODEs advance together from the old state
        pc.update.append(comment(f"{upd.model}: ODEs integrated over dt [{upd.method}]"))
        block = print_block(
            [(f"_next_{st.target}", st.expr) for st in upd.decay],
            declare={f"_next_{st.target}" for st in upd.decay},
            mangle=True,
        )
        pc.update += [comment(st.source) for st in upd.decay] + block
        pc.update += [f"{cname(st.target)} = _next_{st.target};" for st in upd.decay]
    for k, st in enumerate(upd.spike_effects):
        pc.update.append(comment(f"{st.kind}: {st.source}"))
        pc.update += flat_assign(cname(st.target), st.expr, f"_t{k}_", printer)
    for s in p.states:
        pc.store.append(f"{p.name}_{s}[bn] = {cname(s)};")
    if upd.spike is not None:
        pc.update.append(comment(f"threshold: {_threshold_source(upd)}"))
        pc.update += flat_assign("const float _spike", upd.spike, "_ts_", printer)
        pc.store.append(f"{spike_slot(p, 'cur')}[bn] = _spike;")
    for s in upd.states:
        rec = f"rec_{p.name}_{s}"
        pc.record.append(
            f"if ({rec}) {rec}[((size_t)b * T + t) * {p.size} + j] = {p.name}_{s}[bn];"
        )
    return pc


def spike_slot(pop: PopulationPlan, which: str) -> str:
    """Pointer to the spikes of step t ("cur") or t-1 ("prev") in the double buffer."""
    parity = "(t & 1)" if which == "cur" else "((t + 1) & 1)"
    return f"({pop.name}_z + (size_t){parity} * Bcap * {pop.size})"


def flat_assign(target: str, expr: sp.Expr, prefix: str, printer) -> list[str]:
    """``target = expr;`` preceded by the temporaries of :func:`flatten` (select-friendly)."""
    temps, expr = flatten(expr, prefix)
    lines = [f"const float {n} = {printer.doprint(e)};" for n, e in temps]
    return lines + [f"{target} = {printer.doprint(expr)};"]


def _threshold_source(upd) -> str:
    return str(upd.spike.args[0].cond) if isinstance(upd.spike, sp.Piecewise) else str(upd.spike)


def render(plan: KernelPlan, target, extra: dict | None = None) -> dict[str, str]:
    """Render every source file of ``target`` (a codegen.targets.Target) for ``plan``."""
    env = environment(target.name)
    code = {p.name: population_code(p) for p in plan.populations if not p.is_input}
    for name, lines in (extra or {}).get("pre_update", {}).items():
        code[name].load += lines  # e.g. copies of the state before the update (online eProp)
    ctx = {
        "plan": plan,
        "code": code,
        "spike_slot": spike_slot,
        # every index from the buffer that owns the layout: idx("err", "b", "t", "k")
        "idx": lambda name, *i: plan.buffer(name).index(*i),
        "training": None,
        "tr": None,
        **(extra or {}),
    }
    return {n: env.get_template(n + ".j2").render(**ctx) for n in target.sources}


__all__ = ["render", "population_code", "environment"]
