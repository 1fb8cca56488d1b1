/*
 * test_img_ops.c -- worker/pipeline/img_ops.c and img_blur.c against
 * goldens made with the libraries A1111 uses (Pillow 9.5.0, OpenCV, numpy;
 * tests/golden/make_img_ops_golden.py -> tests/golden/img_ops/cases.bin).
 *
 * Every integer output must match exactly; a mismatch prints the count and
 * the largest difference before failing.  Float outputs (latent mask,
 * tensors) must match bit for bit too.  Also: the whole A1111 img2img init +
 * overlay flow composed from the primitives, edge cases (blur 0, a sigma
 * far larger than the image, all-zero and all-white masks, 1-pixel images,
 * padding larger than the image) and argument errors.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "img_ops.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif

/* ---- golden file ------------------------------------------------------------------ */

enum { DT_U8 = 0, DT_F32 = 1, DT_I32 = 2 };

typedef struct {
    char name[96];
    int dtype, ndim;
    uint32_t dims[4];
    size_t count;        /* elements */
    const uint8_t *data;
} rec;

static uint8_t *g_buf;
static rec *g_recs;
static int g_nrec;

static int load_golden(void **state) {
    (void)state;
    const char *path = TESSERA_GOLDEN_DIR "/img_ops/cases.bin";
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    g_buf = malloc((size_t)len);
    if (!g_buf || fread(g_buf, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        return -1;
    }
    fclose(f);
    if (len < 8 || memcmp(g_buf, "TIO1", 4) != 0) return -1;
    uint32_t n;
    memcpy(&n, g_buf + 4, 4);
    g_recs = calloc(n, sizeof(rec));
    size_t off = 8;
    for (uint32_t i = 0; i < n; i++) {
        rec *r = &g_recs[i];
        uint16_t nl;
        if (off + 2 > (size_t)len) return -1;
        memcpy(&nl, g_buf + off, 2);
        off += 2;
        if (nl >= sizeof(r->name) || off + nl + 2 > (size_t)len) return -1;
        memcpy(r->name, g_buf + off, nl);
        off += nl;
        r->dtype = g_buf[off++];
        r->ndim = g_buf[off++];
        if (r->ndim < 1 || r->ndim > 4) return -1;
        r->count = 1;
        for (int d = 0; d < r->ndim; d++) {
            memcpy(&r->dims[d], g_buf + off, 4);
            off += 4;
            r->count *= r->dims[d];
        }
        size_t esz = r->dtype == DT_U8 ? 1 : 4;
        if (off + r->count * esz > (size_t)len) return -1;
        r->data = g_buf + off;
        off += r->count * esz;
    }
    g_nrec = (int)n;
    return 0;
}

static int free_golden(void **state) {
    (void)state;
    free(g_buf);
    free(g_recs);
    return 0;
}

static const rec *find(const char *fmt, ...) {
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    for (int i = 0; i < g_nrec; i++)
        if (strcmp(g_recs[i].name, name) == 0) return &g_recs[i];
    fail_msg("golden record %s missing", name);
    return NULL;
}

/* Golden u8 array (h, w, c) or (h, w) as an image (c 3/4; 'L' expands to RGB). */
static ti_image rec_image(const rec *r) {
    assert_int_equal(r->dtype, DT_U8);
    ti_image im;
    int h = (int)r->dims[0], w = (int)r->dims[1], c = r->ndim == 3 ? (int)r->dims[2] : 1;
    assert_int_equal(ti_image_alloc(&im, w, h, c == 1 ? 3 : c, NULL, 0), 0);
    if (c == 1)
        for (size_t i = 0; i < (size_t)w * h; i++)
            im.pixels[i * 3] = im.pixels[i * 3 + 1] = im.pixels[i * 3 + 2] = r->data[i];
    else
        memcpy(im.pixels, r->data, (size_t)w * h * c);
    return im;
}

static tio_mask rec_mask(const rec *r) {
    assert_int_equal(r->dtype, DT_U8);
    assert_int_equal(r->ndim, 2);
    tio_mask m;
    assert_int_equal(tio_mask_alloc(&m, (int)r->dims[1], (int)r->dims[0], NULL, 0), 0);
    memcpy(m.pixels, r->data, r->count);
    return m;
}

/* ---- comparisons ---------------------------------------------------------------- */

static int g_total_mismatch; /* summed over the run, printed at the end */

static void expect_bytes(const char *what, const uint8_t *got, const uint8_t *exp, size_t n) {
    size_t bad = 0;
    int maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got[i] - (int)exp[i]);
        if (d) {
            bad++;
            if (d > maxd) maxd = d;
        }
    }
    if (bad) {
        printf("  MISMATCH %s: %zu of %zu values differ, max diff %d\n", what, bad, n, maxd);
        g_total_mismatch += (int)bad;
    }
    assert_int_equal(bad, 0);
}

