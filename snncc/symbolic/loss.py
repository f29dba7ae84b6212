"""The readout's loss, its per-step error and the class decision, written once as sympy.

The kernels print these; the runtime evaluates the same decision on recorded outputs with
``decide`` (lambdified), so the class decision exists in one place only. Symbols, per readout
unit k at step t: ``_y`` its output, ``_ymax`` the step's largest output, ``_ek`` =
exp(_y - _ymax), ``_ysum`` = sum over k of _ek, ``_onehot`` 1 for the label's unit, ``_target``
the regression target; ``_score`` the unit's decision score so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from snncc.model.equations import symbol

Y, YMAX, EK, YSUM, ONEHOT, TARGET, P, SCORE = (
    symbol(s) for s in ("_y", "_ymax", "_ek", "_ysum", "_onehot", "_target", "_p", "_score")
)
LOSSES = ("cross_entropy", "mse")
DECISIONS = ("sum", "max", "last")
#: the score before the first counted step of a "max" decision (the lowest float32)
LOWEST = -3.4028234663852886e38


@dataclass
class LossEquations:
    """``error`` (dLoss/dy at one step) and ``loss_term`` in the symbols above; ``softmax``:
    they use the softmax probability ``_p`` = _ek / _ysum; ``reads_target``: the mse target.
    ``score``: the decision's new score after a counted step (None: no decision)."""

    loss: str
    error: sp.Expr
    loss_term: sp.Expr
    softmax: bool
    reads_target: bool
    decision: str | None = None
    score: sp.Expr | None = None
    score_init: float = 0.0

    def __str__(self) -> str:
        lines = [f"loss {self.loss}: per step {self.loss_term}; error E = {self.error}"]
        if self.softmax:
            lines.append(f"  {P} = exp(_y - _ymax) / sum_k exp(_y - _ymax)")
        if self.score is not None:
            lines.append(
                f"  decision '{self.decision}': score <- {self.score} (from {self.score_init:g})"
            )
        return "\n".join(lines)


def loss_equations(loss: str, decision: str) -> LossEquations:
    if loss == "cross_entropy":
        score, init = {
            "sum": (SCORE + P, 0.0),
            "max": (sp.Max(SCORE, Y), LOWEST),
            "last": (Y, 0.0),
        }[decision]
        return LossEquations(
            loss,
            error=P - ONEHOT,
            loss_term=-ONEHOT * (Y - YMAX - sp.log(YSUM)),
            softmax=True,
            reads_target=False,
            decision=decision,
            score=score,
            score_init=init,
        )
    e = Y - TARGET
    return LossEquations(loss, error=e, loss_term=e**2 / 2, softmax=False, reads_target=True)


def decide(eqs: LossEquations, outputs: np.ndarray, start: int = 0) -> np.ndarray:
    """Class decisions (batch,) from recorded readout outputs (batch, T, K), counting steps
    from ``start``: the kernels' score update, applied step by step in float64."""
    y = outputs[:, start:].astype(np.float64)
    if y.shape[1] == 0:
        raise ValueError("no counted step to decide from")
    update = sp.lambdify((SCORE, P, Y), eqs.score, "numpy")
    score = np.full(y.shape[::2], eqs.score_init)
    for t in range(y.shape[1]):
        yt = y[:, t]
        e = np.exp(yt - yt.max(-1, keepdims=True))
        score = np.broadcast_to(update(score, e / e.sum(-1, keepdims=True), yt), score.shape)
    return score.argmax(-1)
