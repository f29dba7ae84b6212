"""Build an emulated CUDA module: the .cu kept beside a cubin -> a g++ shared library.

The source is compiled as C++17 with ``cuda_emu.h`` included first, plus a launch table
(one entry per ``__global__`` function, as nvcc generates host stubs) whose entries unpack a
PyCUDA-style argument buffer into the kernel's parameters. The real cubin says which kernels
exist and what they need (registers, ``__launch_bounds__``, static shared memory), so a launch
the GPU would refuse is refused here too. Builds are cached by content hash like snncc's own.

Test infrastructure: nothing here is a timing or a GPU result.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from snncc.backends.cache import build_dir, content_hash, publish
from snncc.backends.cuda import nvcc_path

HEADER = Path(__file__).with_name("cuda_emu.h")
CXX = os.environ.get("CXX", "g++")
# -ffp-contract=off as on the CPU backend (and --fmad=false in nvcc): float results then equal
# the CPU backend's bit for bit.
FLAGS = ["-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-fvisibility=hidden"]
# -O0: every read the source makes is checked, also one the optimiser would drop as unused
# (nvcc may keep it at another optimisation level or in the next version of the kernel).
ASAN_FLAGS = ["-O0", "-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-DSNNCC_EMU_ASAN=1"]

_STO_CUDA_ENTRY = 0x10  # st_other bit of a kernel's symbol in a cubin
_EIATTR_MAX_THREADS = 0x05  # __launch_bounds__, (x, y, z)
_EIATTR_REGCOUNT = 0x2F  # (symbol index, registers)
_SM90_RESERVED_SHARED = 1024  # counted in each kernel's .nv.shared section on sm_80+


class EmulatorError(Exception):
    """The emulator cannot build or load a module (not a kernel fault)."""


def asan_enabled() -> bool:
    return os.environ.get("SNNCC_EMU_ASAN") == "1"


def ucontext_forced() -> bool:
    return os.environ.get("SNNCC_EMU_UCONTEXT") == "1"


def keep_asan_out_of_compilers() -> None:
    """An ASan run preloads the runtime into python; nvcc and g++ started from it must not
    inherit it (nvcc crashes under it). The process itself keeps the runtime it started with."""
    preload = os.environ.get("LD_PRELOAD", "")
    if "libasan" in preload:
        kept = [p for p in preload.split() if "libasan" not in p]
        if kept:
            os.environ["LD_PRELOAD"] = " ".join(kept)
        else:
            del os.environ["LD_PRELOAD"]


def unavailable_reason() -> str | None:
    """Why emulated CUDA tests cannot run here, or None."""
    if nvcc_path() is None:
        return "nvcc is not installed (the emulator runs the sources nvcc compiled)"
    if shutil.which(CXX) is None:
        return f"the C++ compiler '{CXX}' is not installed"
    if not Path("/proc/self/maps").exists():
        return "the CUDA emulator needs Linux (ELF shared libraries)"
    return None


# --------------------------------------------------------------------------- ELF reading
@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    offset: int
    size: int
    link: int


@dataclass(frozen=True)
class _Symbol:
    name: str
    value: int
    size: int
    info: int
    other: int
    section: int


def _elf(data: bytes) -> tuple[list[_Section], list[_Symbol]]:
    """Sections and .symtab symbols of a little-endian ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise EmulatorError("not a little-endian ELF64 file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]

    def string(table: tuple, at: int) -> str:
        start = table[4] + at
        return data[start : data.index(b"\0", start)].decode()

    sections = [_Section(string(raw[shstrndx], s[0]), s[1], s[4], s[5], s[6]) for s in raw]
    symbols = []
    for s, sec in zip(raw, sections, strict=True):
        if s[1] != 2:  # SHT_SYMTAB
            continue
        for at in range(sec.offset, sec.offset + sec.size, 24):
            name, info, other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, at)
            symbols.append(_Symbol(string(raw[sec.link], name), value, size, info, other, shndx))
    return sections, symbols


def _nv_info(data: bytes, section: _Section) -> list[tuple[int, bytes]]:
    """(attribute, payload) records of a cubin .nv.info section."""
    out, at, end = [], section.offset, section.offset + section.size
    while at < end:
        fmt, attr = data[at], data[at + 1]
        at += 2
        if fmt == 0x04:  # sized value
            size = struct.unpack_from("<H", data, at)[0]
            out.append((attr, data[at + 2 : at + 2 + size]))
            at += 2 + size
        elif fmt in (0x02, 0x03):  # byte / half-word value
            out.append((attr, data[at : at + 2]))
            at += 2
        else:
            out.append((attr, b""))
    return out


