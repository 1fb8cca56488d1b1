/*
 * rng.h - random number generators that reproduce the noise A1111 users know.
 *
 * Why: a seed typed into an A1111 client must give the same picture on Tessera.
 * That needs the exact initial latent noise, so this module re-implements, in
 * plain C with no global state:
 *
 *   TRNG_CPU         torch.manual_seed(s) + torch.randn(n) on the CPU, bit-exact
 *                    in float32 as x86-64 PyTorch computes it (AVX2/AVX512
 *                    kernels: mt19937, uniforms in blocks of 16, Box-Muller
 *                    with the avx_mathfun log/sincos polynomials; n < 16 uses
 *                    torch's double normal_distribution with its cached second
 *                    value).  A1111 "CPU" RNG, ComfyUI's initial noise.
 *   TRNG_CPU_SCALAR  the same stream through torch's non-vector kernel
 *                    (libm logf/sinf/cosf), as torch gives with
 *                    ATEN_CPU_CAPABILITY=default or on CPUs without AVX2.
 *   TRNG_NV          A1111's "NV" Philox-4x32-10 generator (rng_philox.py):
 *                    offset +1 per randn call, Box-Muller in float64.
 *   TRNG_GPU         A1111's default "GPU" source.  torch CUDA randn cannot run
 *                    here; its first draw of a fresh generator equals NV (see
 *                    a1111-compat.md 4.5), so GPU is computed exactly as NV.
 *                    Later draws also equal NV while numel fits one CUDA launch
 *                    (inferred, unverified on hardware).
 *
 * A1111 noise semantics (seed/subseed/slerp/seed resize/ENSD) are in
 * trng_image_noise(); see rng_noise.c.  Errors are returned as values.
 */
#ifndef TESSERA_RNG_H
#define TESSERA_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TRNG_CPU = 0,
    TRNG_CPU_SCALAR = 1,
    TRNG_NV = 2,
    TRNG_GPU = 3,
} trng_kind;

typedef enum {
    TRNG_OK = 0,
    TRNG_EINVAL = -1,  /* bad argument (NULL pointer, unknown kind, bad size) */
    TRNG_ENOMEM = -2,  /* allocation failed */
} trng_status;

typedef struct trng_gen trng_gen;

/* ---- generators (rng_cpu.c, rng_philox.c) -------------------------------- */

/* A fresh generator, as torch.Generator().manual_seed(seed) (CPU kinds: only
 * the low 32 bits reach mt19937, as in torch) or rng_philox.Generator(seed)
 * (NV/GPU: the full 64 bits are the Philox key). */
trng_status trng_create(trng_kind kind, uint64_t seed, trng_gen **out);
void trng_free(trng_gen *gen);
/* Reseed in place; the state afterwards equals a fresh trng_create(). */
trng_status trng_reseed(trng_gen *gen, uint64_t seed);
/* One torch.randn(n) call: fills out[0..n) and advances the generator. */
trng_status trng_randn(trng_gen *gen, float *out, size_t n);
trng_kind trng_gen_kind(const trng_gen *gen);

/* Names as A1111 writes them in settings/infotext: "CPU", "GPU", "NV"
 * ("CPU-scalar" for TRNG_CPU_SCALAR).  Parsing is case-insensitive. */
const char *trng_kind_name(trng_kind kind);
trng_status trng_kind_from_name(const char *name, trng_kind *out);

/* Low-level pieces, exposed for tests. */
typedef struct {
    uint32_t state[624];
    int next;
} trng_mt19937;
void trng_mt19937_seed(trng_mt19937 *mt, uint32_t seed);
uint32_t trng_mt19937_next(trng_mt19937 *mt);
/* Philox-4x32-10 on counter ctr[4] with key key[2]; result in out[4]. */
void trng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* A1111 NV draw at an explicit call offset (stateless). */
void trng_nv_randn_at(uint64_t seed, uint32_t offset, float *out, size_t n);

/* ---- A1111 image noise (rng_noise.c) ------------------------------------- */

typedef struct {
    trng_kind source;         /* CPU, NV or GPU (opts.randn_source) */
    uint64_t seed;            /* the job's seed (already resolved, not -1) */
    uint64_t subseed;         /* variation seed */
    double subseed_strength;  /* 0 = no variation */
    int width, height;        /* image size in pixels; latent is /8 */
    int seed_resize_from_w;   /* "resize seed from" in pixels; <= 0 = off */
    int seed_resize_from_h;
    int64_t ensd;             /* eta_noise_seed_delta, 0 = off */
    int channels;             /* latent channels; 0 means 4 */
    int downscale;            /* VAE pixel->latent factor; 0 means 8 */
} trng_noise_params;

/* Seeds of image `index` (0-based over batch_size * n_iter) as A1111 assigns
 * them: seed + index when subseed_strength == 0, else seed for all images;
 * subseed + index always. */
void trng_image_seeds(const trng_noise_params *p, size_t index,
                      uint64_t *seed_out, uint64_t *subseed_out);

/* Number of floats of one image's latent noise: channels * (h/f) * (w/f), f = downscale. */
size_t trng_latent_count(const trng_noise_params *p);

/* First noise of image `index` into out[trng_latent_count(p)] (layout C,H,W),
 * exactly as A1111's ImageRNG.first().  If sampler_gen is not NULL it receives
 * the generator that the sampler must draw later per-step noise from (one
 * trng_randn of trng_latent_count() per A1111 rng.next()): seed_i + ENSD
 * fresh when ENSD != 0, else the image's own generator after its first draw.
 * The caller frees it with trng_free. */
trng_status trng_image_noise(const trng_noise_params *p, size_t index, float *out,
                             trng_gen **sampler_gen);

/* A1111's slerp(val, low, high) on (C,H,W) tensors: normalised over dim 1 (H)
 * for every (c, x) column; lerp fallback (with A1111's swapped weights) when
 * the mean dot product exceeds 0.9995.  out may alias low or high. */
trng_status trng_slerp(double val, const float *low, const float *high, float *out,
                       int c, int h, int w);

/* Paste noise (c, nh, nw) centred into x (c, h, w) as A1111's seed resize. */
void trng_paste_centered(const float *noise, int nh, int nw, float *x, int h, int w, int c);

/* A1111 seed resolution: seed < 0 means random; the value is drawn from
 * `entropy` into [0, 4294967294) as A1111's random.randrange(4294967294). */
uint64_t trng_resolve_seed(int64_t seed, uint64_t entropy);

#endif