static void expect_image(const char *what, const ti_image *got, const rec *exp) {
    int h = (int)exp->dims[0], w = (int)exp->dims[1], c = exp->ndim == 3 ? (int)exp->dims[2] : 1;
    assert_int_equal(got->width, w);
    assert_int_equal(got->height, h);
    assert_int_equal(got->channels, c);
    expect_bytes(what, got->pixels, exp->data, (size_t)w * h * c);
}

static void expect_mask(const char *what, const tio_mask *got, const rec *exp) {
    int h = (int)exp->dims[0], w = (int)exp->dims[1];
    assert_int_equal(got->width, w);
    assert_int_equal(got->height, h);
    if (exp->ndim == 3) { /* an RGB golden with R = G = B */
        uint8_t *ch0 = malloc((size_t)w * h);
        for (size_t i = 0; i < (size_t)w * h; i++) ch0[i] = exp->data[i * exp->dims[2]];
        expect_bytes(what, got->pixels, ch0, (size_t)w * h);
        free(ch0);
    } else {
        expect_bytes(what, got->pixels, exp->data, (size_t)w * h);
    }
}

static void expect_floats(const char *what, const float *got, const rec *exp) {
    assert_int_equal(exp->dtype, DT_F32);
    size_t bad = 0;
    double maxd = 0;
    for (size_t i = 0; i < exp->count; i++) {
        float e;
        memcpy(&e, exp->data + i * 4, 4);
        if (memcmp(&e, &got[i], 4) != 0) {
            bad++;
            if (fabs((double)e - got[i]) > maxd) maxd = fabs((double)e - got[i]);
        }
    }
    if (bad) printf("  MISMATCH %s: %zu of %zu floats differ, max diff %g\n", what, bad, exp->count, maxd);
    assert_int_equal(bad, 0);
}

/* ---- 1. resize_image ------------------------------------------------------------- */

static void test_resize_golden(void **state) {
    (void)state;
    int n = 0;
    char err[256];
    for (int i = 0; i < g_nrec; i++) {
        const rec *r = &g_recs[i];
        char src[16];
        int mode, w, h;
        if (sscanf(r->name, "resize/%15[^/]/%d_%dx%d", src, &mode, &w, &h) != 4) continue;
        if (strcmp(src, "mask") == 0) {
            ti_image mi = rec_image(find("in/mask_rgb"));
            tio_mask m, out;
            assert_int_equal(tio_mask_from_image(&mi, &m, err, sizeof(err)), 0);
            assert_int_equal(tio_resize_mask(&m, mode, w, h, &out, err, sizeof(err)), 0);
            expect_mask(r->name, &out, r);
            tio_mask_free(&m);
            tio_mask_free(&out);
            ti_image_free(&mi);
        } else {
            ti_image in = rec_image(find("in/%s", src)), out;
            int rc = tio_resize_image(&in, mode, w, h, &out, err, sizeof(err));
            if (rc != 0) fail_msg("%s: %s", r->name, err);
            expect_image(r->name, &out, r);
            ti_image_free(&out);
            ti_image_free(&in);
        }
        n++;
    }
    printf("  resize_image: %d golden cases exact\n", n);
    assert_true(n >= 19);
}

static void test_resize_edges(void **state) {
    (void)state;
    char err[256];
    ti_image one, out;
    assert_int_equal(ti_image_alloc(&one, 1, 1, 3, NULL, 0), 0);
    one.pixels[0] = 10;
    one.pixels[1] = 200;
    one.pixels[2] = 77;
    /* A 1x1 image scaled in every mode: a uniform image. */
    for (int mode = 0; mode <= 3; mode++) {
        assert_int_equal(tio_resize_image(&one, mode, 5, 3, &out, err, sizeof(err)), 0);
        assert_int_equal(out.width, 5);
        assert_int_equal(out.height, 3);
        for (int i = 0; i < 15; i++) {
            assert_int_equal(out.pixels[i * 3], 10);
            assert_int_equal(out.pixels[i * 3 + 1], 200);
            assert_int_equal(out.pixels[i * 3 + 2], 77);
        }
        ti_image_free(&out);
    }
    /* Errors: unknown mode, bad size, RGBA, a scaled side of 0. */
    assert_int_equal(tio_resize_image(&one, 4, 5, 3, &out, err, sizeof(err)), -1);
    assert_int_equal(tio_resize_image(&one, 0, 0, 3, &out, err, sizeof(err)), -1);
    assert_null(out.pixels);
    ti_image tall, rgba;
    assert_int_equal(ti_image_alloc(&tall, 1, 100, 3, NULL, 0), 0);
    assert_int_equal(tio_resize_image(&tall, 2, 10, 10, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "scales"));
    assert_int_equal(tio_resize_image(&tall, 1, 10, 10, &out, err, sizeof(err)), 0); /* 10x1000 crop */
    ti_image_free(&out);
    assert_int_equal(ti_image_alloc(&rgba, 4, 4, 4, NULL, 0), 0);
    assert_int_equal(tio_resize_image(&rgba, 0, 5, 5, &out, err, sizeof(err)), -1);
    ti_image_free(&rgba);
    ti_image_free(&tall);
    ti_image_free(&one);
}

