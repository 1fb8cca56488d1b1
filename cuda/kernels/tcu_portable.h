/* tcu_portable.h - the prelude of every kernel source (the .cu files of cuda/kernels):
 * the same file compiles with nvcc (real CUDA) and with g++ under the host
 * emulator (cuda/emu/tcu_emu.h). Provides:
 *   TCU_LAUNCH(kernel, grid, block, smem, stream, args...) -> cudaError_t
 *       kernel<<<grid, block, smem, stream>>>(args...) + cudaGetLastError()
 *       under nvcc, an emulated synchronous grid run otherwise;
 *   TCU_EXTERN_SHARED(T, name)  dynamic shared memory as `T *name`;
 *   tcu_h2f / tcu_f2h / tcu_b2f / tcu_f2b  f16/bf16 bit patterns <-> f32 (RNE),
 *       __half / __nv_bfloat16 intrinsics on the device, the bit-exact
 *       emulation (tcu_emu_half.h) on the host. */
#ifndef TCU_PORTABLE_H
#define TCU_PORTABLE_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define TCU_LAUNCH(kernel, grid, block, smem, stream, ...) \
    (kernel<<<(grid), (block), (smem), (cudaStream_t)(stream)>>>(__VA_ARGS__), cudaGetLastError())
#define TCU_EXTERN_SHARED(T, name)                                  \
    extern __shared__ __align__(16) unsigned char tcu_dyn_smem_[]; \
    T *name = reinterpret_cast<T *>(tcu_dyn_smem_)
__device__ __forceinline__ float tcu_h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ uint16_t tcu_f2h(float f) { return __half_as_ushort(__float2half_rn(f)); }
__device__ __forceinline__ float tcu_b2f(uint16_t h) { return __bfloat162float(__ushort_as_bfloat16(h)); }
__device__ __forceinline__ uint16_t tcu_f2b(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }
#else
#include "tcu_emu.h"
#include "tcu_emu_half.h"
__device__ __forceinline__ float tcu_h2f(uint16_t h) { return tcu_emu_f16_to_f32(h); }
__device__ __forceinline__ uint16_t tcu_f2h(float f) { return tcu_emu_f32_to_f16(f); }
__device__ __forceinline__ float tcu_b2f(uint16_t h) { return tcu_emu_bf16_to_f32(h); }
__device__ __forceinline__ uint16_t tcu_f2b(float f) { return tcu_emu_f32_to_bf16(f); }
#endif

#include "tcu_kernels.h"

/* 1-D launch geometry for flat element-wise kernels (grid-stride loops). */
#define TCU_EW_THREADS 256
static inline unsigned tcu_ew_blocks(int64_t n) {
    int64_t b = (n + TCU_EW_THREADS - 1) / TCU_EW_THREADS;
    if (b < 1) b = 1;
    return (unsigned)(b > 65536 ? 65536 : b);   /* grid-stride beyond ~16.7M elements */
}

#endif
