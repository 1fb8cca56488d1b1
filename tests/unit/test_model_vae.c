/* test_model_vae.c - the VAE (worker/model/vae.c) against diffusers'
 * AutoencoderKL on the tiny models of tests/golden/make_model_golden.py
 * (float64 reference): encode -> posterior mean/std, decode -> image, both
 * layouts. Pass: max|a-b|/max|ref| <= 1e-4. Also the LDM name mapper against
 * the keymap and a wrong-shape error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "safetensors.h"
#include "te_cpu.h"
#include "vae.h"
#include "model_test_util.h"

#define GD TESSERA_GOLDEN_DIR "/models"

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

static float *read_f32(const tst_file *f, const char *name, const tst_tensor **tt) {
    return mtu_read_f32(f, name, NULL, tt);
}

static void check_model(const char *model_path, const char *expected, int groups) {
    char err[512];
    tck_model *m = mtu_open_model(model_path);
    tmv_vae *v;
    tmv_options o = {.be = be, .norm_groups = groups};
    if (tmv_load(m, &v, &o, err, sizeof err)) fail_msg("%s: %s", model_path, err);
    tck_close(m);
    assert_int_equal(tmv_downscale(v), 2);
    assert_true(fabsf(tmv_scaling_factor(v) - 0.18215f) < 1e-7f);

    tst_file *f;
    if (tst_open(expected, &f, err, sizeof err)) fail_msg("%s", err);
    const tst_tensor *ti, *tm, *tl;
    float *img = read_f32(f, "image", &ti), *mean = read_f32(f, "mean", &tm), *std = read_f32(f, "std", NULL);
    float *lat = read_f32(f, "latent", &tl), *dec = read_f32(f, "decoded", NULL);
    int B = (int)ti->shape[0], H = (int)ti->shape[2], W = (int)ti->shape[3];
    float *gm = malloc(tm->numel * sizeof *gm), *gs = malloc(tm->numel * sizeof *gs);
    if (tmv_encode(v, img, B, H, W, gm, gs, err, sizeof err)) fail_msg("%s", err);
    double em = mtu_rel_err(gm, mean, tm->numel), es = mtu_rel_err(gs, std, tm->numel);
    float *gi = malloc(ti->numel * sizeof *gi);
    if (tmv_decode(v, lat, (int)tl->shape[0], (int)tl->shape[2], (int)tl->shape[3], gi, err, sizeof err))
        fail_msg("%s", err);
    double ed = mtu_rel_err(gi, dec, ti->numel);
    printf("  %s: encode mean %.3g std %.3g, decode %.3g\n", model_path, em, es, ed);
    assert_true(em <= 1e-4 && es <= 1e-4 && ed <= 1e-4);
    free(img), free(mean), free(std), free(lat), free(dec), free(gm), free(gs), free(gi);
    tst_close(f);
    tmv_free(v);
}

static void test_sd1_folder(void **st) {
    (void)st;
    check_model(GD "/sd1-tiny", GD "/expected/sd1-tiny_vae.safetensors", 0);
}
static void test_sd1_single(void **st) {
    (void)st;
    check_model(GD "/sd1-tiny.safetensors", GD "/expected/sd1-tiny_vae.safetensors", 8);
}
static void test_sd2_folder(void **st) {
    (void)st;
    check_model(GD "/sd2-tiny", GD "/expected/sd2-tiny_vae.safetensors", 0);
}
static void test_sd2_single(void **st) {
    (void)st;
    check_model(GD "/sd2-tiny.safetensors", GD "/expected/sd2-tiny_vae.safetensors", 8);
}

static void test_keymap(void **st) {
    (void)st;
    static const char *const files[] = {GD "/sd1-tiny.keymap.json", GD "/sd2-tiny.keymap.json"};
    for (int i = 0; i < 2; i++) {
        json_error_t je;
        json_t *j = json_load_file(files[i], 0, &je), *v;
        if (!j) fail_msg("%s: %s", files[i], je.text);
        json_t *t = json_object_get(j, "vae");
        assert_true(json_object_size(t) > 20);
        const char *k;
        json_object_foreach(t, k, v) {
            char out[256];
            if (tmv_map_l2(k, out, sizeof out)) fail_msg("no mapping for %s", k);
            if (strcmp(out, json_string_value(v))) fail_msg("%s -> %s, keymap says %s", k, out, json_string_value(v));
        }
        json_decref(j);
    }
    char out[128];
    assert_int_equal(tmv_map_l4("decoder.up_blocks.0.resnets.2.conv1.weight", out, sizeof out), 0);
    assert_string_equal(out, "decoder.up.3.block.2.conv1.weight");
    assert_int_equal(tmv_map_l4("decoder.nonsense.weight", out, sizeof out), -1);
}

static void test_errors(void **st) {
    (void)st;
    char path[] = "/tmp/tessera_vae_XXXXXX.safetensors", err[512];
    int fd = mkstemps(path, 12);
    assert_true(fd >= 0);
    close(fd);
    static float z[16 * 16 * 3 * 3];
    tst_tensor t[3] = {
        {.name = "first_stage_model.encoder.down.0.block.0.conv1.weight", .dtype = TST_F32, .ndim = 4,
         .shape = {16, 16, 3, 3}, .data = z, .nbytes = 16 * 16 * 9 * 4},
        {.name = "first_stage_model.post_quant_conv.weight", .dtype = TST_F32, .ndim = 4, .shape = {4, 4, 1, 1},
         .data = z, .nbytes = 64},
        {.name = "first_stage_model.encoder.conv_in.weight", .dtype = TST_F32, .ndim = 4, .shape = {16, 4, 3, 3},
         .data = z, .nbytes = 16 * 4 * 9 * 4},
    };
    if (tst_write(path, t, 3, NULL, 0, err, sizeof err)) fail_msg("%s", err);
    tck_model *m;
    tmv_vae *v;
    tmv_options o = {.be = be, .norm_groups = 8};
    assert_int_equal(tck_open(path, NULL, &m, err, sizeof err), 0);
    assert_int_equal(tmv_load(m, &v, &o, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "encoder.conv_in.weight has shape [16, 4, 3, 3], expected [16, 3, 3, 3]"));
    tck_close(m);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sd1_folder), cmocka_unit_test(test_sd1_single), cmocka_unit_test(test_sd2_folder),
        cmocka_unit_test(test_sd2_single), cmocka_unit_test(test_keymap),     cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
