/* te_cpu_kern_avx512.c - AVX-512 kernels for the CPU backend (compiled with
 * -mavx512f/bw/dq/vl -mfma -mf16c; only called when the CPU has them).
 *
 * exp: Cody-Waite reduction + degree-7 polynomial + vscalefps (~1 ulp).
 * erf (GELU): Abramowitz-Stegun 7.1.26, |error| <= 1.5e-7.
 * Attention: transposed-score flash block - S^T[key][query] is computed with
 * the query block transposed once per item (vectors over 48 queries,
 * broadcast key elements), so neither K nor the scores need transposing per
 * key block; online softmax is then plain vertical vector math, and P.V
 * broadcasts P^T entries against rows of V. */
#include "te_cpu_impl.h"
#include "te_half.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI __m512 exp512(__m512 x) {
    /* clamp to the normal range: e^-87 is the smallest result, so no denormal
     * ever leaves here (denormal operands cost ~100 cycles each downstream) */
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* 2^x for x <= 0 (attention: x = score - running max). Clamped below at
 * -125 so probabilities are never denormal (x = -inf gives 2^-125, which is
 * negligible against the row max's 1). Degree-6 polynomial on [-0.5, 0.5]:
 * relative error 2e-7. */
AI __m512 exp2_512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-125.0f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.5403530393381609e-04f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076284772e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-02f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

AI __m512 silu512(__m512 x) {
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

AI __m512 gelu512(__m512 x) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 e = _mm512_mul_ps(p, exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z)))); /* erfc(z) */
    __m512 h = _mm512_mul_ps(_mm512_set1_ps(0.5f), e);
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 f = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), h), h);
    /* x < -10: gelu(x) < 1e-23, return 0 rather than a denormal */
    __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-10.0f), _CMP_LT_OQ);
    return _mm512_maskz_mul_ps(~tiny, x, f);
}

AI __mmask16 tailmask(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

#define MAP(name, expr)                                                          \
    static void name(float *y, const float *x, int64_t n) {                      \
        for (int64_t i = 0; i < n; i += 16) {                                    \
            __mmask16 m = tailmask(n - i);                                       \
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);                          \
            _mm512_mask_storeu_ps(y + i, m, expr);                               \
        }                                                                        \
    }
MAP(k_silu, silu512(v))
MAP(k_gelu, gelu512(v))
MAP(k_quick_gelu, _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_mul_ps(v, _mm512_set1_ps(-1.702f))))))

static void k_geglu(float *y, const float *x, int64_t f) {
    for (int64_t i = 0; i < f; i += 16) {
        __mmask16 m = tailmask(f - i);
        __m512 a = _mm512_maskz_loadu_ps(m, x + i), g = _mm512_maskz_loadu_ps(m, x + f + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(a, gelu512(g)));
    }
}

static void k_softmax(float *y, const float *x, int64_t n, float scale) {
    __m512 s = _mm512_set1_ps(scale), mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    }
    __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        __m512 e = exp512(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, x + i), s, mv));
        sum = _mm512_mask_add_ps(sum, m, sum, e);
        _mm512_mask_storeu_ps(y + i, m, e);
    }
    __m512 r = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), r));
    }
}

static void k_layer_norm(float *y, const float *x, int64_t n, const float *g, const float *b, float eps) {
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tailmask(n - i), x + i));
    float mean = _mm512_reduce_add_ps(s) / (float)n;
    __m512 mv = _mm512_set1_ps(mean), v = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), mv);
        v = _mm512_fmadd_ps(d, d, v);
    }
    float r = 1.0f / sqrtf(_mm512_reduce_add_ps(v) / (float)n + eps);
    __m512 rv = _mm512_set1_ps(r);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv), rv);
        if (g) t = _mm512_mul_ps(t, _mm512_maskz_loadu_ps(m, g + i));
        if (b) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(y + i, m, t);
    }
}

static void k_col_sum(float *acc, const float *x, int64_t rows, int64_t c) {
    for (int64_t i = 0; i < c; i += 16) {
        __mmask16 m = tailmask(c - i);
        __m512 a0 = _mm512_maskz_loadu_ps(m, acc + i), a1 = _mm512_setzero_ps();
        int64_t r = 0;
        for (; r + 2 <= rows; r += 2) {
            a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m, x + r * c + i));
            a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(m, x + (r + 1) * c + i));
        }
        if (r < rows) a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m, x + r * c + i));
        _mm512_mask_storeu_ps(acc + i, m, _mm512_add_ps(a0, a1));
    }
}

