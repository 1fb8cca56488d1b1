/* test_model_text.c - the CLIP text encoder (worker/model/clip_text.c)
 * against transformers' CLIPTextModel: tests/golden/make_model_golden.py
 * writes tiny random-weight SD1/SD2 models in both layouts and the expected
 * hidden states (float64 reference). Pass: max|a-b|/max|ref| <= 1e-4. */
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
#include "clip_text.h"
#include "safetensors.h"
#include "te_cpu.h"
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

static void check_model(const char *model_path, const char *expected, int heads) {
    char err[512];
    tck_model *m = mtu_open_model(model_path);
    tmt_encoder *e;
    tmt_options o = {.be = be, .n_heads = heads};
    if (tmt_load(m, &e, &o, err, sizeof err)) fail_msg("%s: %s", model_path, err);
    tck_close(m);   /* the encoder keeps nothing of the file */

    tst_file *f;
    if (tst_open(expected, &f, err, sizeof err)) fail_msg("%s", err);
    const tst_tensor *ids = tst_find(f, "ids");
    assert_non_null(ids);
    assert_int_equal(ids->dtype, TST_I64);
    int B = (int)ids->shape[0];
    int32_t *id = malloc(sizeof(int32_t) * ids->numel);
    for (size_t i = 0; i < ids->numel; i++) {
        int64_t v;
        memcpy(&v, (const char *)ids->data + 8 * i, 8);
        id[i] = (int32_t)v;
    }
    static const char *const keys[2] = {"hidden", "hidden_skip2"};
    for (int s = 0; s < 2; s++) {
        size_t n;
        float *ref = mtu_read_f32(f, keys[s], &n, NULL);
        assert_int_equal(n, (size_t)B * TMT_TOKENS * tmt_hidden_size(e));
        float *got = malloc(n * sizeof *got);
        if (tmt_encode(e, id, B, s + 1, got, err, sizeof err)) fail_msg("%s", err);
        double r = mtu_rel_err(got, ref, n);
        printf("  %s %s (clip skip %d, %d layers, %d heads): rel err %.3g\n", model_path, keys[s], s + 1,
               tmt_layers(e), tmt_heads(e), r);
        assert_true(r <= 1e-4);
        free(ref);
        free(got);
    }
    free(id);
    tst_close(f);
    tmt_free(e);
}

static void test_sd1_folder(void **st) {
    (void)st;
    check_model(GD "/sd1-tiny", GD "/expected/sd1-tiny_text.safetensors", 0);
}
static void test_sd1_single(void **st) {
    (void)st;
    check_model(GD "/sd1-tiny.safetensors", GD "/expected/sd1-tiny_text.safetensors", 4);
}
static void test_sd2_folder(void **st) {
    (void)st;
    check_model(GD "/sd2-tiny", GD "/expected/sd2-tiny_text.safetensors", 0);
}
static void test_sd2_single(void **st) {
    (void)st;
    check_model(GD "/sd2-tiny.safetensors", GD "/expected/sd2-tiny_text.safetensors", 2);
}

/* Every diffusers name of the text encoder maps to the LDM name in the file. */
static void check_keymap(const char *path, tck_mapper map) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s", path, je.text);
    json_t *t = json_object_get(j, "text");
    assert_true(json_is_object(t) && json_object_size(t) > 10);
    const char *k;
    json_t *v;
    json_object_foreach(t, k, v) {
        char out[256];
        if (map(k, out, sizeof out)) fail_msg("%s: no mapping for %s", path, k);
        if (strcmp(out, json_string_value(v))) fail_msg("%s: %s -> %s, keymap says %s", path, k, out,
                                                        json_string_value(v));
    }
    json_decref(j);
}
static void test_keymap(void **st) {
    (void)st;
    check_keymap(GD "/sd1-tiny.keymap.json", tmt_map_sd1);
    check_keymap(GD "/sd2-tiny.keymap.json", tmt_map_sd2);
    char out[64];
    assert_int_equal(tmt_map_sd2("text_model.nonsense", out, sizeof out), -1);
}

/* Broken checkpoints: clear errors, no crash. */
static void write_file(const char *path, const tst_tensor *t, size_t n) {
    char err[256];
    if (tst_write(path, t, n, NULL, 0, err, sizeof err)) fail_msg("%s", err);
}
static void test_errors(void **st) {
    (void)st;
    char path[] = "/tmp/tessera_text_XXXXXX.safetensors", err[512];
    int fd = mkstemps(path, 12);
    assert_true(fd >= 0);
    close(fd);
    static float z[10 * 8 + 16 * 8 + 77 * 8];
    tst_tensor t[4] = {
        {.name = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", .dtype = TST_F32,
         .ndim = 2, .shape = {10, 8}, .data = z, .nbytes = 10 * 8 * 4},
        {.name = "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", .dtype = TST_F32,
         .ndim = 2, .shape = {16, 8}, .data = z, .nbytes = 16 * 8 * 4},
        {.name = "cond_stage_model.transformer.text_model.encoder.layers.0.layer_norm1.weight", .dtype = TST_F32,
         .ndim = 1, .shape = {8}, .data = z, .nbytes = 8 * 4},
        {.name = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight", .dtype = TST_F32,
         .ndim = 2, .shape = {77, 4}, .data = z, .nbytes = 77 * 4 * 4},
    };
    tmt_options o = {.be = be, .n_heads = 2};
    tck_model *m;
    tmt_encoder *e = (void *)1;
    /* wrong shape */
    write_file(path, t, 4);
    assert_int_equal(tck_open(path, NULL, &m, err, sizeof err), 0);
    assert_int_equal(tmt_load(m, &e, &o, err, sizeof err), -1);
    assert_null(e);
    printf("  wrong shape: %s\n", err);
    assert_non_null(strstr(err, "position_embedding.weight has shape [77, 4], expected [77, 8]"));
    tck_close(m);
    /* missing tensor */
    t[3].shape[1] = 8;
    t[3].nbytes = 77 * 8 * 4;
    write_file(path, t, 4);
    assert_int_equal(tck_open(path, NULL, &m, err, sizeof err), 0);
    assert_int_equal(tmt_load(m, &e, &o, err, sizeof err), -1);
    printf("  missing: %s\n", err);
    assert_non_null(strstr(err, "final_layer_norm.weight"));
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
