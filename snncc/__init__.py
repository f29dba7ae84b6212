"""snncc: a code-generating model compiler for spiking neural networks, trained with eProp."""

from snncc import nir, rules
from snncc.errors import (
    CacheError,
    CheckpointError,
    CompileError,
    EquationError,
    ModelError,
    NIRError,
    ShapeError,
    SnnccError,
    TrainingError,
    UnknownNameError,
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
    "NIRError",
    "Network",
    "NeuronModel",
    "Population",
    "Projection",
    "ShapeError",
    "SnnccError",
    "TrainingError",
    "UnknownNameError",
    "compile",
    "generate",
    "init",
    "load",
    "neurons",
    "nir",
    "optim",
    "rules",
    "sym",
]
