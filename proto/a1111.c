/* a1111.c - the AUTOMATIC1111 1.10 web API (/sdapi/v1/...) over native jobs.
 *
 * Why a translation layer: A1111 clients (webuiapi, Krita/Photoshop plugins,
 * bots) speak A1111's request bodies with A1111's *API* defaults; the farm
 * validates and stores only native bodies (docs/jobs-sd.md). This file turns
 * one into the other, writing every value explicitly so that the native
 * (UI-style) defaults never leak into an A1111 request, and turns a finished
 * job back into A1111's {images, parameters, info} response.
 *
 * What the conversion does, field by field, follows a1111-compat.md 1.3-1.7:
 *  - values are coerced the way A1111's pydantic (v1) models coerce them:
 *    "20" -> 20 for ints, 7 or "7.5" for floats, 0/1/"true"/"false" for
 *    bools; seed/subseed "" or null -> -1. A value that does not coerce is
 *    422 RequestValidationError naming the field.
 *  - fields A1111 accepts but Tessera does not implement are accepted at
 *    their default (restore_faces false, tiling false, styles [],
 *    alwayson_scripts {}, script_name null, refiner_checkpoint null,
 *    s_min_uncond 0, latent_mask null, firstpass_image null,
 *    disable_extra_networks false, gfpgan/codeformer visibility 0, upscaler_2
 *    at visibility 0) and refused with 422 naming the field otherwise.
 *  - ignored outright: do_not_save_*, save_images, comments, script_args,
 *    override_settings_restore_afterwards, image_cfg_scale (instruct-pix2pix
 *    only), the hr_* fields while enable_hr is false (A1111 ignores them
 *    too), refiner_switch_at without a refiner checkpoint, infotext (A1111
 *    fills unset fields from it; not supported, so ignored), and fields
 *    A1111's models do not know (pydantic ignores extras the same way).
 *  - send_images and include_init_images only shape the response
 *    (ta1_response reads them from the request).
 *  - init_images: missing or empty -> 404 "Init image not found" as A1111;
 *    with more than one image only the first is used (A1111 repeats a single
 *    image over the batch; per-image init images are not supported).
 *  - sampler: sampler_name, else sampler_index, else "Euler"; unknown ->
 *    400 HTTPException "Sampler not found". An unknown scheduler becomes
 *    "Automatic" (A1111's get_sampler_and_scheduler does the same).
 *  - override_settings (then options) give model, vae, clip_skip, ensd, rng,
 *    emphasis; s_churn/s_tmin/s_tmax/s_noise and initial_noise_multiplier
 *    left null come from options. Other override keys are ignored.
 *  - force_task_id is kept in the job's metadata as {"a1111":{"task_id"}}.
 *
 * Errors: converter refusals use A1111's classes ("HTTPException" for 400/
 * 404 and unsupported features, "RequestValidationError" for values that do
 * not coerce); native validation errors (ta1_from_job_error) keep their 4xx
 * status and become "RequestValidationError" at 422, "HTTPException"
 * otherwise, with a detail that names the (native) field.
 */
#include "a1111.h"

#include "sampler.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VALIDATION "RequestValidationError"
#define HTTPEXC "HTTPException"

static void fail(ta1_error *err, int status, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(ta1_error *err, int status, const char *cls, const char *fmt, ...) {
    err->http_status = status;
    snprintf(err->error, sizeof err->error, "%s", cls);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
}

json_t *ta1_error_body(const ta1_error *err) {
    char errors[600];
    if (!strcmp(err->error, HTTPEXC))
        snprintf(errors, sizeof errors, "%d: %s", err->http_status, err->detail); /* str(HTTPException) */
    else
        snprintf(errors, sizeof errors, "%s", err->detail);
    return json_pack("{s:s, s:s, s:s, s:s}", "error", err->error, "detail", err->detail, "body", "", "errors",
                     errors);
}

void ta1_from_job_error(int http_status, const char *field, const char *message, ta1_error *err) {
    memset(err, 0, sizeof *err);
    err->http_status = http_status >= 400 && http_status < 500 ? http_status : 422;
    snprintf(err->error, sizeof err->error, "%s", err->http_status == 422 ? VALIDATION : HTTPEXC);
    if (!message) message = "invalid request";
    size_t fl = field ? strlen(field) : 0;
    if (fl && strncmp(message, field, fl) != 0)
        snprintf(err->detail, sizeof err->detail, "%s: %s", field, message);
    else
        snprintf(err->detail, sizeof err->detail, "%s", message);
}

/* ---- pydantic-style coercion --------------------------------------------------- */

static const json_t *get(const json_t *o, const char *name) {
    const json_t *v = o ? json_object_get(o, name) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

static int parse_ll(const char *s, long long *out) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int coerce_int(const json_t *v, long long *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || fabs(d) > 9e15) return -1;
        *out = (long long)d;
        return 0;
    }
    if (json_is_string(v)) return parse_ll(json_string_value(v), out);
    return -1;
}

