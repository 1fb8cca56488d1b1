/* test_esrgan.c - the ESRGAN-family upscalers (worker/model/esrgan.c) against
 * the tiny random RRDBNets of tests/golden/make_esrgan_golden.py:
 *   - te_leaky_relu (the engine op added for them) against a float64 reference;
 *   - architecture detection for the three naming schemes, a "params_ema."
 *     prefix, F16 weights, pixel-unshuffle 2 / 4, one and two upsamplers;
 *   - the network on a float image vs torch in float64: max|a-b|/max|ref| <= 1e-4
 *     (the same weights under three schemes give bit-identical outputs);
 *   - A1111's image path (BGR, tiles from split_grid, combine_grid's masked
 *     blends, half-to-even rounding; Upscaler.upscale's passes + LANCZOS) vs
 *     the Python re-implementation on the same model: |diff| <= 1 level (f32
 *     vs f64 rounding at .5 boundaries; +1 after the Lanczos resize) on at
 *     most 0.5% of the bytes;
 *   - refusals: pickle, truncated / empty / non-safetensors files, other
 *     architectures, a missing tensor, bad tile options; upscaler names and
 *     model paths; cancel through the progress callback; the arena cap.
 * With TESSERA_ESRGAN_BENCH=DIR (make_esrgan_golden.py --full DIR) it also
 * times a 512 -> 2048 4x upscale of DIR/bench-512.png with
 * DIR/ESRGAN/full-x4.safetensors (docs/PERF.md); TESSERA_ESRGAN_TILE=N changes the
 * tile size (0: untiled), TESSERA_ESRGAN_BENCH_OUT=FILE.png keeps the result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "esrgan.h"
#include "image_io.h"
#include "model_test_util.h"
#include "safetensors.h"
#include "te_arena.h"
#include "te_ops.h"
#include "te_weights.h"

#define GD TESSERA_GOLDEN_DIR "/esrgan"

static te_backend *be;

static int setup(void **st) {
    (void)st;
    char err[256];
    return (be = mtu_backend_try(err, sizeof err)) ? 0 : -1;
}
static int teardown(void **st) {
    (void)st;
    te_backend_destroy(be);
    return 0;
}

static tme_model *load(const char *name) {
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", GD, name);
    tme_options o = {.be = be};
    tme_model *m = NULL;
    if (tme_load(path, &o, &m, err, sizeof err)) fail_msg("%s: %s", path, err);
    return m;
}

static void test_leaky_relu(void **st) {
    (void)st;
    te_arena *a;
    assert_int_equal(te_arena_create(be, 0, 0, &a), TE_OK);
    int64_t ne[4] = {1, 5, 7, 13};
    size_t n = 5 * 7 * 13;
    float *h = malloc(n * sizeof *h), *got = malloc(n * sizeof *got);
    for (size_t i = 0; i < n; i++) h[i] = (float)((double)(i * 7919 % 1000) / 250.0 - 2.0);
    h[3] = -0.f;
    te_tensor x, y;
    for (int pass = 0; pass < 2; pass++) {
        if (pass) {
            assert_int_equal(te_arena_reserve(a), TE_OK);
            te_arena_begin_run(a);
        } else {
            te_arena_begin_plan(a);
        }
        assert_int_equal(te_arena_tensor(a, &x, TE_F32, 4, ne), TE_OK);
        assert_int_equal(te_arena_tensor(a, &y, TE_F32, 4, ne), TE_OK);
        if (pass) assert_int_equal(te_tensor_upload(&x, h), TE_OK);
        assert_int_equal(te_leaky_relu(&y, &x, 0.2f), TE_OK);
        assert_int_equal(te_leaky_relu(&x, &x, 0.2f), TE_OK); /* in place */
    }
    assert_int_equal(te_tensor_download(&y, got), TE_OK);
    for (size_t i = 0; i < n; i++) {
        double ref = h[i] > 0 ? (double)h[i] : (double)h[i] * (double)0.2f;
        assert_true(fabs(got[i] - ref) <= 1e-7 * fabs(ref));
    }
    assert_int_equal(te_tensor_download(&x, h), TE_OK);
    assert_memory_equal(h, got, n * sizeof *h);
    /* shape mismatch */
    int64_t ne2[4] = {1, 5, 7, 12};
    te_arena_begin_plan(a);
    assert_int_equal(te_arena_tensor(a, &x, TE_F32, 4, ne), TE_OK);
    assert_int_equal(te_arena_tensor(a, &y, TE_F32, 4, ne2), TE_OK);
    assert_int_equal(te_leaky_relu(&y, &x, 0.2f), TE_ERR_ARG);
    te_arena_destroy(a);
    free(h);
    free(got);
}

