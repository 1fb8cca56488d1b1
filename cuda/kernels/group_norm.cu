/* group_norm.cu - group norm over channels-last x[N, P, C] (P = H*W), G
 * groups of cg = C/G contiguous channels, optional fused SiLU.
 *
 * Two kernels on the same grid (G, splits, N), groups fastest so the blocks
 * reading neighbouring channel slices of the same rows run together:
 *   k_gn_stats: block (g, sp, n) runs Welford over rows [sp*rps, ..) of its
 *     group (count, mean, M2 per thread), merges them (Chan) through warp
 *     shuffles and shared memory, and writes one partial to the workspace;
 *   k_gn_apply: every block merges its group's partials in split order (so
 *     the result does not depend on block scheduling), then writes
 *     y = (x - mean) * rstd * gamma + beta (+ SiLU) for its rows.
 * Splits: ~8192 elements per block, at most 256, so the VAE's 512x512 levels
 * (32 groups) still fill the GPU. Bytes: 2 reads + 1 write of x. */
#include "tcu_reduce.cuh"

#define GN_THREADS 256
#define GN_MAX_SPLITS 256
#define GN_ELEMS_PER_BLOCK 8192

static void gn_geometry(int64_t P, int64_t cg, int64_t *splits, int64_t *rps) {
    int64_t e = P * cg, sp = (e + GN_ELEMS_PER_BLOCK - 1) / GN_ELEMS_PER_BLOCK;
    if (sp > GN_MAX_SPLITS) sp = GN_MAX_SPLITS;
    if (sp > P) sp = P;
    if (sp < 1) sp = 1;
    *rps = (P + sp - 1) / sp;
    *splits = (P + *rps - 1) / *rps;
    if (*splits < 1) *splits = 1;
}

__global__ void __launch_bounds__(GN_THREADS) k_gn_stats(const float *__restrict__ x, float *__restrict__ ws, int64_t P,
                                                         int64_t C, int cg, int64_t rps) {
    __shared__ float sh[96];
    int g = blockIdx.x, sp = blockIdx.y, n = blockIdx.z, G = gridDim.x;
    int64_t p0 = (int64_t)sp * rps, p1 = p0 + rps < P ? p0 + rps : P;
    int cnt = (int)((p1 - p0) * cg);   /* per block: < 2^31 (checked by the launcher) */
    const float *xb = x + ((int64_t)n * P + p0) * C + (int64_t)g * cg;
    tcu_stat s = {0.0f, 0.0f, 0.0f};
    for (int e = threadIdx.x; e < cnt; e += blockDim.x) {
        int r = e / cg;
        float v = xb[(int64_t)r * C + (e - r * cg)];
        s.n += 1.0f;
        float d = v - s.mean;
        s.mean += d / s.n;
        s.m2 += d * (v - s.mean);
    }
    s = tcu_block_stat(s, sh);
    if (threadIdx.x == 0) {
        float *o = ws + (((int64_t)n * gridDim.y + sp) * G + g) * 3;
        o[0] = s.n; o[1] = s.mean; o[2] = s.m2;
    }
}

__global__ void __launch_bounds__(GN_THREADS) k_gn_apply(float *y, const float *x, const float *__restrict__ gamma,
                                                         const float *__restrict__ beta, const float *__restrict__ ws,
                                                         int64_t P, int64_t C, int cg, int64_t rps, float eps,
                                                         int silu) {
    __shared__ float mr[2];
    int g = blockIdx.x, sp = blockIdx.y, n = blockIdx.z, G = gridDim.x;
    if (threadIdx.x == 0) {
        tcu_stat s = {0.0f, 0.0f, 0.0f};
        for (unsigned k = 0; k < gridDim.y; k++) {
            const float *o = ws + (((int64_t)n * gridDim.y + k) * G + g) * 3;
            tcu_stat t = {o[0], o[1], o[2]};
            s = tcu_stat_merge(s, t);
        }
        mr[0] = s.mean;
        mr[1] = 1.0f / sqrtf(s.m2 / s.n + eps);
    }
    __syncthreads();
    float mean = mr[0], rstd = mr[1];
    int64_t p0 = (int64_t)sp * rps, p1 = p0 + rps < P ? p0 + rps : P;
    int cnt = (int)((p1 - p0) * cg);
    const float *xb = x + ((int64_t)n * P + p0) * C + (int64_t)g * cg;
    float *yb = y + ((int64_t)n * P + p0) * C + (int64_t)g * cg;
    for (int e = threadIdx.x; e < cnt; e += blockDim.x) {
        int r = e / cg, c = e - r * cg;
        int64_t i = (int64_t)r * C + c;
        int ch = g * cg + c;
        float a = rstd * (gamma ? gamma[ch] : 1.0f), b = (beta ? beta[ch] : 0.0f) - mean * a;
        float t = xb[i] * a + b;
        yb[i] = silu ? t / (1.0f + expf(-t)) : t;
    }
}

extern "C" size_t tcu_group_norm_workspace(int64_t N, int64_t P, int64_t C, int G) {
    if (N < 1 || P < 1 || G < 1 || C % G) return 0;
    int64_t splits, rps;
    gn_geometry(P, C / G, &splits, &rps);
    return (size_t)(N * G * splits * 3) * sizeof(float);
}

extern "C" tcu_err tcu_group_norm_f32(float *y, const float *x, const float *gamma, const float *beta, int64_t N,
                                      int64_t P, int64_t C, int G, float eps, int fuse_silu, void *ws,
                                      size_t ws_bytes, tcu_stream s) {
    if (N < 0 || P < 0 || C < 1 || G < 1 || C % G || N > 65535 || G > 65535) return cudaErrorInvalidValue;
    if (N == 0 || P == 0) return cudaSuccess;
    if (!ws || ws_bytes < tcu_group_norm_workspace(N, P, C, G)) return cudaErrorInvalidValue;
    int64_t splits, rps;
    int cg = (int)(C / G);
    gn_geometry(P, cg, &splits, &rps);
    if (rps * cg > 2147483647) return cudaErrorInvalidValue;
    dim3 grid((unsigned)G, (unsigned)splits, (unsigned)N);
    cudaError_t e = TCU_LAUNCH(k_gn_stats, grid, GN_THREADS, 0, s, x, (float *)ws, P, C, cg, rps);
    if (e != cudaSuccess) return e;
    return TCU_LAUNCH(k_gn_apply, grid, GN_THREADS, 0, s, y, x, gamma, beta, (const float *)ws, P, C, cg, rps, eps,
                      fuse_silu);
}
