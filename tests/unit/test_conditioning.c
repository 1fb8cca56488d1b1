/* test_conditioning.c - prompt -> conditioning (worker/model/conditioning.c)
 * against an independent Python re-implementation of A1111's weighting and
 * chunking run on transformers' CLIPTextModel in float64
 * (tests/golden/make_cond_golden.py -> tests/golden/cond/). Ids and
 * multipliers must match exactly, hidden states within a relative error of
 * 1e-4 (max|a-b| / max|ref|), for both tiny models in both layouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "clip_text.h"
#include "conditioning.h"
#include "safetensors.h"
#include "te_cpu.h"
#include "model_test_util.h"

#define GD TESSERA_GOLDEN_DIR

static te_backend *be;
static ttok_tokenizer *tok;

static int setup(void **st) {
    (void)st;
    char path[4096], err[256];
    mtu_clip_vocab_path(path, sizeof path);
    if (ttok_load_bpe_gz(path, &tok, err, sizeof err) < 0) {
        fprintf(stderr, "CLIP vocabulary not loadable (%s); run scripts/fetch-clip-vocab.sh\n", err);
        return -1;
    }
    return (be = mtu_backend_try(err, sizeof err)) ? 0 : -1;
}
static int teardown(void **st) {
    (void)st;
    te_backend_destroy(be);
    ttok_free(tok);
    return 0;
}

static const tst_tensor *need(const tst_file *f, const char *case_name, const char *what) {
    char n[128];
    snprintf(n, sizeof n, "%s_%s", case_name, what);
    const tst_tensor *t = tst_find(f, n);
    if (!t) fail_msg("golden file has no %s", n);
    return t;
}

static void check_model(const char *model, const char *path, int heads) {
    char err[512], p[512];
    tck_model *m = mtu_open_model(path);
    tmt_encoder *e;
    tmt_options o = {.be = be, .n_heads = heads};
    if (tmt_load(m, &e, &o, err, sizeof err)) fail_msg("%s: %s", path, err);
    tck_close(m);

    snprintf(p, sizeof p, "%s/cond/%s.safetensors", GD, model);
    tst_file *f;
    if (tst_open(p, &f, err, sizeof err)) fail_msg("%s", err);
    json_error_t je;
    json_t *cases = json_load_file(GD "/cond/cases.json", 0, &je);
    if (!cases) fail_msg("cases.json: %s", je.text);
    size_t i, seen = 0;
    json_t *c;
    json_array_foreach(json_object_get(cases, "cases"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "model")), model)) continue;
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        int cs = (int)json_integer_value(json_object_get(c, "clip_skip"));
        tcd_cond r;
        if (tcd_encode_ex(tok, e, prompt, cs, NULL, &r, err, sizeof err)) fail_msg("%s %s: %s", path, name, err);
        const tst_tensor *ids = need(f, name, "ids"), *mult = need(f, name, "mult"), *hid = need(f, name, "hidden");
        assert_int_equal(r.n_chunks, (int)json_integer_value(json_object_get(c, "chunks")));
        assert_int_equal(r.n_chunks, (int)ids->shape[0]);
        assert_int_equal(r.token_count, (size_t)json_integer_value(json_object_get(c, "token_count")));
        assert_int_equal(r.n_tokens, 77 * r.n_chunks);
        assert_int_equal(hid->numel, (size_t)r.n_tokens * r.hidden_size);
        for (size_t k = 0; k < ids->numel; k++) {
            int32_t v;
            float w;
            memcpy(&v, (const char *)ids->data + 4 * k, 4);
            memcpy(&w, (const char *)mult->data + 4 * k, 4);
            if (v != r.ids[k]) fail_msg("%s %s: id %zu is %d, expected %d", model, name, k, r.ids[k], v);
            if (fabsf(w - r.mult[k]) > 1e-6f * fabsf(w))
                fail_msg("%s %s: multiplier %zu is %g, expected %g", model, name, k, r.mult[k], w);
        }
        json_t *extra = json_object_get(c, "extra");
        assert_int_equal(r.extra.n, json_array_size(extra));
        for (size_t k = 0; k < r.extra.n; k++)
            assert_string_equal(r.extra.v[k].kind, json_string_value(json_array_get(json_array_get(extra, k), 0)));
        char hname[128];
        snprintf(hname, sizeof hname, "%s_hidden", name);
        float *ref = mtu_read_f32(f, hname, NULL, NULL);
        double md, mr;
        mtu_err_max(r.hidden, ref, hid->numel, &md, &mr);
        printf("  %-28s %-15s chunks %d clip skip %d: rel err %.3g\n", path + strlen(GD "/models/"), name,
               r.n_chunks, r.clip_skip, md / mr);
        assert_true(mr > 0 && md / mr <= 1e-4);
        free(ref);
        tcd_cond_free(&r);
        seen++;
    }
    assert_true(seen >= 8);
    json_decref(cases);
    tst_close(f);
    tmt_free(e);
}

static void test_sd1_folder(void **st) { (void)st; check_model("sd1-tiny", GD "/models/sd1-tiny", 0); }
static void test_sd1_single(void **st) { (void)st; check_model("sd1-tiny", GD "/models/sd1-tiny.safetensors", 4); }
static void test_sd2_folder(void **st) { (void)st; check_model("sd2-tiny", GD "/models/sd2-tiny", 0); }
static void test_sd2_single(void **st) { (void)st; check_model("sd2-tiny", GD "/models/sd2-tiny.safetensors", 2); }

/* Emphasis modes on a hand-made tensor. */
static void test_emphasis_math(void **st) {
    (void)st;
    enum { C = 3 };
    static float z[2][77 * C], m[2][77];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 77 * C; i++) z[k][i] = (float)(0.5 + 0.01 * i + k);
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < 77; t++) m[k][t] = t == 5 ? 1.5f : 1.0f;
    float a[2][77 * C];
    memcpy(a, z, sizeof a);
    tcd_apply_emphasis(&a[0][0], &m[0][0], 2, C, TCD_EMPHASIS_IGNORE);
    assert_memory_equal(a, z, sizeof a);
    tcd_apply_emphasis(&a[0][0], &m[0][0], 2, C, TCD_EMPHASIS_NO_NORM);
    assert_true(fabsf(a[0][5 * C] - 1.5f * z[0][5 * C]) < 1e-6f);
    assert_true(a[0][6 * C] == z[0][6 * C]);
    memcpy(a, z, sizeof a);
    tcd_apply_emphasis(&a[0][0], &m[0][0], 2, C, TCD_EMPHASIS_ORIGINAL);
    for (int k = 0; k < 2; k++) {   /* the mean of each chunk is restored */
        double s0 = 0, s1 = 0;
        for (int i = 0; i < 77 * C; i++) s0 += z[k][i], s1 += a[k][i];
        assert_true(fabs(s0 - s1) < 1e-4 * fabs(s0));
        assert_true(fabsf(a[k][5 * C] / a[k][6 * C] - 1.5f * z[k][5 * C] / z[k][6 * C]) < 1e-5f);
    }
}