/* ---- 2. mask preparation ---------------------------------------------------------- */

static void test_binary_mask(void **state) {
    (void)state;
    char err[256];
    struct {
        const char *in, *exp;
        int round;
    } cases[] = {
        {"in/mask_rgba", "bin/rgba_round", 1},
        {"in/mask_rgba", "bin/rgba_noround", 0},
        {"in/mask_rgb", "bin/rgb", 1},
        {"in/mask_opaque", "bin/opaque", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ti_image im = rec_image(find(cases[i].in));
        tio_mask m;
        assert_int_equal(tio_binary_mask(&im, cases[i].round, &m, err, sizeof(err)), 0);
        expect_mask(cases[i].exp, &m, find(cases[i].exp));
        tio_mask_free(&m);
        ti_image_free(&im);
    }
    tio_mask m;
    assert_int_equal(tio_mask_alloc(&m, 3, 1, NULL, 0), 0);
    m.pixels[0] = 0;
    m.pixels[1] = 100;
    m.pixels[2] = 255;
    tio_mask_invert(&m);
    assert_int_equal(m.pixels[0], 255);
    assert_int_equal(m.pixels[1], 155);
    assert_int_equal(m.pixels[2], 0);
    tio_mask_free(&m);
}

static void test_cv_blur_golden(void **state) {
    (void)state;
    char err[256];
    static const double sets[][2] = {{4, 4}, {0, 3}, {2, 0}, {1, 7}, {13, 13},
                                     {64, 64}, {1.5, 3.3}, {0.3, 0.6}};
    ti_image mi = rec_image(find("in/mask_rgba"));
    tio_mask base;
    assert_int_equal(tio_binary_mask(&mi, 1, &base, err, sizeof(err)), 0);
    ti_image_free(&mi);
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        tio_mask m;
        assert_int_equal(tio_mask_alloc(&m, base.width, base.height, NULL, 0), 0);
        memcpy(m.pixels, base.pixels, (size_t)base.width * base.height);
        assert_int_equal(tio_mask_blur(&m, sets[i][0], sets[i][1], err, sizeof(err)), 0);
        char nm[64];
        snprintf(nm, sizeof(nm), "blur/%g_%g", sets[i][0], sets[i][1]);
        expect_mask(nm, &m, find("%s", nm));
        tio_mask_free(&m);
    }
    tio_mask_free(&base);

    tio_mask g = rec_mask(find("in/grey"));
    tio_mask g2 = rec_mask(find("in/grey"));
    assert_int_equal(tio_mask_blur(&g, 4, 4, err, sizeof(err)), 0);
    expect_mask("blur/grey_4_4", &g, find("blur/grey_4_4"));
    assert_int_equal(tio_mask_blur(&g2, 2, 9, err, sizeof(err)), 0);
    expect_mask("blur/grey_2_9", &g2, find("blur/grey_2_9"));
    tio_mask_free(&g);
    tio_mask_free(&g2);

    static const int tiny[][2] = {{1, 1}, {1, 40}, {40, 1}, {3, 2}, {2, 5}};
    for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++) {
        tio_mask t = rec_mask(find("in/tiny_%dx%d", tiny[i][0], tiny[i][1]));
        assert_int_equal(tio_mask_blur(&t, 4, 4, err, sizeof(err)), 0);
        char nm[64];
        snprintf(nm, sizeof(nm), "blur/tiny_%dx%d", tiny[i][0], tiny[i][1]);
        expect_mask(nm, &t, find("%s", nm));
        tio_mask_free(&t);
    }
}

/* OpenCV's quantised kernel for many sigmas (impulse responses). */
static void test_cv_kernels_golden(void **state) {
    (void)state;
    char err[256];
    const rec *mr = find("kern/millis");
    int n = (int)mr->count;
    for (int i = 0; i < n; i++) {
        int32_t milli;
        memcpy(&milli, mr->data + 4 * (size_t)i, 4);
        double sigma = milli / 1000.0;
        int k = tio_blur_ksize(sigma);
        tio_mask m;
        assert_int_equal(tio_mask_alloc(&m, 2 * k + 1, 2, NULL, 0), 0);
        m.pixels[k] = 255;
        m.pixels[(2 * k + 1) + k] = 254;
        assert_int_equal(tio_cv_gaussian_blur_1d(&m, 1, k, sigma, err, sizeof(err)), 0);
        char nm[64];
        snprintf(nm, sizeof(nm), "kern/%d", (int)milli);
        expect_mask(nm, &m, find("%s", nm));
        tio_mask_free(&m);
    }
    printf("  OpenCV kernels: %d sigmas in [0.05, 100] exact\n", n);
}

