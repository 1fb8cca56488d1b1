/* test_vae_tiled.c - tiled VAE decode/encode (worker/model/vae_tiled.c)
 * against the untiled network (vae.c) on the tiny golden SD1 model
 * (tests/golden/models/sd1-tiny: 2 levels, downscale 2, 8 norm groups).
 *
 * Exact mode must equal untiled up to float summation order (max abs diff
 * <= 1e-3, expected ~1e-6): several tile sizes, tiles not dividing the size,
 * one tile, non-square inputs, both parking policies, batch 2, automatic
 * tile size from a budget. f16 parking and fast mode are approximations:
 * their errors are printed and checked against loose bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "te_cpu.h"
#include "vae.h"
#include "model_test_util.h"

#define GD TESSERA_GOLDEN_DIR "/models"
#define EXACT_TOL 1e-3

typedef struct {
    te_backend *be;
    tmv_vae *v;
} fixture;

static int setup(void **st) {
    static fixture fx;
    char err[512];
    /* one thread: the tiny model's ops are far too small for threads, and with
     * TE_NO_REEXEC=1 (ctest, valgrind) libgomp's workers would spin between
     * the thousands of small convolutions of a tiled run (10x slower) */
    te_cpu_options co = {.n_threads = 1, .isa = -1};
    if (te_cpu_backend_create(&co, &fx.be, err, sizeof err) != TE_OK) return -1;
    tck_model *m;
    if (tck_open(GD "/sd1-tiny", NULL, &m, err, sizeof err)) return -1;
    tmv_options o = {.be = fx.be};
    int rc = tmv_load(m, &fx.v, &o, err, sizeof err);
    tck_close(m);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *st = &fx;
    return 0;
}
static int teardown(void **st) {
    fixture *fx = *st;
    tmv_free(fx->v);
    te_backend_destroy(fx->be);
    return 0;
}

static float *rnd(size_t n, uint32_t seed, float amp) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) seed = seed * 1664525u + 1013904223u, p[i] = ((seed >> 8) / 8388608.0f - 1) * amp;
    return p;
}
/* A field with a natural-image-like 1/f spectrum: equal-amplitude octaves of
 * bilinearly interpolated noise at spacings 1, 2, 4, ... (statistically
 * about scale invariant, as natural images and their latents are; white
 * noise is the other extreme). */
static float *natural(int B, int C, int H, int W, uint32_t seed, float amp) {
    size_t n = (size_t)B * C * H * W;
    float *p = calloc(n, sizeof *p);
    int oct = 0;
    while ((1 << oct) < (H > W ? H : W) / 2) oct++;
    for (int o = 0; o <= oct; o++) {
        int s = 1 << o, gh = H / s + 2, gw = W / s + 2;
        float *g = rnd((size_t)B * C * gh * gw, seed + 101u * o, amp / sqrtf((float)oct + 1));
        for (int bc = 0; bc < B * C; bc++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    float fy = (float)y / s, fx = (float)x / s, ty = fy - (int)fy, tx = fx - (int)fx;
                    const float *q = g + ((size_t)bc * gh + (int)fy) * gw + (int)fx;
                    p[((size_t)bc * H + y) * W + x] += (q[0] * (1 - tx) + q[1] * tx) * (1 - ty) +
                                                       (q[gw] * (1 - tx) + q[gw + 1] * tx) * ty;
                }
        free(g);
    }
    return p;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}
static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* tiled decode of [B,4,h,w] vs untiled (input white noise, or natural-like if sm);
 * returns the max abs diff */
static double decode_case(tmv_vae *v, int B, int h, int w, tmv_tile_options o, const char *what, int sm) {
    char err[512];
    int f = tmv_downscale(v);
    size_t nl = (size_t)B * 4 * h * w, ni = (size_t)B * 3 * h * f * w * f;
    float *lat = sm ? natural(B, 4, h, w, 7u + h * 31u + w, 1.0f) : rnd(nl, 7u + h * 31u + w, 1.0f), *ref = malloc(ni * sizeof *ref), *got = malloc(ni * sizeof *got);
    if (tmv_decode(v, lat, B, h, w, ref, err, sizeof err)) fail_msg("%s", err);
    memset(got, 0xff, ni * sizeof *got);   /* NaN: every pixel must be written */
    tmv_tile_report r;
    if (tmv_decode_tiled(v, lat, B, h, w, got, &o, &r, err, sizeof err)) fail_msg("%s: %s", what, err);
    double d = max_diff(got, ref, ni);
    printf("  decode %-28s B%d %3dx%-3d tile %3d grid %dx%d sweeps %3d halo %d: max|diff| %.3g (max|ref| %.3g), "
           "arena %.0f KiB, parked %.0f KiB%s\n",
           what, B, w, h, r.tile, r.tiles_x, r.tiles_y, r.sweeps, r.max_halo, d, max_abs(ref, ni),
           r.arena_peak / 1024.0, r.parked_peak / 1024.0, r.fast ? ", fast" : "");
    free(lat), free(ref), free(got);
    return d;
}

