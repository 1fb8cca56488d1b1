/* elementwise.cu - activations (SiLU, erf GELU, quick GELU), scale+bias and
 * broadcast add/mul. Grid-stride loops over 256-thread blocks; activations
 * and scale take 16-byte float4 accesses when n % 4 == 0 and the pointers are
 * aligned. Full-precision expf/erff (not __expf) so results stay within the
 * engine's 1e-5 f32 budget on the device too; these kernels are memory-bound
 * either way. */
#include "tcu_portable.h"

__device__ __forceinline__ float tcu_act(float v, int op) {
    switch (op) {
    case TCU_SILU: return v / (1.0f + expf(-v));
    case TCU_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    default: return v / (1.0f + expf(-1.702f * v));
    }
}

__global__ void k_unary(float *__restrict__ y, const float *__restrict__ x, int64_t n, int op) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = tcu_act(x[i], op);
}
__global__ void k_unary4(float4 *__restrict__ y, const float4 *__restrict__ x, int64_t n4, int op) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
        float4 v = x[i];
        v.x = tcu_act(v.x, op); v.y = tcu_act(v.y, op); v.z = tcu_act(v.z, op); v.w = tcu_act(v.w, op);
        y[i] = v;
    }
}
__global__ void k_scale(float *__restrict__ y, const float *__restrict__ x, int64_t n, float s, float b) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = x[i] * s + b;
}
__global__ void k_scale4(float4 *__restrict__ y, const float4 *__restrict__ x, int64_t n4, float s, float b) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
        float4 v = x[i];
        v.x = v.x * s + b; v.y = v.y * s + b; v.z = v.z * s + b; v.w = v.w * s + b;
        y[i] = v;
    }
}

/* b index of a's element i: b is a contiguous suffix of a's shape (leading
 * dims broadcast: bias [C], same shape, scalar) -> i % bn; otherwise the
 * general per-dimension walk with stride 0 on broadcast dims. */
struct tcu_bcast { int nd; int64_t ne[5]; int64_t bs[5]; int64_t bn; int general; };

__global__ void k_binary(float *y, const float *a, const float *__restrict__ b, int64_t n, tcu_bcast bc, int op) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t bi;
        if (!bc.general) {
            bi = i % bc.bn;
        } else {
            int64_t rem = i;
            bi = 0;
            for (int d = bc.nd - 1; d >= 0; d--) {
                int64_t q = rem / bc.ne[d];
                bi += (rem - q * bc.ne[d]) * bc.bs[d];
                rem = q;
            }
        }
        float av = a[i], bv = b[bi];
        y[i] = op == TCU_MUL ? av * bv : av + bv;
    }
}

static bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

extern "C" tcu_err tcu_unary_f32(float *y, const float *x, int64_t n, int op, tcu_stream s) {
    if (n < 0 || op < TCU_SILU || op > TCU_QUICK_GELU) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (n % 4 == 0 && aligned16(y) && aligned16(x))
        return TCU_LAUNCH(k_unary4, tcu_ew_blocks(n / 4), TCU_EW_THREADS, 0, s, (float4 *)y, (const float4 *)x, n / 4, op);
    return TCU_LAUNCH(k_unary, tcu_ew_blocks(n), TCU_EW_THREADS, 0, s, y, x, n, op);
}

extern "C" tcu_err tcu_scale_f32(float *y, const float *x, int64_t n, float scale, float bias, tcu_stream s) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (n % 4 == 0 && aligned16(y) && aligned16(x))
        return TCU_LAUNCH(k_scale4, tcu_ew_blocks(n / 4), TCU_EW_THREADS, 0, s, (float4 *)y, (const float4 *)x, n / 4,
                          scale, bias);
    return TCU_LAUNCH(k_scale, tcu_ew_blocks(n), TCU_EW_THREADS, 0, s, y, x, n, scale, bias);
}

extern "C" tcu_err tcu_binary_f32(float *y, const float *a, const float *b, const int64_t *a_ne, int a_nd,
                                  const int64_t *b_ne, int b_nd, int op, tcu_stream s) {
    if (a_nd < 1 || a_nd > 5 || b_nd < 1 || b_nd > a_nd || (op != TCU_ADD && op != TCU_MUL)) return cudaErrorInvalidValue;
    tcu_bcast bc;
    memset(&bc, 0, sizeof bc);
    bc.nd = a_nd;
    int64_t n = 1, bsz[5], st = 1;
    for (int d = 0; d < a_nd; d++) {
        int bd = d - (a_nd - b_nd);
        bc.ne[d] = a_ne[d];
        bsz[d] = bd >= 0 ? b_ne[bd] : 1;
        if (bsz[d] != 1 && bsz[d] != a_ne[d]) return cudaErrorInvalidValue;
        n *= a_ne[d];
    }
    for (int d = a_nd - 1; d >= 0; d--) { bc.bs[d] = bsz[d] == 1 ? 0 : st; st *= bsz[d]; }
    int k = 0;                                     /* first dim where b is not 1 */
    while (k < a_nd && bsz[k] == 1) k++;
    bc.bn = 1;
    for (int d = k; d < a_nd; d++) {
        if (bsz[d] != a_ne[d]) bc.general = 1;
        bc.bn *= a_ne[d];
    }
    if (n == 0) return cudaSuccess;
    return TCU_LAUNCH(k_binary, tcu_ew_blocks(n), TCU_EW_THREADS, 0, s, y, a, b, n, bc, op);
}

extern "C" const char *tcu_err_str(tcu_err e) { return cudaGetErrorString((cudaError_t)e); }
