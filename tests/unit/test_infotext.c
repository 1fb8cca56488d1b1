/*
 * test_infotext.c -- proto/infotext.c and the text/EXIF readers it uses from
 * proto/image_io.c (ti_png_read_texts, ti_read_exif_comment).
 *
 * Exact strings for quote / build / float repr / parse; golden cases made by
 * tests/golden/make_infotext_golden.py (Python's own re, json and repr) for
 * the hand-written regex matcher; build -> parse round trips; images built
 * here (PNG through ti_encode_png and hand-spliced chunks, JPEG with a
 * hand-built EXIF APP1, WebP with a VP8X + EXIF container) read back; every
 * truncation and random byte flips of those images must give 0 or -1, never
 * a crash or a bad read (run under valgrind for the latter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <turbojpeg.h>
#include <webp/encode.h>
#include <zlib.h>

#include "image_io.h"
#include "infotext.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif

static uint32_t rng_state = 2463534242u;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

typedef struct {
    uint8_t *d;
    size_t n, cap;
} buf_t;

static void buf_put(buf_t *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 16;
        b->d = realloc(b->d, b->cap);
        assert_non_null(b->d);
    }
    if (n) memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void buf_be16(buf_t *b, unsigned v) {
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, x, 2);
}
static void buf_be32(buf_t *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, x, 4);
}
static void buf_le32(buf_t *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    buf_put(b, x, 4);
}

/* ---- quote ------------------------------------------------------------------------- */

static void check_quote(const char *in, const char *want) {
    char *q = tinf_quote(in);
    assert_non_null(q);
    assert_string_equal(q, want);
    free(q);
}

