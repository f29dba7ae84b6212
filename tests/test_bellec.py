"""snncc reproduces Bellec et al.'s original e-prop on their sine-wave regression task.

``examples/bellec_regression.py`` expresses the TensorFlow/NEST setup with snncc's public API
(zeta-scaled LIF input and (1 - kappa)-scaled readout in the neurons' equations, filter gain
1 - kappa, random feedback, per-sequence rate regulariser, mse loss, plain SGD). Its five losses
must match the reference implementations to 1e-5 relative (float32).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.reference.bellec import NEST_LOSSES, TF_LOSSES, make_task

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bellec_regression.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("bellec_regression_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_draws_the_reference_task(example) -> None:
    mine, ref = example.draw_task(), make_task()
    for key in ("W_in", "W_rec", "W_out", "feedback"):
        assert mine[key].dtype == np.float32
        np.testing.assert_array_equal(mine[key], ref[key], err_msg=key)
    np.testing.assert_array_equal(mine["x"], ref["x"])
    np.testing.assert_array_equal(mine["target"], ref["target"].astype(np.float32))
    assert tuple(example.TF_LOSSES) == TF_LOSSES and tuple(example.NEST_LOSSES) == NEST_LOSSES


def test_bellec_losses_match_tensorflow_and_nest(example) -> None:
    losses = example.main(verbose=False)
    assert len(losses) == 5
    for ours, tf, nest in zip(losses, TF_LOSSES, NEST_LOSSES, strict=True):
        assert abs(ours - tf) / tf < 1e-5, (losses, TF_LOSSES)
        assert abs(ours - nest) / nest < 1e-5, (losses, NEST_LOSSES)
    # the losses move (weights are trained): not all equal to the first
    assert len({round(v, 3) for v in losses}) == 5
