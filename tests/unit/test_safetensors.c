/*
 * test_safetensors.c -- worker/model/safetensors.c, model_hash.c and
 * checkpoint_format.c:
 *   - files written by the reference Python library (tests/golden/safetensors/,
 *     made by tests/golden/make_safetensors_fixtures.py): every tensor, dtype,
 *     0-dim and empty tensors, metadata, exact F16/BF16 conversion;
 *   - tst_write: round trip, and byte-identical output to the reference writer;
 *   - hostile inputs: every truncation of a valid file, header length lies,
 *     offsets out of range, overlaps, shape/size mismatch, overflowing dims,
 *     bad / deep / non-object JSON, duplicate keys... all clean errors;
 *   - the A1111 model hash against hashlib values, and its cache (hit without
 *     recomputation, invalidation on size or mtime change, corrupt cache);
 *   - pickle detection and the refusal message.
 * Run it under valgrind too: every hostile buffer is an exact-size heap block.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "checkpoint_format.h"
#include "model_hash.h"
#include "safetensors.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif
#define BASIC TESSERA_GOLDEN_DIR "/safetensors/basic.safetensors"
#define WRITER_REF TESSERA_GOLDEN_DIR "/safetensors/writer_ref.safetensors"

/* ---- helpers ------------------------------------------------------------------ */

static char tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tst-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void tmp_path(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", tmpdir, name); }

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n ? (size_t)n : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Exact-size heap copy of "8-byte length + header + datalen bytes", so that any
 * read past the end is caught by ASan / valgrind. hlen_override == REAL_LEN: real length. */
#define REAL_LEN LLONG_MIN
static uint8_t *make_file(const char *json, long long hlen_override, size_t datalen, size_t *len) {
    size_t h = strlen(json);
    *len = 8 + h + datalen;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    uint64_t n = hlen_override == REAL_LEN ? h : (uint64_t)hlen_override;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, json, h);
    for (size_t i = 0; i < datalen; i++) b[8 + h + i] = (uint8_t)(i * 7 + 1);
    return b;
}

/* Expect json (+ datalen data bytes) to be refused, with all of the words in the message. */
static void expect_refused_n(const char *json, long long hlen, size_t datalen, const char *w1,
                             const char *w2) {
    size_t len;
    uint8_t *b = make_file(json, hlen, datalen, &len);
    tst_file *f = (tst_file *)0x1;
    char err[512] = "";
    int rc = tst_open_memory(b, len, &f, err, sizeof err);
    if (rc == 0 || (w1 && !strstr(err, w1)) || (w2 && !strstr(err, w2)))
        print_error("header %.200s -> rc %d, message \"%s\" (want \"%s\", \"%s\")\n", json, rc, err,
                    w1 ? w1 : "", w2 ? w2 : "");
    assert_int_equal(rc, -1);
    assert_null(f);
    assert_true(strlen(err) > 0);
    if (w1) assert_non_null(strstr(err, w1));
    if (w2) assert_non_null(strstr(err, w2));
    free(b);
}

static void expect_refused(const char *json, size_t datalen, const char *w1, const char *w2) {
    expect_refused_n(json, REAL_LEN, datalen, w1, w2);
}

static tst_file *expect_ok(const char *json, size_t datalen, uint8_t **buf) {
    size_t len;
    *buf = make_file(json, REAL_LEN, datalen, &len);
    tst_file *f = NULL;
    char err[512] = "";
    int rc = tst_open_memory(*buf, len, &f, err, sizeof err);
    if (rc != 0) print_error("header %s refused: %s\n", json, err);
    assert_int_equal(rc, 0);
    return f;
}

/* ---- the reference library's files -------------------------------------------- */

static void check_companion(const tst_file *f, const char *name) {
    char cname[64];
    snprintf(cname, sizeof cname, "%s.f32", name);
    const tst_tensor *t = tst_find(f, name), *c = tst_find(f, cname);
    assert_non_null(t);
    assert_non_null(c);
    assert_int_equal(t->numel, c->numel);
    float *a = malloc(t->numel * 4), *b = malloc(c->numel * 4);
    char err[256];
    assert_int_equal(tst_to_f32(t, a, t->numel, err, sizeof err), 0);
    assert_int_equal(tst_to_f32(c, b, c->numel, err, sizeof err), 0);
    for (size_t i = 0; i < t->numel; i++) {
        if (isnan(b[i])) assert_true(isnan(a[i]));
        else assert_int_equal(f32_bits(a[i]), f32_bits(b[i]));
    }
    free(a);
    free(b);
}