static double encode_case(tmv_vae *v, int B, int H, int W, tmv_tile_options o, const char *what, int sm) {
    char err[512];
    int f = tmv_downscale(v);
    size_t ni = (size_t)B * 3 * H * W, nl = (size_t)B * 4 * (H / f) * (W / f);
    float *img = sm ? natural(B, 3, H, W, 11u + H * 7u + W, 1.0f) : rnd(ni, 11u + H * 7u + W, 1.0f);
    float *rm = malloc(nl * 4), *rs = malloc(nl * 4), *gm = malloc(nl * 4), *gs = malloc(nl * 4);
    if (tmv_encode(v, img, B, H, W, rm, rs, err, sizeof err)) fail_msg("%s", err);
    memset(gm, 0xff, nl * 4);
    memset(gs, 0xff, nl * 4);
    tmv_tile_report r;
    if (tmv_encode_tiled(v, img, B, H, W, gm, gs, &o, &r, err, sizeof err)) fail_msg("%s: %s", what, err);
    double dm = max_diff(gm, rm, nl), ds = max_diff(gs, rs, nl);
    printf("  encode %-28s B%d %3dx%-3d tile %3d grid %dx%d sweeps %3d halo %d: mean %.3g std %.3g (max|ref| %.3g), "
           "arena %.0f KiB, parked %.0f KiB%s\n",
           what, B, W, H, r.tile, r.tiles_x, r.tiles_y, r.sweeps, r.max_halo, dm, ds, max_abs(rm, nl),
           r.arena_peak / 1024.0, r.parked_peak / 1024.0, r.fast ? ", fast" : "");
    free(img), free(rm), free(rs), free(gm), free(gs);
    return dm > ds ? dm : ds;
}

static void test_decode_exact(void **st) {
    fixture *fx = *st;
    static const int tiles[] = {8, 5, 7, 13, 16, 64};
    for (int rec = 0; rec < 2; rec++)
        for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++) {
            char what[64];
            snprintf(what, sizeof what, "exact tile %d%s", tiles[i], rec ? " recompute" : "");
            tmv_tile_options o = {.tile = tiles[i], .recompute = rec};
            assert_true(decode_case(fx->v, 1, 20, 28, o, what, 0) <= EXACT_TOL);
        }
    /* square, one tile and a 1-pixel-thin last tile */
    assert_true(decode_case(fx->v, 1, 24, 24, (tmv_tile_options){.tile = 24}, "exact one tile", 0) <= EXACT_TOL);
    assert_true(decode_case(fx->v, 1, 17, 9, (tmv_tile_options){.tile = 16}, "exact thin last tile", 0) <= EXACT_TOL);
    assert_true(decode_case(fx->v, 2, 12, 20, (tmv_tile_options){.tile = 6}, "exact batch 2", 0) <= EXACT_TOL);
}

static void test_encode_exact(void **st) {
    fixture *fx = *st;
    static const int tiles[] = {16, 10, 14, 26, 128};
    for (int rec = 0; rec < 2; rec++)
        for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++) {
            char what[64];
            snprintf(what, sizeof what, "exact tile %d%s", tiles[i], rec ? " recompute" : "");
            tmv_tile_options o = {.tile = tiles[i], .recompute = rec};
            assert_true(encode_case(fx->v, 1, 40, 56, o, what, 0) <= EXACT_TOL);
        }
    assert_true(encode_case(fx->v, 2, 36, 20, (tmv_tile_options){.tile = 12}, "exact batch 2", 0) <= EXACT_TOL);
}

static void test_f16_parking(void **st) {
    fixture *fx = *st;
    double d = decode_case(fx->v, 1, 20, 28, (tmv_tile_options){.tile = 8, .park_f16 = 1}, "f16 parking", 0);
    double e = encode_case(fx->v, 1, 40, 56, (tmv_tile_options){.tile = 16, .park_f16 = 1}, "f16 parking", 0);
    assert_true(d > 0 && d <= 2e-2);
    assert_true(e <= 2e-2);
}

