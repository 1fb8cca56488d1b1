/* te_cpu_kern_avx2.c - AVX2+FMA kernels (8-wide), for x86 CPUs without
 * AVX-512 and for TE_CPU_ISA=avx2. Same algorithms as the AVX-512 file
 * (te_cpu_kern_avx512.c): Cody-Waite exp, A&S erf, transposed-score flash
 * attention block; tails handled with scalar loops or masked loads. Compiled
 * with -mavx2 -mfma -mf16c. */
#include "te_cpu_impl.h"
#include "te_half.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* 2^x, x clamped to [-125, 127] (no denormals) */
AI __m256 exp2_256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-125.0f)), _mm256_set1_ps(127.0f));
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(1.5252733804059841e-05f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.5403530393381609e-04f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558146428443e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291076284772e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504108664821580e-02f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022650695910071e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718055994531e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AI __m256 silu256(__m256 x) {
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

AI __m256 gelu256(__m256 x) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 z = _mm256_mul_ps(_mm256_and_ps(x, absmask), _mm256_set1_ps(0.70710678118654752f));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 h = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_mul_ps(p, exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(z, z)))));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 f = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), h), h, neg);
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-10.0f), _CMP_GE_OQ);
    return _mm256_and_ps(_mm256_mul_ps(x, f), keep);
}

AI __m256 qgelu256(__m256 v) {
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp256(_mm256_mul_ps(v, _mm256_set1_ps(-1.702f)))));
}

/* mask with the first n (0..8) lanes on, for maskload/maskstore */
AI __m256i lanes(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? n : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define MAP(name, expr)                                                          \
    static void name(float *y, const float *x, int64_t n) {                      \
        for (int64_t i = 0; i < n; i += 8) {                                     \
            __m256i m = lanes(n - i);                                            \
            __m256 v = _mm256_maskload_ps(x + i, m);                             \
            _mm256_maskstore_ps(y + i, m, expr);                                 \
        }                                                                        \
    }
MAP(k_silu, silu256(v))
MAP(k_gelu, gelu256(v))
MAP(k_quick_gelu, qgelu256(v))

static void k_geglu(float *y, const float *x, int64_t f) {
    for (int64_t i = 0; i < f; i += 8) {
        __m256i m = lanes(f - i);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), gelu256(_mm256_maskload_ps(x + f + i, m))));
    }
}

AI float hsum(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}
AI float hmax(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

static void k_softmax(float *y, const float *x, int64_t n, float scale) {
    __m256 s = _mm256_set1_ps(scale), mx = _mm256_set1_ps(-INFINITY), ninf = mx;
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = lanes(n - i);
        __m256 v = _mm256_blendv_ps(ninf, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), s), _mm256_castsi256_ps(m));
        mx = _mm256_max_ps(mx, v);
    }
    __m256 mv = _mm256_set1_ps(hmax(mx)), sum = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = lanes(n - i);
        __m256 e = _mm256_and_ps(exp256(_mm256_fmsub_ps(_mm256_maskload_ps(x + i, m), s, mv)), _mm256_castsi256_ps(m));
        sum = _mm256_add_ps(sum, e);
        _mm256_maskstore_ps(y + i, m, e);
    }
    __m256 r = _mm256_set1_ps(1.0f / hsum(sum));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = lanes(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(y + i, m), r));
    }
}

static void k_layer_norm(float *y, const float *x, int64_t n, const float *g, const float *b, float eps) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) s = _mm256_add_ps(s, _mm256_maskload_ps(x + i, lanes(n - i)));
    float mean = hsum(s) / (float)n;
    __m256 mv = _mm256_set1_ps(mean), v = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = lanes(n - i);
        __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), mv), _mm256_castsi256_ps(m));
        v = _mm256_fmadd_ps(d, d, v);
    }
    __m256 rv = _mm256_set1_ps(1.0f / sqrtf(hsum(v) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = lanes(n - i);
        __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), mv), rv);
        if (g) t = _mm256_mul_ps(t, _mm256_maskload_ps(g + i, m));
        if (b) t = _mm256_add_ps(t, _mm256_maskload_ps(b + i, m));
        _mm256_maskstore_ps(y + i, m, t);
    }
}

