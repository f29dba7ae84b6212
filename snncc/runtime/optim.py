"""Optimisers. Each is plain data plus its update written in sympy; the printer renders it
into the generated ``optimize`` kernel, so optimisers run where the weights live."""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

from snncc.codegen.printer import Float32Printer
from snncc.codegen.training import OptimizerCode
from snncc.errors import ModelError
from snncc.model.equations import symbol
from snncc.model.values import check_number


def _lines(assignments: list[tuple[str, sp.Expr]]) -> list[str]:
    pr = Float32Printer()
    return [f"{t} = {pr.doprint(e)};" for t, e in assignments]


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


@dataclass
class SGD(_Schedule):
    """Plain gradient descent: w <- w - lr * g (gradients summed over time and batch)."""

    lr: float = 1e-3
    decay_steps: int = 0
    lr_end: float = 0.0

    def __post_init__(self) -> None:
        self._check_schedule()

    def code(self) -> OptimizerCode:
        w, g, lr = symbol("w"), symbol("g"), symbol("lr")
        return OptimizerCode("SGD", [], _lines([("w", w - lr * g)]), ["lr"])

    def scalars(self, step: int) -> list[float]:
        return [self.lr_at(step)]


@dataclass
class Adam(_Schedule):
    """Adam with bias correction (Kingma & Ba); step counts from 1."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    decay_steps: int = 0
    lr_end: float = 0.0

    def __post_init__(self) -> None:
        self._check_schedule()
        for name in ("beta1", "beta2"):
            beta = check_number(getattr(self, name), f"Adam: {name}", minimum=0)
            if not beta < 1:
                raise ModelError(f"Adam: {name} must be in [0, 1), got {beta}; e.g. 0.9 or 0.999")
        check_number(self.eps, "Adam: eps", minimum=0, exclusive=True, hint="e.g. eps=1e-8")

    def code(self) -> OptimizerCode:
        w, g, m, v = (symbol(s) for s in ("w", "g", "m", "v"))
        lr, b1, b2, eps, c1, c2 = (symbol(s) for s in ("lr", "beta1", "beta2", "eps", "c1", "c2"))
        update = [
            ("m", b1 * m + (1 - b1) * g),
            ("v", b2 * v + (1 - b2) * g * g),
            ("w", w - lr * (m / c1) / (sp.sqrt(v / c2) + eps)),
        ]
        return OptimizerCode(
            "Adam", ["m", "v"], _lines(update), ["lr", "beta1", "beta2", "eps", "c1", "c2"]
        )

    def scalars(self, step: int) -> list[float]:
        return [
            self.lr_at(step),
            self.beta1,
            self.beta2,
            self.eps,
            1.0 - self.beta1**step,
            1.0 - self.beta2**step,
        ]
