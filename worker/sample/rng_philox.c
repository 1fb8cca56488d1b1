/*
 * rng_philox.c - A1111's "NV" generator: Philox-4x32-10 + Box-Muller, which
 * reproduces PyTorch's CUDA randn on any hardware (a1111-compat.md 4.5).
 *
 * Why: the default A1111 source is the GPU; NV lets a CPU-only or non-NVIDIA
 * worker give the same initial noise as an A1111 user's NVIDIA card.
 *
 * Element i of the call with offset o (o = number of earlier randn calls on
 * this generator):
 *   counter = (o, 0, i, 0), key = (seed lo32, seed hi32), 10 Philox rounds
 *   with the key bumped by the Weyl constants between rounds;
 *   u = x * c + c/2, v = y * c2pi + c2pi/2 with the float32 constants
 *   c = float(2.3283064e-10), c2pi = float(2.3283064e-10 * 6.2831855);
 *   value = float32(sqrt(-2 ln u) * sin v), evaluated in double as A1111's
 *   numpy code does (uint32 x float32 promotes to float64).
 * Double libm results can differ from numpy's in the last double ulp, which
 * after rounding to float32 almost never shows; the golden test counts it.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "rng_internal.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void trng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t pa = (uint64_t)c0 * PHILOX_M0;
        uint64_t pb = (uint64_t)c2 * PHILOX_M1;
        uint32_t n0 = (uint32_t)(pb >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)pb;
        uint32_t n2 = (uint32_t)(pa >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)pa;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        if (round < 9) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void trng_nv_randn_at(uint64_t seed, uint32_t offset, float *out, size_t n)
{
    const float c = 2.3283064e-10f;
    const float c2pi = (float)(2.3283064e-10 * 6.2831855);  /* product in double */
    const double half_c = (double)(c / 2.0f);
    const double half_c2pi = (double)(c2pi / 2.0f);
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    for (size_t i = 0; i < n; i++) {
        const uint32_t ctr[4] = {offset, 0, (uint32_t)i, 0};
        uint32_t r[4];
        trng_philox4x32_10(ctr, key, r);
        double u = (double)r[0] * (double)c + half_c;
        double v = (double)r[1] * (double)c2pi + half_c2pi;
        out[i] = (float)(sqrt(-2.0 * log(u)) * sin(v));
    }
}

void trng_philox_reset(trng_philox_state *s, uint64_t seed)
{
    s->seed = seed;
    s->offset = 0;
}

void trng_philox_randn(trng_philox_state *s, float *out, size_t n)
{
    trng_nv_randn_at(s->seed, s->offset, out, n);
    s->offset++;
}
