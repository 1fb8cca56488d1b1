/* tile_grid.h - the geometry of A1111's "SD upscale" script (scripts/sd_upscale.py,
 * images.split_grid; shared/reference/tiling.md section 4.1), shared by the
 * job validation (proto/job_sd.c: the grid is stored in the canonical spec)
 * and the worker (worker/sd_upscale.c: split, render, combine).
 *
 * Grid, in pixels, for an image w x h, tiles tw x th, overlap ov:
 *   cols = ceil((w - ov) / (tw - ov)),  rows = ceil((h - ov) / (th - ov))
 *   dx = (w - tw) / (cols - 1) if cols > 1 else 0           (dy likewise)
 *   x(col) = int(col * dx); if x + tw >= w: x = w - tw      (y likewise)
 * computed with Python's double arithmetic (true division, math.ceil, int()
 * truncation), so the positions are A1111's to the pixel. Tiles are
 * numbered row-major: index = row * cols + col.
 *
 * The size the upscaler makes (modules/upscaler.py Upscaler.upscale, 1.10):
 * "None" leaves the image as it is (sd_upscale.py skips the upscaler); any
 * other upscaler (Lanczos, Nearest, a model) ends at
 * int((w * scale) // 8 * 8) x int((h * scale) // 8 * 8).
 *
 * Pure integer/double math: no allocation, no global state. */
#ifndef TESSERA_TILE_GRID_H
#define TESSERA_TILE_GRID_H

#include <stddef.h>

typedef struct {
    int image_w, image_h;  /* the (upscaled) image that is split */
    int tile_w, tile_h;
    int overlap;
    int cols, rows;
} tgrid;

/* Fill g. Needs 0 <= overlap < min(tile_w, tile_h) and the tile inside the
 * image (tile_w <= image_w, tile_h <= image_h): A1111 crops outside the image
 * (black padding) otherwise, which Tessera refuses. 0 or -1 with err. */
int tgrid_make(int image_w, int image_h, int tile_w, int tile_h, int overlap, tgrid *g, char *err, size_t errlen);

static inline int tgrid_count(const tgrid *g) { return g->cols * g->rows; }
/* Left edge of column col / top edge of row row. */
int tgrid_x(const tgrid *g, int col);
int tgrid_y(const tgrid *g, int row);

/* The size of the image sd_upscale splits: the input's for "None"
 * (case-insensitive), else A1111's Upscaler.upscale destination (above).
 * Sizes below 1 come out as 0 (the caller refuses them). */
void tgrid_upscaled_size(const char *upscaler, int w, int h, double scale, int *out_w, int *out_h);

#endif
