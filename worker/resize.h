/*
 * resize.h -- Pillow-compatible image resampling for the "Extras" upscaler
 * and for fitting init images / masks to the requested size.
 *
 * A1111 resizes with PIL's Image.resize, so results must match Pillow to
 * within one level: separable convolution with the filter support widened
 * by the downscale factor (antialiasing when shrinking), pixel centres at
 * (i + 0.5) * scale, Pillow's kernels (bicubic a = -0.5, Lanczos a = 3),
 * Pillow's 22-bit fixed point arithmetic with an 8-bit intermediate image,
 * horizontal pass first.  RGBA is resampled the way Image.resize does it:
 * premultiplied by alpha ("RGBa") for every filter but NEAREST, then
 * un-premultiplied.  NEAREST picks source index floor((i + 0.5) * scale).
 *
 * Functions return 0 on success and -1 on error with the reason in err.
 */
#ifndef TESSERA_RESIZE_H
#define TESSERA_RESIZE_H

#include <stddef.h>

#include "image_io.h"

typedef enum {
    TR_NEAREST = 0,
    TR_BILINEAR,
    TR_BICUBIC,
    TR_LANCZOS
} tr_filter;

/* Parse an A1111 upscaler / resample name, case-insensitively:
 * "Nearest", "Bilinear", "Bicubic", "Lanczos", and "None".
 * A1111's "None" upscaler returns the image unchanged and the final resize
 * to the exact target size then uses LANCZOS, so "None" maps to TR_LANCZOS
 * (which is also a no-op when the sizes already match). */
int tr_filter_from_name(const char *name, tr_filter *out);
/* "Nearest", "Bilinear", "Bicubic", "Lanczos". */
const char *tr_filter_name(tr_filter f);

/* Resize src (RGB or RGBA) to dst_w x dst_h into a newly allocated *dst
 * with the same channel count, using every online CPU. */
int tr_resize(const ti_image *src, int dst_w, int dst_h, tr_filter f, ti_image *dst,
              char *err, size_t errlen);

/* Same, with an explicit thread count (0 = number of online CPUs). */
int tr_resize_threads(const ti_image *src, int dst_w, int dst_h, tr_filter f,
                      int nthreads, ti_image *dst, char *err, size_t errlen);

#endif
