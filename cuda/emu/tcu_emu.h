/* tcu_emu.h - host emulator of the CUDA execution model, so that the SAME
 * kernel source (the .cu files of cuda/kernels) compiles with g++ (C++17) and runs on the
 * CPU. Included through tcu_portable.h only when not compiling with nvcc.
 *
 * Model (docs/cuda.md "Host emulator"):
 *  - a launch runs the whole grid before returning (synchronous stream);
 *    blocks are spread over N OS threads (tcu_emu_configure), optionally in a
 *    shuffled order; one OS thread runs one block at a time;
 *  - the threads of a block are cooperating fibers (own 64 KiB stacks with a
 *    guard page, pooled per OS thread; hand-written x86-64 context switch,
 *    ucontext elsewhere). A fiber runs until it reaches __syncthreads (block
 *    barrier), a warp collective (shuffle, ballot, __syncwarp) or its end;
 *  - __shared__ is `thread_local` (block-scope => static): one copy per OS
 *    thread, shared by the fibers of the block it runs; dynamic shared memory
 *    is TCU_EXTERN_SHARED (a per-OS-thread buffer, poisoned with 0xFF bytes at
 *    every block start so reads of unwritten shared memory show up as NaN);
 *  - warp collectives exchange values through a per-warp slot array, with the
 *    PTX shfl lane rules (width segments, out-of-range lanes keep their own
 *    value); lanes of a warp waiting on different kinds of barrier abort;
 *  - atomics are real atomics (blocks run concurrently on OS threads);
 *  - fast-math intrinsics map to libm (__expf -> expf ...).
 * Not emulated: memory spaces (device pointers are host pointers), streams
 * (all work is synchronous), cooperative groups, tensor cores. */
#ifndef TCU_EMU_H
#define TCU_EMU_H
#ifdef __CUDACC__
#error "tcu_emu.h is the host emulator; nvcc builds use the CUDA runtime"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

#include "tcu_emu_ctl.h"

/* ---- vector types, dims, errors, streams ---------------------------------- */
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorLaunchFailure = 719
} cudaError_t;
typedef struct tcu_emu_stream_st *cudaStream_t;

const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError(void);    /* returns and clears the last launch error */
cudaError_t cudaPeekAtLastError(void);

#define warpSize 32

/* ---- qualifiers ----------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ thread_local   /* block scope: implies static; one per OS thread */
#define __constant__
/* dynamic shared memory: `extern __shared__ T name[]` under nvcc */
#define TCU_EXTERN_SHARED(T, name) T *name = reinterpret_cast<T *>(::tcu_emu::dyn_smem())

namespace tcu_emu {

extern thread_local uint3 t_threadIdx;
extern thread_local uint3 t_blockIdx;
extern thread_local dim3 t_blockDim;
extern thread_local dim3 t_gridDim;

void sync_block();              /* __syncthreads */
void sync_warp();               /* __syncwarp and the two phases of every warp collective */
unsigned lane_id();             /* lane of the calling fiber (linear thread id % 32) */
uint64_t *warp_slots();         /* the calling warp's 32 exchange slots */
unsigned warp_live_mask();      /* lanes of the calling warp that exist and have not exited */
void *dyn_smem();               /* this block's dynamic shared memory */

/* Run body(ctx) as every thread of the grid; synchronous. */
cudaError_t launch(void (*body)(void *), void *ctx, dim3 grid, dim3 block, size_t smem, cudaStream_t stream);

/* CUDA semantics: arguments are converted to the kernel's parameter types
 * once, at the launch, and every thread sees that copy. */
template <class... P, class... A>
cudaError_t launch_kernel(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, A &&...a) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel argument count");
    struct Ctx {
        void (*k)(P...);
        std::tuple<std::decay_t<P>...> args;
    } ctx{k, std::tuple<std::decay_t<P>...>(std::forward<A>(a)...)};
    return launch([](void *p) {
        Ctx *c = static_cast<Ctx *>(p);
        std::apply(c->k, c->args);
    }, &ctx, grid, block, smem, stream);
}

/* PTX shfl: mode 0 idx, 1 up, 2 down, 3 bfly; width a power of two <= 32 */
template <class T>
T shfl(T v, int mode, int b, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type over 8 bytes");
    uint64_t *slot = warp_slots();
    unsigned lane = lane_id();
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    slot[lane] = bits;
    sync_warp();
    unsigned seg = (unsigned)(width - 1) & 31u, minl = lane & ~seg, maxl = minl | seg;
    int j;
    bool ok;
    switch (mode) {
    case 0: j = (int)(minl | ((unsigned)b & seg)); ok = true; break;
    case 1: j = (int)lane - b; ok = j >= (int)minl; break;
    case 2: j = (int)lane + b; ok = j <= (int)maxl; break;
    default: j = (int)(lane ^ ((unsigned)b & 31u)); ok = j <= (int)maxl; break;
    }
    T r = v;
    if (ok) memcpy(&r, &slot[j], sizeof(T));
    sync_warp();
    return r;
}

