/*
 * rng_cpu.c - torch.manual_seed(s) + torch.randn(n) on the CPU, bit-exact in
 * float32 (A1111 "CPU" RNG, ComfyUI initial noise).
 *
 * Why: A1111/ComfyUI users expect a seed to reproduce their picture; the CPU
 * source is the portable one, so it must match PyTorch to the bit.
 *
 * What PyTorch does (re-implemented from its documented behaviour, checked
 * against torch 2.x output by tests/golden/make_rng_golden.py):
 *  - seeding: mt19937 with state[0] = seed & 0xffffffff (the high 32 bits of
 *    the 64-bit seed are dropped), the usual 1812433253 recurrence; the cached
 *    normal sample is cleared.
 *  - float uniform: (mt() & 0xffffff) * 2^-24.
 *  - n >= 16 (float, contiguous): fill all n with uniforms, then Box-Muller in
 *    blocks of 16 (u1 = 1 - d[j], u2 = d[j+8], j < 8; cos into d[j], sin into
 *    d[j+8]); if n % 16 != 0 the last 16 slots are refilled with 16 fresh
 *    uniforms and transformed again.  On x86-64 with AVX2/AVX512 torch does
 *    the transform with the avx_mathfun (Cephes) log and sincos polynomials in
 *    float32; that is TRNG_CPU, emulated here one lane at a time with the same
 *    float operations in the same order.  torch's non-vector kernel uses libm
 *    logf/cosf/sinf with theta = float(2*pi(double) * u2); that is
 *    TRNG_CPU_SCALAR.
 *  - n < 16: at::normal_distribution<double> per element: u1, u2 double
 *    uniforms from 64-bit draws ((hi << 32 | lo) & (2^53-1)) * 2^-53,
 *    r = sqrt(-2 log1p(-u2)), theta = 2 pi u1; returns r cos(theta) and caches
 *    r sin(theta) in the generator for the next such element (the cache
 *    survives large draws and is reset by seeding).
 *
 * Exactness needs every float operation rounded on its own: no FMA
 * contraction, hence the pragma below (the build has no -ffast-math).
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "rng_internal.h"

#include <math.h>
#include <string.h>

/* ---- mt19937 ------------------------------------------------------------- */

void trng_mt19937_seed(trng_mt19937 *mt, uint32_t seed)
{
    mt->state[0] = seed;
    for (uint32_t j = 1; j < 624; j++) {
        uint32_t prev = mt->state[j - 1];
        mt->state[j] = 1812433253u * (prev ^ (prev >> 30)) + j;
    }
    mt->next = 624;
}

static void mt_twist(trng_mt19937 *mt)
{
    uint32_t *s = mt->state;
    for (int i = 0; i < 624; i++) {
        uint32_t y = (s[i] & 0x80000000u) | (s[(i + 1) % 624] & 0x7fffffffu);
        uint32_t v = s[(i + 397) % 624] ^ (y >> 1);
        if (y & 1u)
            v ^= 0x9908b0dfu;
        s[i] = v;
    }
    mt->next = 0;
}