static void test_cv_blur_edges(void **state) {
    (void)state;
    char err[256];
    tio_mask m;
    assert_int_equal(tio_mask_alloc(&m, 30, 20, NULL, 0), 0);
    for (int i = 0; i < 600; i++) m.pixels[i] = (uint8_t)(i * 37);
    uint8_t copy[600];
    memcpy(copy, m.pixels, 600);
    /* Blur 0 (and negative) is a no-op, as A1111's "> 0" checks. */
    assert_int_equal(tio_mask_blur(&m, 0, 0, err, sizeof(err)), 0);
    assert_int_equal(tio_mask_blur(&m, -3, 0, err, sizeof(err)), 0);
    assert_memory_equal(m.pixels, copy, 600);
    /* A constant mask stays constant for any sigma (taps sum to exactly 256),
     * including a kernel (k = 1001) far larger than the image. */
    memset(m.pixels, 255, 600);
    assert_int_equal(tio_mask_blur(&m, 200, 200, err, sizeof(err)), 0);
    for (int i = 0; i < 600; i++) assert_int_equal(m.pixels[i], 255);
    memset(m.pixels, 0, 600);
    assert_int_equal(tio_mask_blur(&m, 4, 4, err, sizeof(err)), 0);
    for (int i = 0; i < 600; i++) assert_int_equal(m.pixels[i], 0);
    /* Kernel size formula. */
    assert_int_equal(tio_blur_ksize(4), 21);
    assert_int_equal(tio_blur_ksize(1), 7);
    assert_int_equal(tio_blur_ksize(0.3), 3);
    assert_int_equal(tio_blur_ksize(64), 321);
    /* sigma <= 0 with ksize 3: OpenCV's [1 2 1] / 4 binomial. */
    tio_mask t;
    assert_int_equal(tio_mask_alloc(&t, 3, 1, NULL, 0), 0);
    t.pixels[1] = 255; /* [0 255 0], reflect-101 borders */
    assert_int_equal(tio_cv_gaussian_blur_1d(&t, 1, 3, 0, err, sizeof(err)), 0);
    assert_int_equal(t.pixels[0], 128); /* (64*255 + 128*0 + 64*255 + 128) >> 8 */
    assert_int_equal(t.pixels[1], 128);
    assert_int_equal(t.pixels[2], 128);
    /* Errors. */
    assert_int_equal(tio_cv_gaussian_blur_1d(&t, 1, 4, 1, err, sizeof(err)), -1);
    assert_int_equal(tio_cv_gaussian_blur_1d(&t, 1, -1, 1, err, sizeof(err)), -1);
    assert_int_equal(tio_mask_blur(&t, NAN, 1, err, sizeof(err)), -1);
    tio_mask_free(&t);
    tio_mask_free(&m);
}

/* ---- 3. crop regions ------------------------------------------------------------- */

static void test_crop_golden(void **state) {
    (void)state;
    char err[256];
    tio_mask masks[3] = {rec_mask(find("crop/mask_a")), rec_mask(find("crop/mask_b")),
                         rec_mask(find("crop/mask_z"))};
    const rec *cases = find("crop/cases");
    assert_int_equal(cases->dtype, DT_I32);
    const int32_t *c = (const int32_t *)(const void *)cases->data;
    int n = (int)cases->dims[0], cols = (int)cases->dims[1];
    assert_int_equal(cols, 12);
    for (int i = 0; i < n; i++, c += cols) {
        int32_t row[12];
        memcpy(row, c, sizeof(row));
        const tio_mask *m = &masks[row[0]];
        tio_rect r;
        int found = tio_crop_region(m, row[1], &r, err, sizeof(err));
        assert_int_equal(found, row[4] >= 0 ? 1 : 0);
        if (!found) continue;
        assert_int_equal(r.x1, row[4]);
        assert_int_equal(r.y1, row[5]);
        assert_int_equal(r.x2, row[6]);
        assert_int_equal(r.y2, row[7]);
        tio_rect e = tio_expand_crop_region(r, row[2], row[3], m->width, m->height);
        assert_int_equal(e.x1, row[8]);
        assert_int_equal(e.y1, row[9]);
        assert_int_equal(e.x2, row[10]);
        assert_int_equal(e.y2, row[11]);
    }
    for (int i = 0; i < 3; i++) tio_mask_free(&masks[i]);

    const rec *ex = find("crop/expand");
    const int32_t *e = (const int32_t *)(const void *)ex->data;
    int ne = (int)ex->dims[0];
    for (int i = 0; i < ne; i++, e += 12) {
        int32_t row[12];
        memcpy(row, e, sizeof(row));
        tio_rect r = {row[0], row[1], row[2], row[3]};
        tio_rect o = tio_expand_crop_region(r, row[4], row[5], row[6], row[7]);
        if (o.x1 != row[8] || o.y1 != row[9] || o.x2 != row[10] || o.y2 != row[11])
            fail_msg("expand #%d (%d,%d,%d,%d) proc %dx%d img %dx%d: got (%d,%d,%d,%d) want "
                     "(%d,%d,%d,%d)", i, row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                     row[7], o.x1, o.y1, o.x2, o.y2, row[8], row[9], row[10], row[11]);
    }
    printf("  crop regions: %d golden cases + %d random expand_crop_region cases exact\n", n, ne);
}

