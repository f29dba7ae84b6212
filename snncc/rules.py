"""Learning rules: eProp and exact BPTT, both derived symbolically from each neuron model
(symbolic/eprop.py, symbolic/bptt.py)."""

from snncc.symbolic.bptt import BPTT
from snncc.symbolic.eprop import EProp

__all__ = ["BPTT", "EProp"]
