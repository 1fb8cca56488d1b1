/* bench_vae.c - model load, text encoder and VAE of a full-size checkpoint.
 *
 *   bench_vae [--model PATH] [--threads N] [--reps N] [--latent H] [--no-encode] [--no-text]
 *
 * Default model: /root/sd15-random/sd15_random_f16.safetensors (random
 * weights, SD1.5 shapes: ../shared/tools/make_sd15_random.py), 2 threads,
 * latent 64² (image 512²). Prints the load time of each component, the
 * resident memory after loading, the text encoder time for one 77-token
 * prompt (B = 1, clip skip 1), VAE decode of a [1, 4, 64, 64] latent and
 * encode of a [1, 3, 512, 512] image (cold = first run, then best of reps),
 * GFLOP/s (2 x multiply-adds of convs, linears and attention products), the
 * arena peak and the process max RSS (getrusage ru_maxrss).
 * TE_WEIGHTS=bf16 runs everything with bf16 conv/linear weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "checkpoint.h"
#include "clip_text.h"
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

/* FLOPs of an SD VAE (ch 128/256/512/512, 2 resnets per encoder level, 3 per
 * decoder level, one mid attention) at image size S, counted per conv. */
static double conv_fl(double h, double w, double ci, double co, double k) { return 2 * h * w * ci * co * k * k; }
static double res_fl(double h, double ci, double co) {
    return conv_fl(h, h, ci, co, 3) + conv_fl(h, h, co, co, 3) + (ci != co ? conv_fl(h, h, ci, co, 1) : 0);
}
static double mid_fl(double h) {
    double n = h * h, c = 512;
    return 2 * res_fl(h, c, c) + 4 * 2 * n * c * c + 2 * 2 * n * n * c;
}
static double decode_flops(int S) {
    const double ch[4] = {128, 256, 512, 512};
    double h = S / 8.0, f = conv_fl(h, h, 4, 4, 1) + conv_fl(h, h, 4, 512, 3) + mid_fl(h), c = 512;
    for (int i = 3; i >= 0; i--) {
        for (int j = 0; j < 3; j++) f += res_fl(h, j ? ch[i] : c, ch[i]);
        c = ch[i];
        if (i) { h *= 2; f += conv_fl(h, h, c, c, 3); }
    }
    return f + conv_fl(S, S, 128, 3, 3);
}
static double encode_flops(int S) {
    const double ch[4] = {128, 256, 512, 512};
    double h = S, f = conv_fl(h, h, 3, 128, 3), c = 128;
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 2; j++) f += res_fl(h, j ? ch[i] : c, ch[i]);
        c = ch[i];
        if (i < 3) { h /= 2; f += conv_fl(h, h, c, c, 3); }
    }
    return f + mid_fl(h) + conv_fl(h, h, 512, 8, 3) + conv_fl(h, h, 8, 8, 1);
}

