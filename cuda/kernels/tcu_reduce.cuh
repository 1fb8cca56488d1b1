/* tcu_reduce.cuh - warp and block reductions (warp shuffles, then one
 * shared-memory slot per warp). Block reductions need blockDim.x a multiple
 * of 32 (every warp full) and 1-D blocks; every thread gets the result. */
#ifndef TCU_REDUCE_CUH
#define TCU_REDUCE_CUH
#include "tcu_portable.h"

__device__ __forceinline__ float tcu_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float tcu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* sh: 32 floats of shared memory, reusable right after the call */
__device__ __forceinline__ float tcu_block_sum(float v, float *sh) {
    unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = tcu_warp_sum(v);
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    v = tcu_warp_sum(v);
    __syncthreads();
    return v;
}
__device__ __forceinline__ float tcu_block_max(float v, float *sh) {
    unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = tcu_warp_max(v);
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    v = tcu_warp_max(v);
    __syncthreads();
    return v;
}

/* Welford / Chan statistics: count, mean, M2 (sum of squared deviations). */
struct tcu_stat { float n, mean, m2; };

__device__ __forceinline__ tcu_stat tcu_stat_merge(tcu_stat a, tcu_stat b) {
    float n = a.n + b.n;
    if (n == 0.0f) return a;
    float d = b.mean - a.mean, fb = b.n / n;
    tcu_stat r;
    r.n = n;
    r.mean = a.mean + d * fb;
    r.m2 = a.m2 + b.m2 + d * d * a.n * fb;
    return r;
}
/* tree to lane 0 with shfl_down (merging is not bitwise commutative), then
 * broadcast, so every lane holds the same bits */
__device__ __forceinline__ tcu_stat tcu_warp_stat(tcu_stat s) {
    for (int o = 16; o > 0; o >>= 1) {
        tcu_stat t;
        t.n = __shfl_down_sync(0xffffffffu, s.n, o);
        t.mean = __shfl_down_sync(0xffffffffu, s.mean, o);
        t.m2 = __shfl_down_sync(0xffffffffu, s.m2, o);
        if ((threadIdx.x & 31) + o < 32) s = tcu_stat_merge(s, t);
    }
    s.n = __shfl_sync(0xffffffffu, s.n, 0);
    s.mean = __shfl_sync(0xffffffffu, s.mean, 0);
    s.m2 = __shfl_sync(0xffffffffu, s.m2, 0);
    return s;
}
/* sh: 3*32 floats of shared memory */
__device__ __forceinline__ tcu_stat tcu_block_stat(tcu_stat s, float *sh) {
    unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    s = tcu_warp_stat(s);
    if (lane == 0) { sh[w] = s.n; sh[32 + w] = s.mean; sh[64 + w] = s.m2; }
    __syncthreads();
    tcu_stat t = {0.0f, 0.0f, 0.0f};
    if (lane < nw) { t.n = sh[lane]; t.mean = sh[32 + lane]; t.m2 = sh[64 + lane]; }
    t = tcu_warp_stat(t);
    __syncthreads();
    return t;
}
#endif
