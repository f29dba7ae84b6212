"""CompiledModel: what ``snncc.compile`` returns. Runs, records, and exposes weights as NumPy."""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping, Sequence

import numpy as np

from snncc.backends.base import Program, shape_for
from snncc.codegen.plan import KernelPlan
from snncc.errors import ModelError, ShapeError, UnknownNameError
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
        except (KeyError, TypeError):  # TypeError: an unhashable key
            raise UnknownNameError(
                f"no projection {name!r}; projections: {', '.join(self._model.net.projections)}"
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


class Params(MutableMapping):
    """``model.params["<population>.<parameter>"]``: a (n,) float32 copy of every neuron
    parameter (``"hidden.tau_m"``, ``"output.bias"``), keyed like ``gradients()``'s parameter
    entries. Assigning checks shape, dtype, finiteness and the model's constraints, then uploads
    the value and the constants derived from it (e.g. ``exp(-dt/tau_m)``)."""

    def __init__(self, model: CompiledModel):
        self._model = model

    def _locate(self, key: str):
        pop_name, _, name = key.partition(".") if isinstance(key, str) else ("", "", "")
        pop = self._model.net.populations.get(pop_name)
        if pop is None or pop.is_input or name not in pop.model.params:
            raise UnknownNameError(
                f"no neuron parameter {key!r}; parameters are '<population>.<name>': "
                f"{', '.join(self)}"
            )
        return pop, self._model.plan.pop(pop_name), name

    def __getitem__(self, key: str) -> np.ndarray:
        return self.exact(key).astype(np.float32)

    def exact(self, key: str) -> np.ndarray:
        """The value as the model holds it: a trained parameter as the device has it, the
        others as float64, as given (checkpoints keep these, so that the constants derived
        from them are recomputed bit for bit)."""
        pop, pp, name = self._locate(key)
        if name in pop.model.trainable:
            return self._model.programs[0].get(f"{pp.name}_p_{name}").astype(np.float64)
        return np.array(np.broadcast_to(np.float64(pp.values[name]), (pop.size,)))

    def __setitem__(self, key: str, value: object) -> None:
        pop, pp, name = self._locate(key)
        where = f"parameter '{key}'"
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf" or arr.shape not in ((), (pop.size,)):
            raise ShapeError(
                f"{where}: give a real number or an array of shape ({pop.size},), got "
                f"{arr.dtype} of shape {arr.shape}"
            )
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ShapeError(f"{where}: values must be finite")
        pop.model._check_positive({name: arr})
        self._model._set_population_params(
            pp, {name: self.as_stored(key, arr, f"model.params[{key!r}]")}
        )

    def as_stored(self, key: str, values: np.ndarray, where: str) -> float | np.ndarray:
        """``values`` of parameter ``key`` in the form this model keeps it: per-neuron
        parameters as arrays, the others as one number (which all of ``values`` must equal)."""
        pop, pp, name = self._locate(key)
        if name in pp.per_neuron:
            return values
        if np.ptp(values) != 0:
            raise ShapeError(
                f"{where} holds different values per neuron, but '{key}' is one value for all "
                f"neurons in this compiled model; to set it per neuron, build the network with "
                f"an array, e.g. {pop.model.name}({name}=np.full({pop.size}, ...)), and compile "
                "again"
            )
        return np.float64(values.reshape(-1)[0])

    def __delitem__(self, key: str) -> None:
        raise TypeError("parameters cannot be deleted from a compiled model")

    def __iter__(self) -> Iterator[str]:
        for pop in self._model.net.populations.values():
            if not pop.is_input:
                yield from (f"{pop.name}.{k}" for k in pop.model.params)

    def __len__(self) -> int:
        return sum(1 for _ in self)


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
        self.params = Params(self)
        for name, q in net.projections.items():  # the plan holds no weight values
            self.weights[name] = q.weight
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

    def _set_population_params(self, pp, changed: dict) -> None:
        """Upload new parameter values of population ``pp`` with the constants derived from
        them (and the eProp filter, which the readout's decay sets)."""
        from snncc.codegen.plan import parameter_values

        model = self.net.populations[pp.name].model
        # trained parameters have moved on the device; the others keep their float64 values
        current = {
            k: self.params.exact(f"{pp.name}.{k}") if k in model.trainable else pp.values[k]
            for k in model.params
        }
        where = f"population '{pp.name}'"
        values = parameter_values(pp.update, {**current, **changed}, self.plan.dt, where)
        uploads = {}
        if pp.scalars:
            uploads[f"{pp.name}_scalars"] = np.array([values[k] for k in pp.scalars], np.float32)
        for k in pp.per_neuron:
            uploads[f"{pp.name}_p_{k}"] = np.broadcast_to(np.float32(values[k]), (pp.size,))
        tr = self.training
        if tr is not None and pp.name == tr.readout.name:
            from snncc.codegen.training_plan import filter_values

            uploads["filter_decay"], uploads["filter_gain"] = filter_values(tr, values)
        pp.values = values
        for prog in self.programs:
            for name, value in uploads.items():
                prog.set(name, value)

    # ------------------------------------------------------------------ running
    def _upload_inputs(self, prog: Program, x: dict[str, np.ndarray], staged: bool = False) -> None:
        prog.set_inputs({f"{name}_bits": bits for name, bits in x.items()}, staged)

    def _stage_inputs(self, prog: Program, x: dict[str, np.ndarray]) -> bool:
        """Begin uploading a later chunk (True where the program stages, e.g. CUDA)."""
        return prog.stage({f"{name}_bits": bits for name, bits in x.items()})

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
        if isinstance(record, str) or not isinstance(record, Sequence):
            raise ModelError(
                f"record must be a list of keys such as ['hidden', 'output.v'], got {record!r}"
            )
        out = {}
        for key in record:
            if not isinstance(key, str):
                raise ModelError(
                    f"record: {key!r} is not a key; give '<population>' (spikes) or "
                    "'<population>.<state>', e.g. 'hidden' or 'output.v'"
                )
            pop_name, dot, var = key.partition(".")
            pop = self.net.populations.get(pop_name)
            if pop is None:
                raise ModelError(
                    f"record: unknown population '{pop_name}' in '{key}'; populations: "
                    f"{', '.join(self.net.populations)}"
                )
            if dot and not var:
                state = pop.model.output_var
                raise ModelError(
                    f"record: '{key}' names no state variable; give '{pop_name}' for its spikes"
                    + (f" or e.g. '{pop_name}.{state}'" if state else "")
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
            prog.run("simulate", b, T)
            for key, (buf, n) in wanted.items():
                data = prog.get(buf)[:b]
                parts[key].append(unpack_spikes(data, n) if n is not None else data)
        for buf, _ in wanted.values():
            prog.drop(buf)
        return {k: np.concatenate(v) for k, v in parts.items()}