static void test_golden_basic(void **state) {
    (void)state;
    tst_file *f = NULL;
    char err[512] = "";
    int rc = tst_open(BASIC, &f, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(tst_count(f), 13);
    /* sorted by name, and tst_find agrees with tst_at */
    for (size_t i = 0; i < tst_count(f); i++) {
        const tst_tensor *t = tst_at(f, i);
        assert_ptr_equal(tst_find(f, t->name), t);
        if (i) assert_true(strcmp(tst_at(f, i - 1)->name, t->name) < 0);
    }
    assert_null(tst_at(f, tst_count(f)));
    assert_null(tst_find(f, "nope"));
    assert_null(tst_find(f, "__metadata__"));

    assert_int_equal(tst_metadata_count(f), 3);
    assert_string_equal(tst_metadata_get(f, "format"), "pt");
    assert_string_equal(tst_metadata_get(f, "modelspec.title"), "tiny \xc3\xa9\xc3\xa8 \xe2\x98\x83");
    assert_string_equal(tst_metadata_get(f, "ss_note"), "a=\"b\"\\n");
    assert_null(tst_metadata_get(f, "missing"));
    const char *k, *v;
    assert_int_equal(tst_metadata_at(f, 0, &k, &v), 0);
    assert_string_equal(k, "format");
    assert_int_equal(tst_metadata_at(f, 3, &k, &v), -1);

    const tst_tensor *t = tst_find(f, "w.f32");
    assert_non_null(t);
    assert_int_equal(t->dtype, TST_F32);
    assert_true(t->supported);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->nbytes, 24);
    float w[6];
    assert_int_equal(tst_to_f32(t, w, 6, err, sizeof err), 0);
    for (int i = 0; i < 6; i++) assert_true(w[i] == i * 0.25f - 3.0f);
    assert_int_equal(tst_to_f32(t, w, 5, err, sizeof err), -1); /* wrong count */
    assert_non_null(strstr(err, "w.f32"));

    t = tst_find(f, "conv.weight");
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->numel, 24);

    t = tst_find(f, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    float s;
    assert_int_equal(tst_to_f32(t, &s, 1, err, sizeof err), 0);
    assert_true(s == 1.5f);

    t = tst_find(f, "empty");
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(tst_to_f32(t, NULL, 0, err, sizeof err), 0);
    t = tst_find(f, "empty3");
    assert_int_equal(t->dtype, TST_F16);
    assert_int_equal(t->ndim, 3);
    assert_int_equal(t->shape[2], 3);
    assert_int_equal(t->numel, 0);

    check_companion(f, "h16");
    check_companion(f, "b16");
    assert_int_equal(tst_find(f, "b16")->dtype, TST_BF16);

    /* f32 -> f16 rounding vs numpy */
    const tst_tensor *src = tst_find(f, "f32_src"), *ref = tst_find(f, "f32_src.f16");
    assert_int_equal(src->numel, ref->numel);
    const uint8_t *sp = src->data, *rp = ref->data;
    for (size_t i = 0; i < src->numel; i++) {
        float x;
        memcpy(&x, sp + 4 * i, 4);
        uint16_t want = (uint16_t)(rp[2 * i] | rp[2 * i + 1] << 8);
        uint16_t got = tst_f32_to_f16(x);
        if (got != want) print_error("f32_to_f16(%a) = %04x, numpy %04x\n", (double)x, got, want);
        if ((want & 0x7c00) == 0x7c00 && (want & 0x3ff)) assert_true((got & 0x7c00) == 0x7c00 && (got & 0x3ff));
        else assert_int_equal(got, want);
    }

    /* listed but unusable dtypes */
    t = tst_find(f, "steps");
    assert_int_equal(t->dtype, TST_I64);
    assert_false(t->supported);
    assert_int_equal(t->numel, 5);
    float tmp[5];
    assert_int_equal(tst_to_f32(t, tmp, 5, err, sizeof err), -1);
    assert_string_equal(err, "tensor steps has dtype I64, which Tessera cannot use");
    t = tst_find(f, "mask");
    assert_int_equal(t->dtype, TST_U8);
    assert_memory_equal(t->data, "\x01\x00\xff", 3);
    tst_close(f);
}

static void test_dtype_names(void **state) {
    (void)state;
    for (int d = 0; d < TST_DTYPE_COUNT; d++) {
        tst_dtype back;
        assert_int_equal(tst_dtype_parse(tst_dtype_name((tst_dtype)d), &back), 0);
        assert_int_equal(back, d);
        assert_true(tst_dtype_size((tst_dtype)d) > 0);
    }
    tst_dtype x;
    assert_int_equal(tst_dtype_parse("F4", &x), -1);
    assert_int_equal(tst_dtype_parse("f32", &x), -1);
    assert_string_equal(tst_dtype_name(TST_DTYPE_COUNT), "?");
    assert_int_equal(tst_dtype_size(TST_BF16), 2);
}

