/* te_half.h - exact f16 / bf16 <-> f32 conversion (scalar, portable).
 *
 * Widening (f16/bf16 -> f32) is exact. Narrowing (f32 -> f16/bf16) rounds to
 * nearest, ties to even, handles subnormals, overflows to inf, and keeps NaN a
 * NaN (quiet, sign kept, payload truncated). These are the reference versions;
 * the CPU backend uses F16C / AVX-512 for bulk conversion and is tested
 * against these bit-for-bit. */
#ifndef TE_HALF_H
#define TE_HALF_H
#include <stdint.h>

float    te_f16_to_f32(uint16_t h);
uint16_t te_f32_to_f16(float f);
float    te_bf16_to_f32(uint16_t h);
uint16_t te_f32_to_bf16(float f);

#endif
