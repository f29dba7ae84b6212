"""mlGeNN's SHD setup with snncc (Knight & Nowotny 2022; settings in eprop.md).

256 recurrent ALIF neurons (tau_m 20, tau_a 2000, beta 0.0174, v_th 0.6, refractory 5 ms),
leaky readout (tau 20), weights Normal(0, 1/sqrt(fan_in)), eProp with symmetric feedback and
the moving-average rate regulariser (c_reg 0.001, 10 Hz, tau_reg 500), Adam 1e-3, batch 512,
100 epochs, dt 1 ms. Published: 78.8 +- 1.1 % test accuracy.

    python examples/shd_eprop.py --data-dir ~/data/shd [--backend cuda] [--epochs 100]

The data are read from shd_train.h5 / shd_test.h5 (https://zenkelab.org/datasets/); nothing is
downloaded.
"""

from __future__ import annotations

import argparse

import numpy as np

import snncc
from snncc import data, init, neurons


def build(n_inputs: int = 700, n_classes: int = 20, n_hidden: int = 256) -> snncc.Network:
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", n_inputs)
    hid = net.add_population(
        "hidden",
        n_hidden,
        neurons.ALIF(tau_m=20.0, tau_a=2000.0, beta=0.0174, v_th=0.6, refractory=5.0),
    )
    out = net.add_population("output", n_classes, neurons.LeakyIntegrator(tau=20.0))
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 1 / np.sqrt(n_inputs)))
    net.connect(
        hid, hid, name="hid_hid", weight=init.Normal(0.0, 1 / np.sqrt(n_hidden)), allow_self=False
    )
    net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 1 / np.sqrt(n_hidden)))
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--neurons", type=int, default=256)
    args = ap.parse_args()

    train = data.load_shd(args.data_dir, "train")
    test = data.load_shd(args.data_dir, "test", n_steps=train.n_steps)
    rule = snncc.rules.EProp(
        readout="output",
        feedback="symmetric",
        regularizer="moving",
        c_reg=0.001,
        f_target=10.0,
        tau_reg=500.0,
    )
    model = snncc.compile(
        build(n_hidden=args.neurons),
        batch_size=args.batch_size,
        backend=args.backend,
        rule=rule,
        optimizer=snncc.optim.Adam(1e-3),
    )
    model.fit(train, epochs=args.epochs, validation=test, checkpoint="shd_eprop.snncc")
    print(model.evaluate(test))


if __name__ == "__main__":
    main()
