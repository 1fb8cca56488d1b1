/* test_latent_resize.c - the hires latent upscalers (worker/pipeline/
 * latent_resize.c) against torch F.interpolate
 * (tests/golden/make_latent_resize_golden.py): every mode on up- and
 * downscales, odd sizes and the identity; max abs difference <= 1e-5
 * (float summation order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "latent_resize.h"
#include "model_test_util.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif

static const char *const mode_names[TPL_LAT_COUNT] = {"bilinear", "bilinear_aa", "bicubic",
                                                      "bicubic_aa", "nearest", "nearest_exact"};

static void test_against_torch(void **st) {
    (void)st;
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/latent_resize/cases.safetensors", TESSERA_GOLDEN_DIR);
    tst_file *f;
    if (tst_open(path, &f, err, sizeof err)) fail_msg("%s", err);
    json_t *cases = json_loads(tst_metadata_get(f, "cases"), 0, NULL);
    assert_non_null(cases);
    double worst[TPL_LAT_COUNT] = {0};
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        int k = (int)json_integer_value(json_array_get(c, 0)), h = (int)json_integer_value(json_array_get(c, 1)),
            w = (int)json_integer_value(json_array_get(c, 2)), oh = (int)json_integer_value(json_array_get(c, 3)),
            ow = (int)json_integer_value(json_array_get(c, 4));
        char name[64];
        snprintf(name, sizeof name, "in_%d", k);
        size_t n;
        float *in = mtu_read_f32(f, name, &n, NULL);
        float *out = malloc((size_t)4 * oh * ow * sizeof *out);
        for (int m = 0; m < TPL_LAT_COUNT; m++) {
            snprintf(name, sizeof name, "out_%d_%s", k, mode_names[m]);
            float *ref = mtu_read_f32(f, name, &n, NULL);
            assert_int_equal(n, (size_t)4 * oh * ow);
            assert_int_equal(tpl_latent_resize(in, 4, h, w, out, oh, ow, (tpl_latent_mode)m), 0);
            double md, mr;
            mtu_err_max(out, ref, n, &md, &mr);
            if (md > worst[m]) worst[m] = md;
            if (md > 1e-5) fail_msg("%s %dx%d -> %dx%d: max diff %g", mode_names[m], h, w, oh, ow, md);
            free(ref);
        }
        free(in);
        free(out);
    }
    for (int m = 0; m < TPL_LAT_COUNT; m++) printf("%-14s max diff %.3g\n", mode_names[m], worst[m]);
    json_decref(cases);
    tst_close(f);
}

static void test_names(void **st) {
    (void)st;
    assert_int_equal(tpl_latent_mode_find("Latent"), TPL_LAT_BILINEAR);
    assert_int_equal(tpl_latent_mode_find("latent (bicubic antialiased)"), TPL_LAT_BICUBIC_AA);
    assert_int_equal(tpl_latent_mode_find("Latent (nearest-exact)"), TPL_LAT_NEAREST_EXACT);
    assert_int_equal(tpl_latent_mode_find("Lanczos"), -1);
    assert_int_equal(tpl_latent_mode_find(NULL), -1);
    float x[4] = {1, 2, 3, 4}, y[4];
    assert_int_equal(tpl_latent_resize(x, 1, 2, 2, y, 0, 2, TPL_LAT_BILINEAR), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_torch), cmocka_unit_test(test_names)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
