"""Plain NumPy e-prop reference (independent of snncc).

Straightforward time loop, vectorised over batch and synapses, with explicit per-synapse
traces of shape ``(B, n_pre, N)``. It implements the semantics snncc's kernels are tested
against (see ``/work/shared/reference/eprop.md``):

* step ``t = 0..T-1``, every state starts at 0 (``z^{-1} = v^{-1} = a^{-1} = 0``);
* ``I = x^{t - in_delay} W_in + z^{t - rec_delay} W_rec`` (delays 0 and 1 by default);
  membrane ``v = alpha v; v = v - v_th z^{t-1}; v = v + zeta I`` (three float operations, in
  this order);
* ALIF ``a = rho a; a = a + z^{t-1}; A = v_th + beta a`` (LIF: ``A = v_th``);
* refractory counter ``r = max(r - 1, 0); r = n_ref - 1 if z^{t-1}``; refractory iff ``r > 0``;
* ``z = (v > A) and not refractory``; ``psi = gamma/v_th max(0, 1 - |v - A|/v_th)``, 0 while
  refractory;
* readout ``y = kappa y + out_scale (z W_out) + b``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["decay", "eprop_gradients", "forward"]


def decay(tau: Any, dt: float, dtype: Any = np.float32) -> np.ndarray | np.generic:
    """``exp(-dt/tau)`` computed in float64 and rounded to ``dtype`` (scalar or per neuron)."""
    d = np.exp(-float(dt) / np.asarray(tau, dtype=np.float64))
    return d.astype(dtype) if d.ndim else dtype(d)


def _const(value: Any, dtype: Any) -> np.ndarray | np.generic:
    """A float64 constant (scalar or array) rounded to ``dtype``."""
    a = np.asarray(value, dtype=np.float64)
    return a.astype(dtype) if a.ndim else dtype(a)


def _softmax_log(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numerically stable (softmax, log softmax) along the last axis."""
    m = y.max(axis=-1, keepdims=True)
    s = y - m
    ex = np.exp(s)
    tot = ex.sum(axis=-1, keepdims=True)
    return ex / tot, s - np.log(tot)


