/* grid.h - the pixel side of A1111's "SD upscale" script: cut an image into
 * the tiles of a tgrid (images.split_grid) and put rendered tiles back
 * together (images.combine_grid), bit-exact to A1111 1.10 with Pillow 9.5
 * (shared/reference/tiling.md section 4.1; checked against
 * tests/golden/make_grid_golden.py by tests/unit/test_grid.c).
 *
 * combine_grid, exactly:
 *   ramp[k] = uint8(float32(k) * 255 / overlap), k = 0..overlap-1
 *   per row of tiles: a black image_w x tile_h row; the tile at x == 0 is
 *   pasted as is; every other tile: its first `overlap` columns are pasted at
 *   x through the horizontal ramp as an "L" mask, its columns overlap..tile_w
 *   copied at x + overlap;
 *   then rows the same way into a black image_w x image_h canvas: the row at
 *   y == 0 as is, every other row blended over its first `overlap` lines with
 *   the vertical ramp, the rest copied;
 *   Pillow's masked paste: out = DIV255(dst * (255 - m) + src * m) with
 *   DIV255(a) = ((a + 128) >> 8) + (a + 128)) >> 8.
 * Only the first `overlap` pixels of a later tile are blended; where tiles
 * overlap more (the grid spreads them evenly) the later tile simply wins.
 *
 * Images are RGB ti_image. Errors are values (0 / -1 with err); outputs are
 * allocated here and owned by the caller; no global state. */
#ifndef TESSERA_GRID_H
#define TESSERA_GRID_H

#include "image_io.h"
#include "tile_grid.h"

#include <stddef.h>

/* Tile i (row-major) of img: a tile_w x tile_h RGB crop at (x(col), y(row)).
 * img must be g's image size and RGB. */
int tpg_crop_tile(const ti_image *img, const tgrid *g, int i, ti_image *out, char *err, size_t errlen);

/* Supplies tile i (RGB, tile_w x tile_h) into *tile, which the combiner frees
 * after use; tiles are asked for in index order, each once. 0 or -1 (the
 * combine stops and returns -1; the callback wrote err). */
typedef int (*tpg_tile_fn)(void *ctx, int i, ti_image *tile, char *err, size_t errlen);

/* combine_grid: out becomes the image_w x image_h RGB result. At most one
 * row of tiles is held at a time. */
int tpg_combine(const tgrid *g, tpg_tile_fn get, void *ctx, ti_image *out, char *err, size_t errlen);
/* The same from an array of tgrid_count(g) tiles (not freed). */
int tpg_combine_tiles(const tgrid *g, const ti_image *tiles, ti_image *out, char *err, size_t errlen);

/* A1111 images.flatten for an init image: RGBA composited over opaque white
 * (as worker/pipeline/inpaint.c does it), RGB copied. out is RGB. */
int tpg_flatten(const ti_image *in, ti_image *out, char *err, size_t errlen);

#endif