static void test_detect(void **st) {
    (void)st;
    static const struct {
        const char *file;
        tme_naming naming;
        const char *prefix;
        int nb, n_up, shuffle, scale;
    } c[] = {
        {"x4", TME_NAMES_BASICSR, "", 2, 2, 1, 4},      {"x4_old", TME_NAMES_OLD, "", 2, 2, 1, 4},
        {"x4_trunk", TME_NAMES_ESRGAN, "params_ema.", 2, 2, 1, 4}, {"x4_f16", TME_NAMES_BASICSR, "", 2, 2, 1, 4},
        {"x2", TME_NAMES_BASICSR, "", 2, 2, 2, 2},      {"x2_old1up", TME_NAMES_OLD, "", 2, 1, 1, 2},
        {"x1", TME_NAMES_BASICSR, "", 1, 2, 4, 1},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        tme_model *m = load(c[i].file);
        const tme_info *in = tme_get_info(m);
        printf("  %-10s %-7s prefix '%s' nf %d nb %d gc %d n_up %d unshuffle %d -> x%d\n", c[i].file,
               tme_naming_name(in->naming), in->prefix, in->nf, in->nb, in->gc, in->n_up, in->shuffle, in->scale);
        assert_int_equal(in->naming, c[i].naming);
        assert_string_equal(in->prefix, c[i].prefix);
        assert_int_equal(in->nf, 8);
        assert_int_equal(in->gc, 4);
        assert_int_equal(in->nb, c[i].nb);
        assert_int_equal(in->n_up, c[i].n_up);
        assert_int_equal(in->shuffle, c[i].shuffle);
        assert_int_equal(in->scale, c[i].scale);
        tme_free(m);
    }
}

static float *forward(const char *model, const float *x, int h, int w, size_t *n) {
    char err[512];
    tme_model *m = load(model);
    int S = tme_get_info(m)->scale;
    *n = (size_t)h * S * w * S * 3;
    float *y = malloc(*n * sizeof *y);
    assert_non_null(y);
    if (tme_forward(m, x, h, w, y, err, sizeof err)) fail_msg("%s: %s", model, err);
    tme_free(m);
    return y;
}

static void test_float_golden(void **st) {
    (void)st;
    char err[512];
    tst_file *f;
    if (tst_open(GD "/expected.safetensors", &f, err, sizeof err)) fail_msg("%s", err);
    const tst_tensor *tx;
    float *x = mtu_read_f32(f, "x", NULL, &tx);
    int h = (int)tx->shape[0], w = (int)tx->shape[1];
    static const char *const models[][2] = {{"x4", "x4"},         {"x4_old", "x4"}, {"x4_trunk", "x4"},
                                            {"x4_f16", "x4_f16"}, {"x2", "x2"},     {"x2_old1up", "x2_old1up"},
                                            {"x1", "x1"}};
    float *first = NULL;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "out_%s", models[i][1]);
        size_t ne, n;
        float *ref = mtu_read_f32(f, name, &ne, NULL);
        float *y = forward(models[i][0], x, h, w, &n);
        assert_int_equal(n, ne);
        double md, mr;
        mtu_err_max(y, ref, n, &md, &mr);
        printf("  %-10s %dx%d -> %zu values: max|diff| %.3g, max|ref| %.3g, rel %.3g\n", models[i][0], w, h, n / 3,
               md, mr, md / mr);
        assert_true(md / mr <= 1e-4);
        /* the same weights under three naming schemes: bit-identical */
        if (!strcmp(models[i][0], "x4")) first = y, y = NULL;
        else if (!strcmp(models[i][1], "x4")) assert_memory_equal(first, y, n * sizeof *y);
        free(y);
        free(ref);
    }
    free(first);
    free(x);
    tst_close(f);
}