def _run(
    x: np.ndarray,
    W_in: np.ndarray,
    W_rec: np.ndarray | None,
    W_out: np.ndarray,
    b_out: np.ndarray | None,
    *,
    model: str,
    tau_m: Any,
    tau_a: Any,
    beta: Any,
    v_th: float,
    gamma: float,
    n_ref: int,
    tau_out: float,
    dt: float,
    labels: np.ndarray | None,
    targets: np.ndarray | None,
    loss: str,
    feedback: np.ndarray | None,
    gain: str | float,
    reg: str,
    c_reg: float,
    f_target: float,
    tau_reg: float,
    error_start: int,
    zeta: Any,
    out_scale: Any,
    allow_self: bool,
    dtype: Any,
    grads: bool,
    in_delay: int = 0,
    rec_delay: int = 1,
) -> dict[str, Any]:
    if model not in ("lif", "alif"):
        raise ValueError(f"model must be 'lif' or 'alif', got {model!r}")
    if loss not in ("ce", "mse"):
        raise ValueError(f"loss must be 'ce' or 'mse', got {loss!r}")
    if reg not in ("none", "moving", "sequence"):
        raise ValueError(f"reg must be 'none', 'moving' or 'sequence', got {reg!r}")
    dtype = np.dtype(dtype).type
    alif = model == "alif"
    x = np.asarray(x).astype(dtype)
    if x.ndim != 3:
        raise ValueError("x must have shape (B, T, n_in)")
    Bsz, T, n_in = x.shape
    W_in = np.asarray(W_in).astype(dtype)
    N = W_in.shape[1]
    rec = W_rec is not None
    if rec:
        W_rec = np.asarray(W_rec).astype(dtype)
    W_out = np.asarray(W_out).astype(dtype)
    K = W_out.shape[1]
    has_b = b_out is not None
    if has_b:
        b_out = np.asarray(b_out).astype(dtype)

    alpha = decay(tau_m, dt, dtype)
    rho = decay(tau_a, dt, dtype)
    kappa = decay(tau_out, dt, dtype)
    beta_c = _const(beta, dtype)
    vth = _const(v_th, dtype)
    psi_scale = _const(gamma / v_th, dtype)
    zeta_c = _const(zeta, dtype)
    osc = _const(out_scale, dtype)
    if isinstance(gain, str):
        if gain == "1":
            g = dtype(1.0)
        elif gain == "1-kappa":
            g = _const(1.0 - np.exp(-float(dt) / float(tau_out)), dtype)
        else:
            raise ValueError(f"gain must be '1' or '1-kappa', got {gain!r}")
    else:
        g = _const(gain, dtype)
    Bfb = W_out if feedback is None else np.asarray(feedback).astype(dtype)  # (N, K)

    if labels is not None:
        labels = np.asarray(labels)
        onehot = np.zeros((Bsz, K), dtype=dtype)
        onehot[np.arange(Bsz), labels] = 1
    if loss == "ce" and labels is None:
        raise ValueError("loss='ce' needs labels")
    if loss == "mse":
        if targets is None:
            raise ValueError("loss='mse' needs targets")
        targets = np.asarray(targets).astype(dtype)

    # states
    v = np.zeros((Bsz, N), dtype)
    a = np.zeros((Bsz, N), dtype)
    z = np.zeros((Bsz, N), dtype)
    r = np.zeros((Bsz, N), np.int64)
    y = np.zeros((Bsz, K), dtype)
    rec_z = np.zeros((Bsz, T, N), dtype)
    rec_v = np.zeros((Bsz, T, N), dtype)
    rec_y = np.zeros((Bsz, T, K), dtype)
    total_loss = 0.0

    if grads:
        pres = [("W_in", n_in)] + ([("W_rec", N)] if rec else [])
        zbar = {k: np.zeros((Bsz, n, N), dtype) for k, n in pres}
        ebar = {k: np.zeros((Bsz, n, N), dtype) for k, n in pres}
        eps_a = {k: np.zeros((Bsz, n, N), dtype) for k, n in pres} if alif else None
        esum = {k: np.zeros((Bsz, n, N), dtype) for k, n in pres} if reg == "sequence" else None
        dW = {k: np.zeros((n, N), dtype) for k, n in pres}
        dW_out = np.zeros((N, K), dtype)
        db = np.zeros(K, dtype)
        zk = np.zeros((Bsz, N), dtype)
        bk = dtype(0.0)
        n_spk = np.zeros((Bsz, N), dtype)
        if reg == "moving":
            d_reg = decay(tau_reg, dt, dtype)
            one_m_d_reg = _const(1.0 - np.exp(-float(dt) / float(tau_reg)), dtype)
            f_t = _const(f_target, dtype)
            f = np.full((Bsz, N), f_t, dtype)

    for t in range(T):
        z_prev = z
        # synaptic delays: the input of step t - in_delay, the recurrent spikes of t - rec_delay
        xt = x[:, t - in_delay] if t >= in_delay else np.zeros_like(x[:, 0])
        s_rec = rec_z[:, t - rec_delay] if t >= rec_delay else np.zeros_like(z)
        I = xt @ W_in
        if rec:
            I = I + s_rec @ W_rec
        if n_ref > 0:
            r = np.maximum(r - 1, 0)
            r = np.where(z_prev > 0, n_ref - 1, r)
            refr = r > 0
        else:
            refr = None
        v = alpha * v
        v = v - vth * z_prev
        v = v + zeta_c * I
        if alif:
            a = rho * a
            a = a + z_prev
            A = vth + beta_c * a
        else:
            A = vth
        spike = v > A
        if refr is not None:
            spike &= ~refr
        z = spike.astype(dtype)
        psi = psi_scale * np.maximum(dtype(0.0), dtype(1.0) - np.abs(v - A) / vth)
        if refr is not None:
            psi = np.where(refr, dtype(0.0), psi).astype(dtype)
        y = kappa * y + osc * (z @ W_out)
        if has_b:
            y = y + b_out
        rec_z[:, t] = z
        rec_v[:, t] = v
        rec_y[:, t] = y

        # error and loss
        active = t >= error_start
        if loss == "ce":
            pi, logpi = _softmax_log(y)
            E = (pi - onehot).astype(dtype)
            if active:
                total_loss -= float(np.sum(onehot * logpi.astype(np.float64)))
        else:
            E = y - targets[:, t]
            if active:
                total_loss += float(0.5 * np.sum(E.astype(np.float64) ** 2))
        if not active:
            E = np.zeros_like(E)

        if not grads:
            continue

        # readout gradients (exact)
        zk = kappa * zk + osc * z
        bk = kappa * bk + dtype(1.0)
        dW_out += zk.T @ E
        db += E.sum(axis=0) * bk

        # learning signal and regulariser
        L = E @ Bfb.T  # (B, N)
        if reg == "moving":
            f = d_reg * f + one_m_d_reg * z
            R = _const(c_reg, dtype) * (f - f_t)
        else:
            R = None
        n_spk += z

        for k, _n in pres:
            s = xt if k == "W_in" else s_rec
            zbar[k] = alpha * zbar[k] + (zeta_c * s[:, :, None])
            if alif:
                ea = eps_a[k]
                e = psi[:, None, :] * (zbar[k] - beta_c * ea)
                eps_a[k] = psi[:, None, :] * zbar[k] + (rho - psi * beta_c)[:, None, :] * ea
            else:
                e = psi[:, None, :] * zbar[k]
            ebar[k] = kappa * ebar[k] + g * e
            dW[k] += np.einsum("bj,bij->ij", L, ebar[k])
            if R is not None:
                dW[k] += np.einsum("bj,bij->ij", R, e)
            if esum is not None:
                esum[k] += e

    out: dict[str, Any] = {"loss": total_loss, "z": rec_z, "v": rec_v, "y": rec_y}
    if not grads:
        return out
    if reg == "sequence":
        regj = _const(c_reg, dtype) * (n_spk / dtype(T) - _const(f_target, dtype)) / dtype(T)
        for k, _n in pres:
            dW[k] += np.einsum("bj,bij->ij", regj, esum[k])
    if rec and not allow_self:
        np.fill_diagonal(dW["W_rec"], 0)
    out.update(dW)
    out["W_out"] = dW_out
    if has_b:
        out["b_out"] = db
    return out


