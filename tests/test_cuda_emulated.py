"""The CUDA backend executed on the CPU emulator (tests/cudaemu): no GPU needed.

Part one proves each check of the emulator can fail, with tiny hand-written kernels (a race,
divergent barriers and warp collectives, unwritten memory, out-of-bounds reads under ASan,
launches a GPU refuses) and checks the intrinsics against NumPy. Part two runs the real
CudaProgram through the emulated pycuda.driver and compares with the CPU backend, in forward,
reversed and shuffled thread/block orders that must agree bit for bit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import snncc
from snncc import init, neurons
from tests.cudaemu.fixture import assert_bit_identical, emulated_module, same_in_every_order
from tests.test_cuda import DELAY_CASES, _delay_net, _nets, _train_net

ROOT = Path(__file__).resolve().parents[1]

KERNELS = r"""
// ---- races: results depend on the thread or block order
extern "C" __global__ void neighbour_race(float* x) {
    const int t = threadIdx.x;
    const float right = x[(t + 1) % blockDim.x];  // the neighbour may have overwritten it
    x[t] = right + 1.0F;
}
extern "C" __global__ void neighbour_synced(float* x) {
    const int t = threadIdx.x;
    const float right = x[(t + 1) % blockDim.x];
    __syncthreads();
    x[t] = right + 1.0F;
}
extern "C" __global__ void block_race(float* x) {  // block b reads what block b + 1 writes
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int n = gridDim.x * blockDim.x;
    const float next = x[(i + blockDim.x) % n];
    x[i] = next * 0.5F + 1.0F;
}
extern "C" __global__ void float_atomic_sum(const float* x, float* sum) {
    atomicAdd(sum, x[blockIdx.x * blockDim.x + threadIdx.x]);  // order-dependent rounding
}

// ---- barrier divergence
extern "C" __global__ void divergent_barrier(float* x) {
    if (threadIdx.x < 32) {
        x[threadIdx.x] = 1.0F;
        __syncthreads();  // @first
    } else {
        __syncthreads();  // @second
        x[threadIdx.x] = 2.0F;
    }
}
extern "C" __global__ void exit_before_barrier(float* x, int n) {
    const int i = threadIdx.x;
    if (i >= n) return;
    x[i] = 1.0F;
    __syncthreads();  // @exit
    const float right = x[(i + 1) % n];
    __syncthreads();
    x[i] += right;
}

// ---- warp collective divergence
extern "C" __global__ void warp_mixed_collectives(float* x) {
    float v = x[threadIdx.x];
    if ((threadIdx.x & 31) < 16)
        v = __shfl_sync(0xffffffffu, v, 0);  // @shfl
    else
        v = (float)__ballot_sync(0xffffffffu, v > 0.0F);  // @ballot
    x[threadIdx.x] = v;
}
extern "C" __global__ void warp_half_at_barrier(float* x) {
    float v = x[threadIdx.x];
    if ((threadIdx.x & 31) < 16) v = __shfl_sync(0xffffffffu, v, 0);
    __syncthreads();  // @half
    x[threadIdx.x] = v;
}
extern "C" __global__ void shuffle_from_exited(float* x, int n) {
    const int i = threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    v += __shfl_down_sync(0xffffffffu, v, 16);  // @down
    x[i] = v;
}
extern "C" __global__ void bad_shuffle_width(float* x) {
    x[threadIdx.x] = __shfl_sync(0xffffffffu, x[threadIdx.x], 0, 12);  // @width
}
extern "C" __global__ void lane_outside_its_mask(float* x) {
    x[threadIdx.x] = __shfl_sync(0x1u, x[threadIdx.x], 0);  // @ownmask
}
extern "C" __global__ void ballot_after_exit(unsigned* out, int n) {
    if ((int)threadIdx.x >= n) return;  // exited lanes may be named in the mask
    out[threadIdx.x] = __ballot_sync(0xffffffffu, threadIdx.x % 3 == 0);
}
extern "C" __global__ void trapping(float* x) {
    if (threadIdx.x == 3) __trap();
    x[threadIdx.x] = 1.0F;
}

// ---- memory nobody wrote
extern "C" __global__ void copy_words(const float* in, const int* in_i, float* out, int* out_i) {
    out[threadIdx.x] = in[threadIdx.x];
    out_i[threadIdx.x] = in_i[threadIdx.x];
}
extern "C" __global__ void half_written_shared(float* out) {
    __shared__ float s[64];
    if (threadIdx.x < 32) s[threadIdx.x] = (float)blockIdx.x;
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
    __syncthreads();
    s[threadIdx.x] = 7.0F;  // all written now: the next block must see garbage again
}
template <int N>
__device__ float half_written_in_a_template(float v) {  // a template's static is shared too
    __shared__ float s[N];
    if (threadIdx.x < N / 2) s[threadIdx.x] = v;
    __syncthreads();
    return s[threadIdx.x];
}
extern "C" __global__ void half_written_template(float* out) {
    out[threadIdx.x] = half_written_in_a_template<64>(3.0F);
}
extern "C" __global__ void half_written_dynamic(float* out) {
    extern __shared__ float dyn[];
    if (threadIdx.x < 32) dyn[threadIdx.x] = 1.0F;
    __syncthreads();
    out[threadIdx.x] = dyn[threadIdx.x];
}

// ---- out of bounds (caught under ASan)
extern "C" __global__ void read_past_end(const float* x, float* out, int n) {
    out[threadIdx.x] = x[threadIdx.x + n - 1];  // threads >= 1 read past n
}
extern "C" __global__ void read_past_static(float* out) {
    __shared__ float s[8];
    s[threadIdx.x] = 1.0F;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x + 1];  // the last thread reads past s
}
extern "C" __global__ void read_past_dynamic(float* out) {
    extern __shared__ float dyn[];
    dyn[threadIdx.x] = 1.0F;
    __syncthreads();
    out[threadIdx.x] = dyn[threadIdx.x + 1];  // the last thread reads past shared_size
}

