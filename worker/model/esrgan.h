/* esrgan.h - ESRGAN-family AI upscalers (RRDBNet) on the engine, and the
 * A1111 upscaler around them.
 *
 * Networks: ESRGAN 4x, Real-ESRGAN's R-ESRGAN 4x+ / 2x+ / 4x+ Anime6B and the
 * community RRDBNet models (4x-UltraSharp, Remacri, ...): conv_first, nb RRDB
 * blocks (3 residual dense blocks of 5 convs, growth gc, LeakyReLU 0.2,
 * residual scale 0.2), trunk conv + skip, n_up x (nearest 2x, conv,
 * LeakyReLU), conv_hr + LeakyReLU, conv_last. Real-ESRGAN's 2x / 1x models
 * pixel-unshuffle the input by 2 / 4 first (conv_first then takes 12 / 48
 * channels); like spandrel (what A1111 1.8+ loads them with) the input is
 * reflect-padded to a multiple of that factor and the output cropped back.
 * Architecture from the weights: naming scheme, nb, nf, gc, n_up and the
 * unshuffle factor (docs/engine.md "ESRGAN upscalers"). Only .safetensors
 * files are loaded; pickles are refused (checkpoint_format.h).
 *
 * Images: A1111 1.10 modules/upscaler_utils.py upscale_with_model, exactly:
 * tiles of `tile` px sharing at least `overlap` px laid out by
 * images.split_grid (black beyond the image when it is smaller than a tile),
 * each tile fed to the model as B,G,R floats v/255, its output clamped to
 * [0,1], times 255, rounded half to even (numpy) to uint8, and the tiles
 * re-assembled by images.combine_grid: the first overlap*scale columns of each
 * tile (rows of each tile row) pasted over the previous through a linear mask
 * int(i*255/overlap) with PIL's integer blend. tile <= 0 runs the whole image
 * at once.
 *
 * All functions return 0 on success, -1 with a message in err; the image
 * functions return 1 when the progress callback asked to stop. A model is
 * used from one thread at a time (it owns its arena and host buffers). */
#ifndef TESSERA_ESRGAN_H
#define TESSERA_ESRGAN_H

#include "image_io.h"
#include "te_backend.h"

#include <stddef.h>

#define TME_TILE_DEFAULT 192    /* A1111 opts.ESRGAN_tile */
#define TME_OVERLAP_DEFAULT 8   /* A1111 opts.ESRGAN_tile_overlap */
#define TME_MAX_PASSES 3        /* A1111 Upscaler.upscale: at most 3 model passes */

typedef enum {
    TME_NAMES_BASICSR = 0, /* conv_first, body.N.rdbK.convJ, conv_body, conv_upI, conv_hr, conv_last */
    TME_NAMES_ESRGAN,      /* ESRGAN repo: conv_first, RRDB_trunk.N.RDBK.convJ, trunk_conv, upconvI, HRconv, conv_last */
    TME_NAMES_OLD          /* old ESRGAN: model.0, model.1.sub.N.RDBK.convJ.0, model.1.sub.<nb>, model.3, ... */
} tme_naming;

typedef struct tme_info {
    int nf;           /* features (64 in the published models) */
    int nb;           /* RRDB blocks (23; 6 for R-ESRGAN 4x+ Anime6B) */
    int gc;           /* growth channels (32) */
    int n_up;         /* nearest-2x upsamplers (1..3) */
    int shuffle;      /* pixel-unshuffle factor before conv_first: 1, 2 or 4 */
    int scale;        /* 2^n_up / shuffle: 1, 2, 4 or 8 */
    tme_naming naming;
    char prefix[16];  /* "" or the prefix every name carries ("params_ema.", "module.", ...) */
} tme_info;

typedef struct tme_options {
    te_backend *be;   /* required */
    size_t arena_cap; /* activation memory cap in bytes, 0 = unlimited */
} tme_options;

typedef struct tme_model tme_model;

/* Load a .safetensors RRDBNet. Refuses pickles (with the conversion command),
 * unreadable/truncated files (the safetensors reader's message), and other
 * architectures (naming what was expected). */
