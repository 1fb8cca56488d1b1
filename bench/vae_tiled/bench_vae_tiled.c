/* bench_vae_tiled.c - memory and time of the tiled VAE (worker/model/vae_tiled.c)
 * against the untiled one on a full-size SD1.5-shaped checkpoint.
 *
 *   bench_vae_tiled [--model PATH] [--threads N] [--latent H[xW]] [--encode]
 *                   [--mode untiled|exact|fast|plan] [--tile T] [--pad P] [--f16] [--recompute] [--fast]
 *                   [--budget MIB] [--save FILE] [--compare FILE]
 *
 * One mode per process, so that ru_maxrss belongs to that mode. Default model
 * /root/sd15-random/sd15_random_f16.safetensors (random weights, SD1.5 shapes:
 * ../shared/tools/make_sd15_random.py), 2 threads, latent 256² (image 2048²),
 * decode, mode exact, automatic tile from a 1 GiB budget. Prints the time, the
 * arena peak (activations), the parked host bytes (exact mode), RSS after
 * loading and the process max RSS. --save writes the output (f32, NCHW) and
 * --compare reads such a file and prints the max abs difference (e.g. a fast
 * run against an exact or untiled one). --mode plan prints the planned arena
 * and parked peaks for a range of tile sizes without computing (--fast: of
 * fast mode). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "checkpoint.h"
#include "vae.h"

static double rss_mib(void) {
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

int main(int argc, char **argv) {
    te_cpu_prepare_env(argc, argv);
    const char *path = "/root/sd15-random/sd15_random_f16.safetensors", *mode = "exact", *save = NULL, *cmp = NULL;
    int threads = 2, lh = 256, lw = 256, enc = 0;
    tmv_tile_options o = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latent") && i + 1 < argc) {
            if (sscanf(argv[++i], "%dx%d", &lh, &lw) != 2) lw = lh = atoi(argv[i]);
        } else if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
        else if (!strcmp(argv[i], "--tile") && i + 1 < argc) o.tile = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pad") && i + 1 < argc) o.pad = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--budget") && i + 1 < argc) o.budget = (size_t)atol(argv[++i]) << 20;
        else if (!strcmp(argv[i], "--f16")) o.park_f16 = 1;
        else if (!strcmp(argv[i], "--recompute")) o.recompute = 1;
        else if (!strcmp(argv[i], "--fast")) o.fast = 1;
        else if (!strcmp(argv[i], "--encode")) enc = 1;
        else if (!strcmp(argv[i], "--save") && i + 1 < argc) save = argv[++i];
        else if (!strcmp(argv[i], "--compare") && i + 1 < argc) cmp = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--model PATH] [--threads N] [--latent H[xW]] [--encode] [--mode untiled|exact|fast|plan]\n"
                    "          [--tile T] [--pad P] [--f16] [--recompute] [--fast] [--budget MIB] [--save FILE] [--compare FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!strcmp(mode, "fast")) o.fast = 1;
    te_backend *be = bu_backend_conv(threads, TE_CONV_DIRECT);
    char err[1024];
    tck_model *m;
    tmv_vae *v;
    tmv_options vo = {.be = be};
    if (tck_open(path, NULL, &m, err, sizeof err) || tmv_load(m, &v, &vo, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int f = tmv_downscale(v), H = lh * f, W = lw * f, z = tmv_latent_channels(v);
    double rss0 = rss_mib();
    printf("model %s, %d threads; %s %s latent %dx%d <-> image %dx%d; RSS after load %.0f MiB\n", path, threads,
           enc ? "encode" : "decode", mode, lw, lh, W, H, rss0);
    if (!strcmp(mode, "plan")) {
        static const int tiles[] = {32, 48, 64, 96, 128, 192, 256};
        for (int r = 0; r < 2; r++)
            for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++) {
                tmv_tile_options p = o;
                tmv_tile_report rep;
                p.tile = enc ? tiles[i] * f : tiles[i];
                p.recompute = r;
                if (tmv_tiled_plan(v, enc, enc ? H : lh, enc ? W : lw, &p, &rep, err, sizeof err)) {
                    fprintf(stderr, "%s\n", err);
                    return 1;
                }
                printf("  tile %4d%s%s%s: grid %dx%d, %d sweeps, max halo %d, arena %.0f MiB, parked %.0f MiB\n",
                       p.tile, p.fast ? " fast" : "", p.park_f16 ? " f16" : "", r ? " recompute" : "", rep.tiles_x,
                       rep.tiles_y, rep.sweeps, rep.max_halo, rep.arena_peak / 1048576.0,
                       rep.parked_peak / 1048576.0);
            }
        return 0;
    }
    size_t nl = (size_t)z * lh * lw, ni = (size_t)3 * H * W, nout = enc ? 2 * nl : ni;
    float *in = malloc((enc ? ni : nl) * sizeof(float)), *out = malloc(nout * sizeof(float));
    uint32_t s = 1;
    for (size_t i = 0; i < (enc ? ni : nl); i++)
        s = s * 1664525u + 1013904223u, in[i] = ((s >> 8) / 8388608.0f - 1) * (enc ? 1.0f : 0.8f);
    double t = bu_now();
    tmv_tile_report rep = {0};
    int rc;
    if (!strcmp(mode, "untiled"))
        rc = enc ? tmv_encode(v, in, 1, H, W, out, out + nl, err, sizeof err)
                 : tmv_decode(v, in, 1, lh, lw, out, err, sizeof err);
    else
        rc = enc ? tmv_encode_tiled(v, in, 1, H, W, out, out + nl, &o, &rep, err, sizeof err)
                 : tmv_decode_tiled(v, in, 1, lh, lw, out, &o, &rep, err, sizeof err);
    t = bu_now() - t;
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (!strcmp(mode, "untiled"))
        printf("  untiled: %.1f s, arena peak %.0f MiB\n", t, tmv_arena_peak(v) / 1048576.0);
    else
        printf("  %s tile %d (grid %dx%d, %d sweeps, max halo %d%s%s%s): %.1f s, arena peak %.0f MiB, parked peak "
               "%.0f MiB\n",
               mode, rep.tile, rep.tiles_x, rep.tiles_y, rep.sweeps, rep.max_halo, o.park_f16 ? ", f16 parking" : "",
               o.recompute ? ", recompute" : "", rep.fast ? ", fast" : "", t, rep.arena_peak / 1048576.0,
               rep.parked_peak / 1048576.0);
    printf("  RSS now %.0f MiB, max RSS %.0f MiB (%.0f MiB above the loaded model)\n", rss_mib(),
           bu_maxrss_kb() / 1024.0, bu_maxrss_kb() / 1024.0 - rss0);
    if (save) {
        FILE *fp = fopen(save, "wb");
        if (!fp || fwrite(out, sizeof(float), nout, fp) != nout) fprintf(stderr, "cannot write %s\n", save);
        if (fp) fclose(fp);
    }
    if (cmp) {
        float *ref = malloc(nout * sizeof(float));
        FILE *fp = fopen(cmp, "rb");
        if (!fp || fread(ref, sizeof(float), nout, fp) != nout) fprintf(stderr, "cannot read %s\n", cmp);
        else {
            double md = 0, mr = 0, sd = 0;
            for (size_t i = 0; i < nout; i++) {
                double d = fabs((double)out[i] - ref[i]);
                md = d > md ? d : md, mr = fabs(ref[i]) > mr ? fabs(ref[i]) : mr, sd += d;
            }
            printf("  vs %s: max|diff| %.3g, mean|diff| %.3g, max|ref| %.3g\n", cmp, md, sd / nout, mr);
        }
        if (fp) fclose(fp);
        free(ref);
    }
    free(in), free(out);
    tmv_free(v);
    tck_close(m);
    te_backend_destroy(be);
    return 0;
}
