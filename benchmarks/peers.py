"""Benchmark peers written directly in PyTorch (independent of snncc).

* ``TorchSNN``: SpyTorch-style (Zenke & Vogels) recurrent LIF/ALIF network trained with
  surrogate-gradient BPTT, with snncc's semantics (see ``tests/reference/numpy_eprop.py``):
  reset by subtraction with the reset spike detached, adaptation not detached, surrogate
  ``psi = gamma/v_th max(0, 1 - |v - A|/v_th)`` (0 while refractory), leaky readout, per-timestep
  cross-entropy summed over time and batch, Adam lr 1e-3. As in SpyTorch, the input projection
  is one matmul over all timesteps before the time loop: dense (``input_projection="dense"``,
  SpyTorch's einsum) or sparse (``"sparse"``: ``torch.sparse.mm`` of the spikes as a COO tensor,
  which costs only the inputs' nonzeros, 1-2 % of them for SHD). Its per-step slices are taken
  with ``unbind`` (linear-time backward; ``unbind=False`` indexes ``h[:, t]`` like the SpyTorch
  tutorial, whose backward is quadratic in T).
* ``TriangleSpike``: the spike with the triangle surrogate, shared with the snnTorch peer.
* ``TorchLSTM``: ``nn.LSTM`` + linear readout on the last step.
* ``init_weights``: the peers' initial weights (NumPy, so every peer starts from the same ones).
* ``lstm_hidden_for_params``: an LSTM hidden size with a parameter count close to a target.

torch is imported lazily: importing this module does not import torch, and the classes are
built on first access (PEP 562 module ``__getattr__``). Thread count is left to the caller
(``set_torch_threads``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LAZY = ("TorchLSTM", "TorchSNN", "TriangleSpike")  # built by _build() on first access

__all__ = [
    "TorchLSTM",  # noqa: F822 (built lazily by __getattr__)
    "TorchSNN",  # noqa: F822
    "TriangleSpike",  # noqa: F822
    "init_weights",
    "lstm_hidden_for_params",
    "lstm_param_count",
    "set_torch_threads",
    "snn_param_count",
]


def set_torch_threads(n: int | None) -> None:
    """Set torch's intra-op thread count (``None`` leaves it unchanged)."""
    if n is not None:
        import torch

        torch.set_num_threads(int(n))


def snn_param_count(n_in: int, n_hidden: int, n_out: int, *, recurrent: bool = True,
                    bias: bool = True) -> int:  # fmt: skip
    """Trainable parameters of ``TorchSNN``."""
    return (
        n_in * n_hidden
        + (n_hidden * n_hidden if recurrent else 0)
        + n_hidden * n_out
        + (n_out if bias else 0)
    )


