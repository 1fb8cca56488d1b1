/* test_job_sd.c - validation of the Stable Diffusion jobs (proto/job_sd.c,
 * docs/jobs-sd.md) and the input blob (proto/job_inputs.c): defaults and
 * resolved names in the canonical spec, random seeds drawn and stored, every
 * field's refusal with 422 and its name, images decoded/probed/checked, and
 * the packed inputs round trip and refuse every malformed blob. */
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

/* ---- helpers ---------------------------------------------------------------- */

static uint8_t *png_bytes(int w, int h, int channels, size_t *len) {
    ti_image img;
    char err[256];
    assert_int_equal(ti_image_alloc(&img, w, h, channels, err, sizeof err), 0);
    for (size_t i = 0; i < (size_t)w * h * channels; i++) img.pixels[i] = (uint8_t)(i * 31 + (i >> 5));
    uint8_t *png;
    assert_int_equal(ti_encode_png(&img, NULL, 0, 1, &png, len, err, sizeof err), 0);
    ti_image_free(&img);
    return png;
}

static char *b64_of(const uint8_t *buf, size_t len) {
    char *b64;
    size_t blen;
    char err[128];
    assert_int_equal(tb64_encode(buf, len, &b64, &blen, err, sizeof err), 0);
    return b64;
}

static char *png_b64(int w, int h, int channels) {
    size_t len;
    uint8_t *png = png_bytes(w, h, channels, &len);
    char *b = b64_of(png, len);
    free(png);
    return b;
}

static json_t *parse(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) fprintf(stderr, "bad test JSON: %s: %s\n", text, je.text);
    assert_non_null(j);
    return j;
}

/* The body text with "image"/"mask" set to PNGs of the given sizes (0 = none). */
static json_t *body_with(const char *text, int iw, int ih, int mw, int mh) {
    json_t *j = parse(text);
    if (iw) {
        char *b = png_b64(iw, ih, 3);
        json_object_set_new(j, "image", json_string(b));
        free(b);
    }
    if (mw) {
        char *b = png_b64(mw, mh, 4);
        json_object_set_new(j, "mask", json_string(b));
        free(b);
    }
    return j;
}

static int run(const json_t *body, const tjob_limits *lim, tjob_submission *s, tjob_error *e) {
    tjob_limits def;
    tjob_limits_default(&def);
    return tjob_validate(body, lim ? lim : &def, s, e);
}

static void expect_error_j(json_t *body, const tjob_limits *lim, int status, const char *field) {
    tjob_submission s;
    tjob_error e;
    int rc = run(body, lim, &s, &e);
    if (rc == 0) {
        char *t = json_dumps(body, JSON_COMPACT);
        fprintf(stderr, "accepted: %.300s\n", t);
        free(t);
        tjob_submission_free(&s);
    } else if (e.http_status != status || strcmp(e.field, field)) {
        char *t = json_dumps(body, JSON_COMPACT);
        fprintf(stderr, "%.300s -> %d '%s' %s\n", t, e.http_status, e.field, e.message);
        free(t);
    }
    assert_int_equal(rc, -1);
    assert_int_equal(e.http_status, status);
    assert_string_equal(e.field, field);
    assert_true(strlen(e.message) > 0);
    json_decref(body);
}

static void expect_error(const char *text, int status, const char *field) {
    expect_error_j(parse(text), NULL, status, field);
}

static json_t *spec_j(json_t *body, const tjob_limits *lim, tjob_submission *s) {
    tjob_error e;
    int rc = run(body, lim, s, &e);
    if (rc) {
        char *t = json_dumps(body, JSON_COMPACT);
        fprintf(stderr, "refused: %.300s: %s (%s)\n", t, e.message, e.field);
        free(t);
    }
    json_decref(body);
    assert_int_equal(rc, 0);
    json_t *j = json_loads(s->spec_json, 0, NULL);
    assert_non_null(j);
    return j;
}

static json_t *spec_of(const char *text) {
    tjob_submission s;
    json_t *j = spec_j(parse(text), NULL, &s);
    assert_null(s.input);
    tjob_submission_free(&s);
    return j;
}

