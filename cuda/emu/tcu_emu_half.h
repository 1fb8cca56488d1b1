/* tcu_emu_half.h - bit-exact f16 / bf16 <-> f32 conversions as the device
 * does them (cvt.rn: round to nearest even, subnormals kept, overflow to inf;
 * a NaN input becomes the canonical NaN 0x7fff, as __float2half_rn and
 * __float2bfloat16_rn produce), for the emulator build. Widening is exact
 * (a NaN keeps its sign and payload). Own code, independent of te_half.c,
 * and tested against it. */
#ifndef TCU_EMU_HALF_H
#define TCU_EMU_HALF_H
#include <stdint.h>
#include <string.h>

static inline uint32_t tcu_emu_fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float tcu_emu_bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline uint16_t tcu_emu_f32_to_f16(float f) {
    uint32_t x = tcu_emu_fbits(f), sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) return 0x7fffu;                 /* NaN */
    if (x >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* >= 65520 (and inf) -> inf */
    if (x < 0x38800000u) {                               /* below 2^-14: f16 subnormal or zero */
        if (x <= 0x33000000u) return (uint16_t)sign;      /* <= 2^-25 (the tie rounds to even 0) */
        uint32_t e = x >> 23, m = (x & 0x7fffffu) | 0x800000u, sh = 126 - e;
        uint32_t r = m >> sh, rem = m & ((1u << sh) - 1), half = 1u << (sh - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((((x >> 23) - 112) << 10) | ((x >> 13) & 0x3ffu)), rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;   /* carry may reach the exponent: right */
    return (uint16_t)(sign | r);
}

static inline float tcu_emu_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {                                        /* zero / subnormal: m * 2^-24, exact */
        float v = (float)m * 5.9604644775390625e-08f;
        return tcu_emu_bitsf(tcu_emu_fbits(v) | sign);
    }
    if (e == 31) return tcu_emu_bitsf(sign | 0x7f800000u | (m << 13));
    return tcu_emu_bitsf(sign | ((e + 112) << 23) | (m << 13));
}

static inline uint16_t tcu_emu_f32_to_bf16(float f) {
    uint32_t x = tcu_emu_fbits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;   /* NaN */
    x += 0x7fffu + ((x >> 16) & 1u);                      /* RNE; overflow lands on inf */
    return (uint16_t)(x >> 16);
}

static inline float tcu_emu_bf16_to_f32(uint16_t h) { return tcu_emu_bitsf((uint32_t)h << 16); }

#endif
