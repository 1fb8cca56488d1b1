/* vae.h - the AutoencoderKL of Stable Diffusion (encoder -> posterior mean and
 * std, decoder latent -> image) on the engine, numerically equal to diffusers'
 * AutoencoderKL on the same weights.
 *
 * Architecture from tensor shapes: levels and channels from the encoder's
 * down blocks, layers per block by probing, latent channels from
 * post_quant_conv. GroupNorm groups and scaling_factor come from a folder's
 * vae/config.json, else the options, else SD's 32 and 0.18215.
 * GroupNorm eps 1e-6, SiLU, one attention block (single head over H*W
 * tokens) in each mid block, nearest 2x upsampling, and the downsampling
 * conv's asymmetric (0,1,0,1) padding done as a stride-1 pad-1 conv followed
 * by taking the odd rows/columns (te_interpolate nearest-exact /2), since
 * te_conv2d pads symmetrically. Images are NCHW on the host side (torch
 * layout); the engine works channels-last inside. */
#ifndef TESSERA_VAE_H
#define TESSERA_VAE_H

#include "checkpoint.h"
#include "te_backend.h"

#include <stddef.h>

typedef struct tmv_options {
    te_backend *be;        /* required */
    int norm_groups;       /* 0 = config.json, else 32 */
    float scaling_factor;  /* 0 = config.json, else 0.18215 */
    size_t arena_cap;      /* 0 = unlimited */
} tmv_options;

typedef struct tmv_vae tmv_vae;

int tmv_load(const tck_model *m, tmv_vae **out, const tmv_options *opt, char *err, size_t errlen);
void tmv_free(tmv_vae *v);
/* Peak bytes of the activation arena over every run so far. */
size_t tmv_arena_peak(const tmv_vae *v);

/* image [B,3,H,W] (NCHW, about [-1,1], H and W multiples of the downscale) ->
 * posterior mean and std [B,z,H/f,W/f] (unscaled: a sampler's latent is
 * (mean + std * noise) * scaling_factor). */
int tmv_encode(tmv_vae *v, const float *image, int B, int H, int W, float *mean, float *std, char *err,
               size_t errlen);
/* latent [B,z,h,w] as the sampler makes it (scaled); divided by scaling_factor
 * here -> image [B,3,h*f,w*f] NCHW, unclamped. */
int tmv_decode(tmv_vae *v, const float *latent, int B, int h, int w, float *image, char *err, size_t errlen);

int tmv_latent_channels(const tmv_vae *v);
int tmv_downscale(const tmv_vae *v);      /* 2^(levels-1): 8 for SD */
float tmv_scaling_factor(const tmv_vae *v);

/* diffusers name within the VAE -> LDM name within first_stage_model., for a
 * VAE of `levels` levels (decoder up block order is reversed in LDM). */
int tmv_map_levels(const char *diffusers_name, int levels, char *out, size_t outlen);
/* tck_mapper-shaped versions for 1..4 levels (SD: 4). */
int tmv_map_l1(const char *n, char *out, size_t outlen);
int tmv_map_l2(const char *n, char *out, size_t outlen);
int tmv_map_l3(const char *n, char *out, size_t outlen);
int tmv_map_l4(const char *n, char *out, size_t outlen);

#endif
