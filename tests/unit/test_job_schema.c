/* test_job_schema.c - validation of submitted jobs (proto/job_schema.c,
 * proto/job_extras.c): what is accepted becomes the canonical spec the worker
 * reads; everything else is refused with the right status and field name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base64.h"
#include "image_io.h"
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *png_b64(int w, int h, int channels) {
    ti_image img;
    char err[256];
    assert_int_equal(ti_image_alloc(&img, w, h, channels, err, sizeof err), 0);
    for (size_t i = 0; i < (size_t)w * h * channels; i++) img.pixels[i] = (uint8_t)(i * 31);
    uint8_t *png;
    size_t len;
    assert_int_equal(ti_encode_png(&img, NULL, 0, 1, &png, &len, err, sizeof err), 0);
    ti_image_free(&img);
    char *b64;
    size_t blen;
    assert_int_equal(tb64_encode(png, len, &b64, &blen, err, sizeof err), 0);
    free(png);
    return b64;
}

/* Validate text (with IMAGE replaced by a 40x30 PNG); returns rc, fills err/out. */
static int check(const char *text, const tjob_limits *lim, tjob_submission *out, tjob_error *err) {
    char *img = png_b64(40, 30, 3);
    size_t n = strlen(text) + strlen(img) + 1;
    char *body = malloc(n);
    const char *at = strstr(text, "IMAGE");
    if (at)
        snprintf(body, n, "%.*s%s%s", (int)(at - text), text, img, at + 5);
    else
        snprintf(body, n, "%s", text);
    free(img);
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    free(body);
    assert_non_null(j);
    tjob_limits def;
    tjob_limits_default(&def);
    int rc = tjob_validate(j, lim ? lim : &def, out, err);
    json_decref(j);
    return rc;
}

static void expect_error(const char *text, int status, const char *field) {
    tjob_submission s;
    tjob_error e;
    int rc = check(text, NULL, &s, &e);
    if (rc == 0) {
        fprintf(stderr, "accepted: %s\n", text);
        tjob_submission_free(&s);
    }
    assert_int_equal(rc, -1);
    if (e.http_status != status || strcmp(e.field, field))
        fprintf(stderr, "%s -> %d %s %s\n", text, e.http_status, e.field, e.message);
    assert_int_equal(e.http_status, status);
    assert_string_equal(e.field, field);
    assert_true(strlen(e.message) > 0);
}

static json_t *spec_of(const char *text, tjob_submission *s) {
    tjob_error e;
    int rc = check(text, NULL, s, &e);
    if (rc) fprintf(stderr, "refused: %s: %s (%s)\n", text, e.message, e.field);
    assert_int_equal(rc, 0);
    json_t *j = json_loads(s->spec_json, 0, NULL);
    assert_non_null(j);
    return j;
}

static int out_w(json_t *j) { return (int)json_integer_value(json_object_get(json_object_get(j, "output"), "width")); }
static int out_h(json_t *j) { return (int)json_integer_value(json_object_get(json_object_get(j, "output"), "height")); }

static void test_extras_defaults(void **st) {
    (void)st;
    tjob_submission s;
    json_t *j = spec_of("{\"type\":\"extras\",\"image\":\"IMAGE\"}", &s);
    assert_string_equal(json_string_value(json_object_get(j, "upscaler")), "Lanczos");
    assert_int_equal(out_w(j), 80); /* default resize 2, as A1111 */
    assert_int_equal(out_h(j), 60);
    assert_string_equal(s.pool, "default");
    assert_int_equal(s.priority, 1);
    assert_non_null(s.input);
    assert_int_equal(ti_detect(s.input, s.input_len), TI_FMT_PNG);
    assert_null(s.webhook_json);
    json_decref(j);
    tjob_submission_free(&s);
}

