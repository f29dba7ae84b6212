"""CUDA backend: nvcc builds a cubin (cached by content hash), PyCUDA loads it on one device.

A pass launches the kernels its manifest lists, each once: the time loop runs inside the
persistent forward kernel, so there is no per-step host work (codegen/cuda_layout.py).
Buffers are reached through one device-side pointer table, so kernels take (table, B, T) and a
launch costs the same whatever the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from snncc.backends.base import Program
from snncc.backends.cache import build_dir, content_hash, publish, trusted_file
from snncc.backends.diagnostics import explain
from snncc.codegen.cuda_layout import SHARED_DEFAULT
from snncc.codegen.plan import KernelPlan
from snncc.errors import CompileError, SnnccError
from snncc.files import atomic_write

NVCC_FLAGS = ["-O3", "--fmad=false", "-std=c++17", "-diag-suppress", "177,550"]


def nvcc_path() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for cand in ("/usr/local/bin/nvcc", "/usr/local/cuda/bin/nvcc"):
        if os.path.exists(cand):
            return cand
    return None


def nvcc_compile(source: str, name: str, arch: str, kind: str = "cubin") -> Path:
    """Compile one CUDA source to ``kind`` (cubin or ptx) for ``arch``, cached by content.

    The source is kept beside the build (same name, ``.cu``): what ran can always be read,
    and the CUDA emulator of the test suite runs it.
    """
    nvcc = nvcc_path()
    if nvcc is None:
        raise CompileError("the CUDA backend needs nvcc on PATH (or CUDA in /usr/local/cuda)")
    key = content_hash(source, arch, kind, " ".join(NVCC_FLAGS))
    out = build_dir("cuda") / f"snncc_{key}.{kind}"
    kept = out.with_suffix(".cu")
    if not kept.exists():  # before the build: a cached build always has its source
        atomic_write(kept, source.encode(), durable=False)
    if out.exists():
        return trusted_file(out)
    with tempfile.TemporaryDirectory(prefix="snncc_cuda_") as tmp:
        src = Path(tmp) / name
        src.write_text(source)
        target = Path(tmp) / f"out.{kind}"
        cmd = [nvcc, f"-{kind}", f"-arch={arch}", *NVCC_FLAGS, str(src), "-o", str(target)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(explain(source, proc.stderr + proc.stdout, name))
        publish(target, out)
    return out


def _driver():
    try:
        import pycuda.driver as drv
    except ImportError:
        raise SnnccError(
            "backend='cuda' needs PyCUDA: pip install 'snncc[cuda]' on a machine with CUDA"
        ) from None
    drv.init()
    return drv


class CudaProgram(Program):
    backend = "cuda"
    stages_inputs = True

    def __init__(self, plan: KernelPlan, sources: dict[str, str], device: int = 0):
        drv = self.drv = _driver()
        if not 0 <= device < drv.Device.count():
            raise SnnccError(f"CUDA device {device} does not exist ({drv.Device.count()} found)")
        self.device = drv.Device(device)
        self.context = self.device.retain_primary_context()
        self.context.push()
        try:
            major, minor = self.device.compute_capability()
            name = next(iter(sources))
            cubin = nvcc_compile(sources[name], name, f"sm_{major}{minor}")
            self.module = drv.module_from_file(str(cubin))
            self.stream = drv.Stream()
            self.copy_stream = drv.Stream()  # inputs of the next chunk, while this one runs
            self._mem: dict[str, object] = {}
            self._staged: dict[str, _Slot] = {}  # input -> its copy in flight (stage)
            self._spare: dict[str, _Slot] = {}  # input -> the buffer to stage into next
            self._table = drv.mem_alloc(8 * max(1, len(plan.buffers)))
            self._table_host = [drv.pagelocked_empty(len(plan.buffers), np.uint64)]
            self._table_host.append(drv.pagelocked_empty(len(plan.buffers), np.uint64))
            self._table_copied = [None, None]  # their last asynchronous copy (an event)
            self._table_turn = 0
            self.kernels = self._prepare(plan)
            super().__init__(plan, sources)
        finally:
            self.context.pop()

    def _prepare(self, plan: KernelPlan) -> dict[str, object]:
        """The prepared function of every kernel the manifest names (arguments: the pointer
        table, B and T), allowed the dynamic shared memory its launches ask for."""
        out = {}
        for launches in plan.manifest.values():
            for launch in launches:
                if launch.name not in out:
                    f = self.module.get_function(launch.name)
                    f.prepare("Pii")
                    out[launch.name] = f
                if launch.shared > SHARED_DEFAULT:  # above 48 KiB only when asked for
                    attr = self.drv.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES
                    out[launch.name].set_attribute(attr, launch.shared)
        return out

    # --- memory ---------------------------------------------------------------
    def _store(self, name: str, array: np.ndarray) -> None:
        self.context.push()
        try:
            self.stream.synchronize()  # never free or overwrite what a running kernel uses
            self._staged.pop(name, None)  # a staged copy of an input is no longer wanted
            old = self._mem.get(name)
            if old is None or old.nbytes < max(array.nbytes, 4):
                mem = self.drv.mem_alloc(max(array.nbytes, 4))
                if old is not None:
                    old.mem.free()
                self._mem[name] = _Alloc(mem, max(array.nbytes, 4))
                self._write_table()
            if array.nbytes:
                self.drv.memcpy_htod(self._mem[name].mem, array)
            self._present[name] = array.shape
        finally:
            self.context.pop()

    def _load(self, name: str) -> np.ndarray:
        from snncc.backends.base import DTYPES

        out = np.empty(self._present[name], dtype=DTYPES[self.plan.buffer(name).ctype])
        self.context.push()
        try:
            self.stream.synchronize()  # the kernels that write it run on this stream
            self.drv.memcpy_dtoh(out, self._mem[name].mem)
        finally:
            self.context.pop()
        return out

    def _drop(self, name: str) -> None:
        self.context.push()
        try:
            self.stream.synchronize()
            self._mem.pop(name).mem.free()
            del self._present[name]
            self._write_table()
        finally:
            self.context.pop()

    def _table_values(self) -> np.ndarray:
        return np.array(
            [int(self._mem[b.name].mem) if b.name in self._mem else 0 for b in self.plan.buffers],
            dtype=np.uint64,
        )

    def _write_table(self) -> None:
        self.drv.memcpy_htod(self._table, self._table_values())

    # --- inputs staged ahead: pinned host memory, a copy stream, two device buffers -------
    def stage(self, inputs: dict[str, np.ndarray]) -> bool:
        """Start the upload of a later chunk's input bit words: into pinned host memory, then
        asynchronously on the copy stream into the input's spare device buffer, while the
        kernels already launched run. ``set_inputs(inputs, staged=True)`` swaps them in."""
        self.context.push()
        try:
            for name, array in inputs.items():
                array = np.ascontiguousarray(array, dtype=np.uint32)
                slot = self._spare.pop(name, None)
                if slot is None or slot.pinned.size < array.size:
                    if slot is not None and slot.released is not None:
                        slot.released.synchronize()  # before its buffer is freed
                    slot = _Slot(self.drv, max(array.size, 1))
                if slot.released is not None:  # its buffer's last kernels have run
                    self.copy_stream.wait_for_event(slot.released)
                if slot.ready is not None:  # its pinned memory's last copy is done
                    slot.ready.synchronize()
                host = slot.pinned[: array.size].reshape(array.shape)
                host[...] = array
                self.drv.memcpy_htod_async(slot.alloc.mem, host, self.copy_stream)
                slot.ready = self.drv.Event().record(self.copy_stream)
                slot.shape = array.shape
                self._staged[name] = slot
            return True
        finally:
            self.context.pop()

    def set_inputs(self, inputs: dict[str, np.ndarray], staged: bool = False) -> None:
        """Make ``inputs`` the input buffers: the copies ``stage`` started for them (the
        kernels wait for those on the device; the host does not), else a plain upload."""
        if not staged or any(name not in self._staged for name in inputs):
            super().set_inputs(inputs)
            return
        self.context.push()
        try:
            for name, array in inputs.items():
                slot = self._staged.pop(name)
                if slot.shape != array.shape:
                    raise SnnccError(f"input '{name}': the staged chunk has another shape")
                self.stream.wait_for_event(slot.ready)
                old = self._mem.get(name)
                self._mem[name] = slot.alloc
                self._present[name] = array.shape
                # the kernels launched so far are the last to read the old buffer
                slot.alloc = old if old is not None else _Alloc(self.drv.mem_alloc(4), 4)
                slot.released = self.drv.Event().record(self.stream)
                self._spare[name] = slot
            # the pointer table, in stream order; its host copy must outlive the copy, so two
            # pinned tables alternate
            turn = self._table_turn = 1 - self._table_turn
            if self._table_copied[turn] is not None:
                self._table_copied[turn].synchronize()
            self._table_host[turn][...] = self._table_values()
            self.drv.memcpy_htod_async(self._table, self._table_host[turn], self.stream)
            self._table_copied[turn] = self.drv.Event().record(self.stream)
        finally:
            self.context.pop()

    # --- running ----------------------------------------------------------------
    def _grid(self, launch, B: int) -> tuple[int, ...]:
        return tuple(B if g == "B" else int(g) for g in launch.grid)

    def run(self, pass_name: str, B: int, T: int, on_ready=None) -> None:
        """The manifest's kernels of ``pass_name``, in order, each launched once. Asynchronous:
        copies back (get) wait for the stream, so several devices driven from one process work
        at once. ``on_ready(names, event)`` is called after each launch that completes gradient
        buffers (Launch.ready), with an event recorded on the stream behind it: a reducer
        starts on them while the rest of the pass runs."""
        launches = self.plan.manifest.get(pass_name)
        if launches is None:
            raise SnnccError(f"the CUDA program has no pass '{pass_name}'")
        self.context.push()
        try:
            for launch in launches:
                self._launch(launch, B, T)
                if on_ready is not None and launch.ready:
                    on_ready(launch.ready, self.drv.Event().record(self.stream))
        finally:
            self.context.pop()

    def _launch(self, launch, B: int, T: int) -> None:
        self.kernels[launch.name].prepared_async_call(
            self._grid(launch, B),
            (launch.block, 1, 1),
            self.stream,
            np.intp(int(self._table)),
            np.int32(B),
            np.int32(T),
            shared_size=launch.shared,
        )

    def timed_run(self, pass_name: str, B: int, T: int) -> list[tuple[str, float]]:
        """``run`` with a CUDA event before and after each launch: (kernel, milliseconds) in
        launch order (benchmarks/gpu_model.py; NaN on the emulator, which has no GPU time)."""
        launches = self.plan.manifest[pass_name]
        self.context.push()
        try:
            marks = [self.drv.Event().record(self.stream)]
            for launch in launches:
                self._launch(launch, B, T)
                marks.append(self.drv.Event().record(self.stream))
            marks[-1].synchronize()
            return [
                (launch.name, marks[k].time_till(marks[k + 1])) for k, launch in enumerate(launches)
            ]
        finally:
            self.context.pop()


class _Alloc:
    def __init__(self, mem: object, nbytes: int):
        self.mem = mem
        self.nbytes = nbytes


class _Slot:
    """One staging buffer of an input: pinned host memory and a device allocation, with the
    events that say when the copy into it is done and when kernels stopped reading it."""

    def __init__(self, drv, words: int):
        self.pinned = drv.pagelocked_empty(words, np.uint32)
        self.alloc = _Alloc(drv.mem_alloc(4 * words), 4 * words)
        self.released = None
        self.ready = None
        self.shape: tuple[int, ...] = ()
