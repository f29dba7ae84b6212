"""snnTorch peer: the closest snnTorch network to snncc's LIF network, trained with BPTT.

snnTorch has no adaptive (ALIF) neuron and no refractory period, so this peer is compared with
snncc's *LIF* network without a refractory period. The network:

* input: ``nn.Linear(n_in, N, bias=False)`` applied to all timesteps at once before the loop
  (as ``TorchSNN``; snnTorch's tutorials apply it step by step, which is slower);
* hidden: ``snn.RLeaky`` (``beta = exp(-dt/tau_m)``, ``threshold = v_th``, reset by
  subtraction with ``reset_delay=True``, ``all_to_all=True``) whose recurrent ``nn.Linear`` is
  replaced by one without a bias (snncc's recurrent projection has none); ``snn.Leaky`` with
  the same settings for a feed-forward network (``recurrent=False``);
* readout: ``nn.Linear(N, n_out)`` with a bias into ``snn.Leaky(beta = exp(-dt/tau_out),
  reset_mechanism="none")``, whose membrane is the readout ``y``.

Conventions that already agree with snncc: RLeaky's reset is ``H(mem^{t-1} - v_th)`` detached
(equal to the previous spike when nothing is refractory); the recurrent spikes keep their
gradient. The surrogate: snnTorch's built-in ``surrogate.triangular`` is not a triangle (its
backward is ``+-threshold``, a sign flip at the threshold), and ``surrogate.custom_surrogate``
casts spikes to float32; so ``spike_grad`` is ``TriangleSpike`` (``benchmarks.peers``) applied to
snnTorch's ``mem - threshold``: ``psi = gamma/v_th max(0, 1 - |mem - v_th|/v_th)``, exactly
snncc's. With these, loss and gradients equal the reference BPTT (tests/test_peers.py). The
readout Leaky also computes spikes it never uses (its spike function is the same surrogate):
part of what snnTorch costs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import snntorch as snn
import torch
from torch import nn

from benchmarks.peers import TorchSNN, TriangleSpike, init_weights

__all__ = ["SnnTorchSNN"]


class SnnTorchSNN(nn.Module):
    """snnTorch recurrent LIF classifier (RLeaky + Leaky readout), BPTT + Adam."""

    def __init__(
        self,
        n_in: int = 700,
        n_hidden: int = 256,
        n_out: int = 20,
        *,
        tau_m: float = 20.0,
        v_th: float = 0.6,
        gamma: float = 0.3,
        tau_out: float = 20.0,
        dt: float = 1.0,
        recurrent: bool = True,
        lr: float = 1e-3,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        psi_scale, vth = gamma / v_th, float(v_th)

        def spike_grad(u: torch.Tensor) -> torch.Tensor:
            return TriangleSpike.apply(u, None, psi_scale, vth)

        def const(value: float) -> torch.Tensor:  # snnTorch keeps beta/threshold as buffers
            return torch.tensor(value, dtype=dtype)

        f = {"device": device, "dtype": dtype}
        self.fc_in = nn.Linear(n_in, n_hidden, bias=False, **f)
        lif = {
            "beta": const(np.exp(-dt / tau_m)),
            "threshold": const(vth),
            "spike_grad": spike_grad,
            "reset_mechanism": "subtract",
            "reset_delay": True,
        }
        self.recurrent = bool(recurrent)
        if self.recurrent:
            self.hidden = snn.RLeaky(**lif, all_to_all=True, linear_features=n_hidden).to(device)
            self.hidden.recurrent = nn.Linear(n_hidden, n_hidden, bias=False, **f)
        else:
            self.hidden = snn.Leaky(**lif).to(device)
        self.fc_out = nn.Linear(n_hidden, n_out, **f)
        self.readout = snn.Leaky(
            beta=const(np.exp(-dt / tau_out)), spike_grad=spike_grad, reset_mechanism="none"
        ).to(device)
        self.set_weights(init_weights(n_in, n_hidden, n_out, recurrent=recurrent, seed=seed))
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)

    def _layers(self) -> dict[str, torch.Tensor]:
        """The weights under the reference's names, as (pre, post) views of nn.Linear's."""
        layers = {"W_in": self.fc_in.weight, "W_out": self.fc_out.weight, "b_out": self.fc_out.bias}
        if self.recurrent:
            layers["W_rec"] = self.hidden.recurrent.weight
        return layers

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Overwrite the named weights (``W_in (n_in, N)``, ... as in ``init_weights``)."""
        layers = self._layers()
        with torch.no_grad():
            for name, value in weights.items():
                p = layers[name]
                value = torch.as_tensor(np.asarray(value), dtype=p.dtype)
                p.copy_(value if p.dim() == 1 else value.T)  # nn.Linear stores (post, pre)

    def weights(self) -> dict[str, np.ndarray]:
        """The weights by name, (pre, post) like ``set_weights`` takes them."""
        out = {}
        for name, p in self._layers().items():
            w = p.detach().cpu().numpy()
            out[name] = (w if w.ndim == 1 else w.T).copy()
        return out

    def param_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def prepare_input(self, x: Any) -> torch.Tensor:
        """``x (B, T, n_in)`` 0/1 as a dense tensor in the working dtype on the device."""
        w = self.fc_in.weight
        return torch.as_tensor(x).to(device=w.device, dtype=w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, T, n_in)`` 0/1 -> readout ``y (B, T, n_out)``."""
        currents = self.fc_in(self.prepare_input(x)).unbind(1)  # one matmul for all steps
        mem, y = self.hidden.reset_mem(), self.readout.reset_mem()
        if self.recurrent:
            spk, mem = mem  # RLeaky keeps its spikes as state too
        ys = []
        for current in currents:
            if self.recurrent:
                spk, mem = self.hidden(current, spk, mem)
            else:
                spk, mem = self.hidden(current, mem)
            _, y = self.readout(self.fc_out(spk), y)
            ys.append(y)
        return torch.stack(ys, 1)

    loss = staticmethod(TorchSNN.loss)
    train_step = TorchSNN.train_step  # one Adam step (self.optimizer), the loss returned

    def loss_and_gradients(self, x: Any, labels: Any) -> tuple[float, dict[str, np.ndarray]]:
        """The loss of a batch and its gradients by name, (pre, post) like the reference."""
        self.zero_grad(set_to_none=True)
        loss = self.loss(self(x), torch.as_tensor(labels))
        loss.backward()
        grads = {}
        for name, p in self._layers().items():
            g = p.grad.detach().cpu().numpy()
            grads[name] = g if g.ndim == 1 else g.T.copy()
        return float(loss.detach()), grads
