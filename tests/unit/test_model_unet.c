/* test_model_unet.c - the UNet (worker/model/unet*.c) against diffusers.
 *
 * Fixtures: tests/golden/models/ made by tests/golden/make_model_golden.py:
 * sd1-tiny and sd2-tiny, each as a diffusers folder and as a single-file LDM
 * checkpoint, the full diffusers -> LDM key map, and expected UNet outputs
 * (computed in float64) for x [2,4,8,8], a [2,77,C] context and timesteps
 * 1, 500, 999 and mixed [1, 999]; and sd1-inpaint-tiny (make_inpaint_golden.py),
 * the sd1 UNet with 9 input channels, x [2,9,8,8]. Pass: max|got - ref| / max|ref| <= 1e-4.
 *
 * Also: the name mapper against the key map and the standard SD1.5 names,
 * missing / wrong-shape tensors, an arena cap that is too small. */
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
#include "te_arena.h"
#include "te_cpu.h"
#include "unet.h"
#include "model_test_util.h"

#define DIR TESSERA_GOLDEN_DIR "/models"

static te_backend *backend(void) { return mtu_backend(); }

/* The tiny models' options: single files do not say their GroupNorm groups
 * (8 here, 32 in real models) nor, for SD2, the head size (8 here, 64 real). */
static tmu_options opts_for(const char *name, int single) {
    tmu_options o = {0};
    if (single) {
        o.groups = 8;
        if (!strcmp(name, "sd2-tiny")) o.head_dim = 8;
    }
    return o;
}

static float *tensor_f32(const tst_file *f, const char *name, size_t *n) { return mtu_read_f32(f, name, n, NULL); }

static void check_model(const char *name, int single, int in_channels) {
    char path[512], err[1024];
    te_backend *be = backend();
    tck_model *m = NULL;
    tmu_unet *u = NULL;
    te_arena *a = NULL;
    if (single) snprintf(path, sizeof path, "%s/%s.safetensors", DIR, name);
    else snprintf(path, sizeof path, "%s/%s", DIR, name);
    m = mtu_open_model(path);
    tmu_options o = opts_for(name, single);
    if (tmu_load(m, be, &o, &u, err, sizeof err)) fail_msg("%s: %s", path, err);
    const tmu_config *c = tmu_get_config(u);
    assert_int_equal(c->layout.levels, 2);
    assert_int_equal(c->layout.layers_per_block, 1);
    assert_int_equal(c->in_channels, in_channels);
    assert_int_equal(c->out_channels, 4);
    assert_int_equal(c->linear_proj, !strcmp(name, "sd2-tiny"));
    assert_int_equal(te_arena_create(be, 0, 0, &a), TE_OK);

    tst_file *ef;
    snprintf(path, sizeof path, "%s/expected/%s_unet.safetensors", DIR, name);
    if (tst_open(path, &ef, err, sizeof err)) fail_msg("%s", err);
    size_t nx, nc;
    float *x = tensor_f32(ef, "x", &nx), *ctx = tensor_f32(ef, "context", &nc);
    const tst_tensor *ct = tst_find(ef, "context");
    int T = (int)ct->shape[1];
    assert_int_equal(ct->shape[2], c->context_dim);
    assert_int_equal(nx, (size_t)2 * in_channels * 8 * 8);
    size_t no = (size_t)2 * 4 * 8 * 8;
    float *out = malloc(no * sizeof(float));
    static const char *const cases[] = {"1", "500", "999", "mix"};
    for (int k = 0; k < 4; k++) {
        char tn[32], on[32];
        snprintf(tn, sizeof tn, "t_%s", cases[k]);
        snprintf(on, sizeof on, "out_%s", cases[k]);
        size_t nr;
        float *t = tensor_f32(ef, tn, NULL), *ref = tensor_f32(ef, on, &nr);
        assert_int_equal(nr, no);
        if (tmu_forward_nchw(u, a, x, 2, 8, 8, t, ctx, T, out, err, sizeof err)) fail_msg("%s: %s", name, err);
        double md, mr;
        mtu_err_max(out, ref, no, &md, &mr);
        printf("  %s %-6s t=%-4s rel err %.2e (max|ref| %.3f), arena peak %zu bytes\n", name,
               single ? "single" : "folder", cases[k], md / mr, mr, te_arena_peak(a));
        assert_true(mr > 0);
        assert_true(md / mr <= 1e-4);
        free(t), free(ref);
    }
    free(x), free(ctx), free(out);
    tst_close(ef);
    te_arena_destroy(a);
    tmu_free(u);
    tck_close(m);
    te_backend_destroy(be);
}

