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
 * layout); the engine works channels-last inside.
 *
 * Tiled versions (vae_tiled.c, docs/engine.md "Tiled VAE"): the same network
 * run tile by tile so that the activation arena is set by the tile size, with
 * every GroupNorm's statistics reduced over the whole feature map (exact mode:
 * equal to tmv_decode/tmv_encode up to float summation order) or estimated
 * from a downsampled pass (fast mode). */
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

/* ---- tiled (vae_tiled.c) ----------------------------------------------------
 * Exact mode: the network runs sweep by sweep over all tiles; a sweep goes
 * from the last parked activation to the next GroupNorm whose statistics are
 * not known yet, accumulating that norm's per-group sum and sum of squares
 * (double) over each tile's core region; the next sweep normalises with the
 * whole-map statistics. Between sweeps the activations are parked on the
 * host as the tiles' core regions (no overlap duplicated); each tile reads a
 * halo = the receptive field of the convolutions in the sweep from its
 * neighbours. The mid-block attention takes its keys/values from the whole
 * map (kept in the arena: 2 * latent pixels * channels * 4 bytes).
 * Fast mode: the GroupNorms above latent resolution use statistics estimated
 * by one run on a downsampled input (tiling.md 3.5); the latent-resolution
 * part (mid block with its attention) stays exact. Nothing above latent
 * resolution is parked, so memory is the arena plus a latent-sized map. */
typedef struct tmv_tile_options {
    int tile;       /* core tile side: latent px (decode), image px (encode); 0 = largest that fits `budget` */
    int pad;        /* 0 = each sweep's receptive field (exact); > 0 = this halo (latent px for decode, image px
                     * for encode, scaled to each sweep's resolution): below the receptive field, not exact */
    int fast;       /* 1 = fast mode (estimated statistics above latent resolution) */
    int park_f16;   /* 1 = parked activations stored as f16 (half the host memory, ~1e-3 error; fails above
                     * f16's range) */
    int recompute;  /* 1 = park only block inputs and recompute each ResNet block's first conv for its second
                     * norm (less host memory, ~+30% conv work); 0 = park every norm's input and residual */
    size_t budget;  /* activation arena bytes for tile = 0; 0 = the VAE's arena cap, else 1 GiB */
} tmv_tile_options;

typedef struct tmv_tile_report {
    int tile;              /* core tile side used (latent px for decode, image px for encode) */
    int tiles_y, tiles_x;  /* grid */
    int sweeps;            /* passes over all tiles (all batch items, incl. the fast estimate) */
    int fast;              /* 1 if fast mode ran (0: exact, also when the estimate was not finite) */
    int max_halo;          /* largest halo used, px at the sweep's resolution */
    size_t arena_peak;     /* activation arena high-water mark (bytes) */
    size_t parked_peak;    /* host bytes of parked activations (full-map, image-size bound) */
    double seconds;
} tmv_tile_report;

/* As tmv_decode / tmv_encode (same layouts and results up to summation
 * order in exact mode). o may be NULL (defaults: auto tile, exact, f32
 * parking, no recompute); rep may be NULL. */
int tmv_decode_tiled(tmv_vae *v, const float *latent, int B, int h, int w, float *image, const tmv_tile_options *o,
                     tmv_tile_report *rep, char *err, size_t errlen);
int tmv_encode_tiled(tmv_vae *v, const float *image, int B, int H, int W, float *mean, float *std,
                     const tmv_tile_options *o, tmv_tile_report *rep, char *err, size_t errlen);
/* Plan only (no compute, no input): the tile `o` gives or the automatic one,
 * and the arena and parked peaks a decode (enc = 0, latent h x w) or encode
 * (enc = 1, image h x w) of one image would have. */
int tmv_tiled_plan(tmv_vae *v, int enc, int h, int w, const tmv_tile_options *o, tmv_tile_report *rep, char *err,
                   size_t errlen);

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