def init_weights(n_in: int, n_hidden: int, n_out: int, *, recurrent: bool = True,
                 bias: bool = True, seed: int | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Float64 initial weights: ``N(0, 1/fan_in)`` for each matrix, a zero bias (as SpyTorch)."""
    rng = np.random.default_rng(seed)

    def normal(n_pre: int, n_post: int) -> np.ndarray:
        return rng.standard_normal((n_pre, n_post)) / math.sqrt(n_pre)

    out = {"W_in": normal(n_in, n_hidden)}
    if recurrent:
        out["W_rec"] = normal(n_hidden, n_hidden)
    out["W_out"] = normal(n_hidden, n_out)
    if bias:
        out["b_out"] = np.zeros(n_out)
    return out


def lstm_param_count(n_in: int, hidden: int, n_out: int) -> int:
    """Parameters of ``nn.LSTM(n_in, hidden)`` (two bias vectors) + ``nn.Linear(hidden, n_out)``."""
    return 4 * hidden * (n_in + hidden + 2) + hidden * n_out + n_out


def lstm_hidden_for_params(n_in: int, n_out: int, target_params: int) -> int:
    """Hidden size (>= 1) whose ``TorchLSTM`` parameter count is closest to ``target_params``."""
    # 4h^2 + (4 n_in + 8 + n_out) h + n_out = target
    a, b, c = 4.0, 4.0 * n_in + 8.0 + n_out, float(n_out - target_params)
    h0 = (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
    cands = {max(1, math.floor(h0)), max(1, math.ceil(h0)), 1}
    return min(sorted(cands), key=lambda h: abs(lstm_param_count(n_in, h, n_out) - target_params))


def _build() -> None:
    import torch
    from torch import nn

    class TriangleSpike(torch.autograd.Function):
        """``z = (u > 0) & ~refr`` of the margin ``u = v - A``; backward ``dz/du = psi``.

        ``psi = psi_scale max(0, 1 - |u| / v_th)``, 0 while refractory. ``dz/dA = -psi`` follows
        from the subtraction ``u = v - A`` the caller writes.
        """

        @staticmethod
        def forward(ctx: Any, u: torch.Tensor, refr: torch.Tensor | None, psi_scale: float,
                    v_th: float) -> torch.Tensor:  # fmt: skip
            psi = psi_scale * torch.clamp(1.0 - torch.abs(u) / v_th, min=0.0)
            z = u > 0
            if refr is not None:
                psi = psi.masked_fill(refr, 0.0)
                z = z & ~refr
            ctx.save_for_backward(psi)
            return z.to(u.dtype)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
            (psi,) = ctx.saved_tensors
            return grad * psi, None, None, None

    class TorchSNN(nn.Module):
        """SpyTorch-style recurrent LIF/ALIF classifier trained with surrogate BPTT + Adam."""

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
            device: str | torch.device | None = None,
            dtype: torch.dtype = torch.float32,
            seed: int | None = None,
            unbind: bool = True,
            input_projection: str = "dense",
        ) -> None:
            super().__init__()
            if model not in ("lif", "alif"):
                raise ValueError(f"model must be 'lif' or 'alif', got {model!r}")
            if input_projection not in ("dense", "sparse"):
                raise ValueError(
                    f"input_projection must be 'dense' or 'sparse', got {input_projection!r}"
                )
            self.model, self.n_ref = model, int(n_ref)
            self.unbind = bool(unbind)
            self.input_projection = input_projection
            self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
            w = init_weights(n_in, n_hidden, n_out, recurrent=recurrent, bias=bias, seed=seed)
            for name in ("W_in", "W_rec", "W_out", "b_out"):
                value = w.get(name)
                param = None if value is None else torch.as_tensor(value, dtype=dtype)
                setattr(self, name, None if param is None else nn.Parameter(param.to(device)))
            # constants computed in float64, rounded to the working dtype
            self.alpha = float(np.exp(-dt / tau_m))
            self.rho = float(np.exp(-dt / tau_a))
            self.kappa = float(np.exp(-dt / tau_out))
            self.beta, self.v_th, self.psi_scale = float(beta), float(v_th), gamma / v_th
            self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)

        def param_count(self) -> int:
            """Number of trainable parameters."""
            return sum(p.numel() for p in self.parameters())

        def set_weights(self, weights: dict[str, np.ndarray]) -> None:
            """Overwrite the named weights (``W_in (n_in, N)``, ... as in ``init_weights``)."""
            with torch.no_grad():
                for name, value in weights.items():
                    p = getattr(self, name)
                    p.copy_(torch.as_tensor(np.asarray(value), dtype=p.dtype))

        def weights(self) -> dict[str, np.ndarray]:
            """The weights by name, as NumPy copies (``set_weights``' inverse)."""
            return {k: p.detach().cpu().numpy().copy() for k, p in self.named_parameters()}

        def prepare_input(self, x: Any) -> torch.Tensor:
            """``x (B, T, n_in)`` 0/1 as this network consumes it: dense in the working dtype, or
            a coalesced sparse COO tensor for ``input_projection="sparse"`` (what a data loader
            would hand over; ``forward`` converts whatever it is given)."""
            W_in = self.W_in
            x = torch.as_tensor(x).to(device=W_in.device, dtype=W_in.dtype)
            if self.input_projection == "sparse" and not x.is_sparse:
                x = x.to_sparse().coalesce()
            return x

        def project_input(self, x: torch.Tensor) -> torch.Tensor:
            """``h = x W_in`` for all timesteps at once, ``(B, T, N)``."""
            Bsz, T, C = x.shape
            x = self.prepare_input(x)
            if not x.is_sparse:
                return torch.einsum("btc,cn->btn", x, self.W_in)
            b, t, c = x.coalesce().indices()
            rows = torch.sparse_coo_tensor(
                torch.stack([b * T + t, c]),
                x.values(),
                (Bsz * T, C),
                is_coalesced=True,
                check_invariants=False,  # built from a coalesced tensor: valid by construction
            )
            return torch.sparse.mm(rows, self.W_in).view(Bsz, T, self.n_hidden)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """``x (B, T, n_in)`` 0/1 (dense or sparse COO) -> readout ``y (B, T, n_out)``."""
            Bsz, T, _ = x.shape
            h = self.project_input(x)  # one matmul for all timesteps
            # h.unbind(1): one backward node for all steps. Indexing h[:, t] in the loop (the
            # literal SpyTorch code) gives the same values, but each step's backward then adds a
            # full (B, T, N) gradient, which makes the backward pass O(T^2) (unbind=False).
            hs = h.unbind(1) if self.unbind else None
            N, dev, dt_ = self.n_hidden, h.device, h.dtype
            v = torch.zeros(Bsz, N, device=dev, dtype=dt_)
            a = torch.zeros_like(v)
            z = torch.zeros_like(v)
            y = torch.zeros(Bsz, self.n_out, device=dev, dtype=dt_)
            r = torch.zeros(Bsz, N, device=dev, dtype=torch.int32) if self.n_ref > 0 else None
            alif = self.model == "alif"
            A = torch.full((Bsz, N), self.v_th, device=dev, dtype=dt_)
            ys = []
            for t in range(T):
                z_prev = z
                I = hs[t] if hs is not None else h[:, t]
                if self.W_rec is not None:
                    I = I + z_prev @ self.W_rec
                refr = None
                if r is not None:
                    r = torch.clamp(r - 1, min=0)
                    r = torch.where(z_prev.detach() > 0, self.n_ref - 1, r)
                    refr = r > 0
                v = self.alpha * v - self.v_th * z_prev.detach() + I
                if alif:
                    a = self.rho * a + z_prev
                    A = self.v_th + self.beta * a
                z = TriangleSpike.apply(v - A, refr, self.psi_scale, self.v_th)
                y = self.kappa * y + z @ self.W_out
                if self.b_out is not None:
                    y = y + self.b_out
                ys.append(y)
            return torch.stack(ys, 1)

        @staticmethod
        def loss(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            """Per-timestep softmax cross-entropy, summed over time and batch."""
            Bsz, T, K = y.shape
            lab = labels.to(y.device).long().repeat_interleave(T)
            return nn.functional.cross_entropy(y.reshape(Bsz * T, K), lab, reduction="sum")

        def train_step(self, x: torch.Tensor, labels: torch.Tensor) -> float:
            """One Adam step on a batch; returns the loss."""
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self(x), labels)
            loss.backward()
            self.optimizer.step()
            return float(loss.detach())

        def loss_and_gradients(self, x: Any, labels: Any) -> tuple[float, dict[str, np.ndarray]]:
            """The loss of a batch and its gradients by name (no optimiser step)."""
            self.zero_grad(set_to_none=True)
            loss = self.loss(self(x), torch.as_tensor(labels))
            loss.backward()
            grads = {k: p.grad.detach().cpu().numpy() for k, p in self.named_parameters()}
            return float(loss.detach()), grads

        @torch.no_grad()
        def predict(self, x: torch.Tensor) -> torch.Tensor:
            """Class = argmax over classes of the softmax summed over time."""
            return torch.softmax(self(x), dim=-1).sum(1).argmax(-1)

    class TorchLSTM(nn.Module):
        """``nn.LSTM`` classifier with a linear readout on the last step, Adam lr 1e-3."""

        def __init__(
            self,
            n_in: int = 700,
            hidden: int = 128,
            n_out: int = 20,
            *,
            lr: float = 1e-3,
            device: str | torch.device | None = None,
            dtype: torch.dtype = torch.float32,
            seed: int | None = None,
        ) -> None:
            super().__init__()
            if seed is not None:
                torch.manual_seed(seed)
            self.lstm = nn.LSTM(n_in, hidden, batch_first=True, device=device, dtype=dtype)
            self.readout = nn.Linear(hidden, n_out, device=device, dtype=dtype)
            self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)

        def param_count(self) -> int:
            """Number of trainable parameters."""
            return sum(p.numel() for p in self.parameters())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """``x (B, T, n_in)`` -> logits ``(B, n_out)`` from the last step."""
            p = self.readout.weight
            out, _ = self.lstm(x.to(device=p.device, dtype=p.dtype))
            return self.readout(out[:, -1])

        def train_step(self, x: torch.Tensor, labels: torch.Tensor) -> float:
            """One Adam step (mean cross-entropy over the batch); returns the loss."""
            self.optimizer.zero_grad(set_to_none=True)
            logits = self(x)
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device).long())
            loss.backward()
            self.optimizer.step()
            return float(loss.detach())

        @torch.no_grad()
        def predict(self, x: torch.Tensor) -> torch.Tensor:
            """Predicted class per sequence."""
            return self(x).argmax(-1)

    globals().update(TriangleSpike=TriangleSpike, TorchSNN=TorchSNN, TorchLSTM=TorchLSTM)


def __getattr__(name: str) -> Any:
    if name in LAZY:
        _build()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
