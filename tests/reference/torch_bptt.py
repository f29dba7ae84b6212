"""Exact BPTT gradients of the same network with torch autograd (independent of snncc).

The forward pass repeats ``numpy_eprop``'s operations in the same order. The spike is a custom
autograd function whose backward is the pseudo-derivative ``psi`` (0 while refractory); the
reset term uses ``z^{t-1}`` detached; the adaptation ``a += z^{t-1}`` is not detached, and the
threshold ``A = v_th + beta a`` carries the gradient, so ``dz/da = -beta psi``; the refractory
mask is a constant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["SpikeFunction", "bptt_gradients"]


def _const(value: Any, dtype: torch.dtype) -> torch.Tensor:
    """A float64 constant (scalar or per-neuron array) rounded to ``dtype``."""
    return torch.as_tensor(np.asarray(value, dtype=np.float64)).to(dtype)


class SpikeFunction(torch.autograd.Function):
    """``z = (v > A) and not refractory``; backward ``dz/dv = psi = -dz/dA``."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, A: torch.Tensor, refr: torch.Tensor,
                psi_scale: torch.Tensor, v_th: torch.Tensor) -> torch.Tensor:  # fmt: skip
        one = torch.ones((), dtype=v.dtype)
        psi = psi_scale * torch.clamp(one - torch.abs(v - A) / v_th, min=0.0)
        psi = torch.where(refr, torch.zeros((), dtype=v.dtype), psi)
        ctx.save_for_backward(psi)
        ctx.a_shape = A.shape
        return ((v > A) & ~refr).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (psi,) = ctx.saved_tensors
        g = grad * psi
        gA = -g
        if gA.shape != ctx.a_shape:
            gA = gA.sum_to_size(ctx.a_shape)
        return g, gA, None, None, None


def bptt_gradients(
    x: np.ndarray,
    W_in: np.ndarray,
    W_rec: np.ndarray | None,
    W_out: np.ndarray,
    b_out: np.ndarray | None = None,
    *,
    model: str = "alif",
    tau_m: Any = 20.0,
    tau_a: Any = 2000.0,
    beta: Any = 0.0174,
    v_th: float = 0.6,
    gamma: float = 0.3,
    n_ref: int = 0,
    tau_out: float = 20.0,
    dt: float = 1.0,
    labels: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    loss: str = "ce",
    error_start: int = 0,
    zeta: Any = 1.0,
    out_scale: Any = 1.0,
    reg: str = "none",
    c_reg: float = 0.0,
    f_target: float = 0.01,
    allow_self: bool = True,
    dtype: Any = np.float64,
) -> dict[str, Any]:
    """Exact (surrogate) BPTT gradients summed over time and batch, as NumPy arrays.

    Same conventions and return keys as ``numpy_eprop.eprop_gradients``. ``reg="sequence"``
    adds the rate loss ``0.5 c_reg sum_{b,j} (n_spikes_bj/T - f_target)^2`` to the gradients
    (returned separately as ``"loss_reg"``; ``"loss"`` is the task loss only). Its e-prop form
    (``reg="sequence"`` in ``eprop_gradients``) is exact for a feed-forward network.
    """
    if reg not in ("none", "sequence"):
        raise ValueError(f"reg must be 'none' or 'sequence', got {reg!r}")
    if model not in ("lif", "alif"):
        raise ValueError(f"model must be 'lif' or 'alif', got {model!r}")
    if loss not in ("ce", "mse"):
        raise ValueError(f"loss must be 'ce' or 'mse', got {loss!r}")
    tdt = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        np.dtype(dtype)
    ]
    alif = model == "alif"

    def leaf(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(a), dtype=tdt, requires_grad=True)

    xs = torch.as_tensor(np.asarray(x)).to(tdt)
    Bsz, T, _ = xs.shape
    w_in = leaf(W_in)
    N = w_in.shape[1]
    w_rec = leaf(W_rec) if W_rec is not None else None
    w_out = leaf(W_out)
    K = w_out.shape[1]
    b = leaf(b_out) if b_out is not None else None

    alpha = _const(np.exp(-float(dt) / np.asarray(tau_m, dtype=np.float64)), tdt)
    rho = _const(np.exp(-float(dt) / np.asarray(tau_a, dtype=np.float64)), tdt)
    kappa = _const(np.exp(-float(dt) / float(tau_out)), tdt)
    beta_c = _const(beta, tdt)
    vth = _const(v_th, tdt)
    psi_scale = _const(gamma / v_th, tdt)
    zeta_c = _const(zeta, tdt)
    osc = _const(out_scale, tdt)
    if loss == "ce":
        if labels is None:
            raise ValueError("loss='ce' needs labels")
        lab = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    else:
        if targets is None:
            raise ValueError("loss='mse' needs targets")
        tgt = torch.as_tensor(np.asarray(targets)).to(tdt)

    v = torch.zeros(Bsz, N, dtype=tdt)
    a = torch.zeros(Bsz, N, dtype=tdt)
    z = torch.zeros(Bsz, N, dtype=tdt)
    r = torch.zeros(Bsz, N, dtype=torch.long)
    y = torch.zeros(Bsz, K, dtype=tdt)
    zs, vs, ys, zs_g = [], [], [], []
    total = torch.zeros((), dtype=tdt)
    no_refr = torch.zeros(Bsz, N, dtype=torch.bool)
    for t in range(T):
        z_prev = z
        I = xs[:, t] @ w_in
        if w_rec is not None:
            I = I + z_prev @ w_rec
        if n_ref > 0:
            zp = z_prev.detach() > 0
            r = torch.clamp(r - 1, min=0)
            r = torch.where(zp, torch.full_like(r, n_ref - 1), r)
            refr = r > 0
        else:
            refr = no_refr
        v = alpha * v
        v = v - vth * z_prev.detach()
        v = v + zeta_c * I
        if alif:
            a = rho * a
            a = a + z_prev
            A = vth + beta_c * a
        else:
            A = vth.expand(Bsz, N)
        z = SpikeFunction.apply(v, A, refr, psi_scale, vth)
        y = kappa * y + osc * (z @ w_out)
        if b is not None:
            y = y + b
        zs.append(z.detach())
        zs_g.append(z)
        vs.append(v.detach())
        ys.append(y.detach())
        if t >= error_start:
            if loss == "ce":
                total = total - torch.log_softmax(y, dim=-1)[torch.arange(Bsz), lab].sum()
            else:
                total = total + 0.5 * ((y - tgt[:, t]) ** 2).sum()
    params = {"W_in": w_in, "W_out": w_out}
    if w_rec is not None:
        params["W_rec"] = w_rec
    if b is not None:
        params["b_out"] = b
    loss_reg = torch.zeros((), dtype=tdt)
    if reg == "sequence":
        rate = torch.stack(zs_g, 1).sum(1) / T
        loss_reg = 0.5 * _const(c_reg, tdt) * ((rate - _const(f_target, tdt)) ** 2).sum()
    grads = torch.autograd.grad(total + loss_reg, list(params.values()), allow_unused=True)
    out: dict[str, Any] = {}
    for (k, p), g in zip(params.items(), grads, strict=True):
        out[k] = (torch.zeros_like(p) if g is None else g).numpy().copy()
    if w_rec is not None and not allow_self:
        np.fill_diagonal(out["W_rec"], 0)
    out["loss"] = float(total.detach())
    out["loss_reg"] = float(loss_reg.detach())
    out["z"] = torch.stack(zs, 1).numpy()
    out["v"] = torch.stack(vs, 1).numpy()
    out["y"] = torch.stack(ys, 1).numpy()
    return out
