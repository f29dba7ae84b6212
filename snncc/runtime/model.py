"""CompiledModel: what ``snncc.compile`` returns. Runs, records, and exposes weights as NumPy."""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping, Sequence

import numpy as np

from snncc.backends.base import Program, shape_for
from snncc.codegen.plan import KernelPlan
from snncc.errors import ModelError, ShapeError
from snncc.model.init import as_float32
from snncc.model.network import Network
from snncc.runtime.inputs import as_bits, check_inputs, unpack_spikes
from snncc.runtime.training import TrainingMixin


class Weights(MutableMapping):
    """``model.weights[name]``: a (n_pre, n_post) float32 copy; assigning uploads it."""

    def __init__(self, model: CompiledModel):
        self._model = model

    def _proj(self, name: str):
        try:
            return self._model.net.projections[name]
        except KeyError:
            raise KeyError(
                f"no projection '{name}'; projections: {', '.join(self._model.net.projections)}"
            ) from None

    def __getitem__(self, name: str) -> np.ndarray:
        q = self._proj(name)
        w = self._model.programs[0].get(f"{name}_w")
        if not q.sparse:
            return w.reshape(q.pre.size, q.post.size)
        dense = np.zeros((q.pre.size, q.post.size), dtype=np.float32)
        dense[q.mask] = w
        return dense

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        q = self._proj(name)
        value = np.asarray(value)
        shape = (q.pre.size, q.post.size)
        if value.shape != shape:
            raise ShapeError(
                f"projection '{name}': weights of shape {value.shape} given, expected "
                f"(n_pre, n_post) = {shape}"
                + (" (this is the transpose)" if value.shape == shape[::-1] else "")
            )
        if value.dtype.kind not in "iuf":
            raise ShapeError(
                f"projection '{name}': weights have dtype {value.dtype}; give real numbers "
                "(float32 or exactly representable integers)"
            )
        value = as_float32(value, f"projection '{name}'")
        if not np.all(np.isfinite(value)):
            i, j = map(int, np.argwhere(~np.isfinite(value))[0])
            raise ShapeError(
                f"projection '{name}': weight [{i}, {j}] is {value[i, j]}; weights must be finite"
            )
        if q.mask is not None:
            stray = (~q.mask) & (value != 0)
            if stray.any():
                i, j = map(int, np.argwhere(stray)[0])
                raise ShapeError(
                    f"projection '{name}': weight [{i}, {j}] = {value[i, j]} is where no synapse "
                    "exists (sparse or no-self-connection mask); set it to 0"
                )
            flat = value[q.mask] if q.sparse else value
        else:
            flat = value
        for prog in self._model.programs:
            prog.set(f"{name}_w", flat.reshape(-1) if q.sparse else flat)

    def __delitem__(self, name: str) -> None:
        raise TypeError("projections cannot be deleted from a compiled model")

    def __iter__(self) -> Iterator[str]:
        return iter(self._model.net.projections)

    def __len__(self) -> int:
        return len(self._model.net.projections)


