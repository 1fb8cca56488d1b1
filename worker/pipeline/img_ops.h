/*
 * img_ops.h -- the pixel-side image operations of A1111 img2img and
 * inpainting, bit-exact to what A1111 1.10 computes with Pillow 9.5,
 * OpenCV (opencv-python-headless 4.x / 5.x) and numpy.
 *
 * Why exact: an inpainting job sent to Tessera must give the same pixels as
 * the same job sent to A1111.  The mask blur, the crop region, the masked
 * content "fill" and the final overlay decide which pixels are repainted and
 * how they are blended, so "close" is not enough: a one-level difference in
 * the blurred mask moves the crop region, and the crop region moves every
 * pixel of the result.  Each function below names the A1111 / Pillow /
 * OpenCV operation it reproduces (shared/reference/tiling.md section 6,
 * a1111-compat.md 1.4) and is checked against goldens made with those
 * libraries (tests/golden/make_img_ops_golden.py).
 *
 * Images are ti_image (8-bit RGB / RGBA, interleaved).  Masks are tio_mask:
 * 8-bit single channel, Pillow mode 'L'.  A1111 sometimes carries masks as
 * RGB images with R = G = B (resize_image always returns RGB); every such
 * mask converts to 'L' unchanged, so one channel is all this module keeps.
 *
 * Errors are values: functions returning int return 0 on success and -1 on
 * error with the reason in err (err may be NULL).  Outputs are allocated by
 * the callee and owned by the caller (ti_image_free / tio_mask_free); on
 * error they are left zeroed.  No globals; every function is re-entrant.
 */
#ifndef TESSERA_IMG_OPS_H
#define TESSERA_IMG_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "image_io.h"

/* 8-bit single-channel image (Pillow 'L'), row-major, no padding. */
typedef struct {
    int width, height;
    uint8_t *pixels;
} tio_mask;

/* A rectangle in Pillow box convention: x1, y1 inclusive; x2, y2 exclusive. */
typedef struct {
    int x1, y1, x2, y2;
} tio_rect;

/* Allocate a zeroed w x h mask (w, h > 0, w*h <= TI_HARD_MAX_PIXELS). */
int tio_mask_alloc(tio_mask *m, int width, int height, char *err, size_t errlen);
/* Free the pixels and zero the struct; NULL and zeroed masks are fine. */
void tio_mask_free(tio_mask *m);
/* Pillow convert('L') of an RGB/RGBA image: L = (R*19595 + G*38470 +
 * B*7471 + 0x8000) >> 16 (alpha ignored).  An R=G=B image gives R. */
int tio_mask_from_image(const ti_image *img, tio_mask *out, char *err, size_t errlen);
/* The mask as an RGB image (R = G = B = L), Pillow convert('RGB'). */
int tio_mask_to_rgb(const tio_mask *m, ti_image *out, char *err, size_t errlen);

/* ---- 1. resize_image ---------------------------------------------------------- */

/* A1111 images.resize_image(resize_mode, im, w, h) with the upscaler "None"
 * (every resize is Pillow LANCZOS, via tr_resize):
 *   0  just resize to w x h;
 *   1  crop and resize: scale to cover w x h keeping the aspect ratio
 *      (the scaled side is floor(side * other / other_src)), paste centred
 *      at (w/2 - sw/2, h/2 - sh/2) (integer halves), the excess cropped;
 *   2  resize and fill: scale to fit, paste centred, then fill each empty
 *      band with the image's edge stretched: A1111 calls Pillow resize on
 *      the resized image with a zero-height (or zero-width) box at the edge
 *      and no resample argument, i.e. BICUBIC; with a zero-size box every
 *      output line is the same blend of the two lines nearest that edge,
 *      1.125 * edge - 0.125 * next (22-bit fixed point, clipped), repeated
 *      across the band.  When the two bands differ by one the far band is
 *      cut by a line, or a line at the far edge stays black -- as in A1111;
 *   3  A1111's "latent upscale" mode: resize_image has no branch for it and
 *      takes the mode 2 path, so 3 behaves exactly like 2 here.  (A1111
 *      never resizes the init *image* in mode 3 -- it is scaled in latent
 *      space -- but it does pass masks through resize_image(3, ...).)
 * Modes 1-3 build a new RGB canvas (black where nothing is pasted).
 * in: RGB (3 channels); RGBA is refused (A1111 flattens init images to RGB
 * before resizing).  A computed scaled side of 0 is an error, as in Pillow. */