static int coerce_num(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_string(v)) return parse_double(json_string_value(v), out);
    return -1;
}

static int coerce_bool(const json_t *v, int *out) {
    static const char *const yes[] = {"true", "1", "yes", "on", "y", "t", NULL};
    static const char *const no[] = {"false", "0", "no", "off", "n", "f", NULL};
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = (int)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        for (int i = 0; yes[i]; i++)
            if (!strcasecmp(json_string_value(v), yes[i])) return *out = 1, 0;
        for (int i = 0; no[i]; i++)
            if (!strcasecmp(json_string_value(v), no[i])) return *out = 0, 0;
    }
    return -1;
}

static int r_int(const json_t *o, const char *name, long long def, long long *out, ta1_error *err) {
    const json_t *v = get(o, name);
    *out = def;
    if (v && coerce_int(v, out)) {
        fail(err, 422, VALIDATION, "%s: value is not a valid integer", name);
        return -1;
    }
    return 0;
}

static int r_num(const json_t *o, const char *name, double def, double *out, ta1_error *err) {
    const json_t *v = get(o, name);
    *out = def;
    if (v && coerce_num(v, out)) {
        fail(err, 422, VALIDATION, "%s: value is not a valid float", name);
        return -1;
    }
    return 0;
}

static int r_bool(const json_t *o, const char *name, int def, int *out, ta1_error *err) {
    const json_t *v = get(o, name);
    *out = def;
    if (v && coerce_bool(v, out)) {
        fail(err, 422, VALIDATION, "%s: value could not be parsed to a boolean", name);
        return -1;
    }
    return 0;
}