static void test_quote(void **state) {
    (void)state;
    check_quote("Euler a", "Euler a");
    check_quote("", "");
    check_quote("add_detail, lcm", "\"add_detail, lcm\"");
    check_quote("add_detail: 7c6bad76eb54", "\"add_detail: 7c6bad76eb54\"");
    check_quote("two\nlines", "\"two\\nlines\"");
    check_quote("say \"hi\", ok", "\"say \\\"hi\\\", ok\"");
    check_quote("C:\\models\\x", "\"C:\\\\models\\\\x\"");
    check_quote("a\"b\\c", "a\"b\\c"); /* no , : \n -> as is */
    check_quote("caf\xc3\xa9, \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9, \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"");
    check_quote("\x01\x1f\x7f,\b\f\r\t", "\"\\u0001\\u001f\x7f,\\b\\f\\r\\t\"");
    check_quote("\x1b[0m:", "\"\\u001b[0m:\"");
    assert_null(tinf_quote(NULL));

    json_error_t je;
    json_t *root = json_load_file(TESSERA_GOLDEN_DIR "/infotext/quote_cases.json", JSON_ALLOW_NUL, &je);
    if (!root) fail_msg("quote_cases.json: %s (run tests/golden/make_infotext_golden.py)", je.text);
    size_t i;
    json_t *c;
    json_array_foreach(root, i, c) check_quote(json_string_value(json_array_get(c, 0)),
                                               json_string_value(json_array_get(c, 1)));
    assert_true(json_array_size(root) > 100);
    json_decref(root);
}

/* ---- float repr ------------------------------------------------------------------- */

static void check_float(double v, const char *want) {
    char buf[TINF_FLOAT_BUFSZ];
    int n = tinf_fmt_float(v, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_fmt_float(void **state) {
    (void)state;
    check_float(7.0, "7.0");
    check_float(7.5, "7.5");
    check_float(0.75, "0.75");
    check_float(1e-05, "1e-05");
    check_float(0.0001, "0.0001");
    check_float(1e16, "1e+16");
    check_float(1e15, "1000000000000000.0");
    check_float(1.5e16, "1.5e+16");
    check_float(0.1 + 0.2, "0.30000000000000004");
    check_float(-0.0, "-0.0");
    check_float(0.0, "0.0");
    check_float(-2.5, "-2.5");
    check_float(5e-324, "5e-324");
    check_float(1.7976931348623157e308, "1.7976931348623157e+308");
    check_float(1.0 / 0.0, "inf");
    check_float(-1.0 / 0.0, "-inf");
    check_float(0.0 / 0.0, "nan");
    char small[4];
    assert_int_equal(tinf_fmt_float(7.0, small, 4), 3);
    assert_int_equal(tinf_fmt_float(0.75, small, 4), -1);
    assert_string_equal(small, "");

    json_error_t je;
    json_t *root = json_load_file(TESSERA_GOLDEN_DIR "/infotext/float_cases.json", 0, &je);
    if (!root) fail_msg("float_cases.json: %s", je.text);
    size_t i;
    json_t *c;
    int bad = 0;
    json_array_foreach(root, i, c) {
        uint64_t bits = strtoull(json_string_value(json_array_get(c, 0)), NULL, 16);
        double v;
        memcpy(&v, &bits, 8);
        char buf[TINF_FLOAT_BUFSZ];
        tinf_fmt_float(v, buf, sizeof(buf));
        const char *want = json_string_value(json_array_get(c, 1));
        if (strcmp(buf, want) != 0 && bad++ < 10)
            fprintf(stderr, "float %016llx: got %s want %s\n", (unsigned long long)bits, buf, want);
    }
    assert_int_equal(bad, 0);
    assert_true(json_array_size(root) > 1000);
    json_decref(root);
}

/* ---- build ------------------------------------------------------------------------ */

static void check_build(const char *prompt, const char *neg, const tinf_params *p, const char *want) {
    char *s = tinf_build(prompt, neg, p);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_build(void **state) {
    (void)state;
    tinf_params *p = tinf_params_new();
    assert_non_null(p);
    assert_int_equal(tinf_params_add_int(p, "Steps", 20), 0);
    assert_int_equal(tinf_params_add(p, "Sampler", "Euler a"), 0);
    assert_int_equal(tinf_params_add(p, "Schedule type", "Automatic"), 0);
    assert_int_equal(tinf_params_add_float(p, "CFG scale", 7), 0);
    assert_int_equal(tinf_params_add(p, "Face restoration", NULL), 0); /* None: skipped */
    assert_int_equal(tinf_params_add_int(p, "Seed", 123), 0);
    assert_int_equal(tinf_params_addf(p, "Size", "%dx%d", 512, 768), 0);
    assert_int_equal(tinf_params_add(p, "Lora hashes", "add_detail: 7c6bad76eb54, lcm: aaaaaaaaaaaa"), 0);
    assert_int_equal(tinf_params_add_float(p, "Denoising strength", 0.75), 0);
    const char *line = "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.0, Seed: 123, "
                       "Size: 512x768, Lora hashes: \"add_detail: 7c6bad76eb54, lcm: aaaaaaaaaaaa\", "
                       "Denoising strength: 0.75";
    char want[1024];
    snprintf(want, sizeof(want), "a cat\n%s", line);
    check_build("a cat", "", p, want);
    check_build("a cat", NULL, p, want);
    snprintf(want, sizeof(want), "a cat\nNegative prompt: ugly, blurry\n%s", line);
    check_build("a cat", "ugly, blurry", p, want);
    snprintf(want, sizeof(want), "line one\nline two\nNegative prompt: n1\nn2\n%s", line);
    check_build("  line one\nline two", "n1\nn2", p, want);
    snprintf(want, sizeof(want), "Negative prompt: only neg\n%s", line);
    check_build("", "only neg", p, want);
    snprintf(want, sizeof(want), "%s", line);
    check_build(NULL, NULL, p, want);
    check_build("\xe3\x80\x80 wide space \xe3\x80\x80", "", NULL, "wide space");
    check_build(" \n ", "", NULL, "");

    /* dict semantics: a repeated key keeps its place; None -> value later */
    assert_int_equal(tinf_params_count(p), 9);
    assert_int_equal(tinf_params_add_int(p, "Steps", 30), 0);
    assert_int_equal(tinf_params_add(p, "Face restoration", "CodeFormer"), 0);
    assert_int_equal(tinf_params_add(p, "Sampler", NULL), 0);
    assert_int_equal(tinf_params_add(p, "Tiling", "Tiling"), 0); /* bare key */
    assert_int_equal(tinf_params_count(p), 10);
    assert_string_equal(tinf_params_get(p, "Steps"), "30");
    assert_null(tinf_params_get(p, "Sampler"));
    assert_null(tinf_params_get(p, "nope"));
    check_build("p", "", p,
                "p\nSteps: 30, Schedule type: Automatic, CFG scale: 7.0, Face restoration: CodeFormer, "
                "Seed: 123, Size: 512x768, Lora hashes: \"add_detail: 7c6bad76eb54, lcm: aaaaaaaaaaaa\", "
                "Denoising strength: 0.75, Tiling");
    tinf_params_free(p);
    tinf_params_free(NULL);
    assert_int_equal(tinf_params_add(NULL, "k", "v"), -1);

    /* golden: Python's create_infotext layout */
    json_error_t je;
    json_t *root = json_load_file(TESSERA_GOLDEN_DIR "/infotext/build_cases.json", JSON_ALLOW_NUL, &je);
    if (!root) fail_msg("build_cases.json: %s", je.text);
    size_t i, k;
    json_t *c, *kv;
    json_array_foreach(root, i, c) {
        p = tinf_params_new();
        json_array_foreach(json_object_get(c, "params"), k, kv)
            assert_int_equal(tinf_params_add(p, json_string_value(json_array_get(kv, 0)),
                                             json_string_value(json_array_get(kv, 1))), 0);
        check_build(json_string_value(json_object_get(c, "prompt")),
                    json_string_value(json_object_get(c, "negative")), p,
                    json_string_value(json_object_get(c, "out")));
        tinf_params_free(p);
    }
    json_decref(root);
}

/* ---- parse ------------------------------------------------------------------------ */

static void expect_str(const json_t *o, const char *k, const char *want) {
    const json_t *v = json_object_get(o, k);
    if (!json_is_string(v)) fail_msg("key \"%s\": not a string", k);
    assert_string_equal(json_string_value(v), want);
}

static void expect_int(const json_t *o, const char *k, long long want) {
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) fail_msg("key \"%s\": not an integer", k);
    assert_int_equal(json_integer_value(v), want);
}

static void test_parse_doc_example(void **state) {
    (void)state;
    const char *text =
        "masterpiece, 1girl, <lora:add_detail:0.6>\n"
        "Negative prompt: lowres, bad anatomy\n"
        "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567, Size: 512x768, "
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.5, Hires upscale: 2, "
        "Hires upscaler: Latent, Lora hashes: \"add_detail: 7c6bad76eb54\", Version: v1.10.1";
    json_t *r = tinf_parse(text);
    assert_non_null(r);
    expect_str(r, "Prompt", "masterpiece, 1girl, <lora:add_detail:0.6>");
    expect_str(r, "Negative prompt", "lowres, bad anatomy");
    expect_str(r, "Steps", "25");
    expect_str(r, "Sampler", "DPM++ 2M");
    expect_str(r, "Schedule type", "Karras");
    expect_str(r, "CFG scale", "7");
    expect_str(r, "Seed", "1234567");
    expect_str(r, "Size-1", "512");
    expect_str(r, "Size-2", "768");
    assert_null(json_object_get(r, "Size"));
    expect_str(r, "Model hash", "6ce0161689");
    expect_str(r, "Model", "v1-5-pruned-emaonly");
    expect_str(r, "Denoising strength", "0.5");
    expect_str(r, "Hires upscale", "2");
    expect_str(r, "Hires upscaler", "Latent");
    expect_str(r, "Lora hashes", "add_detail: 7c6bad76eb54");
    expect_str(r, "Version", "v1.10.1");
    /* defaults, with A1111's types */
    expect_str(r, "Clip skip", "1");
    expect_int(r, "Hires resize-1", 0);
    expect_int(r, "Hires resize-2", 0);
    expect_str(r, "Hires sampler", "Use same sampler");
    expect_str(r, "Hires checkpoint", "Use same checkpoint");
    expect_str(r, "Hires prompt", "");
    expect_str(r, "Hires negative prompt", "");
    expect_str(r, "Mask mode", "Inpaint masked");
    expect_str(r, "Masked content", "original");
    expect_str(r, "Inpaint area", "Whole picture");
    expect_int(r, "Masked area padding", 32);
    expect_str(r, "RNG", "GPU");
    expect_int(r, "Schedule max sigma", 0);
    expect_int(r, "Schedule min sigma", 0);
    expect_int(r, "Schedule rho", 0);
    expect_str(r, "VAE Encoder", "Full");
    expect_str(r, "VAE Decoder", "Full");
    expect_str(r, "FP8 weight", "Disable");
    assert_null(json_object_get(r, "Cache FP16 weight for LoRA"));
    assert_null(json_object_get(r, "Downcast alphas_cumprod"));
    /* order: Prompt, Negative prompt, the pairs, then the defaults */
    const char *order[] = {"Prompt", "Negative prompt", "Steps", "Sampler", "Schedule type", "CFG scale",
                           "Seed", "Size-1", "Size-2", "Model hash"};
    void *it = json_object_iter(r);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++, it = json_object_iter_next(r, it))
        assert_string_equal(json_object_iter_key(it), order[i]);
    assert_int_equal(json_object_size(r), 16 + 18);
    json_decref(r);
}

static void test_parse_cases(void **state) {
    (void)state;
    /* quoted values: escaped quotes, commas, backslashes */
    json_t *r = tinf_parse("p\nSteps: 1, KA: \"x, y\", KB: \"say \\\"hi\\\", ok\", KC: \"back\\\\slash\", "
                           "KD: \"caf\\u00e9 \\ud83d\\ude00\", A: 1");
    expect_str(r, "KA", "x, y");
    expect_str(r, "KB", "say \"hi\", ok");
    expect_str(r, "KC", "back\\slash");
    expect_str(r, "KD", "caf\xc3\xa9 \xf0\x9f\x98\x80");
    assert_null(json_object_get(r, "A")); /* one-character keys never match */
    expect_str(r, "Prompt", "p");
    json_decref(r);

    /* an unterminated quote falls back to [^,]* and is kept raw */
    r = tinf_parse("Steps: 1, KA: \"open, KB: 2, KC: x\"y, KD: \"\"");
    expect_str(r, "KA", "\"open");
    expect_str(r, "KB", "2");
    expect_str(r, "KC", "x\"y");
    expect_str(r, "KD", ""); /* "" decodes to the empty string */
    expect_str(r, "Prompt", "");
    json_decref(r);

    /* fewer than 3 pairs: the last line is prompt text */
    r = tinf_parse("a cat\nSteps: 20, Sampler: Euler");
    expect_str(r, "Prompt", "a cat\nSteps: 20, Sampler: Euler");
    assert_null(json_object_get(r, "Steps"));
    json_decref(r);
    r = tinf_parse("just one line, no params");
    expect_str(r, "Prompt", "just one line, no params");
    json_decref(r);
    /* ... but three make a parameters line even without newline */
    r = tinf_parse("Steps: 20, Sampler: Euler, Size: 64x32");
    expect_str(r, "Prompt", "");
    expect_str(r, "Size-1", "64");
    expect_str(r, "Size-2", "32");
    json_decref(r);

    /* multi-line negative; every "Negative prompt:" line loses the prefix */
    r = tinf_parse("  p1  \n\np2\nNegative prompt:   n1\n n2 \nNegative prompt: n3\nSteps: 1, Seed: 2, Size: 3x4");
    expect_str(r, "Prompt", "p1\n\np2");
    expect_str(r, "Negative prompt", "n1\nn2\nn3");
    json_decref(r);

    /* empty value dropped (A1111 raises on v[0]); key runs and spaces */
    r = tinf_parse("p\nSteps: 1, Empty: , Seed: 2, x/y-z w: 5, a:b, K :v");
    assert_null(json_object_get(r, "Empty"));
    expect_str(r, "x/y-z w", "5");
    assert_null(json_object_get(r, "a")); /* one-character keys never match */
    expect_str(r, "K ", "v");
    json_decref(r);

    /* Unicode keys, digits and whitespace */
    r = tinf_parse("p\n\xe6\x97\xa5\xe6\x9c\xac: \xe4\xb8\x80, Steps:\xe3\x80\x80" "20, "
                   "Size: \xd9\xa5\xd9\xa1\xd9\xa2x\xd9\xa5\xd9\xa1\xd9\xa2");
    expect_str(r, "\xe6\x97\xa5\xe6\x9c\xac", "\xe4\xb8\x80");
    expect_str(r, "Steps", "20");
    expect_str(r, "Size-1", "\xd9\xa5\xd9\xa1\xd9\xa2");
    json_decref(r);

    /* WxH in a quoted value with a trailing newline ('$' before a final \n) */
    r = tinf_parse("p\nSteps: 1, Seed: 2, Hires resize: \"1024x1536\\n\"");
    expect_str(r, "Hires resize-1", "1024");
    expect_str(r, "Hires resize-2", "1536");
    json_decref(r);

    /* old hires fix */
    r = tinf_parse("p\nSteps: 1, Seed: 2, First pass size: 0x0, Size: 1024x768");
    expect_int(r, "Size-1", 640);
    expect_int(r, "Size-2", 448);
    expect_int(r, "Hires resize-1", 1024);
    expect_int(r, "Hires resize-2", 768);
    json_decref(r);

    /* hypernet, FP8, back-compat flags by version */
    r = tinf_parse("p\nSteps: 1, Seed: 2, Hypernet: hn, Hypernet strength: 0.5, FP8 weight: Enable");
    expect_str(r, "Prompt", "p<hypernet:hn:0.5>");
    assert_true(json_is_false(json_object_get(r, "Cache FP16 weight for LoRA")));
    json_decref(r);
    r = tinf_parse("p [a:b:3]\nSteps: 1, Sampler: DDIM, Refiner: x, Version: v1.5.2");
    assert_true(json_is_true(json_object_get(r, "Old prompt editing timelines")));
    assert_true(json_is_true(json_object_get(r, "Pad conds v0")));
    assert_true(json_is_true(json_object_get(r, "Downcast alphas_cumprod")));
    assert_true(json_is_true(json_object_get(r, "Refiner switch by sampling steps")));
    json_decref(r);
    r = tinf_parse("p [a:b:3]\nSteps: 1, Sampler: DDIM, Refiner: x, Version: v1.7.0-225-gabcdef");
    assert_null(json_object_get(r, "Old prompt editing timelines"));
    assert_null(json_object_get(r, "Downcast alphas_cumprod")); /* == 1.7.0.post225 */
    assert_true(json_is_true(json_object_get(r, "Refiner switch by sampling steps")));
    json_decref(r);
    r = tinf_parse("p\nSteps: 1, Seed: 2, Version: v1.7.0-RC-5-gf92d6149");
    assert_true(json_is_true(json_object_get(r, "Downcast alphas_cumprod")));
    json_decref(r);

    /* a params line repeating Prompt overrides it (dict semantics, first place) */
    r = tinf_parse("p\nPrompt: other, Steps: 3, Seed: 4");
    expect_str(r, "Prompt", "other");
    assert_string_equal(json_object_iter_key(json_object_iter(r)), "Prompt");
    json_decref(r);

    /* NULL and invalid UTF-8 */
    r = tinf_parse(NULL);
    expect_str(r, "Prompt", "");
    json_decref(r);
    r = tinf_parse("a\xff\xc3(b\nSteps: 1, K\xff: v\xfe, Seed: 2, Size: 1x2");
    expect_str(r, "Prompt", "a\xef\xbf\xbd\xef\xbf\xbd(b");
    expect_str(r, "Steps", "1");
    json_decref(r);
}

/* Keys/values as [key, value] pairs, in order. */
static void check_parse_golden(const char *text, const json_t *expected, size_t case_no) {
    json_t *r = tinf_parse(text);
    assert_non_null(r);
    int ok = json_object_size(r) == json_array_size(expected);
    void *it = json_object_iter(r);
    for (size_t i = 0; ok && i < json_array_size(expected); i++, it = json_object_iter_next(r, it)) {
        const json_t *kv = json_array_get(expected, i);
        if (!it || strcmp(json_object_iter_key(it), json_string_value(json_array_get(kv, 0))) != 0 ||
            !json_equal(json_object_iter_value(it), json_array_get(kv, 1)))
            ok = 0;
    }
    if (!ok) {
        char *got = json_dumps(r, JSON_ENSURE_ASCII);
        char *want = json_dumps(expected, JSON_ENSURE_ASCII);
        char *in = json_dumps(json_string(text), JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
        fail_msg("parse case %zu %s\n got  %s\n want %s", case_no, in, got, want);
    }
    json_decref(r);
}

static void test_parse_golden(void **state) {
    (void)state;
    json_error_t je;
    json_t *root = json_load_file(TESSERA_GOLDEN_DIR "/infotext/parse_cases.json", JSON_ALLOW_NUL, &je);
    if (!root) fail_msg("parse_cases.json: %s", je.text);
    size_t i;
    json_t *c;
    json_array_foreach(root, i, c)
        check_parse_golden(json_string_value(json_object_get(c, "text")), json_object_get(c, "expected"), i);
    assert_true(json_array_size(root) > 500);
    json_decref(root);
}

/* ---- round trip -------------------------------------------------------------------- */

static const char *const RT_CHARS[] = {"a", "b", "Z", "0", "7", " ", ",", ":", "\"", "\\", "(", "[",
                                       "<", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\t", "'",
                                       "x", "-", "\x01", "\x7f", "\xe3\x80\x80"};
#define N_RT_CHARS (sizeof(RT_CHARS) / sizeof(RT_CHARS[0]))

/* Random text with no whitespace at either end (RT_CHARS 5, 16, 22 are spaces). */
static void rt_text(char *out, size_t cap, int len, int allow_newline) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < len; i++) {
        const char *c;
        int edge = i == 0 || i == len - 1;
        do {
            c = RT_CHARS[rnd() % N_RT_CHARS];
            if (allow_newline && !edge && rnd() % 12 == 0) c = "\n";
        } while (edge && (c[0] == ' ' || c[0] == '\t' || c[0] == '\x01' || !strcmp(c, "\xe3\x80\x80")));
        if (o + strlen(c) + 1 >= cap) break;
        strcpy(out + o, c);
        o += strlen(c);
    }
}

static int all_sizeish(const char *v) {
    for (; *v; v++)
        if (!(*v == 'x' || (*v >= '0' && *v <= '9'))) return 0;
    return 1;
}

static int ws_start(const char *p, size_t n) {
    return n && (p[0] == ' ' || p[0] == '\t' || (n >= 3 && !memcmp(p, "\xe3\x80\x80", 3)));
}
static int ws_end(const char *p, size_t n) {
    return n && (p[n - 1] == ' ' || p[n - 1] == '\t' || (n >= 3 && !memcmp(p + n - 3, "\xe3\x80\x80", 3)));
}

/* Lines start / end without whitespace (the parser strips every line). */
static int lines_clean(const char *s) {
    const char *p = s;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (ws_start(p, n) || ws_end(p, n)) return 0;
        if (!nl) return 1;
        p = nl + 1;
    }
}

