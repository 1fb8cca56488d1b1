/*
 * test_grid.c -- the SD upscale pieces against A1111/Pillow goldens
 * (tests/golden/make_grid_golden.py -> tests/golden/grid/cases.bin):
 * proto/tile_grid.c (split_grid positions, the upscaled size),
 * worker/pipeline/grid.c (crop, combine_grid pixels, exact) and
 * worker/upscale.c (A1111 Upscaler.upscale with Lanczos / Nearest, exact);
 * plus the infotext entries of worker/sd_upscale.c, the sd_upscale job
 * validation (proto/job_sd.c) and argument errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"
#include "grid.h"
#include "image_io.h"
#include "job.h"
#include "sd_upscale.h"
#include "tile_grid.h"
#include "upscale.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif

/* ---- golden file ("TIO1" records, as tests/golden/img_ops) ----------------------------- */

typedef struct {
    char name[96];
    int dtype, ndim;
    uint32_t dims[4];
    size_t count;
    const uint8_t *data;
} rec;

typedef struct {
    uint8_t *buf;
    rec *recs;
    int n;
} golden;

static int load_golden(void **state) {
    golden *g = calloc(1, sizeof *g);
    const char *path = TESSERA_GOLDEN_DIR "/grid/cases.bin";
    FILE *f = fopen(path, "rb");
    if (!g || !f) {
        fprintf(stderr, "cannot open %s\n", path);
        if (f) fclose(f);
        free(g);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    g->buf = malloc((size_t)len);
    int ok = g->buf && fread(g->buf, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    if (!ok || len < 8 || memcmp(g->buf, "TIO1", 4)) return -1;
    uint32_t n;
    memcpy(&n, g->buf + 4, 4);
    g->recs = calloc(n, sizeof(rec));
    size_t off = 8;
    for (uint32_t i = 0; i < n; i++) {
        rec *r = &g->recs[i];
        uint16_t nl;
        if (off + 2 > (size_t)len) return -1;
        memcpy(&nl, g->buf + off, 2);
        off += 2;
        if (nl >= sizeof r->name || off + nl + 2 > (size_t)len) return -1;
        memcpy(r->name, g->buf + off, nl);
        off += nl;
        r->dtype = g->buf[off++];
        r->ndim = g->buf[off++];
        if (r->ndim < 1 || r->ndim > 4 || off + 4u * r->ndim > (size_t)len) return -1;
        r->count = 1;
        for (int d = 0; d < r->ndim; d++) {
            memcpy(&r->dims[d], g->buf + off, 4);
            off += 4;
            r->count *= r->dims[d];
        }
        size_t bytes = r->count * (r->dtype == 0 ? 1 : 4);
        if (off + bytes > (size_t)len) return -1;
        r->data = g->buf + off;
        off += bytes;
    }
    g->n = (int)n;
    *state = g;
    return 0;
}

static int free_golden(void **state) {
    golden *g = *state;
    if (g) {
        free(g->buf);
        free(g->recs);
        free(g);
    }
    return 0;
}

static const rec *find(const golden *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->recs[i].name, name)) return &g->recs[i];
    return NULL;
}

static int32_t i32(const rec *r, size_t i) {
    int32_t v;
    memcpy(&v, r->data + 4 * i, 4);
    return v;
}

/* the tile bytes of make_grid_golden.py */
static void tile_bytes(uint32_t seed, uint8_t *out, size_t n) {
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        out[i] = (uint8_t)((x >> 16) & 255);
    }
}

static void assert_pixels(const uint8_t *got, const uint8_t *want, size_t n, const char *what) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ == 0) first = i;
    if (bad) fprintf(stderr, "%s: %zu bytes differ (first at %zu: %u vs %u)\n", what, bad, first, got[first], want[first]);
    assert_int_equal(bad, 0);
}

/* ---- split + combine vs Pillow ------------------------------------------------------------ */

