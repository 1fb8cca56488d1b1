/* test_a1111.c - the A1111 /sdapi/v1 layer (proto/a1111.c): requests as
 * webuiapi and other clients send them become native bodies that pass
 * tjob_validate with A1111's API defaults; unsupported features are refused
 * only at non-default values; errors have A1111's shape and statuses; the
 * response has A1111's keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "a1111.h"
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
    for (size_t i = 0; i < (size_t)w * h * channels; i++) img.pixels[i] = (uint8_t)(i * 13 + channels);
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

static json_t *parse(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) fprintf(stderr, "bad test JSON: %s: %s\n", text, je.text);
    assert_non_null(j);
    return j;
}

typedef enum { TXT2IMG, IMG2IMG, EXTRAS } kind;

/* Convert (kind) and check success; returns the native body. */
static json_t *convert(kind k, const json_t *req, const json_t *options) {
    json_t *opts = options ? NULL : ta1_default_options();
    json_t *job = NULL;
    ta1_error e;
    int rc = k == TXT2IMG   ? ta1_txt2img_to_job(req, options ? options : opts, &job, &e)
             : k == IMG2IMG ? ta1_img2img_to_job(req, options ? options : opts, &job, &e)
                            : ta1_extras_to_job(req, &job, &e);
    json_decref(opts);
    if (rc) fprintf(stderr, "conversion refused: %d %s %s\n", e.http_status, e.error, e.detail);
    assert_int_equal(rc, 0);
    assert_non_null(job);
    return job;
}

/* The native body through tjob_validate: the canonical spec (and s). */
static json_t *validate(const json_t *job, tjob_submission *s) {
    tjob_limits l;
    tjob_limits_default(&l);
    tjob_error e;
    int rc = tjob_validate(job, &l, s, &e);
    if (rc) fprintf(stderr, "native refused: %s (%s)\n", e.message, e.field);
    assert_int_equal(rc, 0);
    json_t *j = json_loads(s->spec_json, 0, NULL);
    assert_non_null(j);
    return j;
}

static void expect_refusal(kind k, const char *text, int status, const char *cls, const char *detail_part) {
    json_t *req = parse(text);
    json_t *opts = ta1_default_options();
    json_t *job = (json_t *)1;
    ta1_error e;
    int rc = k == TXT2IMG   ? ta1_txt2img_to_job(req, opts, &job, &e)
             : k == IMG2IMG ? ta1_img2img_to_job(req, opts, &job, &e)
                            : ta1_extras_to_job(req, &job, &e);
    json_decref(opts);
    json_decref(req);
    if (rc == 0) {
        fprintf(stderr, "accepted: %s\n", text);
        json_decref(job);
    } else if (e.http_status != status || strcmp(e.error, cls) || !strstr(e.detail, detail_part))
        fprintf(stderr, "%s -> %d %s '%s'\n", text, e.http_status, e.error, e.detail);
    assert_int_equal(rc, -1);
    assert_null(job);
    assert_int_equal(e.http_status, status);
    assert_string_equal(e.error, cls);
    assert_non_null(strstr(e.detail, detail_part));
}