int tio_resize_image(const ti_image *in, int mode, int w, int h, ti_image *out,
                     char *err, size_t errlen);
/* The same for a mask ('L' in; Pillow resamples each channel alike, so the
 * result equals channel 0 of resizing the mask as RGB). */
int tio_resize_mask(const tio_mask *in, int mode, int w, int h, tio_mask *out,
                    char *err, size_t errlen);

/* ---- 2. mask preparation ---------------------------------------------------------- */

/* A1111 create_binary_mask: when img is RGBA and some alpha is below 255,
 * the mask is the alpha channel, thresholded (alpha > 128 ? 255 : 0) when
 * round_mask; otherwise the image converted to 'L' (tio_mask_from_image).
 * Note: A1111 looks only at Pillow mode 'RGBA'; callers that decode an
 * 'LA' / 'P'-with-transparency PNG to RGBA get the alpha path here where
 * A1111 would take the grey one. */
int tio_binary_mask(const ti_image *img, int round_mask, tio_mask *out, char *err, size_t errlen);
/* ImageOps.invert: v -> 255 - v, in place. */
void tio_mask_invert(tio_mask *m);

/* The Gaussian kernel size A1111 uses for a mask blur sigma:
 * 2 * int(2.5 * sigma + 0.5) + 1 (sigma > 0). */
int tio_blur_ksize(double sigma);

/* One cv2.GaussianBlur call on an 8-bit single-channel image with a 1-D
 * kernel: ksize x 1 (horizontal != 0) or 1 x ksize, the given sigma,
 * BORDER_REFLECT_101, in place.  Bit-exact to OpenCV's 8U path: the kernel
 * is OpenCV's (exp(-d^2 / (2 sigma^2)) normalised; sigma <= 0 uses OpenCV's
 * binomial tables for ksize 3..9 and 0.3*((ksize-1)/2 - 1) + 0.8 otherwise),
 * quantised to 8 fractional bits by error diffusion so that the taps sum
 * to exactly 256; out = (sum(k_i * p_i) + 128) >> 8.
 * ksize: odd, >= 1.  A 1-pixel-wide image is returned unchanged, as OpenCV
 * does (its reflect-101 border of one pixel is that pixel). */
int tio_cv_gaussian_blur_1d(tio_mask *m, int horizontal, int ksize, double sigma,
                            char *err, size_t errlen);
/* A1111's mask blur, in place: when blur_x > 0 one horizontal call with
 * ksize tio_blur_ksize(blur_x), sigma blur_x; then when blur_y > 0 one
 * vertical call likewise (two separate cv2.GaussianBlur calls, so the
 * intermediate is rounded to 8 bits).  Values <= 0 skip that axis. */
int tio_mask_blur(tio_mask *m, double blur_x, double blur_y, char *err, size_t errlen);

/* ---- 3. "only masked" crop region --------------------------------------------------- */

/* A1111 masking.get_crop_region_v2(mask, pad): the bounding box of the
 * non-zero pixels (Pillow getbbox), grown by pad on each side and clamped
 * to the mask.  Returns 1 with *out set, 0 when the mask is all zero (A1111
 * returns None and falls back to whole-picture img2img), -1 on error
 * (pad < 0, bad mask). */
int tio_crop_region(const tio_mask *m, int pad, tio_rect *out, char *err, size_t errlen);
/* A1111 masking.expand_crop_region: grow the short side of r so that its
 * aspect ratio matches proc_w / proc_h (the difference truncated to an
 * integer, split d//2 before and d - d//2 after), shift it back inside the
 * image when it crosses the far edge, then the near edge, then clamp the
 * far edge.  Arithmetic is A1111's (double ratios, int() truncation, floor
 * division).  r must be non-empty; proc_w, proc_h > 0.  Returns the region. */
tio_rect tio_expand_crop_region(tio_rect r, int proc_w, int proc_h, int image_w, int image_h);

/* Pillow Image.crop(box): the box may extend outside the source (those
 * pixels are zero); x2 > x1 and y2 > y1. */
int tio_crop_image(const ti_image *in, tio_rect box, ti_image *out, char *err, size_t errlen);
int tio_crop_mask(const tio_mask *in, tio_rect box, tio_mask *out, char *err, size_t errlen);

/* ---- 4. masked content "fill" and the Pillow primitives it uses -------------------- */

