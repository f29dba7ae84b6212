"""The backend interface: a plan's sources -> a Program that owns the buffers and runs code.

A backend is a printer, a template folder, a loader and its Target (codegen/targets.py). The
runtime talks to a Program only through ``set``/``get``/``ensure``/``run``, so it never knows
where the memory lives; ``run(pass)`` launches the kernels the plan's manifest lists for it.
"""

from __future__ import annotations

import numpy as np

from snncc.codegen.plan import Buffer, KernelPlan

DTYPES = {"float": np.float32, "int": np.int32, "unsigned": np.uint32, "unsigned char": np.uint8}


def static_shape(buf: Buffer, B: int) -> tuple[int, ...] | None:
    """The shape of a buffer that does not depend on T or the data, else None."""
    if any(isinstance(d, str) and d != "B" for d in buf.shape):
        return None
    return tuple(B if d == "B" else int(d) for d in buf.shape)


def shape_for(buf: Buffer, B: int, T: int) -> tuple[int, ...]:
    """Shape of a T-dependent buffer (records, histories) for a run of T steps ("TW": the
    32-bit words that hold one bit per step)."""
    steps = {"B": B, "T": T, "TW": (T + 31) // 32}
    return tuple(steps[d] if isinstance(d, str) else int(d) for d in buf.shape)


class Program:
    """Buffers of one plan on one device, plus the compiled code that works on them."""

    backend = "base"
    stages_inputs = False  # whether ``stage`` uploads a later chunk ahead (see below)

    def __init__(self, plan: KernelPlan, sources: dict[str, str]):
        self.plan = plan
        self.sources = sources
        self.capacity = plan.batch_size
        self._present: dict[str, tuple[int, ...]] = {}
        for buf in plan.buffers:
            shape = static_shape(buf, self.capacity)
            if shape is not None and buf.role != "online":  # online traces: only when used
                init = np.broadcast_to(np.asarray(buf.init, dtype=DTYPES[buf.ctype]), shape)
                self._store(buf.name, np.array(init, order="C"))  # a copy: never the plan's

    # --- to implement per backend ---------------------------------------------
    def _store(self, name: str, array: np.ndarray) -> None:
        raise NotImplementedError

    def _load(self, name: str) -> np.ndarray:
        raise NotImplementedError

    def _drop(self, name: str) -> None:
        raise NotImplementedError

    def launch(self, launch, B: int, T: int) -> None:
        """Launch one kernel of the manifest (a codegen.targets.Launch) on B examples."""
        raise NotImplementedError

    # --- shared ------------------------------------------------------------------
    def run(self, pass_name: str, B: int, T: int) -> None:
        """Launch the kernels of pass ``pass_name`` (simulate, gradient, evaluate, ...)."""
        launches = self.plan.manifest.get(pass_name)
        if launches is None:
            raise KeyError(
                f"the {self.backend} program has no pass '{pass_name}' "
                f"(passes: {', '.join(self.plan.manifest)})"
            )
        for launch in launches:
            self.launch(launch, B, T)

    def stage(self, inputs: dict[str, np.ndarray]) -> bool:
        """Start uploading a later chunk's input buffers (name -> bit words) while the kernels
        already launched run; False where a backend does not (the CPU's are host memory)."""
        return False

    def set_inputs(self, inputs: dict[str, np.ndarray], staged: bool = False) -> None:
        """Upload a chunk's input buffers (``staged``: ``stage`` began their upload)."""
        for name, bits in inputs.items():
            self.set(name, bits)

    # --- shared ------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self._present

    def set(self, name: str, array: np.ndarray) -> None:
        """Upload ``array`` as buffer ``name`` (converted to the buffer's C type)."""
        buf = self.plan.buffer(name)
        # always a copy: a host backend keeps the array, so it must never be the caller's
        # (or another device's) memory, which its kernels would then write through
        self._store(name, np.array(array, dtype=DTYPES[buf.ctype], order="C"))

    def get(self, name: str) -> np.ndarray:
        return self._load(name)

    def ensure(self, name: str, shape: tuple[int, ...], zero: bool = True) -> None:
        """Make buffer ``name`` exist with ``shape`` (zeroed if ``zero`` or newly made)."""
        if self._present.get(name) != shape or zero:
            buf = self.plan.buffer(name)
            self._store(name, np.zeros(shape, dtype=DTYPES[buf.ctype]))

    def drop(self, name: str) -> None:
        if name in self._present:
            self._drop(name)

    def reset_state(self) -> None:
        """Put every state buffer back to its initial value."""
        for buf in self.plan.buffers:
            if buf.role == "state":
                shape = static_shape(buf, self.capacity)
                init = np.broadcast_to(np.asarray(buf.init, dtype=DTYPES[buf.ctype]), shape)
                self._store(buf.name, np.array(init, order="C"))