int tme_load(const char *path, const tme_options *opt, tme_model **out, char *err, size_t errlen);
void tme_free(tme_model *m);
const tme_info *tme_get_info(const tme_model *m);
const char *tme_naming_name(tme_naming n); /* "basicsr", "esrgan", "old" */
/* Peak bytes of the activation arena over every run so far. */
size_t tme_arena_peak(const tme_model *m);

/* The network on one float image: x [h][w][3] channels-last, in the channel
 * order the caller chose -> y [h*scale][w*scale][3] (unclamped). */
int tme_forward(tme_model *m, const float *x, int h, int w, float *y, char *err, size_t errlen);

typedef struct tme_upscale_opts {
    int tile;     /* tile size in px (A1111 ESRGAN_tile, 192); <= 0: no tiling */
    int overlap;  /* px shared by neighbouring tiles (ESRGAN_tile_overlap, 8); 0 <= overlap < tile */
    int rgb;      /* 0: the model sees B,G,R as in A1111 (pil_image_to_torch_bgr); 1: R,G,B */
    /* called after every tile with the tiles done and the total over all
     * passes; nonzero stops the upscale (the function then returns 1) */
    int (*progress)(void *ctx, int done, int total);
    void *ctx;
} tme_upscale_opts;

/* tile 192, overlap 8, BGR, no callback. */
tme_upscale_opts tme_upscale_defaults(void);

/* Tiles of one pass over src (RGB, or RGBA whose alpha is ignored). */
int tme_grid_tiles(int w, int h, int tile, int overlap);

/* One model pass (A1111 upscale_with_model) -> *dst, a new RGB image of
 * (w*scale) x (h*scale). */
int tme_upscale_pass(tme_model *m, const ti_image *src, const tme_upscale_opts *o, ti_image *dst, char *err,
                     size_t errlen);

/* A1111 Upscaler.upscale for an upscale by `scale` to dest_w x dest_h: model
 * passes while the image is smaller than the destination (at most 3; one pass
 * even when it is not, if scale == 1, as A1111 does), then a Pillow-exact
 * LANCZOS resize (worker/resize.h, `threads`, 0 = all CPUs) to the
 * destination when the size differs. *dst is a new RGB image. This is the
 * hook for the hires fix: upscale the first pass's image by hr_scale with a
 * named model. */
int tme_upscale(tme_model *m, const ti_image *src, double scale, int dest_w, int dest_h,
                const tme_upscale_opts *o, int threads, ti_image *dst, char *err, size_t errlen);

/* ---- upscaler names -------------------------------------------------------
 * A model is named by its folder and file stem, or by A1111's name for the
 * standard ones:
 *   "ESRGAN/<stem>"        <models>/ESRGAN/<stem>.safetensors
 *   "RealESRGAN/<stem>"    <models>/RealESRGAN/<stem>.safetensors
 *   "ESRGAN_4x"            <models>/ESRGAN/ESRGAN_4x.safetensors
 *   "R-ESRGAN 4x+"         <models>/RealESRGAN/RealESRGAN_x4plus.safetensors
 *   "R-ESRGAN 4x+ Anime6B" <models>/RealESRGAN/RealESRGAN_x4plus_anime_6B.safetensors
 *   "R-ESRGAN 2x+"         <models>/RealESRGAN/RealESRGAN_x2plus.safetensors
 * Folder prefixes and A1111 names match case-insensitively; a stem is 1..100
 * characters of letters, digits, space and _-.+()[] not starting with '.' or
 * a space (proto/job_extras.c checks the same syntax without seeing the
 * models). A trailing ".safetensors" on a stem is dropped. */
#define TME_NAME_MAX 128
/* 1 if name has that syntax; canon (may be NULL) gets the canonical spelling. */
int tme_name_parse(const char *name, char *canon, size_t canon_len);
/* The name A1111 shows (the stem for folder names), for the infotext. */
const char *tme_display_name(const char *canon);
/* The model file for name under models_dir; -1 with a message naming the path
 * looked for (and the pickle refusal when only a .pth/.pt is there). */
int tme_model_path(const char *models_dir, const char *name, char *path, size_t pathlen, char *err,
                   size_t errlen);

#endif