static void test_combine_golden(void **state) {
    const golden *gd = *state;
    int cases = 0;
    for (int k = 0;; k++) {
        char name[64];
        snprintf(name, sizeof name, "%d/meta", k);
        const rec *meta = find(gd, name);
        if (!meta) break;
        int W = i32(meta, 0), H = i32(meta, 1), tw = i32(meta, 2), th = i32(meta, 3), ov = i32(meta, 4);
        tgrid g;
        char err[256];
        assert_int_equal(tgrid_make(W, H, tw, th, ov, &g, err, sizeof err), 0);
        assert_int_equal(g.cols, i32(meta, 5));
        assert_int_equal(g.rows, i32(meta, 6));
        snprintf(name, sizeof name, "%d/xs", k);
        const rec *xs = find(gd, name);
        snprintf(name, sizeof name, "%d/ys", k);
        const rec *ys = find(gd, name);
        assert_non_null(xs);
        assert_non_null(ys);
        for (int c = 0; c < g.cols; c++) assert_int_equal(tgrid_x(&g, c), i32(xs, (size_t)c));
        for (int r = 0; r < g.rows; r++) assert_int_equal(tgrid_y(&g, r), i32(ys, (size_t)r));
        int n = tgrid_count(&g);
        ti_image *tiles = calloc((size_t)n, sizeof *tiles);
        assert_non_null(tiles);
        for (int i = 0; i < n; i++) {
            assert_int_equal(ti_image_alloc(&tiles[i], tw, th, 3, err, sizeof err), 0);
            tile_bytes((uint32_t)(1000 * k + i), tiles[i].pixels, (size_t)tw * th * 3);
        }
        ti_image out = {0};
        assert_int_equal(tpg_combine_tiles(&g, tiles, &out, err, sizeof err), 0);
        snprintf(name, sizeof name, "%d/combined", k);
        const rec *want = find(gd, name);
        assert_non_null(want);
        assert_int_equal(want->count, (size_t)W * H * 3);
        assert_int_equal(out.width, W);
        assert_int_equal(out.height, H);
        snprintf(name, sizeof name, "case %d (%dx%d, tiles %dx%d, overlap %d)", k, W, H, tw, th, ov);
        assert_pixels(out.pixels, want->data, want->count, name);

        /* split: every tile is the image's crop at its grid position */
        for (int i = 0; i < n; i++) {
            ti_image t = {0};
            assert_int_equal(tpg_crop_tile(&out, &g, i, &t, err, sizeof err), 0);
            int x = tgrid_x(&g, i % g.cols), y = tgrid_y(&g, i / g.cols);
            for (int r = 0; r < th; r++)
                assert_memory_equal(t.pixels + (size_t)r * tw * 3, out.pixels + ((size_t)(y + r) * W + x) * 3,
                                    (size_t)tw * 3);
            ti_image_free(&t);
        }
        for (int i = 0; i < n; i++) ti_image_free(&tiles[i]);
        free(tiles);
        ti_image_free(&out);
        cases++;
    }
    assert_true(cases >= 7);
}

/* Re-splitting a combined image and combining the crops gives the image back
 * wherever a later tile does not blend (here: a constant image stays constant). */
static void test_constant_roundtrip(void **state) {
    (void)state;
    tgrid g;
    char err[256];
    assert_int_equal(tgrid_make(128, 128, 32, 32, 8, &g, err, sizeof err), 0);
    ti_image img = {0}, out = {0};
    assert_int_equal(ti_image_alloc(&img, 128, 128, 3, err, sizeof err), 0);
    memset(img.pixels, 77, 128 * 128 * 3);
    ti_image *tiles = calloc(25, sizeof *tiles);
    for (int i = 0; i < 25; i++) assert_int_equal(tpg_crop_tile(&img, &g, i, &tiles[i], err, sizeof err), 0);
    assert_int_equal(tpg_combine_tiles(&g, tiles, &out, err, sizeof err), 0);
    assert_memory_equal(out.pixels, img.pixels, 128 * 128 * 3);
    for (int i = 0; i < 25; i++) ti_image_free(&tiles[i]);
    free(tiles);
    ti_image_free(&img);
    ti_image_free(&out);
}

static void test_grid_errors(void **state) {
    (void)state;
    tgrid g;
    char err[256];
    assert_int_equal(tgrid_make(128, 128, 32, 32, 32, &g, err, sizeof err), -1); /* overlap = tile */
    assert_non_null(strstr(err, "overlap"));
    assert_int_equal(tgrid_make(64, 64, 128, 32, 8, &g, err, sizeof err), -1); /* tile > image */
    assert_int_equal(tgrid_make(64, 64, 32, 32, -1, &g, err, sizeof err), -1);
    assert_int_equal(tgrid_make(0, 64, 32, 32, 0, &g, err, sizeof err), -1);
    /* A1111 tiling.md example: 1024 wide, 512 tiles, overlap 64 -> x = 0, 256, 512 */
    assert_int_equal(tgrid_make(1024, 512, 512, 512, 64, &g, err, sizeof err), 0);
    assert_int_equal(g.cols, 3);
    assert_int_equal(g.rows, 1);
    assert_int_equal(tgrid_x(&g, 1), 256);
    assert_int_equal(tgrid_x(&g, 2), 512);
    /* a wrong tile size is refused by the combiner */
    ti_image t = {0}, out = {0};
    assert_int_equal(ti_image_alloc(&t, 16, 16, 3, err, sizeof err), 0);
    ti_image tiles[3] = {t, t, t};
    assert_int_equal(tpg_combine_tiles(&g, tiles, &out, err, sizeof err), -1);
    assert_null(out.pixels);
    ti_image_free(&t);
}

