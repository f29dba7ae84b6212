"""Bellec et al.'s e-prop sine-wave regression, written with snncc's public API.

This reproduces the loss trajectory of the original TensorFlow e-prop code (and of NEST 3.10's
``eprop_*_bsshslm_2020`` models) on their regression task: 100 Poisson inputs -> 100 recurrent
LIF neurons (no self-connections) -> 1 leaky readout, T = 1000 steps of 1 ms, batch 1, five
iterations of plain gradient descent (see ``shared/reference/bellec-regression.md``).

Every way in which this setup differs from snncc's defaults is a modelling choice written here:

* the LIF neuron scales its input by zeta = 1 - exp(-dt/tau_m) *in its own equation*, so the
  derived eligibility traces follow the scaled input (zbar <- alpha zbar + zeta s);
* the readout scales its input by (1 - kappa) and has no bias;
* the eligibility filter gain is (1 - kappa), the feedback is random (the task's B), the
  firing-rate regulariser is computed once per sequence (c_reg = 300, f_target = 10 Hz), the
  loss is the squared error sum_t 0.5 (y - y*)^2 and the optimiser is SGD with eta = 1e-4.

Run ``python examples/bellec_regression.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

try:
    import snncc
except ModuleNotFoundError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import snncc

#: Loss per iteration of the original TensorFlow implementation (float32).
TF_LOSSES = (101.964363098144, 103.466735839843, 103.340606689453, 103.680244445800,
             104.412780761718)  # fmt: skip
#: The same task in NEST 3.10 (float64).
NEST_LOSSES = (101.964356999041, 103.466731126205, 103.340607074771, 103.680244037686,
               104.412775748752)  # fmt: skip

N_IN, N_REC, N_OUT, T = 100, 100, 1, 1000


def draw_task() -> dict[str, np.ndarray]:
    """Inputs, weights, feedback and target, drawn exactly as the reference code draws them.

    NumPy's legacy global RNG, seed 1. The weight matrices come out as (post, pre) and are
    returned transposed to snncc's (pre, post) layout, rounded to float32.
    """
    np.random.seed(1)
    w_in = np.random.randn(N_IN, N_REC).T / np.sqrt(N_IN)  # (post, pre)
    w_rec = np.random.randn(N_REC, N_REC).T / np.sqrt(N_REC)
    np.fill_diagonal(w_rec, 0.0)
    w_out = np.random.randn(N_REC, N_OUT).T / np.sqrt(N_REC)  # (out, rec)
    feedback = np.random.randn(N_REC, N_OUT) / np.sqrt(N_REC)  # (rec, out)
    x = (np.random.rand(T, N_IN) < 0.05).astype(np.uint8)
    x[0] = 0
    amplitudes = np.random.uniform(0.5, 2.0, 4)
    phases = np.random.uniform(0.0, 2.0 * np.pi, 4)
    periods = [1000.0, 500.0, 333.0, 200.0]
    s = np.zeros(T)
    for amp, phase, period in zip(amplitudes, phases, periods, strict=True):
        s += amp * np.sin(np.linspace(phase, phase + 2.0 * np.pi * (T // period), T))
    s -= s[0]
    s /= np.max(np.abs(s))
    return {
        "W_in": np.ascontiguousarray(w_in.T, dtype=np.float32),
        "W_rec": np.ascontiguousarray(w_rec.T, dtype=np.float32),
        "W_out": np.ascontiguousarray(w_out.T, dtype=np.float32),
        "feedback": np.ascontiguousarray(feedback, dtype=np.float32),
        "x": x[None],  # (batch 1, T, N_IN)
        "target": s[None, :, None].astype(np.float32),  # (batch 1, T, N_OUT)
    }


def bellec_lif() -> snncc.NeuronModel:
    """LIF with reset by subtraction whose input is scaled by zeta = 1 - exp(-dt/tau_m)."""
    return snncc.NeuronModel(
        name="BellecLIF",
        params={"tau_m": 30.0, "v_th": 0.03, "gamma": 0.3},
        state={"v": 0.0},
        dynamics=["dv/dt = -v / tau_m"],
        reset={"v": "v - v_th"},
        input={"v": "(1 - exp(-dt/tau_m)) * I_syn"},
        threshold="v > v_th",
        surrogate="gamma / v_th * max(0, 1 - abs(margin) / v_th)",
    )


def bellec_readout() -> snncc.NeuronModel:
    """Leaky readout y <- kappa y + (1 - kappa) I_syn, kappa = exp(-dt/tau); no bias."""
    return snncc.NeuronModel(
        name="BellecReadout",
        params={"tau": 30.0},
        state={"y": 0.0},
        dynamics=["dy/dt = -y / tau"],
        input={"y": "(1 - exp(-dt/tau)) * I_syn"},
        output="y",
    )


def build(task: dict[str, np.ndarray], backend: str = "cpu") -> snncc.runtime.model.CompiledModel:
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", N_IN)
    rec = net.add_population("recurrent", N_REC, bellec_lif())
    out = net.add_population("output", N_OUT, bellec_readout())
    net.connect(inp, rec, name="in_rec", weight=task["W_in"])
    net.connect(rec, rec, name="rec_rec", weight=task["W_rec"], allow_self=False)
    net.connect(rec, out, name="rec_out", weight=task["W_out"])
    rule = snncc.rules.EProp(
        readout="output",
        feedback="random",
        filter_gain="1 - kappa",
        regularizer="sequence",
        c_reg=300.0,
        f_target=10.0,  # Hz; 0.01 spikes per step at dt = 1 ms
        loss="mse",
    )
    model = snncc.compile(net, batch_size=1, backend=backend, rule=rule,
                          optimizer=snncc.optim.SGD(1e-4))  # fmt: skip
    # The task's own random feedback matrix B (n_rec, n_out) replaces snncc's draw.
    model.set_feedback("recurrent", task["feedback"])
    return model


def main(iterations: int = 5, verbose: bool = True) -> list[float]:
    """Train for ``iterations`` steps; return the loss sum_t 0.5 (y - y*)^2 of each."""
    task = draw_task()
    model = build(task)
    if verbose:
        print(model.training)
    losses = []
    for it in range(iterations):
        # train_batch reports the loss of the pass it takes the gradient from (before the
        # step), averaged over the batch; the batch is 1 sequence.
        loss = model.train_batch(task["x"], task["target"])["loss"] * task["x"].shape[0]
        losses.append(loss)
        if verbose:
            ref = TF_LOSSES[it] if it < len(TF_LOSSES) else float("nan")
            print(f"iteration {it}: snncc {loss:.9f}   TensorFlow {ref:.9f}   "
                  f"relative difference {abs(loss - ref) / ref:.1e}")  # fmt: skip
    return losses


if __name__ == "__main__":
    main()
