"""A CPU stand-in for the part of ``pycuda.driver`` snncc uses, plus what a faster host needs.

The ``cuda_emulator`` fixture installs this module as ``pycuda.driver``, so
``snncc.backends.cuda.CudaProgram`` runs unchanged: the real nvcc builds the cubin, and the
emulator runs the ``.cu`` kept beside it (``build.py``), every kernel launch executing
synchronously at call time, in stream order. Device memory is host memory filled with 0xFF
bytes when allocated (NaN floats, -1 ints), so reading what nobody wrote shows up.

The driver refuses what CUDA refuses (no current context, a kernel launched in another
device's context, too many threads for the kernel's registers or ``__launch_bounds__``, more
dynamic shared memory than allowed, copies past the end of an allocation, a pointer argument
that is not device memory of the launching device) and prepares arguments strictly: the
format string must match the kernel's parameters one by one.

**Test infrastructure: nothing it reports is a timing or a GPU result** (``Event.time_till``
answers NaN on purpose).
"""

from __future__ import annotations

import bisect
import ctypes
import enum
import math
import re
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.cudaemu import build

ORDERS = ("forward", "reverse", "shuffle")
TOTAL_MEMORY = 80 << 30
MAX_SHARED_OPTIN = 232448  # sm_90: 227 KiB of shared memory per block, on request
DEFAULT_SHARED = 48 << 10  # without cuFuncSetAttribute


class Error(Exception):
    """Base of the driver's errors, as in PyCUDA."""


class LogicError(Error):
    """A call the CUDA driver refuses (bad argument, no current context, ...)."""


class LaunchError(Error):
    """A kernel launch failed."""


class MemoryError(Error):  # noqa: A001 -- PyCUDA's name
    """Out of device memory."""


class KernelFault(LaunchError):
    """The emulator caught a kernel misusing a barrier or a warp collective, or trapping."""


class device_attribute(enum.IntEnum):  # noqa: N801 -- PyCUDA's names; values from cuda.h
    MAX_THREADS_PER_BLOCK = 1
    MAX_BLOCK_DIM_X = 2
    MAX_BLOCK_DIM_Y = 3
    MAX_BLOCK_DIM_Z = 4
    MAX_GRID_DIM_X = 5
    MAX_GRID_DIM_Y = 6
    MAX_GRID_DIM_Z = 7
    MAX_SHARED_MEMORY_PER_BLOCK = 8
    TOTAL_CONSTANT_MEMORY = 9
    WARP_SIZE = 10
    MAX_REGISTERS_PER_BLOCK = 12
    MULTIPROCESSOR_COUNT = 16
    L2_CACHE_SIZE = 38
    MAX_THREADS_PER_MULTIPROCESSOR = 39
    UNIFIED_ADDRESSING = 41
    COMPUTE_CAPABILITY_MAJOR = 75
    COMPUTE_CAPABILITY_MINOR = 76
    MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81
    MAX_REGISTERS_PER_MULTIPROCESSOR = 82
    MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97


class function_attribute(enum.IntEnum):  # noqa: N801
    MAX_THREADS_PER_BLOCK = 0
    SHARED_SIZE_BYTES = 1
    NUM_REGS = 4
    PTX_VERSION = 5
    BINARY_VERSION = 6
    MAX_DYNAMIC_SHARED_SIZE_BYTES = 8


# an sm_90 device (H100-like); the limits are the ones a launch is checked against
_DEVICE = {
    device_attribute.MAX_THREADS_PER_BLOCK: 1024,
    device_attribute.MAX_BLOCK_DIM_X: 1024,
    device_attribute.MAX_BLOCK_DIM_Y: 1024,
    device_attribute.MAX_BLOCK_DIM_Z: 64,
    device_attribute.MAX_GRID_DIM_X: 2**31 - 1,
    device_attribute.MAX_GRID_DIM_Y: 65535,
    device_attribute.MAX_GRID_DIM_Z: 65535,
    device_attribute.MAX_SHARED_MEMORY_PER_BLOCK: DEFAULT_SHARED,
    device_attribute.TOTAL_CONSTANT_MEMORY: 65536,
    device_attribute.WARP_SIZE: 32,
    device_attribute.MAX_REGISTERS_PER_BLOCK: 65536,
    device_attribute.MULTIPROCESSOR_COUNT: 132,
    device_attribute.L2_CACHE_SIZE: 50 << 20,
    device_attribute.MAX_THREADS_PER_MULTIPROCESSOR: 2048,
    device_attribute.UNIFIED_ADDRESSING: 1,
    device_attribute.COMPUTE_CAPABILITY_MAJOR: 9,
    device_attribute.COMPUTE_CAPABILITY_MINOR: 0,
    device_attribute.MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: 233472,
    device_attribute.MAX_REGISTERS_PER_MULTIPROCESSOR: 65536,
    device_attribute.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: MAX_SHARED_OPTIN,
}

