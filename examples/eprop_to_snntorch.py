"""Train a spiking network in snncc with eProp, hand it to snnTorch through NIR, and check that
snnTorch produces the same spikes (docs/nir.md).

    python examples/eprop_to_snntorch.py      # needs: pip install snntorch nir nirtorch

The hidden layer is NIR's LIF (reset to 0), the readout NIR's LI. snnTorch steps every NIR graph
with forward Euler at its fixed dt = 1e-4, so the graph is exported with euler_dt=1e-4, and
without the readout, as snnTorch's importer has no LI node.
"""

import warnings

import numpy as np
import snntorch.utils
import torch
from snntorch.import_nir import import_from_nir

import snncc
from snncc import data, init, neurons

train, test = data.load_digits("train", seed=0), data.load_digits("test", seed=0)
tau, dt = 20.0, 1.0
r = 1 / (1 - np.exp(-dt / tau))  # input gain 1: a spike of weight w raises v by w
net = snncc.Network(dt=dt, seed=0)
inp = net.add_input("input", train.n_inputs)
hid = net.add_population("hidden", 128, neurons.NIRLIF(tau=tau, v_threshold=0.6, r=r))
out = net.add_population("output", train.n_classes, neurons.LI(tau=tau, r=r))
net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 1 / np.sqrt(train.n_inputs)))
net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 1 / np.sqrt(128)))
model = snncc.compile(
    net, batch_size=32, rule=snncc.rules.EProp(readout="output"), optimizer=snncc.optim.Adam(2e-3)
)
model.fit(train, epochs=3, validation=test, progress=False)
print(f"snncc test accuracy after 3 epochs: {model.evaluate(test)['accuracy']:.3f}")

graph = snncc.nir.export(model, euler_dt=1e-4, populations=["input", "hidden"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # nirtorch's deprecation notices
    peer = import_from_nir(graph)

x = test.x[:64]
ours = model.run(x, record=["hidden"])["hidden"]
snntorch.utils.reset(peer)
xt, theirs, state = torch.tensor(np.asarray(x), dtype=torch.float32), [], None
with torch.no_grad():
    for t in range(xt.shape[1]):
        spikes, state = peer(xt[:, t], state)
        theirs.append(spikes)
theirs = torch.stack(theirs, 1).numpy()
same = np.array_equal(theirs, ours)
print(f"hidden spikes: snncc {int(ours.sum())}, snnTorch {int(theirs.sum())}, identical: {same}")
if not same:
    raise SystemExit("snnTorch's spikes differ from snncc's")