// ---- intrinsics, checked against NumPy
extern "C" __global__ void warp_ops(const float* x, const int* pred, float* shfl, float* up,
                                    float* down, float* bfly, unsigned* ballot, int* any_all,
                                    unsigned* active) {
    const int t = threadIdx.x;
    const float v = x[t];
    const int p = pred[t];
    shfl[t] = __shfl_sync(0xffffffffu, v, 3, 8);
    up[t] = __shfl_up_sync(0xffffffffu, v, 2, 16);
    down[t] = __shfl_down_sync(0xffffffffu, v, 5);
    bfly[t] = __shfl_xor_sync(0xffffffffu, v, 6, 16);
    ballot[t] = __ballot_sync(0xffffffffu, p);
    any_all[2 * t] = __any_sync(0xffffffffu, p);
    any_all[2 * t + 1] = __all_sync(0xffffffffu, p);
    __syncwarp();
    active[t] = __activemask();
}
extern "C" __global__ void block_votes(const int* pred, int* out) {
    const int p = pred[blockIdx.x * blockDim.x + threadIdx.x];
    const int count = __syncthreads_count(p);
    const int all = __syncthreads_and(p);
    const int any = __syncthreads_or(p);
    if (threadIdx.x == 0) {
        out[3 * blockIdx.x] = count;
        out[3 * blockIdx.x + 1] = all;
        out[3 * blockIdx.x + 2] = any;
    }
}
extern "C" __global__ void integer_atomics(const int* x, int* out, unsigned* bits,
                                           unsigned long long* wide) {
    const int v = x[blockIdx.x * blockDim.x + threadIdx.x];
    atomicAdd(&out[0], v);
    atomicMax(&out[1], v);
    atomicMin(&out[2], v);
    int old = out[3], assumed;  // a CAS loop: counts the threads
    do { assumed = old; old = atomicCAS(&out[3], assumed, assumed + 1); } while (old != assumed);
    atomicOr(&bits[0], 1u << (v & 31));
    atomicXor(&bits[1], (unsigned)v);
    atomicAnd(&bits[2], ~(1u << (v & 31)));
    atomicAdd(wide, (unsigned long long)v);
}
extern "C" __global__ void bit_ops(const unsigned* x, int* out, unsigned* rev, float* cast) {
    const int t = threadIdx.x;
    const unsigned v = x[t];
    out[3 * t] = __popc(v);
    out[3 * t + 1] = __ffs((int)v);
    out[3 * t + 2] = __clz((int)v);
    rev[t] = __brev(v);
    cast[t] = __int_as_float(__float_as_int(__ldg(&cast[t]) * 2.0F));
}
extern "C" __global__ void grid_indices(int* out) {  // 3-d blocks in a 3-d grid
    const int block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const int thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    out[block * blockDim.x * blockDim.y * blockDim.z + thread] = 1000 * block + thread;
}
extern "C" __global__ void block_reverse(float* x) {  // a barrier round trip through shared
    __shared__ float s[256];
    s[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
    __syncthreads();
    x[blockIdx.x * blockDim.x + threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

// ---- launches a GPU refuses
extern "C" __global__ void __launch_bounds__(64) bounded(float* x) { x[threadIdx.x] = 1.0F; }
extern "C" __global__ void takes_three(float* x, int n, int m) { x[0] = (float)(n + m); }
"""

F32 = np.float32


def _names(message: str, marker: str) -> bool:
    """Whether ``message`` names the source line holding ``// @marker`` (as file.cu:line)."""
    for n, text in enumerate(KERNELS.splitlines(), start=1):
        if f"// @{marker}" in text:
            return re.search(rf"\.cu:{n}\b", message) is not None
    raise AssertionError(marker)


@pytest.fixture
def kernels(cuda_emulator):
    return emulated_module(KERNELS)


def _upload(drv, array: np.ndarray):
    mem = drv.mem_alloc(max(4, array.nbytes))
    drv.memcpy_htod(mem, np.ascontiguousarray(array))
    return mem


def _download(drv, mem, shape, dtype=F32) -> np.ndarray:
    out = np.empty(shape, dtype)
    drv.memcpy_dtoh(out, mem)
    return out


def _run(drv, module, name, fmt, grid, block, *arrays, shared=0, scalars=()):
    """Launch ``name`` on fresh copies of ``arrays`` (+ scalars); the arrays afterwards."""
    mems = [_upload(drv, a) for a in arrays]
    f = module.get_function(name).prepare(fmt)
    f.prepared_call(grid, block, *mems, *scalars, shared_size=shared)
    return [_download(drv, m, a.shape, a.dtype) for m, a in zip(mems, arrays, strict=True)]


# ----------------------------------------------------------------------------- races
def test_emulated_orders_expose_a_race_between_threads(cuda_emulator, kernels):
    x = np.arange(64, dtype=F32)

    def run(name):
        return lambda: _run(cuda_emulator, kernels, name, "P", (1, 1), (64, 1, 1), x)[0]

    with pytest.raises(AssertionError, match="reverse order differs bitwise"):
        same_in_every_order(run("neighbour_race"))
    synced = same_in_every_order(run("neighbour_synced"))  # the barrier removes the race
    np.testing.assert_array_equal(synced, np.roll(x, -1) + 1)


def test_emulated_orders_expose_a_race_between_blocks(cuda_emulator, kernels):
    x = np.arange(4 * 32, dtype=F32)
    with pytest.raises(AssertionError, match="order differs bitwise"):
        same_in_every_order(
            lambda: _run(cuda_emulator, kernels, "block_race", "P", (4, 1), (32, 1, 1), x)[0]
        )


def test_emulated_orders_expose_an_order_dependent_float_atomic_sum(cuda_emulator, kernels):
    x = np.random.default_rng(0).standard_normal(256).astype(F32)
    x *= np.where(np.arange(256) % 3 == 0, F32(1e7), F32(1.0))  # rounding depends on the order
    zero = np.zeros(1, F32)
    with pytest.raises(AssertionError, match="order differs bitwise"):
        same_in_every_order(
            lambda: _run(
                cuda_emulator, kernels, "float_atomic_sum", "PP", (2, 1), (128, 1, 1), x, zero
            )[1]
        )


# ----------------------------------------------------------------------------- divergence
def _fault(drv, module, name, fmt, block, *args, grid=(1, 1)):
    f = module.get_function(name).prepare(fmt)
    with pytest.raises(drv.KernelFault) as caught:
        f.prepared_call(grid, block, *args)
    return str(caught.value)


def test_emulated_divergent_barriers_are_reported(cuda_emulator, kernels):
    x = cuda_emulator.mem_alloc(4 * 64)
    msg = _fault(cuda_emulator, kernels, "divergent_barrier", "P", (64, 1, 1), x)
    assert "kernel 'divergent_barrier' block (0,0,0)" in msg
    assert "wait at different barriers" in msg
    assert "32 threads (0-31)" in msg and "32 threads (32-63)" in msg
    assert _names(msg, "first") and _names(msg, "second")
    assert "source:" in msg


def test_emulated_barrier_after_an_early_exit_is_reported(cuda_emulator, kernels):
    x = cuda_emulator.mem_alloc(4 * 64)
    msg = _fault(cuda_emulator, kernels, "exit_before_barrier", "Pi", (64, 1, 1), x, np.int32(40))
    assert "24 threads (40-63) have exited while 40 threads (0-39) wait at __syncthreads()" in msg
    assert _names(msg, "exit")
    # every thread alive: the same kernel is fine
    out = _run(
        cuda_emulator,
        kernels,
        "exit_before_barrier",
        "Pi",
        (1, 1),
        (64, 1, 1),
        np.zeros(64, F32),
        scalars=(np.int32(64),),
    )[0]
    np.testing.assert_array_equal(out, np.full(64, 2.0, F32))


def test_emulated_warp_collectives_whose_lanes_disagree_are_reported(cuda_emulator, kernels):
    x = _upload(cuda_emulator, np.ones(64, F32))
    msg = _fault(cuda_emulator, kernels, "warp_mixed_collectives", "P", (64, 1, 1), x)
    assert "kernel 'warp_mixed_collectives'" in msg and "__shfl_sync()" in msg
    assert "lane 16 calls __ballot_sync()" in msg
    assert _names(msg, "shfl") and _names(msg, "ballot")
    msg = _fault(cuda_emulator, kernels, "warp_half_at_barrier", "P", (64, 1, 1), x)
    assert "lane 16 waits at __syncthreads()" in msg and _names(msg, "half")


def test_emulated_shuffle_from_an_exited_lane_is_reported(cuda_emulator, kernels):
    x = _upload(cuda_emulator, np.ones(32, F32))
    msg = _fault(cuda_emulator, kernels, "shuffle_from_exited", "Pi", (32, 1, 1), x, np.int32(20))
    assert "lane 4: __shfl_down_sync()" in msg and "reads lane 20" in msg and _names(msg, "down")
    out = _run(
        cuda_emulator,
        kernels,
        "shuffle_from_exited",
        "Pi",
        (1, 1),
        (32, 1, 1),
        np.arange(32, dtype=F32),
        scalars=(np.int32(32),),
    )[0]
    want = np.arange(32, dtype=F32) + np.where(
        np.arange(32) < 16, np.arange(32) + 16, np.arange(32)
    )
    np.testing.assert_array_equal(out, want)


def test_emulated_bad_warp_masks_and_widths_are_reported(cuda_emulator, kernels):
    x = _upload(cuda_emulator, np.ones(32, F32))
    msg = _fault(cuda_emulator, kernels, "bad_shuffle_width", "P", (32, 1, 1), x)
    assert "width 12 is not a power of two" in msg and _names(msg, "width")
    msg = _fault(cuda_emulator, kernels, "lane_outside_its_mask", "P", (32, 1, 1), x)
    assert "mask 0x00000001 leaves out the calling lane 1" in msg and _names(msg, "ownmask")
    out = _run(
        cuda_emulator,
        kernels,
        "ballot_after_exit",
        "Pi",
        (1, 1),
        (32, 1, 1),
        np.zeros(32, np.uint32),
        scalars=(np.int32(20),),
    )[0]
    want = sum(1 << k for k in range(0, 20, 3))
    np.testing.assert_array_equal(out, np.where(np.arange(32) < 20, want, 0))


def test_emulated_trap_is_reported(cuda_emulator, kernels):
    msg = _fault(cuda_emulator, kernels, "trapping", "P", (8, 1, 1), cuda_emulator.mem_alloc(32))
    assert "thread 3: __trap()" in msg


# ----------------------------------------------------------------------------- unwritten memory
def test_emulated_device_memory_starts_as_garbage(cuda_emulator, kernels):
    drv = cuda_emulator
    mems = [drv.mem_alloc(4 * 32) for _ in range(4)]
    drv.memcpy_htod(mems[2], np.zeros(32, F32))  # outputs written: only the inputs are unwritten
    drv.memcpy_htod(mems[3], np.zeros(32, np.int32))
    kernels.get_function("copy_words").prepare("PPPP").prepared_call((1, 1), (32, 1, 1), *mems)
    assert np.isnan(_download(drv, mems[2], 32)).all()
    np.testing.assert_array_equal(_download(drv, mems[3], 32, np.int32), -1)


def test_emulated_shared_memory_starts_as_garbage_in_every_block(cuda_emulator, kernels):
    out = _run(
        cuda_emulator,
        kernels,
        "half_written_shared",
        "P",
        (3, 1),
        (64, 1, 1),
        np.zeros(3 * 64, F32),
    )[0].reshape(3, 64)
    np.testing.assert_array_equal(
        out[:, :32], np.repeat(np.arange(3, dtype=F32), 32).reshape(3, 32)
    )
    assert np.isnan(out[:, 32:]).all()
    tpl = _run(
        cuda_emulator, kernels, "half_written_template", "P", (1, 1), (64, 1, 1), np.zeros(64, F32)
    )[0]
    np.testing.assert_array_equal(tpl[:32], 3.0)
    assert np.isnan(tpl[32:]).all()
    dyn = _run(
        cuda_emulator,
        kernels,
        "half_written_dynamic",
        "P",
        (1, 1),
        (64, 1, 1),
        np.zeros(64, F32),
        shared=256,
    )[0]
    np.testing.assert_array_equal(dyn[:32], 1.0)
    assert np.isnan(dyn[32:]).all()


# ----------------------------------------------------------------------------- ASan
def _asan_run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``script`` in a fresh python with ASan preloaded and SNNCC_EMU_ASAN=1."""
    libasan = subprocess.run(
        ["g++", "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("g++ has no AddressSanitizer runtime")
    (tmp_path / "run.py").write_text(textwrap.dedent(script))
    env = {
        **os.environ,
        "SNNCC_EMU_ASAN": "1",
        "LD_PRELOAD": libasan,
        "ASAN_OPTIONS": "detect_leaks=0",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, str(tmp_path / "run.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


_ASAN_PRELUDE = """
    import sys, types
    import numpy as np
    from tests.cudaemu import driver as drv
    from tests.cudaemu.fixture import emulated_module
    from tests.test_cuda_emulated import KERNELS
    package = types.ModuleType("pycuda"); package.__path__ = []; package.driver = drv
    sys.modules["pycuda"], sys.modules["pycuda.driver"] = package, drv
    drv.configure()
"""


OUT_OF_BOUNDS = {  # 8 floats each: x and out; threads 1-7 read past x, thread 7 past s or dyn
    "device-buffer": (
        "f = m.get_function('read_past_end').prepare('PPi')\n"
        "    f.prepared_call((1, 1), (8, 1, 1), x, out, np.int32(8))",
        "heap-buffer-overflow",
    ),
    "static-shared": (
        "f = m.get_function('read_past_static').prepare('P')\n"
        "    f.prepared_call((1, 1), (8, 1, 1), out)",
        "global-buffer-overflow",
    ),
    "dynamic-shared": (
        "f = m.get_function('read_past_dynamic').prepare('P')\n"
        "    f.prepared_call((1, 1), (8, 1, 1), out, shared_size=32)",
        "use-after-poison",
    ),
}


@pytest.mark.parametrize("case", OUT_OF_BOUNDS)
def test_emulated_asan_catches_out_of_bounds_reads(cuda_emulator, case, tmp_path):
    launch, report = OUT_OF_BOUNDS[case]
    script = f"""
    m = emulated_module(KERNELS)
    x, out = drv.mem_alloc(32), drv.mem_alloc(32)
    {launch}
    print("no report")
    """
    proc = _asan_run(_ASAN_PRELUDE + script, tmp_path)
    assert proc.returncode != 0 and "no report" not in proc.stdout, proc.stdout + proc.stderr
    assert f"ERROR: AddressSanitizer: {report}" in proc.stderr, proc.stderr[-3000:]
    assert " in read_past_" in proc.stderr


def test_emulated_asan_finds_no_out_of_bounds_read_in_training(cuda_emulator, tmp_path):
    """The eProp kernels read only what they own (cross-entropy reads no targets, mse does)."""
    proc = _asan_run(
        _ASAN_PRELUDE
        + """
    import snncc
    from tests.test_cuda import _train_net
    rng = np.random.default_rng(1)
    x = (rng.random((3, 12, 70)) < 0.1).astype(np.uint8)
    for loss, y in (("cross_entropy", rng.integers(0, 5, 3)), ("mse", rng.random((3, 12, 5)))):
        rule = snncc.rules.EProp(readout="output", loss=loss, regularizer="sequence", c_reg=0.1)
        model = snncc.compile(_train_net(sparse=True), batch_size=4, backend="cuda", rule=rule,
                              optimizer=snncc.optim.Adam(1e-3))
        model.train_batch(x, y)
        model.evaluate((x, y))
    print("clean")
    """,
        tmp_path,
    )
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr[-3000:]


# ----------------------------------------------------------------------------- intrinsics
def test_emulated_warp_intrinsics_match_numpy(cuda_emulator, kernels):
    n = 64
    x = np.arange(n, dtype=F32) * F32(1.5)
    pred = (np.random.default_rng(3).random(n) < 0.5).astype(np.int32)
    pred[32:] = 1  # warp 1: all true
    outs = [np.zeros(n, F32)] * 4 + [np.zeros(n, np.uint32), np.zeros(2 * n, np.int32)]
    outs += [np.zeros(n, np.uint32)]
    res = _run(cuda_emulator, kernels, "warp_ops", "PPPPPPPPP", (1, 1), (n, 1, 1), x, pred, *outs)
    shfl, up, down, bfly, ballot, any_all, active = res[2:]
    lane, t = np.arange(n) % 32, np.arange(n)
    np.testing.assert_array_equal(shfl, x[t - lane % 8 + 3])
    np.testing.assert_array_equal(up, np.where(lane % 16 >= 2, x[t - 2], x))
    np.testing.assert_array_equal(down, np.where(lane + 5 < 32, x[np.minimum(t + 5, n - 1)], x))
    np.testing.assert_array_equal(bfly, x[t ^ 6])
    bits = [int(sum(int(p) << k for k, p in enumerate(pred[w * 32 : w * 32 + 32]))) for w in (0, 1)]
    np.testing.assert_array_equal(ballot, np.repeat(np.array(bits, np.uint32), 32))
    np.testing.assert_array_equal(any_all[0::2], 1)
    np.testing.assert_array_equal(any_all[1::2], np.repeat([0, 1], 32))
    np.testing.assert_array_equal(active, 0xFFFFFFFF)


def test_emulated_block_votes_and_atomics_match_numpy(cuda_emulator, kernels):
    pred = (np.random.default_rng(4).random(3 * 96) < 0.4).astype(np.int32)
    pred[96:192] = 1
    votes = _run(
        cuda_emulator, kernels, "block_votes", "PP", (3, 1), (96, 1, 1), pred, np.zeros(9, np.int32)
    )[1].reshape(3, 3)
    blocks = pred.reshape(3, 96)
    np.testing.assert_array_equal(votes[:, 0], blocks.sum(1))
    np.testing.assert_array_equal(votes[:, 1], blocks.all(1))
    np.testing.assert_array_equal(votes[:, 2], blocks.any(1))

    v = np.random.default_rng(5).integers(-1000, 1000, 4 * 64).astype(np.int32)
    init = np.array([0, -(2**31), 2**31 - 1, 0], np.int32)
    bits0 = np.array([0, 0, 0xFFFFFFFF], np.uint32)
    out, bits, wide = _run(
        cuda_emulator,
        kernels,
        "integer_atomics",
        "PPPP",
        (4, 1),
        (64, 1, 1),
        v,
        init,
        bits0,
        np.zeros(1, np.uint64),
    )[1:]
    np.testing.assert_array_equal(out, [v.sum(), v.max(), v.min(), v.size])
    used = np.bitwise_or.reduce(np.uint32(1) << (v.astype(np.uint32) & 31))
    xor = np.bitwise_xor.reduce(v.astype(np.uint32))
    np.testing.assert_array_equal(bits, [used, xor, ~used & 0xFFFFFFFF])
    assert int(wide[0]) == int(v.astype(np.int64).sum()) % 2**64


def test_emulated_bit_intrinsics_and_grid_indices_match_python(cuda_emulator, kernels):
    x = np.array([0, 1, 6, 0x80000000, 0xFFFFFFFF, 12345678, 0x00F00000, 3], np.uint32)
    cast = np.linspace(-2, 2, 8, dtype=F32)
    _, out, rev, doubled = _run(
        cuda_emulator,
        kernels,
        "bit_ops",
        "PPPP",
        (1, 1),
        (8, 1, 1),
        x,
        np.zeros(24, np.int32),
        np.zeros(8, np.uint32),
        cast,
    )
    for k, w in enumerate(x.tolist()):
        low = (w & -w).bit_length()
        assert list(out[3 * k : 3 * k + 3]) == [bin(w).count("1"), low, 32 - w.bit_length()]
        assert int(rev[k]) == int(f"{w:032b}"[::-1], 2)
    np.testing.assert_array_equal(doubled, cast * 2)

    grid, block = (3, 2, 2), (4, 2, 3)
    out = _run(
        cuda_emulator, kernels, "grid_indices", "P", grid, block, np.zeros(12 * 24, np.int32)
    )[0]
    np.testing.assert_array_equal(out, (1000 * np.arange(12)[:, None] + np.arange(24)).ravel())


# ----------------------------------------------------------------------------- the host side
def test_emulated_driver_refuses_what_cuda_refuses(cuda_emulator, kernels):
    drv = cuda_emulator
    x = drv.mem_alloc(4 * 256)
    bounded = kernels.get_function("bounded").prepare("P")
    assert bounded.max_threads_per_block == 64
    bounded.prepared_call((1, 1), (64, 1, 1), x)
    with pytest.raises(drv.LaunchError, match="too many resources.*__launch_bounds__\\(64\\)"):
        bounded.prepared_call((1, 1), (128, 1, 1), x)

    dyn = kernels.get_function("half_written_dynamic").prepare("P")
    with pytest.raises(drv.LogicError, match="dynamic shared memory"):
        dyn.prepared_call((1, 1), (64, 1, 1), x, shared_size=64 << 10)
    dyn.set_attribute(drv.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES, 100 << 10)
    dyn.prepared_call((1, 1), (64, 1, 1), x, shared_size=64 << 10)
    with pytest.raises(drv.LogicError, match="invalid value"):
        dyn.set_attribute(drv.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES, 300 << 10)
    with pytest.raises(drv.LogicError, match="MAX_BLOCK_DIM_X 2048"):
        dyn.prepared_call((1, 1), (2048, 1, 1), x)

    three = kernels.get_function("takes_three")
    with pytest.raises(drv.LogicError, match=r"takes \(pointer, int32, int32\).*'Pi'"):
        three.prepare("Pi")
    with pytest.raises(drv.LogicError, match="takes"):
        three.prepare("Pif")
    with pytest.raises(drv.LogicError, match="named symbol not found"):
        kernels.get_function("no_such_kernel")

    with pytest.raises(drv.LogicError, match="overflow an allocation of 1024 bytes"):
        drv.memcpy_htod(x, np.zeros(257, F32))
    with pytest.raises(drv.LogicError, match="not device memory"):
        drv.memcpy_dtoh(np.zeros(4, F32), np.zeros(4, F32).ctypes.data)
    host = np.zeros(64, F32)
    with pytest.raises(drv.LaunchError, match="argument 0 .* not device memory"):
        bounded.prepared_call((1, 1), (64, 1, 1), np.intp(host.ctypes.data))

    stream = drv.Stream()
    drv.Device(1).retain_primary_context().push()  # another device's context is current
    with pytest.raises(drv.LogicError, match="loaded on device 0"):
        bounded.prepared_call((1, 1), (64, 1, 1), x)
    with pytest.raises(drv.LogicError, match="stream belongs to another context"):
        drv.memcpy_htod_async(x, np.zeros(4, F32), stream)
    y = drv.mem_alloc(256)  # on device 1
    drv.Context.pop()
    with pytest.raises(drv.LaunchError, match="device 1's memory"):
        bounded.prepared_call((1, 1), (64, 1, 1), y)
    x.free()
    with pytest.raises(drv.LogicError, match="freed twice"):
        x.free()


def test_emulated_driver_host_api(cuda_emulator):
    drv = cuda_emulator
    with pytest.raises(drv.LogicError, match="init"):
        drv.Device.count()
    drv.init()
    assert drv.Device.count() == 2
    dev = drv.Device(1)
    assert dev.compute_capability() == (9, 0) and dev.multiprocessor_count == 132
    with pytest.raises(drv.LogicError, match="invalid device ordinal"):
        drv.Device(2)
    with pytest.raises(drv.LogicError, match="push a context"):
        drv.mem_alloc(16)
    ctx = dev.retain_primary_context()
    assert ctx is dev.retain_primary_context()
    ctx.push()
    assert drv.Context.get_device() == dev
    free, total = drv.mem_get_info()
    mem = drv.mem_alloc(1 << 20)
    assert drv.mem_get_info() == (free - (1 << 20), total)
    stream = drv.Stream()
    host = drv.pagelocked_empty((4, 8), np.float32)
    host[:] = np.arange(32).reshape(4, 8)
    drv.memcpy_htod_async(mem, host, stream)
    drv.memset_d32(int(mem) + 64, 0x3F800000, 4)  # four 1.0F over elements 16..19
    copy = drv.mem_alloc(128)
    drv.memcpy_dtod_async(copy, mem, 128, stream)
    start, end = drv.Event().record(stream), drv.Event()
    end.record(stream).synchronize()
    assert np.isnan(start.time_till(end))  # never a timing
    back = drv.pagelocked_zeros((32,), np.float32)
    drv.memcpy_dtoh_async(back, copy, stream)
    stream.synchronize()
    want = np.arange(32, dtype=F32)
    want[16:20] = 1.0
    np.testing.assert_array_equal(back, want)
    drv.Context.pop()
    with pytest.raises(drv.LogicError, match="no context"):
        drv.Context.pop()


def test_emulated_ucontext_fibers_agree_with_the_switch(cuda_emulator, kernels, monkeypatch):
    x = np.random.default_rng(6).random(4 * 256).astype(F32)
    fast = _run(cuda_emulator, kernels, "block_reverse", "P", (4, 1), (256, 1, 1), x)[0]
    monkeypatch.setenv("SNNCC_EMU_UCONTEXT", "1")
    portable = emulated_module(KERNELS)
    assert portable.library is not kernels.library
    slow = _run(cuda_emulator, portable, "block_reverse", "P", (4, 1), (256, 1, 1), x)[0]
    np.testing.assert_array_equal(fast, x.reshape(4, 256)[:, ::-1].ravel())
    assert_bit_identical(slow, fast)


# ----------------------------------------------------------------------------- CudaProgram
def _x(rng, B, T, n=70, p=0.05):
    return (rng.random((B, T, n)) < p).astype(np.uint8)


def test_emulated_simulation_records_equal_the_cpu_bit_for_bit(cuda_emulator):
    """Spikes and state traces: both backends do the same float32 operations in the same
    order without FMA contraction, so the emulated kernels give the CPU's bits."""
    net = _nets()
    x = _x(np.random.default_rng(0), 4, 150)
    keys = ["hidden", "lif", "hidden.v", "hidden.a", "output.v"]
    cpu = snncc.compile(net, batch_size=4, backend="cpu").run(x, record=keys)
    model = snncc.compile(net, batch_size=4, backend="cuda", device=0)
    gpu = same_in_every_order(lambda: model.run(x, record=keys))
    assert cpu["hidden"].sum() > 0 and cpu["lif"].sum() > 0  # the network is active
    assert_bit_identical(gpu, cpu)


GRADIENT_CASES = {
    # _nets: refractory heterogeneous ALIF, sparse and dense, a delayed backward projection
    "moving-mixed": (_nets, dict(regularizer="moving", feedback="random")),
    "sequence-mixed": (_nets, dict(regularizer="sequence", feedback="random")),
    "moving-sparse-input": (lambda: _train_net(sparse=True), dict(regularizer="moving")),
    "mse-dense": (_train_net, dict(regularizer="sequence", loss="mse")),
    # NEST's mean over the counted steps: every gradient scaled on the device
    "average-gradient": (_train_net, dict(average_gradient=True, error_start=20)),
}


@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_emulated_gradients_match_the_cpu(cuda_emulator, case):
    make, options = GRADIENT_CASES[case]
    rng = np.random.default_rng(1)
    x = _x(rng, 6, 100)
    y = (
        rng.random((6, 100, 5)).astype(F32)
        if options.get("loss") == "mse"
        else rng.integers(0, 5, 6)
    )
    rule = snncc.rules.EProp(readout="output", c_reg=0.05, **options)
    cpu, gpu = (snncc.compile(make(), batch_size=6, backend=b, rule=rule) for b in ("cpu", "cuda"))
    g_cpu = cpu.gradients(x, y)
    g_gpu = same_in_every_order(lambda: gpu.gradients(x, y))
    assert g_gpu.keys() == g_cpu.keys()
    for k in g_cpu:
        scale = np.abs(g_cpu[k]).max()
        assert scale > 0, k
        assert np.abs(g_gpu[k] - g_cpu[k]).max() / scale < 1e-5, k


def test_emulated_adam_steps_match_the_cpu(cuda_emulator):
    rng = np.random.default_rng(2)
    x, y = _x(rng, 8, 80), rng.integers(0, 5, 8)
    rule = snncc.rules.EProp(readout="output", c_reg=0.01)

    names = ("in_hid", "hid_hid", "hid_out")

    def train(backend):
        model = snncc.compile(
            _train_net(sparse=True),
            batch_size=8,
            backend=backend,
            rule=rule,
            optimizer=snncc.optim.Adam(1e-2),
        )
        before = {k: model.weights[k] for k in names}
        losses = [model.train_batch(x, y)["loss"] for _ in range(3)]
        return before, {k: model.weights[k] for k in names}, losses

    cpu_before, cpu_w, cpu_losses = train("cpu")
    gpu_before, gpu_w, gpu_losses = same_in_every_order(lambda: train("cuda"))
    assert_bit_identical(gpu_before, cpu_before)
    for k, w in cpu_w.items():
        assert np.abs(w - cpu_before[k]).max() > 1e-3, k  # the steps moved the weights
        np.testing.assert_allclose(gpu_w[k], w, rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-5)


def test_emulated_devices_split_an_uneven_batch_like_one_cpu_program(cuda_emulator):
    rng = np.random.default_rng(3)
    x, y = _x(rng, 7, 90), rng.integers(0, 5, 7)
    rule = snncc.rules.EProp(readout="output", c_reg=0.01)
    opt = snncc.optim.Adam(1e-2)
    cpu = snncc.compile(_train_net(), batch_size=7, backend="cpu", rule=rule, optimizer=opt)
    two = snncc.compile(
        _train_net(), batch_size=7, backend="cuda", devices=[0, 1], rule=rule, optimizer=opt
    )
    assert [p.device.ordinal for p in two.programs] == [0, 1]
    g_cpu = cpu.gradients(x, y)
    g_two = same_in_every_order(lambda: two.gradients(x, y))
    for k in g_cpu:
        assert np.abs(g_two[k] - g_cpu[k]).max() / np.abs(g_cpu[k]).max() < 1e-5, k
    for _ in range(2):
        cpu.train_batch(x, y)
        two.train_batch(x, y)
    for k in ("in_hid", "hid_hid", "hid_out"):
        np.testing.assert_allclose(two.weights[k], cpu.weights[k], rtol=1e-5, atol=1e-6)
        on_device = [p.get(f"{k}_w") for p in two.programs]  # the same step ran on each
        assert_bit_identical(on_device[1], on_device[0], k)


def test_emulated_evaluate_matches_the_cpu(cuda_emulator):
    rng = np.random.default_rng(4)
    x, y = _x(rng, 10, 60), rng.integers(0, 5, 10)
    rule = snncc.rules.EProp(readout="output")
    cpu, gpu = (
        snncc.compile(_train_net(), batch_size=4, backend=b, rule=rule) for b in ("cpu", "cuda")
    )
    want = cpu.evaluate((x, y))
    got = same_in_every_order(lambda: gpu.evaluate((x, y)))
    assert got["accuracy"] == want["accuracy"]
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-6)
    np.testing.assert_array_equal(gpu.predict(x), cpu.predict(x))


@pytest.mark.parametrize("case", DELAY_CASES)
def test_emulated_delays_match_the_cpu(cuda_emulator, case):
    """Delays 0-5 (and mixed) from inputs, earlier, later and the same population: the forward
    pass gives the CPU's bits, the gradients agree to 1e-5, in every thread/block order."""
    net = _delay_net(DELAY_CASES[case])
    rng = np.random.default_rng(5)
    x, y = _x(rng, 3, 60, n=40, p=0.12), rng.integers(0, 4, 3)
    rule = snncc.rules.EProp(readout="output", c_reg=0.05, feedback="random")
    cpu, gpu = (snncc.compile(net, batch_size=3, backend=b, rule=rule) for b in ("cpu", "cuda"))
    keys = ["hidden", "lif", "hidden.v", "hidden.a", "lif.v", "output.v"]
    want = cpu.run(x, record=keys)
    assert want["hidden"].sum() > 0 and want["lif"].sum() > 0  # the delayed paths carry spikes
    assert_bit_identical(same_in_every_order(lambda: gpu.run(x, record=keys)), want)
    g_cpu = cpu.gradients(x, y)
    g_gpu = same_in_every_order(lambda: gpu.gradients(x, y))
    for k in g_cpu:
        scale = np.abs(g_cpu[k]).max()
        assert scale > 0, k
        assert np.abs(g_gpu[k] - g_cpu[k]).max() / scale < 1e-5, k


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_delayed_spikes_arrive_when_the_delays_say(request, backend):
    """Against the definition (a spike of step t arrives at t + delay), on both backends: one
    input spike at step 4 travels input -> relay (2) -> sink_a (0), sink_b (3), and through
    relay2, declared earlier, (1) -> sink_d (2); input -> sink_c (4)."""
    if backend == "cuda":
        request.getfixturevalue("cuda_emulator")
    net = snncc.Network(dt=1.0)
    inp = net.add_input("input", 1)
    relay2 = net.add_population("relay2", 1, neurons.LIF())
    relay = net.add_population("relay", 1, neurons.LIF())
    sink = neurons.LeakyIntegrator(tau=1e9, bias=False)  # holds what arrived
    sinks = {n: net.add_population(n, 1, sink) for n in ("sink_a", "sink_b", "sink_c", "sink_d")}
    net.connect(inp, relay, weight=1.0, delay=2)  # v = 1 > 0.6: one spike, then below threshold
    net.connect(relay, sinks["sink_a"], weight=1.0, delay=0)
    net.connect(relay, sinks["sink_b"], weight=1.0, delay=3)
    net.connect(inp, sinks["sink_c"], weight=1.0, delay=4)
    net.connect(relay, relay2, weight=1.0, delay=1)
    net.connect(relay2, sinks["sink_d"], weight=1.0, delay=2)
    x = np.zeros((1, 16, 1), np.uint8)
    x[0, 4, 0] = 1
    keys = ["relay", "relay2", *(f"{n}.v" for n in sinks)]
    rec = snncc.compile(net, batch_size=1, backend=backend).run(x, record=keys)
    first = {k: np.flatnonzero(v[0, :, 0]).tolist() for k, v in rec.items()}
    assert first["relay"] == [6] and first["relay2"] == [7]
    arrival = {"sink_a": 6, "sink_b": 9, "sink_c": 8, "sink_d": 9}
    for name, step in arrival.items():
        assert first[f"{name}.v"][0] == step, name


def test_emulated_shared_memory_above_48k_is_asked_for(cuda_emulator):
    """A ring of 801 steps of 512 neurons needs 51 KiB of shared memory: the program raises
    the kernel's limit (a GPU refuses the launch otherwise, and so does the emulator)."""
    from snncc.codegen import cuda_layout

    net = snncc.Network(dt=1.0, seed=1)
    inp = net.add_input("input", 40)
    hid = net.add_population("hidden", 512, neurons.LIF())
    net.connect(inp, hid, weight=init.Normal(0.5, 0.5))
    net.connect(hid, hid, weight=init.Normal(0.0, 0.1), delay=800)
    model = snncc.compile(net, batch_size=2, backend="cuda")
    (launch,) = model.plan.manifest["simulate"]
    assert launch.shared > cuda_layout.SHARED_DEFAULT
    x = _x(np.random.default_rng(7), 2, 12, n=40, p=0.2)
    want = snncc.compile(net, batch_size=2, backend="cpu").run(x, record=["hidden", "hidden.v"])
    assert_bit_identical(model.run(x, record=["hidden", "hidden.v"]), want)
    kernel = model.programs[0].kernels["simulate"]
    kernel.set_attribute(cuda_emulator.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES, 0)
    with pytest.raises(cuda_emulator.LogicError, match="dynamic shared memory"):
        model.run(x, record=["hidden"])


def test_emulated_rings_too_big_for_shared_memory_live_in_global_memory(cuda_emulator, monkeypatch):
    from snncc.codegen import cuda_layout

    monkeypatch.setattr(cuda_layout, "RING_SHARED_LIMIT", 0)  # every ring that has a buffer
    net = _delay_net({**DELAY_CASES["mixed"], "hid_hid": 2})
    rule = snncc.rules.EProp(readout="output", c_reg=0.05, feedback="random")
    gpu = snncc.compile(net, batch_size=3, backend="cuda", rule=rule)
    rings = cuda_layout.layout(gpu.plan).rings
    assert not rings["hidden"].shared and not rings["lif"].shared
    assert "hidden_ring" in gpu.sources()["network.cu"].split("ring_hidden =")[1].split(";")[0]
    rng = np.random.default_rng(8)
    x, y = _x(rng, 3, 50, n=40, p=0.12), rng.integers(0, 4, 3)
    cpu = snncc.compile(net, batch_size=3, backend="cpu", rule=rule)
    keys = ["hidden", "lif", "output.v"]
    assert_bit_identical(same_in_every_order(lambda: gpu.run(x, record=keys)), cpu.run(x, keys))
    g_cpu, g_gpu = cpu.gradients(x, y), gpu.gradients(x, y)
    for k in g_cpu:
        scale = np.abs(g_cpu[k]).max()
        assert scale > 0 and np.abs(g_gpu[k] - g_cpu[k]).max() / scale < 1e-5, k


def test_emulated_gradients_without_batch_parts_match_the_cpu(cuda_emulator):
    """Capacity 1: every weight-gradient kernel writes its gradient directly (no sum_parts_*)."""
    rng = np.random.default_rng(9)
    x, y = _x(rng, 3, 70), rng.integers(0, 5, 3)
    rule = snncc.rules.EProp(readout="output", c_reg=0.05)
    cpu = snncc.compile(_train_net(), batch_size=3, backend="cpu", rule=rule)
    gpu = snncc.compile(_train_net(), batch_size=1, backend="cuda", rule=rule)
    assert not any(launch.name.startswith("sum_parts") for launch in gpu.plan.manifest["gradient"])
    g_cpu, g_gpu = cpu.gradients(x, y), same_in_every_order(lambda: gpu.gradients(x, y))
    for k in g_cpu:
        scale = np.abs(g_cpu[k]).max()
        assert scale > 0 and np.abs(g_gpu[k] - g_cpu[k]).max() / scale < 1e-5, k


def test_emulated_inputs_are_uploaded_ahead_and_train_the_same(cuda_emulator, monkeypatch):
    """fit: each device's next chunk (and the next batch's first) is staged through pinned
    memory on a copy stream while the current one runs; the weights are the CPU's."""
    from snncc.backends.cuda import CudaProgram

    flags = []
    swap = CudaProgram.set_inputs

    def spy(self, inputs, staged=False):
        flags.append(staged)
        return swap(self, inputs, staged)

    monkeypatch.setattr(CudaProgram, "set_inputs", spy)
    rng = np.random.default_rng(10)
    x, y = _x(rng, 16, 40), rng.integers(0, 5, 16)
    rule = snncc.rules.EProp(readout="output", c_reg=0.01)
    opt = snncc.optim.Adam(1e-2)
    cpu = snncc.compile(_train_net(), batch_size=8, backend="cpu", rule=rule, optimizer=opt)
    gpu = snncc.compile(
        _train_net(), batch_size=2, backend="cuda", devices=[0, 1], rule=rule, optimizer=opt
    )
    cpu.fit((x, y), epochs=1, batch_size=8, progress=False)
    gpu.fit((x, y), epochs=1, batch_size=8, progress=False)
    # 2 batches of 8, 4 per device in chunks of 2: only the very first chunks are not staged
    assert flags == [False, False] + [True] * 6
    for k in ("in_hid", "hid_hid", "hid_out"):
        np.testing.assert_allclose(gpu.weights[k], cpu.weights[k], rtol=1e-5, atol=1e-6)


def test_the_cpu_converts_no_batch_ahead(monkeypatch):
    """The CPU's programs stage nothing, so fit converts each batch once, when it runs."""
    from snncc.runtime.model import CompiledModel

    calls = []
    convert = CompiledModel.convert_inputs

    def spy(self, x, n_steps=None):
        calls.append(len(x))
        return convert(self, x, n_steps)

    monkeypatch.setattr(CompiledModel, "convert_inputs", spy)
    rng = np.random.default_rng(11)
    x, y = _x(rng, 12, 20), rng.integers(0, 5, 12)
    rule = snncc.rules.EProp(readout="output")
    model = snncc.compile(_train_net(), batch_size=4, rule=rule, optimizer=snncc.optim.Adam(1e-3))
    model.fit((x, y), epochs=1, batch_size=4, progress=False)
    assert calls == [4, 4, 4]


def test_emulated_nccl_sums_the_devices_gradients_where_they_live(emulated_nccl, monkeypatch):
    """SNNCC_NCCL=1, two devices, one chunk each: the gradients are all-reduced on the devices
    (the stand-in for cupy's NCCL), the readout's as soon as the pass marks them ready, before
    the hidden backward is launched; gradients and Adam steps equal the CPU's."""
    from snncc.backends.cuda import CudaProgram

    events = []
    launch = CudaProgram._launch

    def spy(self, what, B, T):
        events.append((self.device.ordinal, what.name))
        return launch(self, what, B, T)

    monkeypatch.setattr(CudaProgram, "_launch", spy)
    rng = np.random.default_rng(12)
    x, y = _x(rng, 7, 50), rng.integers(0, 5, 7)
    rule = snncc.rules.EProp(readout="output", c_reg=0.01)
    opt = snncc.optim.Adam(1e-2)
    cpu = snncc.compile(_train_net(), batch_size=7, backend="cpu", rule=rule, optimizer=opt)
    two = snncc.compile(
        _train_net(), batch_size=4, backend="cuda", devices=[0, 1], rule=rule, optimizer=opt
    )
    reducer = two._engine._device_reducer()
    assert reducer is not None
    collector = reducer.collector

    def watched(device):
        told = collector(device)

        def on_ready(names, event):
            events.append((device, names))  # after which launch the reducer was told
            told(names, event)

        return on_ready

    monkeypatch.setattr(reducer, "collector", watched)
    g_cpu, g_two = cpu.gradients(x, y), two.gradients(x, y)
    for k in g_cpu:
        assert np.abs(g_two[k] - g_cpu[k]).max() / np.abs(g_cpu[k]).max() < 1e-5, k
    # two groups per pass (the readout's, then the hidden ones), one all-reduce per buffer
    sizes = [size for _, _, size in two.training.params]
    readout_sizes = [64 * 5, 5]
    assert [c for (c,) in reducer.comms[0].clique.log] == readout_sizes + sorted(
        set(sizes) - set(readout_sizes), key=sizes.index
    )
    # each device told the reducer of the readout's gradients before its hidden backward
    # launched, and of the others after its last launch
    readout = ("grad_hid_out", "grad_output_bias")
    for dev in (0, 1):
        order = [what for d, what in events if d == dev]
        told = order.index(readout)
        assert order[told - 1] == "reduce_output" and order[told + 1] == "backward_hidden"
        assert order[-1] == ("grad_in_hid", "grad_hid_hid") and order[-2] == "sum_parts_hidden"
    for _ in range(2):
        cpu.train_batch(x, y)
        two.train_batch(x, y)
    for k in ("in_hid", "hid_hid", "hid_out"):
        np.testing.assert_allclose(two.weights[k], cpu.weights[k], rtol=1e-5, atol=1e-6)
        assert_bit_identical(two.programs[1].get(f"{k}_w"), two.programs[0].get(f"{k}_w"), k)