static void test_sd1_folder(void **s) { (void)s; check_model("sd1-tiny", 0, 4); }
static void test_sd1_single(void **s) { (void)s; check_model("sd1-tiny", 1, 4); }
static void test_sd2_folder(void **s) { (void)s; check_model("sd2-tiny", 0, 4); }
static void test_sd2_single(void **s) { (void)s; check_model("sd2-tiny", 1, 4); }
/* sd1-inpaint-tiny (tests/golden/make_inpaint_golden.py): sd1-tiny's UNet with
 * 9 input channels (latent, mask, masked-image latent), x [2,9,8,8] -> [2,4,8,8] */
static void test_inpaint_folder(void **s) { (void)s; check_model("sd1-inpaint-tiny", 0, 9); }
static void test_inpaint_single(void **s) { (void)s; check_model("sd1-inpaint-tiny", 1, 9); }

/* Every pair of the fixture's key map, with the layout found in the file. */
static void check_keymap(const char *name) {
    char path[512], err[1024], got[512];
    te_backend *be = backend();
    tck_model *m;
    tmu_unet *u;
    snprintf(path, sizeof path, "%s/%s.safetensors", DIR, name);
    if (tck_open(path, NULL, &m, err, sizeof err)) fail_msg("%s", err);
    tmu_options o = opts_for(name, 1);
    if (tmu_load(m, be, &o, &u, err, sizeof err)) fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/%s.keymap.json", DIR, name);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    json_t *map = json_object_get(j, "unet");
    assert_true(json_object_size(map) > 100);
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v) {
        if (tmu_map_name(&tmu_get_config(u)->layout, k, got, sizeof got)) fail_msg("%s: no mapping", k);
        if (strcmp(got, json_string_value(v))) fail_msg("%s -> %s, keymap says %s", k, got, json_string_value(v));
    }
    assert_int_not_equal(tmu_map_name(&tmu_get_config(u)->layout, "down_blocks.1.downsamplers.0.conv.weight", got,
                                      sizeof got), 0);   /* the last level has no downsampler */
    assert_int_not_equal(tmu_map_name(&tmu_get_config(u)->layout, "nonsense.weight", got, sizeof got), 0);
    json_decref(j);
    tmu_free(u);
    tck_close(m);
    te_backend_destroy(be);
}

static void test_keymap(void **s) {
    (void)s;
    check_keymap("sd1-tiny");
    check_keymap("sd2-tiny");
    /* the standard SD1/SD2 layout (names as in v1-5-pruned-emaonly.safetensors) */
    static const char *const std[][2] = {
        {"conv_in.weight", "input_blocks.0.0.weight"},
        {"time_embedding.linear_2.bias", "time_embed.2.bias"},
        {"down_blocks.0.resnets.1.norm1.weight", "input_blocks.2.0.in_layers.0.weight"},
        {"down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight",
         "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"},
        {"down_blocks.1.downsamplers.0.conv.weight", "input_blocks.6.0.op.weight"},
        {"down_blocks.1.resnets.0.conv_shortcut.weight", "input_blocks.4.0.skip_connection.weight"},
        {"down_blocks.3.resnets.1.conv2.bias", "input_blocks.11.0.out_layers.3.bias"},
        {"mid_block.resnets.1.time_emb_proj.weight", "middle_block.2.emb_layers.1.weight"},
        {"mid_block.attentions.0.proj_out.weight", "middle_block.1.proj_out.weight"},
        {"up_blocks.0.resnets.2.conv1.weight", "output_blocks.2.0.in_layers.2.weight"},
        {"up_blocks.0.upsamplers.0.conv.weight", "output_blocks.2.1.conv.weight"},
        {"up_blocks.1.upsamplers.0.conv.bias", "output_blocks.5.2.conv.bias"},
        {"up_blocks.3.attentions.2.transformer_blocks.0.ff.net.0.proj.weight",
         "output_blocks.11.1.transformer_blocks.0.ff.net.0.proj.weight"},
        {"conv_norm_out.weight", "out.0.weight"},
        {"conv_out.bias", "out.2.bias"},
    };
    char got[256];
    for (size_t i = 0; i < sizeof std / sizeof std[0]; i++) {
        if (tmu_ldm_name(std[i][0], got, sizeof got)) fail_msg("%s: no mapping", std[i][0]);
        if (strcmp(got, std[i][1])) fail_msg("%s -> %s, expected %s", std[i][0], got, std[i][1]);
    }
    assert_int_not_equal(tmu_ldm_name("up_blocks.3.upsamplers.0.conv.weight", got, sizeof got), 0);
}

