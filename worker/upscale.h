/* upscale.h - the pixel upscalers of the SD upscale job (worker/sd_upscale.c):
 * A1111's Upscaler.upscale (modules/upscaler.py, 1.10) for an upscaler name.
 *
 *   "None"     the image unchanged (sd_upscale.py does not call the upscaler);
 *   "Lanczos"  dest = int((w * scale) // 8 * 8) x int((h * scale) // 8 * 8);
 *   "Nearest"  up to 3 passes while the image is smaller than dest (a pass
 *              resizes to int(w * scale) x int(h * scale) with Pillow
 *              LANCZOS / NEAREST; a scale of 1 still makes one pass), then
 *              a LANCZOS resize to dest when the size differs;
 *   a model    (an ESRGAN file in <models_dir>/ESRGAN...): not plugged in yet;
 *              the hook fails with a message naming the upscaler. The
 *              ESRGAN work (worker/model/esrgan.h, tme_upscale) plugs in
 *              here with the same dest (tgrid_upscaled_size).
 * The output size is always tgrid_upscaled_size(name, w, h, scale), which
 * the job validation used to compute the grid.
 *
 * in: RGB or RGBA (models see RGB; the SD upscale job flattens first).
 * out: a new image the caller frees. 0, or -1 with err. No global state. */
#ifndef TESSERA_UPSCALE_H
#define TESSERA_UPSCALE_H

#include "image_io.h"

#include <stddef.h>

int tw_upscale_image(const char *models_dir, const char *name, const ti_image *in, double scale, ti_image *out,
                     char *err, size_t errlen);

#endif