static void test_upscaled_size(void **state) {
    (void)state;
    int w, h;
    tgrid_upscaled_size("None", 64, 48, 2.0, &w, &h);
    assert_int_equal(w, 64);
    assert_int_equal(h, 48);
    tgrid_upscaled_size("none", 64, 48, 3.0, &w, &h);
    assert_int_equal(w, 64);
    tgrid_upscaled_size("Lanczos", 64, 48, 2.0, &w, &h);
    assert_int_equal(w, 128);
    assert_int_equal(h, 96);
    tgrid_upscaled_size("Lanczos", 50, 37, 1.5, &w, &h); /* 75 // 8 * 8, 55.5 // 8 * 8 */
    assert_int_equal(w, 72);
    assert_int_equal(h, 48);
    tgrid_upscaled_size("4x-UltraSharp", 100, 100, 0.05, &w, &h);
    assert_int_equal(w, 0); /* 5 // 8 * 8: empty, refused by the callers */
}

/* ---- upscalers vs A1111 + Pillow ---------------------------------------------------------------- */

static void test_upscale_golden(void **state) {
    const golden *gd = *state;
    const rec *src = find(gd, "up/src");
    assert_non_null(src);
    ti_image in = {0};
    char err[256];
    assert_int_equal(ti_image_alloc(&in, (int)src->dims[1], (int)src->dims[0], 3, err, sizeof err), 0);
    memcpy(in.pixels, src->data, src->count);
    int found = 0;
    for (int i = 0; i < gd->n; i++) {
        const rec *r = &gd->recs[i];
        if (strncmp(r->name, "up/", 3) || !strcmp(r->name, "up/src")) continue;
        char name[32];
        double scale;
        int k;
        assert_int_equal(sscanf(r->name, "up/%d/%31[^/]/%lf", &k, name, &scale), 3);
        ti_image out = {0};
        assert_int_equal(tw_upscale_image(NULL, name, &in, scale, &out, err, sizeof err), 0);
        int w, h;
        tgrid_upscaled_size(name, in.width, in.height, scale, &w, &h);
        assert_int_equal(out.width, (int)r->dims[1]);
        assert_int_equal(out.height, (int)r->dims[0]);
        assert_int_equal(out.width, w);
        assert_int_equal(out.height, h);
        assert_pixels(out.pixels, r->data, r->count, r->name);
        ti_image_free(&out);
        found++;
    }
    assert_true(found >= 6);
    ti_image out = {0};
    assert_int_equal(tw_upscale_image(NULL, "None", &in, 4.0, &out, err, sizeof err), 0);
    assert_int_equal(out.width, in.width);
    assert_memory_equal(out.pixels, in.pixels, (size_t)in.width * in.height * 3);
    ti_image_free(&out);
    assert_int_equal(tw_upscale_image("/nonexistent", "R-ESRGAN 4x+", &in, 2.0, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "R-ESRGAN 4x+"));
    assert_null(out.pixels);
    ti_image_free(&in);
}

/* ---- infotext ------------------------------------------------------------------------------------ */

static void test_infotext(void **state) {
    (void)state;
    char *s = tw_sd_upscale_infotext("a cat\nNegative prompt: x\nSteps: 3, Sampler: Euler, Seed: 42, Size: 32x32, "
                                     "Model: sd1, Denoising strength: 0.5, RNG: CPU, Version: tessera",
                                     64, "Lanczos");
    assert_string_equal(s, "a cat\nNegative prompt: x\nSteps: 3, Sampler: Euler, Seed: 42, Size: 32x32, Model: sd1, "
                           "Denoising strength: 0.5, RNG: CPU, SD upscale overlap: 64, SD upscale upscaler: Lanczos, "
                           "Version: tessera");
    free(s);
    /* before the entries added while sampling; quoted values with ", " are one entry */
    s = tw_sd_upscale_infotext("p\nSteps: 3, Model: \"a, Eta: b\", Noise multiplier: 0.9, Eta: 0.5, Version: tessera",
                               8, "4x, odd: name");
    assert_string_equal(s, "p\nSteps: 3, Model: \"a, Eta: b\", SD upscale overlap: 8, SD upscale upscaler: "
                           "\"4x, odd: name\", Noise multiplier: 0.9, Eta: 0.5, Version: tessera");
    free(s);
    s = tw_sd_upscale_infotext("p\nSteps: 3, Seed: 1", 0, "None");
    assert_string_equal(s, "p\nSteps: 3, Seed: 1, SD upscale overlap: 0, SD upscale upscaler: None");
    free(s);
}