def eprop_gradients(
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
    feedback: np.ndarray | None = None,
    gain: str | float = "1",
    reg: str = "none",
    c_reg: float = 0.0,
    f_target: float = 0.01,
    tau_reg: float = 500.0,
    error_start: int = 0,
    zeta: Any = 1.0,
    out_scale: Any = 1.0,
    allow_self: bool = True,
    dtype: Any = np.float32,
    in_delay: int = 0,
    rec_delay: int = 1,
) -> dict[str, Any]:
    """e-prop gradients summed over time and batch.

    Weights are ``(pre, post)``: ``W_in (n_in, N)``, ``W_rec (N, N)`` or None (feed-forward),
    ``W_out (N, K)``, ``b_out (K,)`` or None. ``feedback`` None means symmetric (``W_out``),
    else an ``(N, K)`` matrix. Returns ``"W_in"``, ``"W_rec"`` (if recurrent), ``"W_out"``,
    ``"b_out"`` (if bias), ``"loss"`` and the records ``"z"``, ``"v"`` (B,T,N), ``"y"`` (B,T,K).
    """
    return _run(
        x, W_in, W_rec, W_out, b_out, model=model, tau_m=tau_m, tau_a=tau_a, beta=beta,
        v_th=v_th, gamma=gamma, n_ref=n_ref, tau_out=tau_out, dt=dt, labels=labels,
        targets=targets, loss=loss, feedback=feedback, gain=gain, reg=reg, c_reg=c_reg,
        f_target=f_target, tau_reg=tau_reg, error_start=error_start, zeta=zeta,
        out_scale=out_scale, allow_self=allow_self, dtype=dtype, grads=True,
        in_delay=in_delay, rec_delay=rec_delay,
    )  # fmt: skip


def forward(
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
    dtype: Any = np.float32,
) -> dict[str, Any]:
    """Forward pass only: records ``"z"``, ``"v"``, ``"y"`` and ``"loss"`` (0.0 when neither
    labels nor targets are given)."""
    no_loss = labels is None and targets is None
    if no_loss:
        loss = "mse"
        targets = np.zeros((np.shape(x)[0], np.shape(x)[1], np.shape(W_out)[1]))
    out = _run(
        x, W_in, W_rec, W_out, b_out, model=model, tau_m=tau_m, tau_a=tau_a, beta=beta,
        v_th=v_th, gamma=gamma, n_ref=n_ref, tau_out=tau_out, dt=dt, labels=labels,
        targets=targets, loss=loss, feedback=None, gain="1", reg="none", c_reg=0.0,
        f_target=0.0, tau_reg=1.0, error_start=error_start, zeta=zeta, out_scale=out_scale,
        allow_self=True, dtype=dtype, grads=False,
    )  # fmt: skip
    if no_loss:
        out["loss"] = 0.0
    return out
