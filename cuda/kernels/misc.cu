/* misc.cu - timestep embedding, nearest 2x upsample, channel concat and
 * dtype conversion: flat grid-stride loops (upsample and concat move float4
 * units when the channel counts are multiples of 4 and pointers aligned). */
#include "tcu_portable.h"

/* One thread per (b, i < half) (+ one per row for the zero column of an odd
 * dim); f64 like the CPU backend (a tiny kernel). */
__global__ void k_timestep(float *__restrict__ y, const float *__restrict__ t, int64_t B, int dim, int flip,
                           double shift, double scale, double log_max_period) {
    int64_t half = dim / 2, per = half + (dim & 1), n = B * per;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = k / per, i = k - b * per;
        float *row = y + b * dim;
        if (i == half) { row[dim - 1] = 0.0f; continue; }
        double ex = -log_max_period * (double)i / ((double)half - shift);
        double arg = scale * (double)t[b] * exp(ex);
        float sv = (float)sin(arg), cv = (float)cos(arg);
        row[i] = flip ? cv : sv;
        row[half + i] = flip ? sv : cv;
    }
}

/* y[n, oy, ox, c] = x[n, oy/2, ox/2, c]; T = float or float4, C in T units */
template <class T>
__global__ void k_upsample2x(T *__restrict__ y, const T *__restrict__ x, int64_t n, int64_t H, int64_t W, int64_t C) {
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        int64_t c = o % C, p = o / C, ox = p % (2 * W), q = p / (2 * W), oy = q % (2 * H), b = q / (2 * H);
        y[o] = x[((b * H + oy / 2) * W + ox / 2) * C + c];
    }
}

template <class T>
__global__ void k_concat(T *__restrict__ y, const T *__restrict__ a, const T *__restrict__ b, int64_t n, int64_t Ca,
                         int64_t Cb) {
    int64_t Cy = Ca + Cb;
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = o / Cy, c = o - r * Cy;
        y[o] = c < Ca ? a[r * Ca + c] : b[r * Cb + (c - Ca)];
    }
}

__device__ __forceinline__ float tcu_load_as_f32(const void *x, int dt, int64_t i) {
    if (dt == TCU_DT_F32) return ((const float *)x)[i];
    uint16_t h = ((const uint16_t *)x)[i];
    return dt == TCU_DT_F16 ? tcu_h2f(h) : tcu_b2f(h);
}

__global__ void k_convert(void *__restrict__ y, int ydt, const void *__restrict__ x, int xdt, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = tcu_load_as_f32(x, xdt, i);
        if (ydt == TCU_DT_F32) ((float *)y)[i] = v;
        else ((uint16_t *)y)[i] = ydt == TCU_DT_F16 ? tcu_f2h(v) : tcu_f2b(v);
    }
}

static bool al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

extern "C" tcu_err tcu_timestep_embedding_f32(float *y, const float *t, int64_t B, int dim, int flip_sin_to_cos,
                                              float downscale_freq_shift, float scale, float max_period,
                                              tcu_stream s) {
    if (B < 0 || dim < 1 || !(max_period > 0.0f)) return cudaErrorInvalidValue;
    if (B == 0) return cudaSuccess;
    int64_t n = B * (dim / 2 + (dim & 1));
    return TCU_LAUNCH(k_timestep, tcu_ew_blocks(n), TCU_EW_THREADS, 0, s, y, t, B, dim, flip_sin_to_cos,
                      (double)downscale_freq_shift, (double)scale, log((double)max_period));
}

extern "C" tcu_err tcu_upsample_nearest2x_f32(float *y, const float *x, int64_t N, int64_t H, int64_t W, int64_t C,
                                              tcu_stream s) {
    if (N < 0 || H < 0 || W < 0 || C < 0) return cudaErrorInvalidValue;
    int64_t n = N * 4 * H * W * C;
    if (n == 0) return cudaSuccess;
    if (C % 4 == 0 && al16(x) && al16(y))
        return TCU_LAUNCH(k_upsample2x<float4>, tcu_ew_blocks(n / 4), TCU_EW_THREADS, 0, s, (float4 *)y,
                          (const float4 *)x, n / 4, H, W, C / 4);
    return TCU_LAUNCH(k_upsample2x<float>, tcu_ew_blocks(n), TCU_EW_THREADS, 0, s, y, x, n, H, W, C);
}

extern "C" tcu_err tcu_concat_channels_f32(float *y, const float *a, const float *b, int64_t rows, int64_t Ca,
                                           int64_t Cb, tcu_stream s) {
    if (rows < 0 || Ca < 0 || Cb < 0) return cudaErrorInvalidValue;
    int64_t n = rows * (Ca + Cb);
    if (n == 0) return cudaSuccess;
    if (Ca % 4 == 0 && Cb % 4 == 0 && al16(y) && al16(a) && al16(b))
        return TCU_LAUNCH(k_concat<float4>, tcu_ew_blocks(n / 4), TCU_EW_THREADS, 0, s, (float4 *)y, (const float4 *)a,
                          (const float4 *)b, n / 4, Ca / 4, Cb / 4);
    return TCU_LAUNCH(k_concat<float>, tcu_ew_blocks(n), TCU_EW_THREADS, 0, s, y, a, b, n, Ca, Cb);
}

extern "C" tcu_err tcu_convert(void *y, int y_dtype, const void *x, int x_dtype, int64_t n, tcu_stream s) {
    if (n < 0 || y_dtype < TCU_DT_F32 || y_dtype > TCU_DT_BF16 || x_dtype < TCU_DT_F32 || x_dtype > TCU_DT_BF16)
        return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    return TCU_LAUNCH(k_convert, tcu_ew_blocks(n), TCU_EW_THREADS, 0, s, y, y_dtype, x, x_dtype, n);
}
