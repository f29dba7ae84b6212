"""Why BPTT learns slowly on sequential Fashion-MNIST (docs/results.md, section 1).

On 16 training examples of the runs' data and the runs' network (seed 0):

1. snncc's BPTT gradients against the independent torch autograd reference
   (tests/reference/torch_bptt.py, float64), at the initial weights and at the weights of each
   CHECKPOINT given, with the gradient norms of BPTT and eProp and their cosine;
2. how the norm of dL/dW_in grows with the sequence length (the first T pixels) under BPTT and
   eProp, with and without the recurrent weights (without them the two rules are equal).

Run from the repository root, after the runs have cached the data (same SNNCC_CACHE):

    PYTHONPATH=. python docs/results/check_bptt_gradients.py [CHECKPOINT ...]
"""

from __future__ import annotations

import sys

import numpy as np

import snncc
from snncc import data
from snncc.experiment import TrainConfig, build_network
from tests.reference.torch_bptt import bptt_gradients

B = 16
FASHION = "/usr/share/datasets/fashion-mnist"
WEIGHTS = {"in_hid": "W_in", "hid_hid": "W_rec", "hid_out": "W_out"}


def network(recurrent: bool = True) -> snncc.Network:
    cfg = TrainConfig(dataset="smnist", tau_a=2000.0, refractory=5.0, recurrent=recurrent)
    return build_network(cfg, 79, 10)


def models(net: snncc.Network) -> dict[str, snncc.runtime.model.CompiledModel]:
    """The network under each rule, without the rate regulariser (the reference has none)."""
    rules = {"BPTT": snncc.rules.BPTT, "eProp": snncc.rules.EProp}
    return {
        name: snncc.compile(net, batch_size=B, rule=rule(readout="output", c_reg=0.0))
        for name, rule in rules.items()
    }


def against_autograd(x: np.ndarray, y: np.ndarray, checkpoint: str | None) -> None:
    ms = models(network())
    if checkpoint is not None:
        trained = snncc.load(checkpoint)
        for m in ms.values():
            for name in WEIGHTS:
                m.weights[name] = trained.weights[name]
            m.params["output.bias"] = trained.params["output.bias"]
    bptt = ms["BPTT"]
    w = {key: bptt.weights[name] for name, key in WEIGHTS.items()}
    ref = bptt_gradients(
        x, w["W_in"], w["W_rec"], w["W_out"], bptt.params["output.bias"], model="alif",
        tau_a=2000.0, beta=0.0174, v_th=0.6, gamma=0.3, n_ref=5, labels=y, allow_self=False,
        dtype=np.float64,
    )  # fmt: skip
    z = bptt.run(x, record=["hidden"])["hidden"]
    same = np.array_equal(z, ref["z"].astype(np.uint8))
    print(f"weights: {checkpoint or 'initial (seed 0)'}")
    print(f"  hidden spikes as the reference's: {same} (rate {z.mean():.4f} per neuron and step)")
    g = {name: m.gradients(x, y) for name, m in ms.items()}
    for name, key in WEIGHTS.items():
        gb, ge, gr = g["BPTT"][name], g["eProp"][name], ref[key]
        err = np.abs(gb - gr).max() / np.abs(gr).max()
        cos = float((gb * ge).sum() / (np.linalg.norm(gb) * np.linalg.norm(ge)))
        print(
            f"  {name}: BPTT vs autograd, max rel. error {err:.1e}; norm BPTT "
            f"{np.linalg.norm(gb):.3g}, eProp {np.linalg.norm(ge):.3g}; cosine {cos:.3f}"
        )


def growth_with_length(x: np.ndarray, y: np.ndarray) -> None:
    for recurrent in (True, False):
        ms = models(network(recurrent))
        kind = "recurrent" if recurrent else "feed-forward"
        for steps in (50, 100, 200, 400, 784):
            norms = {
                name: np.linalg.norm(m.gradients(x[:, :steps], y)["in_hid"])
                for name, m in ms.items()
            }
            print(
                f"{kind}, T={steps}: |dL/dW_in| BPTT {norms['BPTT']:.3g}, "
                f"eProp {norms['eProp']:.3g}"
            )


def main() -> None:
    train = data.load_smnist(FASHION, "train", limit=20000, duplicate=False)
    x, y = train.x[:B], train.y[:B]
    for checkpoint in [None, *sys.argv[1:]]:
        against_autograd(x, y, checkpoint)
    growth_with_length(x, y)


if __name__ == "__main__":
    main()
