/*
 * test_resize.c -- worker/resize.c against two independent oracles:
 *   1. a plain float64 textbook implementation written here (separable
 *      convolution, kernel stretched by the downscale factor, 8-bit
 *      intermediate as in Pillow's pipeline), on random images of odd sizes;
 *   2. golden outputs of Pillow's Image.resize committed under
 *      tests/golden/resize/ (made by tests/golden/make_resize_golden.py).
 * Both must agree within one level.  Also: thread-count independence,
 * filter names, bad arguments, and a timing line for 512x512 -> 2048x2048.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "resize.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif

/* ---- helpers ------------------------------------------------------------------ */

static uint32_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static ti_image random_image(int w, int h, int ch) {
    ti_image im;
    assert_int_equal(ti_image_alloc(&im, w, h, ch, NULL, 0), 0);
    for (size_t i = 0; i < (size_t)w * h * ch; i++) im.pixels[i] = (uint8_t)rnd();
    if (ch == 4) /* plenty of fully transparent and opaque pixels */
        for (size_t i = 0; i < (size_t)w * h; i++) {
            uint32_t r = rnd() % 10;
            if (r == 0) im.pixels[i * 4 + 3] = 0;
            else if (r < 3) im.pixels[i * 4 + 3] = 255;
        }
    return im;
}

/* ---- float64 reference ------------------------------------------------------------ */

static double ref_kernel(tr_filter f, double x, double *radius) {
    double ax = fabs(x);
    switch (f) {
    case TR_BILINEAR:
        *radius = 1;
        return ax < 1 ? 1 - ax : 0;
    case TR_BICUBIC: { /* Keys cubic, a = -0.5 */
        const double a = -0.5;
        *radius = 2;
        if (ax < 1) return (a + 2) * ax * ax * ax - (a + 3) * ax * ax + 1;
        if (ax < 2) return a * ax * ax * ax - 5 * a * ax * ax + 8 * a * ax - 4 * a;
        return 0;
    }
    default: { /* Lanczos-3 */
        *radius = 3;
        if (ax >= 3) return 0;
        if (ax == 0) return 1;
        double px = M_PI * x;
        return 3 * sin(px) * sin(px / 3) / (px * px);
    }
    }
}

/* One axis: out[i] = sum_j w_ij in[j] / sum_j w_ij over samples of one channel
 * spaced by stride; result rounded and clamped to 0..255. */
static void ref_axis(const double *in, int in_n, size_t in_stride, double *out, int out_n,
                     size_t out_stride, tr_filter f) {
    double scale = (double)in_n / out_n, fs = scale > 1 ? scale : 1, radius;
    ref_kernel(f, 0, &radius);
    for (int i = 0; i < out_n; i++) {
        double center = (i + 0.5) * scale, sum = 0, wsum = 0;
        int lo = (int)floor(center - radius * fs) - 1, hi = (int)ceil(center + radius * fs) + 1;
        for (int j = lo < 0 ? 0 : lo; j < in_n && j <= hi; j++) {
            double w = ref_kernel(f, (j + 0.5 - center) / fs, &radius);
            sum += w * in[j * in_stride];
            wsum += w;
        }
        double v = floor(sum / wsum + 0.5);
        out[i * out_stride] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
}

static ti_image ref_resize(const ti_image *src, int dw, int dh, tr_filter f) {
    int sw = src->width, sh = src->height, ch = src->channels;
    double *a = malloc(sizeof(double) * sw * sh * ch);
    double *b = malloc(sizeof(double) * dw * sh * ch);
    double *c = malloc(sizeof(double) * dw * dh * ch);
    for (int i = 0; i < sw * sh; i++)
        for (int k = 0; k < ch; k++) {
            double v = src->pixels[i * ch + k];
            if (ch == 4 && k < 3) v = floor(v * src->pixels[i * 4 + 3] / 255.0 + 0.5);
            a[i * ch + k] = v;
        }
    ti_image out;
    assert_int_equal(ti_image_alloc(&out, dw, dh, ch, NULL, 0), 0);
    if (f == TR_NEAREST) {
        /* exact rational floor((i + 0.5) * in / out) */
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                int sx = (int)((2LL * x + 1) * sw / (2LL * dw));
                int sy = (int)((2LL * y + 1) * sh / (2LL * dh));
                memcpy(out.pixels + ((size_t)y * dw + x) * ch,
                       src->pixels + ((size_t)sy * sw + sx) * ch, ch);
            }
    } else {
        for (int y = 0; y < sh; y++)
            for (int k = 0; k < ch; k++)
                ref_axis(a + (size_t)y * sw * ch + k, sw, ch, b + (size_t)y * dw * ch + k, dw, ch, f);
        for (int x = 0; x < dw; x++)
            for (int k = 0; k < ch; k++)
                ref_axis(b + (size_t)x * ch + k, sh, (size_t)dw * ch, c + (size_t)x * ch + k, dh,
                         (size_t)dw * ch, f);
        for (int i = 0; i < dw * dh; i++)
            for (int k = 0; k < ch; k++) {
                double v = c[i * ch + k];
                if (ch == 4 && k < 3) {
                    double al = c[i * 4 + 3];
                    if (al > 0 && al < 255) v = fmin(255, floor(255.0 * v / al));
                }
                out.pixels[i * ch + k] = (uint8_t)v;
            }
    }
    free(a);
    free(b);
    free(c);
    return out;
}