static void k_col_sqdev(float *acc, const float *x, int64_t rows, int64_t c, const float *mean) {
    for (int64_t i = 0; i < c; i += 16) {
        __mmask16 m = tailmask(c - i);
        __m512 a0 = _mm512_maskz_loadu_ps(m, acc + i), a1 = _mm512_setzero_ps(), mu = _mm512_maskz_loadu_ps(m, mean + i);
        int64_t r = 0;
        for (; r + 2 <= rows; r += 2) {
            __m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + r * c + i), mu);
            __m512 d1 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + (r + 1) * c + i), mu);
            a0 = _mm512_fmadd_ps(d0, d0, a0);
            a1 = _mm512_fmadd_ps(d1, d1, a1);
        }
        if (r < rows) { __m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + r * c + i), mu); a0 = _mm512_fmadd_ps(d0, d0, a0); }
        _mm512_mask_storeu_ps(acc + i, m, _mm512_maskz_add_ps(m, a0, a1));
    }
}

static void k_affine(float *y, const float *x, int64_t rows, int64_t c, const float *a, const float *b, int act) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < c; i += 16) {
            __mmask16 m = tailmask(c - i);
            __m512 t = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + r * c + i), _mm512_maskz_loadu_ps(m, a + i),
                                       _mm512_maskz_loadu_ps(m, b + i));
            if (act) t = silu512(t);
            _mm512_mask_storeu_ps(y + r * c + i, m, t);
        }
}

static void k_vv(float *y, const float *a, const float *b, int64_t n, int mul) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        __m512 u = _mm512_maskz_loadu_ps(m, a + i), v = _mm512_maskz_loadu_ps(m, b + i);
        _mm512_mask_storeu_ps(y + i, m, mul ? _mm512_mul_ps(u, v) : _mm512_add_ps(u, v));
    }
}
static void k_vs(float *y, const float *a, float b, int64_t n, int mul) {
    __m512 v = _mm512_set1_ps(b);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        __m512 u = _mm512_maskz_loadu_ps(m, a + i);
        _mm512_mask_storeu_ps(y + i, m, mul ? _mm512_mul_ps(u, v) : _mm512_add_ps(u, v));
    }
}
static void k_scale(float *y, const float *x, int64_t n, float s, float b) {
    __m512 sv = _mm512_set1_ps(s), bv = _mm512_set1_ps(b);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), sv, bv));
    }
}

static void k_h2f(float *y, const uint16_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
    }
}
static void k_f2h(uint16_t *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}
static void k_b2f(float *y, const uint16_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        __m512i v = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i)), 16);
        _mm512_mask_storeu_ps(y + i, m, _mm512_castsi512_ps(v));
    }
}
static void k_f2b(uint16_t *y, const float *x, int64_t n) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tailmask(n - i);
        __m512 f = _mm512_maskz_loadu_ps(m, x + i);
        __m512i u = _mm512_castps_si512(f);
        __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
        r = _mm512_srli_epi32(r, 16);
        __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtepi32_epi16(r));
    }
}

/* ---- attention ----------------------------------------------------------- */
#define BR TE_ATTN_BR    /* 48 = 3 vectors */
#define BC TE_ATTN_BC

