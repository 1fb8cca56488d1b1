/* tile_grid.c - A1111 images.split_grid geometry and the SD upscale size
 * (tile_grid.h; shared/reference/tiling.md section 4.1). */
#include "tile_grid.h"

#include <math.h>
#include <stdio.h>
#include <strings.h>

int tgrid_make(int image_w, int image_h, int tile_w, int tile_h, int overlap, tgrid *g, char *err, size_t errlen) {
    g->image_w = image_w;
    g->image_h = image_h;
    g->tile_w = tile_w;
    g->tile_h = tile_h;
    g->overlap = overlap;
    g->cols = g->rows = 0;
    if (image_w < 1 || image_h < 1 || tile_w < 1 || tile_h < 1) {
        snprintf(err, errlen, "bad sizes: image %dx%d, tile %dx%d", image_w, image_h, tile_w, tile_h);
        return -1;
    }
    if (overlap < 0 || overlap >= tile_w || overlap >= tile_h) {
        snprintf(err, errlen, "the overlap (%d) must be smaller than the tile (%dx%d)", overlap, tile_w, tile_h);
        return -1;
    }
    if (tile_w > image_w || tile_h > image_h) {
        snprintf(err, errlen, "the %dx%d tile is larger than the %dx%d image", tile_w, tile_h, image_w, image_h);
        return -1;
    }
    /* Python: math.ceil((w - overlap) / non_overlap_width) */
    g->cols = (int)ceil((double)(image_w - overlap) / (double)(tile_w - overlap));
    g->rows = (int)ceil((double)(image_h - overlap) / (double)(tile_h - overlap));
    if (g->cols < 1) g->cols = 1;
    if (g->rows < 1) g->rows = 1;
    return 0;
}

/* int(i * d) with d = (size - tile) / (n - 1) (0 for one tile), then the
 * "x + tile >= size" clamp of split_grid */
static int edge(int i, int n, int size, int tile) {
    double d = n > 1 ? (double)(size - tile) / (double)(n - 1) : 0.0;
    int v = (int)(i * d);
    if (v + tile >= size) v = size - tile;
    return v;
}

int tgrid_x(const tgrid *g, int col) { return edge(col, g->cols, g->image_w, g->tile_w); }
int tgrid_y(const tgrid *g, int row) { return edge(row, g->rows, g->image_h, g->tile_h); }

void tgrid_upscaled_size(const char *upscaler, int w, int h, double scale, int *out_w, int *out_h) {
    if (!upscaler || !strcasecmp(upscaler, "None")) {
        *out_w = w;
        *out_h = h;
        return;
    }
    /* int((img.width * scale) // 8 * 8): x / 8 is exact in binary floating
     * point, so floor(x / 8) is Python's float floor division */
    double dw = floor((double)w * scale / 8.0) * 8.0, dh = floor((double)h * scale / 8.0) * 8.0;
    *out_w = dw >= 1 && dw < 1e9 ? (int)dw : 0;
    *out_h = dh >= 1 && dh < 1e9 ? (int)dh : 0;
}
