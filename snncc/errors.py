"""snncc's exceptions. Each names the model, population, equation or symbol at fault."""

from __future__ import annotations


class SnnccError(Exception):
    """Base class of every error snncc raises on bad input."""


class ModelError(SnnccError, ValueError):
    """A neuron model or network spec is invalid (unknown symbol, bad parameter, ...)."""


class EquationError(ModelError):
    """An equation string cannot be parsed or refers to something undeclared."""


class ShapeError(SnnccError, ValueError):
    """An array (weights, input) has the wrong shape or dtype."""


class CompileError(SnnccError, RuntimeError):
    """Generated code failed to compile; the message points back to the model line."""


class TrainingError(SnnccError, RuntimeError):
    """Training cannot go on (NaN loss, bad labels); the last good checkpoint is kept."""


class NIRError(SnnccError, ValueError):
    """A NIR graph cannot be imported, or a network cannot be exported to NIR; names the node."""
