/*
 * rng_noise.c - A1111's initial latent noise per image: seeds of a batch,
 * variation seeds (slerp), "resize seed from W x H", and the generator that
 * ancestral/SDE samplers keep drawing from (ENSD).
 *
 * Why: reproduce A1111's processing/ImageRNG behaviour (a1111-compat.md 4.3)
 * so an A1111 seed gives the same picture here.  What is implemented:
 *
 *  - image i (0-based over batch_size * n_iter): seed_i = seed + i when
 *    subseed_strength == 0, else seed; subseed_i = subseed + i.
 *  - noise_shape = (C, from_h/8, from_w/8) when both resize-from values are
 *    > 0, else the latent shape (C, h/8, w/8).
 *  - strength != 0: subnoise = first draw of a fresh generator(subseed_i) at
 *    noise_shape.
 *  - noise = first draw of generator(seed_i) at noise_shape (a private fresh
 *    generator when noise_shape differs from the latent shape).
 *  - noise = slerp(strength, noise, subnoise) when there is subnoise.
 *  - noise_shape != latent shape: x = first draw of image i's own
 *    generator(seed_i) at the latent shape, the centred crop/pad of noise
 *    pasted into it (Python floor division for the offsets), result x.
 *  - later noise: ENSD != 0 -> fresh generator(seed_i + ENSD); else image
 *    i's generator, which has made exactly one latent-shape draw by then.
 *  - GPU source: computed as NV (identical first draw; see rng.h).
 *
 * slerp follows A1111's formula on a (C,H,W) tensor, reducing over dim 1
 * (H) for every (c, x): norms and dot products are accumulated in double
 * (torch reduces float32 in its own order, so results can differ from torch
 * in the last few float32 ulp; the noise itself is bit-exact).
 */
#include "rng_internal.h"

#include <math.h>
#include <stdlib.h>

static int floordiv(int a, int b)
{
    int q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

void trng_image_seeds(const trng_noise_params *p, size_t index,
                      uint64_t *seed_out, uint64_t *subseed_out)
{
    if (seed_out)
        *seed_out = p->seed + (p->subseed_strength == 0.0 ? (uint64_t)index : 0);
    if (subseed_out)
        *subseed_out = p->subseed + (uint64_t)index;
}

static int channels_of(const trng_noise_params *p)
{
    return p->channels > 0 ? p->channels : 4;
}

static int factor_of(const trng_noise_params *p)
{
    return p->downscale > 0 ? p->downscale : 8;
}

size_t trng_latent_count(const trng_noise_params *p)
{
    if (!p || p->width < factor_of(p) || p->height < factor_of(p))
        return 0;
    return (size_t)channels_of(p) * (size_t)(p->height / factor_of(p)) * (size_t)(p->width / factor_of(p));
}

uint64_t trng_resolve_seed(int64_t seed, uint64_t entropy)
{
    if (seed >= 0)
        return (uint64_t)seed;
    return entropy % UINT64_C(4294967294);
}

void trng_paste_centered(const float *noise, int nh, int nw, float *x, int h, int w, int c)
{
    int dx = floordiv(w - nw, 2);
    int dy = floordiv(h - nh, 2);
    int cw = dx >= 0 ? nw : nw + 2 * dx;
    int ch = dy >= 0 ? nh : nh + 2 * dy;
    int tx = dx < 0 ? 0 : dx;
    int ty = dy < 0 ? 0 : dy;
    int sx = dx < 0 ? -dx : 0;
    int sy = dy < 0 ? -dy : 0;
    for (int k = 0; k < c; k++)
        for (int r = 0; r < ch; r++)
            for (int q = 0; q < cw; q++)
                x[((size_t)k * h + ty + r) * w + tx + q] =
                    noise[((size_t)k * nh + sy + r) * nw + sx + q];
}

trng_status trng_slerp(double val, const float *low, const float *high, float *out,
                       int c, int h, int w)
{
    if (!low || !high || !out || c <= 0 || h <= 0 || w <= 0)
        return TRNG_EINVAL;
    size_t cols = (size_t)c * w;
    float *dot = malloc(cols * sizeof *dot);
    float *nlo = malloc(cols * sizeof *nlo);
    float *nhi = malloc(cols * sizeof *nhi);
    if (!dot || !nlo || !nhi) {
        free(dot); free(nlo); free(nhi);
        return TRNG_ENOMEM;
    }
    double mean = 0.0;
    for (int k = 0; k < c; k++) {
        for (int x = 0; x < w; x++) {
            double sl = 0.0, sh = 0.0;
            for (int y = 0; y < h; y++) {
                double a = low[((size_t)k * h + y) * w + x];
                double b = high[((size_t)k * h + y) * w + x];
                sl += a * a;
                sh += b * b;
            }
            float ln = (float)sqrt(sl), hn = (float)sqrt(sh);
            double d = 0.0;
            for (int y = 0; y < h; y++) {
                size_t i = ((size_t)k * h + y) * w + x;
                float a = low[i] / ln, b = high[i] / hn;
                d += (double)(a * b);
            }
            size_t col = (size_t)k * w + x;
            dot[col] = (float)d;
            mean += dot[col];
        }
    }
    mean /= (double)cols;
    size_t n = cols * (size_t)h;
    if (mean > 0.9995) {
        float fv = (float)val, fw = (float)(1.0 - val);
        for (size_t i = 0; i < n; i++)
            out[i] = low[i] * fv + high[i] * fw;  /* A1111's weights, as is */
    } else {
        float fa = (float)(1.0 - val), fb = (float)val;
        for (size_t col = 0; col < cols; col++) {
            float omega = acosf(dot[col]);
            float so = sinf(omega);
            nlo[col] = sinf(fa * omega) / so;
            nhi[col] = sinf(fb * omega) / so;
        }
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    size_t i = ((size_t)k * h + y) * w + x, col = (size_t)k * w + x;
                    out[i] = nlo[col] * low[i] + nhi[col] * high[i];
                }
    }
    free(dot); free(nlo); free(nhi);
    return TRNG_OK;
}