static void test_roundtrip(void **state) {
    (void)state;
    static const char *const KEYS[] = {"Steps", "Sampler", "CFG scale", "Seed", "Model", "Lora hashes",
                                       "Hires upscaler", "x/y-z", "Custom key", "\xe6\x97\xa5\xe6\x9c\xac",
                                       "TI hashes", "Emphasis", "Eta", "User"};
    int checked = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char prompt[256], neg[256], vals[8][128];
        rt_text(prompt, sizeof(prompt), (int)(rnd() % 40), 1);
        rt_text(neg, sizeof(neg), rnd() % 3 ? (int)(rnd() % 30) : 0, 1);
        if ((prompt[0] && !lines_clean(prompt)) || (neg[0] && !lines_clean(neg))) continue;
        tinf_params *p = tinf_params_new();
        int np = 3 + (int)(rnd() % 5);
        int used[14] = {0}, keys[8];
        for (int k = 0; k < np; k++) {
            int kk;
            do kk = (int)(rnd() % 14);
            while (used[kk]);
            used[kk] = 1;
            keys[k] = kk;
            do rt_text(vals[k], sizeof(vals[k]), 1 + (int)(rnd() % 20), rnd() % 4 == 0);
            while (!vals[k][0] || all_sizeish(vals[k]) || !strcmp(vals[k], KEYS[kk]) ||
                   (vals[k][0] == '"' && !strpbrk(vals[k], ",:\n")));
            assert_int_equal(tinf_params_add(p, KEYS[kk], vals[k]), 0);
        }
        char *text = tinf_build(prompt, neg, p);
        json_t *r = tinf_parse(text);
        assert_non_null(r);
        const char *gp = json_string_value(json_object_get(r, "Prompt"));
        const char *gn = json_string_value(json_object_get(r, "Negative prompt"));
        if (strcmp(gp, prompt) || strcmp(gn, neg)) fail_msg("round trip prompt: %s", text);
        for (int k = 0; k < np; k++) {
            const char *g = json_string_value(json_object_get(r, KEYS[keys[k]]));
            if (!g || strcmp(g, vals[k])) fail_msg("round trip %s: got %s in\n%s", KEYS[keys[k]], g ? g : "(none)", text);
        }
        checked++;
        json_decref(r);
        free(text);
        tinf_params_free(p);
    }
    assert_true(checked > 1000);
}

