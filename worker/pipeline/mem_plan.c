/* mem_plan.c - UNet batching under a memory budget (mem_plan.h). */
#include "mem_plan.h"

#include <stdio.h>
#include <string.h>

static double gib(size_t b) { return (double)b / (1024.0 * 1024 * 1024); }

int tpl_plan_unet(tpl_model *m, int h, int w, int T, int want_rows, size_t budget, tpl_mem_plan *out, char *err,
                  size_t errlen) {
    memset(out, 0, sizeof *out);
    out->weights = m->bytes;
    out->budget = budget;
    if (want_rows < 1) want_rows = 1;
    char e2[512];
    size_t b1;
    if (tmu_plan_bytes(m->unet, m->arena, 1, h, w, T, &b1, e2, sizeof e2)) {
        snprintf(err, errlen, "memory plan: %s", e2);
        return -1;
    }
    out->unet_row1 = b1;
    if (budget && out->weights + b1 > budget) {
        snprintf(err, errlen,
                 "this render needs %.2f GiB (model %.2f GiB + %.2f GiB for one UNet pass at %dx%d latent) but the "
                 "worker's memory budget is %.2f GiB; use a smaller size or Tiled Diffusion",
                 gib(out->weights + b1), gib(out->weights), gib(b1), w, h, gib(budget));
        return -1;
    }
    /* the largest row count that fits: bytes grow about linearly with rows */
    int rows = want_rows;
    size_t bytes = b1;
    while (rows > 1) {
        if (tmu_plan_bytes(m->unet, m->arena, rows, h, w, T, &bytes, e2, sizeof e2)) {
            snprintf(err, errlen, "memory plan: %s", e2);
            return -1;
        }
        if (!budget || out->weights + bytes <= budget) break;
        int next = (int)((double)rows * (double)(budget - out->weights) / (double)bytes);
        rows = next < rows - 1 ? (next > 1 ? next : 1) : rows - 1;
    }
    if (rows == 1) bytes = b1;
    out->rows = rows;
    out->unet_bytes = bytes;
    out->peak = out->weights + bytes;
    return 0;
}