@dataclass(frozen=True)
class KernelImage:
    """What the cubin says about one kernel."""

    name: str
    registers: int
    launch_bound: int | None  # __launch_bounds__ max threads, if given
    static_shared: int

    @property
    def max_threads(self) -> int:
        """As cuFuncGetAttribute(MAX_THREADS_PER_BLOCK): 64 K registers per block."""
        per_warp = max(256, -(-self.registers * 32 // 256) * 256)
        limit = min(1024, 65536 // per_warp * 32)
        return min(limit, self.launch_bound) if self.launch_bound else limit


def cubin_kernels(path: Path) -> dict[str, KernelImage]:
    """The kernels (entry functions) of a cubin, by name."""
    data = path.read_bytes()
    sections, symbols = _elf(data)
    names = {s.name for s in sections}
    registers: dict[int, int] = {}
    for sec in sections:
        if sec.name == ".nv.info":
            for attr, payload in _nv_info(data, sec):
                if attr == _EIATTR_REGCOUNT:
                    index, count = struct.unpack("<II", payload)
                    registers[index] = count
    reserved = _SM90_RESERVED_SHARED if ".nv.shared.reserved.0" in names else 0
    kernels = {}
    for index, sym in enumerate(symbols):
        if sym.info & 0xF != 2 or not sym.other & _STO_CUDA_ENTRY:  # STT_FUNC entries
            continue
        bound = None
        shared = 0
        for sec in sections:
            if sec.name == f".nv.info.{sym.name}":
                for attr, payload in _nv_info(data, sec):
                    if attr == _EIATTR_MAX_THREADS:
                        x, y, z = struct.unpack("<III", payload)
                        bound = x * y * z
            elif sec.name == f".nv.shared.{sym.name}":
                shared = max(0, sec.size - reserved)
        kernels[sym.name] = KernelImage(sym.name, registers.get(index, 0), bound, shared)
    return kernels


# --------------------------------------------------------------------------- the source
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_LAUNCH_BOUNDS = re.compile(r"__launch_bounds__\s*\([^)]*\)")
_GLOBAL = re.compile(r"(template\s*<[^{};]*>\s*)?\b__global__\b([^;{}()]*)\(")
_EXTERN_SHARED = re.compile(r"\bextern(\s+)__shared__\b")
_EXTERN_SHARED_NAME = re.compile(r"\bextern\s+__shared__\b[^;]*?(\w+)\s*\[\s*\]\s*;")


def _code(source: str) -> str:
    """The source without comments (newlines kept) and without __launch_bounds__(...)."""
    text = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), source)
    return _LAUNCH_BOUNDS.sub(" ", text)


def global_functions(source: str) -> list[str]:
    """Names of the non-template __global__ functions, in order of appearance."""
    names = []
    for m in _GLOBAL.finditer(_code(source)):
        words = re.findall(r"\w+", m.group(2))
        if m.group(1) is None and words and words[-1] not in names:
            names.append(words[-1])
    return names


def translation_unit(source: str, source_path: Path, kernels: list[str]) -> str:
    """The source as g++ compiles it (same lines), followed by the launch table."""
    dynamic = sorted(set(_EXTERN_SHARED_NAME.findall(_code(source))))
    body = _EXTERN_SHARED.sub(r"extern\1/* __shared__ */", source)
    table = [
        f'#line 1 "{source_path}"',
        body,
        '#line 1 "snncc-emulator-launch-table"',
        *(f"SNNCC_EMU_DYNAMIC_SHARED_NAME({name})" for name in dynamic),
        "const snncc_emu::KernelEntry snncc_emu_kernels[] = {",
        *(f"    SNNCC_EMU_KERNEL({name})," for name in kernels),
        "    snncc_emu::KernelEntry{},",
        "};",
        "",
    ]
    return "\n".join(table)


def compile_library(unit: str, include_dir: Path) -> Path:
    """g++ build of one translation unit (cached by content): the shared library's path."""
    flags = [*FLAGS, *(ASAN_FLAGS if asan_enabled() else [])]
    if ucontext_forced():
        flags.append("-DSNNCC_EMU_UCONTEXT=1")
    key = content_hash(unit, HEADER.read_text(), CXX, " ".join(flags))
    lib = build_dir("cudaemu") / f"emu_{key}.so"
    if lib.exists():
        return lib
    with tempfile.TemporaryDirectory(prefix="snncc_emu_") as tmp:
        src = Path(tmp) / "module.cpp"
        src.write_text(unit)
        out = Path(tmp) / "module.so"
        cmd = [CXX, *flags, "-I", str(include_dir), "-include", str(HEADER)]
        cmd += ["-x", "c++", str(src), "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise EmulatorError(
                "the CUDA emulator could not compile this module with g++ (nvcc did); if an "
                f"intrinsic is missing, add it to {HEADER}:\n{proc.stderr.strip()}"
            )
        publish(out, lib)
    return lib


# --------------------------------------------------------------------------- the library
class _Entry(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("invoke", ctypes.c_void_p),
        ("n_params", ctypes.c_uint),
        ("kinds", ctypes.c_char_p),
        ("sizes", ctypes.POINTER(ctypes.c_uint)),
        ("offsets", ctypes.POINTER(ctypes.c_uint)),
        ("args_size", ctypes.c_uint),
    ]


class LaunchConfig(ctypes.Structure):
    _fields_ = [
        ("grid", ctypes.c_uint * 3),
        ("block", ctypes.c_uint * 3),
        ("shared_bytes", ctypes.c_ulonglong),
        ("order", ctypes.c_int),
        ("seed", ctypes.c_ulonglong),
    ]


@dataclass(frozen=True)
class Param:
    kind: str  # P pointer, i signed, u unsigned, f floating, S other
    size: int
    offset: int


@dataclass(frozen=True)
class Signature:
    index: int  # in the launch table
    params: tuple[Param, ...]
    args_size: int


# function-local statics of the runtime and the C++ library are not __shared__ memory
_NOT_SHARED = ("_ZZN9snncc_emu", "_ZZNSt", "_ZZNKSt", "_ZZSt", "_ZZN9__gnu_cxx", "_ZZNK9__gnu")
_SHT_NOBITS = 8


class Library:
    """One loaded emulated module."""

    def __init__(self, path: Path):
        if asan_enabled() and "libasan" not in Path("/proc/self/maps").read_text():
            raise EmulatorError(
                "SNNCC_EMU_ASAN=1 needs the ASan runtime loaded first: run python with "
                "LD_PRELOAD=$(g++ -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0"
            )
        self.path = path
        self.lib = ctypes.CDLL(str(path))
        self.lib.snncc_emu_kernel.restype = ctypes.POINTER(_Entry)
        self.lib.snncc_emu_kernel.argtypes = [ctypes.c_uint]
        self.lib.snncc_emu_error.restype = ctypes.c_char_p
        self.lib.snncc_emu_launch.restype = ctypes.c_int
        self.lib.snncc_emu_launch.argtypes = [
            ctypes.c_uint,
            ctypes.POINTER(LaunchConfig),
            ctypes.c_char_p,
        ]
        self.signatures: dict[str, Signature] = {}
        while True:
            entry = self.lib.snncc_emu_kernel(len(self.signatures)).contents
            if entry.name is None:
                break
            params = tuple(
                Param(chr(entry.kinds[i]), entry.sizes[i], entry.offsets[i])
                for i in range(entry.n_params)
            )
            sig = Signature(len(self.signatures), params, entry.args_size)
            self.signatures[entry.name.decode()] = sig
        self._register_shared_statics()

    def _register_shared_statics(self) -> None:
        """Tell the runtime where the static __shared__ variables are (refilled per block).

        They are the function-local statics in .bss: a __shared__ variable has no initialiser,
        so constant tables (.rodata) and initialised statics (.data) are never touched.
        """
        sections, symbols = _elf(self.path.read_bytes())
        by_name = {s.name: s for s in symbols}
        anchor = by_name["snncc_emu_launch"].value
        base = ctypes.cast(self.lib.snncc_emu_launch, ctypes.c_void_p).value - anchor
        shared = [
            s
            for s in symbols
            if s.name.startswith("_ZZ")
            and not s.name.startswith(_NOT_SHARED)
            and s.info & 0xF == 1  # STT_OBJECT
            and s.size
            and 0 < s.section < len(sections)
            and sections[s.section].type == _SHT_NOBITS
        ]
        addresses = (ctypes.c_ulonglong * max(1, len(shared)))(*(base + s.value for s in shared))
        sizes = (ctypes.c_ulonglong * max(1, len(shared)))(*(s.size for s in shared))
        self.lib.snncc_emu_set_shared_statics(addresses, sizes, ctypes.c_uint(len(shared)))

    def launch(self, sig: Signature, config: LaunchConfig, args: bytes) -> str | None:
        """Run one launch to completion; the fault report, or None."""
        if self.lib.snncc_emu_launch(sig.index, ctypes.byref(config), args) == 0:
            return None
        return self.lib.snncc_emu_error().decode()


def load(cubin: Path) -> tuple[Library, dict[str, KernelImage], Path]:
    """The emulated module for a cubin built by snncc (its .cu lies beside it)."""
    source_path = cubin.with_suffix(".cu")
    if not source_path.exists():
        raise EmulatorError(
            f"the CUDA emulator runs the source beside the cubin, and {source_path} is missing "
            "(snncc.backends.cuda.nvcc_compile keeps it; compile through it)"
        )
    source = source_path.read_text()
    images = cubin_kernels(cubin)
    kernels = [name for name in global_functions(source) if name in images]
    unit = translation_unit(source, source_path, kernels)
    return Library(compile_library(unit, source_path.parent)), images, source_path
