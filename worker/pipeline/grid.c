/* grid.c - A1111 images.split_grid / combine_grid on pixels (grid.h). */
#include "grid.h"

#include "img_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pillow ImagingUtils.h DIV255 */
static inline unsigned div255(unsigned a) {
    unsigned t = a + 128;
    return ((t >> 8) + t) >> 8;
}

static int rgb_ok(const ti_image *im, int w, int h) {
    return im && im->pixels && im->channels == 3 && im->width == w && im->height == h;
}

int tpg_crop_tile(const ti_image *img, const tgrid *g, int i, ti_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!rgb_ok(img, g->image_w, g->image_h) || i < 0 || i >= tgrid_count(g)) {
        snprintf(err, errlen, "crop tile %d: the image is not the grid's %dx%d RGB image", i, g->image_w, g->image_h);
        return -1;
    }
    int x = tgrid_x(g, i % g->cols), y = tgrid_y(g, i / g->cols);
    if (ti_image_alloc(out, g->tile_w, g->tile_h, 3, err, errlen)) return -1;
    for (int r = 0; r < g->tile_h; r++)
        memcpy(out->pixels + (size_t)r * g->tile_w * 3, img->pixels + ((size_t)(y + r) * img->width + x) * 3,
               (size_t)g->tile_w * 3);
    return 0;
}

/* Pillow Image.paste(src region, (dx, dy), mask): the sw x sh block of src at
 * (sx, sy) onto dst at (dx, dy); mask (sw x sh, "L") or NULL for a copy. The
 * block always lies inside both images here. */
static void paste(ti_image *dst, int dx, int dy, const ti_image *src, int sx, int sy, int sw, int sh,
                  const uint8_t *mask) {
    for (int r = 0; r < sh; r++) {
        uint8_t *o = dst->pixels + ((size_t)(dy + r) * dst->width + dx) * 3;
        const uint8_t *s = src->pixels + ((size_t)(sy + r) * src->width + sx) * 3;
        if (!mask) {
            memcpy(o, s, (size_t)sw * 3);
            continue;
        }
        const uint8_t *m = mask + (size_t)r * sw;
        for (int c = 0; c < sw; c++)
            for (int ch = 0; ch < 3; ch++) {
                unsigned a = m[c];
                o[c * 3 + ch] = (uint8_t)div255(o[c * 3 + ch] * (255u - a) + s[c * 3 + ch] * a);
            }
    }
}

/* np.arange(overlap, dtype=float32) * 255 / overlap, .astype(uint8) */
static uint8_t ramp(int k, int overlap) {
    float v = (float)k * 255.0f;
    v = v / (float)overlap;
    return (uint8_t)v;
}

int tpg_combine(const tgrid *g, tpg_tile_fn get, void *ctx, ti_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int ov = g->overlap, tw = g->tile_w, th = g->tile_h, W = g->image_w;
    uint8_t *mask_w = NULL, *mask_h = NULL;
    ti_image row = {0}, tile = {0};
    int rc = -1;
    if (ov < 0 || ov >= tw || ov >= th || g->cols < 1 || g->rows < 1) {
        snprintf(err, errlen, "combine: bad grid");
        return -1;
    }
    if (ov > 0) {
        mask_w = malloc((size_t)ov * th);
        mask_h = malloc((size_t)ov * W);
        if (!mask_w || !mask_h) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        for (int r = 0; r < th; r++)
            for (int k = 0; k < ov; k++) mask_w[(size_t)r * ov + k] = ramp(k, ov);
        for (int k = 0; k < ov; k++) memset(mask_h + (size_t)k * W, ramp(k, ov), (size_t)W);
    }
    if (ti_image_alloc(out, W, g->image_h, 3, err, errlen) || ti_image_alloc(&row, W, th, 3, err, errlen)) goto done;
    for (int r = 0; r < g->rows; r++) {
        memset(row.pixels, 0, (size_t)W * th * 3); /* Image.new("RGB", (image_w, h)) */
        for (int c = 0; c < g->cols; c++) {
            int i = r * g->cols + c;
            if (get(ctx, i, &tile, err, errlen)) goto done;
            if (!rgb_ok(&tile, tw, th)) {
                snprintf(err, errlen, "tile %d is %dx%d (%d channels); the grid's tiles are %dx%d RGB", i, tile.width,
                         tile.height, tile.channels, tw, th);
                goto done;
            }
            int x = tgrid_x(g, c);
            if (x == 0) {
                paste(&row, 0, 0, &tile, 0, 0, tw, th, NULL);
            } else {
                paste(&row, x, 0, &tile, 0, 0, ov, th, mask_w);
                paste(&row, x + ov, 0, &tile, ov, 0, tw - ov, th, NULL);
            }
            ti_image_free(&tile);
        }
        int y = tgrid_y(g, r);
        if (y == 0) {
            paste(out, 0, 0, &row, 0, 0, W, th, NULL);
        } else {
            paste(out, 0, y, &row, 0, 0, W, ov, mask_h);
            paste(out, 0, y + ov, &row, 0, ov, W, th - ov, NULL);
        }
    }
    rc = 0;
done:
    ti_image_free(&tile);
    ti_image_free(&row);
    free(mask_w);
    free(mask_h);
    if (rc) ti_image_free(out);
    return rc;
}

typedef struct {
    const ti_image *tiles;
} array_ctx;

static int from_array(void *ctx, int i, ti_image *tile, char *err, size_t errlen) {
    const ti_image *src = &((array_ctx *)ctx)->tiles[i];
    if (!src->pixels || src->width < 1 || src->height < 1) {
        snprintf(err, errlen, "tile %d is missing", i);
        return -1;
    }
    if (ti_image_alloc(tile, src->width, src->height, src->channels, err, errlen)) return -1;
    memcpy(tile->pixels, src->pixels, (size_t)src->width * src->height * src->channels);
    return 0;
}

int tpg_combine_tiles(const tgrid *g, const ti_image *tiles, ti_image *out, char *err, size_t errlen) {
    array_ctx a = {tiles};
    return tpg_combine(g, from_array, &a, out, err, errlen);
}

int tpg_flatten(const ti_image *in, ti_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!in || !in->pixels || (in->channels != 3 && in->channels != 4)) {
        snprintf(err, errlen, "flatten: need an RGB or RGBA image");
        return -1;
    }
    if (ti_image_alloc(out, in->width, in->height, 3, err, errlen)) return -1;
    size_t n = (size_t)in->width * in->height;
    if (in->channels == 3) {
        memcpy(out->pixels, in->pixels, n * 3);
        return 0;
    }
    ti_image bg = {0};
    if (ti_image_alloc(&bg, in->width, in->height, 4, err, errlen)) {
        ti_image_free(out);
        return -1;
    }
    memset(bg.pixels, 255, n * 4);
    if (tio_alpha_composite(&bg, in, err, errlen)) {
        ti_image_free(&bg);
        ti_image_free(out);
        return -1;
    }
    for (size_t i = 0; i < n; i++) memcpy(out->pixels + i * 3, bg.pixels + i * 4, 3);
    ti_image_free(&bg);
    return 0;
}