static void k_col_sum(float *acc, const float *x, int64_t rows, int64_t c) {
    for (int64_t i = 0; i < c; i += 8) {
        __m256i m = lanes(c - i);
        __m256 a0 = _mm256_maskload_ps(acc + i, m), a1 = _mm256_setzero_ps();
        int64_t r = 0;
        for (; r + 2 <= rows; r += 2) {
            a0 = _mm256_add_ps(a0, _mm256_maskload_ps(x + r * c + i, m));
            a1 = _mm256_add_ps(a1, _mm256_maskload_ps(x + (r + 1) * c + i, m));
        }
        if (r < rows) a0 = _mm256_add_ps(a0, _mm256_maskload_ps(x + r * c + i, m));
        _mm256_maskstore_ps(acc + i, m, _mm256_add_ps(a0, a1));
    }
}

static void k_col_sqdev(float *acc, const float *x, int64_t rows, int64_t c, const float *mean) {
    for (int64_t i = 0; i < c; i += 8) {
        __m256i m = lanes(c - i);
        __m256 a0 = _mm256_maskload_ps(acc + i, m), a1 = _mm256_setzero_ps(), mu = _mm256_maskload_ps(mean + i, m);
        int64_t r = 0;
        for (; r + 2 <= rows; r += 2) {
            __m256 d0 = _mm256_sub_ps(_mm256_maskload_ps(x + r * c + i, m), mu);
            __m256 d1 = _mm256_sub_ps(_mm256_maskload_ps(x + (r + 1) * c + i, m), mu);
            a0 = _mm256_fmadd_ps(d0, d0, a0);
            a1 = _mm256_fmadd_ps(d1, d1, a1);
        }
        if (r < rows) { __m256 d0 = _mm256_sub_ps(_mm256_maskload_ps(x + r * c + i, m), mu); a0 = _mm256_fmadd_ps(d0, d0, a0); }
        _mm256_maskstore_ps(acc + i, m, _mm256_add_ps(a0, a1));
    }
}

static void k_affine(float *y, const float *x, int64_t rows, int64_t c, const float *a, const float *b, int act) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < c; i += 8) {
            __m256i m = lanes(c - i);
            __m256 t = _mm256_fmadd_ps(_mm256_maskload_ps(x + r * c + i, m), _mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
            if (act) t = silu256(t);
            _mm256_maskstore_ps(y + r * c + i, m, t);
        }
}

static void k_vv(float *y, const float *a, const float *b, int64_t n, int mul) {
    int64_t i = 0;
    if (mul) for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    else for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) y[i] = mul ? a[i] * b[i] : a[i] + b[i];
}
static void k_vs(float *y, const float *a, float b, int64_t n, int mul) {
    __m256 v = _mm256_set1_ps(b);
    int64_t i = 0;
    if (mul) for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), v));
    else for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), v));
    for (; i < n; i++) y[i] = mul ? a[i] * b : a[i] + b;
}
static void k_scale(float *y, const float *x, int64_t n, float s, float b) {
    __m256 sv = _mm256_set1_ps(s), bv = _mm256_set1_ps(b);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), sv, bv));
    for (; i < n; i++) y[i] = x[i] * s + b;
}

static void k_h2f(float *y, const uint16_t *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = te_f16_to_f32(x[i]);
}
static void k_f2h(uint16_t *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) y[i] = te_f32_to_f16(x[i]);
}

/* ---- attention (same structure as the AVX-512 block, 8-wide) -------------- */
#define BR TE_ATTN_BR    /* 48 = 6 ymm */
#define BC TE_ATTN_BC

/* S^T[c][0:48] for NK keys: 6*NK accumulators, Q^T taken from memory */
AI void qk_kernel(const int NK, float *st, const float *qt, const float *k, int64_t k_rs, int64_t d) {
    __m256 a[2][6];
    for (int r = 0; r < NK; r++) for (int u = 0; u < 6; u++) a[r][u] = _mm256_setzero_ps();
    for (int64_t t = 0; t < d; t++) {
        for (int r = 0; r < NK; r++) {
            __m256 b = _mm256_broadcast_ss(k + r * k_rs + t);
            for (int u = 0; u < 6; u++) a[r][u] = _mm256_fmadd_ps(b, _mm256_load_ps(qt + t * BR + 8 * u), a[r][u]);
        }
    }
    for (int r = 0; r < NK; r++) for (int u = 0; u < 6; u++) _mm256_store_ps(st + r * BR + 8 * u, a[r][u]);
}