/* Max difference; for RGBA colour is compared with a tolerance widened by
 * un-premultiplication (1 level of premultiplied error is 255/alpha levels),
 * skipping fully transparent pixels.  Returns the worst excess over tol. */
static int compare(const ti_image *got, const ti_image *want, int tol, int *maxdiff) {
    int worst = 0;
    *maxdiff = 0;
    int ch = got->channels;
    for (size_t i = 0; i < (size_t)got->width * got->height; i++) {
        int amin = 255;
        if (ch == 4) {
            int ag = got->pixels[i * 4 + 3], aw = want->pixels[i * 4 + 3];
            amin = ag < aw ? ag : aw;
        }
        for (int k = 0; k < ch; k++) {
            int d = abs((int)got->pixels[i * ch + k] - (int)want->pixels[i * ch + k]);
            int t = tol;
            if (ch == 4 && k < 3 && amin < 255) {
                if (amin == 0) continue;
                t = tol + 2 * ((255 + amin - 1) / amin);
            } else if (d > *maxdiff) {
                *maxdiff = d;
            }
            if (d - t > worst) worst = d - t;
        }
    }
    return worst;
}

static void check_against_ref(int sw, int sh, int ch, int dw, int dh, tr_filter f) {
    ti_image src = random_image(sw, sh, ch), got, want;
    char err[256] = "";
    int rc = tr_resize(&src, dw, dh, f, &got, err, sizeof(err));
    if (rc != 0) fail_msg("tr_resize: %s", err);
    if (f == TR_NEAREST) {
        /* Where (i + 0.5) * scale is exactly an integer e, Pillow (and we)
         * may land on e - 1 through float accumulation: accept either. */
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                long long nx = (2LL * x + 1) * sw, ny = (2LL * y + 1) * sh;
                int ex = (int)(nx / (2LL * dw)), ey = (int)(ny / (2LL * dh));
                int tx = nx % (2LL * dw) == 0 && ex > 0, ty = ny % (2LL * dh) == 0 && ey > 0;
                const uint8_t *g = got.pixels + ((size_t)y * dw + x) * ch;
                int ok = 0;
                for (int ax = 0; ax <= tx && !ok; ax++)
                    for (int ay = 0; ay <= ty && !ok; ay++)
                        ok = memcmp(g, src.pixels + ((size_t)(ey - ay) * sw + ex - ax) * ch, ch) == 0;
                if (!ok) fail_msg("Nearest %dx%d -> %dx%d: wrong source pixel at %d,%d", sw, sh, dw, dh, x, y);
            }
        printf("  ref %-8s %dx%dx%d -> %dx%d: exact source pixels\n", tr_filter_name(f), sw, sh, ch, dw, dh);
        ti_image_free(&src);
        ti_image_free(&got);
        return;
    }
    want = ref_resize(&src, dw, dh, f);
    int maxdiff, excess = compare(&got, &want, f == TR_NEAREST ? 0 : 1, &maxdiff);
    printf("  ref %-8s %dx%dx%d -> %dx%d: max diff %d\n", tr_filter_name(f), sw, sh, ch, dw, dh,
           maxdiff);
    if (excess > 0)
        fail_msg("%s %dx%d -> %dx%d differs from the float64 reference by %d levels over tolerance",
                 tr_filter_name(f), sw, sh, dw, dh, excess);
    ti_image_free(&src);
    ti_image_free(&got);
    ti_image_free(&want);
}

static void test_reference(void **state) {
    (void)state;
    static const struct { int sw, sh, ch, dw, dh; } cases[] = {
        {37, 23, 3, 100, 61}, {256, 256, 4, 97, 143}, {61, 41, 3, 20, 13},
        {50, 50, 4, 50, 80},  {50, 50, 3, 31, 50},    {13, 7, 3, 1, 1},
        {1, 1, 4, 5, 3},      {9, 300, 3, 400, 7},
    };
    for (tr_filter f = TR_NEAREST; f <= TR_LANCZOS; f++)
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            check_against_ref(cases[i].sw, cases[i].sh, cases[i].ch, cases[i].dw, cases[i].dh, f);
}

/* ---- Pillow golden ------------------------------------------------------------------ */