unsigned ballot(int pred);

} // namespace tcu_emu

#define threadIdx (::tcu_emu::t_threadIdx)
#define blockIdx (::tcu_emu::t_blockIdx)
#define blockDim (::tcu_emu::t_blockDim)
#define gridDim (::tcu_emu::t_gridDim)

#define TCU_LAUNCH(kernel, grid, block, smem, stream, ...) \
    ::tcu_emu::launch_kernel((kernel), dim3(grid), dim3(block), (size_t)(smem), (cudaStream_t)(stream), __VA_ARGS__)

/* ---- synchronisation and warp collectives --------------------------------- */
inline void __syncthreads() { ::tcu_emu::sync_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; ::tcu_emu::sync_warp(); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) { (void)mask; return ::tcu_emu::shfl(v, 0, src, width); }
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) { (void)mask; return ::tcu_emu::shfl(v, 1, (int)d, width); }
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) { (void)mask; return ::tcu_emu::shfl(v, 2, (int)d, width); }
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32) { (void)mask; return ::tcu_emu::shfl(v, 3, m, width); }
inline unsigned __ballot_sync(unsigned mask, int pred) { return ::tcu_emu::ballot(pred) & mask; }
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == (mask & ::tcu_emu::warp_live_mask()); }
inline unsigned __activemask() { return ::tcu_emu::warp_live_mask(); }

/* ---- atomics (relaxed, like the device; real atomics across OS threads) --- */
template <class T> inline T tcu_emu_atomic_add(T *a, T v) { return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); }
inline int atomicAdd(int *a, int v) { return tcu_emu_atomic_add(a, v); }
inline unsigned atomicAdd(unsigned *a, unsigned v) { return tcu_emu_atomic_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long *a, unsigned long long v) { return tcu_emu_atomic_add(a, v); }
template <class F, class U> inline F tcu_emu_atomic_fop(F *a, F v, F (*op)(F, F)) {
    static_assert(sizeof(F) == sizeof(U), "size");
    U *p = reinterpret_cast<U *>(a), old = __atomic_load_n(p, __ATOMIC_RELAXED), nw;
    F f;
    do {
        memcpy(&f, &old, sizeof f);
        F r = op(f, v);
        memcpy(&nw, &r, sizeof nw);
    } while (!__atomic_compare_exchange_n(p, &old, nw, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return f;
}
inline float atomicAdd(float *a, float v) { return tcu_emu_atomic_fop<float, uint32_t>(a, v, [](float x, float y) { return x + y; }); }
inline double atomicAdd(double *a, double v) { return tcu_emu_atomic_fop<double, uint64_t>(a, v, [](double x, double y) { return x + y; }); }
inline int atomicSub(int *a, int v) { return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); }
inline int atomicExch(int *a, int v) { return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned *a, unsigned v) { return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); }
inline float atomicExch(float *a, float v) { return tcu_emu_atomic_fop<float, uint32_t>(a, v, [](float, float y) { return y; }); }
template <class T> inline T tcu_emu_atomic_cas(T *a, T cmp, T v) {
    __atomic_compare_exchange_n(a, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;   /* the old value either way */
}
inline int atomicCAS(int *a, int c, int v) { return tcu_emu_atomic_cas(a, c, v); }
inline unsigned atomicCAS(unsigned *a, unsigned c, unsigned v) { return tcu_emu_atomic_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long *a, unsigned long long c, unsigned long long v) { return tcu_emu_atomic_cas(a, c, v); }
template <class T> inline T tcu_emu_atomic_minmax(T *a, T v, bool mx) {
    T old = __atomic_load_n(a, __ATOMIC_RELAXED);
    while ((mx ? v > old : v < old) && !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return old;
}
inline int atomicMax(int *a, int v) { return tcu_emu_atomic_minmax(a, v, true); }
inline unsigned atomicMax(unsigned *a, unsigned v) { return tcu_emu_atomic_minmax(a, v, true); }
inline int atomicMin(int *a, int v) { return tcu_emu_atomic_minmax(a, v, false); }
inline unsigned atomicMin(unsigned *a, unsigned v) { return tcu_emu_atomic_minmax(a, v, false); }

/* ---- math intrinsics -> libm ---------------------------------------------- */
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float exp10f(float x) { return powf(10.0f, x); }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
inline int __float2int_rn(float f) { return (int)nearbyintf(f); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T> inline T __ldg(const T *p) { return *p; }

#endif
