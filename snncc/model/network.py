"""Network spec: populations and projections, declared in update order.

Populations update in the order they are added. A projection's ``delay`` d says that a spike of
step t arrives at step t + d. Without one, a projection from an earlier population has delay 0
(the spike arrives in the same step) and one from itself or a later population delay 1 (eprop.md:
I^t = W_in x^t + W_rec z^{t-1}); a delay of 0 is only possible from an earlier population,
whose spikes of step t are known when the later one updates.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from snncc.errors import ModelError, ShapeError
from snncc.model import init as _init
from snncc.model.names import check_name
from snncc.model.neuron import NeuronModel
from snncc.model.neurons import SpikeInput
from snncc.model.values import check_number

#: The longest synaptic delay, in steps (spike rings of this length are kept per population).
MAX_DELAY = 1000


@dataclass
class Population:
    name: str
    size: int
    model: NeuronModel
    index: int

    def __post_init__(self) -> None:
        for pname, value in self.model.params.items():
            if isinstance(value, np.ndarray) and value.shape != (self.size,):
                raise ShapeError(
                    f"population '{self.name}': parameter '{pname}' of {self.model.name} has "
                    f"shape {value.shape}; a per-neuron array must have shape ({self.size},)"
                )

    @property
    def is_input(self) -> bool:
        return self.model.is_input

    def __str__(self) -> str:
        return f"Population {self.name} ({self.size} x {self.model.name})"


@dataclass
class Projection:
    name: str
    pre: Population
    post: Population
    weight: np.ndarray  # float32 (n_pre, n_post); zero where there is no synapse
    mask: np.ndarray | None  # bool (n_pre, n_post), None = all-to-all
    sparse: bool
    trainable: bool = True
    delay: int = 0  # steps between a presynaptic spike and its arrival

    @property
    def delayed(self) -> bool:
        """True if spikes arrive in a later step than they are fired."""
        return self.delay > 0

    @property
    def nnz(self) -> int:
        return int(self.mask.sum()) if self.mask is not None else self.weight.size

    def __str__(self) -> str:
        kind = f"sparse ({self.nnz} synapses)" if self.sparse else "dense"
        lag = f", delay {self.delay} step{'s' if self.delay > 1 else ''}" if self.delay else ""
        return f"Projection {self.name}: {self.pre.name} -> {self.post.name}, {kind}{lag}"


@dataclass
class Network:
    """A declarative network. ``dt`` is in ms; ``seed`` fixes weight draws."""

    dt: float = 1.0
    seed: int = 0
    populations: dict[str, Population] = field(default_factory=dict)
    projections: dict[str, Projection] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # ms; the kernels read dt as float32
        check_number(self.dt, "Network: dt", minimum=0, exclusive=True, hint="give e.g. dt=1.0")
        if self.seed is not None:
            check_number(self.seed, "Network: seed", minimum=0, integer=True, hint="e.g. seed=0")
        self._rng = np.random.default_rng(self.seed)

    def _unique(self, name: str, what: str) -> str:
        check_name(name, what)
        if name in self.populations or name in self.projections:
            raise ModelError(
                f"duplicate name '{name}': a population or projection with that name exists; "
                f"give the {what} another name"
            )
        return name

    def add_input(self, name: str, size: int) -> Population:
        """A population of ``size`` input channels whose spikes come from the data."""
        return self.add_population(name, size, SpikeInput())

    def add_population(self, name: str, size: int, model: NeuronModel) -> Population:
        self._unique(name, "population")
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
            raise ModelError(f"population '{name}': size must be a positive integer, got {size!r}")
        if not isinstance(model, NeuronModel):
            raise ModelError(f"population '{name}': model must be a NeuronModel, got {model!r}")
        pop = Population(name, int(size), model, len(self.populations))
        self.populations[name] = pop
        return pop

    def connect(
        self,
        pre: Population | str,
        post: Population | str,
        name: str | None = None,
        weight: object = 0.0,
        p: float | None = None,
        indices: tuple[np.ndarray, np.ndarray] | None = None,
        allow_self: bool = True,
        trainable: bool = True,
        delay: int | None = None,
    ) -> Projection:
        """Connect ``pre`` to ``post``: all-to-all, with probability ``p`` or by ``indices``.

        ``p`` and ``indices`` give a sparse (event-driven CSR) projection. ``allow_self=False``
        removes i->i synapses of a recurrent projection, and they stay absent during learning.
        ``delay``: steps from a presynaptic spike to its arrival (default: 0 from an earlier
        population, 1 from itself or a later one; see the module docstring).
        """
        pre, post = self._pop(pre), self._pop(post)
        name = self._unique(name or f"{pre.name}_to_{post.name}", "projection")
        where = f"projection '{name}'"
        if post.is_input:
            raise ModelError(f"{where}: cannot project onto input population '{post.name}'")
        if not post.model.input and not _uses_isyn(post.model):
            raise ModelError(
                f"{where}: neuron model '{post.model.name}' of '{post.name}' takes no synaptic "
                "input; give it an 'input' assignment such as {'v': 'I_syn'}"
            )
        for flag, value in (("allow_self", allow_self), ("trainable", trainable)):
            if not isinstance(value, (bool, np.bool_)):
                raise ModelError(f"{where}: {flag} must be True or False, got {value!r}")
        shape = (pre.size, post.size)
        mask = None
        if p is not None and indices is not None:
            raise ModelError(f"{where}: give either p or indices, not both")
        if p is not None:
            if (
                not isinstance(p, numbers.Real)
                or isinstance(p, (bool, np.bool_))
                or not 0.0 <= p <= 1.0
            ):
                raise ModelError(
                    f"{where}: connection probability p={p!r} is not in [0, 1]; give a number "
                    "such as p=0.1"
                )
            mask = self._rng.random(shape) < p
        elif indices is not None:
            mask = _index_mask(indices, shape, where)
        if not allow_self:
            if pre is not post:
                raise ModelError(
                    f"{where}: allow_self=False only applies to a projection from a population "
                    f"onto itself ('{pre.name}' -> '{post.name}' has no self-connections); "
                    "drop it"
                )
            mask = np.ones(shape, dtype=bool) if mask is None else mask
            np.fill_diagonal(mask, False)
        w = _init.resolve(weight, shape, self._rng, where)
        if mask is not None:
            w = np.where(mask, w, np.float32(0))
        sparse = p is not None or indices is not None
        proj = Projection(name, pre, post, w, mask, sparse, bool(trainable))
        proj.delay = self._delay(delay, pre, post, where)
        self.projections[name] = proj
        return proj

    @staticmethod
    def _delay(delay: object, pre: Population, post: Population, where: str) -> int:
        earlier = pre.index < post.index
        if delay is None:
            return 0 if earlier else 1
        if isinstance(delay, (np.ndarray, list, tuple)):
            raise ModelError(
                f"{where}: delay is one integer number of steps for the whole projection; "
                "per-synapse delay arrays are not supported yet. Split the projection into one "
                "per delay (each with the synapses of that delay, indices=...)"
            )
        if not isinstance(delay, (int, np.integer)) or isinstance(delay, bool) or delay < 0:
            raise ModelError(
                f"{where}: delay must be an integer number of steps >= 0, got {delay!r}"
            )
        if delay > MAX_DELAY:
            raise ModelError(f"{where}: delay {delay} is more than {MAX_DELAY} steps; use fewer")
        if delay == 0 and not earlier:
            what = "itself" if pre is post else f"'{post.name}', declared before it"
            raise ModelError(
                f"{where}: delay 0 from '{pre.name}' to {what} is impossible: its spikes of a "
                "step are not known when that step's input is summed. Give delay >= 1, or "
                "declare the presynaptic population first"
            )
        return int(delay)

    def _pop(self, pop: Population | str) -> Population:
        name = pop.name if isinstance(pop, Population) else pop
        if name not in self.populations or (
            isinstance(pop, Population) and self.populations[name] is not pop
        ):
            known = ", ".join(self.populations) or "none"
            raise ModelError(
                f"unknown population {name!r}; add it to this network first (populations: {known})"
            )
        return self.populations[name]

    def incoming(self, pop: Population) -> list[Projection]:
        return [p for p in self.projections.values() if p.post is pop]

    def __str__(self) -> str:
        lines = [f"Network (dt={self.dt} ms)"]
        lines += [f"  {p}" for p in self.populations.values()]
        lines += [f"  {p}" for p in self.projections.values()]
        return "\n".join(lines)


def _index_mask(indices: object, shape: tuple[int, int], where: str) -> np.ndarray:
    """The synapse mask of ``indices = (pre, post)``: two 1-D integer arrays, one synapse each."""
    usage = "give indices=(pre, post), two 1-D integer arrays of equal length"
    if not isinstance(indices, (tuple, list)) or len(indices) != 2:
        raise ShapeError(f"{where}: indices must be a pair (pre, post); {usage}")
    pre_idx, post_idx = (np.asarray(a) for a in indices)
    if pre_idx.shape != post_idx.shape or pre_idx.ndim != 1:
        raise ShapeError(
            f"{where}: indices have shapes {pre_idx.shape} and {post_idx.shape}; {usage}"
        )
    for side, idx, n in (("pre", pre_idx, shape[0]), ("post", post_idx, shape[1])):
        if idx.size == 0:
            continue
        if idx.dtype.kind not in "iu":
            raise ShapeError(f"{where}: {side} indices have dtype {idx.dtype}; {usage}")
        if idx.min() < 0 or idx.max() >= n:
            bad = int(idx[(idx < 0) | (idx >= n)][0])
            raise ShapeError(
                f"{where}: {side} index {bad} is out of range; the {side} population has {n} "
                f"neurons (indices 0 to {n - 1})"
            )
    mask = np.zeros(shape, dtype=bool)
    if pre_idx.size:
        mask[pre_idx, post_idx] = True
    if int(mask.sum()) != pre_idx.size:
        raise ShapeError(
            f"{where}: indices name {pre_idx.size - int(mask.sum())} synapse(s) twice; a "
            "projection has at most one synapse per (pre, post) pair: remove the duplicates"
        )
    return mask


def _uses_isyn(model: NeuronModel) -> bool:
    return any("I_syn" in str(rhs) for rhs in model.odes().values())
