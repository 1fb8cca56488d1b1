/* upscale.c - tw_upscale_image: A1111 Upscaler.upscale for the built-in
 * pixel upscalers (upscale.h). */
#include "upscale.h"

#include "resize.h"
#include "tile_grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int copy_image(const ti_image *in, ti_image *out, char *err, size_t errlen) {
    if (ti_image_alloc(out, in->width, in->height, in->channels, err, errlen)) return -1;
    memcpy(out->pixels, in->pixels, (size_t)in->width * in->height * in->channels);
    return 0;
}

int tw_upscale_image(const char *models_dir, const char *name, const ti_image *in, double scale, ti_image *out,
                     char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!in || !in->pixels || in->width < 1 || in->height < 1) {
        snprintf(err, errlen, "upscale: no image");
        return -1;
    }
    if (!name || !strcasecmp(name, "None")) return copy_image(in, out, err, errlen);
    tr_filter f;
    if (strcasecmp(name, "Lanczos") == 0)
        f = TR_LANCZOS;
    else if (strcasecmp(name, "Nearest") == 0)
        f = TR_NEAREST;
    else {
        (void)models_dir;
        snprintf(err, errlen,
                 "upscaler '%s' is not available for sd_upscale on this worker (None, Lanczos and Nearest are; "
                 "upscaler models are not plugged in yet)",
                 name);
        return -1;
    }
    if (!(scale > 0)) {
        snprintf(err, errlen, "upscale: bad scale %g", scale);
        return -1;
    }
    int dw, dh;
    tgrid_upscaled_size(name, in->width, in->height, scale, &dw, &dh);
    if (dw < 1 || dh < 1) {
        snprintf(err, errlen, "upscale: %dx%d times %g is empty", in->width, in->height, scale);
        return -1;
    }
    ti_image cur = {0}, next = {0};
    if (copy_image(in, &cur, err, errlen)) return -1;
    for (int i = 0; i < 3; i++) {
        if (cur.width >= dw && cur.height >= dh && (i > 0 || scale != 1.0)) break;
        /* do_upscale: img.resize((int(img.width * scale), int(img.height * scale)), resample) */
        int nw = (int)(cur.width * scale), nh = (int)(cur.height * scale);
        if (nw < 1 || nh < 1 || (long long)nw * nh > (long long)TI_HARD_MAX_PIXELS) {
            snprintf(err, errlen, "upscale: %dx%d is out of range", nw, nh);
            ti_image_free(&cur);
            return -1;
        }
        /* Pillow returns a copy for the same size; the shape check then ends the loop */
        if (nw == cur.width && nh == cur.height) break;
        if (tr_resize(&cur, nw, nh, f, &next, err, errlen)) {
            ti_image_free(&cur);
            return -1;
        }
        ti_image_free(&cur);
        cur = next;
        memset(&next, 0, sizeof next);
    }
    if (cur.width == dw && cur.height == dh) {
        *out = cur;
        return 0;
    }
    int rc = tr_resize(&cur, dw, dh, TR_LANCZOS, out, err, errlen);
    ti_image_free(&cur);
    return rc;
}