/* Hostile text: random bytes, and pathological lines that a backtracking or
 * quadratic matcher would choke on. */
static void test_parse_hostile(void **state) {
    (void)state;
    char buf[512];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = rnd() % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            static const char pool[] = "ab :,\"\\\n\t-/x1\xc3\xa9\xff\xe3\x80";
            buf[i] = rnd() % 4 ? pool[rnd() % (sizeof(pool) - 1)] : (char)(rnd() & 0xff);
            if (!buf[i]) buf[i] = 'z';
        }
        buf[n] = '\0';
        json_t *r = tinf_parse(buf);
        assert_non_null(r);
        assert_non_null(json_object_get(r, "Prompt"));
        json_decref(r);
    }
    const char *units[] = {"k: \"", "aaaa", "k:\"\\", ", ", "\"", "a b -/", "\xe3\x80\x80"};
    size_t big = 1u << 20;
    char *s = malloc(big + 16);
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t o = 0, ul = strlen(units[u]);
        while (o + ul < big) {
            memcpy(s + o, units[u], ul);
            o += ul;
        }
        s[o] = '\0';
        clock_t t0 = clock();
        json_t *r = tinf_parse(s);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        assert_non_null(r);
        json_decref(r);
        if (secs > 20) fail_msg("parse of 1 MiB of \"%s\" took %.1f s", units[u], secs);
    }
    free(s);
}

