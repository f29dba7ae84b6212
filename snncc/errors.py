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


class CheckpointError(SnnccError, ValueError):
    """A file is not a usable snncc checkpoint; the message names the file and the reason."""


class CacheError(SnnccError, PermissionError):
    """The cache directory or a file in it is not safe to load code from (owner, permissions)."""


class CliError(SnnccError):
    """A mistake in the command line or in a file it names; printed as ``snncc: error: ...``."""


class NIRError(SnnccError, ValueError):
    """A NIR graph cannot be imported, or a network cannot be exported to NIR; names the node."""


class UnknownNameError(SnnccError, KeyError):
    """A key a compiled model does not have (``model.weights["x"]``, ``model.params["x"]``);
    also a KeyError, so those mappings behave like dicts (``in``, ``get``)."""

    def __str__(self) -> str:  # KeyError would show the message with quotes around it
        return str(self.args[0]) if self.args else ""
