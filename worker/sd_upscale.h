/* sd_upscale.h - the sd_upscale job (A1111's "SD upscale" img2img script,
 * shared/reference/tiling.md section 4.1; fields in docs/jobs-sd.md): the
 * image is flattened, upscaled (upscale.h), cut into the grid the
 * validation stored in the spec (proto/tile_grid.h), every tile is an
 * img2img of its crop with seed + tile index (A1111's "seed + 1 per batch"
 * with one tile per batch; the subseed stays, as in A1111), and the
 * rendered tiles are combined with A1111's combine_grid (pipeline/grid.h).
 *
 * On the farm (worker.h tw_run_sd_upscale, docs/redis.md) the three steps
 * are separate tasks any worker takes: the split (phase ""), each tile, the
 * stitch (phase "stitch"). `tessera render` runs them one after the other
 * in one process (tw_sd_upscale_local) and gives the same pixels: a tile is
 * rendered from the same crop (the farm carries it as a lossless PNG) with
 * the same parameters, and the combine is deterministic.
 *
 * The result's infotext is tile 0's (as A1111 keeps the first batch's
 * info) with A1111's "SD upscale overlap" and "SD upscale upscaler" entries
 * placed where A1111 puts the script's extra_generation_params: after the
 * fixed entries of create_infotext, before the ones added while sampling
 * (Noise multiplier, Emphasis, Eta) and Version. */
#ifndef TESSERA_SD_UPSCALE_H
#define TESSERA_SD_UPSCALE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* `tessera render` of an sd_upscale job: spec is the canonical spec,
 * input the packed input blob. Writes out_dir/<seed>-0.png and prints the
 * result info JSON on stdout; progress on stderr. 0, or -1 with err. */
int tw_sd_upscale_local(const json_t *spec, const uint8_t *input, size_t input_len, const char *models, int threads,
                        const char *out_dir, char *err, size_t errlen);

/* The infotext with the two SD upscale entries inserted (see above);
 * malloc'ed, NULL on OOM. */
char *tw_sd_upscale_infotext(const char *infotext, int overlap, const char *upscaler);

#endif
