/* latent_resize.h - torch.nn.functional.interpolate on latents, for the
 * hires fix's latent upscalers (A1111 shared.latent_upscale_modes):
 *
 *   "Latent"                       bilinear, align_corners=False
 *   "Latent (antialiased)"         bilinear, antialias=True
 *   "Latent (bicubic)"             bicubic (A = -0.75), align_corners=False
 *   "Latent (bicubic antialiased)" bicubic, antialias=True (Keys A = -0.5)
 *   "Latent (nearest)"             nearest (floor(dst * in/out))
 *   "Latent (nearest-exact)"       nearest-exact (floor((dst + 0.5) * in/out))
 *
 * Re-implemented from torch's documented semantics (aten UpSample*.cpp):
 * source index scale*(dst+0.5)-0.5 with scale = in/out in float, bilinear
 * clamps negative source positions to 0, bicubic reads clamped neighbours;
 * the antialiased modes are torch's separable "AA" kernels (support scaled
 * by the downscale factor, weights normalised over the taps inside the
 * image), width pass first. Checked against torch in tests/unit
 * (tests/golden/make_latent_resize_golden.py). */
#ifndef TESSERA_LATENT_RESIZE_H
#define TESSERA_LATENT_RESIZE_H

typedef enum {
    TPL_LAT_BILINEAR = 0,
    TPL_LAT_BILINEAR_AA,
    TPL_LAT_BICUBIC,
    TPL_LAT_BICUBIC_AA,
    TPL_LAT_NEAREST,
    TPL_LAT_NEAREST_EXACT,
    TPL_LAT_COUNT
} tpl_latent_mode;

/* A1111 name -> mode; -1 when name is not a latent mode. */
int tpl_latent_mode_find(const char *name);

/* in [c][h][w] -> out [c][oh][ow]. 0, or -1 on bad sizes / OOM. */
int tpl_latent_resize(const float *in, int c, int h, int w, float *out, int oh, int ow, tpl_latent_mode mode);

#endif
