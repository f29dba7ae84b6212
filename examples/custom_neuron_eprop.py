"""Train a neuron you wrote yourself with eProp: snncc derives its eligibility traces.

The hidden neuron is a LIF with an exponentially decaying synaptic current ("CUBA" LIF),
written with sympy ``Eq``/``Derivative`` objects:

    dv/dt = (-v + I) / tau_m        dI/dt = -I / tau_s        I += I_syn at every step
    spike when v > v_th, then v <- v - v_th

snncc integrates the two ODEs exactly (matrix exponential), differentiates the resulting
discrete update and prints both the update and the eligibility-trace equations it derived:
two traces per synapse (eps_v, eps_I), with e = psi * eps_v. The network (64 spiking
inputs -> 128 recurrent CUBA LIF -> 10 leaky readouts) is then trained on the embedded
spiking 8x8 digits (``snncc.data.load_digits``); the test accuracy is printed each epoch.

Run ``python examples/custom_neuron_eprop.py`` (about half a minute on 2 CPU cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp

try:
    import snncc
except ModuleNotFoundError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import snncc
from snncc.data import load_digits
from snncc.symbolic.integrate import discretize


def cuba_lif(tau_m: float = 20.0, tau_s: float = 5.0, v_th: float = 0.6) -> snncc.NeuronModel:
    """LIF neuron with an exponential synaptic current, written as sympy equations."""
    t = sp.Symbol("t")
    v, I = sp.Function("v")(t), sp.Function("I")(t)
    tau_m_, tau_s_ = snncc.sym("tau_m"), snncc.sym("tau_s")
    return snncc.NeuronModel(
        name="CubaLIF",
        params={"tau_m": tau_m, "tau_s": tau_s, "v_th": v_th, "gamma": 0.3},
        state={"v": 0.0, "I": 0.0},
        dynamics=[
            sp.Eq(sp.Derivative(v, t), (-v + I) / tau_m_),
            sp.Eq(sp.Derivative(I, t), -I / tau_s_),
        ],
        input={"I": "I_syn"},
        reset={"v": "v - v_th"},
        threshold="v > v_th",
        # Bellec et al.'s pseudo-derivative; `margin` is v - v_th
        surrogate="gamma / v_th * max(0, 1 - abs(margin) / v_th)",
    )


def build(n_in: int, n_hidden: int, n_classes: int, batch_size: int, seed: int = 0):
    net = snncc.Network(dt=1.0, seed=seed)
    inp = net.add_input("input", n_in)
    hid = net.add_population("hidden", n_hidden, cuba_lif())
    out = net.add_population("output", n_classes, snncc.neurons.LeakyIntegrator(tau=20.0))
    # The synaptic current integrates ~tau_s inputs, so the input weights are scaled down.
    net.connect(inp, hid, name="in_hid", weight=snncc.init.Normal(0.0, 0.5 / np.sqrt(n_in)))
    net.connect(hid, hid, name="hid_hid", weight=snncc.init.Normal(0.0, 0.2 / np.sqrt(n_hidden)),
                allow_self=False)  # fmt: skip
    net.connect(hid, out, name="hid_out", weight=snncc.init.Normal(0.0, 1.0 / np.sqrt(n_hidden)))
    rule = snncc.rules.EProp(readout="output", regularizer="moving", c_reg=1e-3, f_target=10.0)
    return snncc.compile(net, batch_size=batch_size, rule=rule,
                         optimizer=snncc.optim.Adam(2e-3))  # fmt: skip


def main(epochs: int = 4, n_hidden: int = 128, batch_size: int = 32, seed: int = 0,
         verbose: bool = True) -> list[float]:  # fmt: skip
    """Train; return the test accuracy before training and after each epoch."""
    train, test = load_digits("train"), load_digits("test")
    model = build(train.n_inputs, n_hidden, 10, batch_size, seed)
    if verbose:
        print(cuba_lif())
        print()
        print(discretize(cuba_lif(), dt=1.0))  # the exact one-step update the traces come from
        print()
        print(model.training)  # the derived eligibility traces and the rule
        print()
    accuracy = [model.evaluate((test.x, test.y))["accuracy"]]
    if verbose:
        print(f"before training: test accuracy {accuracy[0]:.3f}")
    for epoch in range(epochs):
        start, losses = time.perf_counter(), []
        for x, y in train.batches(batch_size, seed=seed, epoch=epoch):
            losses.append(model.train_batch(x, y)["loss"])
        accuracy.append(model.evaluate((test.x, test.y))["accuracy"])
        if verbose:
            print(f"epoch {epoch + 1}: train loss {np.mean(losses):.3f}, test accuracy "
                  f"{accuracy[-1]:.3f} ({time.perf_counter() - start:.1f} s)")  # fmt: skip
    return accuracy


if __name__ == "__main__":
    main()
