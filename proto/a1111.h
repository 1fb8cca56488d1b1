/* a1111.h - the AUTOMATIC1111 1.10 web API (/sdapi/v1/...) on top of native
 * jobs: request bodies become native job bodies (docs/jobs-sd.md) that go
 * through tjob_validate like any other job, and finished jobs become A1111
 * response bodies. Used by tesserad's /sdapi/v1 routes and by
 * `tessera render --a1111`.
 *
 * A1111's API defaults differ from the UI's (and from our native defaults):
 * steps 50, sampler "Euler" (sampler_name or sampler_index), inpaint_full_res
 * true with padding 0, inpainting_fill 0, width/height 512. The conversion
 * writes every such value explicitly into the native body.
 *
 * `options` is the current /sdapi/v1/options object (never NULL): the keys
 * that matter for a render are sd_model_checkpoint, sd_vae,
 * CLIP_stop_at_last_layers, eta_noise_seed_delta, randn_source, emphasis;
 * a request's override_settings take precedence over them.
 *
 * Errors use A1111's shape: {"error": "<Class>", "detail": "...",
 * "body": "...", "errors": "..."} with the status A1111 gives (400 unknown
 * sampler, 404 init_images missing, 422 validation, 500 bad base64 ...). */
#ifndef TESSERA_A1111_H
#define TESSERA_A1111_H

#include <jansson.h>
#include <stddef.h>

typedef struct {
    int http_status;
    char error[64];    /* "HTTPException", "RequestValidationError", ... */
    char detail[512];
} ta1_error;

/* The A1111 error body for err (new reference). */
json_t *ta1_error_body(const ta1_error *err);

/* Defaults of GET /sdapi/v1/options that we serve (new reference). */
json_t *ta1_default_options(void);

/* POST /sdapi/v1/txt2img | img2img | extra-single-image body -> native job
 * body (new reference in *job). 0 or -1 with err filled. */
int ta1_txt2img_to_job(const json_t *req, const json_t *options, json_t **job, ta1_error *err);
int ta1_img2img_to_job(const json_t *req, const json_t *options, json_t **job, ta1_error *err);
int ta1_extras_to_job(const json_t *req, json_t **job, ta1_error *err);

/* A native validation error (tjob_error fields) in A1111's shape: 422. */
void ta1_from_job_error(int http_status, const char *field, const char *message, ta1_error *err);

/* Build the txt2img/img2img response {images, parameters, info} from the
 * request, the job's result info (docs/jobs-sd.md "Result info") and the
 * images already base64-encoded (no data: prefix). New reference. */
json_t *ta1_response(const json_t *req, int is_img2img, const json_t *result_info,
                     const char *const *images_b64, int nimages);

#endif