/* ---- validation (proto/job_sd.c) ------------------------------------------------------------------ */

static json_t *job_body(int w, int h, const char *extra) {
    uint8_t *png = NULL;
    size_t len = 0;
    ti_image im = {0};
    char err[128];
    ti_image_alloc(&im, w, h, 3, err, sizeof err);
    ti_encode_png(&im, NULL, 0, 1, &png, &len, err, sizeof err);
    ti_image_free(&im);
    char *b64 = NULL;
    size_t blen = 0;
    tb64_encode(png, len, &b64, &blen, err, sizeof err);
    free(png);
    char *text = malloc(strlen(b64) + 512);
    sprintf(text, "{\"type\":\"sd_upscale\",\"image\":\"%s\"%s%s}", b64, extra[0] ? "," : "", extra);
    free(b64);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

static int validate(int w, int h, const char *extra, tjob_submission *sub, tjob_error *e) {
    tjob_limits lim;
    tjob_limits_default(&lim);
    lim.max_tiles = 100;
    json_t *b = job_body(w, h, extra);
    int rc = tjob_validate(b, &lim, sub, e);
    json_decref(b);
    return rc;
}

static void test_validation(void **state) {
    (void)state;
    tjob_submission sub;
    tjob_error e;
    assert_int_equal(validate(64, 64, "\"width\":32,\"height\":32,\"overlap\":8,\"upscaler\":\"lanczos\",\"seed\":5",
                              &sub, &e),
                     0);
    json_t *spec = json_loads(sub.spec_json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(spec, "upscaler")), "Lanczos");
    json_t *g = json_object_get(spec, "grid");
    assert_int_equal(json_integer_value(json_object_get(g, "image_width")), 128);
    assert_int_equal(json_integer_value(json_object_get(g, "tiles")), 25);
    assert_int_equal(json_integer_value(json_object_get(spec, "seed")), 5);
    assert_true(json_number_value(json_object_get(spec, "scale_factor")) == 2.0);
    assert_non_null(sub.input);
    json_decref(spec);
    tjob_submission_free(&sub);
    /* defaults: 512 tiles, overlap 64, upscaler None (no upscale) */
    assert_int_equal(validate(1024, 512, "", &sub, &e), 0);
    spec = json_loads(sub.spec_json, 0, NULL);
    g = json_object_get(spec, "grid");
    assert_int_equal(json_integer_value(json_object_get(g, "image_width")), 1024);
    assert_int_equal(json_integer_value(json_object_get(g, "cols")), 3);
    assert_int_equal(json_integer_value(json_object_get(spec, "overlap")), 64);
    json_decref(spec);
    tjob_submission_free(&sub);

    static const struct {
        const char *extra, *field;
    } bad[] = {
        {"\"width\":32,\"height\":32,\"overlap\":32", "overlap"},
        {"\"width\":32,\"height\":32,\"overlap\":300", "overlap"},
        {"\"width\":36,\"height\":32", "width"},
        {"\"scale_factor\":0", "scale_factor"},
        {"\"scale_factor\":9", "scale_factor"},
        {"\"upscaler\":\"../x\"", "upscaler"},
        {"\"upscaler\":\"Latent\"", "upscaler"},
        {"\"batch_size\":2", "batch_size"},
        {"\"mask\":\"x\"", "mask"},
        {"\"tiled_diffusion\":{}", "tiled_diffusion"},
        {"\"width\":16,\"height\":16,\"overlap\":0,\"upscaler\":\"Lanczos\",\"scale_factor\":4", "width"}, /* 256 tiles */
        {"\"width\":256,\"height\":64,\"overlap\":8", "width"},                                            /* tile > image */
        {"\"upscaler\":\"Lanczos\",\"scale_factor\":8,\"width\":64,\"height\":64,\"overlap\":0", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = validate(64, 64, bad[i].extra, &sub, &e);
        if (!bad[i].field) {
            assert_int_equal(rc, 0); /* 512x512 in 64 tiles: fine */
            tjob_submission_free(&sub);
            continue;
        }
        if (rc != -1 || strcmp(e.field, bad[i].field)) fprintf(stderr, "%s -> %d %s: %s\n", bad[i].extra, rc, e.field, e.message);
        assert_int_equal(rc, -1);
        assert_int_equal(e.http_status, 422);
        assert_string_equal(e.field, bad[i].field);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combine_golden),    cmocka_unit_test(test_constant_roundtrip),
        cmocka_unit_test(test_grid_errors),       cmocka_unit_test(test_upscaled_size),
        cmocka_unit_test(test_upscale_golden),    cmocka_unit_test(test_infotext),
        cmocka_unit_test(test_validation),
    };
    return cmocka_run_group_tests(tests, load_golden, free_golden);
}