/* Fast mode estimates the statistics above latent resolution from an input
 * downsampled to about one tile: the error grows with the downsampling
 * factor (measured on this tiny random-weight model; printed). Checked on a
 * natural-like (1/f) input and on white noise. */
static void test_fast(void **st) {
    fixture *fx = *st;
    tmv_tile_options f48 = {.tile = 48, .fast = 1}, f24 = {.tile = 24, .fast = 1};
    tmv_tile_options f96 = {.tile = 96, .fast = 1}, f48e = {.tile = 48, .fast = 1};
    double d1 = decode_case(fx->v, 1, 64, 96, f48, "fast tile 48 natural", 1);
    double d2 = decode_case(fx->v, 1, 64, 96, f48, "fast tile 48 noise", 0);
    double d3 = decode_case(fx->v, 1, 64, 96, f24, "fast tile 24 natural", 1);
    double e1 = encode_case(fx->v, 1, 128, 192, f96, "fast tile 96 natural", 1);
    double e2 = encode_case(fx->v, 1, 128, 192, f96, "fast tile 96 noise", 0);
    double e3 = encode_case(fx->v, 1, 128, 192, f48e, "fast tile 48 natural", 1);
    printf("  fast mode max|diff| vs untiled: decode %.3g (natural) %.3g (noise) at 2x downsampling, %.3g at 4x; "
           "encode %.3g / %.3g at 2x, %.3g at 4x\n", d1, d2, d3, e1, e2, e3);
    assert_true(d1 <= 0.15 && d2 <= 0.15 && e1 <= 0.1 && e2 <= 0.1);
    assert_true(d3 <= 0.5 && e3 <= 0.5);
    /* exact mode on the same natural input */
    assert_true(decode_case(fx->v, 1, 64, 96, (tmv_tile_options){.tile = 24}, "exact tile 24 natural", 1) <=
                EXACT_TOL);
    /* one tile: fast mode has nothing to estimate and runs exact */
    assert_true(decode_case(fx->v, 1, 12, 12, (tmv_tile_options){.tile = 16, .fast = 1}, "fast one tile", 0) <=
                EXACT_TOL);
}

static void test_auto_tile(void **st) {
    fixture *fx = *st;
    char err[512];
    tmv_tile_report r, r1;
    /* the budget of one 16-latent tile; the plan must pick a tile that fits */
    assert_int_equal(tmv_tiled_plan(fx->v, 0, 40, 40, &(tmv_tile_options){.tile = 16}, &r1, err, sizeof err), 0);
    tmv_tile_options o = {.budget = r1.arena_peak};
    assert_int_equal(tmv_tiled_plan(fx->v, 0, 40, 40, &o, &r, err, sizeof err), 0);
    printf("  auto: budget %zu -> tile %d (arena %zu, parked %zu)\n", o.budget, r.tile, r.arena_peak, r.parked_peak);
    assert_true(r.tile >= 16 && r.arena_peak <= o.budget);
    assert_true(decode_case(fx->v, 1, 40, 40, o, "exact auto tile", 0) <= EXACT_TOL);
    /* a budget nothing fits */
    o.budget = 1024;
    float lat[4 * 40 * 40] = {0}, *img = malloc(3 * 80 * 80 * sizeof *img);
    assert_int_equal(tmv_decode_tiled(fx->v, lat, 1, 40, 40, img, &o, NULL, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "no tile size fits"));
    /* encode sizes must be multiples of the downscale */
    float mean[4], sd[4];
    assert_int_equal(tmv_encode_tiled(fx->v, img, 1, 3, 4, mean, sd, NULL, NULL, err, sizeof err), -1);
    free(img);
}

static void test_pad_override(void **st) {
    fixture *fx = *st;
    /* a halo below the receptive field is allowed but no longer exact */
    double d = decode_case(fx->v, 1, 20, 28, (tmv_tile_options){.tile = 8, .pad = 1, .fast = 1}, "fast pad 1", 0);
    assert_true(d > 0 && d < 1.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_exact), cmocka_unit_test(test_encode_exact), cmocka_unit_test(test_f16_parking),
        cmocka_unit_test(test_fast),         cmocka_unit_test(test_auto_tile),    cmocka_unit_test(test_pad_override),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