/* ---- images ------------------------------------------------------------------------ */

static ti_image make_image(int w, int h, int ch) {
    ti_image im;
    assert_int_equal(ti_image_alloc(&im, w, h, ch, NULL, 0), 0);
    for (size_t i = 0; i < (size_t)w * h * ch; i++) im.pixels[i] = (uint8_t)(i * 7 + (i >> 5));
    return im;
}

static buf_t encode_png(const ti_png_text *texts, int n) {
    ti_image im = make_image(8, 6, 3);
    uint8_t *png = NULL;
    size_t len = 0;
    char err[200];
    if (ti_encode_png(&im, texts, n, 6, &png, &len, err, sizeof(err)) != 0) fail_msg("%s", err);
    ti_image_free(&im);
    buf_t b = {png, len, len};
    return b;
}

/* Insert a chunk before the chunk at position `at` (33 = right after IHDR). */
static void png_insert(buf_t *png, size_t at, const char *type, const void *data, size_t n) {
    buf_t c = {0};
    buf_be32(&c, (uint32_t)n);
    buf_put(&c, type, 4);
    buf_put(&c, data, n);
    buf_be32(&c, (uint32_t)crc32(crc32(0, NULL, 0), c.d + 4, (uInt)(n + 4)));
    buf_t out = {0};
    buf_put(&out, png->d, at);
    buf_put(&out, c.d, c.n);
    buf_put(&out, png->d + at, png->n - at);
    free(c.d);
    free(png->d);
    *png = out;
}

static size_t png_iend_at(const buf_t *png) { return png->n - 12; }

static buf_t zdeflate(const char *s) {
    uLongf n = compressBound((uLong)strlen(s));
    buf_t b = {malloc(n), 0, n};
    assert_int_equal(compress(b.d, &n, (const Bytef *)s, (uLong)strlen(s)), Z_OK);
    b.n = n;
    return b;
}

static void read_ok(const buf_t *img, const char *want_info, json_t **items) {
    char *info = NULL;
    json_t *it = NULL;
    assert_int_equal(tinf_read_image(img->d, img->n, &info, &it), 0);
    assert_non_null(it);
    if (want_info) {
        assert_non_null(info);
        assert_string_equal(info, want_info);
    } else {
        assert_null(info);
    }
    free(info);
    if (items) *items = it;
    else json_decref(it);
}

