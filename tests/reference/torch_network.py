"""A network of several populations with synaptic delays, simulated in torch and differentiated
by autograd: the independent reference for snncc's delays, its BPTT rule and its trainable
neuron parameters. Nothing here comes from snncc: every neuron's step is written by hand.

Conventions (snncc's, see snncc/model/neuron.py): per step, populations update in declaration
order; a projection with delay d delivers the presynaptic spike of step t - d. One neuron step:
decay over dt, then the reset of the previous spike (detached from the graph), then on_spike
effects (kept in the graph), then the synaptic input, then the threshold. The spike's backward
is the pseudo-derivative psi = gamma / v_th * max(0, 1 - |margin| / v_th).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


class Spike(torch.autograd.Function):
    """z = margin > 0; dz/dmargin = psi (given)."""

    @staticmethod
    def forward(ctx: Any, margin: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(psi)
        return (margin > 0).to(margin.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (psi,) = ctx.saved_tensors
        return grad * psi, None


@dataclass
class Pop:
    """``kind``: "input", "lif", "alif", "cuba" (README's CubaLIF), "adlif" (symplectic) or
    "readout" (leaky integrator with bias). ``params``: name -> value (arrays per neuron)."""

    name: str
    size: int
    kind: str
    params: dict = field(default_factory=dict)


@dataclass
class Proj:
    name: str
    pre: str
    post: str
    weight: np.ndarray
    delay: int
    mask: np.ndarray | None = None


def run(
    pops: list[Pop],
    projs: list[Proj],
    x: np.ndarray,
    labels: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    dt: float = 1.0,
    trainable: dict[str, list[str]] | None = None,
    dtype: torch.dtype = torch.float64,
) -> dict[str, Any]:
    """Simulate, sum the loss over steps and batch, and return gradients of every weight
    (``"<proj>"``), the readout bias (``"<readout>.bias"``) and the listed neuron parameters
    (``"<pop>.<param>"``); also ``"loss"`` and each spiking population's spikes (``"z:<pop>"``)."""
    trainable = trainable or {}
    leaves: dict[str, torch.Tensor] = {}

    def const(v):
        return torch.as_tensor(np.array(v, np.float64), dtype=dtype)

    def param(pop: Pop, name: str):
        value = const(np.broadcast_to(np.asarray(pop.params[name], np.float64), (pop.size,)))
        if name in trainable.get(pop.name, []) or (pop.kind == "readout" and name == "bias"):
            value = value.clone().requires_grad_(True)
            leaves[f"{pop.name}.{name}"] = value
        return value

    W = {}
    for q in projs:
        w = torch.tensor(np.asarray(q.weight, np.float64), dtype=dtype, requires_grad=True)
        leaves[q.name] = w
        W[q.name] = w if q.mask is None else w * const(q.mask)
    xs = torch.as_tensor(np.asarray(x), dtype=dtype)
    B, T, _ = xs.shape
    P = {p.name: {k: param(p, k) for k in p.params} for p in pops}
    state = {}
    for p in pops:
        zeros = torch.zeros(B, p.size, dtype=dtype)
        state[p.name] = {"v": zeros, "a": zeros, "I": zeros, "w": zeros, "z": zeros}
    spikes: dict[str, list[torch.Tensor]] = {p.name: [] for p in pops if p.kind != "readout"}
    outputs: list[torch.Tensor] = []
    total = torch.zeros((), dtype=dtype)
    for t in range(T):
        for p in pops:
            if p.kind == "input":
                spikes[p.name].append(xs[:, t])
                continue
            I = torch.zeros(B, p.size, dtype=dtype)
            for q in projs:
                if q.post != p.name or t - q.delay < 0:
                    continue
                # spikes of step t - d; an earlier population's step t exists already
                s = spikes[q.pre][t - q.delay]
                I = I + s @ W[q.name]
            st, k = state[p.name], P[p.name]
            z_prev = st["z"]
            if p.kind == "readout":
                st["v"] = torch.exp(-dt / k["tau"]) * st["v"] + I + k["bias"]
                continue
            if p.kind in ("lif", "alif"):
                v = torch.exp(-dt / k["tau_m"]) * st["v"]
                v = v - k["v_th"] * z_prev.detach()
                A = k["v_th"]
                if p.kind == "alif":
                    a = torch.exp(-dt / k["tau_a"]) * st["a"] + z_prev
                    st["a"] = a
                    A = k["v_th"] + k["beta"] * a
                v = v + I
            elif p.kind == "cuba":  # dv/dt = (-v + I)/tau_m, dI/dt = -I/tau_s, exactly
                am, as_ = torch.exp(-dt / k["tau_m"]), torch.exp(-dt / k["tau_s"])
                cross = k["tau_s"] * (as_ - am) / (k["tau_s"] - k["tau_m"])
                v = am * st["v"] + cross * st["I"]
                cur = as_ * st["I"]
                v = v - k["v_th"] * z_prev.detach()
                cur = cur + I
                st["I"] = cur
                A = k["v_th"]
            elif p.kind == "adlif":  # symplectic: v first (w old), then w from the new v
                am, aw = torch.exp(-dt / k["tau_m"]), torch.exp(-dt / k["tau_w"])
                v = am * st["v"] + (1 - am) * (I - st["w"])
                w = aw * st["w"] + (1 - aw) * k["a"] * v
                v = v - k["v_th"] * z_prev.detach()
                w = w + (1 - aw) * k["b"] * z_prev
                st["w"] = w
                A = k["v_th"]
            else:
                raise ValueError(p.kind)
            st["v"] = v
            margin = v - A
            psi = k["gamma"] / k["v_th"] * torch.clamp(1 - torch.abs(margin) / k["v_th"], min=0)
            z = Spike.apply(margin, psi.detach())
            st["z"] = z
            spikes[p.name].append(z)
        ro = next(p for p in pops if p.kind == "readout")
        y = state[ro.name]["v"]
        outputs.append(y.detach())
        if labels is not None:
            lab = torch.as_tensor(labels, dtype=torch.long)
            total = total - torch.log_softmax(y, -1)[torch.arange(B), lab].sum()
        else:
            tgt = torch.as_tensor(np.asarray(targets)[:, t], dtype=dtype)
            total = total + 0.5 * ((y - tgt) ** 2).sum()
    names = list(leaves)
    grads = torch.autograd.grad(total, [leaves[n] for n in names], allow_unused=True)
    out: dict[str, Any] = {"loss": float(total.detach())}
    for n, g in zip(names, grads, strict=True):
        g = torch.zeros_like(leaves[n]) if g is None else g
        out[n] = g.detach().numpy().copy()
    for q in projs:
        if q.mask is not None:
            out[q.name] = out[q.name] * q.mask
    for p in pops:
        if p.kind not in ("input", "readout"):
            out[f"z:{p.name}"] = torch.stack([z.detach() for z in spikes[p.name]], 1).numpy()
    out["y"] = torch.stack(outputs, 1).numpy()
    return out