static void test_crop_edges(void **state) {
    (void)state;
    char err[256];
    tio_mask m;
    tio_rect r;
    assert_int_equal(tio_mask_alloc(&m, 10, 6, NULL, 0), 0);
    assert_int_equal(tio_crop_region(&m, 0, &r, err, sizeof(err)), 0); /* all zero */
    assert_int_equal(tio_crop_region(&m, -1, &r, err, sizeof(err)), -1);
    memset(m.pixels, 255, 60); /* all white: the whole image, whatever the padding */
    assert_int_equal(tio_crop_region(&m, 0, &r, err, sizeof(err)), 1);
    assert_true(r.x1 == 0 && r.y1 == 0 && r.x2 == 10 && r.y2 == 6);
    assert_int_equal(tio_crop_region(&m, 1000, &r, err, sizeof(err)), 1);
    assert_true(r.x1 == 0 && r.y1 == 0 && r.x2 == 10 && r.y2 == 6);
    memset(m.pixels, 0, 60);
    m.pixels[2 * 10 + 7] = 1; /* one pixel at (7, 2) */
    assert_int_equal(tio_crop_region(&m, 0, &r, err, sizeof(err)), 1);
    assert_true(r.x1 == 7 && r.y1 == 2 && r.x2 == 8 && r.y2 == 3);
    assert_int_equal(tio_crop_region(&m, 3, &r, err, sizeof(err)), 1);
    assert_true(r.x1 == 4 && r.y1 == 0 && r.x2 == 10 && r.y2 == 6);
    /* Expand a 1x1 region to 2:1 inside a 10x6 image: width 2. */
    tio_rect one = {7, 2, 8, 3};
    tio_rect e = tio_expand_crop_region(one, 128, 64, 10, 6);
    assert_true(e.x1 == 7 && e.y1 == 2 && e.x2 == 9 && e.y2 == 3);
    /* Crop outside the source: zeros, like Pillow. */
    tio_mask c;
    tio_rect big = {-2, -1, 12, 7};
    assert_int_equal(tio_crop_mask(&m, big, &c, err, sizeof(err)), 0);
    assert_int_equal(c.width, 14);
    assert_int_equal(c.height, 8);
    assert_int_equal(c.pixels[3 * 14 + 9], 1);
    int sum = 0;
    for (int i = 0; i < 14 * 8; i++) sum += c.pixels[i];
    assert_int_equal(sum, 1);
    tio_mask_free(&c);
    tio_rect empty = {3, 3, 3, 5};
    assert_int_equal(tio_crop_mask(&m, empty, &c, err, sizeof(err)), -1);
    tio_mask_free(&m);
}

/* ---- 4. Pillow blur, alpha_composite, fill --------------------------------------------- */

static void test_pil_blur_golden(void **state) {
    (void)state;
    char err[256];
    static const float radii[] = {0, 0.5f, 1, 1.7f, 2, 4, 16, 64, 256};
    for (size_t i = 0; i < sizeof(radii) / sizeof(radii[0]); i++) {
        ti_image im = rec_image(find("in/rgba_pre"));
        assert_int_equal(tio_pil_gaussian_blur(&im, radii[i], err, sizeof(err)), 0);
        char nm[64];
        snprintf(nm, sizeof(nm), "pilblur/%g", (double)radii[i]);
        expect_image(nm, &im, find("%s", nm));
        ti_image_free(&im);
    }
    static const int tiny[][2] = {{1, 1}, {1, 30}, {30, 1}, {3, 2}};
    for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++)
        for (int r = 2; r <= 16; r += 14) {
            ti_image im = rec_image(find("in/pil_tiny_%dx%d", tiny[i][0], tiny[i][1]));
            assert_int_equal(tio_pil_gaussian_blur(&im, (float)r, err, sizeof(err)), 0);
            char nm[64];
            snprintf(nm, sizeof(nm), "pilblur/tiny_%dx%d_%d", tiny[i][0], tiny[i][1], r);
            expect_image(nm, &im, find("%s", nm));
            ti_image_free(&im);
        }
    ti_image rgb;
    assert_int_equal(ti_image_alloc(&rgb, 2, 2, 3, NULL, 0), 0);
    assert_int_equal(tio_pil_gaussian_blur(&rgb, 2, err, sizeof(err)), -1);
    ti_image_free(&rgb);
}

static void test_alpha_composite_golden(void **state) {
    (void)state;
    char err[256];
    ti_image d = rec_image(find("in/ac_dst")), s = rec_image(find("in/ac_src"));
    assert_int_equal(tio_alpha_composite(&d, &s, err, sizeof(err)), 0);
    expect_image("ac/out", &d, find("ac/out"));
    ti_image small;
    assert_int_equal(ti_image_alloc(&small, 2, 2, 4, NULL, 0), 0);
    assert_int_equal(tio_alpha_composite(&d, &small, err, sizeof(err)), -1);
    ti_image_free(&small);
    ti_image_free(&d);
    ti_image_free(&s);
}