static void test_read_png(void **state) {
    (void)state;
    const char *latin = "a cat, caf\xc3\xa9\nNegative prompt: ugly\nSteps: 20, Sampler: Euler a, CFG scale: 7.0";
    const char *cjk = "\xe7\x8c\xab \xf0\x9f\x90\xb1\nSteps: 30, Sampler: Euler, Seed: 1";
    /* tEXt (Latin-1 encodable) */
    ti_png_text t1[] = {{"Software", "Tessera"}, {"parameters", latin}, {"Title", "x"}};
    buf_t png = encode_png(t1, 3);
    json_t *items = NULL;
    read_ok(&png, latin, &items);
    assert_int_equal(json_object_size(items), 2);
    expect_str(items, "Software", "Tessera");
    expect_str(items, "Title", "x");
    assert_string_equal(json_object_iter_key(json_object_iter(items)), "Software");
    json_decref(items);
    free(png.d);
    /* iTXt (not Latin-1) */
    ti_png_text t2[] = {{"parameters", cjk}};
    png = encode_png(t2, 1);
    read_ok(&png, cjk, &items);
    assert_int_equal(json_object_size(items), 0);
    json_decref(items);
    json_t *parsed = tinf_parse(cjk);
    expect_str(parsed, "Prompt", "\xe7\x8c\xab \xf0\x9f\x90\xb1");
    expect_str(parsed, "Seed", "1");
    json_decref(parsed);

    /* spliced chunks: zTXt, compressed iTXt, junk, text after IDAT, duplicates */
    buf_t z = zdeflate("from ztxt \xe9"); /* Latin-1 e-acute */
    buf_t ztxt = {0};
    buf_put(&ztxt, "zkey\0\0", 6);
    buf_put(&ztxt, z.d, z.n);
    png_insert(&png, 33, "zTXt", ztxt.d, ztxt.n);
    free(z.d);
    free(ztxt.d);
    z = zdeflate("compressed \xe6\x97\xa5");
    buf_t itxt = {0};
    buf_put(&itxt, "ikey\0\1\0en\0trans\0", 16);
    buf_put(&itxt, z.d, z.n);
    png_insert(&png, 33, "iTXt", itxt.d, itxt.n);
    free(z.d);
    free(itxt.d);
    png_insert(&png, 33, "iTXt", "bad\0\0\0\0\0\xff\xfe", 10); /* not UTF-8: skipped */
    png_insert(&png, 33, "tEXt", "\0empty key", 10);           /* skipped */
    png_insert(&png, 33, "tEXt", "nonul", 5);                  /* key, empty value */
    png_insert(&png, 33, "tEXt", "dpi\0" "72", 6);             /* ignored by A1111 */
    png_insert(&png, 33, "tEXt", "Title\0first", 11);
    png_insert(&png, png_iend_at(&png), "tEXt", "Title\0second", 12); /* after IDAT */
    ti_png_text *texts = NULL;
    int nt = 0;
    assert_int_equal(ti_png_read_texts(png.d, png.n, &texts, &nt), 0);
    assert_int_equal(nt, 7);
    assert_string_equal(texts[0].key, "Title");
    assert_string_equal(texts[0].value, "first");
    assert_string_equal(texts[2].key, "nonul");
    assert_string_equal(texts[2].value, "");
    assert_string_equal(texts[3].key, "ikey");
    assert_string_equal(texts[3].value, "compressed \xe6\x97\xa5");
    assert_string_equal(texts[4].key, "zkey");
    assert_string_equal(texts[4].value, "from ztxt \xc3\xa9");
    assert_string_equal(texts[5].key, "parameters");
    assert_string_equal(texts[6].value, "second");
    ti_png_texts_free(texts, nt);
    read_ok(&png, cjk, &items);
    assert_int_equal(json_object_size(items), 4);
    expect_str(items, "Title", "second");
    assert_string_equal(json_object_iter_key(json_object_iter(items)), "Title");
    assert_null(json_object_get(items, "dpi"));
    json_decref(items);

    /* A1111's "comment" rule, then EXIF (eXIf chunk) over parameters */
    png_insert(&png, 33, "tEXt", "comment\0from comment", 20);
    read_ok(&png, "from comment", NULL);
    free(png.d);

    /* not a PNG / NULL / garbage after the signature */
    char *info = (char *)1;
    json_t *it = (json_t *)1;
    assert_int_equal(tinf_read_image((const uint8_t *)"GIF89a......", 12, &info, &it), TINF_NOT_IMAGE);
    assert_null(info);
    assert_null(it);
    assert_int_equal(tinf_read_image(NULL, 0, &info, NULL), TINF_NOT_IMAGE);
    assert_int_equal(tinf_read_image((const uint8_t *)"\x89PNG\r\n\x1a\nxxxxxxxxxxxxxxxxxxxxxxxxx", 33, &info, &it), -1);
    assert_null(info);
    assert_null(it);
}

/* TIFF (EXIF) block with the given UserComment bytes (NULL: no UserComment). */
static buf_t make_tiff(int be, const void *uc, size_t n) {
    buf_t t = {0};
    uint8_t w[4];
#define P16(v) (be ? (w[0] = (uint8_t)((v) >> 8), w[1] = (uint8_t)(v)) : (w[0] = (uint8_t)(v), w[1] = (uint8_t)((v) >> 8)), buf_put(&t, w, 2))
#define P32(v) (be ? (w[0] = (uint8_t)((v) >> 24), w[1] = (uint8_t)((v) >> 16), w[2] = (uint8_t)((v) >> 8), w[3] = (uint8_t)(v)) \
                   : (w[0] = (uint8_t)(v), w[1] = (uint8_t)((v) >> 8), w[2] = (uint8_t)((v) >> 16), w[3] = (uint8_t)((v) >> 24)), buf_put(&t, w, 4))
    buf_put(&t, be ? "MM\0*" : "II*\0", 4);
    P32(8u);
    P16(1u);           /* IFD0: one entry */
    P16(0x8769u);      /* ExifIFD pointer */
    P16(4u);
    P32(1u);
    P32(26u);
    P32(0u);
    P16(uc ? 1u : 0u); /* Exif IFD at 26 */
    if (uc) {
        P16(0x9286u);
        P16(7u);
        P32((uint32_t)n);
        if (n <= 4) {
            uint8_t v[4] = {0};
            memcpy(v, uc, n);
            buf_put(&t, v, 4);
        } else {
            P32(44u);
        }
    }
    P32(0u);
    if (uc && n > 4) buf_put(&t, uc, n);
