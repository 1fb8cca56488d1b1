/* bench_unet.c - time one UNet forward (batch 1) of a full-size checkpoint.
 *
 *   bench_unet [--model PATH] [--threads N] [--reps N] [--winograd] [--size LATENT]...
 *
 * Default model: /root/sd15-random/sd15_random_f16.safetensors (random
 * weights, SD1.5 shapes: make it with ../shared/tools/make_sd15_random.py),
 * 2 threads, latents 32² and 64² (256² and 512² images), context [1, 77, C],
 * t = 500. Prints the load time, per size the first (cold: oneDNN primitive
 * creation, weight reorders) and best of the following runs, GFLOP/s (2 x
 * multiply-adds of convs, linears and attention products) against the FMA
 * ceiling measured before and after, the arena peak and the process max RSS.
 * TE_WEIGHTS=bf16: bf16 conv/linear weights and compute (f32 accumulation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "checkpoint.h"
#include "unet.h"

int main(int argc, char **argv) {
    te_cpu_prepare_env(argc, argv);
    const char *path = "/root/sd15-random/sd15_random_f16.safetensors";
    int threads = 2, reps = 2, winograd = 0, sizes[8], ns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc && ns < 8) sizes[ns++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--winograd")) winograd = 1;
        else {
            fprintf(stderr, "usage: %s [--model PATH] [--threads N] [--reps N] [--winograd] [--size LATENT]...\n",
                    argv[0]);
            return 2;
        }
    }
    if (!ns) sizes[ns++] = 32, sizes[ns++] = 64;
    double peak = bu_fma_peak(threads);
    te_backend *be = bu_backend_conv(threads, winograd ? TE_CONV_WINOGRAD : TE_CONV_DIRECT);
    char err[1024];
    tck_model *m;
    tmu_unet *u;
    double t0 = bu_now();
    if (tck_open(path, NULL, &m, err, sizeof err) || tmu_load(m, be, NULL, &u, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const tmu_config *c = tmu_get_config(u);
    size_t nfile = 0;
    for (size_t i = 0; i < tst_count(tck_file(m, TCK_UNET)); i++)
        nfile += !strncmp(tst_at(tck_file(m, TCK_UNET), i)->name, "model.diffusion_model.", 22) ||
                 !tck_is_single_file(m);
    printf("model %s (%d of the %zu UNet tensors loaded)\n  %d levels x %d layers, channels %d..%d, context %d, heads %d, load %.2f s, weights %.0f MiB "
           "(%s), %d threads, conv %s\n",
           path, tmu_tensor_count(u), nfile, c->layout.levels, c->layout.layers_per_block, c->channels[0], c->channels[c->layout.levels - 1],
           c->context_dim, c->heads[0], bu_now() - t0, tmu_weight_bytes(u) / 1048576.0,
           be->matrix_dtype == TE_BF16 ? "conv/linear bf16 (TE_WEIGHTS=bf16)" : "f32", threads,
           winograd ? "winograd" : "direct");
    te_arena *a;
    if (te_arena_create(be, 0, 0, &a) != TE_OK) return 1;
    const int T = 77;
    float *ctx = malloc(sizeof(float) * T * c->context_dim), tt = 500;
    uint32_t s = 1;
    for (int i = 0; i < T * c->context_dim; i++) s = s * 1664525u + 1013904223u, ctx[i] = (s >> 8) / 8388608.0f - 1;
    double res[8][3];
    for (int k = 0; k < ns; k++) {
        int h = sizes[k];
        size_t n = (size_t)c->in_channels * h * h;
        float *x = malloc(n * sizeof(float)), *out = malloc((size_t)c->out_channels * h * h * sizeof(float));
        for (size_t i = 0; i < n; i++) s = s * 1664525u + 1013904223u, x[i] = (s >> 8) / 8388608.0f - 1;
        double cold = 0, best = 1e30;
        for (int r = 0; r <= reps; r++) {
            double t = bu_now();
            if (tmu_forward_nchw(u, a, x, 1, h, h, &tt, ctx, T, out, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            t = bu_now() - t;
            if (!r) cold = t;
            else if (t < best) best = t;
        }
        if (reps < 1) best = cold;
        /* one more run with per-stage timing (synchronizes between stages) */
        tmu_stage st[TMU_STAGES];
        tmu_set_profile(u, 1);
        double tp = bu_now();
        if (tmu_forward_nchw(u, a, x, 1, h, h, &tt, ctx, T, out, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        tp = bu_now() - tp;
        tmu_set_profile(u, 0);
        tmu_stages(u, st);
        res[k][0] = cold, res[k][1] = best, res[k][2] = tmu_last_flops(u);
        printf("  latent %2d² (image %3d²): cold %.2f s, best of %d %.3f s, %.1f GFLOP, arena peak %.1f MiB\n", h,
               8 * h, cold, reps, best, res[k][2] * 1e-9, te_arena_peak(a) / 1048576.0);
        printf("    profiled run %.3f s:\n", tp);
        for (int i = 0; i < TMU_STAGES; i++)
            printf("      %-17s %7.3f s %7.1f GFLOP %6.0f GFLOP/s\n", st[i].name, st[i].seconds, st[i].flops * 1e-9,
                   st[i].seconds > 0 ? st[i].flops / st[i].seconds * 1e-9 : 0);
        free(x), free(out);
    }
    double p2 = bu_fma_peak(threads);
    if (p2 > peak) peak = p2;
    printf("FMA ceiling %d threads: %.0f GFLOP/s; max RSS %.0f MiB\n", threads, peak, bu_maxrss_kb() / 1024.0);
    for (int k = 0; k < ns; k++)
        printf("  %3d²: %.0f GFLOP/s = %.0f%% of the ceiling\n", 8 * sizes[k], res[k][2] / res[k][1] * 1e-9,
               peak > 0 ? 100 * res[k][2] / res[k][1] * 1e-9 / peak : 0);
    free(ctx);
    te_arena_destroy(a);
    tmu_free(u);
    tck_close(m);
    te_backend_destroy(be);
    return 0;
}
