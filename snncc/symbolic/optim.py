"""Optimisers as equations: each is plain options plus its update written in sympy.

``update()`` gives the new value of the parameter ``w`` and of each state variable in terms of
``w``, the gradient ``g``, the state and named per-step scalars; codegen prints it into the
generated ``optimize`` kernel, so an optimiser runs where the weights live. ``scalars(step)``
gives the scalars' values for optimiser step ``step`` (from 1) on the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import sympy as sp

from snncc.errors import ModelError
from snncc.model.equations import symbol
from snncc.model.values import check_number


class Optimizer(Protocol):
    """What the compiler and the runtime ask of an optimiser."""

    state: tuple[str, ...]  # per-parameter state buffers (e.g. m, v)
    scalar_names: tuple[str, ...]  # per-step scalars the update reads

    def update(self) -> list[tuple[str, sp.Expr]]: ...
    def scalars(self, step: int) -> list[float]: ...
    def lr_at(self, step: int) -> float: ...


class _Schedule:
    """The learning rate of optimiser step ``step`` (from 1): ``lr``, or with ``decay_steps``
    a cosine from ``lr`` down to ``lr_end`` over that many steps, then ``lr_end``. A function
    of the step alone, which checkpoints keep, so resumed runs continue the same schedule."""

    lr: float
    decay_steps: int
    lr_end: float

    def _check_schedule(self) -> None:
        name = type(self).__name__
        check_number(self.lr, f"{name}: the learning rate lr", minimum=0, exclusive=True)
        check_number(self.decay_steps, f"{name}: decay_steps", minimum=0, integer=True)
        check_number(self.lr_end, f"{name}: lr_end", minimum=0)
        if self.lr_end > self.lr:
            raise ModelError(
                f"{name}: lr_end={self.lr_end:g} is above lr={self.lr:g}; the schedule decays "
                "from lr to lr_end, so give lr_end <= lr"
            )

    def lr_at(self, step: int) -> float:
        if self.decay_steps <= 0:
            return self.lr
        done = min(max(step - 1, 0), self.decay_steps) / self.decay_steps
        return self.lr_end + 0.5 * (self.lr - self.lr_end) * (1.0 + math.cos(math.pi * done))


W, G = symbol("w"), symbol("g")


@dataclass
class SGD(_Schedule):
    """Plain gradient descent: w <- w - lr * g (gradients summed over time and batch)."""

    lr: float = 1e-3
    decay_steps: int = 0
    lr_end: float = 0.0

    state = ()
    scalar_names = ("lr",)

    def __post_init__(self) -> None:
        self._check_schedule()

    def update(self) -> list[tuple[str, sp.Expr]]:
        return [("w", W - symbol("lr") * G)]

    def scalars(self, step: int) -> list[float]:
        return [self.lr_at(step)]


@dataclass
class Adam(_Schedule):
    """Adam with bias correction (Kingma & Ba); step counts from 1.

    ``epsilon="bias_corrected"``: w -= lr * m_hat / (sqrt(v_hat) + eps), as in the paper's
    algorithm and PyTorch. ``epsilon="nest"``: w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m /
    (sqrt(v) + eps), NEST's e-prop placement (eps is not scaled by the bias correction), so
    NEST runs can be reproduced exactly.
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    decay_steps: int = 0
    lr_end: float = 0.0
    epsilon: str = "bias_corrected"

    state = ("m", "v")
    scalar_names = ("lr", "beta1", "beta2", "eps", "c1", "c2")

    def __post_init__(self) -> None:
        self._check_schedule()
        for name in ("beta1", "beta2"):
            beta = check_number(getattr(self, name), f"Adam: {name}", minimum=0)
            if not beta < 1:
                raise ModelError(f"Adam: {name} must be in [0, 1), got {beta}; e.g. 0.9 or 0.999")
        check_number(self.eps, "Adam: eps", minimum=0, exclusive=True, hint="e.g. eps=1e-8")
        if self.epsilon not in ("bias_corrected", "nest"):
            raise ModelError(
                f"Adam: epsilon={self.epsilon!r} is not one of 'bias_corrected', 'nest'"
            )

    def update(self) -> list[tuple[str, sp.Expr]]:
        m, v = symbol("m"), symbol("v")
        lr, b1, b2, eps, c1, c2 = (symbol(s) for s in self.scalar_names)
        if self.epsilon == "nest":
            step = lr * sp.sqrt(c2) / c1 * m / (sp.sqrt(v) + eps)
        else:
            step = lr * (m / c1) / (sp.sqrt(v / c2) + eps)
        return [
            ("m", b1 * m + (1 - b1) * G),
            ("v", b2 * v + (1 - b2) * G * G),
            ("w", W - step),
        ]

    def scalars(self, step: int) -> list[float]:
        """c1 = 1 - beta1^t and c2 = 1 - beta2^t are the bias corrections of step t."""
        return [
            self.lr_at(step),
            self.beta1,
            self.beta2,
            self.eps,
            1.0 - self.beta1**step,
            1.0 - self.beta2**step,
        ]


OPTIMIZERS = {"SGD": SGD, "Adam": Adam}