_libc = ctypes.CDLL(None)  # malloc/free: with ASan preloaded these are its checked versions
_libc.posix_memalign.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]

# One emulated kernel runs at a time, whatever the host threads do: the runtime is not reentrant.
_launch_lock = threading.Lock()
_host = threading.local()  # .stack: this host thread's context stack, as in CUDA


# --------------------------------------------------------------------------- state
@dataclass
class _State:
    devices: int = 2
    order: str = "forward"
    seed: int = 0
    initialised: bool = False
    launches: int = 0
    starts: list[int] = field(default_factory=list)  # sorted addresses of live allocations
    allocations: dict[int, DeviceAllocation] = field(default_factory=dict)
    used: list[int] = field(default_factory=list)
    primary: dict[int, Context] = field(default_factory=dict)
    libraries: dict[tuple, tuple] = field(default_factory=dict)  # loaded builds

    def find(self, address: int) -> tuple[DeviceAllocation, int] | None:
        """(allocation, offset) holding ``address``; one past the end counts."""
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0:
            return None
        alloc = self.allocations[self.starts[i]]
        offset = address - alloc.address
        return (alloc, offset) if offset <= alloc.nbytes else None


_state = _State(used=[0, 0])


def configure(devices: int = 2, order: str = "forward", seed: int = 0) -> None:
    """Start afresh: ``devices`` emulated devices, thread/block ``order``, shuffle ``seed``.

    Allocations made before stay valid until freed (their objects still exist).
    """
    global _state
    build.keep_asan_out_of_compilers()
    if devices < 1:
        raise ValueError("the emulator needs at least one device")
    libraries = _state.libraries  # builds stay valid: keep them loaded
    _state = _State(devices=devices, seed=seed, used=[0] * devices, libraries=libraries)
    set_order(order, seed)
    _host.stack = []