/* acc[i][t0:t0+16] for 4 rows */
AI void pv_kernel(float *acc, int64_t dp, const float *corr, const float *pt, const float *v, int64_t v_rs, int64_t bc) {
    __m256 a[4][2];
    for (int r = 0; r < 4; r++) {
        __m256 cr = _mm256_set1_ps(corr[r]);
        for (int u = 0; u < 2; u++) a[r][u] = _mm256_mul_ps(_mm256_load_ps(acc + r * dp + 8 * u), cr);
    }
    for (int64_t c = 0; c < bc; c++) {
        __m256 v0 = _mm256_load_ps(v + c * v_rs), v1 = _mm256_load_ps(v + c * v_rs + 8);
        for (int r = 0; r < 4; r++) {
            __m256 p = _mm256_broadcast_ss(pt + c * BR + r);
            a[r][0] = _mm256_fmadd_ps(p, v0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(p, v1, a[r][1]);
        }
    }
    for (int r = 0; r < 4; r++) for (int u = 0; u < 2; u++) _mm256_store_ps(acc + r * dp + 8 * u, a[r][u]);
}

static void k_attn_block_one(const te_attn_job *j, int64_t q0, int64_t br, te_attn_scratch *s);
static void k_attn_block(const te_attn_job *j, int64_t q0, int64_t br, te_attn_scratch *s) {
    for (int64_t b = 0; b < br; b += TE_ATTN_BR) k_attn_block_one(j, q0 + b, br - b < TE_ATTN_BR ? br - b : TE_ATTN_BR, s);
}
static void k_attn_block_one(const te_attn_job *j, int64_t q0, int64_t br, te_attn_scratch *s) {
    const int64_t d = j->d, dp = (d + 15) & ~(int64_t)15;
    float *qt = s->qs, *st = s->s, *acc = s->acc, *m = s->m, *l = s->l;
    float corr[BR] __attribute__((aligned(32)));
    for (int64_t t = 0; t < d; t++)
        for (int64_t i = 0; i < BR; i++)
            qt[t * BR + i] = i < br ? j->q[(q0 + i) * j->q_rs + t] * j->scale_log2 : 0.0f;
    for (int i = 0; i < BR; i++) { m[i] = -INFINITY; l[i] = 0; }
    memset(acc, 0, sizeof(float) * BR * dp);
    for (int64_t k0 = 0; k0 < j->nk; k0 += BC) {
        int64_t bc = j->nk - k0 < BC ? j->nk - k0 : BC;
        float *kp = s->kt, *vp = s->vp;
        for (int64_t c = 0; c < bc; c++) {
            memcpy(kp + c * d, j->k + (k0 + c) * j->k_rs, sizeof(float) * d);
            memcpy(vp + c * dp, j->v + (k0 + c) * j->v_rs, sizeof(float) * d);
            memset(vp + c * dp + d, 0, sizeof(float) * (dp - d));
        }
        int64_t c = 0;
        for (; c + 2 <= bc; c += 2) qk_kernel(2, st + c * BR, qt, kp + c * d, d, d);
        for (; c < bc; c++) qk_kernel(1, st + c * BR, qt, kp + c * d, d, d);
        for (int u = 0; u < 6; u++) {
            __m256 mx = _mm256_set1_ps(-INFINITY);
            for (c = 0; c < bc; c++) mx = _mm256_max_ps(mx, _mm256_load_ps(st + c * BR + 8 * u));
            __m256 mo = _mm256_load_ps(m + 8 * u), mn = _mm256_max_ps(mo, mx), sum = _mm256_setzero_ps();
            for (c = 0; c < bc; c++) {
                __m256 e = exp2_256(_mm256_sub_ps(_mm256_load_ps(st + c * BR + 8 * u), mn));
                _mm256_store_ps(st + c * BR + 8 * u, e);
                sum = _mm256_add_ps(sum, e);
            }
            __m256 cr = exp2_256(_mm256_sub_ps(mo, mn));
            _mm256_store_ps(corr + 8 * u, cr);
            _mm256_store_ps(l + 8 * u, _mm256_fmadd_ps(_mm256_load_ps(l + 8 * u), cr, sum));
            _mm256_store_ps(m + 8 * u, mn);
        }
        for (int64_t t0 = 0; t0 < dp; t0 += 16)
            for (int i = 0; i < BR; i += 4) pv_kernel(acc + i * dp + t0, dp, corr + i, st + i, vp + t0, dp, bc);
    }
    for (int64_t i = 0; i < br; i++) {
        float r = 1.0f / l[i], *o = j->o + (q0 + i) * j->o_rs;
        for (int64_t t = 0; t < d; t++) o[t] = acc[i * dp + t] * r;
    }
}

void te_cpu_kernels_avx2(te_cpu_kernels *k) {
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
    k->attn_block = k_attn_block;
}
