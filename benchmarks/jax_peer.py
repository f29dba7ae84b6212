"""JAX peer: ``TorchSNN``'s network trained with BPTT as one jit-compiled XLA program.

The time loop is ``jax.lax.scan`` and the whole training step (forward pass, loss,
``jax.value_and_grad``, optax Adam update) is a single ``jax.jit`` function, so nothing but
the call itself runs in Python per batch (as in Spyx). Semantics are ``TorchSNN``'s and
``tests/reference/torch_bptt.py``'s: the input projection is one dense matmul for all steps
before the loop; reset by subtraction with the reset spike detached (``lax.stop_gradient``);
ALIF adaptation not detached (``A = v_th + beta a`` carries the gradient); the triangle
surrogate ``psi = gamma/v_th max(0, 1 - |v - A|/v_th)``, 0 while refractory (a custom VJP);
a leaky readout with bias; per-step softmax cross-entropy summed over time and batch; Adam with
torch's defaults (optax's are the same: betas 0.9, 0.999, eps 1e-8 outside the square root).

The first call of ``train_step`` traces and compiles (``first_call_s`` in the benchmark); later
calls reuse the compiled program as long as the input shapes stay the same. JAX runs in
float32 unless it is created and used inside ``jax.enable_x64(True)`` (the tests do, to compare
with the float64 reference).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.peers import init_weights

__all__ = ["JaxSNN"]


def _triangle_spike(psi_scale: float, v_th: float):
    """``spike(u, gate) = gate * (u > 0)`` with ``d spike / du = gate * psi(u)``."""

    @jax.custom_vjp
    def spike(u: jax.Array, gate: jax.Array) -> jax.Array:
        return jnp.where(u > 0, gate, jnp.zeros_like(u))

    def forward(u: jax.Array, gate: jax.Array) -> tuple[jax.Array, jax.Array]:
        psi = psi_scale * jnp.maximum(1.0 - jnp.abs(u) / v_th, 0.0) * gate
        return spike(u, gate), psi

    def backward(psi: jax.Array, grad: jax.Array) -> tuple[jax.Array, jax.Array]:
        return grad * psi, jnp.zeros_like(psi)  # the refractory gate is a constant

    spike.defvjp(forward, backward)
    return spike


class JaxSNN:
    """Recurrent LIF/ALIF classifier, surrogate BPTT through ``lax.scan``, optax Adam."""

    def __init__(
        self,
        n_in: int = 700,
        n_hidden: int = 256,
        n_out: int = 20,
        *,
        model: str = "alif",
        tau_m: float = 20.0,
        tau_a: float = 2000.0,
        beta: float = 0.0174,
        v_th: float = 0.6,
        gamma: float = 0.3,
        n_ref: int = 0,
        tau_out: float = 20.0,
        dt: float = 1.0,
        recurrent: bool = True,
        bias: bool = True,
        lr: float = 1e-3,
        seed: int | None = None,
    ) -> None:
        if model not in ("lif", "alif"):
            raise ValueError(f"model must be 'lif' or 'alif', got {model!r}")
        self.model, self.n_ref = model, int(n_ref)
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
        # the working dtype: float32, or float64 inside jax.enable_x64(True)
        self.dtype = jnp.zeros(()).dtype
        # constants computed in float64, rounded to the working dtype when traced
        self.alpha = float(np.exp(-dt / tau_m))
        self.rho = float(np.exp(-dt / tau_a))
        self.kappa = float(np.exp(-dt / tau_out))
        self.beta, self.v_th = float(beta), float(v_th)
        self._spike = _triangle_spike(gamma / v_th, float(v_th))
        self._optimizer = optax.adam(lr)
        self.set_weights(
            init_weights(n_in, n_hidden, n_out, recurrent=recurrent, bias=bias, seed=seed)
        )
        self._loss_and_grad = jax.jit(jax.value_and_grad(self.loss))
        self._train_step = jax.jit(self._step, donate_argnums=(0, 1))

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Replace the named weights (``W_in (n_in, N)``, ... as in ``init_weights``) and
        restart Adam from them."""
        params = dict(getattr(self, "params", {}))
        params.update({k: jnp.asarray(np.asarray(v), dtype=self.dtype) for k, v in weights.items()})
        self.params = params
        self.opt_state = self._optimizer.init(params)

    def weights(self) -> dict[str, np.ndarray]:
        """The weights by name, as NumPy copies (``set_weights``' inverse)."""
        return {k: np.array(v) for k, v in self.params.items()}

    def param_count(self) -> int:
        """Number of trainable parameters."""
        return sum(int(p.size) for p in self.params.values())

    def prepare_input(self, x: Any) -> jax.Array:
        """``x (B, T, n_in)`` 0/1 on the device, as booleans (the cast happens in XLA)."""
        return jnp.asarray(np.asarray(x, dtype=bool))

    def forward(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        """``x (B, T, n_in)`` 0/1 -> readout ``y (T, B, n_out)`` (time-major, as scanned)."""
        Bsz = x.shape[0]
        dtype = params["W_in"].dtype
        h = jnp.einsum("btc,cn->tbn", x.astype(dtype), params["W_in"])  # one matmul, all steps
        W_rec, W_out, b_out = params.get("W_rec"), params["W_out"], params.get("b_out")
        zeros = jnp.zeros((Bsz, self.n_hidden), dtype)
        ones = jnp.ones_like(zeros)
        refractory = self.n_ref > 0
        alif = self.model == "alif"

        def step(carry: tuple, h_t: jax.Array) -> tuple[tuple, jax.Array]:
            v, a, z_prev, r, y = carry
            I = h_t if W_rec is None else h_t + z_prev @ W_rec
            gate = ones
            if refractory:
                r = jnp.maximum(r - 1, 0)
                r = jnp.where(z_prev > 0, self.n_ref - 1, r)
                gate = jnp.where(r > 0, 0.0, 1.0).astype(dtype)
            v = self.alpha * v - self.v_th * jax.lax.stop_gradient(z_prev) + I
            A = self.v_th
            if alif:
                a = self.rho * a + z_prev
                A = self.v_th + self.beta * a
            z = self._spike(v - A, gate)
            y = self.kappa * y + z @ W_out
            if b_out is not None:
                y = y + b_out
            return (v, a, z, r, y), y

        r0 = jnp.zeros((Bsz, self.n_hidden), jnp.int32)
        y0 = jnp.zeros((Bsz, self.n_out), dtype)
        _, ys = jax.lax.scan(step, (zeros, zeros, zeros, r0, y0), h)
        return ys

    def loss(self, params: dict[str, jax.Array], x: jax.Array, labels: jax.Array) -> jax.Array:
        """Per-timestep softmax cross-entropy, summed over time and batch."""
        logp = jax.nn.log_softmax(self.forward(params, x), axis=-1)  # (T, B, K)
        picked = jnp.take_along_axis(logp, labels[None, :, None].astype(jnp.int32), axis=-1)
        return -jnp.sum(picked)

    def _step(self, params: dict, opt_state: Any, x: jax.Array, labels: jax.Array) -> tuple:
        loss, grads = jax.value_and_grad(self.loss)(params, x, labels)
        updates, opt_state = self._optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def train_step(self, x: jax.Array, labels: Any) -> float:
        """One Adam step on a batch (one compiled XLA call); returns the loss."""
        self.params, self.opt_state, loss = self._train_step(
            self.params, self.opt_state, x, jnp.asarray(labels)
        )
        return float(loss)  # waits for the step

    def loss_and_gradients(self, x: Any, labels: Any) -> tuple[float, dict[str, np.ndarray]]:
        """The loss of a batch and its gradients by name (no optimiser step)."""
        loss, grads = self._loss_and_grad(self.params, self.prepare_input(x), jnp.asarray(labels))
        return float(loss), {k: np.asarray(g) for k, g in grads.items()}
