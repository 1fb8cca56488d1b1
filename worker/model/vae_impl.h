/* vae_impl.h - private to worker/model/vae*.c: the AutoencoderKL's weights
 * and state, shared by the untiled forward (vae.c) and the tiled one
 * (vae_tiled.c), which builds its own per-tile op sequence from the same
 * weights. Not a public header: callers use vae.h. */
#ifndef TESSERA_VAE_IMPL_H
#define TESSERA_VAE_IMPL_H

#include "vae.h"

#include "te_arena.h"
#include "te_weights.h"

#define TMV_GN_EPS 1e-6f
#define TMV_MAX_LEVELS 8
#define TMV_MAX_LAYERS 8

typedef struct { te_tensor *n1g, *n1b, *c1w, *c1b, *n2g, *n2b, *c2w, *c2b, *scw, *scb; } tmv_res_w;
typedef struct { te_tensor *ng, *nb, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo; } tmv_attn_w;
typedef struct { te_tensor *w, *b; } tmv_conv_w;

typedef struct {
    tmv_conv_w conv_in, conv_out;
    tmv_res_w res[TMV_MAX_LEVELS][TMV_MAX_LAYERS];
    tmv_conv_w resample[TMV_MAX_LEVELS];
    tmv_res_w mid[2];
    tmv_attn_w attn;
    te_tensor *nog, *nob;
} tmv_side_w;

struct tmv_vae {
    te_backend *be;
    te_weights *w;
    te_arena *arena;
    size_t arena_cap;
    int levels, layers, z, groups, ch[TMV_MAX_LEVELS];
    float sf;
    tmv_side_w enc, dec;
    tmv_conv_w quant, post_quant;
    float *host;
    size_t host_n;
};

/* Moments [B, 2z, hw] (NCHW, mean then log-variance) -> posterior mean and
 * std [B, z, hw], log-variance clamped to [-30, 20] as diffusers does. */
void tmv__moments_to_posterior(const tmv_vae *v, const float *mom, int B, size_t hw, float *mean, float *std);

#endif