static void test_extras_sizes(void **st) {
    (void)st;
    tjob_submission s;
    json_t *j = spec_of("{\"type\":\"extras\",\"image\":\"IMAGE\",\"resize\":2.5,\"upscaler\":\"nearest\"}", &s);
    assert_int_equal(out_w(j), 100);
    assert_int_equal(out_h(j), 75);
    assert_string_equal(json_string_value(json_object_get(j, "upscaler")), "Nearest");
    json_decref(j);
    tjob_submission_free(&s);
    /* width only keeps the aspect ratio */
    j = spec_of("{\"type\":\"extras\",\"image\":\"IMAGE\",\"width\":120}", &s);
    assert_int_equal(out_w(j), 120);
    assert_int_equal(out_h(j), 90);
    json_decref(j);
    tjob_submission_free(&s);
    /* both: cover then centre-crop (A1111 upscaling_crop) */
    j = spec_of("{\"type\":\"extras\",\"image\":\"IMAGE\",\"width\":100,\"height\":100}", &s);
    assert_int_equal(out_w(j), 100);
    assert_int_equal(out_h(j), 100);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "scaled"), "width")), 133);
    json_decref(j);
    tjob_submission_free(&s);
    /* crop false: the scaled image as is */
    j = spec_of("{\"type\":\"extras\",\"image\":\"IMAGE\",\"width\":100,\"height\":100,\"crop\":false}", &s);
    assert_int_equal(out_w(j), 133);
    assert_int_equal(out_h(j), 100);
    json_decref(j);
    tjob_submission_free(&s);
}

static void test_common_fields(void **st) {
    (void)st;
    tjob_submission s;
    json_t *j = spec_of("{\"type\":\"extras\",\"image\":\"IMAGE\",\"priority\":\"high\",\"metadata\":{\"a\":[1,2]},"
                        "\"webhook\":{\"url\":\"https://example.com/hook\",\"secret\":\"s3cret\"}}",
                        &s);
    assert_int_equal(s.priority, 0);
    assert_string_equal(s.metadata_json, "{\"a\":[1,2]}");
    json_t *w = json_loads(s.webhook_json, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(w, "events")), 3);
    assert_string_equal(json_string_value(json_object_get(w, "secret")), "s3cret");
    json_decref(w);
    json_decref(j);
    tjob_submission_free(&s);
}

static void test_refusals(void **st) {
    (void)st;
    expect_error("[1,2]", 400, "");
    expect_error("{}", 422, "type");
    expect_error("{\"type\":7}", 422, "type");
    expect_error("{\"type\":\"txt3img\"}", 422, "type");
    expect_error("{\"type\":\"extras\"}", 422, "image");
    expect_error("{\"type\":\"extras\",\"image\":5}", 422, "image");
    expect_error("{\"type\":\"extras\",\"image\":\"!!!notbase64\"}", 422, "image");
    expect_error("{\"type\":\"extras\",\"image\":\"aGVsbG8gd29ybGQ=\"}", 422, "image");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"upscalr\":\"Lanczos\"}", 422, "upscalr");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"upscaler\":\"ESRGAN_9x\"}", 422, "upscaler");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"resize\":0}", 422, "resize");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"resize\":-1}", 422, "resize");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"resize\":\"2\"}", 422, "resize");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"resize\":2,\"width\":10}", 422, "resize");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"width\":0}", 422, "width");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"height\":1.5}", 422, "height");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"width\":100000}", 422, "width");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"resize\":16.5}", 422, "resize");
}

static void test_refusals2(void **st) {
    (void)st;
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"crop\":1}", 422, "crop");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"priority\":\"urgent\"}", 422, "priority");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"pool\":\"gpu-80g\"}", 422, "pool");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"pool\":\"a b\"}", 422, "pool");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"metadata\":[1]}", 422, "metadata");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"webhook\":\"http://x\"}", 422, "webhook");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"webhook\":{\"url\":\"ftp://x/\"}}", 422, "webhook.url");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"webhook\":{\"url\":\"http://x/\",\"events\":[\"done\"]}}",
                 422, "webhook.events");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"webhook\":{\"url\":\"http://x/\",\"secret\":\"\"}}", 422,
                 "webhook.secret");
    expect_error("{\"type\":\"extras\",\"image\":\"IMAGE\",\"webhook\":{\"url\":\"http://x/\",\"extra\":1}}", 422,
                 "webhook.extra");
}

