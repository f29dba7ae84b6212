"""The CPU's per-function thread count (backends.cpu.ThreadChoice) and what it must not change.

The choice follows measured times, so the tests feed it times; the results of generated code
must not depend on the count at all (fixed batch parts summed in part order)."""

from __future__ import annotations

import numpy as np

import snncc
from snncc import neurons
from snncc.backends.cpu import ThreadChoice


def _drive(choice: ThreadChoice, seconds: dict[int, float], calls: int) -> list[int]:
    picked = []
    for _ in range(calls):
        n = choice.pick("f")
        choice.record("f", n, seconds[n], work=1)
        picked.append(n)
    return picked


def test_the_faster_count_runs_and_a_change_of_load_is_followed():
    choice = ThreadChoice(most=2)
    quiet = _drive(choice, {1: 2.0, 2: 1.0}, 200)  # 2 threads twice as fast
    assert quiet[4:].count(2) > 0.9 * len(quiet[4:])
    busy = _drive(choice, {1: 1.0, 2: 2.5}, 200)  # a busy core: 1 thread wins
    assert busy[:70].count(1) > 0, "the change was not noticed within 70 calls"
    assert busy[100:].count(1) > 0.9 * 100
    assert set(quiet) == set(busy) == {1, 2}  # the other count is still retried


def test_one_thread_allowed_means_one_thread():
    choice = ThreadChoice(most=1)
    assert _drive(choice, {1: 1.0}, 10) == [1] * 10


def _model():
    net = snncc.Network(dt=1.0, seed=0)
    net.add_input("input", 12)
    net.add_population("hidden", 24, neurons.ALIF(tau_a=100.0))
    net.add_population("output", 3, neurons.LeakyIntegrator(tau=20.0))
    net.connect("input", "hidden", weight=snncc.init.Normal(0.0, 0.5))
    net.connect("hidden", "hidden", weight=snncc.init.Normal(0.0, 0.2), allow_self=False)
    net.connect("hidden", "output", weight=snncc.init.Normal(0.0, 0.3))
    rule = snncc.rules.EProp(readout="output")
    return snncc.compile(net, 16, rule=rule, optimizer=snncc.optim.Adam(1e-2))


def test_training_is_bit_identical_whatever_counts_are_chosen():
    rng = np.random.default_rng(0)
    x = (rng.random((16, 40, 12)) < 0.1).astype(np.uint8)
    y = rng.integers(0, 3, 16)
    runs = []
    for counts in ([1], [2], [2, 1, 1, 2, 1]):  # fixed, and changing from call to call
        model = _model()
        prog = model.programs[0]
        it = iter(counts * 100)
        prog.threads.pick = lambda fn, it=it: next(it)
        for _ in range(4):
            model.train_batch(x, y)
        runs.append({k: v.copy() for k, v in model.weights.items()})
    for run in runs[1:]:
        for k in runs[0]:
            np.testing.assert_array_equal(run[k], runs[0][k], err_msg=k)