static long long iget(const json_t *j, const char *k) {
    const json_t *v = json_object_get(j, k);
    if (!json_is_integer(v)) fprintf(stderr, "%s is not an integer\n", k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static double nget(const json_t *j, const char *k) {
    const json_t *v = json_object_get(j, k);
    if (!json_is_number(v)) fprintf(stderr, "%s is not a number\n", k);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static const char *sget(const json_t *j, const char *k) {
    const json_t *v = json_object_get(j, k);
    if (!json_is_string(v)) fprintf(stderr, "%s is not a string\n", k);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* ---- txt2img ------------------------------------------------------------------------ */

/* An empty request gets A1111's API defaults, not the native (UI) ones. */
static void test_txt2img_api_defaults(void **st) {
    (void)st;
    json_t *req = parse("{}");
    json_t *job = convert(TXT2IMG, req, NULL);
    assert_string_equal(sget(job, "type"), "txt2img");
    assert_int_equal(iget(job, "steps"), 50);
    assert_string_equal(sget(job, "sampler_name"), "Euler");
    assert_int_equal(iget(job, "width"), 512);
    assert_int_equal(iget(job, "seed"), -1);
    tjob_submission s;
    json_t *spec = validate(job, &s);
    assert_int_equal(iget(spec, "steps"), 50);
    assert_string_equal(sget(spec, "sampler_name"), "Euler");
    assert_string_equal(sget(spec, "scheduler"), "Automatic");
    assert_true(nget(spec, "cfg_scale") == 7);
    assert_int_equal(iget(spec, "width"), 512);
    assert_int_equal(iget(spec, "height"), 512);
    assert_int_equal(iget(spec, "seed_resize_from_w"), 0);
    assert_true(iget(spec, "seed") >= 0 && iget(spec, "seed") < 4294967294LL);
    assert_true(json_is_null(json_object_get(spec, "model")));
    assert_true(json_is_null(json_object_get(spec, "vae")));
    assert_true(json_is_null(json_object_get(spec, "eta")));
    assert_string_equal(sget(spec, "rng"), "GPU");
    assert_int_equal(iget(spec, "clip_skip"), 1);
    assert_null(s.metadata_json);
    json_decref(spec);
    tjob_submission_free(&s);
    json_decref(job);
    json_decref(req);
}

/* What webuiapi's WebUIApi.txt2img() posts, with override_settings. */
static void test_txt2img_webuiapi(void **st) {
    (void)st;
    json_t *req = parse(
        "{\"enable_hr\":false,\"denoising_strength\":0.7,\"firstphase_width\":0,\"firstphase_height\":0,"
        "\"hr_scale\":2,\"hr_upscaler\":\"Latent\",\"hr_second_pass_steps\":0,\"hr_resize_x\":0,\"hr_resize_y\":0,"
        "\"hr_checkpoint_name\":null,\"hr_sampler_name\":null,\"hr_prompt\":\"\",\"hr_negative_prompt\":\"\","
        "\"prompt\":\"a castle\",\"styles\":[],\"seed\":1234,\"subseed\":-1,\"subseed_strength\":0.0,"
        "\"seed_resize_from_h\":0,\"seed_resize_from_w\":0,\"sampler_name\":\"DPM++ 2M Karras\",\"batch_size\":2,"
        "\"n_iter\":3,\"steps\":25,\"cfg_scale\":6.5,\"width\":768,\"height\":512,\"restore_faces\":false,"
        "\"tiling\":false,\"do_not_save_samples\":false,\"do_not_save_grid\":false,\"negative_prompt\":\"blurry\","
        "\"eta\":1.0,\"s_churn\":0,\"s_tmax\":0,\"s_tmin\":0,\"s_noise\":1,"
        "\"override_settings\":{\"sd_model_checkpoint\":\"v1-5-pruned-emaonly.safetensors [6ce0161689]\","
        "\"CLIP_stop_at_last_layers\":2,\"sd_vae\":\"vae-ft-mse.safetensors\",\"eta_noise_seed_delta\":31337,"
        "\"randn_source\":\"CPU\",\"emphasis\":\"No norm\",\"samples_format\":\"jpg\"},"
        "\"override_settings_restore_afterwards\":true,\"script_args\":[],\"script_name\":null,"
        "\"send_images\":true,\"save_images\":false,\"alwayson_scripts\":{},\"sampler_index\":\"Euler a\","
        "\"force_task_id\":\"task(abc123)\",\"infotext\":\"ignored\",\"comments\":{\"x\":1},"
        "\"refiner_checkpoint\":null,\"refiner_switch_at\":0.8,\"s_min_uncond\":0,\"some_future_field\":1}");
    json_t *job = convert(TXT2IMG, req, NULL);
    tjob_submission s;
    json_t *spec = validate(job, &s);
    assert_string_equal(sget(spec, "prompt"), "a castle");
    assert_string_equal(sget(spec, "negative_prompt"), "blurry");
    assert_int_equal(iget(spec, "seed"), 1234);
    assert_string_equal(sget(spec, "sampler_name"), "DPM++ 2M"); /* sampler_name wins over sampler_index */
    assert_string_equal(sget(spec, "scheduler"), "Automatic");
    assert_int_equal(iget(spec, "steps"), 25);
    assert_int_equal(iget(spec, "images"), 6);
    assert_true(nget(spec, "cfg_scale") == 6.5);
    assert_int_equal(iget(spec, "width"), 768);
    assert_true(nget(spec, "eta") == 1.0);
    assert_string_equal(sget(spec, "model"), "v1-5-pruned-emaonly.safetensors [6ce0161689]");
    assert_string_equal(sget(spec, "vae"), "vae-ft-mse.safetensors");
    assert_int_equal(iget(spec, "clip_skip"), 2);
    assert_int_equal(iget(spec, "ensd"), 31337);
    assert_string_equal(sget(spec, "rng"), "CPU");
    assert_string_equal(sget(spec, "emphasis"), "No norm");
    assert_non_null(s.metadata_json);
    assert_string_equal(s.metadata_json, "{\"a1111\":{\"task_id\":\"task(abc123)\"}}");
    json_decref(spec);
    tjob_submission_free(&s);
    json_decref(job);
    json_decref(req);
}

/* options apply when the request does not override them */
static void test_options_and_overrides(void **st) {
    (void)st;
    json_t *opts = ta1_default_options();
    json_object_set_new(opts, "sd_model_checkpoint", json_string("anything-v3.safetensors"));
    json_object_set_new(opts, "randn_source", json_string("NV"));
    json_object_set_new(opts, "CLIP_stop_at_last_layers", json_integer(2));
    json_object_set_new(opts, "s_noise", json_real(1.01));
    json_t *req = parse("{\"override_settings\":{\"randn_source\":\"CPU\"},\"sampler_index\":\"Euler a\","
                        "\"sampler_name\":\"\",\"scheduler\":\"no such scheduler\"}");
    json_t *job = convert(TXT2IMG, req, opts);
    assert_string_equal(sget(job, "model"), "anything-v3.safetensors");
    assert_string_equal(sget(job, "rng"), "CPU");
    assert_int_equal(iget(job, "clip_skip"), 2);
    assert_true(nget(job, "s_noise") == 1.01);
    assert_string_equal(sget(job, "sampler_name"), "Euler a");
    assert_string_equal(sget(job, "scheduler"), "Automatic"); /* unknown -> Automatic, as A1111 */
    json_decref(job);
    json_decref(req);
    /* an empty checkpoint option is "the worker's default" */
    json_object_set_new(opts, "sd_model_checkpoint", json_string(""));
    req = parse("{\"s_noise\":0.9}");
    job = convert(TXT2IMG, req, opts);
    assert_true(json_is_null(json_object_get(job, "model")));
    assert_true(nget(job, "s_noise") == 0.9);
    json_decref(job);
    json_decref(req);
    json_decref(opts);
    expect_refusal(TXT2IMG, "{\"override_settings\":{\"CLIP_stop_at_last_layers\":\"two\"}}", 422,
                   "RequestValidationError", "override_settings.CLIP_stop_at_last_layers");
    expect_refusal(TXT2IMG, "{\"override_settings\":[1]}", 422, "RequestValidationError", "override_settings");
}

/* pydantic-style coercion */
static void test_coercion(void **st) {
    (void)st;
    json_t *req = parse("{\"seed\":\"123\",\"subseed\":\"\",\"steps\":\"30\",\"cfg_scale\":\"7.5\",\"width\":640.0,"
                        "\"batch_size\":true,\"restore_faces\":\"false\",\"tiling\":0,\"prompt\":[\"one\"],"
                        "\"send_images\":\"false\"}");
    json_t *job = convert(TXT2IMG, req, NULL);
    assert_int_equal(iget(job, "seed"), 123);
    assert_int_equal(iget(job, "subseed"), -1);
    assert_int_equal(iget(job, "steps"), 30);
    assert_true(nget(job, "cfg_scale") == 7.5);
    assert_int_equal(iget(job, "width"), 640);
    assert_int_equal(iget(job, "batch_size"), 1);
    assert_string_equal(sget(job, "prompt"), "one");
    json_decref(job);
    json_decref(req);
    req = parse("{\"seed\":null,\"subseed\":-5}");
    job = convert(TXT2IMG, req, NULL);
    assert_int_equal(iget(job, "seed"), -1);
    assert_int_equal(iget(job, "subseed"), -5);
    json_decref(job);
    json_decref(req);
    expect_refusal(TXT2IMG, "{\"seed\":\"abc\"}", 422, "RequestValidationError", "seed");
    expect_refusal(TXT2IMG, "{\"seed\":1.5}", 422, "RequestValidationError", "seed");
    expect_refusal(TXT2IMG, "{\"steps\":\"x\"}", 422, "RequestValidationError", "steps");
    expect_refusal(TXT2IMG, "{\"cfg_scale\":[7]}", 422, "RequestValidationError", "cfg_scale");
    expect_refusal(TXT2IMG, "{\"width\":{}}", 422, "RequestValidationError", "width");
    expect_refusal(TXT2IMG, "{\"send_images\":\"maybe\"}", 422, "RequestValidationError", "send_images");
    expect_refusal(TXT2IMG, "{\"prompt\":5}", 422, "RequestValidationError", "prompt");
    expect_refusal(TXT2IMG, "{\"prompt\":[\"a\",\"b\"]}", 422, "HTTPException", "prompt");
    expect_refusal(TXT2IMG, "{\"sampler_name\":5}", 422, "RequestValidationError", "sampler_name");
    expect_refusal(TXT2IMG, "{\"force_task_id\":5}", 422, "RequestValidationError", "force_task_id");
    expect_refusal(TXT2IMG, "{\"eta\":\"x\"}", 422, "RequestValidationError", "eta");
    expect_refusal(TXT2IMG, "[1]", 422, "RequestValidationError", "object");
}

/* Unsupported features: accepted at their default, refused otherwise. */
static void test_unsupported(void **st) {
    (void)st;
    json_t *req = parse("{\"restore_faces\":null,\"tiling\":false,\"styles\":null,\"alwayson_scripts\":{},"
                        "\"script_name\":\"\",\"refiner_checkpoint\":\"None\",\"s_min_uncond\":0.0,"
                        "\"enable_hr\":false,\"hr_scale\":4,\"firstpass_image\":null,"
                        "\"disable_extra_networks\":false}");
    json_decref(convert(TXT2IMG, req, NULL));
    json_decref(req);
    expect_refusal(TXT2IMG, "{\"restore_faces\":true}", 422, "HTTPException", "restore_faces");
    expect_refusal(TXT2IMG, "{\"tiling\":true}", 422, "HTTPException", "tiling");
    expect_refusal(TXT2IMG, "{\"styles\":[\"cinematic\"]}", 422, "HTTPException", "styles");
    expect_refusal(TXT2IMG, "{\"styles\":\"cinematic\"}", 422, "RequestValidationError", "styles");
    expect_refusal(TXT2IMG, "{\"script_name\":\"X/Y/Z plot\"}", 422, "HTTPException", "script not supported yet");
    expect_refusal(TXT2IMG, "{\"alwayson_scripts\":{\"ControlNet\":{\"args\":[]}}}", 422, "HTTPException",
                   "ControlNet");
    expect_refusal(TXT2IMG, "{\"alwayson_scripts\":[]}", 422, "RequestValidationError", "alwayson_scripts");
    expect_refusal(TXT2IMG, "{\"enable_hr\":true,\"firstpass_image\":\"abc\"}", 422, "HTTPException", "firstpass_image");
    expect_refusal(TXT2IMG, "{\"firstpass_image\":\"abc\"}", 422, "HTTPException", "firstpass_image");
    expect_refusal(TXT2IMG, "{\"refiner_checkpoint\":\"sdxl_refiner\"}", 422, "HTTPException", "refiner");
    expect_refusal(TXT2IMG, "{\"s_min_uncond\":0.5}", 422, "HTTPException", "s_min_uncond");
    expect_refusal(TXT2IMG, "{\"disable_extra_networks\":true}", 422, "HTTPException", "disable_extra_networks");
}

static void test_sampler_errors(void **st) {
    (void)st;
    expect_refusal(TXT2IMG, "{\"sampler_name\":\"Nonexistent\"}", 400, "HTTPException", "Sampler not found");
    expect_refusal(TXT2IMG, "{\"sampler_index\":\"Nonexistent\"}", 400, "HTTPException", "Sampler not found");
    expect_refusal(IMG2IMG, "{\"init_images\":[\"x\"],\"sampler_name\":\"Foo Karras\"}", 400, "HTTPException",
                   "Sampler not found");
    /* legacy names are fine */
    json_t *req = parse("{\"sampler_name\":\"k_dpmpp_2m_ka\"}");
    json_t *job = convert(TXT2IMG, req, NULL);
    tjob_submission s;
    json_t *spec = validate(job, &s);
    assert_string_equal(sget(spec, "sampler_name"), "DPM++ 2M");
    json_decref(spec);
    tjob_submission_free(&s);
    json_decref(job);
    json_decref(req);

    ta1_error e = {400, "HTTPException", "Sampler not found"};
    json_t *body = ta1_error_body(&e);
    assert_int_equal(json_object_size(body), 4);
    assert_string_equal(sget(body, "error"), "HTTPException");
    assert_string_equal(sget(body, "detail"), "Sampler not found");
    assert_string_equal(sget(body, "body"), "");
    assert_string_equal(sget(body, "errors"), "400: Sampler not found");
    json_decref(body);
}

/* ---- img2img / inpaint ---------------------------------------------------------------- */

static void test_img2img(void **st) {
    (void)st;
    char *img = png_b64(100, 80, 3);
    char *img2 = png_b64(50, 50, 3);
    json_t *req = json_pack("{s:[s,s], s:s, s:f, s:i}", "init_images", img, img2, "prompt", "oil painting",
                            "denoising_strength", 0.4, "steps", 20);
    json_t *job = convert(IMG2IMG, req, NULL);
    assert_string_equal(sget(job, "type"), "img2img");
    assert_string_equal(sget(job, "image"), img); /* the first of several */
    assert_null(json_object_get(job, "mask"));
    assert_null(json_object_get(job, "inpainting_fill"));
    tjob_submission s;
    json_t *spec = validate(job, &s);
    assert_string_equal(s.type, "img2img");
    assert_int_equal(iget(spec, "width"), 512); /* A1111's API default, not the image size */
    assert_int_equal(iget(spec, "height"), 512);
    assert_true(nget(spec, "denoising_strength") == 0.4);
    assert_int_equal(iget(spec, "resize_mode"), 0);
    assert_true(nget(spec, "initial_noise_multiplier") == 1.0);
    assert_int_equal(iget(json_object_get(spec, "input"), "width"), 100);
    json_decref(spec);
    tjob_submission_free(&s);
    json_decref(job);
    json_decref(req);

    /* empty mask = no mask; defaults */
    req = json_pack("{s:[s], s:s}", "init_images", img, "mask", "");
    job = convert(IMG2IMG, req, NULL);
    assert_string_equal(sget(job, "type"), "img2img");
    assert_true(nget(job, "denoising_strength") == 0.75);
    assert_int_equal(iget(job, "steps"), 50);
    json_decref(job);
    json_decref(req);

    expect_refusal(IMG2IMG, "{}", 404, "HTTPException", "Init image not found");
    expect_refusal(IMG2IMG, "{\"init_images\":null}", 404, "HTTPException", "Init image not found");
    expect_refusal(IMG2IMG, "{\"init_images\":[]}", 404, "HTTPException", "Init image not found");
    expect_refusal(IMG2IMG, "{\"init_images\":\"abc\"}", 422, "RequestValidationError", "init_images");
    expect_refusal(IMG2IMG, "{\"init_images\":[5]}", 422, "RequestValidationError", "init_images");
    expect_refusal(IMG2IMG, "{\"init_images\":[\"x\"],\"latent_mask\":\"abc\"}", 422, "HTTPException",
                   "latent_mask");
    expect_refusal(IMG2IMG, "{\"init_images\":[\"x\"],\"mask\":5}", 422, "RequestValidationError", "mask");
    expect_refusal(IMG2IMG, "{\"init_images\":[\"x\"],\"restore_faces\":true}", 422, "HTTPException",
                   "restore_faces");
    free(img);
    free(img2);
}

/* img2img with a mask is an inpaint with A1111's API defaults. */
static void test_inpaint(void **st) {
    (void)st;
    char *img = png_b64(64, 64, 3);
    char *mask = png_b64(64, 64, 4);
    json_t *req = json_pack("{s:[s], s:s, s:s, s:i, s:i}", "init_images", img, "mask", mask, "prompt", "a hat",
                            "width", 64, "height", 64);
    json_t *job = convert(IMG2IMG, req, NULL);
    assert_string_equal(sget(job, "type"), "inpaint");
    tjob_submission s;
    json_t *spec = validate(job, &s);
    assert_string_equal(s.type, "inpaint");
    assert_true(json_is_true(json_object_get(spec, "inpaint_full_res")));
    assert_int_equal(iget(spec, "inpaint_full_res_padding"), 0);
    assert_int_equal(iget(spec, "inpainting_fill"), 0);
    assert_int_equal(iget(spec, "mask_blur_x"), 4);
    assert_int_equal(iget(spec, "mask_blur_y"), 4);
    assert_true(json_is_true(json_object_get(spec, "mask_round")));
    assert_int_equal(iget(spec, "inpainting_mask_invert"), 0);
    assert_int_equal(iget(spec, "steps"), 50);
    assert_string_equal(sget(spec, "sampler_name"), "Euler");
    const uint8_t *blobs[2];
    size_t lens[2];
    assert_int_equal(tjob_inputs_unpack(s.input, s.input_len, blobs, lens, 2), 2);
    json_decref(spec);
    tjob_submission_free(&s);
    json_decref(job);
    json_decref(req);

    /* mask_blur sets both; webuiapi-style ints for booleans */
    req = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "init_images", img, "mask", mask,
                    "mask_blur", 8, "mask_blur_x", 2, "inpainting_fill", 1, "inpaint_full_res", 0,
                    "inpaint_full_res_padding", 32, "inpainting_mask_invert", 1, "width", 64, "height", 64,
                    "mask_round", 0);
    job = convert(IMG2IMG, req, NULL);
    spec = validate(job, &s);
    assert_int_equal(iget(spec, "mask_blur_x"), 8);
    assert_int_equal(iget(spec, "mask_blur_y"), 8);
    assert_int_equal(iget(spec, "inpainting_fill"), 1);
    assert_true(json_is_false(json_object_get(spec, "inpaint_full_res")));
    assert_true(json_is_false(json_object_get(spec, "mask_round")));
    assert_int_equal(iget(spec, "inpaint_full_res_padding"), 32);
    assert_int_equal(iget(spec, "inpainting_mask_invert"), 1);
    json_decref(spec);
    tjob_submission_free(&s);
    json_decref(job);
    json_decref(req);
    free(img);
    free(mask);
}

/* Native refusals of converted bodies, in A1111's shape. */
static void test_job_errors(void **st) {
    (void)st;
    json_t *req = parse("{\"steps\":500}");
    json_t *job = convert(TXT2IMG, req, NULL);
    tjob_limits l;
    tjob_limits_default(&l);
    tjob_submission s;
    tjob_error e;
    assert_int_equal(tjob_validate(job, &l, &s, &e), -1);
    ta1_error a;
    ta1_from_job_error(e.http_status, e.field, e.message, &a);
    assert_int_equal(a.http_status, 422);
    assert_string_equal(a.error, "RequestValidationError");
    assert_true(!strncmp(a.detail, "steps", 5));
    json_t *body = ta1_error_body(&a);
    assert_string_equal(sget(body, "detail"), a.detail);
    assert_string_equal(sget(body, "errors"), a.detail);
    json_decref(body);
    json_decref(job);
    json_decref(req);

    ta1_from_job_error(422, "image", "is not valid base64", &a);
    assert_string_equal(a.detail, "image: is not valid base64");
    ta1_from_job_error(413, "image", "image is larger than the limit", &a);
    assert_int_equal(a.http_status, 413);
    assert_string_equal(a.error, "HTTPException");
    assert_string_equal(a.detail, "image is larger than the limit");
    ta1_from_job_error(500, "", "cannot serialise", &a);
    assert_int_equal(a.http_status, 422);
    assert_string_equal(a.detail, "cannot serialise");
    ta1_from_job_error(400, NULL, NULL, &a);
    assert_int_equal(a.http_status, 400);
    assert_true(strlen(a.detail) > 0);

    /* a garbage init image is the native validator's 422 on "image" */
    req = parse("{\"init_images\":[\"!!!\"]}");
    job = convert(IMG2IMG, req, NULL);
    assert_int_equal(tjob_validate(job, &l, &s, &e), -1);
    assert_int_equal(e.http_status, 422);
    assert_string_equal(e.field, "image");
    json_decref(job);
    json_decref(req);
}

/* ---- extras ---------------------------------------------------------------------- */

static void test_extras(void **st) {
    (void)st;
    char *img = png_b64(40, 30, 3);
    json_t *req = json_pack("{s:s}", "image", img);
    json_t *job = convert(EXTRAS, req, NULL);
    assert_string_equal(sget(job, "type"), "extras");
    assert_string_equal(sget(job, "upscaler"), "None");
    assert_true(nget(job, "resize") == 2);
    tjob_submission s;
    json_t *spec = validate(job, &s);
    assert_int_equal(iget(json_object_get(spec, "output"), "width"), 80);
    json_decref(spec);
    tjob_submission_free(&s);
    json_decref(job);
    json_decref(req);

    req = json_pack("{s:s, s:i, s:i, s:i, s:b, s:s, s:s, s:f, s:f, s:f, s:b}", "image", img, "resize_mode", 1,
                    "upscaling_resize_w", 100, "upscaling_resize_h", 100, "upscaling_crop", 0, "upscaler_1",
                    "lanczos", "upscaler_2", "R-ESRGAN 4x+", "extras_upscaler_2_visibility", 0.0, "gfpgan_visibility",
                    0.0, "codeformer_weight", 0.5, "show_extras_results", 1);
    job = convert(EXTRAS, req, NULL);
    assert_string_equal(sget(job, "upscaler"), "Lanczos");
    assert_int_equal(iget(job, "width"), 100);
    assert_int_equal(iget(job, "height"), 100);
    assert_true(json_is_false(json_object_get(job, "crop")));
    assert_null(json_object_get(job, "resize"));
    spec = validate(job, &s);
    assert_int_equal(iget(json_object_get(spec, "output"), "width"), 133);
    json_decref(spec);
    tjob_submission_free(&s);
    json_decref(job);
    json_decref(req);
    free(img);

    expect_refusal(EXTRAS, "{}", 422, "RequestValidationError", "image");
    expect_refusal(EXTRAS, "{\"image\":\"\"}", 422, "RequestValidationError", "image");
    expect_refusal(EXTRAS, "{\"image\":\"x\",\"upscaler_1\":\"R-ESRGAN 4x+\"}", 422, "HTTPException", "upscaler_1");
    expect_refusal(EXTRAS, "{\"image\":\"x\",\"upscaler_2\":\"Lanczos\",\"extras_upscaler_2_visibility\":0.5}", 422,
                   "HTTPException", "upscaler_2");
    expect_refusal(EXTRAS, "{\"image\":\"x\",\"gfpgan_visibility\":0.5}", 422, "HTTPException", "gfpgan_visibility");
    expect_refusal(EXTRAS, "{\"image\":\"x\",\"codeformer_visibility\":1}", 422, "HTTPException",
                   "codeformer_visibility");
    expect_refusal(EXTRAS, "{\"image\":\"x\",\"upscaling_resize\":0}", 422, "RequestValidationError",
                   "upscaling_resize");
    expect_refusal(EXTRAS, "{\"image\":\"x\",\"upscaling_resize\":17}", 422, "RequestValidationError",
                   "upscaling_resize");
    expect_refusal(EXTRAS, "{\"image\":\"x\",\"resize_mode\":2}", 422, "RequestValidationError", "resize_mode");
    expect_refusal(EXTRAS, "{\"image\":\"x\",\"resize_mode\":1,\"upscaling_resize_w\":0}", 422,
                   "RequestValidationError", "upscaling_resize_w");
    expect_refusal(EXTRAS, "{\"image\":5}", 422, "RequestValidationError", "image");
}

/* ---- responses and options ---------------------------------------------------------- */

static void test_response(void **st) {
    (void)st;
    json_t *req = parse("{\"prompt\":\"a cat\",\"steps\":\"25\",\"seed\":-1,\"batch_size\":2,\"unknown_key\":1}");
    json_t *ri = parse("{\"seeds\":[11,12],\"subseeds\":[5,6],\"infotexts\":[\"a cat\\nSteps: 25\",\"a cat\\nSteps: 25\"],"
                       "\"prompts\":[\"a cat\",\"a cat\"],\"negative_prompts\":[\"\",\"\"],\"model\":\"v1-5\","
                       "\"model_hash\":\"6ce0161689\",\"vae\":null,\"vae_hash\":null,\"clip_skip\":1,\"width\":512,"
                       "\"height\":512,\"sampler_name\":\"Euler\",\"scheduler\":\"Automatic\",\"steps\":25,"
                       "\"cfg_scale\":7.0,\"denoising_strength\":null,\"is_using_inpainting_conditioning\":false,"
                       "\"job_timestamp\":\"20250101120000\"}");
    const char *imgs[2] = {"AAAA", "BBBB"};
    json_t *r = ta1_response(req, 0, ri, imgs, 2);
    assert_int_equal(json_object_size(r), 3);
    json_t *images = json_object_get(r, "images");
    assert_int_equal(json_array_size(images), 2);
    assert_string_equal(json_string_value(json_array_get(images, 1)), "BBBB");
    json_t *p = json_object_get(r, "parameters");
    assert_string_equal(sget(p, "prompt"), "a cat");
    assert_int_equal(iget(p, "steps"), 25);
    assert_int_equal(iget(p, "seed"), -1);
    assert_true(nget(p, "cfg_scale") == 7);
    assert_string_equal(sget(p, "sampler_index"), "Euler");
    assert_true(json_is_false(json_object_get(p, "enable_hr")));
    assert_true(json_is_true(json_object_get(p, "send_images")));
    assert_null(json_object_get(p, "unknown_key"));
    assert_null(json_object_get(p, "init_images"));
    assert_null(json_object_get(p, "include_init_images"));

    json_t *info = json_loads(sget(r, "info"), 0, NULL);
    assert_non_null(info);
    static const char *const keys[] = {
        "prompt", "all_prompts", "negative_prompt", "all_negative_prompts", "seed", "all_seeds", "subseed",
        "all_subseeds", "subseed_strength", "width", "height", "sampler_name", "cfg_scale", "steps", "batch_size",
        "restore_faces", "face_restoration_model", "sd_model_name", "sd_model_hash", "sd_vae_name", "sd_vae_hash",
        "seed_resize_from_w", "seed_resize_from_h", "denoising_strength", "extra_generation_params",
        "index_of_first_image", "infotexts", "styles", "job_timestamp", "clip_skip",
        "is_using_inpainting_conditioning", "version", NULL};
    size_t n = 0;
    for (; keys[n]; n++) {
        if (!json_object_get(info, keys[n])) fprintf(stderr, "info lacks %s\n", keys[n]);
        assert_non_null(json_object_get(info, keys[n]));
    }
    assert_int_equal(json_object_size(info), n);
    assert_string_equal(sget(info, "prompt"), "a cat");
    assert_int_equal(iget(info, "seed"), 11);
    assert_int_equal(json_array_size(json_object_get(info, "all_seeds")), 2);
    assert_int_equal(iget(info, "subseed"), 5);
    assert_int_equal(iget(info, "batch_size"), 2);
    assert_int_equal(iget(info, "steps"), 25);
    assert_string_equal(sget(info, "sampler_name"), "Euler");
    assert_string_equal(sget(info, "sd_model_name"), "v1-5");
    assert_string_equal(sget(info, "sd_model_hash"), "6ce0161689");
    assert_true(json_is_null(json_object_get(info, "sd_vae_name")));
    assert_true(json_is_false(json_object_get(info, "restore_faces")));
    assert_true(json_is_null(json_object_get(info, "face_restoration_model")));
    assert_int_equal(iget(info, "seed_resize_from_w"), -1);
    assert_int_equal(iget(info, "index_of_first_image"), 0);
    assert_int_equal(json_object_size(json_object_get(info, "extra_generation_params")), 0);
    assert_int_equal(json_array_size(json_object_get(info, "infotexts")), 2);
    assert_int_equal(json_array_size(json_object_get(info, "styles")), 0);
    assert_string_equal(sget(info, "job_timestamp"), "20250101120000");
    assert_string_equal(sget(info, "version"), "tessera");
    json_decref(info);
    json_decref(r);
    json_decref(req);

    /* img2img: init_images/mask nulled unless include_init_images; send_images false: no images */
    req = parse("{\"init_images\":[\"QUJD\"],\"mask\":\"REVG\",\"send_images\":false}");
    r = ta1_response(req, 1, ri, imgs, 2);
    assert_int_equal(json_array_size(json_object_get(r, "images")), 0);
    p = json_object_get(r, "parameters");
    assert_true(json_is_null(json_object_get(p, "init_images")));
    assert_true(json_is_null(json_object_get(p, "mask")));
    assert_true(json_is_true(json_object_get(p, "inpaint_full_res")));
    assert_int_equal(iget(p, "inpainting_fill"), 0);
    assert_null(json_object_get(p, "enable_hr"));
    json_decref(r);
    json_decref(req);
    req = parse("{\"init_images\":[\"QUJD\"],\"mask\":\"REVG\",\"include_init_images\":true}");
    r = ta1_response(req, 1, NULL, imgs, 1);
    p = json_object_get(r, "parameters");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "init_images"), 0)), "QUJD");
    assert_string_equal(sget(p, "mask"), "REVG");
    info = json_loads(sget(r, "info"), 0, NULL);
    assert_non_null(info);
    assert_int_equal(iget(info, "seed"), -1); /* no result info: the request's */
    assert_int_equal(json_array_size(json_object_get(info, "all_prompts")), 1);
    json_decref(info);
    json_decref(r);
    json_decref(req);
    json_decref(ri);
}

