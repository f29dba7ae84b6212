// cuda_emu.h: compile generated CUDA as C++17 with g++ and run it on the CPU (snncc tests).
//
// TEST INFRASTRUCTURE ONLY: nothing this emulator measures is a timing or a GPU result.
//
// Included first (-include) into one translation unit made of the .cu source (its
// `extern __shared__` turned into plain `extern`, line numbers kept) and a launch table that
// tests/cudaemu/build.py appends. The threads of a block run as fibers on one OS thread, so
// __syncthreads is a real barrier and warp collectives really exchange values between lanes;
// blocks run one after another. The order of blocks and of the threads within each barrier
// round is forward, reversed or shuffled per launch (a race shows up as different bits), and
// every misuse of a barrier or a warp collective is reported, naming kernel and call site.
// A thread only yields at a barrier or a warp collective: atomics are plain read-modify-writes
// and a thread spinning on another thread's write never returns (document, never rely on it).
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(SNNCC_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(SNNCC_EMU_UCONTEXT) || !defined(__x86_64__)
#define SNNCC_EMU_USE_UCONTEXT 1  // portable but slow: a signal-mask syscall per switch
#include <ucontext.h>
#endif

// ----------------------------------------------------------------------------- keywords
#define __global__
#define __device__
#define __host__
#define __forceinline__ __attribute__((always_inline)) inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
// One instance per block: blocks run one after another, so a static is exactly per block.
// build.py finds these statics in the built library and fills them with 0xFF bytes before
// every block, as unwritten shared memory is garbage on a GPU.
#define __shared__ static

// ----------------------------------------------------------------------------- vector types
struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return {x, y, z}; }
};
struct __attribute__((aligned(8))) float2 {
    float x, y;
};
struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
};
struct __attribute__((aligned(8))) int2 {
    int x, y;
};
struct __attribute__((aligned(16))) int4 {
    int x, y, z, w;
};
struct __attribute__((aligned(8))) uint2 {
    unsigned x, y;
};
struct __attribute__((aligned(16))) uint4 {
    unsigned x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// ----------------------------------------------------------------------------- built-ins
// Set by the scheduler before it resumes a thread; a thread only ever sees its own values.
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
constexpr int warpSize = 32;

// ----------------------------------------------------------------------------- runtime
namespace snncc_emu {

#if defined(SNNCC_EMU_ASAN)
constexpr size_t kStackBytes = 1u << 20;  // instrumented frames are larger
#else
constexpr size_t kStackBytes = 256u << 10;
#endif
constexpr size_t kMaxDynamicShared = 232448;  // sm_90: 227 KiB opt-in per block

enum class Wait : unsigned char { ready, block, warp, exited };
enum class Op : unsigned char {
    syncthreads,
    syncthreads_count,
    syncthreads_and,
    syncthreads_or,
    syncwarp,
    shfl,
    shfl_up,
    shfl_down,
    shfl_xor,
    ballot,
    any,
    all,
};

inline const char* op_name(Op op) {
    switch (op) {
        case Op::syncthreads: return "__syncthreads()";
        case Op::syncthreads_count: return "__syncthreads_count()";
        case Op::syncthreads_and: return "__syncthreads_and()";
        case Op::syncthreads_or: return "__syncthreads_or()";
        case Op::syncwarp: return "__syncwarp()";
        case Op::shfl: return "__shfl_sync()";
        case Op::shfl_up: return "__shfl_up_sync()";
        case Op::shfl_down: return "__shfl_down_sync()";
        case Op::shfl_xor: return "__shfl_xor_sync()";
        case Op::ballot: return "__ballot_sync()";
        case Op::any: return "__any_sync()";
        case Op::all: return "__all_sync()";
    }
    return "?";
}

struct Site {
    const char* file;
    unsigned line;
};

inline bool same_site(const Site& a, const Site& b) {
    return a.line == b.line && strcmp(a.file, b.file) == 0;
}

struct Fiber {
    void* sp = nullptr;  // saved stack pointer while suspended
    Wait wait = Wait::ready;
    Op op = Op::syncthreads;
    Site site{"", 0};
    unsigned mask = 0;  // warp collectives: the lanes named
    int lane_arg = 0;   // shuffles: source lane, delta or lane mask
    int width = 32;
    int predicate = 0;
    unsigned long long value = 0, result = 0;
    uint3 index{0, 0, 0};
#if defined(SNNCC_EMU_USE_UCONTEXT)
    ucontext_t context;
#endif
#if defined(SNNCC_EMU_ASAN)
    void* fake_stack = nullptr;
#endif
};

// One __global__ function of the module; build.py reads these through ctypes.
struct KernelEntry {
    const char* name;
    void (*invoke)(const unsigned char* args);
    unsigned n_params;
    const char* kinds;  // per parameter: P pointer, i signed, u unsigned, f floating, S other
    const unsigned* sizes;
    const unsigned* offsets;
    unsigned args_size;
};

// Mirrored by build.LaunchConfig.
struct LaunchConfig {
    unsigned grid[3], block[3];
    unsigned long long shared_bytes;
    int order;  // 0 forward, 1 reverse, 2 shuffle
    unsigned long long seed;
};

struct Runtime {
    std::vector<Fiber> fibers;
    std::vector<unsigned> runnable;
    std::vector<unsigned> live;  // per warp: lanes not exited when this barrier round began
    unsigned char* stacks = nullptr;  // fibers.size() stacks, each above a guard page
    size_t stack_slots = 0;
    void* scheduler_sp = nullptr;
#if defined(SNNCC_EMU_USE_UCONTEXT)
    ucontext_t scheduler_context;
#endif
#if defined(SNNCC_EMU_ASAN)
    const void* scheduler_stack_bottom = nullptr;
    size_t scheduler_stack_size = 0;
    void* scheduler_fake_stack = nullptr;
    bool stacks_dirty = false;  // an aborted launch left poisoned frames behind
#endif
    unsigned threads = 0, exited = 0, current = 0;
    int order = 0;
    unsigned long long rng = 0;
    const KernelEntry* kernel = nullptr;
    const unsigned char* args = nullptr;
    unsigned long long shared_bytes = 0;
    bool failed = false;
    std::string message;
    std::vector<std::pair<unsigned char*, size_t>> shared_statics;
};

inline Runtime rt;

inline size_t page_size() { return (size_t)sysconf(_SC_PAGESIZE); }
inline size_t slot_bytes() { return kStackBytes + page_size(); }
inline unsigned char* stack_bottom(unsigned t) { return rt.stacks + t * slot_bytes() + page_size(); }

inline unsigned long long next_random() {  // splitmix64: the shuffles are seeded, reproducible
    unsigned long long z = (rt.rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

template <class T>
void apply_order(std::vector<T>& items) {
    if (rt.order == 1) {
        std::reverse(items.begin(), items.end());
    } else if (rt.order == 2) {
        for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[next_random() % i]);
    }
}

}  // namespace snncc_emu

extern "C" {
void snncc_emu_fiber_main();
#if !defined(SNNCC_EMU_USE_UCONTEXT)
void snncc_emu_switch(void** save_sp, void* next_sp);
void snncc_emu_fiber_entry();
#endif
}

#if !defined(SNNCC_EMU_USE_UCONTEXT)
// Saves the callee-saved registers on the current stack, stores its pointer, switches stacks
// and restores the registers saved there (the System V x86-64 ABI needs nothing else).
asm(R"(
    .text
    .p2align 4
    .globl snncc_emu_switch
    .hidden snncc_emu_switch
    .type snncc_emu_switch, @function
snncc_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size snncc_emu_switch, .-snncc_emu_switch

    .p2align 4
    .globl snncc_emu_fiber_entry
    .hidden snncc_emu_fiber_entry
    .type snncc_emu_fiber_entry, @function
snncc_emu_fiber_entry:
    call snncc_emu_fiber_main
    ud2
    .size snncc_emu_fiber_entry, .-snncc_emu_fiber_entry
)");
#endif

namespace snncc_emu {

// Scheduler -> thread t, until the thread waits or exits.
inline void enter(unsigned t) {
    Fiber& f = rt.fibers[t];
    rt.current = t;
    threadIdx = f.index;
#if defined(SNNCC_EMU_ASAN)
    __sanitizer_start_switch_fiber(&rt.scheduler_fake_stack, stack_bottom(t), kStackBytes);
#endif
#if defined(SNNCC_EMU_USE_UCONTEXT)
    swapcontext(&rt.scheduler_context, &f.context);
#else
    snncc_emu_switch(&rt.scheduler_sp, f.sp);
#endif
#if defined(SNNCC_EMU_ASAN)
    __sanitizer_finish_switch_fiber(rt.scheduler_fake_stack, nullptr, nullptr);
#endif
}

// Current thread -> scheduler. A finished thread is never resumed.
inline void leave(bool finished) {
    Fiber& f = rt.fibers[rt.current];
#if defined(SNNCC_EMU_ASAN)
    __sanitizer_start_switch_fiber(finished ? nullptr : &f.fake_stack, rt.scheduler_stack_bottom,
                                   rt.scheduler_stack_size);
#else
    (void)finished;
#endif
#if defined(SNNCC_EMU_USE_UCONTEXT)
    swapcontext(&f.context, &rt.scheduler_context);
#else
    snncc_emu_switch(&f.sp, rt.scheduler_sp);
#endif
#if defined(SNNCC_EMU_ASAN)
    __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
}

// A fresh fiber for thread t, which starts in snncc_emu_fiber_main.
inline void prepare(unsigned t) {
    Fiber& f = rt.fibers[t];
#if defined(SNNCC_EMU_USE_UCONTEXT)
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stack_bottom(t);
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = nullptr;
    makecontext(&f.context, snncc_emu_fiber_main, 0);
#else
    // r15 r14 r13 r12 rbx rbp, then the return address: the entry starts 16-byte aligned
    void** sp = (void**)(stack_bottom(t) + kStackBytes) - 9;
    for (int k = 0; k < 6; ++k) sp[k] = nullptr;
    sp[6] = (void*)&snncc_emu_fiber_entry;
    f.sp = sp;
#endif
}

inline std::string where(const Site& s) {
    const char* slash = strrchr(s.file, '/');
    return std::string(slash ? slash + 1 : s.file) + ":" + std::to_string(s.line);
}

inline std::string block_name() {
    return "kernel '" + std::string(rt.kernel->name) + "' block (" + std::to_string(blockIdx.x) +
           "," + std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) + ")";
}

// "3 threads (0-1, 7)"
inline std::string thread_set(const std::vector<unsigned>& ids) {
    std::string out = std::to_string(ids.size()) + (ids.size() == 1 ? " thread (" : " threads (");
    for (size_t i = 0; i < ids.size();) {
        size_t j = i;
        while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
        if (i) out += ", ";
        out += std::to_string(ids[i]);
        if (j > i) out += "-" + std::to_string(ids[j]);
        i = j + 1;
    }
    return out + ")";
}

inline std::string hex(unsigned v) {
    char buf[16];
    snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

inline void fail(const std::string& message) {
    if (!rt.failed) rt.message = block_name() + ": " + message;
    rt.failed = true;
}

// A fault inside a thread: report it and abandon the launch (the thread is never resumed).
[[noreturn]] inline void fail_here(const std::string& message) {
    fail("thread " + std::to_string(rt.current) + ": " + message);
    leave(true);
    __builtin_unreachable();
}

inline Fiber& self() { return rt.fibers[rt.current]; }

inline unsigned long long block_wait(Op op, int predicate, Site site) {
    Fiber& f = self();
    f.wait = Wait::block;
    f.op = op;
    f.predicate = predicate;
    f.site = site;
    leave(false);
    return f.result;
}

inline unsigned lane_of(unsigned t) { return t & 31u; }

inline unsigned long long warp_wait(Op op, unsigned mask, unsigned long long value, int lane_arg,
                                    int width, int predicate, Site site) {
    Fiber& f = self();
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
        fail_here(std::string(op_name(op)) + " at " + where(site) + ": width " +
                  std::to_string(width) + " is not a power of two in 1..32");
    if (!(mask >> lane_of(rt.current) & 1u))
        fail_here(std::string(op_name(op)) + " at " + where(site) + ": mask " + hex(mask) +
                  " leaves out the calling lane " + std::to_string(lane_of(rt.current)));
    f.wait = Wait::warp;
    f.op = op;
    f.mask = mask;
    f.value = value;
    f.lane_arg = lane_arg;
    f.width = width;
    f.predicate = predicate;
    f.site = site;
    leave(false);
    return f.result;
}

// The lane whose value a shuffle of `lane` returns (itself when out of its segment).
inline unsigned shuffle_source(const Fiber& f, unsigned lane) {
    const unsigned w = (unsigned)f.width, base = lane & ~(w - 1);
    switch (f.op) {
        case Op::shfl: return base + ((unsigned)f.lane_arg & (w - 1));
        case Op::shfl_up:
            return (lane - base) >= (unsigned)f.lane_arg ? lane - (unsigned)f.lane_arg : lane;
        case Op::shfl_down:
            return (lane - base) + (unsigned)f.lane_arg < w ? lane + (unsigned)f.lane_arg : lane;
        default: {  // xor: a partner past the end of the segment reads itself
            const unsigned src = lane ^ (unsigned)f.lane_arg;
            return src < base + w ? src : lane;
        }
    }
}

// Complete every warp collective whose lanes have all arrived; false when none was waiting.
inline bool resolve_warps() {
    bool progressed = false;
    for (unsigned base = 0; base < rt.threads; base += 32) {
        const unsigned lanes = std::min(32u, rt.threads - base);
        for (unsigned l = 0; l < lanes; ++l) {
            const Fiber& f = rt.fibers[base + l];
            if (f.wait != Wait::warp) continue;
            auto here = [&] {
                return "warp " + std::to_string(base / 32) + " lane " + std::to_string(l) +
                       " (thread " + std::to_string(base + l) + ") calls " + op_name(f.op) +
                       " at " + where(f.site) + " with mask " + hex(f.mask);
            };
            unsigned arrived = 0, ballot = 0;
            for (unsigned k = 0; k < lanes; ++k) {
                if (!(f.mask >> k & 1u)) continue;
                const Fiber& g = rt.fibers[base + k];
                if (g.wait == Wait::exited) continue;  // exited lanes may be named in a mask
                if (g.wait == Wait::block) {
                    fail(here() + ", but lane " + std::to_string(k) + " waits at " + op_name(g.op) +
                         " " + where(g.site) + " (every lane in the mask must reach it)");
                    return false;
                }
                if (g.op != f.op || g.mask != f.mask) {
                    fail(here() + ", but lane " + std::to_string(k) + " calls " + op_name(g.op) +
                         " at " + where(g.site) + " with mask " + hex(g.mask));
                    return false;
                }
                arrived |= 1u << k;
                if (g.predicate) ballot |= 1u << k;
            }
            for (unsigned k = 0; k < lanes; ++k) {
                if (!(arrived >> k & 1u)) continue;
                Fiber& g = rt.fibers[base + k];
                switch (g.op) {
                    case Op::ballot: g.result = ballot; break;
                    case Op::any: g.result = ballot != 0; break;
                    case Op::all: g.result = ballot == arrived; break;
                    case Op::syncwarp: g.result = 0; break;
                    default: {
                        const unsigned src = shuffle_source(g, k);
                        if (src != k && !(src < 32 && (arrived >> src & 1u))) {
                            fail("warp " + std::to_string(base / 32) + " lane " +
                                 std::to_string(k) + ": " + op_name(g.op) + " at " +
                                 where(g.site) + " reads lane " + std::to_string(src) +
                                 ", which is not taking part (outside the mask " + hex(g.mask) +
                                 ", exited or past the end of the block)");
                            return false;
                        }
                        g.result = rt.fibers[base + src].value;
                    }
                }
            }
            for (unsigned k = 0; k < lanes; ++k)
                if (arrived >> k & 1u) rt.fibers[base + k].wait = Wait::ready;
            progressed = true;
        }
    }
    return progressed;
}

// Every live thread waits at a block barrier: release them, or report the divergence.
inline void resolve_block() {
    std::vector<unsigned> waiting, exited, elsewhere;
    const Fiber* first = nullptr;
    for (unsigned t = 0; t < rt.threads; ++t) {
        const Fiber& f = rt.fibers[t];
        if (f.wait == Wait::exited) {
            exited.push_back(t);
        } else if (!first || (f.op == first->op && same_site(f.site, first->site))) {
            first = first ? first : &f;
            waiting.push_back(t);
        } else {
            elsewhere.push_back(t);
        }
    }
    auto at = [&] { return std::string(op_name(first->op)) + " " + where(first->site); };
    if (!elsewhere.empty()) {
        const Fiber& other = rt.fibers[elsewhere.front()];
        std::vector<unsigned> same;
        for (unsigned t : elsewhere)
            if (rt.fibers[t].op == other.op && same_site(rt.fibers[t].site, other.site))
                same.push_back(t);
        fail("threads wait at different barriers: " + thread_set(waiting) + " at " + at() + ", " +
             thread_set(same) + " at " + op_name(other.op) + " " + where(other.site) +
             " (every thread of a block must reach the same __syncthreads)");
        return;
    }
    if (!exited.empty()) {
        fail(thread_set(exited) + " have exited while " + thread_set(waiting) + " wait at " + at() +
             " (a thread that returns early must not skip a barrier the others reach)");
        return;
    }
    unsigned count = 0;
    for (unsigned t : waiting) count += rt.fibers[t].predicate != 0;
    for (unsigned t : waiting) {
        Fiber& f = rt.fibers[t];
        switch (f.op) {
            case Op::syncthreads_count: f.result = count; break;
            case Op::syncthreads_and: f.result = count == waiting.size(); break;
            case Op::syncthreads_or: f.result = count != 0; break;
            default: f.result = 0;
        }
        f.wait = Wait::ready;
    }
}

// 0xFF bytes: NaN floats, -1 ints. Not instrumented: ASan pads statics with redzones.
__attribute__((no_sanitize_address)) inline void fill_garbage(unsigned char* p, size_t n) {
    volatile unsigned char* q = p;
    for (size_t i = 0; i < n; ++i) q[i] = 0xFF;
}

}  // namespace snncc_emu

extern "C" {
alignas(16) unsigned char snncc_emu_dynamic_shared[snncc_emu::kMaxDynamicShared];
}

// `extern __shared__ T name[];` names the block's dynamic shared memory (build.py adds one per name).
#define SNNCC_EMU_DYNAMIC_SHARED_NAME(name)                                                   \
    asm(".globl " #name "\n\t.hidden " #name "\n\t.set " #name ", snncc_emu_dynamic_shared");

namespace snncc_emu {

inline bool run_block() {
    fill_garbage(snncc_emu_dynamic_shared, rt.shared_bytes);
    for (auto& s : rt.shared_statics) fill_garbage(s.first, s.second);
    for (unsigned t = 0; t < rt.threads; ++t) {
        Fiber& f = rt.fibers[t];
        f.wait = Wait::ready;
        f.index = {t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
        prepare(t);
    }
    rt.exited = 0;
    while (true) {
        rt.runnable.clear();
        rt.live.assign((rt.threads + 31) / 32, 0u);
        for (unsigned t = 0; t < rt.threads; ++t) {
            if (rt.fibers[t].wait == Wait::ready) rt.runnable.push_back(t);
            if (rt.fibers[t].wait != Wait::exited) rt.live[t / 32] |= 1u << (t & 31u);
        }
        apply_order(rt.runnable);  // shuffled anew every barrier round
        for (unsigned t : rt.runnable) {
            enter(t);
            if (rt.failed) return false;
        }
        if (rt.exited == rt.threads) return true;
        if (resolve_warps()) continue;
        if (rt.failed) return false;
        resolve_block();
        if (rt.failed) return false;
    }
}

// Room for n fibers: stacks over guard pages, kept between launches.
inline bool reserve_fibers(unsigned n) {
    if (n <= rt.stack_slots) return true;
    if (rt.stacks) munmap(rt.stacks, rt.stack_slots * slot_bytes());
    void* mem = mmap(nullptr, n * slot_bytes(), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        rt.stacks = nullptr;
        rt.stack_slots = 0;
        return false;
    }
    rt.stacks = (unsigned char*)mem;
    rt.stack_slots = n;
    for (unsigned t = 0; t < n; ++t) mprotect(rt.stacks + t * slot_bytes(), page_size(), PROT_NONE);
    rt.fibers.assign(n, Fiber{});
#if defined(SNNCC_EMU_ASAN)
    rt.stacks_dirty = true;  // the new mapping may hold shadow left by an older one
#endif
    return true;
}

// ----------------------------------------------------------------------------- launch table
template <class T>
constexpr char param_kind() {
    if (std::is_pointer<T>::value) return 'P';
    if (std::is_floating_point<T>::value) return 'f';
    if (std::is_integral<T>::value) return std::is_signed<T>::value ? 'i' : 'u';
    return 'S';
}

template <unsigned N>
struct Layout {
    unsigned offsets[N + 1];
    unsigned total;
};

// Kernel parameters as the CUDA driver lays them out in its buffer: each at its alignment.
template <class... A>
constexpr Layout<sizeof...(A)> layout() {
    Layout<sizeof...(A)> out{};
    constexpr unsigned size[] = {(unsigned)sizeof(A)..., 0u};
    constexpr unsigned align[] = {(unsigned)alignof(A)..., 1u};
    unsigned at = 0;
    for (unsigned i = 0; i < sizeof...(A); ++i) {
        at = (at + align[i] - 1) / align[i] * align[i];
        out.offsets[i] = at;
        at += size[i];
    }
    out.total = at;
    return out;
}

template <class T>
T load_param(const unsigned char* p) {
    T v;
    memcpy((void*)&v, p, sizeof(T));
    return v;
}

template <class F>
struct Params;

template <class... A>
struct Params<void (*)(A...)> {
    static constexpr unsigned count = sizeof...(A);
    static constexpr char kinds[] = {param_kind<A>()..., '\0'};
    static constexpr unsigned sizes[] = {(unsigned)sizeof(A)..., 0u};
    static constexpr Layout<sizeof...(A)> placement = layout<A...>();

    template <auto Kernel, size_t... I>
    static void call(const unsigned char* args, std::index_sequence<I...>) {
        Kernel(load_param<A>(args + placement.offsets[I])...);
    }
};

template <auto Kernel>
void invoke(const unsigned char* args) {
    using P = Params<decltype(Kernel)>;
    P::template call<Kernel>(args, std::make_index_sequence<P::count>{});
}

}  // namespace snncc_emu

#define SNNCC_EMU_KERNEL(f)                                                                   \
    snncc_emu::KernelEntry {                                                                  \
        #f, &snncc_emu::invoke<&f>, snncc_emu::Params<decltype(&f)>::count,                   \
            snncc_emu::Params<decltype(&f)>::kinds, snncc_emu::Params<decltype(&f)>::sizes,   \
            snncc_emu::Params<decltype(&f)>::placement.offsets,                                   \
            snncc_emu::Params<decltype(&f)>::placement.total                                      \
    }

extern const snncc_emu::KernelEntry snncc_emu_kernels[];  // appended by build.py

extern "C" {

void snncc_emu_fiber_main() {
    using namespace snncc_emu;
#if defined(SNNCC_EMU_ASAN)
    __sanitizer_finish_switch_fiber(nullptr, &rt.scheduler_stack_bottom, &rt.scheduler_stack_size);
#endif
    rt.kernel->invoke(rt.args);
    self().wait = Wait::exited;
    ++rt.exited;
    leave(true);
    __builtin_unreachable();
}

__attribute__((visibility("default"))) const snncc_emu::KernelEntry* snncc_emu_kernel(unsigned i) {
    return &snncc_emu_kernels[i];
}

__attribute__((visibility("default"))) const char* snncc_emu_error() {
    return snncc_emu::rt.message.c_str();
}

// Where build.py found the module's static __shared__ variables (refilled before each block).
__attribute__((visibility("default"))) void snncc_emu_set_shared_statics(
    const unsigned long long* addresses, const unsigned long long* sizes, unsigned n) {
    snncc_emu::rt.shared_statics.clear();
    for (unsigned i = 0; i < n; ++i)
        snncc_emu::rt.shared_statics.emplace_back((unsigned char*)addresses[i], (size_t)sizes[i]);
}

// Runs every block of one launch; 0, or 1 with snncc_emu_error() saying why.
__attribute__((visibility("default"))) int snncc_emu_launch(unsigned kernel,
                                                            const snncc_emu::LaunchConfig* cfg,
                                                            const unsigned char* args) {
    using namespace snncc_emu;
    rt.failed = false;
    rt.message.clear();
    rt.kernel = &snncc_emu_kernels[kernel];
    rt.args = args;
    rt.order = cfg->order;
    rt.rng = cfg->seed;
    rt.shared_bytes = cfg->shared_bytes;
    gridDim = dim3(cfg->grid[0], cfg->grid[1], cfg->grid[2]);
    blockDim = dim3(cfg->block[0], cfg->block[1], cfg->block[2]);
    rt.threads = blockDim.x * blockDim.y * blockDim.z;
    if (!reserve_fibers(rt.threads)) {
        rt.message = "cannot map the stacks of " + std::to_string(rt.threads) + " threads";
        return 1;
    }
#if defined(SNNCC_EMU_ASAN)
    if (rt.stacks_dirty) ASAN_UNPOISON_MEMORY_REGION(rt.stacks, rt.stack_slots * slot_bytes());
    rt.stacks_dirty = false;
    ASAN_UNPOISON_MEMORY_REGION(snncc_emu_dynamic_shared, kMaxDynamicShared);
    ASAN_POISON_MEMORY_REGION(snncc_emu_dynamic_shared + rt.shared_bytes,
                              kMaxDynamicShared - rt.shared_bytes);
#endif
    std::vector<unsigned> blocks(gridDim.x * gridDim.y * gridDim.z);
    for (unsigned b = 0; b < blocks.size(); ++b) blocks[b] = b;
    apply_order(blocks);
    for (unsigned b : blocks) {
        blockIdx = {b % gridDim.x, (b / gridDim.x) % gridDim.y, b / (gridDim.x * gridDim.y)};
        if (!run_block()) {
#if defined(SNNCC_EMU_ASAN)
            rt.stacks_dirty = true;
#endif
            return 1;
        }
    }
    return 0;
}

}  // extern "C"

// ----------------------------------------------------------------------------- barriers
// The call site, from default arguments (GCC 12 has no __builtin_COLUMN: file and line).
#define SNNCC_EMU_SITE const char *file_ = __builtin_FILE(), unsigned line_ = __builtin_LINE()
#define SNNCC_EMU_HERE snncc_emu::Site{file_, line_}

inline void __syncthreads(SNNCC_EMU_SITE) {
    snncc_emu::block_wait(snncc_emu::Op::syncthreads, 0, SNNCC_EMU_HERE);
}
inline int __syncthreads_count(int predicate, SNNCC_EMU_SITE) {
    return (int)snncc_emu::block_wait(snncc_emu::Op::syncthreads_count, predicate, SNNCC_EMU_HERE);
}
inline int __syncthreads_and(int predicate, SNNCC_EMU_SITE) {
    return (int)snncc_emu::block_wait(snncc_emu::Op::syncthreads_and, predicate, SNNCC_EMU_HERE);
}
inline int __syncthreads_or(int predicate, SNNCC_EMU_SITE) {
    return (int)snncc_emu::block_wait(snncc_emu::Op::syncthreads_or, predicate, SNNCC_EMU_HERE);
}

// ----------------------------------------------------------------------------- warp collectives
inline void __syncwarp(unsigned mask = 0xffffffffu, SNNCC_EMU_SITE) {
    snncc_emu::warp_wait(snncc_emu::Op::syncwarp, mask, 0, 0, 32, 0, SNNCC_EMU_HERE);
}
inline unsigned __ballot_sync(unsigned mask, int predicate, SNNCC_EMU_SITE) {
    return (unsigned)snncc_emu::warp_wait(snncc_emu::Op::ballot, mask, 0, 0, 32, predicate,
                                          SNNCC_EMU_HERE);
}
inline int __any_sync(unsigned mask, int predicate, SNNCC_EMU_SITE) {
    return (int)snncc_emu::warp_wait(snncc_emu::Op::any, mask, 0, 0, 32, predicate,
                                     SNNCC_EMU_HERE);
}
inline int __all_sync(unsigned mask, int predicate, SNNCC_EMU_SITE) {
    return (int)snncc_emu::warp_wait(snncc_emu::Op::all, mask, 0, 0, 32, predicate,
                                     SNNCC_EMU_HERE);
}
// The lanes of the calling warp that had not exited when the current barrier round began
// (lanes run one after another between barriers: one finishing first has not "left" yet).
inline unsigned __activemask() { return snncc_emu::rt.live[snncc_emu::rt.current / 32]; }

namespace snncc_emu {
template <class T>
T shuffle(Op op, unsigned mask, T var, int lane_arg, int width, const Site& site) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8,
                  "warp shuffles move 4- or 8-byte values");
    unsigned long long bits = 0;
    memcpy(&bits, &var, sizeof(T));
    bits = warp_wait(op, mask, bits, lane_arg, width, 0, site);
    memcpy(&var, &bits, sizeof(T));
    return var;
}
}  // namespace snncc_emu

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize, SNNCC_EMU_SITE) {
    return snncc_emu::shuffle(snncc_emu::Op::shfl, mask, var, src_lane, width, SNNCC_EMU_HERE);
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize, SNNCC_EMU_SITE) {
    return snncc_emu::shuffle(snncc_emu::Op::shfl_up, mask, var, (int)delta, width,
                              SNNCC_EMU_HERE);
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize, SNNCC_EMU_SITE) {
    return snncc_emu::shuffle(snncc_emu::Op::shfl_down, mask, var, (int)delta, width,
                              SNNCC_EMU_HERE);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize, SNNCC_EMU_SITE) {
    return snncc_emu::shuffle(snncc_emu::Op::shfl_xor, mask, var, lane_mask, width,
                              SNNCC_EMU_HERE);
}

inline void __trap(SNNCC_EMU_SITE) {
    snncc_emu::fail_here(std::string("__trap() at ") + snncc_emu::where(SNNCC_EMU_HERE));
}

// ----------------------------------------------------------------------------- atomics
// One thread runs at a time and never between the read and the write: plain updates are atomic.
#define SNNCC_EMU_ATOMIC(name, T, update)                                                     \
    inline T name(T* address, T val) {                                                        \
        const T old = *address;                                                               \
        *address = (update);                                                                  \
        return old;                                                                           \
    }
SNNCC_EMU_ATOMIC(atomicAdd, float, old + val)
SNNCC_EMU_ATOMIC(atomicAdd, int, old + val)
SNNCC_EMU_ATOMIC(atomicAdd, unsigned, old + val)
SNNCC_EMU_ATOMIC(atomicAdd, unsigned long long, old + val)
SNNCC_EMU_ATOMIC(atomicSub, int, old - val)
SNNCC_EMU_ATOMIC(atomicSub, unsigned, old - val)
SNNCC_EMU_ATOMIC(atomicExch, int, val)
SNNCC_EMU_ATOMIC(atomicExch, unsigned, val)
SNNCC_EMU_ATOMIC(atomicExch, unsigned long long, val)
SNNCC_EMU_ATOMIC(atomicExch, float, val)
SNNCC_EMU_ATOMIC(atomicMin, int, val < old ? val : old)
SNNCC_EMU_ATOMIC(atomicMin, unsigned, val < old ? val : old)
SNNCC_EMU_ATOMIC(atomicMin, unsigned long long, val < old ? val : old)
SNNCC_EMU_ATOMIC(atomicMin, long long, val < old ? val : old)
SNNCC_EMU_ATOMIC(atomicMax, int, val > old ? val : old)
SNNCC_EMU_ATOMIC(atomicMax, unsigned, val > old ? val : old)
SNNCC_EMU_ATOMIC(atomicMax, unsigned long long, val > old ? val : old)
SNNCC_EMU_ATOMIC(atomicMax, long long, val > old ? val : old)
SNNCC_EMU_ATOMIC(atomicAnd, int, old & val)
SNNCC_EMU_ATOMIC(atomicAnd, unsigned, old & val)
SNNCC_EMU_ATOMIC(atomicAnd, unsigned long long, old & val)
SNNCC_EMU_ATOMIC(atomicOr, int, old | val)
SNNCC_EMU_ATOMIC(atomicOr, unsigned, old | val)
SNNCC_EMU_ATOMIC(atomicOr, unsigned long long, old | val)
SNNCC_EMU_ATOMIC(atomicXor, int, old ^ val)
SNNCC_EMU_ATOMIC(atomicXor, unsigned, old ^ val)
SNNCC_EMU_ATOMIC(atomicXor, unsigned long long, old ^ val)
SNNCC_EMU_ATOMIC(atomicInc, unsigned, old >= val ? 0u : old + 1u)
SNNCC_EMU_ATOMIC(atomicDec, unsigned, (old == 0u || old > val) ? val : old - 1u)
#undef SNNCC_EMU_ATOMIC

template <class T>
T atomicCAS(T* address, T compare, T val) {
    static_assert(std::is_integral<T>::value, "atomicCAS takes integers");
    const T old = *address;
    if (old == compare) *address = val;
    return old;
}

// ----------------------------------------------------------------------------- bits, memory
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i, x >>= 1) r = (r << 1) | (x & 1u);
    return r;
}
inline unsigned long long __brevll(unsigned long long x) {
    return ((unsigned long long)__brev((unsigned)x) << 32) | __brev((unsigned)(x >> 32));
}
template <class T>
T __ldg(const T* p) {
    return *p;
}