#undef P16
#undef P32
    return t;
}

/* "UNICODE\0" + UTF-16 of an ASCII/BMP/astral UTF-8 string. */
static buf_t utf16_comment(const char *s, int be, int bom) {
    buf_t b = {0};
    buf_put(&b, "UNICODE\0", 8);
    if (bom) buf_put(&b, be ? "\xfe\xff" : "\xff\xfe", 2);
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        uint32_t cp;
        if (*u < 0x80) cp = *u++;
        else if (*u < 0xe0) { cp = (uint32_t)(*u & 0x1f) << 6 | (u[1] & 0x3f); u += 2; }
        else if (*u < 0xf0) { cp = (uint32_t)(*u & 0x0f) << 12 | (uint32_t)(u[1] & 0x3f) << 6 | (u[2] & 0x3f); u += 3; }
        else { cp = (uint32_t)(*u & 0x07) << 18 | (uint32_t)(u[1] & 0x3f) << 12 | (uint32_t)(u[2] & 0x3f) << 6 | (u[3] & 0x3f); u += 4; }
        uint16_t units[2];
        int nu = 1;
        if (cp >= 0x10000) {
            units[0] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
            units[1] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
            nu = 2;
        } else {
            units[0] = (uint16_t)cp;
        }
        for (int k = 0; k < nu; k++) {
            uint8_t x[2] = {(uint8_t)(be ? units[k] >> 8 : units[k]), (uint8_t)(be ? units[k] : units[k] >> 8)};
            buf_put(&b, x, 2);
        }
    }
    return b;
}

static buf_t make_jpeg_raw(void) {
    uint8_t rgb[16 * 16 * 3];
    for (size_t i = 0; i < sizeof(rgb); i++) rgb[i] = (uint8_t)(i * 5);
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long n = 0;
    assert_int_equal(tjCompress2(tj, rgb, 16, 0, 16, TJPF_RGB, &jpg, &n, TJSAMP_420, 80, 0), 0);
    buf_t b = {0};
    buf_put(&b, jpg, n);
    tjFree(jpg);
    tjDestroy(tj);
    return b;
}

/* A JPEG with an APP1 Exif segment holding tiff, right after SOI. */
static buf_t jpeg_with_exif(const buf_t *tiff) {
    buf_t raw = make_jpeg_raw(), b = {0};
    buf_put(&b, raw.d, 2);
    if (tiff) {
        buf_put(&b, "\xff\xe1", 2);
        buf_be16(&b, (unsigned)(2 + 6 + tiff->n));
        buf_put(&b, "Exif\0\0", 6);
        buf_put(&b, tiff->d, tiff->n);
    }
    buf_put(&b, raw.d + 2, raw.n - 2);
    free(raw.d);
    return b;
}

static void check_jpeg_comment(int be, const buf_t *uc, const char *want) {
    buf_t t = make_tiff(be, uc ? uc->d : NULL, uc ? uc->n : 0);
    buf_t j = jpeg_with_exif(&t);
    read_ok(&j, want, NULL);
    char *c = NULL;
    assert_int_equal(ti_read_exif_comment(j.d, j.n, &c), 1);
    if (want) assert_string_equal(c, want);
    else assert_null(c);
    free(c);
    free(t.d);
    free(j.d);
}

