"""snncc: a code-generating model compiler for spiking neural networks, trained with eProp."""

from snncc import rules
from snncc.errors import (
    CacheError,
    CheckpointError,
    CompileError,
    EquationError,
    ModelError,
    ShapeError,
    SnnccError,
    TrainingError,
)
from snncc.model import init, neurons
from snncc.model.network import Network, Population, Projection
from snncc.model.neuron import NeuronModel, sym
from snncc.runtime import optim
from snncc.runtime.checkpoint import load
from snncc.runtime.compiler import compile, generate

__version__ = "0.1.0"

__all__ = [
    "CacheError",
    "CheckpointError",
    "CompileError",
    "EquationError",
    "ModelError",
    "Network",
    "NeuronModel",
    "Population",
    "Projection",
    "ShapeError",
    "SnnccError",
    "TrainingError",
    "compile",
    "generate",
    "init",
    "load",
    "neurons",
    "optim",
    "rules",
    "sym",
]
