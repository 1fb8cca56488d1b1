/* mem_plan.h - how much memory a render takes, before it runs, and the
 * batching that keeps it under the worker's budget.
 *
 * The UNet's activation memory is not estimated: the engine's arena plan
 * pass (tmu_plan_bytes) gives the exact bytes of one forward of any batch,
 * size and token count without computing anything. The planner takes the
 * largest number of UNet rows per forward (cond/uncond rows, Tiled Diffusion
 * tiles) that keeps resident weights + activations under the budget;
 * splitting a batch never changes a result (rows are independent). A render
 * whose single-row forward does not fit is refused before it starts, with
 * the numbers. The VAE stage is sized by its own arena the same way when it
 * runs (tiled decoding is the way to shrink it). */
#ifndef TESSERA_MEM_PLAN_H
#define TESSERA_MEM_PLAN_H

#include "sd_model.h"

#include <stddef.h>

typedef struct tpl_mem_plan {
    size_t weights;        /* resident model bytes (estimate) */
    size_t budget;         /* the worker's budget, 0 = none */
    int rows;              /* UNet rows per forward chosen */
    size_t unet_bytes;     /* arena bytes of one forward of `rows` rows */
    size_t unet_row1;      /* ... of one row */
    size_t peak;           /* weights + unet_bytes */
} tpl_mem_plan;

/* For UNet forwards of h x w latents with T tokens, wanting up to want_rows
 * rows per forward: the largest row count that fits. 0; -1 (err says why,
 * with the bytes) when even one row does not fit the budget. */
int tpl_plan_unet(tpl_model *m, int h, int w, int T, int want_rows, size_t budget, tpl_mem_plan *out, char *err,
                  size_t errlen);

#endif