static long long iget(const json_t *j, const char *k) {
    const json_t *v = json_object_get(j, k);
    if (!json_is_integer(v)) fprintf(stderr, "%s is not an integer\n", k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static double nget(const json_t *j, const char *k) {
    const json_t *v = json_object_get(j, k);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static const char *sget(const json_t *j, const char *k) {
    const json_t *v = json_object_get(j, k);
    if (!json_is_string(v)) fprintf(stderr, "%s is not a string\n", k);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* ---- txt2img ------------------------------------------------------------------- */

static void test_txt2img_hires(void **st) {
    (void)st;
    /* off: hr fields are ignored as A1111 ignores them */
    json_t *j = spec_of("{\"type\":\"txt2img\",\"hr_scale\":3,\"denoising_strength\":0.5}");
    assert_null(json_object_get(j, "hires"));
    json_decref(j);
    j = spec_of("{\"type\":\"txt2img\",\"width\":64,\"height\":48,\"enable_hr\":true,\"hr_upscaler\":\"latent (bicubic)\","
                "\"hr_sampler_name\":\"DPM++ 2M Karras\",\"hr_second_pass_steps\":5,\"hr_prompt\":\"x\"}");
    json_t *h = json_object_get(j, "hires");
    assert_non_null(h);
    assert_true(nget(h, "scale") == 2.0);
    assert_true(nget(h, "denoising_strength") == 0.7);
    assert_int_equal(iget(h, "steps"), 5);
    assert_string_equal(sget(h, "upscaler"), "Latent (bicubic)");
    assert_string_equal(sget(h, "sampler_name"), "DPM++ 2M");
    assert_string_equal(sget(h, "scheduler"), "Automatic");
    assert_string_equal(sget(h, "prompt"), "x");
    json_decref(j);
    j = spec_of("{\"type\":\"txt2img\",\"enable_hr\":true,\"hr_upscaler\":\"R-ESRGAN 4x+\",\"hr_resize_x\":1024}");
    assert_string_equal(sget(json_object_get(j, "hires"), "upscaler"), "R-ESRGAN 4x+");
    assert_true(json_is_null(json_object_get(json_object_get(j, "hires"), "sampler_name")));
    json_decref(j);
}

static void test_txt2img_defaults(void **st) {
    (void)st;
    tjob_limits l;
    tjob_limits_default(&l);
    assert_int_equal(l.max_images, 64);
    assert_int_equal(l.max_steps, 150);

    tjob_submission s;
    json_t *j = spec_j(parse("{\"type\":\"txt2img\"}"), NULL, &s);
    assert_string_equal(s.type, "txt2img");
    assert_null(s.input);
    assert_int_equal(s.input_len, 0);
    /* compact, sorted keys */
    static const char head[] = "{\"batch_size\":1,\"cfg_scale\":7.0,\"clip_skip\":1,\"emphasis\":\"Original\",";
    assert_memory_equal(s.spec_json, head, strlen(head));
    assert_null(strstr(s.spec_json, "\": "));
    assert_null(strstr(s.spec_json, ", \""));
    tjob_submission_free(&s);

    static const char *const keys[] = {
        "type", "prompt", "negative_prompt", "seed", "subseed", "subseed_strength", "seed_resize_from_w",
        "seed_resize_from_h", "sampler_name", "scheduler", "steps", "cfg_scale", "width", "height", "batch_size",
        "n_iter", "images", "eta", "s_churn", "s_tmin", "s_tmax", "s_noise", "clip_skip", "model", "vae", "rng",
        "ensd", "emphasis", "preview_every", NULL};
    size_t n = 0;
    for (; keys[n]; n++) {
        if (!json_object_get(j, keys[n])) fprintf(stderr, "missing %s\n", keys[n]);
        assert_non_null(json_object_get(j, keys[n]));
    }
    assert_int_equal(json_object_size(j), n);
    assert_string_equal(sget(j, "type"), "txt2img");
    assert_string_equal(sget(j, "prompt"), "");
    assert_string_equal(sget(j, "negative_prompt"), "");
    assert_true(iget(j, "seed") >= 0 && iget(j, "seed") < 4294967294LL);
    assert_true(iget(j, "subseed") >= 0 && iget(j, "subseed") < 4294967294LL);
    assert_true(nget(j, "subseed_strength") == 0);
    assert_int_equal(iget(j, "seed_resize_from_w"), 0);
    assert_int_equal(iget(j, "seed_resize_from_h"), 0);
    assert_string_equal(sget(j, "sampler_name"), "DPM++ 2M");
    assert_string_equal(sget(j, "scheduler"), "Automatic");
    assert_int_equal(iget(j, "steps"), 20);
    assert_true(nget(j, "cfg_scale") == 7);
    assert_int_equal(iget(j, "width"), 512);
    assert_int_equal(iget(j, "height"), 512);
    assert_int_equal(iget(j, "batch_size"), 1);
    assert_int_equal(iget(j, "n_iter"), 1);
    assert_int_equal(iget(j, "images"), 1);
    assert_true(json_is_null(json_object_get(j, "eta")));
    assert_true(nget(j, "s_churn") == 0 && nget(j, "s_tmin") == 0 && nget(j, "s_tmax") == 0);
    assert_true(nget(j, "s_noise") == 1);
    assert_int_equal(iget(j, "clip_skip"), 1);
    assert_true(json_is_null(json_object_get(j, "model")));
    assert_true(json_is_null(json_object_get(j, "vae")));
    assert_string_equal(sget(j, "rng"), "GPU");
    assert_int_equal(iget(j, "ensd"), 0);
    assert_string_equal(sget(j, "emphasis"), "Original");
    assert_int_equal(iget(j, "preview_every"), 0);
    json_decref(j);
}

static void test_txt2img_values(void **st) {
    (void)st;
    json_t *j = spec_of("{\"type\":\"txt2img\",\"prompt\":\"a cat\",\"negative_prompt\":\"dog\",\"seed\":42,"
                        "\"subseed\":7,\"subseed_strength\":0.25,\"seed_resize_from_w\":640,\"seed_resize_from_h\":-1,"
                        "\"sampler_name\":\"Euler a\",\"scheduler\":\"karras\",\"steps\":150,\"cfg_scale\":4.5,"
                        "\"width\":768,\"height\":64,\"batch_size\":16,\"n_iter\":4,\"eta\":0.5,\"s_churn\":1,"
                        "\"s_tmin\":0.1,\"s_tmax\":10,\"s_noise\":1.003,\"clip_skip\":2,\"model\":\"v1-5.safetensors\","
                        "\"vae\":\"none\",\"rng\":\"cpu\",\"ensd\":31337,\"emphasis\":\"no norm\",\"preview_every\":5,"
                        "\"enable_hr\":false,\"hr_scale\":null,\"priority\":\"low\"}");
    assert_string_equal(sget(j, "prompt"), "a cat");
    assert_string_equal(sget(j, "negative_prompt"), "dog");
    assert_int_equal(iget(j, "seed"), 42);
    assert_int_equal(iget(j, "subseed"), 7);
    assert_true(nget(j, "subseed_strength") == 0.25);
    assert_int_equal(iget(j, "seed_resize_from_w"), 640);
    assert_int_equal(iget(j, "seed_resize_from_h"), 0);
    assert_string_equal(sget(j, "sampler_name"), "Euler a");
    assert_string_equal(sget(j, "scheduler"), "Karras");
    assert_int_equal(iget(j, "steps"), 150);
    assert_true(nget(j, "cfg_scale") == 4.5);
    assert_int_equal(iget(j, "width"), 768);
    assert_int_equal(iget(j, "height"), 64);
    assert_int_equal(iget(j, "images"), 64);
    assert_true(nget(j, "eta") == 0.5);
    assert_true(nget(j, "s_noise") == 1.003);
    assert_int_equal(iget(j, "clip_skip"), 2);
    assert_string_equal(sget(j, "model"), "v1-5.safetensors");
    assert_string_equal(sget(j, "vae"), "None");
    assert_string_equal(sget(j, "rng"), "CPU");
    assert_int_equal(iget(j, "ensd"), 31337);
    assert_string_equal(sget(j, "emphasis"), "No norm");
    assert_int_equal(iget(j, "preview_every"), 5);
    assert_null(json_object_get(j, "enable_hr"));
    assert_null(json_object_get(j, "priority"));
    json_decref(j);

    j = spec_of("{\"type\":\"txt2img\",\"vae\":\"AUTOMATIC\",\"model\":\"\",\"rng\":\"NV\",\"eta\":0,"
                "\"seed\":4294967295,\"subseed\":0}");
    assert_true(json_is_null(json_object_get(j, "vae")));
    assert_true(json_is_null(json_object_get(j, "model")));
    assert_string_equal(sget(j, "rng"), "NV");
    assert_true(nget(j, "eta") == 0);
    assert_int_equal(iget(j, "seed"), 4294967295LL);
    assert_int_equal(iget(j, "subseed"), 0);
    json_decref(j);
    j = spec_of("{\"type\":\"txt2img\",\"vae\":\"sd-vae-ft-mse.safetensors\",\"prompt\":null,\"steps\":null}");
    assert_string_equal(sget(j, "vae"), "sd-vae-ft-mse.safetensors");
    assert_string_equal(sget(j, "prompt"), "");
    assert_int_equal(iget(j, "steps"), 20);
    json_decref(j);
}

/* Legacy and alias sampler names resolve to (A1111 name, scheduler label). */
static void test_sampler_names(void **st) {
    (void)st;
    static const struct {
        const char *sampler, *scheduler, *want_sampler, *want_scheduler;
    } cases[] = {
        {"DPM++ 2M Karras", NULL, "DPM++ 2M", "Automatic"}, /* karras is DPM++ 2M's own default */
        {"DPM++ 2M", "Karras", "DPM++ 2M", "Automatic"},
        {"DPM++ 2M", "Exponential", "DPM++ 2M", "Exponential"},
        {"LMS Karras", NULL, "LMS", "Karras"},
        {"Euler", "karras", "Euler", "Karras"},
        {"k_euler_a", NULL, "Euler a", "Automatic"},
        {"k_dpmpp_2m_ka", NULL, "DPM++ 2M", "Automatic"},
        {"k_lms_ka", NULL, "LMS", "Karras"},
        {"euler a", NULL, "Euler a", "Automatic"},
        {"DPM++ 2M SDE Exponential", NULL, "DPM++ 2M SDE", "Automatic"},
        {"DPM++ SDE Karras", "Uniform", "DPM++ SDE", "Automatic"}, /* the suffix wins */
        {"Euler", "SGMUniform", "Euler", "SGM Uniform"},
        {"DDIM", "automatic", "DDIM", "Automatic"},
        {"", NULL, "DPM++ 2M", "Automatic"},
        {"UniPC", NULL, "UniPC", "Automatic"}, /* txt2img only, 3+ steps (default 20) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *b = json_pack("{s:s, s:s}", "type", "txt2img", "sampler_name", cases[i].sampler);
        if (cases[i].scheduler) json_object_set_new(b, "scheduler", json_string(cases[i].scheduler));
        tjob_submission s;
        json_t *j = spec_j(b, NULL, &s);
        if (strcmp(sget(j, "sampler_name"), cases[i].want_sampler) ||
            strcmp(sget(j, "scheduler"), cases[i].want_scheduler))
            fprintf(stderr, "%s / %s -> %s / %s\n", cases[i].sampler, cases[i].scheduler, sget(j, "sampler_name"),
                    sget(j, "scheduler"));
        assert_string_equal(sget(j, "sampler_name"), cases[i].want_sampler);
        assert_string_equal(sget(j, "scheduler"), cases[i].want_scheduler);
        json_decref(j);
        tjob_submission_free(&s);
    }
    expect_error("{\"type\":\"txt2img\",\"sampler_name\":\"Foo\"}", 422, "sampler_name");
    expect_error("{\"type\":\"txt2img\",\"sampler_name\":\"Euler Foo\"}", 422, "sampler_name");
    expect_error("{\"type\":\"txt2img\",\"sampler_name\":\"UniPC\",\"steps\":2}", 422, "steps");
    expect_error_j(body_with("{\"type\":\"img2img\",\"sampler_name\":\"unipc\"}", 64, 64, 0, 0), NULL, 422,
                   "sampler_name");
    expect_error("{\"type\":\"txt2img\",\"sampler_name\":7}", 422, "sampler_name");
    expect_error("{\"type\":\"txt2img\",\"scheduler\":\"wobbly\"}", 422, "scheduler");
    expect_error("{\"type\":\"txt2img\",\"scheduler\":[]}", 422, "scheduler");
}

/* Random seeds are drawn at submission, in [0, 4294967294), and differ. */
static void test_seed_resolution(void **st) {
    (void)st;
    long long seen[16];
    int distinct = 0;
    for (int i = 0; i < 16; i++) {
        json_t *j = spec_of(i % 2 ? "{\"type\":\"txt2img\",\"seed\":-1,\"subseed\":-7}" : "{\"type\":\"txt2img\"}");
        long long s = iget(j, "seed");
        assert_true(s >= 0 && s < 4294967294LL);
        assert_true(iget(j, "subseed") >= 0 && iget(j, "subseed") < 4294967294LL);
        int dup = 0;
        for (int k = 0; k < distinct; k++) dup |= seen[k] == s;
        if (!dup) seen[distinct++] = s;
        json_decref(j);
    }
    assert_true(distinct >= 14);
    /* the stored spec, submitted again, is the same spec: nothing left to resolve */
    json_t *j = spec_of("{\"type\":\"txt2img\",\"sampler_name\":\"DPM++ 2M Karras\",\"vae\":\"Automatic\"}");
    json_t *again = json_deep_copy(j);
    json_object_del(again, "images");
    tjob_submission s;
    json_t *k = spec_j(again, NULL, &s);
    assert_true(json_equal(j, k));
    tjob_submission_free(&s);
    json_decref(j);
    json_decref(k);
}

static void test_txt2img_refusals(void **st) {
    (void)st;
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"\"prompt\":5", "prompt"},
        {"\"negative_prompt\":[\"a\"]", "negative_prompt"},
        {"\"seed\":1.5", "seed"},
        {"\"seed\":\"123\"", "seed"},
        {"\"seed\":4294967296", "seed"},
        {"\"subseed\":true", "subseed"},
        {"\"subseed_strength\":1.01", "subseed_strength"},
        {"\"subseed_strength\":-0.1", "subseed_strength"},
        {"\"subseed_strength\":\"0.5\"", "subseed_strength"},
        {"\"seed_resize_from_w\":32", "seed_resize_from_w"},
        {"\"seed_resize_from_h\":9000", "seed_resize_from_h"},
        {"\"seed_resize_from_w\":64.5", "seed_resize_from_w"},
        {"\"steps\":0", "steps"},
        {"\"steps\":151", "steps"},
        {"\"steps\":20.5", "steps"},
        {"\"steps\":\"20\"", "steps"},
        {"\"cfg_scale\":-1", "cfg_scale"},
        {"\"cfg_scale\":100.5", "cfg_scale"},
        {"\"cfg_scale\":\"7\"", "cfg_scale"},
        {"\"width\":513", "width"},
        {"\"width\":4", "width"},
        {"\"width\":8200", "width"},
        {"\"height\":0", "height"},
        {"\"height\":512.0", "height"},
        {"\"batch_size\":0", "batch_size"},
        {"\"batch_size\":17", "batch_size"},
        {"\"n_iter\":0", "n_iter"},
        {"\"n_iter\":101", "n_iter"},
        {"\"batch_size\":16,\"n_iter\":5", "n_iter"},
        {"\"batch_size\":2,\"n_iter\":33", "n_iter"},
        {"\"eta\":-0.1", "eta"},
        {"\"eta\":\"1\"", "eta"},
        {"\"s_churn\":-1", "s_churn"},
        {"\"s_tmin\":\"0\"", "s_tmin"},
        {"\"s_tmax\":-2", "s_tmax"},
        {"\"s_noise\":-1", "s_noise"},
        {"\"clip_skip\":0", "clip_skip"},
        {"\"clip_skip\":13", "clip_skip"},
        {"\"model\":5", "model"},
        {"\"vae\":false", "vae"},
        {"\"rng\":\"XPU\"", "rng"},
        {"\"rng\":1", "rng"},
        {"\"ensd\":-1", "ensd"},
        {"\"ensd\":4294967296", "ensd"},
        {"\"emphasis\":\"Strong\"", "emphasis"},
        {"\"preview_every\":-1", "preview_every"},
        {"\"preview_every\":1001", "preview_every"},
        {"\"enable_hr\":\"no\"", "enable_hr"},
        {"\"enable_hr\":true,\"hr_scale\":20", "hr_scale"},
        {"\"enable_hr\":true,\"hr_scale\":0.5", "hr_scale"},
        {"\"enable_hr\":true,\"hr_upscaler\":\"Latent (foo)\"", "hr_upscaler"},
        {"\"enable_hr\":true,\"hr_upscaler\":\"../x\"", "hr_upscaler"},
        {"\"enable_hr\":true,\"hr_checkpoint_name\":\"other\"", "hr_checkpoint_name"},
        {"\"enable_hr\":true,\"hr_sampler_name\":\"Nope\"", "hr_sampler_name"},
        {"\"enable_hr\":true,\"hr_scheduler\":\"Nope\"", "hr_scheduler"},
        {"\"enable_hr\":true,\"firstphase_width\":64", "firstphase_width"},
        {"\"enable_hr\":true,\"hr_resize_x\":100000", "hr_resize_x"},
        {"\"enable_hr\":true,\"denoising_strength\":1.5", "denoising_strength"},
        {"\"image\":\"abc\"", "image"},
        {"\"mask_blur\":4", "mask_blur"},
        {"\"stepz\":20", "stepz"},
        {"\"sampler\":\"Euler\"", "sampler"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "{\"type\":\"txt2img\",%s}", cases[i].body);
        expect_error(text, 422, cases[i].field);
    }
    /* long prompts */
    char *big = malloc((64 << 10) + 2);
    memset(big, 'a', (64 << 10) + 1);
    big[(64 << 10) + 1] = 0;
    expect_error_j(json_pack("{s:s, s:s}", "type", "txt2img", "prompt", big), NULL, 422, "prompt");
    big[64 << 10] = 0;
    tjob_submission s;
    json_t *j = spec_j(json_pack("{s:s, s:s}", "type", "txt2img", "prompt", big), NULL, &s);
    assert_int_equal(strlen(sget(j, "prompt")), 64 << 10);
    json_decref(j);
    tjob_submission_free(&s);
    free(big);
}

static void test_txt2img_limits(void **st) {
    (void)st;
    tjob_limits l;
    tjob_limits_default(&l);
    l.max_steps = 10;
    l.max_images = 4;
    l.max_batch = 2;
    l.max_width = 1024;
    l.max_height = 768;
    l.max_pixels = 512 * 768;
    expect_error_j(parse("{\"type\":\"txt2img\",\"steps\":11}"), &l, 422, "steps");
    expect_error_j(parse("{\"type\":\"txt2img\",\"batch_size\":3}"), &l, 422, "batch_size");
    expect_error_j(parse("{\"type\":\"txt2img\",\"batch_size\":2,\"n_iter\":3}"), &l, 422, "n_iter");
    expect_error_j(parse("{\"type\":\"txt2img\",\"width\":1032}"), &l, 422, "width");
    expect_error_j(parse("{\"type\":\"txt2img\",\"height\":776}"), &l, 422, "height");
    expect_error_j(parse("{\"type\":\"txt2img\",\"width\":1024,\"height\":768}"), &l, 422, "width");
    expect_error_j(parse("{\"type\":\"txt2img\",\"seed_resize_from_w\":1100}"), &l, 422, "seed_resize_from_w");
    tjob_submission s;
    json_t *j = spec_j(parse("{\"type\":\"txt2img\",\"steps\":10,\"batch_size\":2,\"n_iter\":2,\"width\":512,"
                             "\"height\":768}"),
                       &l, &s);
    assert_int_equal(iget(j, "images"), 4);
    json_decref(j);
    tjob_submission_free(&s);
}

static void test_types(void **st) {
    (void)st;
    tjob_submission s;
    tjob_error e;
    json_t *b = parse("{\"type\":\"txt3img\"}");
    assert_int_equal(run(b, NULL, &s, &e), -1);
    json_decref(b);
    assert_string_equal(e.field, "type");
    assert_non_null(strstr(e.message, "txt2img, img2img, inpaint, extras"));
    b = parse("{}");
    assert_int_equal(run(b, NULL, &s, &e), -1);
    json_decref(b);
    assert_non_null(strstr(e.message, "txt2img"));
    expect_error("{\"type\":\"TXT2IMG\"}", 422, "type");
}

/* ---- img2img and inpaint ------------------------------------------------------------ */

static void test_img2img_defaults(void **st) {
    (void)st;
    tjob_submission s;
    json_t *j = spec_j(body_with("{\"type\":\"img2img\",\"prompt\":\"x\"}", 100, 75, 0, 0), NULL, &s);
    assert_string_equal(s.type, "img2img");
    assert_string_equal(sget(j, "type"), "img2img");
    assert_int_equal(iget(j, "width"), 96); /* rounded down to a multiple of 8 */
    assert_int_equal(iget(j, "height"), 72);
    assert_true(nget(j, "denoising_strength") == 0.75);
    assert_int_equal(iget(j, "resize_mode"), 0);
    assert_true(nget(j, "initial_noise_multiplier") == 1.0);
    assert_null(json_object_get(j, "image"));
    assert_null(json_object_get(j, "mask"));
    assert_null(json_object_get(j, "mask_blur_x"));
    json_t *in = json_object_get(j, "input");
    assert_string_equal(sget(in, "format"), "png");
    assert_int_equal(iget(in, "width"), 100);
    assert_int_equal(iget(in, "height"), 75);
    assert_true(json_is_false(json_object_get(in, "alpha")));
    /* the input blob: one image, the decoded PNG */
    const uint8_t *blobs[TJOB_MAX_INPUTS];
    size_t lens[TJOB_MAX_INPUTS];
    assert_int_equal(tjob_inputs_unpack(s.input, s.input_len, blobs, lens, TJOB_MAX_INPUTS), 1);
    size_t plen;
    uint8_t *png = png_bytes(100, 75, 3, &plen);
    assert_int_equal(lens[0], plen);
    assert_memory_equal(blobs[0], png, plen);
    free(png);
    json_decref(j);
    tjob_submission_free(&s);

    /* small images default to 64; sizes given win; per field */
    j = spec_j(body_with("{\"type\":\"img2img\"}", 40, 30, 0, 0), NULL, &s);
    assert_int_equal(iget(j, "width"), 64);
    assert_int_equal(iget(j, "height"), 64);
    json_decref(j);
    tjob_submission_free(&s);
    j = spec_j(body_with("{\"type\":\"img2img\",\"width\":512,\"denoising_strength\":0.3,\"resize_mode\":3,"
                         "\"initial_noise_multiplier\":1.5,\"mask\":null}",
                         200, 130, 0, 0),
               NULL, &s);
    assert_int_equal(iget(j, "width"), 512);
    assert_int_equal(iget(j, "height"), 128);
    assert_true(nget(j, "denoising_strength") == 0.3);
    assert_int_equal(iget(j, "resize_mode"), 3);
    assert_true(nget(j, "initial_noise_multiplier") == 1.5);
    json_decref(j);
    tjob_submission_free(&s);
}

static void check_inpaint_spec(json_t *j, const tjob_submission *s, int w, int h) {
    assert_string_equal(s->type, "inpaint");
    assert_string_equal(sget(j, "type"), "inpaint");
    json_t *m = json_object_get(j, "mask");
    assert_int_equal(iget(m, "width"), w);
    assert_int_equal(iget(m, "height"), h);
    assert_string_equal(sget(m, "format"), "png");
    const uint8_t *blobs[2];
    size_t lens[2];
    assert_int_equal(tjob_inputs_unpack(s->input, s->input_len, blobs, lens, 2), 2);
    assert_int_equal(ti_detect(blobs[0], lens[0]), TI_FMT_PNG);
    assert_int_equal(ti_detect(blobs[1], lens[1]), TI_FMT_PNG);
    assert_true(lens[0] != lens[1] || memcmp(blobs[0], blobs[1], lens[0])); /* image first, then the mask */
}

static void test_inpaint(void **st) {
    (void)st;
    tjob_submission s;
    /* an img2img with a mask is an inpaint, with the inpaint defaults */
    json_t *j = spec_j(body_with("{\"type\":\"img2img\"}", 80, 72, 80, 72), NULL, &s);
    check_inpaint_spec(j, &s, 80, 72);
    assert_int_equal(iget(j, "mask_blur_x"), 4);
    assert_int_equal(iget(j, "mask_blur_y"), 4);
    assert_true(json_is_true(json_object_get(j, "mask_round")));
    assert_int_equal(iget(j, "inpainting_fill"), 1);
    assert_true(json_is_false(json_object_get(j, "inpaint_full_res")));
    assert_int_equal(iget(j, "inpaint_full_res_padding"), 32);
    assert_int_equal(iget(j, "inpainting_mask_invert"), 0);
    assert_null(json_object_get(j, "mask_blur"));
    json_decref(j);
    tjob_submission_free(&s);

    j = spec_j(body_with("{\"type\":\"inpaint\",\"mask_blur\":9,\"mask_blur_x\":1,\"mask_round\":false,"
                         "\"inpainting_fill\":3,\"inpaint_full_res\":true,\"inpaint_full_res_padding\":0,"
                         "\"inpainting_mask_invert\":1}",
                         64, 64, 64, 64),
               NULL, &s);
    check_inpaint_spec(j, &s, 64, 64);
    assert_int_equal(iget(j, "mask_blur_x"), 9); /* mask_blur sets both */
    assert_int_equal(iget(j, "mask_blur_y"), 9);
    assert_true(json_is_false(json_object_get(j, "mask_round")));
    assert_int_equal(iget(j, "inpainting_fill"), 3);
    assert_true(json_is_true(json_object_get(j, "inpaint_full_res")));
    assert_int_equal(iget(j, "inpaint_full_res_padding"), 0);
    assert_int_equal(iget(j, "inpainting_mask_invert"), 1);
    json_decref(j);
    tjob_submission_free(&s);
    j = spec_j(body_with("{\"type\":\"inpaint\",\"mask_blur_x\":0,\"mask_blur_y\":64}", 64, 64, 64, 64), NULL, &s);
    assert_int_equal(iget(j, "mask_blur_x"), 0);
    assert_int_equal(iget(j, "mask_blur_y"), 64);
    json_decref(j);
    tjob_submission_free(&s);
}

static void test_image_refusals(void **st) {
    (void)st;
    expect_error("{\"type\":\"img2img\"}", 422, "image");
    expect_error("{\"type\":\"img2img\",\"image\":null}", 422, "image");
    expect_error("{\"type\":\"img2img\",\"image\":5}", 422, "image");
    expect_error("{\"type\":\"img2img\",\"image\":\"!!!notbase64\"}", 422, "image");
    expect_error("{\"type\":\"img2img\",\"image\":\"aGVsbG8gd29ybGQ=\"}", 422, "image");
    expect_error("{\"type\":\"img2img\",\"image\":\"\"}", 422, "image");
    expect_error("{\"type\":\"img2img\",\"image\":\"data:image/png,abc\"}", 422, "image");
    expect_error_j(body_with("{\"type\":\"inpaint\"}", 64, 64, 0, 0), NULL, 422, "mask");
    expect_error_j(body_with("{\"type\":\"inpaint\",\"mask\":\"\"}", 64, 64, 0, 0), NULL, 422, "mask");
    expect_error_j(body_with("{\"type\":\"inpaint\",\"mask\":7}", 64, 64, 0, 0), NULL, 422, "mask");
    expect_error_j(body_with("{\"type\":\"inpaint\"}", 64, 64, 64, 72), NULL, 422, "mask");
    expect_error_j(body_with("{\"type\":\"img2img\"}", 72, 64, 64, 64), NULL, 422, "mask");
    /* inpaint fields without a mask */
    expect_error_j(body_with("{\"type\":\"img2img\",\"mask_blur\":4}", 64, 64, 0, 0), NULL, 422, "mask_blur");
    expect_error_j(body_with("{\"type\":\"img2img\",\"inpainting_fill\":1}", 64, 64, 0, 0), NULL, 422,
                   "inpainting_fill");
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"\"denoising_strength\":1.5", "denoising_strength"},
        {"\"denoising_strength\":\"0.5\"", "denoising_strength"},
        {"\"resize_mode\":4", "resize_mode"},
        {"\"resize_mode\":-1", "resize_mode"},
        {"\"initial_noise_multiplier\":2.5", "initial_noise_multiplier"},
        {"\"mask_blur\":65", "mask_blur"},
        {"\"mask_blur_x\":-1", "mask_blur_x"},
        {"\"mask_blur_y\":1.5", "mask_blur_y"},
        {"\"mask_round\":1", "mask_round"},
        {"\"inpainting_fill\":4", "inpainting_fill"},
        {"\"inpaint_full_res\":\"true\"", "inpaint_full_res"},
        {"\"inpaint_full_res_padding\":257", "inpaint_full_res_padding"},
        {"\"inpainting_mask_invert\":2", "inpainting_mask_invert"},
        {"\"width\":100", "width"},
        {"\"steps\":0", "steps"},
        {"\"enable_hr\":false", "enable_hr"}, /* not an img2img field at all */
        {"\"init_images\":[]", "init_images"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"type\":\"inpaint\",%s}", cases[i].body);
        expect_error_j(body_with(text, 64, 64, 64, 64), NULL, 422, cases[i].field);
    }
}

/* data: prefix, image limits from the header, every truncation refused. */
static void test_image_bytes(void **st) {
    (void)st;
    size_t len;
    uint8_t *png = png_bytes(64, 48, 4, &len);
    char *b = b64_of(png, len);
    size_t pl = strlen(b) + 64;
    char *pref = malloc(pl);
    snprintf(pref, pl, "data:image/png;base64,%s", b);
    tjob_submission s;
    json_t *j = spec_j(json_pack("{s:s, s:s}", "type", "img2img", "image", pref), NULL, &s);
    assert_true(json_is_true(json_object_get(json_object_get(j, "input"), "alpha")));
    assert_int_equal(iget(j, "width"), 64);
    assert_int_equal(iget(j, "height"), 64); /* 48 is under the 64 minimum */
    json_decref(j);
    tjob_submission_free(&s);
    /* mask with a data: prefix too */
    char *rgb = png_b64(64, 48, 3);
    j = spec_j(json_pack("{s:s, s:s, s:s}", "type", "inpaint", "image", rgb, "mask", pref), NULL, &s);
    free(rgb);
    check_inpaint_spec(j, &s, 64, 48);
    json_decref(j);
    tjob_submission_free(&s);
    free(pref);

    tjob_limits l;
    tjob_limits_default(&l);
    l.max_pixels = 64 * 47;
    expect_error_j(json_pack("{s:s, s:s}", "type", "img2img", "image", b), &l, 422, "image");
    tjob_limits_default(&l);
    l.max_width = 63;
    expect_error_j(json_pack("{s:s, s:s}", "type", "img2img", "image", b), &l, 422, "image");
    tjob_limits_default(&l);
    l.max_input_bytes = (long long)len - 1;
    expect_error_j(json_pack("{s:s, s:s}", "type", "img2img", "image", b), &l, 413, "image");
    tjob_limits_default(&l);
    l.max_input_bytes = (long long)len;
    j = spec_j(json_pack("{s:s, s:s}", "type", "img2img", "image", b), &l, &s);
    json_decref(j);
    tjob_submission_free(&s);
    l.max_input_bytes = 10;
    expect_error_j(json_pack("{s:s, s:s, s:s}", "type", "inpaint", "image", b, "mask", b), &l, 413, "image");
    free(b);

    /* every strict prefix of the PNG: refused naming the field */
    for (size_t n = 0; n < len; n++) {
        char *t = b64_of(png, n);
        expect_error_j(json_pack("{s:s, s:s}", "type", "img2img", "image", t), NULL, 422, "image");
        free(t);
    }
    /* and as a mask */
    char *img = png_b64(64, 48, 3);
    for (size_t n = 0; n < len; n += 7) {
        char *t = b64_of(png, n);
        expect_error_j(json_pack("{s:s, s:s, s:s}", "type", "inpaint", "image", img, "mask", t), NULL, 422, "mask");
        free(t);
    }
    free(img);
    free(png);
}

/* ---- the input blob ---------------------------------------------------------------- */

static void test_inputs_roundtrip(void **st) {
    (void)st;
    const uint8_t a[] = {1, 2, 3, 4, 5}, c[] = {9};
    const uint8_t *in[3] = {a, NULL, c};
    size_t lens[3] = {sizeof a, 0, sizeof c};
    uint8_t *buf;
    size_t len;
    assert_int_equal(tjob_inputs_pack(in, lens, 3, &buf, &len), 0);
    assert_int_equal(len, 8 + 3 * 4 + 5 + 0 + 1);
    assert_memory_equal(buf, "TSIN\x03\x00\x00\x00\x05\x00\x00\x00", 12);
    const uint8_t *out[TJOB_MAX_INPUTS];
    size_t olens[TJOB_MAX_INPUTS];
    assert_int_equal(tjob_inputs_unpack(buf, len, out, olens, TJOB_MAX_INPUTS), 3);
    assert_int_equal(olens[0], 5);
    assert_memory_equal(out[0], a, 5);
    assert_int_equal(olens[1], 0);
    assert_int_equal(olens[2], 1);
    assert_int_equal(out[2][0], 9);
    assert_true(out[0] >= buf && out[2] < buf + len); /* views, no copies */
    /* every truncation and every extension is malformed */
    for (size_t n = 0; n < len; n++) assert_int_equal(tjob_inputs_unpack(buf, n, out, olens, TJOB_MAX_INPUTS), -1);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(tjob_inputs_unpack(longer, len + 1, out, olens, TJOB_MAX_INPUTS), -1);
    free(longer);
    /* room for fewer images than the blob holds */
    assert_int_equal(tjob_inputs_unpack(buf, len, out, olens, 2), -1);
    /* damaged magic, count, and lengths */
    buf[0] = 'X';
    assert_int_equal(tjob_inputs_unpack(buf, len, out, olens, TJOB_MAX_INPUTS), -1);
    buf[0] = 'T';
    buf[4] = 9; /* > TJOB_MAX_INPUTS */
    assert_int_equal(tjob_inputs_unpack(buf, len, out, olens, TJOB_MAX_INPUTS), -1);
    buf[4] = 2;
    assert_int_equal(tjob_inputs_unpack(buf, len, out, olens, TJOB_MAX_INPUTS), -1);
    buf[4] = 3;
    buf[11] = 0x80; /* length 2^31 + 5 */
    assert_int_equal(tjob_inputs_unpack(buf, len, out, olens, TJOB_MAX_INPUTS), -1);
    buf[11] = 0xff;
    buf[8] = buf[9] = buf[10] = 0xff; /* length 2^32 - 1 */
    assert_int_equal(tjob_inputs_unpack(buf, len, out, olens, TJOB_MAX_INPUTS), -1);
    free(buf);
    assert_int_equal(tjob_inputs_unpack(NULL, 0, out, olens, 1), -1);

    /* zero images */
    assert_int_equal(tjob_inputs_pack(NULL, NULL, 0, &buf, &len), 0);
    assert_int_equal(len, 8);
    assert_int_equal(tjob_inputs_unpack(buf, len, NULL, NULL, 0), 0);
    free(buf);
    /* the maximum, and one more */
    const uint8_t *many[TJOB_MAX_INPUTS + 1];
    size_t mlens[TJOB_MAX_INPUTS + 1];
    for (int i = 0; i <= TJOB_MAX_INPUTS; i++) {
        many[i] = a;
        mlens[i] = (size_t)(i % 5);
    }
    assert_int_equal(tjob_inputs_pack(many, mlens, TJOB_MAX_INPUTS, &buf, &len), 0);
    assert_int_equal(tjob_inputs_unpack(buf, len, out, olens, TJOB_MAX_INPUTS), TJOB_MAX_INPUTS);
    for (int i = 0; i < TJOB_MAX_INPUTS; i++) assert_int_equal(olens[i], (size_t)(i % 5));
    free(buf);
    assert_int_equal(tjob_inputs_pack(many, mlens, TJOB_MAX_INPUTS + 1, &buf, &len), -1);
    assert_int_equal(tjob_inputs_pack(many, mlens, -1, &buf, &len), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt2img_defaults), cmocka_unit_test(test_txt2img_values),
        cmocka_unit_test(test_sampler_names),    cmocka_unit_test(test_seed_resolution),
        cmocka_unit_test(test_txt2img_refusals),
        cmocka_unit_test(test_txt2img_hires), cmocka_unit_test(test_txt2img_limits),
        cmocka_unit_test(test_types),            cmocka_unit_test(test_img2img_defaults),
        cmocka_unit_test(test_inpaint),          cmocka_unit_test(test_image_refusals),
        cmocka_unit_test(test_image_bytes),      cmocka_unit_test(test_inputs_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
