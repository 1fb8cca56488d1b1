/*
 * rng.c - the trng_gen object: create, reseed, draw, free, kind names.
 *
 * Why: one handle type for every noise source (CPU mt19937, NV/GPU Philox),
 * so sampler code can keep drawing per-step noise from whatever generator
 * trng_image_noise() handed it.  No global state: each generator is its own
 * object, and the same seed always gives the same stream.
 */
#include "rng_internal.h"

#include <stdlib.h>
#include <strings.h>

static bool kind_valid(trng_kind kind)
{
    return kind == TRNG_CPU || kind == TRNG_CPU_SCALAR || kind == TRNG_NV || kind == TRNG_GPU;
}

trng_status trng_reseed(trng_gen *gen, uint64_t seed)
{
    if (!gen)
        return TRNG_EINVAL;
    gen->seed = seed;
    if (gen->kind == TRNG_CPU || gen->kind == TRNG_CPU_SCALAR)
        trng_cpu_reset(&gen->u.cpu, seed);
    else
        trng_philox_reset(&gen->u.philox, seed);
    return TRNG_OK;
}

trng_status trng_create(trng_kind kind, uint64_t seed, trng_gen **out)
{
    if (!out)
        return TRNG_EINVAL;
    *out = NULL;
    if (!kind_valid(kind))
        return TRNG_EINVAL;
    trng_gen *g = calloc(1, sizeof *g);
    if (!g)
        return TRNG_ENOMEM;
    g->kind = kind;
    trng_reseed(g, seed);
    *out = g;
    return TRNG_OK;
}

void trng_free(trng_gen *gen)
{
    free(gen);
}

trng_status trng_randn(trng_gen *gen, float *out, size_t n)
{
    if (!gen || (!out && n))
        return TRNG_EINVAL;
    switch (gen->kind) {
    case TRNG_CPU:
        trng_cpu_randn(&gen->u.cpu, out, n, true);
        return TRNG_OK;
    case TRNG_CPU_SCALAR:
        trng_cpu_randn(&gen->u.cpu, out, n, false);
        return TRNG_OK;
    case TRNG_NV:
    case TRNG_GPU:
        if (n > UINT32_MAX)  /* the element index is one 32-bit counter word */
            return TRNG_EINVAL;
        trng_philox_randn(&gen->u.philox, out, n);
        return TRNG_OK;
    }
    return TRNG_EINVAL;
}

trng_kind trng_gen_kind(const trng_gen *gen)
{
    return gen->kind;
}

const char *trng_kind_name(trng_kind kind)
{
    switch (kind) {
    case TRNG_CPU: return "CPU";
    case TRNG_CPU_SCALAR: return "CPU-scalar";
    case TRNG_NV: return "NV";
    case TRNG_GPU: return "GPU";
    }
    return "?";
}

trng_status trng_kind_from_name(const char *name, trng_kind *out)
{
    static const trng_kind all[] = {TRNG_CPU, TRNG_CPU_SCALAR, TRNG_NV, TRNG_GPU};
    if (!name || !out)
        return TRNG_EINVAL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcasecmp(name, trng_kind_name(all[i])) == 0) {
            *out = all[i];
            return TRNG_OK;
        }
    }
    return TRNG_EINVAL;
}