static ti_image image_of(const tst_file *f, const char *name) {
    const tst_tensor *t = tst_find(f, name);
    if (!t) fail_msg("images.safetensors has no %s", name);
    assert_int_equal(t->dtype, TST_U8);
    assert_int_equal(t->ndim, 3);
    ti_image im = {(int)t->shape[1], (int)t->shape[0], (int)t->shape[2], malloc(t->nbytes)};
    memcpy(im.pixels, t->data, t->nbytes);
    return im;
}

static void test_a1111_cases(void **st) {
    (void)st;
    char err[512];
    json_error_t je;
    json_t *cases = json_load_file(GD "/cases.json", 0, &je);
    if (!cases) fail_msg("cases.json: %s", je.text);
    tst_file *f;
    if (tst_open(GD "/images.safetensors", &f, err, sizeof err)) fail_msg("%s", err);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        tme_model *m = load(json_string_value(json_object_get(c, "model")));
        ti_image in = image_of(f, json_string_value(json_object_get(c, "input")));
        ti_image exp = image_of(f, json_string_value(json_object_get(c, "expected")));
        tme_upscale_opts o = tme_upscale_defaults();
        o.tile = (int)json_integer_value(json_object_get(c, "tile"));
        o.overlap = (int)json_integer_value(json_object_get(c, "overlap"));
        json_t *sc = json_object_get(c, "scale");
        ti_image out = {0};
        int rc = json_is_null(sc) ? tme_upscale_pass(m, &in, &o, &out, err, sizeof err)
                                  : tme_upscale(m, &in, json_number_value(sc), exp.width, exp.height, &o, 2, &out,
                                                err, sizeof err);
        if (rc) fail_msg("%s: %s", name, err);
        assert_int_equal(out.width, exp.width);
        assert_int_equal(out.height, exp.height);
        assert_int_equal(out.channels, 3);
        size_t n = (size_t)out.width * out.height * 3, bad = 0;
        int md = 0;
        for (size_t k = 0; k < n; k++) {
            int d = abs((int)out.pixels[k] - (int)exp.pixels[k]);
            if (d) bad++;
            if (d > md) md = d;
        }
        printf("  %-12s %dx%d -> %dx%d tile %d overlap %d: %zu of %zu bytes differ, max %d\n", name, in.width,
               in.height, out.width, out.height, o.tile, o.overlap, bad, n, md);
        assert_true(md <= (json_is_null(sc) ? 1 : 2));
        assert_true(bad * 200 <= n);
        ti_image_free(&in);
        ti_image_free(&exp);
        ti_image_free(&out);
        tme_free(m);
    }
    tst_close(f);
    json_decref(cases);
}

static void test_grid(void **st) {
    (void)st;
    assert_int_equal(tme_grid_tiles(512, 512, 192, 8), 9);   /* ceil(504/184) = 3 per axis */
    assert_int_equal(tme_grid_tiles(192, 192, 192, 8), 1);
    assert_int_equal(tme_grid_tiles(193, 100, 192, 8), 2);
    assert_int_equal(tme_grid_tiles(5, 5, 192, 8), 1);       /* A1111 gets 0 tiles and fails: one */
    assert_int_equal(tme_grid_tiles(100, 100, 0, 0), 1);
    assert_int_equal(tme_grid_tiles(100, 100, 16, 16), 0);   /* overlap must be < tile */
}

static int stop_after_2(void *ctx, int done, int total) {
    int *calls = ctx;
    (*calls)++;
    assert_true(done <= total);
    return done >= 2;
}