static void test_read_jpeg(void **state) {
    (void)state;
    const char *text = "a cat, caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80\nSteps: 20, Sampler: Euler a, CFG scale: 7.0";
    for (int be = 0; be <= 1; be++)
        for (int ube = 0; ube <= 1; ube++)
            for (int bom = 0; bom <= 1; bom++) {
                buf_t uc = utf16_comment(text, ube, bom);
                check_jpeg_comment(be, &uc, text); /* piexif: MM + BE; others: either */
                free(uc.d);
            }
    /* CJK only: no zero bytes to tell the order, TIFF order decides */
    buf_t uc = utf16_comment("\xe6\x97\xa5\xe6\x9c\xac", 1, 0);
    check_jpeg_comment(1, &uc, "\xe6\x97\xa5\xe6\x9c\xac");
    free(uc.d);
    uc = utf16_comment("\xe6\x97\xa5\xe6\x9c\xac", 0, 0);
    check_jpeg_comment(0, &uc, "\xe6\x97\xa5\xe6\x9c\xac");
    free(uc.d);
    /* lone surrogate, odd length, trailing NUL */
    buf_t odd = {0};
    buf_put(&odd, "UNICODE\0\0a\xd8\x00\0b\0\0\0", 16);
    check_jpeg_comment(1, &odd, "a\xef\xbf\xbd" "b");
    buf_put(&odd, "\0", 1);
    check_jpeg_comment(1, &odd, "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    free(odd.d);
    /* ASCII prefix; undefined prefix; short value stored inline */
    buf_t a = {0};
    buf_put(&a, "ASCII\0\0\0Steps: 5, x\xff", 20);
    check_jpeg_comment(0, &a, "Steps: 5, x\xef\xbf\xbd");
    free(a.d);
    a = (buf_t){0};
    buf_put(&a, "\0\0\0\0\0\0\0\0plain\xff", 14);
    check_jpeg_comment(1, &a, "plain");
    free(a.d);
    a = (buf_t){0};
    buf_put(&a, "abc", 3);
    check_jpeg_comment(1, &a, "abc");
    free(a.d);
    /* EXIF without UserComment; empty UNICODE comment; no EXIF at all */
    check_jpeg_comment(1, NULL, NULL);
    a = (buf_t){0};
    buf_put(&a, "UNICODE\0", 8);
    check_jpeg_comment(1, &a, NULL);
    free(a.d);
    buf_t j = jpeg_with_exif(NULL);
    read_ok(&j, NULL, NULL);
    char *c = (char *)1;
    assert_int_equal(ti_read_exif_comment(j.d, j.n, &c), 0);
    assert_null(c);
    free(j.d);
}

/* A VP8X WebP with an EXIF chunk (exif_prefix: A1111/PIL's "Exif\0\0"). */
static buf_t webp_with_exif(const buf_t *tiff, int exif_prefix) {
    uint8_t rgb[16 * 16 * 3];
    for (size_t i = 0; i < sizeof(rgb); i++) rgb[i] = (uint8_t)(i * 3);
    uint8_t *w = NULL;
    size_t wn = WebPEncodeRGB(rgb, 16, 16, 48, 80, &w);
    assert_true(wn > 20);
    buf_t body = {0};
    buf_put(&body, "WEBP", 4);
    buf_put(&body, "VP8X", 4);
    buf_le32(&body, 10);
    uint8_t x[10] = {0x08, 0, 0, 0, 15, 0, 0, 15, 0, 0};
    buf_put(&body, x, 10);
    buf_put(&body, w + 12, wn - 12);
    WebPFree(w);
    buf_put(&body, "EXIF", 4);
    size_t en = tiff->n + (exif_prefix ? 6 : 0);
    buf_le32(&body, (uint32_t)en);
    if (exif_prefix) buf_put(&body, "Exif\0\0", 6);
    buf_put(&body, tiff->d, tiff->n);
    if (en & 1) buf_put(&body, "\0", 1);
    buf_t b = {0};
    buf_put(&b, "RIFF", 4);
    buf_le32(&b, (uint32_t)body.n);
    buf_put(&b, body.d, body.n);
    free(body.d);
    return b;
}

static void test_read_webp(void **state) {
    (void)state;
    const char *text = "a fox\nSteps: 12, Sampler: DDIM, Seed: 9";
    buf_t uc = utf16_comment(text, 1, 0);
    buf_t t = make_tiff(1, uc.d, uc.n);
    for (int pre = 0; pre <= 1; pre++) {
        buf_t wb = webp_with_exif(&t, pre);
        assert_int_equal(ti_probe(wb.d, wb.n, NULL, NULL, NULL, NULL, NULL, 0), 0);
        read_ok(&wb, text, NULL);
        free(wb.d);
    }
    free(t.d);
    free(uc.d);
}

/* Every prefix and random byte flips: 0 or -1, never a crash. */
static void hammer(const buf_t *img) {
    for (size_t n = 0; n <= img->n; n++) {
        char *info = NULL;
        json_t *it = NULL;
        int rc = tinf_read_image(img->d, n, &info, &it);
        assert_true(rc == 0 || rc == -1 || rc == TINF_NOT_IMAGE);
        if (rc != 0) {
            assert_null(info);
            assert_null(it);
        }
        free(info);
        json_decref(it);
        char *c = NULL;
        rc = ti_read_exif_comment(img->d, n, &c);
        assert_true(rc >= -1 && rc <= 1);
        free(c);
        ti_png_text *tx = NULL;
        int nt = 0;
        assert_true(ti_png_read_texts(img->d, n, &tx, &nt) >= -1);
        ti_png_texts_free(tx, nt);
    }
    uint8_t *m = malloc(img->n);
    for (int iter = 0; iter < 400; iter++) {
        memcpy(m, img->d, img->n);
        int flips = 1 + (int)(rnd() % 6);
        for (int f = 0; f < flips; f++) m[rnd() % img->n] = (uint8_t)rnd();
        char *info = NULL;
        json_t *it = NULL;
        int rc = tinf_read_image(m, img->n, &info, &it);
        assert_true(rc == 0 || rc == -1 || rc == TINF_NOT_IMAGE);
        free(info);
        json_decref(it);
    }
    free(m);
}

static void test_hostile_images(void **state) {
    (void)state;
    const char *text = "p\nSteps: 1, Seed: 2, Size: 8x6";
    ti_png_text tx[] = {{"parameters", text}, {"k", "\xe6\x97\xa5"}};
    buf_t png = encode_png(tx, 2);
    buf_t z = zdeflate("zz");
    buf_t ztxt = {0};
    buf_put(&ztxt, "z\0\0", 3);
    buf_put(&ztxt, z.d, z.n);
    png_insert(&png, 33, "zTXt", ztxt.d, ztxt.n);
    buf_t uc = utf16_comment("exif text", 1, 0);
    buf_t t = make_tiff(1, uc.d, uc.n);
    png_insert(&png, 33, "eXIf", t.d, t.n);
    read_ok(&png, "exif text", NULL); /* EXIF UserComment wins over parameters */
    hammer(&png);
    buf_t j = jpeg_with_exif(&t);
    read_ok(&j, "exif text", NULL);
    hammer(&j);
    buf_t w = webp_with_exif(&t, 0);
    read_ok(&w, "exif text", NULL);
    hammer(&w);

    /* a zTXt bomb is refused within the budget, not inflated without end */
    size_t big = 17u << 20;
    char *zeros = calloc(1, big + 1);
    memset(zeros, 'a', big);
    buf_t bomb = zdeflate(zeros);
    free(zeros);
    buf_t bz = {0};
    buf_put(&bz, "bomb\0\0", 6);
    buf_put(&bz, bomb.d, bomb.n);
    for (int k = 0; k < 6; k++) png_insert(&png, 33, "zTXt", bz.d, bz.n);
    char *info = NULL;
    json_t *it = NULL;
    int rc = tinf_read_image(png.d, png.n, &info, &it);
    assert_int_equal(rc, -1); /* 4 x 16 MiB spend the 64 MiB budget, the 5th is refused */
    free(info);
    json_decref(it);

    free(bomb.d);
    free(bz.d);
    free(z.d);
    free(ztxt.d);
    free(uc.d);
    free(t.d);
    free(png.d);
    free(j.d);
    free(w.d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_fmt_float),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_parse_doc_example),
        cmocka_unit_test(test_parse_cases),
        cmocka_unit_test(test_parse_golden),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_read_png),
        cmocka_unit_test(test_read_jpeg),
        cmocka_unit_test(test_read_webp),
        cmocka_unit_test(test_hostile_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