uint32_t trng_mt19937_next(trng_mt19937 *mt)
{
    if (mt->next >= 624)
        mt_twist(mt);
    uint32_t y = mt->state[mt->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static float uniform_f32(trng_mt19937 *mt)
{
    return (float)(trng_mt19937_next(mt) & 0xffffffu) * (1.0f / 16777216.0f);
}

static double uniform_f64(trng_mt19937 *mt)
{
    uint64_t hi = trng_mt19937_next(mt);
    uint64_t lo = trng_mt19937_next(mt);
    uint64_t v = (hi << 32) | lo;
    return (double)(v & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

void trng_cpu_reset(trng_cpu_state *s, uint64_t seed)
{
    trng_mt19937_seed(&s->mt, (uint32_t)(seed & 0xffffffffu));
    s->has_cached_normal = false;
    s->cached_normal = 0.0;
}

/* ---- avx_mathfun (Cephes) log and sincos, one lane ------------------------ */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static const float K_SQRTHF = 0.707106781186547524;
static const float K_LOG_P0 = 7.0376836292E-2;
static const float K_LOG_P1 = -1.1514610310E-1;
static const float K_LOG_P2 = 1.1676998740E-1;
static const float K_LOG_P3 = -1.2420140846E-1;
static const float K_LOG_P4 = +1.4249322787E-1;
static const float K_LOG_P5 = -1.6668057665E-1;
static const float K_LOG_P6 = +2.0000714765E-1;
static const float K_LOG_P7 = -2.4999993993E-1;
static const float K_LOG_P8 = +3.3333331174E-1;
static const float K_LOG_Q1 = -2.12194440e-4;
static const float K_LOG_Q2 = 0.693359375;
static const float K_MDP1 = -0.78515625;
static const float K_MDP2 = -2.4187564849853515625e-4;
static const float K_MDP3 = -3.77489497744594108e-8;
static const float K_SIN_P0 = -1.9515295891E-4;
static const float K_SIN_P1 = 8.3321608736E-3;
static const float K_SIN_P2 = -1.6666654611E-1;
static const float K_COS_P0 = 2.443315711809948E-005;
static const float K_COS_P1 = -1.388731625493765E-003;
static const float K_COS_P2 = 4.166664568298827E-002;
static const float K_FOPI = 1.27323954473516;

/* log of x > 0 (the argument here is always in (0, 1]). */
static float cephes_logf(float x)
{
    const float min_norm = u2f(0x00800000u);
    if (!(x > min_norm))  /* max_ps(x, min_norm) */
        x = min_norm;
    uint32_t bits = f2u(x);
    int32_t imm0 = (int32_t)(bits >> 23);
    x = u2f((bits & ~0x7f800000u) | f2u(0.5f));
    imm0 -= 0x7f;
    float e = (float)imm0;
    e = e + 1.0f;
    float tmp = 0.0f, one_m = 0.0f;
    if (x < K_SQRTHF) {
        tmp = x;
        one_m = 1.0f;
    }
    x = x - 1.0f;
    e = e - one_m;
    x = x + tmp;
    float z = x * x;
    float y = K_LOG_P0;
    y = fmaf(y, x, K_LOG_P1);
    y = fmaf(y, x, K_LOG_P2);
    y = fmaf(y, x, K_LOG_P3);
    y = fmaf(y, x, K_LOG_P4);
    y = fmaf(y, x, K_LOG_P5);
    y = fmaf(y, x, K_LOG_P6);
    y = fmaf(y, x, K_LOG_P7);
    y = fmaf(y, x, K_LOG_P8);
    y = y * x;
    y = fmaf(y, z, e * K_LOG_Q1);
    tmp = z * 0.5f;
    y = y - tmp;
    tmp = e * K_LOG_Q2;
    x = x + y;
    x = x + tmp;
    return x;
}

/* sin and cos of x >= 0 (theta = 2 pi u2 is never negative here). */
static void cephes_sincosf(float x, float *s, float *c)
{
    uint32_t sign_sin = f2u(x) & 0x80000000u;
    x = u2f(f2u(x) & 0x7fffffffu);
    float y = x * K_FOPI;
    int32_t j = (int32_t)y;  /* cvttps: truncation */
    j = (j + 1) & ~1;
    y = (float)j;
    uint32_t swap_sin = ((uint32_t)j & 4u) << 29;
    bool poly_mask = (j & 2) == 0;
    x = fmaf(y, K_MDP1, x);
    x = fmaf(y, K_MDP2, x);
    x = fmaf(y, K_MDP3, x);
    int32_t j4 = j - 2;
    uint32_t sign_cos = (~(uint32_t)j4 & 4u) << 29;
    sign_sin ^= swap_sin;

    float z = x * x;
    y = K_COS_P0;
    y = fmaf(y, z, K_COS_P1);
    y = fmaf(y, z, K_COS_P2);
    y = y * z;
    float tmp = z * 0.5f;
    y = fmaf(y, z, -tmp);
    y = y + 1.0f;

    float y2 = K_SIN_P0;
    y2 = fmaf(y2, z, K_SIN_P1);
    y2 = fmaf(y2, z, K_SIN_P2);
    y2 = y2 * z;
    y2 = fmaf(y2, x, x);

    float ysin2 = poly_mask ? y2 : 0.0f;
    float ysin1 = poly_mask ? 0.0f : y;
    y2 = y2 - ysin2;
    y = y - ysin1;
    float r1 = ysin1 + ysin2;
    float r2 = y + y2;
    *s = u2f(f2u(r1) ^ sign_sin);
    *c = u2f(f2u(r2) ^ sign_cos);
}

/* ---- Box-Muller on 16 uniforms ------------------------------------------- */

static void fill16_vector(float *d)
{
    const float two_pi = (float)(2.0f * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * cephes_logf(u1));
        float theta = two_pi * u2;
        float sn, cs;
        cephes_sincosf(theta, &sn, &cs);
        float n1 = radius * cs;
        float n2 = radius * sn;
        d[j] = n1 + 0.0f;  /* fmadd(n, std = 1, mean = 0) */
        d[j + 8] = n2 + 0.0f;
    }
}

static void fill16_scalar(float *d)
{
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(2.0f * 3.14159265358979323846 * (double)u2);
        d[j] = radius * cosf(theta) + 0.0f;
        d[j + 8] = radius * sinf(theta) + 0.0f;
    }
}

static float normal_small(trng_cpu_state *s)
{
    if (s->has_cached_normal) {
        s->has_cached_normal = false;
        return (float)s->cached_normal;
    }
    double u1 = uniform_f64(&s->mt);
    double u2 = uniform_f64(&s->mt);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    s->cached_normal = r * sin(theta);
    s->has_cached_normal = true;
    return (float)(r * cos(theta));
}

void trng_cpu_randn(trng_cpu_state *s, float *out, size_t n, bool vector_kernel)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = normal_small(s);
        return;
    }
    void (*fill16)(float *) = vector_kernel ? fill16_vector : fill16_scalar;
    for (size_t i = 0; i < n; i++)
        out[i] = uniform_f32(&s->mt);
    for (size_t i = 0; i + 16 <= n; i += 16)
        fill16(out + i);
    if (n % 16 != 0) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = uniform_f32(&s->mt);
        fill16(tail);
    }
}
