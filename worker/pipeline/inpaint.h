/* inpaint.h - the image side of A1111 img2img and inpainting, before and
 * after sampling (shared/reference/tiling.md section 6), built on the
 * Pillow/OpenCV-exact primitives of img_ops.h.
 *
 * Before: the init image is fitted to the processing size with resize_mode;
 * with a mask: the mask is binarised (alpha or grey), inverted if asked,
 * Gaussian-blurred (x then y); "only masked" crops image and mask to the
 * mask's padded bounding box expanded to the processing aspect ratio and
 * resizes both (mode 2); masked content "fill" paints the hole with blurred
 * surroundings; the latent mask (1 = repaint) is the processed mask resized
 * bicubic to the latent size and rounded.
 * After: the decoded image is pasted back (only masked: resized to the
 * region, mode 1) and the original is alpha-composited over it through the
 * overlay mask, so pixels outside the mask stay the user's. */
#ifndef TESSERA_INPAINT_H
#define TESSERA_INPAINT_H

#include "image_io.h"

#include <stdint.h>

typedef struct tpl_inpaint_opts {
    int width, height;        /* processing size */
    int resize_mode;          /* 0..3; 3 (latent upscale): the image is not resized here */
    int mask_blur_x, mask_blur_y, mask_round, invert;
    int full_res, full_res_padding;
    int fill;                 /* 0 fill, 1 original, 2 latent noise, 3 latent nothing */
    int latent_w, latent_h;
} tpl_inpaint_opts;

typedef struct tpl_inpaint_prep {
    ti_image image;           /* processing-size RGB, after fill */
    ti_image mask;            /* processing-size mask (RGB, R=G=B), blurred; empty without mask */
    int has_mask;
    float *latent_mask;       /* [latent_h*latent_w], 1 = repaint; NULL without mask */
    /* overlay */
    ti_image orig;            /* the overlay (RGBA): the init image through 255 - mask_for_overlay */
    int paste_x, paste_y, paste_w, paste_h; /* only masked: the region; paste_w 0 = whole picture */
} tpl_inpaint_prep;

/* mask may be NULL (plain img2img: only the resize). */
int tpl_inpaint_prepare(const ti_image *init, const ti_image *mask, const tpl_inpaint_opts *o,
                        tpl_inpaint_prep *out, char *err, size_t errlen);
/* Decoded processing-size RGB -> final RGB at the init image's size (only
 * masked) or processing size (whole picture), with the overlay applied. */
int tpl_inpaint_finish(const tpl_inpaint_prep *p, const ti_image *generated, ti_image *out, char *err,
                       size_t errlen);
void tpl_inpaint_free(tpl_inpaint_prep *p);

/* torch nearest interpolation of round(mask/255) (if round) to lw x lh. */
void tpl_mask_to_latent_nearest(const ti_image *mask, int round_mask, int lw, int lh, float *out);

#endif