template <class To, class From>
To snncc_emu_bits(From v) {
    static_assert(sizeof(To) == sizeof(From), "a bit cast keeps the size");
    To out;
    memcpy(&out, &v, sizeof out);
    return out;
}
inline int __float_as_int(float x) { return snncc_emu_bits<int>(x); }
inline unsigned __float_as_uint(float x) { return snncc_emu_bits<unsigned>(x); }
inline float __int_as_float(int x) { return snncc_emu_bits<float>(x); }
inline float __uint_as_float(unsigned x) { return snncc_emu_bits<float>(x); }

// One thread runs at a time: fences only have to stop the compiler from moving memory accesses.
inline void __threadfence() { asm volatile("" ::: "memory"); }
inline void __threadfence_block() { asm volatile("" ::: "memory"); }
inline void __threadfence_system() { asm volatile("" ::: "memory"); }

// A monotonic counter, never a timing of anything a GPU would do.
inline long long clock64() {
    return std::chrono::steady_clock::now().time_since_epoch().count();
}

// ----------------------------------------------------------------------------- maths
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return fmaxf(a, b); }
inline float rsqrtf(float x) { return 1.0F / sqrtf(x); }
inline float __saturatef(float x) { return x < 0.0F ? 0.0F : (x > 1.0F ? 1.0F : x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