static void test_pad_tokens(void **st) {
    (void)st;
    enum { C = 2 };
    char err[128];
    int n = 77;
    float *z = malloc(77 * C * sizeof *z);
    for (int i = 0; i < 77 * C; i++) z[i] = (float)i;
    assert_int_equal(tcd_pad_tokens(&z, &n, C, 80, NULL, err, sizeof err), 0);
    assert_int_equal(n, 80);
    for (int t = 77; t < 80; t++) assert_true(z[t * C] == 152 && z[t * C + 1] == 153);
    static float empty[77 * C];
    for (int i = 0; i < 77 * C; i++) empty[i] = -(float)i;
    assert_int_equal(tcd_pad_tokens(&z, &n, C, 100, empty, err, sizeof err), -1); /* not whole chunks */
    assert_int_equal(tcd_pad_tokens(&z, &n, C, 80 + 154, empty, err, sizeof err), 0);
    assert_int_equal(n, 234);
    assert_true(z[80 * C] == 0 && z[(80 + 77 + 3) * C + 1] == -7);
    assert_int_equal(tcd_pad_tokens(&z, &n, C, 10, NULL, err, sizeof err), 0);
    assert_int_equal(n, 234);
    free(z);
}

/* "None" does not parse: weights stay 1 and BREAK is a word. */
static void test_emphasis_none(void **st) {
    (void)st;
    char err[512];
    tck_model *m = mtu_open_model(GD "/models/sd1-tiny");
    tmt_encoder *e;
    tmt_options o = {.be = be};
    if (tmt_load(m, &e, &o, err, sizeof err)) fail_msg("%s", err);
    tck_close(m);
    tcd_opts op = tcd_default_opts();
    op.emphasis = TCD_EMPHASIS_NONE;
    tcd_cond r;
    assert_int_equal(tcd_encode_ex(tok, e, "a (cat:1.5) BREAK dog", 1, &op, &r, err, sizeof err), 0);
    assert_int_equal(r.n_chunks, 1);
    for (int t = 0; t < 77; t++) assert_true(r.mult[t] == 1.0f);
    tcd_cond_free(&r);
    float *z;
    int n;
    assert_int_equal(tcd_encode(tok, e, "x BREAK y BREAK z", 1, NULL, &z, &n, err, sizeof err), 0);
    assert_int_equal(n, 3 * 77);
    free(z);
    tmt_free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emphasis_math), cmocka_unit_test(test_pad_tokens),
        cmocka_unit_test(test_sd1_folder),    cmocka_unit_test(test_sd1_single),
        cmocka_unit_test(test_sd2_folder),    cmocka_unit_test(test_sd2_single),
        cmocka_unit_test(test_emphasis_none),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