static trng_kind draw_kind(trng_kind source)
{
    return source == TRNG_GPU ? TRNG_NV : source;
}

/* First draw of a fresh generator(seed) of n floats. */
static trng_status fresh_draw(trng_kind kind, uint64_t seed, float *out, size_t n)
{
    trng_gen *g;
    trng_status st = trng_create(kind, seed, &g);
    if (st != TRNG_OK)
        return st;
    st = trng_randn(g, out, n);
    trng_free(g);
    return st;
}

trng_status trng_image_noise(const trng_noise_params *p, size_t index, float *out,
                             trng_gen **sampler_gen)
{
    if (sampler_gen)
        *sampler_gen = NULL;
    int f = p ? factor_of(p) : 8;
    if (!p || !out || p->width < f || p->height < f)
        return TRNG_EINVAL;
    trng_kind kind = draw_kind(p->source);
    int c = channels_of(p), h = p->height / f, w = p->width / f;
    int nh = h, nw = w;
    if (p->seed_resize_from_h > 0 && p->seed_resize_from_w > 0) {
        nh = p->seed_resize_from_h / f;
        nw = p->seed_resize_from_w / f;
        if (nh <= 0 || nw <= 0)
            return TRNG_EINVAL;
    }
    bool resize = nh != h || nw != w;
    size_t count = (size_t)c * h * w, ncount = (size_t)c * nh * nw;
    uint64_t seed, subseed;
    trng_image_seeds(p, index, &seed, &subseed);

    trng_gen *gen = NULL;  /* image i's own generator */
    trng_status st = trng_create(kind, seed, &gen);
    if (st != TRNG_OK)
        return st;
    float *noise = resize ? malloc(ncount * sizeof *noise) : out;
    float *sub = p->subseed_strength != 0.0 ? malloc(ncount * sizeof *sub) : NULL;
    if ((resize && !noise) || (p->subseed_strength != 0.0 && !sub)) {
        st = TRNG_ENOMEM;
        goto done;
    }
    if (sub && (st = fresh_draw(kind, subseed, sub, ncount)) != TRNG_OK)
        goto done;
    st = resize ? fresh_draw(kind, seed, noise, ncount) : trng_randn(gen, noise, count);
    if (st != TRNG_OK)
        goto done;
    if (sub && (st = trng_slerp(p->subseed_strength, noise, sub, noise, c, nh, nw)) != TRNG_OK)
        goto done;
    if (resize) {
        if ((st = trng_randn(gen, out, count)) != TRNG_OK)
            goto done;
        trng_paste_centered(noise, nh, nw, out, h, w, c);
    }
    if (p->ensd != 0)
        st = trng_reseed(gen, seed + (uint64_t)p->ensd);
done:
    if (resize)
        free(noise);
    free(sub);
    if (st == TRNG_OK && sampler_gen) {
        *sampler_gen = gen;
        gen = NULL;
    }
    trng_free(gen);
    return st;
}