static void test_cancel_and_options(void **st) {
    (void)st;
    char err[512];
    tme_model *m = load("x2");
    ti_image in;
    assert_int_equal(ti_image_alloc(&in, 40, 30, 3, err, sizeof err), 0);
    memset(in.pixels, 100, 40 * 30 * 3);
    tme_upscale_opts o = tme_upscale_defaults();
    o.tile = 16;
    o.overlap = 4;
    int calls = 0;
    o.progress = stop_after_2;
    o.ctx = &calls;
    ti_image out = {0};
    /* 8x in 3 passes: 40x30 -> 80x60 -> 160x120 -> 320x240 */
    assert_int_equal(tme_upscale(m, &in, 8.0, 320, 240, &o, 2, &out, err, sizeof err), 1);
    assert_int_equal(calls, 2);
    assert_null(out.pixels);
    o.progress = NULL;
    o.overlap = 16;
    assert_int_equal(tme_upscale_pass(m, &in, &o, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "overlap"));
    /* RGBA: alpha ignored, same RGB result as the RGB image */
    ti_image rgba, a = {0}, b = {0};
    assert_int_equal(ti_image_alloc(&rgba, 40, 30, 4, err, sizeof err), 0);
    for (int k = 0; k < 40 * 30; k++) {
        for (int c = 0; c < 3; c++) in.pixels[k * 3 + c] = rgba.pixels[k * 4 + c] = (uint8_t)(k * (c + 3) % 251);
        rgba.pixels[k * 4 + 3] = (uint8_t)k;
    }
    o.overlap = 4;
    assert_int_equal(tme_upscale_pass(m, &in, &o, &a, err, sizeof err), 0);
    assert_int_equal(tme_upscale_pass(m, &rgba, &o, &b, err, sizeof err), 0);
    assert_memory_equal(a.pixels, b.pixels, (size_t)80 * 60 * 3);
    /* a downscale never runs the model (A1111: the loop breaks at once) */
    ti_image_free(&a);
    assert_int_equal(tme_upscale(m, &rgba, 0.5, 20, 15, &o, 2, &a, err, sizeof err), 0);
    assert_int_equal(a.width, 20);
    assert_int_equal(a.channels, 3);
    ti_image_free(&a);
    ti_image_free(&b);
    ti_image_free(&rgba);
    ti_image_free(&in);
    tme_free(m);
}