static void test_options(void **st) {
    (void)st;
    json_t *o = ta1_default_options();
    assert_true(json_object_size(o) >= 25);
    assert_string_equal(sget(o, "sd_model_checkpoint"), "");
    assert_string_equal(sget(o, "sd_vae"), "Automatic");
    assert_int_equal(iget(o, "CLIP_stop_at_last_layers"), 1);
    assert_int_equal(iget(o, "eta_noise_seed_delta"), 0);
    assert_string_equal(sget(o, "randn_source"), "GPU");
    assert_string_equal(sget(o, "samples_format"), "png");
    assert_true(json_is_true(json_object_get(o, "enable_pnginfo")));
    assert_string_equal(sget(o, "emphasis"), "Original");
    assert_int_equal(iget(o, "comma_padding_backtrack"), 20);
    assert_true(json_is_true(json_object_get(o, "live_previews_enable")));
    assert_int_equal(iget(o, "show_progress_every_n_steps"), -1);
    assert_true(nget(o, "eta_ancestral") == 1.0);
    assert_true(nget(o, "eta_ddim") == 0.0);
    assert_true(nget(o, "s_noise") == 1.0);
    assert_true(nget(o, "s_churn") == 0.0);
    assert_string_equal(sget(o, "sd_checkpoint_hash"), "");
    assert_string_equal(sget(o, "outdir_samples"), "");
    json_decref(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt2img_api_defaults), cmocka_unit_test(test_txt2img_webuiapi),
        cmocka_unit_test(test_options_and_overrides), cmocka_unit_test(test_coercion),
        cmocka_unit_test(test_unsupported),           cmocka_unit_test(test_sampler_errors),
        cmocka_unit_test(test_img2img),               cmocka_unit_test(test_inpaint),
        cmocka_unit_test(test_job_errors),            cmocka_unit_test(test_extras),
        cmocka_unit_test(test_response),              cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