static void test_fill_golden(void **state) {
    (void)state;
    char err[256];
    static const char *names[] = {"blur", "zero", "white", "hole"};
    ti_image img = rec_image(find("in/img_a"));
    for (size_t i = 0; i < 4; i++) {
        tio_mask m = rec_mask(find("fill/mask_%s", names[i]));
        ti_image out;
        assert_int_equal(tio_fill(&img, &m, &out, err, sizeof(err)), 0);
        char nm[64];
        snprintf(nm, sizeof(nm), "fill/%s", names[i]);
        expect_image(nm, &out, find("%s", nm));
        if (i == 1) /* no hole: fill returns the image unchanged */
            assert_memory_equal(out.pixels, img.pixels, (size_t)img.width * img.height * 3);
        ti_image_free(&out);
        tio_mask_free(&m);
    }
    ti_image_free(&img);

    /* img_b with its blurred corner mask. */
    ti_image b = rec_image(find("in/img_b")), out;
    tio_mask mb = rec_mask(find("in/mask_b"));
    assert_int_equal(tio_mask_blur(&mb, 4, 4, err, sizeof(err)), 0);
    assert_int_equal(tio_fill(&b, &mb, &out, err, sizeof(err)), 0);
    expect_image("fill/b", &out, find("fill/b"));
    ti_image_free(&out);
    tio_mask small;
    assert_int_equal(tio_mask_alloc(&small, 3, 3, NULL, 0), 0);
    assert_int_equal(tio_fill(&b, &small, &out, err, sizeof(err)), -1);
    tio_mask_free(&small);
    tio_mask_free(&mb);
    ti_image_free(&b);
}

/* ---- 5. overlay --------------------------------------------------------------------- */

static void test_overlay_golden(void **state) {
    (void)state;
    char err[256];
    ti_image img = rec_image(find("in/img_a"));
    tio_mask mo = rec_mask(find("fill/mask_blur")); /* blur(base, 4, 4) */
    ti_image ov;
    assert_int_equal(tio_make_overlay(&img, &mo, &ov, err, sizeof(err)), 0);
    expect_image("ov/overlay_a", &ov, find("ov/overlay_a"));

    ti_image gen = rec_image(find("in/ov_gen_56x40")), out;
    tio_rect pt = {6, 4, 6 + 44, 4 + 31};
    assert_int_equal(tio_apply_overlay(&gen, &pt, &ov, &out, err, sizeof(err)), 0);
    expect_image("ov/apply_paste", &out, find("ov/apply_paste"));
    ti_image_free(&out);
    ti_image_free(&gen);

    gen = rec_image(find("in/ov_gen_64x48"));
    assert_int_equal(tio_apply_overlay(&gen, NULL, &ov, &out, err, sizeof(err)), 0);
    expect_image("ov/apply_whole", &out, find("ov/apply_whole"));
    ti_image_free(&out);
    ti_image_free(&gen);

    tio_mask wm;
    assert_int_equal(tio_whole_picture_overlay_mask(&mo, &wm, err, sizeof(err)), 0);
    expect_mask("ov/whole_mask", &wm, find("ov/whole_mask"));
    tio_mask_free(&wm);

    /* Whole picture with a size mismatch is an error. */
    gen = rec_image(find("in/ov_gen_56x40"));
    assert_int_equal(tio_apply_overlay(&gen, NULL, &ov, &out, err, sizeof(err)), -1);
    ti_image_free(&gen);
    ti_image_free(&ov);
    tio_mask_free(&mo);
    ti_image_free(&img);
}

/* ---- 6. latent mask --------------------------------------------------------------------- */

static void test_latent_mask_golden(void **state) {
    (void)state;
    char err[256];
    static const int sizes[][2] = {{8, 6}, {7, 5}, {12, 9}};
    tio_mask ma = rec_mask(find("fill/mask_blur"));
    tio_mask mb = rec_mask(find("in/mask_b"));
    assert_int_equal(tio_mask_blur(&mb, 4, 4, err, sizeof(err)), 0);
    for (int which = 0; which < 2; which++)
        for (int s = 0; s < 3; s++)
            for (int rnd = 0; rnd < 2; rnd++) {
                int lw = sizes[s][0], lh = sizes[s][1];
                float nm_[12 * 9], km[12 * 9];
                assert_int_equal(tio_latent_mask(which ? &mb : &ma, lw, lh, rnd, nm_, km, err,
                                                 sizeof(err)), 0);
                char nm[64];
                snprintf(nm, sizeof(nm), "lat/%s_%dx%d_%d", which ? "b" : "blur", lw, lh, rnd);
                expect_floats(nm, nm_, find("%s", nm));
                for (int i = 0; i < lw * lh; i++) {
                    assert_true(km[i] == 1.0f - nm_[i]);
                    if (rnd) assert_true(nm_[i] == 0.0f || nm_[i] == 1.0f);
                }
            }
    assert_int_equal(tio_latent_mask(&ma, 0, 4, 1, NULL, NULL, err, sizeof(err)), -1);
    tio_mask_free(&ma);
    tio_mask_free(&mb);
}