static void test_pillow_golden(void **state) {
    (void)state;
    const char *path = TESSERA_GOLDEN_DIR "/resize/pillow_cases.bin";
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    assert_true(n >= 8 && memcmp(buf, "TRG1", 4) == 0);
    uint32_t ncases = buf[4] | buf[5] << 8 | buf[6] << 16 | (uint32_t)buf[7] << 24;
    size_t pos = 8;
    int overall = 0;
    for (uint32_t c = 0; c < ncases; c++) {
        assert_true(pos + 10 <= (size_t)n);
        const uint8_t *h = buf + pos;
        int f = h[0], ch = h[1];
        int sw = h[2] | h[3] << 8, sh = h[4] | h[5] << 8, dw = h[6] | h[7] << 8, dh = h[8] | h[9] << 8;
        pos += 10;
        size_t ssz = (size_t)sw * sh * ch, dsz = (size_t)dw * dh * ch;
        assert_true(pos + ssz + dsz <= (size_t)n);
        ti_image src = {sw, sh, ch, buf + pos}, want = {dw, dh, ch, buf + pos + ssz}, got;
        pos += ssz + dsz;
        char err[256];
        if (tr_resize(&src, dw, dh, (tr_filter)f, &got, err, sizeof(err)) != 0)
            fail_msg("tr_resize: %s", err);
        int maxdiff = 0;
        for (size_t i = 0; i < dsz; i++) {
            int d = abs((int)got.pixels[i] - (int)want.pixels[i]);
            if (d > maxdiff) maxdiff = d;
        }
        printf("  pillow %-8s %dx%dx%d -> %dx%d: max diff %d\n", tr_filter_name((tr_filter)f), sw,
               sh, ch, dw, dh, maxdiff);
        if (maxdiff > overall) overall = maxdiff;
        ti_image_free(&got);
    }
    free(buf);
    assert_int_equal(pos, (size_t)n);
    assert_true(overall <= 1);
}

/* ---- misc ----------------------------------------------------------------------------- */

static void test_threads_identical(void **state) {
    (void)state;
    ti_image src = random_image(300, 211, 4), a, b;
    char err[256];
    for (tr_filter f = TR_NEAREST; f <= TR_LANCZOS; f++) {
        assert_int_equal(tr_resize_threads(&src, 613, 419, f, 1, &a, err, sizeof(err)), 0);
        for (int t = 2; t <= 7; t += 5) {
            assert_int_equal(tr_resize_threads(&src, 613, 419, f, t, &b, err, sizeof(err)), 0);
            assert_memory_equal(a.pixels, b.pixels, (size_t)613 * 419 * 4);
            ti_image_free(&b);
        }
        ti_image_free(&a);
    }
    ti_image_free(&src);
}

static void test_names_and_errors(void **state) {
    (void)state;
    tr_filter f;
    assert_int_equal(tr_filter_from_name("LANCZOS", &f), 0);
    assert_int_equal(f, TR_LANCZOS);
    assert_int_equal(tr_filter_from_name("nearest", &f), 0);
    assert_int_equal(f, TR_NEAREST);
    assert_int_equal(tr_filter_from_name("Bicubic", &f), 0);
    assert_int_equal(f, TR_BICUBIC);
    assert_int_equal(tr_filter_from_name("BiLinear", &f), 0);
    assert_int_equal(f, TR_BILINEAR);
    assert_int_equal(tr_filter_from_name("None", &f), 0);
    assert_int_equal(f, TR_LANCZOS);
    assert_int_equal(tr_filter_from_name("ESRGAN_4x", &f), -1);
    assert_int_equal(tr_filter_from_name(NULL, &f), -1);

    ti_image src = random_image(8, 8, 3), dst;
    char err[256] = "";
    assert_int_equal(tr_resize(&src, 0, 5, TR_LANCZOS, &dst, err, sizeof(err)), -1);
    assert_null(dst.pixels);
    assert_true(strlen(err) > 0);
    assert_int_equal(tr_resize(&src, 5, -1, TR_LANCZOS, &dst, err, sizeof(err)), -1);
    assert_int_equal(tr_resize(&src, 100000, 100000, TR_LANCZOS, &dst, err, sizeof(err)), -1);
    assert_int_equal(tr_resize(&src, 5, 5, (tr_filter)42, &dst, err, sizeof(err)), -1);
    ti_image bad = {8, 8, 2, src.pixels};
    assert_int_equal(tr_resize(&bad, 5, 5, TR_LANCZOS, &dst, err, sizeof(err)), -1);
    /* same size is a copy */
    assert_int_equal(tr_resize(&src, 8, 8, TR_BICUBIC, &dst, err, sizeof(err)), 0);
    assert_memory_equal(src.pixels, dst.pixels, 8 * 8 * 3);
    ti_image_free(&dst);
    ti_image_free(&src);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_timing(void **state) {
    (void)state;
    ti_image src = random_image(512, 512, 3), dst;
    char err[256];
    double best = 1e9;
    for (int i = 0; i < 5; i++) {
        double t0 = now_ms();
        assert_int_equal(tr_resize(&src, 2048, 2048, TR_LANCZOS, &dst, err, sizeof(err)), 0);
        double t = now_ms() - t0;
        if (t < best) best = t;
        ti_image_free(&dst);
    }
    printf("  timing: 512x512 -> 2048x2048 RGB Lanczos, all cores: %.1f ms (best of 5)\n", best);
    ti_image_free(&src);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_errors),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_pillow_golden),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