/* S^T[c][0:48] = sum_t k[c][t] * qt[t][0:48] for c in [c0, c0+NK) */
AI void qk_kernel(const int NK, float *st, const float *qt, const float *k, int64_t k_rs, int64_t d) {
    __m512 a[8][3];
    for (int r = 0; r < NK; r++) for (int u = 0; u < 3; u++) a[r][u] = _mm512_setzero_ps();
    for (int64_t t = 0; t < d; t++) {
        __m512 q0 = _mm512_load_ps(qt + t * BR), q1 = _mm512_load_ps(qt + t * BR + 16), q2 = _mm512_load_ps(qt + t * BR + 32);
        for (int r = 0; r < NK; r++) {
            __m512 b = _mm512_set1_ps(k[r * k_rs + t]);
            a[r][0] = _mm512_fmadd_ps(b, q0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(b, q1, a[r][1]);
            a[r][2] = _mm512_fmadd_ps(b, q2, a[r][2]);
        }
    }
    for (int r = 0; r < NK; r++) for (int u = 0; u < 3; u++) _mm512_store_ps(st + r * BR + 16 * u, a[r][u]);
}

/* acc[i][t0 : t0+16*NV] (i in [i0, i0+R)) = acc*corr[i] + sum_c P^T[c][i] * v[c][t0...] */
AI void pv_kernel(const int NV, const int R, float *acc, int64_t dp, const float *corr, const float *pt,
                  const float *v, int64_t v_rs, int64_t bc) {
    __m512 a[8][5];
    for (int r = 0; r < R; r++) {
        __m512 cr = _mm512_set1_ps(corr[r]);
        for (int u = 0; u < NV; u++) a[r][u] = _mm512_mul_ps(_mm512_load_ps(acc + r * dp + 16 * u), cr);
    }
    for (int64_t c = 0; c < bc; c++) {
        const float *vr = v + c * v_rs;
        __m512 vv[5];
        for (int u = 0; u < NV; u++)
            vv[u] = _mm512_load_ps(vr + 16 * u);
        const float *pc = pt + c * BR;
        for (int r = 0; r < R; r++) {
            __m512 p = _mm512_set1_ps(pc[r]);
            for (int u = 0; u < NV; u++) a[r][u] = _mm512_fmadd_ps(p, vv[u], a[r][u]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) _mm512_store_ps(acc + r * dp + 16 * u, a[r][u]);
}

static void pv_chunk(int nv, float *acc, int64_t dp, const float *corr, const float *pt, const float *v,
                     int64_t v_rs, int64_t bc) {
    switch (nv) {
    case 1: for (int i = 0; i < BR; i += 8) pv_kernel(1, 8, acc + i * dp, dp, corr + i, pt + i, v, v_rs, bc); break;
    case 2: for (int i = 0; i < BR; i += 8) pv_kernel(2, 8, acc + i * dp, dp, corr + i, pt + i, v, v_rs, bc); break;
    case 3: for (int i = 0; i < BR; i += 8) pv_kernel(3, 8, acc + i * dp, dp, corr + i, pt + i, v, v_rs, bc); break;
    case 4: for (int i = 0; i < BR; i += 6) pv_kernel(4, 6, acc + i * dp, dp, corr + i, pt + i, v, v_rs, bc); break;
    default: for (int i = 0; i < BR; i += 4) pv_kernel(5, 4, acc + i * dp, dp, corr + i, pt + i, v, v_rs, bc); break;
    }
}

/* One work item: up to TE_ATTN_GROUP blocks of BR queries walk the keys
 * together, so each packed K/V block is reused by G*48 queries (K and V of
 * a head are streamed from L2/L3 once per item instead of once per 48). */
static void k_attn_block(const te_attn_job *j, int64_t q0, int64_t br_all, te_attn_scratch *s) {
    const int64_t d = j->d, dp = (d + 15) & ~(int64_t)15;
    int64_t G = (br_all + BR - 1) / BR, gmax = TE_ATTN_DMAX / dp;
    if (G > gmax) {   /* large head dims: not enough scratch to group; split */
        for (int64_t b = 0; b < br_all; b += gmax * BR)
            k_attn_block(j, q0 + b, br_all - b < gmax * BR ? br_all - b : gmax * BR, s);
        return;
    }
    float *st = s->s;
    float corr[BR] __attribute__((aligned(64)));
    /* per group g: Q^T at qs + g*BR*d, acc at acc + g*BR*dp, m/l at m/l + g*BR */
    for (int64_t g = 0; g < G; g++) {
        int64_t br = br_all - g * BR < BR ? br_all - g * BR : BR;
        float *qt = s->qs + g * BR * d;
        for (int64_t t = 0; t < d; t++)
            for (int64_t i = 0; i < BR; i++)
                qt[t * BR + i] = i < br ? j->q[(q0 + g * BR + i) * j->q_rs + t] * j->scale_log2 : 0.0f;
        for (int i = 0; i < BR; i++) { s->m[g * BR + i] = -INFINITY; s->l[g * BR + i] = 0; }
    }
    memset(s->acc, 0, sizeof(float) * G * BR * dp);
    for (int64_t k0 = 0; k0 < j->nk; k0 += BC) {
        int64_t bc = j->nk - k0 < BC ? j->nk - k0 : BC;
        /* pack this key block: K rows contiguous, V rows zero-padded to dp and
         * 64-byte aligned (no split or masked loads in the kernels) */
        float *kp = s->kt, *vp = s->vp;
        for (int64_t c = 0; c < bc; c++) {
            const float *kr = j->k + (k0 + c) * j->k_rs, *vr = j->v + (k0 + c) * j->v_rs;
            for (int64_t t = 0; t < dp; t += 16) {
                __mmask16 mk = tailmask(d - t);
                _mm512_storeu_ps(kp + c * d + t, _mm512_maskz_loadu_ps(mk, kr + t));
                _mm512_store_ps(vp + c * dp + t, _mm512_maskz_loadu_ps(mk, vr + t));
            }
        }
        /* zero keys up to a multiple of 8: the QK kernel always does 8 (the
         * extra score rows are never read) - matters for 77-key cross-attention */
        int64_t bc8 = (bc + 7) & ~(int64_t)7;
        memset(kp + bc * d, 0, sizeof(float) * (bc8 - bc) * d);
        for (int64_t g = 0; g < G; g++) {
            float *qt = s->qs + g * BR * d, *acc = s->acc + g * BR * dp, *m = s->m + g * BR, *l = s->l + g * BR;
            int64_t c = 0;
            for (; c < bc8; c += 8) qk_kernel(8, st + c * BR, qt, kp + c * d, d, d);
            /* online softmax, vertical over the 48 queries */
            for (int u = 0; u < 3; u++) {
                __m512 mx = _mm512_set1_ps(-INFINITY);
                for (c = 0; c < bc; c++) mx = _mm512_max_ps(mx, _mm512_load_ps(st + c * BR + 16 * u));
                __m512 mo = _mm512_load_ps(m + 16 * u), mn = _mm512_max_ps(mo, mx), sum = _mm512_setzero_ps();
                for (c = 0; c < bc; c++) {
                    __m512 e = exp2_512(_mm512_sub_ps(_mm512_load_ps(st + c * BR + 16 * u), mn));
                    _mm512_store_ps(st + c * BR + 16 * u, e);
                    sum = _mm512_add_ps(sum, e);
                }
                __m512 cr = exp2_512(_mm512_sub_ps(mo, mn));
                _mm512_store_ps(corr + 16 * u, cr);
                _mm512_store_ps(l + 16 * u, _mm512_fmadd_ps(_mm512_load_ps(l + 16 * u), cr, sum));
                _mm512_store_ps(m + 16 * u, mn);
            }
            if (dp <= 80) {
                pv_chunk((int)(dp / 16), acc, dp, corr, st, vp, dp, bc);
            } else {
                for (int64_t t0 = 0; t0 < dp; t0 += 64) {
                    int64_t w = dp - t0 < 64 ? dp - t0 : 64;
                    pv_chunk((int)(w / 16), acc + t0, dp, corr, st, vp + t0, dp, bc);
                }
            }
        }
    }
    for (int64_t i = 0; i < br_all; i++) {
        __m512 r = _mm512_set1_ps(1.0f / s->l[i]);
        float *o = j->o + (q0 + i) * j->o_rs;
        for (int64_t t = 0; t < d; t += 16)
            _mm512_mask_storeu_ps(o + t, tailmask(d - t), _mm512_mul_ps(_mm512_load_ps(s->acc + i * dp + t), r));
    }
}

void te_cpu_kernels_avx512(te_cpu_kernels *k) {
    k->silu = k_silu;
    k->gelu = k_gelu;
    k->quick_gelu = k_quick_gelu;
    k->geglu = k_geglu;
    k->softmax = k_softmax;
    k->layer_norm = k_layer_norm;
    k->col_sum = k_col_sum;
    k->col_sqdev = k_col_sqdev;
    k->affine = k_affine;
    k->vv = k_vv;
    k->vs = k_vs;
    k->scale = k_scale;
    k->f16_to_f32 = k_h2f;
    k->f32_to_f16 = k_f2h;
    k->bf16_to_f32 = k_b2f;
    k->f32_to_bf16 = k_f2b;
    k->attn_block = k_attn_block;
}
