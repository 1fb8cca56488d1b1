/* te_half.c - bit-exact scalar f16/bf16 conversions (see te_half.h). */
#include "te_half.h"
#include <string.h>

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float te_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return u2f(sign | 0x7f800000u | (man << 13));     /* inf/nan */
    if (exp == 0) {
        if (man == 0) return u2f(sign);                                /* +-0 */
        /* subnormal: value = man * 2^-24, exact in f32 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t te_f32_to_f16(float f) {
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) {                        /* inf or nan */
        if (a == 0x7f800000u) return sign | 0x7c00;
        return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff);
    }
    if (a >= 0x477ff000u) return sign | 0x7c00;    /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                          /* below 2^-14: subnormal or zero */
        if (a < 0x33000000u) return sign;           /* < 2^-25: rounds to 0 (tie at 2^-25 -> even 0) */
        uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
        int shift = 126 - (int)e;                   /* result = m >> (shift) with 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return sign | (uint16_t)r;
    }
    /* normal: rebias exponent, round mantissa from 23 to 10 bits (RNE) */
    uint32_t r = a - 0x38000000u;                  /* exponent 127 -> 15 */
    uint32_t lsb = (r >> 13) & 1;
    r += 0xfff + lsb;
    return sign | (uint16_t)(r >> 13);
}

float te_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t te_f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
