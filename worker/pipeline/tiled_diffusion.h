/* tiled_diffusion.h - the tile grid of Tiled Diffusion (MultiDiffusion and
 * Mixture of Diffusers), shared/reference/tiling.md sections 1-2.
 *
 * The latent canvas is covered by equal tiles spread evenly (the first at
 * the top/left edge, the last at the bottom/right one, real-valued stride),
 * row-major. At every denoiser call the UNet runs on each tile's crop (all
 * cond and uncond rows), and the raw model outputs (eps or v) are blended
 * back onto the canvas:
 *   MultiDiffusion       the plain average over the tiles covering a pixel;
 *   Mixture of Diffusers a Gaussian weight per tile (sigma = 0.1 x the tile
 *                        side; the y midpoint is H/2, not (H-1)/2, as
 *                        upstream), normalised by the sum of weights.
 * Then CFG, the inpaint blend and ONE global sampler step run on the whole
 * canvas (the A1111 extension's order; averaging the model output equals
 * averaging x0, which is affine in it per pixel). A grid of one tile equals
 * plain sampling. */
#ifndef TESSERA_TILED_DIFFUSION_H
#define TESSERA_TILED_DIFFUSION_H

typedef enum { TPL_TD_MULTIDIFFUSION = 0, TPL_TD_MIXTURE = 1 } tpl_td_method;

typedef struct {
    int x, y;
} tpl_td_tile;

typedef struct tpl_td_grid {
    tpl_td_method method;
    int w, h;             /* canvas, latent pixels */
    int tw, th;           /* tile size (all tiles equal) */
    int ntiles;
    tpl_td_tile *tiles;   /* row-major */
    float *tile_weight;   /* [th*tw]: 1 (MultiDiffusion) or the Gaussian */
    float *inv_wsum;      /* [h*w]: 1 / sum of the weights covering the pixel */
} tpl_td_grid;

/* Method by name ("MultiDiffusion", "Mixture of Diffusers"); -1 unknown. */
int tpl_td_method_find(const char *name);

/* The grid for a w x h latent canvas, tile and overlap in latent pixels
 * (A1111 Tiled Diffusion: tile = min(req, side), overlap clamped to
 * [0, min(req_w, req_h) - 4]). 0, or -1 for bad sizes / OOM. */
int tpl_td_grid_build(int w, int h, int tile_w, int tile_h, int overlap, tpl_td_method method, tpl_td_grid *g);
void tpl_td_grid_free(tpl_td_grid *g);

#endif
