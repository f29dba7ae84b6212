"""Optimisers. Each is plain data plus its update written in sympy; the printer renders it
into the generated ``optimize`` kernel, so optimisers run where the weights live."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from snncc.codegen.printer import Float32Printer
from snncc.codegen.training import OptimizerCode
from snncc.errors import ModelError
from snncc.model.equations import symbol


def _lines(assignments: list[tuple[str, sp.Expr]]) -> list[str]:
    pr = Float32Printer()
    return [f"{t} = {pr.doprint(e)};" for t, e in assignments]


@dataclass
class SGD:
    """Plain gradient descent: w <- w - lr * g (gradients summed over time and batch)."""

    lr: float = 1e-3

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ModelError(f"SGD: learning rate must be > 0, got {self.lr}")

    def code(self) -> OptimizerCode:
        w, g, lr = symbol("w"), symbol("g"), symbol("lr")
        return OptimizerCode("SGD", [], _lines([("w", w - lr * g)]), ["lr"])

    def scalars(self, step: int) -> list[float]:
        return [self.lr]


@dataclass
class Adam:
    """Adam with bias correction (Kingma & Ba); step counts from 1."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if not self.lr > 0 or not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1:
            raise ModelError(f"Adam: invalid hyper-parameters {self}")

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
            self.lr,
            self.beta1,
            self.beta2,
            self.eps,
            1.0 - self.beta1**step,
            1.0 - self.beta2**step,
        ]
