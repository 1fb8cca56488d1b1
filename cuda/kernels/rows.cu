/* rows.cu - row-wise ops over x[rows, C]: layer norm, softmax (of scale*x),
 * GEGLU. layer_norm / softmax: one 256-thread block per row; the row is read
 * from DRAM once and re-read from L1/L2 by the later passes (SD rows are
 * 1.3-5 KB), with exact two-pass statistics like the CPU backend. GEGLU is a
 * flat grid-stride loop over rows*F outputs. */
#include "tcu_reduce.cuh"

#define ROW_THREADS 256

__global__ void __launch_bounds__(ROW_THREADS) k_layer_norm(float *y, const float *x, const float *__restrict__ gamma,
                                                            const float *__restrict__ beta, int64_t C, float eps) {
    __shared__ float sh[32];
    const float *xr = x + (int64_t)blockIdx.x * C;
    float *yr = y + (int64_t)blockIdx.x * C;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) s += xr[i];
    float mean = tcu_block_sum(s, sh) / (float)C;
    float v = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) { float d = xr[i] - mean; v += d * d; }
    float rstd = 1.0f / sqrtf(tcu_block_sum(v, sh) / (float)C + eps);
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
        float t = (xr[i] - mean) * rstd;
        yr[i] = t * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
}

__global__ void __launch_bounds__(ROW_THREADS) k_softmax(float *y, const float *x, int64_t C, float scale) {
    __shared__ float sh[32];
    const float *xr = x + (int64_t)blockIdx.x * C;
    float *yr = y + (int64_t)blockIdx.x * C;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) m = fmaxf(m, xr[i] * scale);
    m = tcu_block_max(m, sh);
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) s += expf(xr[i] * scale - m);
    float r = 1.0f / tcu_block_sum(s, sh);
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) yr[i] = expf(xr[i] * scale - m) * r;
}

__global__ void k_geglu(float *__restrict__ y, const float *__restrict__ x, int64_t n, int64_t F) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / F, c = i - r * F;
        const float *xr = x + r * 2 * F;
        float g = xr[F + c];
        y[i] = xr[c] * (0.5f * g * (1.0f + erff(g * 0.70710678118654752f)));
    }
}

extern "C" tcu_err tcu_layer_norm_f32(float *y, const float *x, const float *gamma, const float *beta, int64_t rows,
                                      int64_t C, float eps, tcu_stream s) {
    if (rows < 0 || rows > 2147483647 || C < 1) return cudaErrorInvalidValue;
    if (rows == 0) return cudaSuccess;
    return TCU_LAUNCH(k_layer_norm, (unsigned)rows, ROW_THREADS, 0, s, y, x, gamma, beta, C, eps);
}

extern "C" tcu_err tcu_softmax_f32(float *y, const float *x, int64_t rows, int64_t C, float scale, tcu_stream s) {
    if (rows < 0 || rows > 2147483647 || C < 1) return cudaErrorInvalidValue;
    if (rows == 0) return cudaSuccess;
    return TCU_LAUNCH(k_softmax, (unsigned)rows, ROW_THREADS, 0, s, y, x, C, scale);
}

extern "C" tcu_err tcu_geglu_f32(float *y, const float *x, int64_t rows, int64_t F, tcu_stream s) {
    if (rows < 0 || F < 1) return cudaErrorInvalidValue;
    int64_t n = rows * F;
    if (n == 0) return cudaSuccess;
    return TCU_LAUNCH(k_geglu, tcu_ew_blocks(n), TCU_EW_THREADS, 0, s, y, x, n, F);
}
