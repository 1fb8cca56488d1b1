/* te_cpu_kern_scalar.c - portable C kernels: the fallback for CPUs without
 * AVX2/AVX-512 (and TE_CPU_ISA=scalar), and the base the SIMD tables
 * override. Plain loops; the compiler may auto-vectorize them with SSE2. */
#include "te_cpu_impl.h"
#include "te_half.h"
#include <math.h>
#include <string.h>

static void silu(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}
static void gelu(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
static void quick_gelu(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}
static void geglu(float *y, const float *x, int64_t f) {
    for (int64_t i = 0; i < f; i++) {
        float g = x[f + i];
        y[i] = x[i] * 0.5f * g * (1.0f + erff(g * 0.70710678118654752f));
    }
}
static void softmax(float *y, const float *x, int64_t n, float scale) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, x[i] * scale);
    float s = 0;
    for (int64_t i = 0; i < n; i++) { y[i] = expf(x[i] * scale - m); s += y[i]; }
    float r = 1.0f / s;
    for (int64_t i = 0; i < n; i++) y[i] *= r;
}
static void layer_norm(float *y, const float *x, int64_t n, const float *g, const float *b, float eps) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    float mean = s / (float)n, v = 0;
    for (int64_t i = 0; i < n; i++) { float d = x[i] - mean; v += d * d; }
    float r = 1.0f / sqrtf(v / (float)n + eps);
    for (int64_t i = 0; i < n; i++) {
        float t = (x[i] - mean) * r;
        y[i] = t * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
}
static void col_sum(float *acc, const float *x, int64_t rows, int64_t c) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < c; i++) acc[i] += x[r * c + i];
}
static void col_sqdev(float *acc, const float *x, int64_t rows, int64_t c, const float *mean) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < c; i++) { float d = x[r * c + i] - mean[i]; acc[i] += d * d; }
}
static void affine(float *y, const float *x, int64_t rows, int64_t c, const float *a, const float *b, int act) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < c; i++) {
            float t = x[r * c + i] * a[i] + b[i];
            y[r * c + i] = act ? t / (1.0f + expf(-t)) : t;
        }
}
static void vv(float *y, const float *a, const float *b, int64_t n, int mul) {
    if (mul) for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
    else for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
static void vs(float *y, const float *a, float b, int64_t n, int mul) {
    if (mul) for (int64_t i = 0; i < n; i++) y[i] = a[i] * b;
    else for (int64_t i = 0; i < n; i++) y[i] = a[i] + b;
}
static void scale(float *y, const float *x, int64_t n, float s, float b) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s + b;
}
static void h2f(float *y, const uint16_t *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = te_f16_to_f32(x[i]); }
static void f2h(uint16_t *y, const float *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = te_f32_to_f16(x[i]); }
static void b2f(float *y, const uint16_t *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = te_bf16_to_f32(x[i]); }
static void f2b(uint16_t *y, const float *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = te_f32_to_bf16(x[i]); }

/* Flash-attention block, plain C: same tiling and online softmax (base 2) as
 * the SIMD versions so the fallback exercises the same algorithm. */
static void attn_block_one(const te_attn_job *j, int64_t q0, int64_t br, te_attn_scratch *s);
static void attn_block(const te_attn_job *j, int64_t q0, int64_t br, te_attn_scratch *s) {
    for (int64_t b = 0; b < br; b += TE_ATTN_BR) attn_block_one(j, q0 + b, br - b < TE_ATTN_BR ? br - b : TE_ATTN_BR, s);
}
static void attn_block_one(const te_attn_job *j, int64_t q0, int64_t br, te_attn_scratch *s) {
    const int64_t d = j->d;
    for (int64_t i = 0; i < br; i++) {
        const float *q = j->q + (q0 + i) * j->q_rs;
        for (int64_t t = 0; t < d; t++) s->qs[i * d + t] = q[t] * j->scale_log2;
        s->m[i] = -INFINITY;
        s->l[i] = 0;
        memset(s->acc + i * d, 0, sizeof(float) * d);
    }
    for (int64_t k0 = 0; k0 < j->nk; k0 += TE_ATTN_BC) {
        int64_t bc = j->nk - k0 < TE_ATTN_BC ? j->nk - k0 : TE_ATTN_BC;
        for (int64_t i = 0; i < br; i++) {
            float *srow = s->s + i * TE_ATTN_BC, mx = -INFINITY;
            for (int64_t c = 0; c < bc; c++) {
                const float *k = j->k + (k0 + c) * j->k_rs;
                float a = 0;
                for (int64_t t = 0; t < d; t++) a += s->qs[i * d + t] * k[t];
                srow[c] = a;
                mx = fmaxf(mx, a);
            }
            float mn = fmaxf(s->m[i], mx), corr = exp2f(s->m[i] - mn), sum = 0;
            for (int64_t c = 0; c < bc; c++) { srow[c] = exp2f(srow[c] - mn); sum += srow[c]; }
            s->l[i] = s->l[i] * corr + sum;
            s->m[i] = mn;
            float *acc = s->acc + i * d;
            for (int64_t t = 0; t < d; t++) acc[t] *= corr;
            for (int64_t c = 0; c < bc; c++) {
                const float *v = j->v + (k0 + c) * j->v_rs;
                float p = srow[c];
                for (int64_t t = 0; t < d; t++) acc[t] += p * v[t];
            }
        }
    }
    for (int64_t i = 0; i < br; i++) {
        float *o = j->o + (q0 + i) * j->o_rs, r = 1.0f / s->l[i];
        for (int64_t t = 0; t < d; t++) o[t] = s->acc[i * d + t] * r;
    }
}

void te_cpu_kernels_scalar(te_cpu_kernels *k) {
    k->silu = silu;
    k->gelu = gelu;
    k->quick_gelu = quick_gelu;
    k->geglu = geglu;
    k->softmax = softmax;
    k->layer_norm = layer_norm;
    k->col_sum = col_sum;
    k->col_sqdev = col_sqdev;
    k->affine = affine;
    k->vv = vv;
    k->vs = vs;
    k->scale = scale;
    k->f16_to_f32 = h2f;
    k->f32_to_f16 = f2h;
    k->bf16_to_f32 = b2f;
    k->f32_to_bf16 = f2b;
    k->attn_block = attn_block;
}
