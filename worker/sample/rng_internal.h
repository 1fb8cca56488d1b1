/*
 * rng_internal.h - the generator object shared by rng.c, rng_cpu.c and
 * rng_philox.c.  Not part of the public API (see rng.h).
 *
 * Why a tagged struct: the samplers hold one trng_gen per image and call
 * trng_randn() without caring which source it is.
 */
#ifndef TESSERA_RNG_INTERNAL_H
#define TESSERA_RNG_INTERNAL_H

#include "rng.h"

#include <stdbool.h>

typedef struct {
    trng_mt19937 mt;
    bool has_cached_normal;  /* torch's next_double_normal_sample_ */
    double cached_normal;
} trng_cpu_state;

typedef struct {
    uint64_t seed;
    uint32_t offset;         /* A1111: +1 per randn() call */
} trng_philox_state;

struct trng_gen {
    trng_kind kind;
    uint64_t seed;
    union {
        trng_cpu_state cpu;
        trng_philox_state philox;
    } u;
};

void trng_cpu_reset(trng_cpu_state *s, uint64_t seed);
void trng_cpu_randn(trng_cpu_state *s, float *out, size_t n, bool vector_kernel);
void trng_philox_reset(trng_philox_state *s, uint64_t seed);
void trng_philox_randn(trng_philox_state *s, float *out, size_t n);

#endif
