/* tiled_diffusion.c - Tiled Diffusion grids and weights (tiled_diffusion.h).
 * The blending itself happens in cfg_denoiser.c, which owns the UNet calls. */
#include "tiled_diffusion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tpl_td_method_find(const char *name) {
    if (!name) return -1;
    if (!strcasecmp(name, "MultiDiffusion")) return TPL_TD_MULTIDIFFUSION;
    if (!strcasecmp(name, "Mixture of Diffusers")) return TPL_TD_MIXTURE;
    return -1;
}

void tpl_td_grid_free(tpl_td_grid *g) {
    free(g->tiles);
    free(g->tile_weight);
    free(g->inv_wsum);
    memset(g, 0, sizeof *g);
}

/* Mixture of Diffusers' Gaussian (mixdiff / the extension's tile_utils):
 * var 0.01 over the coordinate normalised by the tile side. */
static double gauss(double x, double mid, double len) {
    const double var = 0.01;
    double u = (x - mid) / len;
    return exp(-u * u / (2 * var)) / sqrt(2 * M_PI * var);
}

int tpl_td_grid_build(int w, int h, int tile_w, int tile_h, int overlap, tpl_td_method method, tpl_td_grid *g) {
    memset(g, 0, sizeof *g);
    if (w < 1 || h < 1 || tile_w < 1 || tile_h < 1) return -1;
    int tw = tile_w < w ? tile_w : w, th = tile_h < h ? tile_h : h;
    int lim = (tile_w < tile_h ? tile_w : tile_h) - 4;
    int ov = overlap < 0 ? 0 : overlap > lim ? (lim > 0 ? lim : 0) : overlap;
    /* guard what upstream does not: a stride of zero */
    if (ov >= tw) ov = tw - 1;
    if (ov >= th) ov = th - 1;
    int cols = (w - ov + (tw - ov) - 1) / (tw - ov), rows = (h - ov + (th - ov) - 1) / (th - ov);
    if (cols < 1) cols = 1;
    if (rows < 1) rows = 1;
    double dx = cols > 1 ? (double)(w - tw) / (cols - 1) : 0, dy = rows > 1 ? (double)(h - th) / (rows - 1) : 0;
    g->method = method;
    g->w = w;
    g->h = h;
    g->tw = tw;
    g->th = th;
    g->ntiles = rows * cols;
    g->tiles = malloc((size_t)g->ntiles * sizeof *g->tiles);
    g->tile_weight = malloc((size_t)tw * th * sizeof *g->tile_weight);
    g->inv_wsum = calloc((size_t)w * h, sizeof *g->inv_wsum);
    if (!g->tiles || !g->tile_weight || !g->inv_wsum) {
        tpl_td_grid_free(g);
        return -1;
    }
    for (int r = 0, k = 0; r < rows; r++)
        for (int c = 0; c < cols; c++, k++) {
            int x = (int)floor(c * dx), y = (int)floor(r * dy);
            g->tiles[k].x = x < w - tw ? x : w - tw;
            g->tiles[k].y = y < h - th ? y : h - th;
        }
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++)
            g->tile_weight[(size_t)y * tw + x] =
                method == TPL_TD_MIXTURE ? (float)(gauss(y, th / 2.0, th) * gauss(x, (tw - 1) / 2.0, tw)) : 1.0f;
    for (int k = 0; k < g->ntiles; k++)
        for (int y = 0; y < th; y++)
            for (int x = 0; x < tw; x++)
                g->inv_wsum[(size_t)(g->tiles[k].y + y) * w + g->tiles[k].x + x] += g->tile_weight[(size_t)y * tw + x];
    for (size_t q = 0; q < (size_t)w * h; q++) g->inv_wsum[q] = g->inv_wsum[q] > 0 ? 1.0f / g->inv_wsum[q] : 0.0f;
    return 0;
}