class CompiledModel(TrainingMixin):
    """A network compiled for one backend. See README for the API tour."""

    def __init__(
        self,
        net: Network,
        plan: KernelPlan,
        programs: Sequence[Program],
        training=None,
        optimizer=None,
    ):
        self.net = net
        self.plan = plan
        self.programs = list(programs)
        self.weights = Weights(self)
        self.inputs = [p.name for p in net.populations.values() if p.is_input]
        self.training = training
        self.optimizer = optimizer
        self.step = 0  # optimiser steps taken
        self.progress: dict = {}  # epochs done (saved in checkpoints)

    @property
    def backend(self) -> str:
        return self.programs[0].backend

    @property
    def batch_size(self) -> int:
        return self.plan.batch_size

    def trained_network(self) -> Network:
        """A copy of the network holding the weights and trainable parameters the model has now
        (what an export or a recompilation should start from)."""
        net = copy.deepcopy(self.net)
        prog = self.programs[0]
        for name, q in net.projections.items():
            q.weight = self.weights[name]
        for pop in net.populations.values():
            trained = {
                p: prog.get(f"{pop.name}_p_{p}").astype(np.float64)
                for p in pop.model.trainable
                if prog.has(f"{pop.name}_p_{p}")
            }
            if trained:
                pop.model = pop.model.with_params(**trained)
        return net

    def sources(self) -> dict[str, str]:
        """{file name: generated source}."""
        return dict(self.programs[0].sources)

    # ------------------------------------------------------------------ running
    def _upload_inputs(self, prog: Program, x: dict[str, np.ndarray]) -> None:
        for name, bits in x.items():
            prog.set(f"{name}_bits", bits)

    def convert_inputs(
        self, x: object, n_steps: int | None = None
    ) -> tuple[dict[str, np.ndarray], int, int]:
        """Check x and convert it to spike bit words for the whole batch: (bits, B, T)."""
        x = check_inputs(x, self.inputs)
        converted = {}
        B = T = None
        for name, data in x.items():
            pop = self.net.populations[name]
            bits = as_bits(data, name, pop.size, self.net.dt, n_steps)
            b, t = bits.shape[:2]
            if B is not None and (b, t) != (B, T):
                raise ShapeError(f"input '{name}': batch/time {b, t} differ from other inputs")
            B, T = b, t
            converted[name] = bits
        return converted, B, T

    def chunks(self, converted: dict[str, np.ndarray], T: int, lo: int, hi: int) -> list[tuple]:
        """Examples lo..hi in pieces of at most ``batch_size``: [(start, stop, bits), ...]."""
        out = []
        for start in range(lo, hi, self.batch_size):
            stop = min(hi, start + self.batch_size)
            out.append((start, stop, {name: bits[start:stop] for name, bits in converted.items()}))
        return out

    def _record_buffers(self, record: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        """User record keys -> (buffer name, n for spike unpacking)."""
        out = {}
        for key in record:
            pop_name, _, var = key.partition(".")
            pop = self.net.populations.get(pop_name)
            if pop is None:
                raise ModelError(
                    f"record: unknown population '{pop_name}' in '{key}'; populations: "
                    f"{', '.join(self.net.populations)}"
                )
            if not var:
                if not pop.model.spiking:
                    raise ModelError(
                        f"record: population '{pop_name}' does not spike; record a state such "
                        f"as '{pop_name}.{pop.model.output_var}'"
                    )
                out[key] = (f"rec_{pop_name}", pop.size)
            else:
                if var not in pop.model.state:
                    raise ModelError(
                        f"record: '{var}' is not a state variable of '{pop_name}' "
                        f"({pop.model.name}: {', '.join(pop.model.state) or 'none'})"
                    )
                out[key] = (f"rec_{pop_name}_{var}", None)
        return out

    def run(
        self, x: object, record: Sequence[str] = (), n_steps: int | None = None
    ) -> dict[str, np.ndarray]:
        """Simulate every example of ``x`` from the initial state; return the recordings.

        ``x`` is a (batch, time, n_in) 0/1 array or a list of (times_ms, units) per example
        (a dict of these keyed by input name if there are several inputs).
        """
        wanted = self._record_buffers(record)
        converted, B, T = self.convert_inputs(x, n_steps)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in wanted}
        prog = self.programs[0]
        for start, stop, chunk in self.chunks(converted, T, 0, B):
            b = stop - start
            self._upload_inputs(prog, chunk)
            prog.reset_state()
            for buf, _ in wanted.values():
                prog.ensure(buf, shape_for(self.plan.buffer(buf), self.batch_size, T))
            prog.call("simulate", b, T)
            for key, (buf, n) in wanted.items():
                data = prog.get(buf)[:b]
                parts[key].append(unpack_spikes(data, n) if n is not None else data)
        for buf, _ in wanted.values():
            prog.drop(buf)
        return {k: np.concatenate(v) for k, v in parts.items()}