static void test_limits(void **st) {
    (void)st;
    tjob_limits lim;
    tjob_limits_default(&lim);
    lim.max_pixels = 100 * 100;
    lim.pools = "default,gpu-24g";
    tjob_submission s;
    tjob_error e;
    assert_int_equal(check("{\"type\":\"extras\",\"image\":\"IMAGE\",\"resize\":4}", &lim, &s, &e), -1);
    assert_int_equal(e.http_status, 422);
    assert_string_equal(e.field, "resize");
    assert_int_equal(check("{\"type\":\"extras\",\"image\":\"IMAGE\",\"pool\":\"gpu-24g\"}", &lim, &s, &e), 0);
    assert_string_equal(s.pool, "gpu-24g");
    tjob_submission_free(&s);
    lim.max_metadata_bytes = 10;
    assert_int_equal(check("{\"type\":\"extras\",\"image\":\"IMAGE\",\"metadata\":{\"abc\":\"defghijk\"}}", &lim, &s, &e),
                     -1);
    assert_string_equal(e.field, "metadata");
    lim.max_width = 30;
    assert_int_equal(check("{\"type\":\"extras\",\"image\":\"IMAGE\",\"resize\":0.5}", &lim, &s, &e), -1);
    assert_string_equal(e.field, "image"); /* the 40-pixel-wide input itself is over the limit */
}

/* Every strict prefix of a PNG, and a PNG with a damaged byte anywhere in its
 * data, is refused at submission; the whole file passes. */
static void test_incomplete_images(void **st) {
    (void)st;
    ti_image img;
    char err[256];
    assert_int_equal(ti_image_alloc(&img, 33, 17, 4, err, sizeof err), 0);
    for (size_t i = 0; i < (size_t)33 * 17 * 4; i++) img.pixels[i] = (uint8_t)(i * 131 + (i >> 7));
    uint8_t *png;
    size_t len;
    assert_int_equal(ti_encode_png(&img, NULL, 0, 6, &png, &len, err, sizeof err), 0);
    ti_image_free(&img);
    assert_int_equal(ti_check_complete(png, len, err, sizeof err), 0);
    for (size_t n = 0; n < len; n++) assert_int_equal(ti_check_complete(png, n, err, sizeof err), -1);
    for (size_t i = 8; i < len; i++) {
        png[i] ^= 0x10;
        assert_int_equal(ti_check_complete(png, len, err, sizeof err), -1);
        png[i] ^= 0x10;
    }
    /* through the validator: a cut-off upload names the image field */
    char *b64;
    size_t blen;
    assert_int_equal(tb64_encode(png, len - 20, &b64, &blen, err, sizeof err), 0);
    char body[16384];
    snprintf(body, sizeof body, "{\"type\":\"extras\",\"image\":\"%s\"}", b64);
    free(b64);
    free(png);
    expect_error(body, 422, "image");
}

static void test_ids(void **st) {
    (void)st;
    char a[TJOB_ID_LEN + 1], b[TJOB_ID_LEN + 1];
    assert_int_equal(tjob_new_id(a), 0);
    assert_int_equal(tjob_new_id(b), 0);
    assert_true(tjob_is_valid_id(a));
    assert_string_not_equal(a, b);
    assert_false(tjob_is_valid_id("../../etc/passwd"));
    assert_false(tjob_is_valid_id(""));
    assert_false(tjob_is_valid_id("0123456789ABCDEF01234567"));
    tjob_state s;
    assert_int_equal(tjob_state_from_name("canceled", &s), 0);
    assert_string_equal(tjob_state_name(s), "canceled");
    assert_int_equal(tjob_state_from_name("done", &s), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extras_defaults), cmocka_unit_test(test_extras_sizes),
        cmocka_unit_test(test_common_fields),   cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refusals2),       cmocka_unit_test(test_limits),
        cmocka_unit_test(test_incomplete_images), cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