/* ---- 7. tensors --------------------------------------------------------------------------- */

static void test_tensor_golden(void **state) {
    (void)state;
    char err[256];
    ti_image im = rec_image(find("in/tensor_img"));
    float *chw = malloc(sizeof(float) * 3 * 256);
    assert_int_equal(tio_image_to_chw(&im, chw, err, sizeof(err)), 0);
    expect_floats("tensor/from_img", chw, find("tensor/from_img"));
    free(chw);
    ti_image_free(&im);

    const rec *tf = find("in/tensor_f");
    int h = (int)tf->dims[1], w = (int)tf->dims[2];
    float *x = malloc(tf->count * sizeof(float));
    memcpy(x, tf->data, tf->count * sizeof(float));
    ti_image out;
    assert_int_equal(tio_chw_to_image(x, w, h, &out, err, sizeof(err)), 0);
    expect_image("tensor/to_img", &out, find("tensor/to_img"));
    ti_image_free(&out);
    /* Truncation, not rounding: 0.999 of a level stays below it; NaN -> 0. */
    float t[3] = {(254.999f / 255.0f) * 2.0f - 1.0f, NAN, 5.0f};
    assert_int_equal(tio_chw_to_image(t, 1, 1, &out, err, sizeof(err)), 0);
    assert_int_equal(out.pixels[0], 254);
    assert_int_equal(out.pixels[1], 0);
    assert_int_equal(out.pixels[2], 255);
    ti_image_free(&out);
    free(x);
}

/* ---- 8. the composed A1111 img2img flow ------------------------------------------------ */

typedef struct {
    const char *name, *mask; /* mask: golden in/<mask> */
    int pw, ph, rmode;
    double blur;
    int round, invert, full_res, pad, fill;
} flow;

static void run_flow(const flow *f) {
    char err[256];
    const rec *mrec = find("in/%s", f->mask);
    ti_image mimg = rec_image(mrec);
    ti_image img = rec_image(find("in/img_a"));
    tio_mask m, image_mask = {0}, mfo = {0};
    assert_int_equal(tio_binary_mask(&mimg, f->round, &m, err, sizeof(err)), 0);
    if (f->invert) tio_mask_invert(&m);
    assert_int_equal(tio_mask_blur(&m, f->blur, f->blur, err, sizeof(err)), 0);
    int has_mask = 1, have_crop = 0;
    tio_rect crop = {0};
    if (f->full_res) {
        int found = tio_crop_region(&m, f->pad, &crop, err, sizeof(err));
        assert_true(found >= 0);
        if (found) {
            crop = tio_expand_crop_region(crop, f->pw, f->ph, m.width, m.height);
            tio_mask cm;
            assert_int_equal(tio_crop_mask(&m, crop, &cm, err, sizeof(err)), 0);
            assert_int_equal(tio_resize_mask(&cm, 2, f->pw, f->ph, &image_mask, err, sizeof(err)), 0);
            tio_mask_free(&cm);
            mfo = m; /* the full-size blurred mask */
            m.pixels = NULL;
            have_crop = 1;
        } else {
            has_mask = 0;
        }
    } else {
        assert_int_equal(tio_resize_mask(&m, f->rmode, f->pw, f->ph, &image_mask, err, sizeof(err)), 0);
        assert_int_equal(tio_whole_picture_overlay_mask(&image_mask, &mfo, err, sizeof(err)), 0);
    }
    ti_image image = {0}, overlay = {0}, tmp = {0};
    if (!have_crop && f->rmode != 3) {
        assert_int_equal(tio_resize_image(&img, f->rmode, f->pw, f->ph, &image, err, sizeof(err)), 0);
    } else {
        assert_int_equal(ti_image_alloc(&image, img.width, img.height, 3, NULL, 0), 0);
        memcpy(image.pixels, img.pixels, (size_t)img.width * img.height * 3);
    }
    if (has_mask) {
        if (mfo.width != image.width || mfo.height != image.height) {
            tio_mask r;
            assert_int_equal(tio_resize_mask(&mfo, f->rmode, image.width, image.height, &r, err,
                                             sizeof(err)), 0);
            tio_mask_free(&mfo);
            mfo = r;
        }
        assert_int_equal(tio_make_overlay(&image, &mfo, &overlay, err, sizeof(err)), 0);
    }
    if (have_crop) {
        assert_int_equal(tio_crop_image(&image, crop, &tmp, err, sizeof(err)), 0);
        ti_image_free(&image);
        assert_int_equal(tio_resize_image(&tmp, 2, f->pw, f->ph, &image, err, sizeof(err)), 0);
        ti_image_free(&tmp);
    }
    if (has_mask && f->fill != 1) {
        assert_int_equal(tio_fill(&image, &image_mask, &tmp, err, sizeof(err)), 0);
        ti_image_free(&image);
        image = tmp;
        tmp.pixels = NULL;
    }
    char nm[96];
    snprintf(nm, sizeof(nm), "flow/%s/image", f->name);
    expect_image(nm, &image, find("%s", nm));
    const rec *pt = find("flow/%s/paste_to", f->name);
    int32_t p[4];
    memcpy(p, pt->data, sizeof(p));
    if (have_crop) {
        assert_int_equal(p[0], crop.x1);
        assert_int_equal(p[1], crop.y1);
        assert_int_equal(p[2], crop.x2 - crop.x1);
        assert_int_equal(p[3], crop.y2 - crop.y1);
    } else {
        assert_int_equal(p[0], -1);
    }
    if (has_mask) {
        snprintf(nm, sizeof(nm), "flow/%s/overlay", f->name);
        expect_image(nm, &overlay, find("%s", nm));
        int lw = f->pw / 8, lh = f->ph / 8;
        float *lat = malloc(sizeof(float) * (size_t)lw * lh);
        assert_int_equal(tio_latent_mask(&image_mask, lw, lh, f->round, lat, NULL, err, sizeof(err)), 0);
        snprintf(nm, sizeof(nm), "flow/%s/latmask", f->name);
        expect_floats(nm, lat, find("%s", nm));
        free(lat);
        ti_image gen = rec_image(find("in/gen_%dx%d", f->pw, f->ph)), fin;
        assert_int_equal(tio_apply_overlay(&gen, have_crop ? &crop : NULL, &overlay, &fin, err,
                                           sizeof(err)), 0);
        snprintf(nm, sizeof(nm), "flow/%s/final", f->name);
        expect_image(nm, &fin, find("%s", nm));
        ti_image_free(&fin);
        ti_image_free(&gen);
    }
    ti_image_free(&image);
    ti_image_free(&overlay);
    tio_mask_free(&m);
    tio_mask_free(&mfo);
    tio_mask_free(&image_mask);
    ti_image_free(&img);
    ti_image_free(&mimg);
}

