/* test_refs.h - float64 reference implementations used by the engine tests.
 * Written for clarity, not speed; inputs are the f32 tensors the engine saw. */
#ifndef TEST_REFS_H
#define TEST_REFS_H
#include "te_test.h"

/* conv with padding pt (top) / pl (left); bottom/right padding only shows in Ho/Wo */
static inline void ref_conv2d_pads(double *y, const float *x, const float *w, const float *b, const float *res, int N,
                                   int H, int W, int C, int K, int kh, int kw, int sh, int sw, int pt, int pl, int Ho,
                                   int Wo) {
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int k = 0; k < K; k++) {
                    double s = b ? b[k] : 0;
                    for (int c = 0; c < C; c++)
                        for (int dy = 0; dy < kh; dy++)
                            for (int dx = 0; dx < kw; dx++) {
                                int iy = oy * sh - pt + dy, ix = ox * sw - pl + dx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)x[((n * H + iy) * W + ix) * C + c] * w[((k * C + c) * kh + dy) * kw + dx];
                            }
                    int64_t o = (((int64_t)n * Ho + oy) * Wo + ox) * K + k;
                    y[o] = s + (res ? res[o] : 0);
                }
}

static inline void ref_conv2d(double *y, const float *x, const float *w, const float *b, const float *res, int N, int H,
                       int W, int C, int K, int kh, int kw, int stride, int pad, int Ho, int Wo) {
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int k = 0; k < K; k++) {
                    double s = b ? b[k] : 0;
                    for (int c = 0; c < C; c++)
                        for (int dy = 0; dy < kh; dy++)
                            for (int dx = 0; dx < kw; dx++) {
                                int iy = oy * stride - pad + dy, ix = ox * stride - pad + dx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)x[((n * H + iy) * W + ix) * C + c] * w[((k * C + c) * kh + dy) * kw + dx];
                            }
                    int64_t o = (((int64_t)n * Ho + oy) * Wo + ox) * K + k;
                    y[o] = s + (res ? res[o] : 0);
                }
}

static inline double ref_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static inline double ref_silu(double x) { return x / (1 + exp(-x)); }

/* attention on [B, Nq, H*d] tokens */
static inline void ref_attention(double *o, const float *q, const float *k, const float *v, int B, int Nq, int Nk, int H,
                          int d, double scale, int bhnd) {
    double *s = malloc(sizeof(double) * Nk);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Nq; i++) {
#define QI(bb, hh, ii, tt) (bhnd ? (((int64_t)(bb) * H + (hh)) * Nq + (ii)) * d + (tt) : (((int64_t)(bb) * Nq + (ii)) * H + (hh)) * d + (tt))
#define KI(bb, hh, jj, tt) (bhnd ? (((int64_t)(bb) * H + (hh)) * Nk + (jj)) * d + (tt) : (((int64_t)(bb) * Nk + (jj)) * H + (hh)) * d + (tt))
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < Nk; j++) {
                    double a = 0;
                    for (int t = 0; t < d; t++) a += (double)q[QI(b, h, i, t)] * k[KI(b, h, j, t)];
                    s[j] = a * scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < Nk; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
                for (int t = 0; t < d; t++) {
                    double a = 0;
                    for (int j = 0; j < Nk; j++) a += s[j] * v[KI(b, h, j, t)];
                    o[QI(b, h, i, t)] = a / sum;
                }
            }
    free(s);
}
#endif