/* Every f16 value widens exactly and narrows back to itself. */
static void test_half_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = tst_f16_to_f32((uint16_t)h);
        int nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan) {
            assert_true(isnan(f));
            uint16_t back = tst_f32_to_f16(f);
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
            assert_int_equal(back & 0x8000, h & 0x8000);
        } else {
            assert_int_equal(tst_f32_to_f16(f), h);
        }
        /* bf16: the top half of a float */
        assert_int_equal(f32_bits(tst_bf16_to_f32((uint16_t)h)), h << 16);
    }
    assert_true(tst_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(tst_f16_to_f32(0x7bff) == 65504.0f);
    assert_int_equal(tst_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(tst_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(tst_f32_to_f16(0x1p-25f), 0);
    assert_int_equal(tst_f32_to_f16(-0x1.000002p-25f), 0x8001);
}

/* ---- writer ------------------------------------------------------------------- */

static void test_roundtrip(void **state) {
    (void)state;
    float a[12];
    for (int i = 0; i < 12; i++) a[i] = (float)i / 3.0f - 1.0f;
    uint16_t h[5] = {0x3c00, 0xc000, 0x7c00, 0x0001, 0x8000};
    uint16_t b[4] = {0x3f80, 0x4049, 0xff80, 0x0000};
    float sc = -42.5f;
    tst_tensor in[5] = {
        {.name = "model.a", .dtype = TST_F32, .ndim = 3, .shape = {2, 3, 2}, .data = a, .nbytes = 48},
        {.name = "h", .dtype = TST_F16, .ndim = 1, .shape = {5}, .data = h, .nbytes = 10},
        {.name = "b", .dtype = TST_BF16, .ndim = 2, .shape = {2, 2}, .data = b, .nbytes = 8},
        {.name = "scalar", .dtype = TST_F32, .ndim = 0, .data = &sc, .nbytes = 4},
        {.name = "none", .dtype = TST_F16, .ndim = 2, .shape = {0, 7}, .data = NULL, .nbytes = 0},
    };
    tst_meta meta[2] = {{"format", "pt"}, {"tessera.note", "\xc3\xa9t\xc3\xa9 \"quoted\""}};
    char path[300], err[512] = "";
    tmp_path(path, sizeof path, "rt.safetensors");
    int rc = tst_write(path, in, 5, meta, 2, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);

    size_t len;
    uint8_t *raw = read_all(path, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | raw[i];
    assert_int_equal(n % 8, 0);
    assert_int_equal(len, 8 + n + 48 + 10 + 8 + 4);
    assert_true(raw[8 + n - 1] == '}' || raw[8 + n - 1] == ' ');
    free(raw);

    tst_file *f = NULL;
    assert_int_equal(tst_open(path, &f, err, sizeof err), 0);
    assert_int_equal(tst_count(f), 5);
    assert_string_equal(tst_metadata_get(f, "tessera.note"), meta[1].value);
    for (int i = 0; i < 5; i++) {
        const tst_tensor *t = tst_find(f, in[i].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, in[i].dtype);
        assert_int_equal(t->ndim, in[i].ndim);
        for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], in[i].shape[d]);
        assert_int_equal(t->nbytes, in[i].nbytes);
        if (t->nbytes) assert_memory_equal(t->data, in[i].data, t->nbytes);
    }
    float out[12];
    assert_int_equal(tst_to_f32(tst_find(f, "b"), out, 4, err, sizeof err), 0);
    assert_true(out[0] == 1.0f && out[1] == 3.140625f && isinf(out[2]) && out[2] < 0 && out[3] == 0);
    assert_int_equal(tst_to_f32(tst_find(f, "h"), out, 5, err, sizeof err), 0);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && isinf(out[2]) && out[3] == 0x1p-24f);
    assert_true(out[4] == 0 && signbit(out[4]));

    /* a read file can be written back unchanged */
    char path2[300];
    tmp_path(path2, sizeof path2, "rt2.safetensors");
    tst_tensor all[5];
    for (size_t i = 0; i < 5; i++) all[i] = *tst_at(f, i);
    tst_meta m2[2];
    for (size_t i = 0; i < 2; i++) assert_int_equal(tst_metadata_at(f, i, &m2[i].key, &m2[i].value), 0);
    assert_int_equal(tst_write(path2, all, 5, m2, 2, err, sizeof err), 0);
    tst_close(f);
    size_t l1, l2;
    uint8_t *r1 = read_all(path, &l1), *r2 = read_all(path2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(r1, r2, l1);
    free(r1);
    free(r2);

    /* writer refusals */
    tst_tensor dup[2] = {in[0], in[0]};
    assert_int_equal(tst_write(path, dup, 2, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "two tensors named model.a"));
    tst_tensor bad = in[0];
    bad.nbytes = 44;
    assert_int_equal(tst_write(path, &bad, 1, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "nbytes"));
    bad = in[0];
    bad.name = "__metadata__";
    assert_int_equal(tst_write(path, &bad, 1, NULL, 0, err, sizeof err), -1);
    tst_meta dm[2] = {{"k", "1"}, {"k", "2"}};
    assert_int_equal(tst_write(path, in, 1, dm, 2, err, sizeof err), -1);
    assert_int_equal(tst_write("/nonexistent-dir/x.safetensors", in, 1, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "nonexistent-dir"));
    /* failed writes leave the earlier file intact */
    assert_int_equal(tst_open(path, &f, err, sizeof err), 0);
    assert_int_equal(tst_count(f), 5);
    tst_close(f);
}

static float ramp(int i, float scale, float offset) { return (float)i * scale + offset; }

/* Same tensors as writer_ref() in tests/golden/make_safetensors_fixtures.py. */
static void test_writer_matches_reference(void **state) {
    (void)state;
    float alpha[12], s = 7.0f;
    uint16_t beta[6], gamma[4];
    for (int i = 0; i < 12; i++) alpha[i] = ramp(i, 0.25f, -3.0f);
    for (int i = 0; i < 6; i++) beta[i] = tst_f32_to_f16(ramp(i, 0.5f, 1.0f));
    for (int i = 0; i < 4; i++) {
        uint32_t u = f32_bits(ramp(i, -1.5f, 2.0f)); /* exact in bf16: truncate */
        gamma[i] = (uint16_t)(u >> 16);
    }
    tst_tensor in[5] = {
        {.name = "alpha", .dtype = TST_F32, .ndim = 2, .shape = {3, 4}, .data = alpha, .nbytes = 48},
        {.name = "beta", .dtype = TST_F16, .ndim = 1, .shape = {6}, .data = beta, .nbytes = 12},
        {.name = "gamma", .dtype = TST_BF16, .ndim = 2, .shape = {2, 2}, .data = gamma, .nbytes = 8},
        {.name = "s", .dtype = TST_F32, .ndim = 0, .data = &s, .nbytes = 4},
        {.name = "nothing", .dtype = TST_F32, .ndim = 2, .shape = {0, 5}, .nbytes = 0},
    };
    tst_meta meta = {"format", "pt"};
    char path[300], err[512] = "";
    tmp_path(path, sizeof path, "w.safetensors");
    assert_int_equal(tst_write(path, in, 5, &meta, 1, err, sizeof err), 0);
    size_t l1, l2;
    uint8_t *mine = read_all(path, &l1), *ref = read_all(WRITER_REF, &l2);
    if (l1 != l2 || memcmp(mine, ref, l1) != 0)
        print_error("ours:      %.*s\nreference: %.*s\n", (int)(l1 < 400 ? l1 : 400), (char *)mine + 8,
                    (int)(l2 < 400 ? l2 : 400), (char *)ref + 8);
    assert_int_equal(l1, l2);
    assert_memory_equal(mine, ref, l1);
    free(mine);
    free(ref);
}

/* ---- hostile inputs ------------------------------------------------------------- */

static void test_every_truncation(void **state) {
    (void)state;
    size_t len;
    uint8_t *full = read_all(BASIC, &len);
    char path[300], err[512];
    tmp_path(path, sizeof path, "trunc.safetensors");
    for (size_t n = 0; n < len; n++) {
        uint8_t *b = malloc(n ? n : 1);
        memcpy(b, full, n);
        tst_file *f = NULL;
        err[0] = 0;
        assert_int_equal(tst_open_memory(b, n, &f, err, sizeof err), -1);
        assert_null(f);
        assert_true(err[0] != 0);
        free(b);
        /* the mmap path on a few sizes, including every header-sized one */
        if (n < 64 || n % 97 == 0 || n + 8 > len) {
            write_bytes(path, full, n);
            assert_int_equal(tst_open(path, &f, err, sizeof err), -1);
            assert_null(f);
            assert_non_null(strstr(err, path));
        }
    }
    tst_file *f = NULL;
    assert_int_equal(tst_open_memory(full, len, &f, err, sizeof err), 0);
    tst_close(f);
    /* truncated inside the data section: the message names the tensor */
    assert_int_equal(tst_open_memory(full, len - 1, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "mask"));
    assert_non_null(strstr(err, "truncated"));
    free(full);
}

static void test_header_length_lies(void **state) {
    (void)state;
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    size_t h = strlen(ok);
    expect_refused_n(ok, (long long)h + 1, 4, "JSON", NULL); /* takes in a data byte */
    expect_refused_n(ok, (long long)h + 5, 4, "past the end", NULL);
    expect_refused_n(ok, (long long)h - 1, 4, "JSON", NULL);
    expect_refused_n(ok, 0, 4, "too small", NULL);
    expect_refused_n(ok, 1, 4, "too small", NULL);
    expect_refused_n(ok, 100LL * 1024 * 1024 + 1, 4, "limit", NULL);
    expect_refused_n(ok, (long long)0x7fffffffffffffffLL, 4, "limit", NULL);
    expect_refused_n(ok, -2 /* 0xff..fe */, 4, "limit", NULL);
    expect_refused_n(ok, -1 /* 0xff..ff */, 4, "limit", NULL);
    size_t len;
    uint8_t *b = make_file(ok, REAL_LEN, 4, &len);
    tst_file *f = NULL;
    char err[256];
    assert_int_equal(tst_open_memory(b, len, &f, err, sizeof err), 0);
    tst_close(f);
    free(b);
    /* fewer than 8 bytes */
    for (size_t n = 0; n < 8; n++) {
        uint8_t *t = malloc(n ? n : 1);
        memset(t, 0, n);
        assert_int_equal(tst_open_memory(t, n, &f, err, sizeof err), -1);
        free(t);
    }
    /* NUL padding instead of spaces is not JSON (the reference refuses it too) */
    static const uint8_t nulpad[] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0};
    uint8_t *np = malloc(sizeof nulpad);
    memcpy(np, nulpad, sizeof nulpad);
    assert_int_equal(tst_open_memory(np, sizeof nulpad, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "JSON"));
    free(np);
    assert_int_equal(tst_open_memory(NULL, 0, &f, err, sizeof err), -1);
    assert_int_equal(tst_open_memory(NULL, 10, &f, err, sizeof err), -1);
    assert_int_equal(tst_open_memory(ok, 10, NULL, err, sizeof err), -1);
}