/* A copy of the sd1 single file with one tensor dropped (shape NULL) or
 * given another shape; returns the load error. */
static void load_modified(const char *victim, const int64_t *shape, int ndim, char *err, size_t errlen) {
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/sd1-tiny.safetensors", DIR);
    snprintf(dst, sizeof dst, "/tmp/test_model_unet_%d.safetensors", (int)getpid());
    tst_file *f;
    if (tst_open(src, &f, err, errlen)) fail_msg("%s", err);
    size_t n = tst_count(f), k = 0;
    tst_tensor *ts = calloc(n, sizeof *ts);
    void *buf = NULL;
    for (size_t i = 0; i < n; i++) {
        tst_tensor t = *tst_at(f, i);
        if (!strcmp(t.name, victim)) {
            if (!shape) continue;
            t.ndim = ndim;
            size_t ne = 1;
            for (int d = 0; d < ndim; d++) t.shape[d] = shape[d], ne *= (size_t)shape[d];
            t.nbytes = ne * tst_dtype_size(t.dtype);
            buf = calloc(1, t.nbytes);
            t.data = buf;
        }
        ts[k++] = t;
    }
    assert_int_equal(k, shape ? n : n - 1);
    if (tst_write(dst, ts, k, NULL, 0, err, errlen)) fail_msg("%s", err);
    free(ts), free(buf);
    tst_close(f);
    te_backend *be = backend();
    tck_model *m;
    tmu_unet *u = NULL;
    if (tck_open(dst, NULL, &m, err, errlen)) fail_msg("%s", err);
    tmu_options o = opts_for("sd1-tiny", 1);
    assert_int_equal(tmu_load(m, be, &o, &u, err, errlen), -1);
    assert_null(u);
    printf("  %s\n", err);
    tck_close(m);
    te_backend_destroy(be);
    unlink(dst);
}

static void test_bad_tensors(void **s) {
    (void)s;
    char err[1024];
    load_modified("model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_v.weight", NULL, 0, err,
                  sizeof err);
    assert_non_null(strstr(err, "missing tensor mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight"));
    assert_non_null(strstr(err, "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_v.weight"));
    load_modified("model.diffusion_model.output_blocks.0.0.out_layers.3.weight", (int64_t[]){64, 64, 1, 3}, 4, err,
                  sizeof err);
    assert_non_null(strstr(err, "up_blocks.0.resnets.0.conv2.weight has shape [64, 64, 1, 3], expected [64, 64, 3, 3]"));
    load_modified("model.diffusion_model.out.2.weight", NULL, 0, err, sizeof err);
    assert_non_null(strstr(err, "model.diffusion_model.out.2.weight"));
}

static void test_arena_cap(void **s) {
    (void)s;
    char path[512], err[1024];
    te_backend *be = backend();
    tck_model *m;
    tmu_unet *u;
    te_arena *a;
    snprintf(path, sizeof path, "%s/sd1-tiny", DIR);
    if (tck_open(path, NULL, &m, err, sizeof err)) fail_msg("%s", err);
    if (tmu_load(m, be, NULL, &u, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(te_arena_create(be, 100000, 0, &a), TE_OK);
    int T = 77, C = tmu_get_config(u)->context_dim;
    float *x = calloc(2 * 4 * 8 * 8, sizeof(float)), *ctx = calloc((size_t)2 * T * C, sizeof(float));
    float t[2] = {1, 999}, *out = calloc(2 * 4 * 8 * 8, sizeof(float));
    assert_int_equal(tmu_forward_nchw(u, a, x, 2, 8, 8, t, ctx, T, out, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "exceeds the cap of 100000 bytes"));
    assert_non_null(strstr(err, "unet: "));
    /* the same arena with room works, and the peak is what it reserved */
    te_arena_destroy(a);
    assert_int_equal(te_arena_create(be, 64 << 20, 0, &a), TE_OK);
    if (tmu_forward_nchw(u, a, x, 2, 8, 8, t, ctx, T, out, err, sizeof err)) fail_msg("%s", err);
    assert_true(te_arena_peak(a) > 100000 && te_arena_peak(a) <= te_arena_size(a));
    free(x), free(ctx), free(out);
    te_arena_destroy(a);
    tmu_free(u);
    tck_close(m);
    te_backend_destroy(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sd1_folder), cmocka_unit_test(test_sd1_single), cmocka_unit_test(test_sd2_folder),
        cmocka_unit_test(test_sd2_single), cmocka_unit_test(test_keymap),     cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_arena_cap),  cmocka_unit_test(test_inpaint_folder), cmocka_unit_test(test_inpaint_single),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