static void test_arena_cap(void **st) {
    (void)st;
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/x4.safetensors", GD);
    tme_options o = {.be = be, .arena_cap = 100000};
    tme_model *m;
    assert_int_equal(tme_load(path, &o, &m, err, sizeof err), 0);
    ti_image in, out = {0};
    assert_int_equal(ti_image_alloc(&in, 64, 64, 3, err, sizeof err), 0);
    memset(in.pixels, 7, 64 * 64 * 3);
    tme_upscale_opts u = tme_upscale_defaults();
    assert_int_equal(tme_upscale_pass(m, &in, &u, &out, err, sizeof err), -1);
    printf("  cap: %s\n", err);
    assert_non_null(strstr(err, "cap"));
    ti_image_free(&in);
    tme_free(m);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void expect_load_error(const char *path, const char *needle) {
    char err[2048];
    tme_options o = {.be = be};
    tme_model *m = (tme_model *)1;
    assert_int_equal(tme_load(path, &o, &m, err, sizeof err), -1);
    assert_null(m);
    printf("  %s: %.160s%s\n", strrchr(path, '/') + 1, err, strlen(err) > 160 ? "..." : "");
    if (!strstr(err, needle)) fail_msg("error for %s lacks '%s': %s", path, needle, err);
}

static void test_refusals(void **st) {
    (void)st;
    char dir[] = "/tmp/tessera-esrgan-XXXXXX", p[600], err[1024];
    assert_non_null(mkdtemp(dir));
    /* a torch zip checkpoint and a bare pickle */
    snprintf(p, sizeof p, "%s/model.pth", dir);
    write_file(p, "PK\003\004rest-of-a-zip", 18);
    expect_load_error(p, "pickle");
    unlink(p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir); /* content wins over the name */
    write_file(p, "\x80\x02}q\x00.", 6);
    expect_load_error(p, "pickle");
    /* truncated: the header promises more data than there is */
    FILE *f = fopen(GD "/x4.safetensors", "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(p, buf, n / 2);
    expect_load_error(p, "ESRGAN model");
    write_file(p, buf, 0);
    expect_load_error(p, "ESRGAN model");
    write_file(p, "not a model at all", 18);
    expect_load_error(p, "ESRGAN model");
    /* another architecture */
    expect_load_error(TESSERA_GOLDEN_DIR "/safetensors/basic.safetensors", "not an RRDBNet");
    /* a tensor missing, and one of the wrong shape */
    tst_file *tf;
    if (tst_open(GD "/x4.safetensors", &tf, err, sizeof err)) fail_msg("%s", err);
    size_t cnt = tst_count(tf), k = 0;
    tst_tensor *ts = calloc(cnt, sizeof *ts);
    for (size_t i = 0; i < cnt; i++)
        if (strcmp(tst_at(tf, i)->name, "body.1.rdb2.conv3.bias")) ts[k++] = *tst_at(tf, i);
    if (tst_write(p, ts, k, NULL, 0, err, sizeof err)) fail_msg("%s", err);
    expect_load_error(p, "body.1.rdb2.conv3.bias is missing");
    for (size_t i = 0; i < k; i++)
        if (!strcmp(ts[i].name, "conv_hr.weight")) { /* [8,8,3,3] -> [4,8,3,3] */
            ts[i].shape[0] = 4;
            ts[i].nbytes /= 2;
        }
    ts[k++] = *tst_find(tf, "body.1.rdb2.conv3.bias");
    if (tst_write(p, ts, k, NULL, 0, err, sizeof err)) fail_msg("%s", err);
    expect_load_error(p, "conv_hr.weight has shape [4, 8, 3, 3]");
    free(ts);
    tst_close(tf);
    unlink(p);
    rmdir(dir);
}

static void test_names(void **st) {
    (void)st;
    char c[TME_NAME_MAX + 16], dir[] = "/tmp/tessera-esrgan-XXXXXX", p[4200], err[2048];
    assert_true(tme_name_parse("r-esrgan 4x+", c, sizeof c));
    assert_string_equal(c, "R-ESRGAN 4x+");
    assert_string_equal(tme_display_name(c), "R-ESRGAN 4x+");
    assert_true(tme_name_parse("R-ESRGAN 4x+ Anime6B", c, sizeof c));
    assert_true(tme_name_parse("ESRGAN_4x", c, sizeof c));
    assert_true(tme_name_parse("esrgan/4x-UltraSharp", c, sizeof c));
    assert_string_equal(c, "ESRGAN/4x-UltraSharp");
    assert_string_equal(tme_display_name(c), "4x-UltraSharp");
    assert_true(tme_name_parse("RealESRGAN/RealESRGAN_x4plus.safetensors", c, sizeof c));
    assert_string_equal(c, "RealESRGAN/RealESRGAN_x4plus");
    assert_true(tme_name_parse("ESRGAN/4x_NMKD-Siax_200k (v2) [x]", c, sizeof c));
    static const char *const bad[] = {"ESRGAN_9x", "Lanczos", "ESRGAN/", "ESRGAN/../x", "ESRGAN/a/b", "ESRGAN/.hidden",
                                      "ESRGAN/ x", "LDSR/x", "R-ESRGAN General 4xV3", "ESRGAN/a\\b", "", NULL};
    for (int i = 0; bad[i]; i++)
        if (tme_name_parse(bad[i], c, sizeof c)) fail_msg("'%s' accepted", bad[i]);
    assert_false(tme_name_parse(NULL, c, sizeof c));
    /* model paths */
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/ESRGAN", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(tme_model_path(dir, "ESRGAN/tiny", p, sizeof p, err, sizeof err), -1);
    assert_non_null(strstr(err, "ESRGAN/tiny.safetensors not found"));
    snprintf(p, sizeof p, "%s/ESRGAN/tiny.pth", dir);
    write_file(p, "PK\003\004", 4);
    assert_int_equal(tme_model_path(dir, "ESRGAN/tiny", p, sizeof p, err, sizeof err), -1);
    assert_non_null(strstr(err, "pickle"));
    snprintf(p, sizeof p, "%s/ESRGAN/tiny.pth", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/ESRGAN/ESRGAN_4x.safetensors", dir);
    write_file(p, "x", 1);
    char got[4200];
    assert_int_equal(tme_model_path(dir, "esrgan_4x", got, sizeof got, err, sizeof err), 0);
    assert_string_equal(got, p);
    unlink(p);
    assert_int_equal(tme_model_path(dir, "R-ESRGAN 2x+", got, sizeof got, err, sizeof err), -1);
    assert_non_null(strstr(err, "RealESRGAN/RealESRGAN_x2plus.safetensors"));
    assert_int_equal(tme_model_path(dir, "ESRGAN/../../etc/passwd", got, sizeof got, err, sizeof err), -1);
    snprintf(p, sizeof p, "%s/ESRGAN", dir);
    rmdir(p);
    rmdir(dir);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* TESSERA_ESRGAN_BENCH=DIR: 512 -> 2048 with the full-size model, tiles 192/8. */
static void bench(void **st) {
    (void)st;
    const char *d = getenv("TESSERA_ESRGAN_BENCH");
    if (!d || !*d) skip();
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/bench-512.png", d);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s missing (make_esrgan_golden.py --full %s)", path, d);
    static uint8_t png[4 << 20];
    size_t n = fread(png, 1, sizeof png, f);
    fclose(f);
    ti_image in, out = {0};
    if (ti_decode(png, n, 0, &in, err, sizeof err)) fail_msg("%s", err);
    te_cpu_options co = {.n_threads = 0, .isa = -1};
    te_backend *b;
    if (te_cpu_backend_create(&co, &b, err, sizeof err) != TE_OK) fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/ESRGAN/full-x4.safetensors", d);
    tme_options o = {.be = b};
    tme_model *m;
    double t0 = now_s();
    if (tme_load(path, &o, &m, err, sizeof err)) fail_msg("%s", err);
    double t1 = now_s();
    tme_upscale_opts u = tme_upscale_defaults();
    const char *ts = getenv("TESSERA_ESRGAN_TILE");
    if (ts) u.tile = atoi(ts);
    if (tme_upscale_pass(m, &in, &u, &out, err, sizeof err)) fail_msg("%s", err);
    double t2 = now_s();
    const char *op = getenv("TESSERA_ESRGAN_BENCH_OUT"); /* optional: the result as PNG */
    if (op && *op) {
        uint8_t *png_out = NULL;
        size_t png_len = 0;
        if (ti_encode_png(&out, NULL, 0, 1, &png_out, &png_len, err, sizeof err)) fail_msg("%s", err);
        write_file(op, png_out, png_len);
        free(png_out);
    }
    const tme_info *inf = tme_get_info(m);
    printf("  bench: nf %d nb %d x%d, %dx%d -> %dx%d, tile %d overlap %d (%d tiles), %d threads: load %.2f s, "
           "upscale %.2f s (%.2f s/tile), arena peak %.0f MiB\n",
           inf->nf, inf->nb, inf->scale, in.width, in.height, out.width, out.height, u.tile, u.overlap,
           tme_grid_tiles(in.width, in.height, u.tile, u.overlap), te_cpu_backend_threads(b), t1 - t0, t2 - t1,
           (t2 - t1) / tme_grid_tiles(in.width, in.height, u.tile, u.overlap), tme_arena_peak(m) / 1048576.0);
    ti_image_free(&in);
    ti_image_free(&out);
    tme_free(m);
    te_backend_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaky_relu),  cmocka_unit_test(test_detect),
        cmocka_unit_test(test_float_golden), cmocka_unit_test(test_a1111_cases),
        cmocka_unit_test(test_grid),         cmocka_unit_test(test_cancel_and_options),
        cmocka_unit_test(test_arena_cap),    cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_names),        cmocka_unit_test(bench),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