static void test_hostile_headers(void **state) {
    (void)state;
    /* offsets */
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]}}", 8, "t1",
                   "past the data section");
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "t1", "begin <= end");
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8, "t1", NULL);
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,9223372036854775807]}}", 8,
                   "t1", NULL);
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999999]}}",
                   8, NULL, NULL);
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 8, "t1", "data_offsets");
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "t1", NULL);
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4]}}", 8, "t1", NULL);
    expect_refused("{\"t1\":{\"dtype\":\"F32\",\"shape\":[1]}}", 8, "t1", "data_offsets");
    /* overlap */
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   16, "overlap", "b");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}",
                   16, "overlap", NULL); /* b inside a */
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                   16, "overlap", NULL); /* the same bytes twice */
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                   "\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[16,18]},"
                   "\"b\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[14,16]}}",
                   18, "overlap", NULL);
    /* shape vs size */
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "w", "need 12 bytes");
    expect_refused("{\"w\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,4]}}", 8, "w", "need 2 bytes");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 8,
                   "w", "overflow");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 8,
                   "w", "overflow");
    expect_refused("{\"w\":{\"dtype\":\"F64\",\"shape\":[9223372036854775807,0],\"data_offsets\":[0,0]}}", 8,
                   "w", "overflow");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 8, "w",
                   "dimensions");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8, "w", "shape[0]");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 8, "w", "shape[0]");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 8, "w", NULL);
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 8, "w", "shape");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 8, "w", "shape");
    /* dtype */
    expect_refused("{\"w\":{\"dtype\":\"F4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "w", "unknown dtype");
    expect_refused("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "w", "dtype");
    expect_refused("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "w", "dtype");
    /* entries and metadata */
    expect_refused("{\"w\":[1,2]}", 8, "w", "not a JSON object");
    expect_refused("{\"w\":null}", 8, "w", NULL);
    expect_refused("{\"__metadata__\":[]}", 8, "__metadata__", NULL);
    expect_refused("{\"__metadata__\":{\"k\":1}}", 8, "k", "not a string");
    expect_refused("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 8, "k", NULL);
    /* JSON itself */
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 8, "JSON", NULL);
    expect_refused("{\"w\":{\"dtype\":\"F32\" \"shape\":[1],\"data_offsets\":[0,4]}}", 8, "JSON", NULL);
    expect_refused("[]", 8, "not an object", NULL);
    expect_refused("[1,2,3]", 8, "not an object", NULL);
    expect_refused("\"str\"", 8, "JSON", NULL);
    expect_refused("12345678", 8, NULL, NULL);
    expect_refused("{}{}", 8, "JSON", NULL);
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, "JSON", NULL); /* duplicate key */
    expect_refused("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 8, "JSON", NULL);
    expect_refused("{\"\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "JSON", NULL);
    expect_refused("{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "JSON", NULL);
    /* deep nesting, inside and outside strings */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 16);
    strcpy(deep, "{\"a\":");
    size_t p = strlen(deep);
    for (size_t i = 0; i < depth; i++) deep[p++] = '[';
    for (size_t i = 0; i < depth; i++) deep[p++] = ']';
    deep[p++] = '}';
    deep[p] = 0;
    expect_refused(deep, 0, "nested", NULL);
    free(deep);
    expect_refused("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}}}}}}}}}", 0, "nested", NULL);
    uint8_t *buf;
    /* brackets inside strings do not count; escaped quotes do not end strings */
    tst_file *f = expect_ok("{\"__metadata__\":{\"k\":\"[[[[[[[[[[{{{{{{{{{{\\\"[[[[[[[[[[\"}}", 0, &buf);
    assert_string_equal(tst_metadata_get(f, "k"), "[[[[[[[[[[{{{{{{{{{{\"[[[[[[[[[[");
    tst_close(f);
    free(buf);
}

static void test_accepted_edge_cases(void **state) {
    (void)state;
    uint8_t *buf;
    /* empty header object, no tensors */
    tst_file *f = expect_ok("{}", 0, &buf);
    assert_int_equal(tst_count(f), 0);
    assert_null(tst_at(f, 0));
    assert_int_equal(tst_metadata_count(f), 0);
    tst_close(f);
    free(buf);
    /* padding spaces, empty tensors anywhere in range, a gap, unknown extra fields */
    f = expect_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                  "\"z\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[12,12]},"
                  "\"g\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[10,12],\"extra\":1}}     ",
                  12, &buf);
    assert_int_equal(tst_count(f), 4);
    assert_int_equal(tst_find(f, "z")->nbytes, 0);
    assert_ptr_equal(tst_find(f, "g")->data, (const uint8_t *)tst_find(f, "a")->data + 10);
    tst_close(f);
    free(buf);
    /* 8 dims */
    f = expect_ok("{\"w\":{\"dtype\":\"F16\",\"shape\":[1,2,1,2,1,2,1,2],\"data_offsets\":[0,32]}}", 32, &buf);
    assert_int_equal(tst_find(f, "w")->ndim, 8);
    tst_close(f);
    free(buf);
    /* unusable dtypes are listed */
    f = expect_ok("{\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]},"
                  "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[2,10]}}",
                  10, &buf);
    char err[256];
    float out[2];
    assert_int_equal(tst_to_f32(tst_find(f, "q"), out, 2, err, sizeof err), -1);
    assert_string_equal(err, "tensor q has dtype F8_E4M3, which Tessera cannot use");
    assert_int_equal(tst_to_f32(tst_find(f, "d"), out, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "F64"));
    tst_close(f);
    free(buf);
}

static void test_open_errors(void **state) {
    (void)state;
    tst_file *f = (tst_file *)0x1;
    char err[512] = "";
    assert_int_equal(tst_open("/nonexistent/x.safetensors", &f, err, sizeof err), -1);
    assert_null(f);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(tst_open(tmpdir, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "regular"));
    char path[300];
    tmp_path(path, sizeof path, "empty.safetensors");
    write_bytes(path, "", 0);
    assert_int_equal(tst_open(path, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "too small"));
    assert_int_equal(tst_open(path, &f, NULL, 0), -1); /* no message buffer: still fine */
    tst_close(NULL);
    assert_int_equal(tst_count(NULL), 0);
    assert_null(tst_find(NULL, "x"));
    assert_null(tst_metadata_get(NULL, "x"));
}

/* ---- model hash ------------------------------------------------------------------ */

/* 2 MiB + 12345 bytes from a 64-bit LCG; hashlib.sha256 of the same bytes below. */
static void write_lcg_file(const char *path, size_t n, uint64_t seed) {
    uint8_t *b = malloc(n);
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        b[i] = (uint8_t)(x >> 56);
    }
    write_bytes(path, b, n);
    free(b);
}

static void test_sha256(void **state) {
    (void)state;
    char path[300], hex[65], err[512], sh[11];
    tmp_path(path, sizeof path, "lcg.bin");
    write_lcg_file(path, 2 * 1024 * 1024 + 12345, 0x12345678);
    assert_int_equal(tmh_sha256_file(path, hex, err, sizeof err), 0);
    assert_string_equal(hex, "32bd90bbfd7a13ba2ce0ca9f7f4113e5268ee8820b1d815a70932abba6cb4948");
    tmh_short(hex, sh);
    assert_string_equal(sh, "32bd90bbfd");
    tmp_path(path, sizeof path, "abc.bin");
    write_bytes(path, "abc", 3);
    assert_int_equal(tmh_sha256_file(path, hex, err, sizeof err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    write_bytes(path, "", 0);
    assert_int_equal(tmh_sha256_file(path, hex, err, sizeof err), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(tmh_sha256_file("/nonexistent/m.safetensors", hex, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/m.safetensors"));
    assert_int_equal(tmh_sha256_file(tmpdir, hex, err, sizeof err), -1);
}

static ino_t inode_of(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

static void replace_in_file(const char *path, const char *from, const char *to) {
    size_t len;
    uint8_t *b = read_all(path, &len);
    char *s = malloc(len + 1);
    memcpy(s, b, len);
    s[len] = 0;
    char *p = strstr(s, from);
    assert_non_null(p);
    assert_int_equal(strlen(from), strlen(to));
    memcpy(p, to, strlen(to));
    write_bytes(path, s, len);
    free(s);
    free(b);
}

static void test_hash_cache(void **state) {
    (void)state;
    char model[300], rel[300], cache[300], hex[65], err[512];
    tmp_path(model, sizeof model, "m.safetensors");
    tmp_path(cache, sizeof cache, ".tessera-hashes.json");
    write_lcg_file(model, 2 * 1024 * 1024 + 12345, 0x12345678);
    const char *want = "32bd90bbfd7a13ba2ce0ca9f7f4113e5268ee8820b1d815a70932abba6cb4948";

    /* miss: computed and stored */
    assert_int_equal(tmh_cached(cache, model, hex, err, sizeof err), 0);
    assert_string_equal(hex, want);
    ino_t ino = inode_of(cache);
    size_t len;
    uint8_t *c = read_all(cache, &len);
    c = realloc(c, len + 1);
    c[len] = 0;
    assert_non_null(strstr((char *)c, want));
    assert_non_null(strstr((char *)c, model)); /* keyed by absolute path */
    assert_non_null(strstr((char *)c, "mtime_ns"));
    free(c);

    /* hit (also through a relative path): the cache is not rewritten */
    assert_int_equal(tmh_cached(cache, model, hex, err, sizeof err), 0);
    assert_string_equal(hex, want);
    assert_int_equal(inode_of(cache), ino);
    char cwd[300];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    snprintf(rel, sizeof rel, "./m.safetensors");
    assert_int_equal(tmh_cached(cache, rel, hex, err, sizeof err), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(hex, want);
    assert_int_equal(inode_of(cache), ino);

    /* proof that a hit does not hash: a planted value is returned as is */
    replace_in_file(cache, want, "00000000000000000000000000000000000000000000000000000000000000ff");
    assert_int_equal(tmh_cached(cache, model, hex, err, sizeof err), 0);
    assert_string_equal(hex, "00000000000000000000000000000000000000000000000000000000000000ff");

    /* mtime changed, same size and content: recomputed and rewritten */
    struct timespec ts[2] = {{0, UTIME_OMIT}, {1700000000, 123456789}};
    assert_int_equal(utimensat(AT_FDCWD, model, ts, 0), 0);
    ino = inode_of(cache);
    assert_int_equal(tmh_cached(cache, model, hex, err, sizeof err), 0);
    assert_string_equal(hex, want);
    assert_true(inode_of(cache) != ino);
    ino = inode_of(cache);
    c = read_all(cache, &len);
    c = realloc(c, len + 1);
    c[len] = 0;
    assert_non_null(strstr((char *)c, "1700000000123456789"));
    free(c);

    /* content and size changed (mtime forced back): recomputed */
    write_bytes(model, "abc", 3);
    assert_int_equal(utimensat(AT_FDCWD, model, ts, 0), 0);
    assert_int_equal(tmh_cached(cache, model, hex, err, sizeof err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(inode_of(cache) != ino);

    /* a second file joins the same cache */
    char other[300];
    tmp_path(other, sizeof other, "other.bin");
    write_bytes(other, "", 0);
    assert_int_equal(tmh_cached(cache, other, hex, err, sizeof err), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ino = inode_of(cache);
    assert_int_equal(tmh_cached(cache, model, hex, err, sizeof err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(inode_of(cache), ino); /* still a hit */

    /* corrupt or foreign cache files are ignored and replaced */
    const char *junk[] = {"not json", "[]", "{\"version\":2,\"files\":{}}", "{\"version\":1,\"files\":[]}",
                          "{\"version\":1,\"files\":{\"x\":1}}"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        write_bytes(cache, junk[i], strlen(junk[i]));
        assert_int_equal(tmh_cached(cache, model, hex, err, sizeof err), 0);
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
    replace_in_file(cache, "ba7816bf", "BA7816BF"); /* not lowercase hex: not trusted */
    assert_int_equal(tmh_cached(cache, model, hex, err, sizeof err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    /* an unwritable cache location still yields the hash */
    assert_int_equal(tmh_cached("/nonexistent-dir/cache.json", model, hex, err, sizeof err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* a missing model is an error */
    assert_int_equal(tmh_cached(cache, "/nonexistent/m.safetensors", hex, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/m.safetensors"));
    /* no temporary files left behind */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '\\.tmp\\.'", tmpdir);
    assert_int_not_equal(system(cmd), 0);
}

/* ---- checkpoint format ------------------------------------------------------------ */

static void test_checkpoint_format(void **state) {
    (void)state;
    assert_int_equal(tcf_detect(BASIC), TCF_SAFETENSORS);
    assert_int_equal(tcf_detect(WRITER_REF), TCF_SAFETENSORS);
    assert_int_equal(tcf_detect_bytes("PK\x03\x04rest", 8, "model.safetensors"), TCF_PICKLE); /* zip */
    assert_int_equal(tcf_detect_bytes("\x80\x02\x8a\x0a", 4, "x"), TCF_PICKLE); /* legacy torch.save */
    assert_int_equal(tcf_detect_bytes("\x80\x04\x95", 3, NULL), TCF_PICKLE);
    assert_int_equal(tcf_detect_bytes("hello", 5, "a.ckpt"), TCF_PICKLE);
    assert_int_equal(tcf_detect_bytes("hello", 5, "a.PT"), TCF_PICKLE);
    assert_int_equal(tcf_detect_bytes("hello", 5, "a.pth"), TCF_PICKLE);
    assert_int_equal(tcf_detect_bytes("hello", 5, "diffusion_pytorch_model.bin"), TCF_PICKLE);
    assert_int_equal(tcf_detect_bytes("hello", 5, "a.safetensors"), TCF_SAFETENSORS);
    assert_int_equal(tcf_detect_bytes("hello", 5, "a.txt"), TCF_UNKNOWN);
    assert_int_equal(tcf_detect_bytes(NULL, 0, NULL), TCF_UNKNOWN);
    assert_int_equal(tcf_detect_bytes("\x02\0\0\0\0\0\0\0{}", 10, "x.ckpt"), TCF_SAFETENSORS);
    assert_int_equal(tcf_detect("/nonexistent/a.ckpt"), TCF_PICKLE);
    assert_int_equal(tcf_detect("/nonexistent/a"), TCF_UNKNOWN);
    char path[300];
    tmp_path(path, sizeof path, "zip.safetensors");
    write_bytes(path, "PK\x03\x04\0\0\0\0\0\0", 10);
    assert_int_equal(tcf_detect(path), TCF_PICKLE);
    assert_string_equal(tcf_format_name(TCF_PICKLE), "pickle");
    assert_string_equal(tcf_format_name(TCF_SAFETENSORS), "safetensors");
    assert_string_equal(tcf_format_name(TCF_UNKNOWN), "unknown");

    char msg[2048];
    int n = tcf_pickle_message("models/sd15.ckpt", msg, sizeof msg);
    assert_true(n > 0 && (size_t)n < sizeof msg);
    assert_non_null(strstr(msg, "models/sd15.ckpt"));
    assert_non_null(strstr(msg, "arbitrary code"));
    assert_non_null(strstr(msg, "weights_only=True"));
    assert_non_null(strstr(msg, "save_file"));
    char e[2048];
    assert_int_equal(tcf_refuse_unsafe(path, e, sizeof e), 1); /* the zip written above */
    assert_non_null(strstr(e, path));
    assert_non_null(strstr(e, "weights_only=True"));
    assert_int_equal(tcf_refuse_unsafe(BASIC, e, sizeof e), 0);
    assert_int_equal(tcf_refuse_unsafe("/nonexistent/x.pth", NULL, 0), 1);
    char small[16];
    assert_int_equal(tcf_pickle_message("x", small, sizeof small), tcf_pickle_message("x", NULL, 0));
    assert_int_equal(strlen(small), 15);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_basic),
        cmocka_unit_test(test_dtype_names),
        cmocka_unit_test(test_half_exhaustive),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_writer_matches_reference),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_header_length_lies),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_accepted_edge_cases),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_hash_cache),
        cmocka_unit_test(test_checkpoint_format),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