def set_order(order: str, seed: int | None = None) -> None:
    """Order of blocks, and of threads in every barrier round, for the launches that follow."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    _state.order = order
    if seed is not None:
        _state.seed = seed


def _require_init(what: str) -> None:
    if not _state.initialised:
        raise LogicError(f"{what} failed: initialization error (call init() first)")


def _stack() -> list[Context]:
    if not hasattr(_host, "stack"):
        _host.stack = []
    return _host.stack


def _current(what: str) -> Context:
    stack = _stack()
    if not stack:
        raise LogicError(f"{what} failed: invalid device context (push a context first)")
    return stack[-1]


def init(flags: int = 0) -> None:
    _state.initialised = True


# --------------------------------------------------------------------------- devices
class Device:
    def __init__(self, ordinal: int):
        _require_init("cuDeviceGet")
        if not 0 <= ordinal < _state.devices:
            raise LogicError(f"cuDeviceGet failed: invalid device ordinal {ordinal}")
        self.ordinal = ordinal

    @staticmethod
    def count() -> int:
        _require_init("cuDeviceGetCount")
        return _state.devices

    def name(self) -> str:
        return f"snncc CUDA emulator {self.ordinal} (sm_90 on the CPU, test infrastructure)"

    def compute_capability(self) -> tuple[int, int]:
        return (9, 0)

    def total_memory(self) -> int:
        return TOTAL_MEMORY

    def get_attribute(self, attribute: device_attribute) -> int:
        try:
            return _DEVICE[device_attribute(attribute)]
        except (KeyError, ValueError):
            raise LogicError(f"device attribute {attribute!r} is not emulated") from None

    def __getattr__(self, name: str) -> int:  # dev.multiprocessor_count, as in PyCUDA
        try:
            return self.get_attribute(device_attribute[name.upper()])
        except KeyError:
            raise AttributeError(name) from None

    def retain_primary_context(self) -> Context:
        return _state.primary.setdefault(self.ordinal, Context(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.ordinal == self.ordinal

    def __hash__(self) -> int:
        return self.ordinal


class Context:
    def __init__(self, device: Device):
        self.device = device

    def push(self) -> None:
        _stack().append(self)

    @staticmethod
    def pop() -> None:
        stack = _stack()
        if not stack:
            raise LogicError("cuCtxPopCurrent failed: no context is current")
        stack.pop()

    @staticmethod
    def get_current() -> Context | None:
        stack = _stack()
        return stack[-1] if stack else None

    @staticmethod
    def get_device() -> Device:
        return _current("cuCtxGetDevice").device

    @staticmethod
    def synchronize() -> None:  # launches are synchronous
        _current("cuCtxSynchronize")


class Stream:
    def __init__(self, flags: int = 0):
        self.context = _current("cuStreamCreate")

    def synchronize(self) -> None:  # every operation completed when it was issued
        pass

    def is_done(self) -> bool:
        return True

    def wait_for_event(self, event: Event) -> None:  # the event has happened already
        if not isinstance(event, Event):
            raise LogicError("cuStreamWaitEvent failed: invalid handle (not an Event)")

    @property
    def handle(self) -> int:
        return id(self)


class Event:
    """Records nothing: an emulated run has no GPU time (``time_till`` is NaN on purpose)."""

    def __init__(self, flags: int = 0):
        _current("cuEventCreate")

    def record(self, stream: Stream | None = None) -> Event:
        return self

    def synchronize(self) -> Event:
        return self

    def query(self) -> bool:
        return True

    def time_till(self, end: Event) -> float:
        return math.nan

    def time_since(self, start: Event) -> float:
        return math.nan


# --------------------------------------------------------------------------- memory
class DeviceAllocation:
    """Host memory standing in for device memory: 256-byte aligned, 0xFF-filled."""

    def __init__(self, nbytes: int):
        ctx = _current("cuMemAlloc")
        if nbytes <= 0:
            raise LogicError("cuMemAlloc failed: invalid argument (size must be positive)")
        self.device = ctx.device.ordinal
        if _state.used[self.device] + nbytes > TOTAL_MEMORY:
            raise MemoryError("cuMemAlloc failed: out of memory")
        ptr = ctypes.c_void_p()
        if _libc.posix_memalign(ctypes.byref(ptr), 256, nbytes) != 0:
            raise MemoryError("cuMemAlloc failed: out of memory (host)")
        ctypes.memset(ptr.value, 0xFF, nbytes)
        self.address, self.nbytes, self.state = ptr.value, nbytes, _state
        self.state.used[self.device] += nbytes
        bisect.insort(self.state.starts, self.address)
        self.state.allocations[self.address] = self

    def __int__(self) -> int:
        return self.address

    __index__ = __int__

    def free(self) -> None:
        if self.address is None:
            raise LogicError("cuMemFree failed: invalid value (freed twice)")
        ctypes.memset(self.address, 0xFF, self.nbytes)  # a later read sees garbage again
        self.state.starts.remove(self.address)
        del self.state.allocations[self.address]
        self.state.used[self.device] -= self.nbytes
        _libc.free(self.address)
        self.address = None

    def __del__(self) -> None:  # PyCUDA frees device memory with its last reference
        if getattr(self, "address", None) is not None:
            self.free()


def mem_alloc(nbytes: int) -> DeviceAllocation:
    return DeviceAllocation(int(nbytes))


def mem_get_info() -> tuple[int, int]:
    device = _current("cuMemGetInfo").device.ordinal
    return TOTAL_MEMORY - _state.used[device], TOTAL_MEMORY


def _device_span(where: object, nbytes: int, what: str) -> int:
    """Address of ``nbytes`` of device memory at ``where``, checked to lie in one allocation."""
    address = int(where)
    found = _state.find(address)
    if found is None:
        raise LogicError(f"{what} failed: {address:#x} is not device memory (freed, or host?)")
    alloc, offset = found
    if offset + nbytes > alloc.nbytes:
        raise LogicError(
            f"{what} failed: {nbytes} bytes at offset {offset} overflow an allocation of "
            f"{alloc.nbytes} bytes"
        )
    return address


def _host_span(buffer: object, writable: bool, what: str) -> tuple[int, int]:
    """(address, bytes) of a C-contiguous host buffer."""
    view = memoryview(buffer)
    if not view.c_contiguous:
        raise TypeError(f"{what}: the host buffer must be C-contiguous")
    if writable and view.readonly:
        raise TypeError(f"{what}: the host buffer is read-only")
    flat = np.frombuffer(view.cast("B"), np.uint8)
    return flat.ctypes.data, flat.nbytes


def memcpy_htod(dest: object, src: object) -> None:
    _current("cuMemcpyHtoD")
    address, nbytes = _host_span(src, False, "memcpy_htod")
    if nbytes:
        ctypes.memmove(_device_span(dest, nbytes, "cuMemcpyHtoD"), address, nbytes)


def memcpy_dtoh(dest: object, src: object) -> None:
    _current("cuMemcpyDtoH")
    address, nbytes = _host_span(dest, True, "memcpy_dtoh")
    if nbytes:
        ctypes.memmove(address, _device_span(src, nbytes, "cuMemcpyDtoH"), nbytes)


def memcpy_dtod(dest: object, src: object, size: int) -> None:
    _current("cuMemcpyDtoD")
    if size:
        to = _device_span(dest, size, "cuMemcpyDtoD")
        ctypes.memmove(to, _device_span(src, size, "cuMemcpyDtoD"), size)


def memset_d8(dest: object, data: int, size: int) -> None:
    _current("cuMemsetD8")
    if size:
        ctypes.memset(_device_span(dest, size, "cuMemsetD8"), data & 0xFF, size)


def memset_d32(dest: object, data: int, size: int) -> None:
    """``size`` 32-bit words of ``data``."""
    _current("cuMemsetD32")
    if size:
        address = _device_span(dest, 4 * size, "cuMemsetD32")
        words = (ctypes.c_uint32 * size).from_address(address)
        np.frombuffer(words, np.uint32)[:] = data & 0xFFFFFFFF


def _check_stream(stream: Stream | None, what: str) -> None:
    if stream is not None and stream.context is not _current(what):
        raise LogicError(f"{what} failed: invalid handle (the stream belongs to another context)")


def memcpy_htod_async(dest: object, src: object, stream: Stream | None = None) -> None:
    _check_stream(stream, "cuMemcpyHtoDAsync")
    memcpy_htod(dest, src)


def memcpy_dtoh_async(dest: object, src: object, stream: Stream | None = None) -> None:
    _check_stream(stream, "cuMemcpyDtoHAsync")
    memcpy_dtoh(dest, src)


def memcpy_dtod_async(dest: object, src: object, size: int, stream: Stream | None = None) -> None:
    _check_stream(stream, "cuMemcpyDtoDAsync")
    memcpy_dtod(dest, src, size)


def memset_d8_async(dest: object, data: int, size: int, stream: Stream | None = None) -> None:
    _check_stream(stream, "cuMemsetD8Async")
    memset_d8(dest, data, size)


def memset_d32_async(dest: object, data: int, size: int, stream: Stream | None = None) -> None:
    _check_stream(stream, "cuMemsetD32Async")
    memset_d32(dest, data, size)


def pagelocked_empty(shape, dtype, order: str = "C", mem_flags: int = 0) -> np.ndarray:
    return np.empty(shape, dtype, order=order)


def pagelocked_zeros(shape, dtype, order: str = "C", mem_flags: int = 0) -> np.ndarray:
    return np.zeros(shape, dtype, order=order)


# --------------------------------------------------------------------------- modules
def module_from_file(filename: str) -> Module:
    return Module(_current("cuModuleLoad"), Path(filename))


class Module:
    def __init__(self, context: Context, cubin: Path):
        self.context = context
        key = (cubin.resolve(), build.asan_enabled(), build.ucontext_forced())
        if key not in _state.libraries:
            try:
                _state.libraries[key] = build.load(cubin)
            except build.EmulatorError as e:
                raise LogicError(f"cuModuleLoad failed for {cubin}: {e}") from None
        self.library, self.images, self.source = _state.libraries[key]

    def get_function(self, name: str) -> Function:
        if name not in self.images:
            raise LogicError(f"cuModuleGetFunction failed: named symbol not found: {name!r}")
        sig = self.library.signatures.get(name)
        if sig is None:
            raise LogicError(
                f"the emulator found no non-template __global__ definition of {name!r} in "
                f'{self.source} (only extern "C" kernels are launched by name)'
            )
        return Function(self, self.images[name], sig)


_KIND = {**dict.fromkeys("bhilqn", "i"), **dict.fromkeys("BHILQN?c", "u")}
_KIND.update({"e": "f", "f": "f", "d": "f", "P": "P", "s": "S", "p": "S"})
_ITEM = re.compile(r"(\d*)([xcbB?hHiIlLqQnNefdspP])")


def _kind_name(kind: str, size: int) -> str:
    names = {"P": "pointer", "i": f"int{8 * size}", "u": f"uint{8 * size}", "f": f"float{8 * size}"}
    return names.get(kind, f"{size}-byte struct")


def _format_params(fmt: str) -> list[build.Param]:
    """The parameters a struct format packs (native alignment, as PyCUDA packs them)."""
    if fmt[:1] in "=<>!":
        raise LogicError(f"format {fmt!r}: use native alignment ('@' or none), as kernels do")
    body = fmt.lstrip("@").replace(" ", "")
    if _ITEM.sub("", body):
        raise LogicError(f"format {fmt!r}: unknown item {_ITEM.sub('', body)!r}")
    items = []
    for count, char in _ITEM.findall(body):
        n = int(count or 1)
        items += [f"{n}{char}"] if char in "sp" else [char] * n
    params, prefix = [], ""
    for item in items:
        if item != "x":
            offset = struct.calcsize(prefix + item) - struct.calcsize(item)
            params.append(build.Param(_KIND[item[-1]], struct.calcsize(item), offset))
        prefix += item
    return params


def _dims(value: object, what: str) -> tuple[int, int, int]:
    dims = tuple(int(v) for v in (value if isinstance(value, tuple | list) else (value,)))
    if not 1 <= len(dims) <= 3 or min(dims) < 1:
        raise LogicError(f"cuLaunchKernel failed: invalid value ({what} {value!r})")
    return (*dims, 1, 1)[:3]


class Function:
    def __init__(self, module: Module, image: build.KernelImage, signature: build.Signature):
        self.module, self.image, self.signature = module, image, signature
        self.arg_format: str | None = None
        self._max_dynamic_shared = DEFAULT_SHARED - image.static_shared

    def prepare(self, arg_types, texrefs=None) -> Function:
        fmt = ""
        for t in arg_types:  # as PyCUDA: numpy scalar types, dtypes, or struct characters
            if isinstance(t, type) and issubclass(t, np.number):
                fmt += np.dtype(t).char
            elif isinstance(t, np.dtype):
                fmt += t.char
            elif isinstance(t, str):
                fmt += t
            else:
                fmt += np.dtype(np.uintp).char
        given, wanted = _format_params(fmt), list(self.signature.params)

        def show(params: list[build.Param]) -> str:
            return ", ".join(_kind_name(p.kind, p.size) for p in params)

        compatible = len(given) == len(wanted) and all(
            g.size == w.size
            and g.offset == w.offset
            and (g.kind == w.kind or {g.kind, w.kind} <= {"i", "u"})
            for g, w in zip(given, wanted, strict=True)
        )
        if not compatible:
            raise LogicError(
                f"kernel '{self.image.name}' takes ({show(wanted)}) but was prepared with "
                f"{fmt!r} ({show(given)}); use 'P' for pointers, 'i' for int, 'f' for float"
            )
        self.arg_format = fmt
        return self

    def get_attribute(self, attribute: function_attribute) -> int:
        attribute = function_attribute(attribute)
        return {
            function_attribute.MAX_THREADS_PER_BLOCK: self.image.max_threads,
            function_attribute.SHARED_SIZE_BYTES: self.image.static_shared,
            function_attribute.NUM_REGS: self.image.registers,
            function_attribute.PTX_VERSION: 90,
            function_attribute.BINARY_VERSION: 90,
            function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES: self._max_dynamic_shared,
        }[attribute]

    def set_attribute(self, attribute: function_attribute, value: int) -> None:
        if function_attribute(attribute) != function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES:
            raise LogicError(f"function attribute {attribute!r} cannot be set in the emulator")
        if not 0 <= value <= MAX_SHARED_OPTIN - self.image.static_shared:
            raise LogicError(
                f"cuFuncSetAttribute failed: invalid value ({value} bytes of dynamic shared "
                f"memory + {self.image.static_shared} static > {MAX_SHARED_OPTIN})"
            )
        self._max_dynamic_shared = int(value)

    def __getattr__(self, name: str) -> int:  # f.num_regs, f.max_threads_per_block
        try:
            return self.get_attribute(function_attribute[name.upper()])
        except KeyError:
            raise AttributeError(name) from None

    def prepared_call(self, grid, block, *args, shared_size: int = 0) -> None:
        self._launch(grid, block, None, args, shared_size)

    def prepared_async_call(self, grid, block, stream, *args, shared_size: int = 0) -> None:
        self._launch(grid, block, stream, args, shared_size)

    def _launch(self, grid, block, stream: Stream | None, args: tuple, shared_size: int) -> None:
        name = self.image.name
        ctx = _current("cuLaunchKernel")
        if ctx is not self.module.context:
            raise LogicError(
                f"cuLaunchKernel failed: invalid handle (kernel '{name}' was loaded on device "
                f"{self.module.context.device.ordinal}, device {ctx.device.ordinal}'s context "
                "is current)"
            )
        _check_stream(stream, "cuLaunchKernel")
        if self.arg_format is None:
            raise LogicError(f"kernel '{name}': call prepare() before prepared_call")
        g, b = _dims(grid, "grid"), _dims(block, "block")
        limits = (device_attribute.MAX_GRID_DIM_X, device_attribute.MAX_GRID_DIM_Y)
        limits += (device_attribute.MAX_GRID_DIM_Z, device_attribute.MAX_BLOCK_DIM_X)
        limits += (device_attribute.MAX_BLOCK_DIM_Y, device_attribute.MAX_BLOCK_DIM_Z)
        for value, limit in zip((*g, *b), limits, strict=True):
            if value > _DEVICE[limit]:
                raise LogicError(f"cuLaunchKernel failed: invalid value ({limit.name} {value})")
        threads = b[0] * b[1] * b[2]
        if threads > self.image.max_threads:
            bound = self.image.launch_bound
            raise LaunchError(
                f"cuLaunchKernel failed: too many resources requested for launch (kernel "
                f"'{name}': {threads} threads, at most {self.image.max_threads} with "
                f"{self.image.registers} registers"
                + (f" and __launch_bounds__({bound}))" if bound else ")")
            )
        if not 0 <= shared_size <= self._max_dynamic_shared:
            raise LogicError(
                f"cuLaunchKernel failed: invalid value (kernel '{name}': {shared_size} bytes of "
                f"dynamic shared memory, at most {self._max_dynamic_shared}; raise "
                "MAX_DYNAMIC_SHARED_SIZE_BYTES with set_attribute)"
            )
        buffer = struct.pack(self.arg_format, *args)
        for i, p in enumerate(self.signature.params):
            if p.kind != "P":
                continue
            address = struct.unpack_from("P", buffer, p.offset)[0]
            found = _state.find(address) if address else None
            if address and (found is None or found[0].device != ctx.device.ordinal):
                owner = (
                    "not device memory" if found is None else f"device {found[0].device}'s memory"
                )
                raise LaunchError(
                    f"kernel '{name}' argument {i} ({address:#x}) is {owner}, launched on "
                    f"device {ctx.device.ordinal}"
                )
        config = build.LaunchConfig()
        config.grid[:] = g
        config.block[:] = b
        config.shared_bytes = shared_size
        config.order = ORDERS.index(_state.order)
        _state.launches += 1
        config.seed = (_state.seed * 0x9E3779B97F4A7C15 + _state.launches) % 2**64
        with _launch_lock:
            fault = self.module.library.launch(self.signature, config, buffer)
        if fault is not None:
            raise KernelFault(f"{fault}\n  source: {self.module.source}")