/* Pillow ImageFilter.GaussianBlur(radius) of an RGBA-layout image in place
 * (all four channels alike; A1111 applies it to premultiplied 'RGBa').
 * Pillow's algorithm: three passes of an extended box blur per axis, the box
 * radius from Gwosdek et al. computed in single precision, 24-bit fixed
 * point weights, rows first then columns.  radius >= 0; 0 is a no-op. */
int tio_pil_gaussian_blur(ti_image *img, float radius, char *err, size_t errlen);

/* Pillow Image.alpha_composite: dst = src over dst, in place, both RGBA of
 * the same size, Pillow's integer formula (7 extra bits, rounded divisions;
 * where src alpha is 0 dst is kept as is). */
int tio_alpha_composite(ti_image *dst, const ti_image *src, char *err, size_t errlen);

/* A1111 masking.fill(image, mask): the masked hole (mask 255) painted with
 * progressively sharper blurs of the unmasked surroundings.  The image
 * (RGB) is pasted onto a transparent 'RGBa' canvas through 255 - mask
 * (Pillow paste blend, so colour and alpha are both scaled by the mask),
 * then for (radius, repeats) in (256,1) (64,1) (16,2) (4,4) (2,2) (0,1):
 * Pillow GaussianBlur(radius), un-premultiply to RGBA, alpha_composite onto
 * an RGBA canvas `repeats` times; the result is the canvas's RGB.
 * mask: same size as image.  out: RGB. */
int tio_fill(const ti_image *image, const tio_mask *mask, ti_image *out, char *err, size_t errlen);

/* ---- 5. overlay ------------------------------------------------------------------------ */

/* The overlay image of A1111 img2img: the (processing-size or, for only
 * masked, original-size) RGB image pasted onto a transparent 'RGBa' canvas
 * through 255 - mask_for_overlay, converted to RGBA.  Its alpha is
 * 255 - mask; its colour is the image's after that premultiply /
 * un-premultiply round trip (Pillow's rounding, so not always the image's
 * own value; 0 where the alpha is 0).  Sizes must match.  out: RGBA. */
int tio_make_overlay(const ti_image *image, const tio_mask *mask_for_overlay, ti_image *out,
                     char *err, size_t errlen);
/* "Whole picture" mask_for_overlay: clip(2 * mask, 0, 255) of the resized
 * blurred mask (numpy float32 then uint8).  New mask in *out. */
int tio_whole_picture_overlay_mask(const tio_mask *mask, tio_mask *out, char *err, size_t errlen);
/* A1111 apply_overlay with an overlay: when paste_to is non-NULL ("only
 * masked"; region x1, y1, x2, y2 = the expanded crop region), the generated
 * image is resized with mode 1 to the region's size and pasted at (x1, y1)
 * onto a transparent RGBA canvas of the overlay's size; otherwise the
 * generated image itself (its size must equal the overlay's) with alpha 255.
 * Then the overlay is alpha-composited on top and the RGB kept.
 * generated: RGB.  overlay: RGBA.  out: RGB of the overlay's size. */
int tio_apply_overlay(const ti_image *generated, const tio_rect *paste_to, const ti_image *overlay,
                      ti_image *out, char *err, size_t errlen);

/* ---- 6. latent mask --------------------------------------------------------------------- */

/* The latent-space inpainting mask: the processed mask as RGB resized to
 * lat_w x lat_h with Pillow's default filter (BICUBIC), channel 0 / 255 in
 * float32, rounded (half to even; i.e. v >= 128 -> 1) when round_mask.
 * nmask (A1111's latmask / p.nmask, 1 = repaint) and mask (p.mask =
 * 1 - nmask, 1 = keep) are lat_h * lat_w floats row-major; either may be
 * NULL.  A1111 tiles them over the 4 latent channels. */
int tio_latent_mask(const tio_mask *m, int lat_w, int lat_h, int round_mask, float *nmask,
                    float *mask, char *err, size_t errlen);

/* ---- 7. image <-> tensor ---------------------------------------------------------------- */

/* RGB uint8 -> float32 CHW (3 planes of h*w) in [-1, 1]: v / 255 then
 * 2x - 1, each step rounded to float32 as A1111 does with a float32 VAE. */
int tio_image_to_chw(const ti_image *img, float *chw, char *err, size_t errlen);
/* Decoded float32 CHW (3 planes of h*w) -> RGB uint8 as A1111 does it:
 * clamp((x + 1) / 2, 0, 1), times 255, truncated toward zero (not rounded),
 * all in float32.  NaN gives 0. */
int tio_chw_to_image(const float *chw, int w, int h, ti_image *out, char *err, size_t errlen);

#endif
