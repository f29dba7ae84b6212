"""``snncc.optim``: the optimisers (their equations live in snncc.symbolic.optim)."""

from snncc.symbolic.optim import SGD, Adam, Optimizer

__all__ = ["SGD", "Adam", "Optimizer"]