static void test_flow_golden(void **state) {
    (void)state;
    static const flow flows[] = {
        {"om_pad32", "mask_rgba", 56, 40, 0, 4, 1, 0, 1, 32, 0},
        {"om_pad0_orig", "mask_rgba", 48, 64, 0, 4, 1, 0, 1, 0, 1},
        {"om_inv", "mask_rgb", 56, 56, 0, 2, 1, 1, 1, 8, 0},
        {"whole_m0", "mask_rgba", 56, 40, 0, 4, 0, 0, 0, 0, 0},
        {"whole_m1", "mask_rgb", 56, 40, 1, 3, 1, 0, 0, 0, 0},
        {"whole_m2", "mask_rgba", 48, 64, 2, 4, 1, 0, 0, 0, 2},
        {"om_blank", "mask_blank", 56, 40, 0, 4, 1, 0, 1, 32, 0},
    };
    for (size_t i = 0; i < sizeof(flows) / sizeof(flows[0]); i++) run_flow(&flows[i]);
    printf("  A1111 img2img flow: %zu parameter sets exact (image, overlay, latent mask, final)\n",
           sizeof(flows) / sizeof(flows[0]));
}

/* ---- misc argument checks ------------------------------------------------------------- */

static void test_errors(void **state) {
    (void)state;
    char err[256];
    tio_mask m;
    assert_int_equal(tio_mask_alloc(&m, 0, 5, err, sizeof(err)), -1);
    assert_null(m.pixels);
    tio_mask_free(&m);
    tio_mask_free(NULL);
    ti_image im = {0}, out;
    assert_int_equal(tio_binary_mask(&im, 1, &m, err, sizeof(err)), -1);
    assert_int_equal(tio_mask_from_image(NULL, &m, err, sizeof(err)), -1);
    assert_int_equal(tio_image_to_chw(&im, NULL, err, sizeof(err)), -1);
    assert_int_equal(tio_chw_to_image(NULL, 2, 2, &out, err, sizeof(err)), -1);
    assert_int_equal(tio_resize_mask(NULL, 0, 2, 2, &m, NULL, 0), -1);
    tio_mask_invert(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_golden),
        cmocka_unit_test(test_resize_edges),
        cmocka_unit_test(test_binary_mask),
        cmocka_unit_test(test_cv_blur_golden),
        cmocka_unit_test(test_cv_kernels_golden),
        cmocka_unit_test(test_cv_blur_edges),
        cmocka_unit_test(test_crop_golden),
        cmocka_unit_test(test_crop_edges),
        cmocka_unit_test(test_pil_blur_golden),
        cmocka_unit_test(test_alpha_composite_golden),
        cmocka_unit_test(test_fill_golden),
        cmocka_unit_test(test_overlay_golden),
        cmocka_unit_test(test_latent_mask_golden),
        cmocka_unit_test(test_tensor_golden),
        cmocka_unit_test(test_flow_golden),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, load_golden, free_golden);
    if (g_total_mismatch) printf("  total mismatching values: %d\n", g_total_mismatch);
    return rc;
}
