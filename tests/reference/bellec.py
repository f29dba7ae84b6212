"""Bellec et al.'s sine-wave regression task (``/work/shared/reference/bellec-regression.md``).

``make_task()`` draws inputs, weights and target exactly as the original TensorFlow code and
NEST's ``eprop_*_bsshslm_2020`` test do; ``run_reference()`` trains with the NumPy e-prop
reference and returns the per-iteration losses, to be compared with ``TF_LOSSES`` /
``NEST_LOSSES``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .numpy_eprop import eprop_gradients

__all__ = [
    "BELLEC_CONFIG",
    "NEST_LOSSES",
    "TF_LOSSES",
    "make_task",
    "run_reference",
]

#: Loss per iteration of the original TensorFlow implementation (float32).
TF_LOSSES = (
    101.964363098144,
    103.466735839843,
    103.340606689453,
    103.680244445800,
    104.412780761718,
)
#: Loss per iteration of NEST 3.10 (float64).
NEST_LOSSES = (
    101.964356999041,
    103.466731126205,
    103.340607074771,
    103.680244037686,
    104.412775748752,
)

N_IN, N_REC, N_OUT, T = 100, 100, 1, 1000
DT, TAU_M, TAU_OUT = 1.0, 30.0, 30.0
LR = 1e-4

#: ``eprop_gradients`` keyword arguments for the task (besides weights, inputs and targets).
BELLEC_CONFIG: dict[str, Any] = {
    "model": "lif",
    "tau_m": TAU_M,
    "v_th": 0.03,
    "gamma": 0.3,
    "n_ref": 0,
    "tau_out": TAU_OUT,
    "dt": DT,
    "loss": "mse",
    "gain": "1-kappa",
    "reg": "sequence",
    "c_reg": 300.0,
    "f_target": 0.01,
    "error_start": 0,
    "zeta": 1.0 - np.exp(-DT / TAU_M),
    "out_scale": 1.0 - np.exp(-DT / TAU_OUT),
    "allow_self": False,
}


def make_task() -> dict[str, np.ndarray]:
    """Draw the task with NumPy's legacy global RNG (seed 1), in the reference order.

    Returns ``W_in (100,100)``, ``W_rec (100,100)`` (zero diagonal), ``W_out (100,1)`` and
    ``feedback (100,1)`` in (pre, post) layout as float32, ``x (1,1000,100)`` float32 0/1 and
    ``target (1,1000,1)`` float64.
    """
    np.random.seed(1)
    w_in = np.random.randn(N_IN, N_REC).T / np.sqrt(N_IN)  # (post, pre)
    w_rec = np.random.randn(N_REC, N_REC).T / np.sqrt(N_REC)
    np.fill_diagonal(w_rec, 0.0)
    w_out = np.random.randn(N_REC, N_OUT).T / np.sqrt(N_REC)  # (out, rec)
    fb = np.random.randn(N_REC, N_OUT) / np.sqrt(N_REC)  # (rec, out)
    x = (np.random.rand(T, N_IN) < 0.05).astype(np.float32)
    x[0] = 0.0
    amps = np.random.uniform(0.5, 2.0, 4)
    phases = np.random.uniform(0.0, 2.0 * np.pi, 4)
    periods = [1000.0, 500.0, 333.0, 200.0]
    s = np.zeros(T)
    for amp, ph, per in zip(amps, phases, periods, strict=True):
        s += amp * np.sin(np.linspace(ph, ph + 2.0 * np.pi * (T // per), T))
    s -= s[0]
    s /= np.max(np.abs(s))
    return {
        "W_in": np.ascontiguousarray(w_in.T, dtype=np.float32),
        "W_rec": np.ascontiguousarray(w_rec.T, dtype=np.float32),
        "W_out": np.ascontiguousarray(w_out.T, dtype=np.float32),
        "feedback": np.ascontiguousarray(fb, dtype=np.float32),
        "x": x[None],
        "target": s[None, :, None],
    }


def run_reference(dtype: Any = np.float64, iterations: int = 5) -> list[float]:
    """Train the task with NumPy e-prop and plain gradient descent; return the losses."""
    task = make_task()
    dtype = np.dtype(dtype).type
    W_in = task["W_in"].astype(dtype)
    W_rec = task["W_rec"].astype(dtype)
    W_out = task["W_out"].astype(dtype)
    lr = dtype(LR)
    losses = []
    for _ in range(iterations):
        g = eprop_gradients(
            task["x"],
            W_in,
            W_rec,
            W_out,
            None,
            targets=task["target"],
            feedback=task["feedback"],
            dtype=dtype,
            **BELLEC_CONFIG,
        )
        losses.append(g["loss"])
        W_in = W_in - lr * g["W_in"]
        W_rec = W_rec - lr * g["W_rec"]
        W_out = W_out - lr * g["W_out"]
    return losses