/* String or absent (*out NULL). */
static int r_str(const json_t *o, const char *name, const char **out, ta1_error *err) {
    const json_t *v = get(o, name);
    *out = NULL;
    if (!v) return 0;
    if (!json_is_string(v)) {
        fail(err, 422, VALIDATION, "%s: str type expected", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* seed/subseed: "", null -> -1, numeric strings accepted. */
static int r_seed(const json_t *o, const char *name, long long *out, ta1_error *err) {
    const json_t *v = get(o, name);
    *out = -1;
    if (!v || (json_is_string(v) && !json_string_value(v)[0])) return 0;
    if (json_is_boolean(v) || coerce_int(v, out)) {
        fail(err, 422, VALIDATION, "%s: value is not a valid integer", name);
        return -1;
    }
    return 0;
}

/* A feature we do not implement: fine at its default, 422 otherwise. */
static int unsupported_bool(const json_t *req, const char *name, const char *what, ta1_error *err) {
    int b;
    if (r_bool(req, name, 0, &b, err)) return -1;
    if (b) {
        fail(err, 422, HTTPEXC, "%s: %s is not supported yet", name, what);
        return -1;
    }
    return 0;
}

static int unsupported_null(const json_t *req, const char *name, const char *what, ta1_error *err) {
    const json_t *v = get(req, name);
    if (v && !(json_is_string(v) && (!json_string_value(v)[0] || !strcmp(json_string_value(v), "None")))) {
        fail(err, 422, HTTPEXC, "%s: %s is not supported yet", name, what);
        return -1;
    }
    return 0;
}

static int unsupported_zero(const json_t *req, const char *name, const char *what, ta1_error *err) {
    double d;
    if (r_num(req, name, 0, &d, err)) return -1;
    if (d != 0) {
        fail(err, 422, HTTPEXC, "%s: %s is not supported yet", name, what);
        return -1;
    }
    return 0;
}

/* A prompt: a string, or a list of one string. */
static int r_prompt(const json_t *req, const char *name, const char **out, ta1_error *err) {
    const json_t *v = get(req, name);
    *out = "";
    if (!v) return 0;
    if (json_is_array(v) && json_array_size(v) == 1) v = json_array_get(v, 0);
    if (json_is_array(v)) {
        fail(err, 422, HTTPEXC, "%s: a list of prompts is not supported yet (give one string)", name);
        return -1;
    }
    if (!json_is_string(v)) {
        fail(err, 422, VALIDATION, "%s: str type expected", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* ---- settings: override_settings, then options -------------------------------- */

typedef struct {
    const json_t *over;
    const json_t *options;
} settings;

static const json_t *setting(const settings *st, const char *key, const char **where) {
    const json_t *v = get(st->over, key);
    *where = "override_settings";
    if (!v) {
        v = get(st->options, key);
        *where = "options";
    }
    return v;
}

static int set_int(const settings *st, const char *key, long long def, long long *out, ta1_error *err) {
    const char *where;
    const json_t *v = setting(st, key, &where);
    *out = def;
    if (v && coerce_int(v, out)) {
        fail(err, 422, VALIDATION, "%s.%s: value is not a valid integer", where, key);
        return -1;
    }
    return 0;
}

static int set_num(const settings *st, const char *key, double def, double *out, ta1_error *err) {
    const char *where;
    const json_t *v = setting(st, key, &where);
    *out = def;
    if (v && coerce_num(v, out)) {
        fail(err, 422, VALIDATION, "%s.%s: value is not a valid float", where, key);
        return -1;
    }
    return 0;
}

static int set_str(const settings *st, const char *key, const char *def, const char **out, ta1_error *err) {
    const char *where;
    const json_t *v = setting(st, key, &where);
    *out = def;
    if (!v) return 0;
    if (!json_is_string(v)) {
        fail(err, 422, VALIDATION, "%s.%s: str type expected", where, key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* ---- requests -> native bodies ------------------------------------------------- */

static int convert_common(const json_t *req, const json_t *options, json_t *job, ta1_error *err) {
    const char *s;
    long long i;
    double d;
    int b;

    if (r_prompt(req, "prompt", &s, err)) return -1;
    json_object_set_new(job, "prompt", json_string(s));
    if (r_prompt(req, "negative_prompt", &s, err)) return -1;
    json_object_set_new(job, "negative_prompt", json_string(s));

    const json_t *styles = get(req, "styles");
    if (styles && !json_is_array(styles)) {
        fail(err, 422, VALIDATION, "styles: value is not a valid list");
        return -1;
    }
    if (styles && json_array_size(styles)) {
        fail(err, 422, HTTPEXC, "styles: prompt styles are not supported yet");
        return -1;
    }

    if (r_seed(req, "seed", &i, err)) return -1;
    json_object_set_new(job, "seed", json_integer(i));
    if (r_seed(req, "subseed", &i, err)) return -1;
    json_object_set_new(job, "subseed", json_integer(i));
    if (r_num(req, "subseed_strength", 0, &d, err)) return -1;
    json_object_set_new(job, "subseed_strength", json_real(d));
    if (r_int(req, "seed_resize_from_w", -1, &i, err)) return -1;
    json_object_set_new(job, "seed_resize_from_w", json_integer(i));
    if (r_int(req, "seed_resize_from_h", -1, &i, err)) return -1;
    json_object_set_new(job, "seed_resize_from_h", json_integer(i));

    /* sampler_name or sampler_index or "Euler" */
    const char *sname, *sindex, *sched;
    if (r_str(req, "sampler_name", &sname, err) || r_str(req, "sampler_index", &sindex, err) ||
        r_str(req, "scheduler", &sched, err))
        return -1;
    const char *name = sname && *sname ? sname : sindex && *sindex ? sindex : "Euler";
    if (tsm_find(name, NULL, NULL) != TSM_OK) {
        fail(err, 400, HTTPEXC, "Sampler not found");
        return -1;
    }
    tsm_scheduler sch;
    if (!sched || tsm_scheduler_find(sched, &sch) != TSM_OK) sched = "Automatic";
    json_object_set_new(job, "sampler_name", json_string(name));
    json_object_set_new(job, "scheduler", json_string(sched));

    static const struct {
        const char *name;
        long long def;
    } ints[] = {{"batch_size", 1}, {"n_iter", 1}, {"steps", 50}, {"width", 512}, {"height", 512}};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        if (r_int(req, ints[k].name, ints[k].def, &i, err)) return -1;
        /* A1111 renders floor(side / 8) latent pixels: a side that is not a
         * multiple of 8 is rounded down the same way, not refused */
        if ((k == 3 || k == 4) && i > 8) i = i / 8 * 8;
        json_object_set_new(job, ints[k].name, json_integer(i));
    }
    if (r_num(req, "cfg_scale", 7.0, &d, err)) return -1;
    json_object_set_new(job, "cfg_scale", json_real(d));

    if (unsupported_bool(req, "restore_faces", "face restoration", err) ||
        unsupported_bool(req, "tiling", "tiling", err) ||
        unsupported_bool(req, "disable_extra_networks", "disable_extra_networks", err) ||
        unsupported_zero(req, "s_min_uncond", "s_min_uncond (negative guidance minimum sigma)", err) ||
        unsupported_null(req, "refiner_checkpoint", "the refiner", err))
        return -1;
    const json_t *script = get(req, "script_name");
    if (script && !(json_is_string(script) && !json_string_value(script)[0])) {
        fail(err, 422, HTTPEXC, "script_name: script not supported yet (%.64s)",
             json_is_string(script) ? json_string_value(script) : "?");
        return -1;
    }
    if (r_bool(req, "send_images", 1, &b, err) || r_bool(req, "save_images", 0, &b, err) ||
        r_bool(req, "do_not_save_samples", 0, &b, err) || r_bool(req, "do_not_save_grid", 0, &b, err))
        return -1;
    const json_t *aos = get(req, "alwayson_scripts");
    if (aos && !json_is_object(aos)) {
        fail(err, 422, VALIDATION, "alwayson_scripts: value is not a valid dict");
        return -1;
    }
    if (aos && json_object_size(aos)) {
        const char *key = json_object_iter_key(json_object_iter((json_t *)aos));
        fail(err, 422, HTTPEXC, "alwayson_scripts: scripts are not supported yet (%.64s)", key);
        return -1;
    }

    const json_t *eta = get(req, "eta");
    if (eta && coerce_num(eta, &d)) {
        fail(err, 422, VALIDATION, "eta: value is not a valid float");
        return -1;
    }
    json_object_set_new(job, "eta", eta ? json_real(d) : json_null());

    const json_t *over = get(req, "override_settings");
    if (over && !json_is_object(over)) {
        fail(err, 422, VALIDATION, "override_settings: value is not a valid dict");
        return -1;
    }
    settings st = {over, options};
    static const struct {
        const char *name;
        double def;
    } churn[] = {{"s_churn", 0}, {"s_tmin", 0}, {"s_tmax", 0}, {"s_noise", 1}};
    for (size_t k = 0; k < 4; k++) {
        if (get(req, churn[k].name)) {
            if (r_num(req, churn[k].name, churn[k].def, &d, err)) return -1;
        } else if (set_num(&st, churn[k].name, churn[k].def, &d, err))
            return -1;
        json_object_set_new(job, churn[k].name, json_real(d));
    }

    if (set_str(&st, "sd_model_checkpoint", "", &s, err)) return -1;
    json_object_set_new(job, "model", *s ? json_string(s) : json_null());
    if (set_str(&st, "sd_vae", "Automatic", &s, err)) return -1;
    json_object_set_new(job, "vae", json_string(s));
    if (set_int(&st, "CLIP_stop_at_last_layers", 1, &i, err)) return -1;
    json_object_set_new(job, "clip_skip", json_integer(i));
    if (set_int(&st, "eta_noise_seed_delta", 0, &i, err)) return -1;
    json_object_set_new(job, "ensd", json_integer(i));
    if (set_str(&st, "randn_source", "GPU", &s, err)) return -1;
    json_object_set_new(job, "rng", json_string(s));
    if (set_str(&st, "emphasis", "Original", &s, err)) return -1;
    json_object_set_new(job, "emphasis", json_string(s));

    const json_t *tid = get(req, "force_task_id");
    if (tid) {
        if (!json_is_string(tid)) {
            fail(err, 422, VALIDATION, "force_task_id: str type expected");
            return -1;
        }
        json_object_set_new(job, "metadata", json_pack("{s:{s:O}}", "a1111", "task_id", tid));
    }
    return 0;
}

int ta1_txt2img_to_job(const json_t *req, const json_t *options, json_t **job, ta1_error *err) {
    memset(err, 0, sizeof *err);
    *job = NULL;
    if (!json_is_object(req)) {
        fail(err, 422, VALIDATION, "the body must be a JSON object");
        return -1;
    }
    json_t *j = json_pack("{s:s}", "type", "txt2img");
    if (convert_common(req, options, j, err) || unsupported_null(req, "firstpass_image", "firstpass_image", err)) {
        json_decref(j);
        return -1;
    }
    /* hires fix: A1111's fields pass through under their own names (API
     * defaults: denoising_strength 0.75, hr_upscaler null = "Latent") */
    int hr = 0;
    if (r_bool(req, "enable_hr", 0, &hr, err)) {
        json_decref(j);
        return -1;
    }
    if (hr) {
        long long i;
        double d;
        const char *s;
        json_object_set_new(j, "enable_hr", json_true());
        static const char *const ints[] = {"hr_second_pass_steps", "hr_resize_x", "hr_resize_y"};
        for (int k = 0; k < 3; k++) {
            if (r_int(req, ints[k], 0, &i, err)) goto fail;
            json_object_set_new(j, ints[k], json_integer(i));
        }
        if (r_num(req, "hr_scale", 2.0, &d, err)) goto fail;
        json_object_set_new(j, "hr_scale", json_real(d));
        if (r_num(req, "denoising_strength", 0.75, &d, err)) goto fail;
        json_object_set_new(j, "denoising_strength", json_real(d));
        static const char *const strs[] = {"hr_upscaler", "hr_checkpoint_name", "hr_sampler_name", "hr_scheduler",
                                           "hr_prompt", "hr_negative_prompt"};
        for (int k = 0; k < 6; k++) {
            if (r_str(req, strs[k], &s, err)) goto fail;
            if (s && s[0]) json_object_set_new(j, strs[k], json_string(s));
        }
    }
    *job = j;
    return 0;
fail:
    json_decref(j);
    return -1;
}

int ta1_img2img_to_job(const json_t *req, const json_t *options, json_t **job, ta1_error *err) {
    memset(err, 0, sizeof *err);
    *job = NULL;
    if (!json_is_object(req)) {
        fail(err, 422, VALIDATION, "the body must be a JSON object");
        return -1;
    }
    const json_t *init = get(req, "init_images");
    if (!init || (json_is_array(init) && json_array_size(init) == 0)) {
        fail(err, 404, HTTPEXC, "Init image not found");
        return -1;
    }
    if (!json_is_array(init)) {
        fail(err, 422, VALIDATION, "init_images: value is not a valid list");
        return -1;
    }
    const json_t *image = json_array_get(init, 0);
    if (!json_is_string(image)) {
        fail(err, 422, VALIDATION, "init_images: a list of base64 strings expected");
        return -1;
    }
    const char *mask;
    if (r_str(req, "mask", &mask, err)) return -1;
    int inpaint = mask && *mask;

    json_t *j = json_pack("{s:s, s:O}", "type", inpaint ? "inpaint" : "img2img", "image", image);
    if (convert_common(req, options, j, err) || unsupported_null(req, "latent_mask", "latent_mask", err)) goto fail;
    settings st = {get(req, "override_settings"), options};
    long long i;
    double d;
    int b;
    if (r_int(req, "resize_mode", 0, &i, err)) goto fail;
    json_object_set_new(j, "resize_mode", json_integer(i));
    if (r_num(req, "denoising_strength", 0.75, &d, err)) goto fail;
    json_object_set_new(j, "denoising_strength", json_real(d));
    if (get(req, "initial_noise_multiplier")) {
        if (r_num(req, "initial_noise_multiplier", 1.0, &d, err)) goto fail;
    } else if (set_num(&st, "initial_noise_multiplier", 1.0, &d, err))
        goto fail;
    json_object_set_new(j, "initial_noise_multiplier", json_real(d));
    if (r_bool(req, "include_init_images", 0, &b, err)) goto fail;
    if (inpaint) {
        json_object_set_new(j, "mask", json_string(mask));
        long long bx, by;
        if (r_int(req, "mask_blur_x", 4, &bx, err) || r_int(req, "mask_blur_y", 4, &by, err)) goto fail;
        if (get(req, "mask_blur")) {
            if (r_int(req, "mask_blur", 4, &i, err)) goto fail;
            bx = by = i;
        }
        json_object_set_new(j, "mask_blur_x", json_integer(bx));
        json_object_set_new(j, "mask_blur_y", json_integer(by));
        if (r_bool(req, "mask_round", 1, &b, err)) goto fail;
        json_object_set_new(j, "mask_round", json_boolean(b));
        if (r_int(req, "inpainting_fill", 0, &i, err)) goto fail;
        json_object_set_new(j, "inpainting_fill", json_integer(i));
        if (r_bool(req, "inpaint_full_res", 1, &b, err)) goto fail;
        json_object_set_new(j, "inpaint_full_res", json_boolean(b));
        if (r_int(req, "inpaint_full_res_padding", 0, &i, err)) goto fail;
        json_object_set_new(j, "inpaint_full_res_padding", json_integer(i));
        if (r_int(req, "inpainting_mask_invert", 0, &i, err)) goto fail;
        json_object_set_new(j, "inpainting_mask_invert", json_integer(i));
    }
    *job = j;
    return 0;
fail:
    json_decref(j);
    return -1;
}

static const char *const extras_upscalers[] = {"None", "Lanczos", "Nearest", "Bicubic", "Bilinear", NULL};

int ta1_extras_to_job(const json_t *req, json_t **job, ta1_error *err) {
    memset(err, 0, sizeof *err);
    *job = NULL;
    if (!json_is_object(req)) {
        fail(err, 422, VALIDATION, "the body must be a JSON object");
        return -1;
    }
    const char *image;
    if (r_str(req, "image", &image, err)) return -1;
    if (!image || !*image) {
        fail(err, 422, VALIDATION, "image: a base64 image is required");
        return -1;
    }
    long long mode, w, h;
    double resize, vis2;
    int crop, b;
    if (r_int(req, "resize_mode", 0, &mode, err)) return -1;
    if (mode != 0 && mode != 1) {
        fail(err, 422, VALIDATION, "resize_mode: unexpected value; permitted: 0, 1");
        return -1;
    }
    if (unsupported_zero(req, "gfpgan_visibility", "face restoration (GFPGAN)", err) ||
        unsupported_zero(req, "codeformer_visibility", "face restoration (CodeFormer)", err) ||
        r_num(req, "codeformer_weight", 0, &resize, err) || r_bool(req, "show_extras_results", 1, &b, err) ||
        r_bool(req, "upscale_first", 0, &b, err))
        return -1;
    if (r_num(req, "upscaling_resize", 2, &resize, err) || r_int(req, "upscaling_resize_w", 512, &w, err) ||
        r_int(req, "upscaling_resize_h", 512, &h, err) || r_bool(req, "upscaling_crop", 1, &crop, err))
        return -1;
    const char *u1, *u2;
    if (r_str(req, "upscaler_1", &u1, err) || r_str(req, "upscaler_2", &u2, err) ||
        r_num(req, "extras_upscaler_2_visibility", 0, &vis2, err))
        return -1;
    const char *up = NULL;
    if (!u1) u1 = "None";
    for (int k = 0; extras_upscalers[k]; k++)
        if (!strcasecmp(u1, extras_upscalers[k])) up = extras_upscalers[k];
    if (!up) {
        fail(err, 422, HTTPEXC, "upscaler_1: upscaler '%.64s' not found (this farm has None, Lanczos, Nearest, "
             "Bicubic, Bilinear)", u1);
        return -1;
    }
    if (u2 && strcmp(u2, "None") && vis2 != 0) {
        fail(err, 422, HTTPEXC, "upscaler_2: a second upscaler is not supported yet");
        return -1;
    }
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "extras", "image", image, "upscaler", up);
    if (mode == 0) {
        if (!(resize > 0) || resize > 16) {
            json_decref(j);
            fail(err, 422, VALIDATION, "upscaling_resize: must be greater than 0 and at most 16");
            return -1;
        }
        json_object_set_new(j, "resize", json_real(resize));
    } else {
        if (w < 1 || h < 1) {
            json_decref(j);
            fail(err, 422, VALIDATION, "%s: must be a positive number of pixels",
                 w < 1 ? "upscaling_resize_w" : "upscaling_resize_h");
            return -1;
        }
        json_object_set_new(j, "width", json_integer(w));
        json_object_set_new(j, "height", json_integer(h));
        json_object_set_new(j, "crop", json_boolean(crop));
    }
    *job = j;
    return 0;
}

/* ---- responses ------------------------------------------------------------------ */

/* The A1111 request model's fields with their API defaults, in A1111's order. */
static json_t *request_defaults(int is_img2img) {
    json_t *p = json_object();
    json_object_set_new(p, "prompt", json_string(""));
    json_object_set_new(p, "negative_prompt", json_string(""));
    json_object_set_new(p, "styles", json_null());
    json_object_set_new(p, "seed", json_integer(-1));
    json_object_set_new(p, "subseed", json_integer(-1));
    json_object_set_new(p, "subseed_strength", json_real(0));
    json_object_set_new(p, "seed_resize_from_h", json_integer(-1));
    json_object_set_new(p, "seed_resize_from_w", json_integer(-1));
    json_object_set_new(p, "sampler_name", json_null());
    json_object_set_new(p, "scheduler", json_null());
    json_object_set_new(p, "batch_size", json_integer(1));
    json_object_set_new(p, "n_iter", json_integer(1));
    json_object_set_new(p, "steps", json_integer(50));
    json_object_set_new(p, "cfg_scale", json_real(7.0));
    json_object_set_new(p, "width", json_integer(512));
    json_object_set_new(p, "height", json_integer(512));
    json_object_set_new(p, "restore_faces", json_null());
    json_object_set_new(p, "tiling", json_null());
    json_object_set_new(p, "do_not_save_samples", json_false());
    json_object_set_new(p, "do_not_save_grid", json_false());
    json_object_set_new(p, "eta", json_null());
    json_object_set_new(p, "denoising_strength", json_real(0.75));
    json_object_set_new(p, "s_min_uncond", json_null());
    json_object_set_new(p, "s_churn", json_null());
    json_object_set_new(p, "s_tmax", json_null());
    json_object_set_new(p, "s_tmin", json_null());
    json_object_set_new(p, "s_noise", json_null());
    json_object_set_new(p, "override_settings", json_null());
    json_object_set_new(p, "override_settings_restore_afterwards", json_true());
    json_object_set_new(p, "refiner_checkpoint", json_null());
    json_object_set_new(p, "refiner_switch_at", json_null());
    json_object_set_new(p, "disable_extra_networks", json_false());
    json_object_set_new(p, "firstpass_image", json_null());
    json_object_set_new(p, "comments", json_null());
    if (is_img2img) {
        json_object_set_new(p, "init_images", json_null());
        json_object_set_new(p, "resize_mode", json_integer(0));
        json_object_set_new(p, "image_cfg_scale", json_null());
        json_object_set_new(p, "mask", json_null());
        json_object_set_new(p, "mask_blur_x", json_integer(4));
        json_object_set_new(p, "mask_blur_y", json_integer(4));
        json_object_set_new(p, "mask_blur", json_null());
        json_object_set_new(p, "mask_round", json_true());
        json_object_set_new(p, "inpainting_fill", json_integer(0));
        json_object_set_new(p, "inpaint_full_res", json_true());
        json_object_set_new(p, "inpaint_full_res_padding", json_integer(0));
        json_object_set_new(p, "inpainting_mask_invert", json_integer(0));
        json_object_set_new(p, "initial_noise_multiplier", json_null());
        json_object_set_new(p, "latent_mask", json_null());
        json_object_del(p, "firstpass_image");
    } else {
        json_object_set_new(p, "enable_hr", json_false());
        json_object_set_new(p, "firstphase_width", json_integer(0));
        json_object_set_new(p, "firstphase_height", json_integer(0));
        json_object_set_new(p, "hr_scale", json_real(2.0));
        json_object_set_new(p, "hr_upscaler", json_null());
        json_object_set_new(p, "hr_second_pass_steps", json_integer(0));
        json_object_set_new(p, "hr_resize_x", json_integer(0));
        json_object_set_new(p, "hr_resize_y", json_integer(0));
        json_object_set_new(p, "hr_checkpoint_name", json_null());
        json_object_set_new(p, "hr_sampler_name", json_null());
        json_object_set_new(p, "hr_scheduler", json_null());
        json_object_set_new(p, "hr_prompt", json_string(""));
        json_object_set_new(p, "hr_negative_prompt", json_string(""));
    }
    json_object_set_new(p, "force_task_id", json_null());
    json_object_set_new(p, "sampler_index", json_string("Euler"));
    json_object_set_new(p, "script_name", json_null());
    json_object_set_new(p, "script_args", json_array());
    json_object_set_new(p, "send_images", json_true());
    json_object_set_new(p, "save_images", json_false());
    json_object_set_new(p, "alwayson_scripts", json_object());
    json_object_set_new(p, "infotext", json_null());
    return p;
}

/* The request echoed over the defaults: only the model's fields, numbers
 * coerced as pydantic would have. */
static json_t *echo_parameters(const json_t *req, int is_img2img) {
    json_t *p = request_defaults(is_img2img);
    const char *key;
    json_t *def;
    void *tmp;
    json_object_foreach_safe(p, tmp, key, def) {
        json_t *v = json_object_get(req, key);
        if (!v) continue;
        long long i;
        double d;
        int b;
        if (json_is_integer(def) && !json_is_null(v) && !coerce_int(v, &i))
            json_object_set_new(p, key, json_integer(i));
        else if (json_is_real(def) && !json_is_null(v) && !coerce_num(v, &d))
            json_object_set_new(p, key, json_real(d));
        else if (json_is_boolean(def) && !json_is_null(v) && !coerce_bool(v, &b))
            json_object_set_new(p, key, json_boolean(b));
        else
            json_object_set(p, key, v);
    }
    int include = 0;
    const json_t *inc = get(req, "include_init_images");
    if (inc && coerce_bool(inc, &include)) include = 0;
    if (is_img2img && !include) {
        json_object_set_new(p, "init_images", json_null());
        json_object_set_new(p, "mask", json_null());
    }
    return p;
}

static json_t *info_or(const json_t *ri, const char *key, json_t *fallback) {
    const json_t *v = ri ? json_object_get(ri, key) : NULL;
    if (v) {
        json_decref(fallback);
        return json_incref((json_t *)v);
    }
    return fallback;
}

static json_t *first_or(const json_t *arr, json_t *fallback) {
    if (json_is_array(arr) && json_array_size(arr)) {
        json_decref(fallback);
        return json_incref(json_array_get(arr, 0));
    }
    return fallback;
}

static json_t *repeat(const json_t *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append(a, (json_t *)v);
    return a;
}

static const char *prompt_of(const json_t *params, const char *key) {
    const json_t *v = json_object_get(params, key);
    if (json_is_array(v) && json_array_size(v)) v = json_array_get(v, 0);
    return json_is_string(v) ? json_string_value(v) : "";
}

static long long int_or(const json_t *v, long long def) {
    long long i;
    return v && !coerce_int(v, &i) ? i : def;
}

static json_t *build_info(const json_t *params, const json_t *ri, int nimages) {
    json_t *info = json_object();
    json_t *prompt = json_string(prompt_of(params, "prompt"));
    json_t *neg = json_string(prompt_of(params, "negative_prompt"));
    const json_t *seeds = ri ? json_object_get(ri, "seeds") : NULL;
    const json_t *subseeds = ri ? json_object_get(ri, "subseeds") : NULL;
    json_object_set(info, "prompt", prompt);
    json_object_set_new(info, "all_prompts", info_or(ri, "prompts", repeat(prompt, nimages)));
    json_object_set(info, "negative_prompt", neg);
    json_object_set_new(info, "all_negative_prompts", info_or(ri, "negative_prompts", repeat(neg, nimages)));
    json_decref(prompt);
    json_decref(neg);
    json_object_set_new(info, "seed", first_or(seeds, json_integer(int_or(json_object_get(params, "seed"), -1))));
    json_object_set_new(info, "all_seeds", seeds ? json_incref((json_t *)seeds) : json_array());
    json_object_set_new(info, "subseed",
                        first_or(subseeds, json_integer(int_or(json_object_get(params, "subseed"), -1))));
    json_object_set_new(info, "all_subseeds", subseeds ? json_incref((json_t *)subseeds) : json_array());
    json_object_set(info, "subseed_strength", json_object_get(params, "subseed_strength"));
    json_object_set_new(info, "width", info_or(ri, "width", json_incref(json_object_get(params, "width"))));
    json_object_set_new(info, "height", info_or(ri, "height", json_incref(json_object_get(params, "height"))));
    const json_t *sn = json_object_get(params, "sampler_name");
    json_object_set_new(info, "sampler_name",
                        info_or(ri, "sampler_name", json_is_string(sn) ? json_incref((json_t *)sn)
                                                                       : json_incref(json_object_get(params, "sampler_index"))));
    json_object_set_new(info, "cfg_scale", info_or(ri, "cfg_scale", json_incref(json_object_get(params, "cfg_scale"))));
    json_object_set_new(info, "steps", info_or(ri, "steps", json_incref(json_object_get(params, "steps"))));
    json_object_set(info, "batch_size", json_object_get(params, "batch_size"));
    json_object_set_new(info, "restore_faces", json_false());
    json_object_set_new(info, "face_restoration_model", json_null());
    json_object_set_new(info, "sd_model_name", info_or(ri, "model", json_null()));
    json_object_set_new(info, "sd_model_hash", info_or(ri, "model_hash", json_null()));
    json_object_set_new(info, "sd_vae_name", info_or(ri, "vae", json_null()));
    json_object_set_new(info, "sd_vae_hash", info_or(ri, "vae_hash", json_null()));
    json_object_set(info, "seed_resize_from_w", json_object_get(params, "seed_resize_from_w"));
    json_object_set(info, "seed_resize_from_h", json_object_get(params, "seed_resize_from_h"));
    json_object_set_new(info, "denoising_strength", info_or(ri, "denoising_strength", json_null()));
    json_object_set_new(info, "extra_generation_params", json_object());
    json_object_set_new(info, "index_of_first_image", json_integer(0));
    json_object_set_new(info, "infotexts", info_or(ri, "infotexts", json_array()));
    json_object_set_new(info, "styles", json_array());
    json_object_set_new(info, "job_timestamp", info_or(ri, "job_timestamp", json_null()));
    json_object_set_new(info, "clip_skip", info_or(ri, "clip_skip", json_integer(1)));
    json_object_set_new(info, "is_using_inpainting_conditioning",
                        info_or(ri, "is_using_inpainting_conditioning", json_false()));
    json_object_set_new(info, "version", json_string("tessera"));
    return info;
}

json_t *ta1_response(const json_t *req, int is_img2img, const json_t *result_info, const char *const *images_b64,
                     int nimages) {
    json_t *params = echo_parameters(req, is_img2img);
    int send = 1;
    const json_t *si = get(req, "send_images");
    if (si && coerce_bool(si, &send)) send = 1;
    json_t *images = json_array();
    for (int i = 0; send && i < nimages; i++) json_array_append_new(images, json_string(images_b64[i]));
    json_t *info = build_info(params, json_is_object(result_info) ? result_info : NULL, nimages);
    char *text = json_dumps(info, 0);
    json_decref(info);
    json_t *out = json_pack("{s:o, s:o, s:s}", "images", images, "parameters", params, "info", text ? text : "{}");
    free(text);
    return out;
}

/* ---- options ---------------------------------------------------------------------- */

json_t *ta1_default_options(void) {
    json_t *o = json_object();
    json_object_set_new(o, "sd_model_checkpoint", json_string(""));
    json_object_set_new(o, "sd_checkpoint_hash", json_string(""));
    json_object_set_new(o, "sd_vae", json_string("Automatic"));
    json_object_set_new(o, "CLIP_stop_at_last_layers", json_integer(1));
    json_object_set_new(o, "eta_noise_seed_delta", json_integer(0));
    json_object_set_new(o, "randn_source", json_string("GPU"));
    json_object_set_new(o, "emphasis", json_string("Original"));
    json_object_set_new(o, "comma_padding_backtrack", json_integer(20));
    json_object_set_new(o, "samples_format", json_string("png"));
    json_object_set_new(o, "enable_pnginfo", json_true());
    json_object_set_new(o, "samples_save", json_false());
    json_object_set_new(o, "grid_save", json_false());
    json_object_set_new(o, "return_grid", json_false());
    json_object_set_new(o, "outdir_samples", json_string(""));
    json_object_set_new(o, "outdir_txt2img_samples", json_string(""));
    json_object_set_new(o, "outdir_img2img_samples", json_string(""));
    json_object_set_new(o, "live_previews_enable", json_true());
    json_object_set_new(o, "show_progress_every_n_steps", json_integer(-1));
    json_object_set_new(o, "eta_ancestral", json_real(1.0));
    json_object_set_new(o, "eta_ddim", json_real(0.0));
    json_object_set_new(o, "s_churn", json_real(0.0));
    json_object_set_new(o, "s_tmin", json_real(0.0));
    json_object_set_new(o, "s_tmax", json_real(0.0));
    json_object_set_new(o, "s_noise", json_real(1.0));
    json_object_set_new(o, "s_min_uncond", json_real(0.0));
    json_object_set_new(o, "initial_noise_multiplier", json_real(1.0));
    json_object_set_new(o, "img2img_fix_steps", json_false());
    json_object_set_new(o, "always_discard_next_to_last_sigma", json_false());
    json_object_set_new(o, "sgm_noise_multiplier", json_false());
    json_object_set_new(o, "face_restoration", json_false());
    json_object_set_new(o, "tiling", json_false());
    json_object_set_new(o, "sd_checkpoints_limit", json_integer(1));
    json_object_set_new(o, "jpeg_quality", json_integer(80));
    return o;
}
