"""Learning rules. eProp is derived symbolically from each neuron model (symbolic/eprop.py)."""

from snncc.symbolic.eprop import EProp

__all__ = ["EProp"]