int main(int argc, char **argv) {
    te_cpu_prepare_env(argc, argv);
    const char *path = "/root/sd15-random/sd15_random_f16.safetensors";
    int threads = 2, reps = 2, lat = 64, do_enc = 1, do_text = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latent") && i + 1 < argc) lat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-encode")) do_enc = 0;
        else if (!strcmp(argv[i], "--no-text")) do_text = 0;
        else {
            fprintf(stderr, "usage: %s [--model PATH] [--threads N] [--reps N] [--latent H] [--no-encode] [--no-text]\n",
                    argv[0]);
            return 2;
        }
    }
    te_backend *be = bu_backend_conv(threads, TE_CONV_DIRECT);
    char err[1024];
    tck_model *m;
    double t0 = bu_now();
    if (tck_open(path, NULL, &m, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    double t_open = bu_now() - t0;
    printf("model %s, %d threads, weights %s; open %.2f s, RSS %.0f MiB\n", path, threads,
           be->matrix_dtype == TE_BF16 ? "bf16 (conv/linear)" : "f32", t_open, rss_mib());

    if (do_text) {
        tmt_encoder *e;
        tmt_options to = {.be = be};
        t0 = bu_now();
        if (tmt_load(m, &e, &to, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
        double tl = bu_now() - t0;
        int C = tmt_hidden_size(e), L = tmt_layers(e);
        printf("text encoder: %d layers, hidden %d, load %.2f s, RSS %.0f MiB\n", L, C, tl, rss_mib());
        int32_t ids[77];
        ids[0] = 49406;
        for (int i = 1; i < 77; i++) ids[i] = i < 20 ? 320 + 37 * i : 49407;   /* 18 tokens, EOS padding */
        float *out = malloc(sizeof(float) * 77 * C);
        double cold = 0, best = 1e30;
        for (int r = 0; r <= reps + 3; r++) {
            double t = bu_now();
            if (tmt_encode(e, ids, 1, 1, out, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
            t = bu_now() - t;
            if (!r) cold = t; else if (t < best) best = t;
        }
        /* 12 layers x (4 C² + 2 x 4C x C) x 77 tokens + attention 2 x 77² x C, x2 for FLOPs */
        double fl = 2.0 * L * (77.0 * (4.0 * C * C + 8.0 * C * C) + 2.0 * 77 * 77 * C);
        printf("  encode 77 tokens: cold %.3f s, best of %d %.4f s (%.1f GFLOP, %.0f GFLOP/s)\n", cold, reps + 3, best,
               fl * 1e-9, fl / best * 1e-9);
        free(out);
        tmt_free(e);
    }

    tmv_vae *v;
    tmv_options vo = {.be = be};
    t0 = bu_now();
    if (tmv_load(m, &v, &vo, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    printf("VAE: load %.2f s, RSS %.0f MiB\n", bu_now() - t0, rss_mib());
    int z = tmv_latent_channels(v), f = tmv_downscale(v), S = lat * f;
    size_t nl = (size_t)z * lat * lat, ni = (size_t)3 * S * S;
    float *latent = malloc(nl * sizeof(float)), *img = malloc(ni * sizeof(float));
    float *mean = malloc(nl * sizeof(float)), *sd = malloc(nl * sizeof(float));
    uint32_t s = 1;
    for (size_t i = 0; i < nl; i++) s = s * 1664525u + 1013904223u, latent[i] = ((s >> 8) / 8388608.0f - 1) * 0.8f;
    double cold = 0, best = 1e30, fl = decode_flops(S);
    for (int r = 0; r <= reps; r++) {
        double t = bu_now();
        if (tmv_decode(v, latent, 1, lat, lat, img, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
        t = bu_now() - t;
        if (!r) cold = t; else if (t < best) best = t;
    }
    if (reps < 1) best = cold;
    printf("  decode latent %d² -> image %d²: cold %.2f s, best of %d %.2f s, %.0f GFLOP, %.0f GFLOP/s, arena peak %.0f MiB, "
           "RSS %.0f MiB\n", lat, S, cold, reps, best, fl * 1e-9, fl / best * 1e-9, tmv_arena_peak(v) / 1048576.0,
           rss_mib());
    if (do_enc) {
        for (size_t i = 0; i < ni; i++) s = s * 1664525u + 1013904223u, img[i] = (s >> 8) / 8388608.0f - 1;
        cold = 0, best = 1e30, fl = encode_flops(S);
        for (int r = 0; r <= reps; r++) {
            double t = bu_now();
            if (tmv_encode(v, img, 1, S, S, mean, sd, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
            t = bu_now() - t;
            if (!r) cold = t; else if (t < best) best = t;
        }
        if (reps < 1) best = cold;
        printf("  encode image %d² -> latent %d²: cold %.2f s, best of %d %.2f s, %.0f GFLOP, %.0f GFLOP/s, arena peak "
               "%.0f MiB, RSS %.0f MiB\n", S, lat, cold, reps, best, fl * 1e-9, fl / best * 1e-9,
               tmv_arena_peak(v) / 1048576.0, rss_mib());
    }
    printf("max RSS %.0f MiB\n", bu_maxrss_kb() / 1024.0);
    free(latent), free(img), free(mean), free(sd);
    tmv_free(v);
    tck_close(m);
    te_backend_destroy(be);
    return 0;
}
