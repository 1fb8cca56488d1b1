/* job_sd.c - the Stable Diffusion jobs: txt2img, img2img and inpaint.
 *
 * The fields, their defaults and rules are docs/jobs-sd.md; this file is the
 * only place that enforces them. Like every validator it finishes before
 * anything is stored and refuses with 422 naming the field, so a client can
 * fix its request, and it writes a canonical spec: every field present, names
 * resolved (sampler "DPM++ 2M Karras" -> sampler "DPM++ 2M" + scheduler
 * "Automatic"), random seeds drawn here, at submission, so that a retried job
 * renders the same images on any worker.
 *
 * Images (img2img/inpaint) are base64 (a data: URL prefix is fine), decoded,
 * probed from the header against the pixel limits before anything else reads
 * them, then checked for completeness. The bytes do not go into the spec:
 * out->input is the tjob_inputs_pack blob (image first, mask second) and the
 * spec describes them under "input" and "mask".
 *
 * Decisions where the doc is silent:
 *  - null means "absent" (the default) for every field; eta/model/vae keep
 *    null as their canonical "default" value.
 *  - Integers must be JSON integers and booleans JSON booleans (the A1111
 *    routes coerce pydantic-style before they get here).
 *  - An img2img body with a mask is an inpaint: the job's type becomes
 *    "inpaint" and the inpaint fields are accepted. Inpaint fields without a
 *    mask are refused (they would be silently meaningless).
 *  - Given only one of width/height on img2img, the other still defaults to
 *    the image's (rounded) size: the doc's rule applies per field.
 *  - An unknown scheduler is refused (A1111 silently falls back to
 *    Automatic; the /sdapi routes keep that behaviour, see a1111.c).
 *  - UniPC runs txt2img only (tsm_run_timesteps_img2img refuses it) and
 *    needs at least 3 steps (A1111 asserts its order 3 < the step count);
 *    both are refused here rather than failing on a worker after queueing.
 *  - Hires fix (txt2img): enable_hr false/null drops every hr_* field;
 *    with enable_hr true the fields are validated and stored as "hires":
 *    {scale, resize_x, resize_y, upscaler, steps, denoising_strength,
 *    sampler_name, scheduler, prompt, negative_prompt} (upscaler: a latent
 *    mode, None, Lanczos, Nearest, or an upscaler model name the worker
 *    resolves); the target size counts against the pixel limits.
 *    hr_checkpoint_name other than "Use same checkpoint", hr_cfg,
 *    hr_additional_modules and firstphase_* are refused.
 *  - vae "Automatic" (any case) and null are the same: canonical null;
 *    "None" keeps its canonical spelling. model "" is null.
 *  - ensd is 0..4294967295; seed_resize_from_* need not be multiples of 8.
 */
#include "base64.h"
#include "image_io.h"
#include "job.h"
#include "rng.h"
#include "sampler.h"
#include "tile_grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SD_MAX_PROMPT (64 << 10)
#define SD_MAX_NAME 1024
#define SD_MAX_SEED 4294967295LL
#define SD_MAX_N_ITER 100

/* ---- field helpers: absent or null -> default; wrong type or range -> 422 -- */

static const json_t *field(const json_t *body, const char *name) {
    const json_t *v = json_object_get(body, name);
    return v && !json_is_null(v) ? v : NULL;
}

static int get_int(const json_t *body, const char *name, long long def, long long lo, long long hi,
                   long long *out, tjob_error *err) {
    const json_t *v = field(body, name);
    *out = def;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        tjob_fail(err, 422, "invalid_field", name, "%s must be an integer from %lld to %lld", name, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int get_num(const json_t *body, const char *name, double def, double lo, double hi, double *out,
                   tjob_error *err) {
    const json_t *v = field(body, name);
    *out = def;
    if (!v) return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        tjob_fail(err, 422, "invalid_field", name, "%s must be a number from %g to %g", name, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int get_bool(const json_t *body, const char *name, int def, int *out, tjob_error *err) {
    const json_t *v = field(body, name);
    *out = def;
    if (!v) return 0;
    if (!json_is_boolean(v)) {
        tjob_fail(err, 422, "invalid_field", name, "%s must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* A string of at most maxlen bytes; *out stays def when absent. */
static int get_str(const json_t *body, const char *name, const char *def, size_t maxlen, const char **out,
                   tjob_error *err) {
    const json_t *v = field(body, name);
    *out = def;
    if (!v) return 0;
    if (!json_is_string(v)) {
        tjob_fail(err, 422, "invalid_field", name, "%s must be a string", name);
        return -1;
    }
    if (json_string_length(v) > maxlen) {
        tjob_fail(err, 422, "invalid_field", name, "%s is %zu bytes; the limit is %zu", name, json_string_length(v),
                  maxlen);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* One of choices (case-insensitive) -> its canonical spelling. */
static int get_choice(const json_t *body, const char *name, const char *const *choices, const char **out,
                      tjob_error *err) {
    const json_t *v = field(body, name);
    *out = choices[0];
    if (!v) return 0;
    if (json_is_string(v))
        for (int i = 0; choices[i]; i++)
            if (!strcasecmp(json_string_value(v), choices[i])) {
                *out = choices[i];
                return 0;
            }
    char list[256] = "";
    for (int i = 0; choices[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", i ? ", " : "", choices[i]);
    tjob_fail(err, 422, "invalid_field", name, "%s must be one of %s", name, list);
    return -1;
}

/* seed/subseed: negative = random, drawn now into [0, 4294967294) as A1111's
 * random.randrange(4294967294); stored resolved. */
static int get_seed(const json_t *body, const char *name, json_t *spec, tjob_error *err) {
    const json_t *v = field(body, name);
    long long s = -1;
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) > SD_MAX_SEED) {
            tjob_fail(err, 422, "invalid_field", name, "%s must be an integer up to %lld (-1 = random)", name,
                      SD_MAX_SEED);
            return -1;
        }
        s = json_integer_value(v);
    }
    uint64_t entropy = 0;
    if (s < 0 && tjob_random_bytes(&entropy, sizeof entropy)) {
        tjob_fail(err, 500, "internal", name, "cannot draw a random %s", name);
        return -1;
    }
    json_object_set_new(spec, name, json_integer((json_int_t)trng_resolve_seed(s < 0 ? -1 : s, entropy)));
    return 0;
}

static int limit_or(int v, int def) { return v > 0 ? v : def; }

/* ---- the fields of every SD job --------------------------------------------- */

static const char *const common_fields[] = {
    "prompt",  "negative_prompt", "seed",    "subseed", "subseed_strength", "seed_resize_from_w",
    "seed_resize_from_h", "sampler_name", "scheduler", "steps", "cfg_scale", "width", "height",
    "batch_size", "n_iter", "eta", "s_churn", "s_tmin", "s_tmax", "s_noise", "clip_skip", "model", "vae",
    "rng", "ensd", "emphasis", "preview_every", "tiled_diffusion", NULL};
static const char *const img2img_fields[] = {"image", "mask", "denoising_strength", "resize_mode",
                                             "initial_noise_multiplier", NULL};
static const char *const inpaint_fields[] = {"mask_blur", "mask_blur_x", "mask_blur_y", "mask_round",
                                             "inpainting_fill", "inpaint_full_res", "inpaint_full_res_padding",
                                             "inpainting_mask_invert", NULL};
/* txt2img's hires fix (A1111 names) */
static const char *const hires_fields[] = {"enable_hr", "denoising_strength", "firstphase_width", "firstphase_height",
                                           "hr_scale", "hr_upscaler", "hr_second_pass_steps", "hr_resize_x",
                                           "hr_resize_y", "hr_checkpoint_name", "hr_sampler_name", "hr_scheduler",
                                           "hr_prompt", "hr_negative_prompt", "hr_additional_modules", "hr_cfg",
                                           "hr_distilled_cfg", NULL};

static int check_known(const json_t *body, const char *const *a, const char *const *b, const char *const *c,
                       tjob_error *err) {
    const char *known[96];
    int n = 0;
    const char *const *lists[3] = {a, b, c};
    for (int l = 0; l < 3; l++)
        for (int i = 0; lists[l] && lists[l][i] && n < 95; i++) known[n++] = lists[l][i];
    known[n] = NULL;
    return tjob_check_known_fields(body, known, err);
}

static int in_list(const char *key, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(key, list[i])) return 1;
    return 0;
}

static void scheduler_list(char *buf, size_t cap) {
    buf[0] = 0;
    for (int i = 0; i < TSM_SCHED_COUNT; i++) {
        const tsm_scheduler_info *s = tsm_scheduler_get((tsm_scheduler)i);
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? ", " : "", s->label);
    }
}

static int sampler_fields(const json_t *body, int is_img, json_t *spec, tsm_sampler_id *out_id, tjob_error *err) {
    const char *sname, *schname;
    if (get_str(body, "sampler_name", NULL, 128, &sname, err) || get_str(body, "scheduler", NULL, 128, &schname, err))
        return -1;
    tsm_scheduler sch = TSM_SCHED_AUTOMATIC;
    if (schname && *schname && tsm_scheduler_find(schname, &sch) != TSM_OK) {
        char list[300];
        scheduler_list(list, sizeof list);
        tjob_fail(err, 422, "invalid_field", "scheduler", "unknown scheduler '%.64s' (one of: %s)", schname, list);
        return -1;
    }
    tsm_sampler_id id;
    if (tsm_resolve(sname, schname, &id, &sch) != TSM_OK) {
        char list[400] = "";
        const char *const *names = tsm_sampler_names();
        for (int i = 0; names[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
        tjob_fail(err, 422, "invalid_field", "sampler_name", "unknown sampler '%.64s' (one of: %s)", sname, list);
        return -1;
    }
    if (id == TSM_UNIPC && is_img) {
        tjob_fail(err, 422, "invalid_field", "sampler_name", "UniPC is not supported for img2img/inpaint yet");
        return -1;
    }
    *out_id = id;
    json_object_set_new(spec, "sampler_name", json_string(tsm_sampler_get(id)->name));
    json_object_set_new(spec, "scheduler", json_string(tsm_scheduler_get(sch)->label));
    return 0;
}

/* Tiled Diffusion (tiling.md 1-2): {"method", "tile_width", "tile_height",
 * "overlap", "tile_batch_size"}, sizes in latent pixels; defaults as the
 * A1111 extension's UI: 96/96, overlap 48 and MultiDiffusion for txt2img,
 * overlap 8 and Mixture of Diffusers for img2img; batch 4. */
static int sd_tiled(const json_t *body, int is_img, json_t *spec, tjob_error *err) {
    const json_t *td = field(body, "tiled_diffusion");
    if (!td) return 0;
    if (!json_is_object(td)) {
        tjob_fail(err, 422, "invalid_field", "tiled_diffusion", "tiled_diffusion must be an object");
        return -1;
    }
    static const char *const known[] = {"method", "tile_width", "tile_height", "overlap", "tile_batch_size", NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)td, key, v) {
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= !strcmp(key, known[i]);
        if (!ok) {
            char f[160];
            snprintf(f, sizeof f, "tiled_diffusion.%.100s", key);
            tjob_fail(err, 422, "unknown_field", f, "unknown field %s", f);
            return -1;
        }
    }
    static const char *const methods[] = {"MultiDiffusion", "Mixture of Diffusers", NULL};
    const char *method;
    long long tw, th, ov, bs;
    if (get_choice(td, "method", methods, &method, err)) {
        snprintf(err->field, sizeof err->field, "tiled_diffusion.method");
        return -1;
    }
    if (!field(td, "method")) method = is_img ? "Mixture of Diffusers" : "MultiDiffusion";
    if (get_int(td, "tile_width", 96, 16, 256, &tw, err) || get_int(td, "tile_height", 96, 16, 256, &th, err) ||
        get_int(td, "overlap", is_img ? 8 : 48, 0, 256, &ov, err) || get_int(td, "tile_batch_size", 4, 1, 8, &bs, err)) {
        char f[sizeof err->field];
        memcpy(f, err->field, sizeof f);
        snprintf(err->field, sizeof err->field, "tiled_diffusion.%.100s", f);
        return -1;
    }
    json_object_set_new(spec, "tiled_diffusion",
                        json_pack("{s:s, s:I, s:I, s:I, s:I}", "method", method, "tile_width", tw, "tile_height", th,
                                  "overlap", ov, "tile_batch_size", bs));
    return 0;
}

/* Everything of the common table except width/height (sd_size). */
static int sd_common(const json_t *body, const tjob_limits *lim, int is_img, json_t *spec, tjob_error *err) {
    static const char *const rngs[] = {"GPU", "CPU", "NV", NULL};
    static const char *const emphases[] = {"Original", "No norm", "Ignore", "None", NULL};
    const char *s;
    long long i;
    double d;

    if (get_str(body, "prompt", "", SD_MAX_PROMPT, &s, err)) return -1;
    json_object_set_new(spec, "prompt", json_string(s));
    if (get_str(body, "negative_prompt", "", SD_MAX_PROMPT, &s, err)) return -1;
    json_object_set_new(spec, "negative_prompt", json_string(s));

    if (get_seed(body, "seed", spec, err) || get_seed(body, "subseed", spec, err)) return -1;
    if (get_num(body, "subseed_strength", 0, 0, 1, &d, err)) return -1;
    json_object_set_new(spec, "subseed_strength", json_real(d));
    static const char *const resize_names[2] = {"seed_resize_from_w", "seed_resize_from_h"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = field(body, resize_names[k]);
        long long r = 0;
        if (v) {
            if (!json_is_integer(v)) {
                tjob_fail(err, 422, "invalid_field", resize_names[k], "%s must be an integer (0 or less = off)",
                          resize_names[k]);
                return -1;
            }
            r = json_integer_value(v);
            int max = k ? lim->max_height : lim->max_width;
            if (r <= 0)
                r = 0;
            else if (r < 64 || r > max) {
                tjob_fail(err, 422, "invalid_field", resize_names[k], "%s must be 0 (off) or 64 to %d pixels",
                          resize_names[k], max);
                return -1;
            }
        }
        json_object_set_new(spec, resize_names[k], json_integer(r));
    }

    tsm_sampler_id sampler;
    if (sampler_fields(body, is_img, spec, &sampler, err)) return -1;

    int max_steps = limit_or(lim->max_steps, 150);
    if (get_int(body, "steps", 20, 1, max_steps, &i, err)) return -1;
    if (sampler == TSM_UNIPC && i < 3) {
        tjob_fail(err, 422, "invalid_field", "steps", "UniPC needs at least 3 steps (its order is 3)");
        return -1;
    }
    json_object_set_new(spec, "steps", json_integer(i));
    if (get_num(body, "cfg_scale", 7, 0, 100, &d, err)) return -1;
    json_object_set_new(spec, "cfg_scale", json_real(d));

    long long bs, ni;
    int max_batch = limit_or(lim->max_batch, 16), max_images = limit_or(lim->max_images, 64);
    if (get_int(body, "batch_size", 1, 1, max_batch, &bs, err) ||
        get_int(body, "n_iter", 1, 1, SD_MAX_N_ITER, &ni, err))
        return -1;
    if (bs * ni > max_images) {
        tjob_fail(err, 422, "invalid_field", "n_iter",
                  "batch_size * n_iter is %lld images; the limit is %d per job", bs * ni, max_images);
        return -1;
    }
    json_object_set_new(spec, "batch_size", json_integer(bs));
    json_object_set_new(spec, "n_iter", json_integer(ni));
    json_object_set_new(spec, "images", json_integer(bs * ni));

    const json_t *eta = field(body, "eta");
    if (eta && (!json_is_number(eta) || !(json_number_value(eta) >= 0) || json_number_value(eta) > 1e6)) {
        tjob_fail(err, 422, "invalid_field", "eta", "eta must be null (the sampler's default) or a number >= 0");
        return -1;
    }
    json_object_set_new(spec, "eta", eta ? json_real(json_number_value(eta)) : json_null());
    static const char *const churn[4] = {"s_churn", "s_tmin", "s_tmax", "s_noise"};
    static const double churn_def[4] = {0, 0, 0, 1};
    for (int k = 0; k < 4; k++) {
        if (get_num(body, churn[k], churn_def[k], 0, 1e6, &d, err)) return -1;
        json_object_set_new(spec, churn[k], json_real(d));
    }

    if (get_int(body, "clip_skip", 1, 1, 12, &i, err)) return -1;
    json_object_set_new(spec, "clip_skip", json_integer(i));
    if (get_str(body, "model", NULL, SD_MAX_NAME, &s, err)) return -1;
    json_object_set_new(spec, "model", s && *s ? json_string(s) : json_null());
    if (get_str(body, "vae", NULL, SD_MAX_NAME, &s, err)) return -1;
    if (s && (!*s || !strcasecmp(s, "Automatic"))) s = NULL;
    if (s && !strcasecmp(s, "None")) s = "None";
    json_object_set_new(spec, "vae", s ? json_string(s) : json_null());
    if (get_choice(body, "rng", rngs, &s, err)) return -1;
    json_object_set_new(spec, "rng", json_string(s));
    if (get_int(body, "ensd", 0, 0, SD_MAX_SEED, &i, err)) return -1;
    json_object_set_new(spec, "ensd", json_integer(i));
    if (get_choice(body, "emphasis", emphases, &s, err)) return -1;
    json_object_set_new(spec, "emphasis", json_string(s));
    if (get_int(body, "preview_every", 0, 0, 1000, &i, err)) return -1;
    json_object_set_new(spec, "preview_every", json_integer(i));
    return 0;
}

/* width/height: multiples of 8 within the limits; defw/defh when absent. */
static int sd_size(const json_t *body, const tjob_limits *lim, json_t *spec, int defw, int defh, tjob_error *err) {
    long long w, h;
    static const char *const names[2] = {"width", "height"};
    long long *vals[2] = {&w, &h};
    const int defs[2] = {defw, defh}, maxs[2] = {lim->max_width, lim->max_height};
    for (int k = 0; k < 2; k++) {
        if (get_int(body, names[k], defs[k], 8, maxs[k], vals[k], err)) return -1;
        if (*vals[k] % 8) {
            tjob_fail(err, 422, "invalid_field", names[k], "%s must be a multiple of 8 (got %lld)", names[k],
                      *vals[k]);
            return -1;
        }
    }
    if (w * h > lim->max_pixels) {
        tjob_fail(err, 422, "invalid_field", "width", "%lldx%lld is over the limit of %lld pixels", w, h,
                  lim->max_pixels);
        return -1;
    }
    json_object_set_new(spec, "width", json_integer(w));
    json_object_set_new(spec, "height", json_integer(h));
    return 0;
}

/* ---- txt2img ---------------------------------------------------------------- */

static const char *const latent_modes[] = {"Latent", "Latent (antialiased)", "Latent (bicubic)",
                                           "Latent (bicubic antialiased)", "Latent (nearest)",
                                           "Latent (nearest-exact)", NULL};

/* Hires fix: validated into spec.hires (or nothing when enable_hr is off). */
static int sd_hires(const json_t *body, const tjob_limits *lim, json_t *spec, tjob_error *err) {
    int on = 0;
    if (get_bool(body, "enable_hr", 0, &on, err)) return -1;
    if (!on) return 0;
    static const char *const refused[] = {"firstphase_width", "firstphase_height", "hr_additional_modules", "hr_cfg",
                                          "hr_distilled_cfg", NULL};
    for (int i = 0; refused[i]; i++) {
        const json_t *v = field(body, refused[i]);
        if (v && !(json_is_integer(v) && json_integer_value(v) == 0)) {
            tjob_fail(err, 422, "invalid_field", refused[i], "%s is not supported", refused[i]);
            return -1;
        }
    }
    const char *ck;
    if (get_str(body, "hr_checkpoint_name", NULL, 256, &ck, err)) return -1;
    if (ck && ck[0] && strcmp(ck, "Use same checkpoint")) {
        tjob_fail(err, 422, "invalid_field", "hr_checkpoint_name", "a second checkpoint for the hires pass is not supported yet");
        return -1;
    }
    json_t *h = json_object();
    json_object_set_new(spec, "hires", h);
    double scale, dn;
    long long rx, ry, steps;
    if (get_num(body, "hr_scale", 2.0, 1.0, 8.0, &scale, err) || get_int(body, "hr_resize_x", 0, 0, lim->max_width, &rx, err) ||
        get_int(body, "hr_resize_y", 0, 0, lim->max_height, &ry, err) ||
        get_int(body, "hr_second_pass_steps", 0, 0, limit_or(lim->max_steps, 150), &steps, err) ||
        get_num(body, "denoising_strength", 0.7, 0.0, 1.0, &dn, err))
        return -1;
    /* the target size, as A1111's calculate_target_resolution */
    long long w = json_integer_value(json_object_get(spec, "width")), hh = json_integer_value(json_object_get(spec, "height"));
    long long tx, ty;
    if (rx == 0 && ry == 0) {
        tx = (long long)(w * scale);
        ty = (long long)(hh * scale);
    } else if (ry == 0) {
        tx = rx;
        ty = rx * hh / w;
    } else if (rx == 0) {
        tx = ry * w / hh;
        ty = ry;
    } else {
        tx = rx;
        ty = ry;
    }
    if (tx < 8 || ty < 8 || tx > lim->max_width * 2 || ty > lim->max_height * 2 || tx * ty > lim->max_pixels) {
        tjob_fail(err, 422, "invalid_field", rx || ry ? "hr_resize_x" : "hr_scale",
                  "the hires size %lldx%lld is outside the limits (%d x %d, %lld pixels)", tx, ty, lim->max_width,
                  lim->max_height, lim->max_pixels);
        return -1;
    }
    json_object_set_new(h, "scale", json_real(scale));
    json_object_set_new(h, "resize_x", json_integer(rx));
    json_object_set_new(h, "resize_y", json_integer(ry));
    json_object_set_new(h, "steps", json_integer(steps));
    json_object_set_new(h, "denoising_strength", json_real(dn));
    const char *up;
    if (get_str(body, "hr_upscaler", NULL, 128, &up, err)) return -1;
    int given = up && up[0];
    if (!given) up = "Latent";
    for (int i = 0; latent_modes[i]; i++)
        if (!strcasecmp(up, latent_modes[i])) up = latent_modes[i];
    if (!strncasecmp(up, "Latent", 6) && !in_list(up, latent_modes)) {
        tjob_fail(err, 422, "invalid_field", "hr_upscaler", "unknown latent upscale mode '%.64s'", up);
        return -1;
    }
    for (const char *c = up; *c; c++)
        if (*c == '/' || *c == '\\' || (c[0] == '.' && c[1] == '.')) {
            tjob_fail(err, 422, "invalid_field", "hr_upscaler", "bad upscaler name");
            return -1;
        }
    /* null = not given: "Latent", and no "Hires upscaler" in the infotext (A1111) */
    json_object_set_new(h, "upscaler", given ? json_string(up) : json_null());
    const char *hs, *hsch, *hp, *hn;
    if (get_str(body, "hr_sampler_name", NULL, 128, &hs, err) || get_str(body, "hr_scheduler", NULL, 128, &hsch, err) ||
        get_str(body, "hr_prompt", "", SD_MAX_PROMPT, &hp, err) ||
        get_str(body, "hr_negative_prompt", "", SD_MAX_PROMPT, &hn, err))
        return -1;
    if (hs && hs[0] && strcmp(hs, "Use same sampler")) {
        tsm_sampler_id id;
        tsm_scheduler sch = TSM_SCHED_AUTOMATIC;
        if (tsm_resolve(hs, hsch, &id, &sch) != TSM_OK) {
            tjob_fail(err, 422, "invalid_field", "hr_sampler_name", "unknown sampler '%.64s'", hs);
            return -1;
        }
        if (id == TSM_UNIPC) {
            tjob_fail(err, 422, "invalid_field", "hr_sampler_name", "UniPC cannot run the hires pass yet");
            return -1;
        }
        json_object_set_new(h, "sampler_name", json_string(tsm_sampler_get(id)->name));
        /* a scheduler named (or a legacy suffix like "DPM++ 2M Karras") is the
         * hires pass's own; else the first pass's applies */
        tsm_scheduler sfx = TSM_SCHED_AUTOMATIC;
        tsm_find(hs, NULL, &sfx);
        int own = (hsch && hsch[0]) || sfx != TSM_SCHED_AUTOMATIC;
        json_object_set_new(h, "scheduler", own ? json_string(tsm_scheduler_get(sch)->label) : json_null());
    } else {
        json_object_set_new(h, "sampler_name", json_null());
        if (hsch && hsch[0]) {
            tsm_scheduler sch;
            if (tsm_scheduler_find(hsch, &sch) != TSM_OK) {
                tjob_fail(err, 422, "invalid_field", "hr_scheduler", "unknown scheduler '%.64s'", hsch);
                return -1;
            }
            json_object_set_new(h, "scheduler", json_string(tsm_scheduler_get(sch)->label));
        } else
            json_object_set_new(h, "scheduler", json_null());
    }
    if (!strcmp(json_string_value(json_object_get(spec, "sampler_name")), "UniPC") && (!hs || !hs[0])) {
        tjob_fail(err, 422, "invalid_field", "hr_sampler_name", "UniPC cannot run the hires pass yet: name another hr_sampler_name");
        return -1;
    }
    json_object_set_new(h, "prompt", json_string(hp));
    json_object_set_new(h, "negative_prompt", json_string(hn));
    return 0;
}

int tjob_validate_txt2img(const json_t *body, const tjob_limits *lim, json_t *spec, tjob_submission *out,
                          tjob_error *err) {
    (void)out;
    if (check_known(body, common_fields, hires_fields, NULL, err)) return -1;
    if (sd_common(body, lim, 0, spec, err) || sd_tiled(body, 0, spec, err) || sd_size(body, lim, spec, 512, 512, err) ||
        sd_hires(body, lim, spec, err))
        return -1;
    return 0;
}

/* ---- img2img and inpaint ------------------------------------------------------ */

typedef struct {
    uint8_t *buf;
    size_t len;
    ti_format fmt;
    int w, h, alpha;
} sd_image;

/* Decode and probe body[name]; a missing optional image leaves im->buf NULL. */
static int sd_decode_image(const json_t *body, const char *name, int required, const tjob_limits *lim,
                           sd_image *im, tjob_error *err) {
    memset(im, 0, sizeof *im);
    const json_t *v = field(body, name);
    if (!v) {
        if (!required) return 0;
        tjob_fail(err, 422, "missing_field", name, "%s is required: a base64 PNG, JPEG or WebP", name);
        return -1;
    }
    if (!json_is_string(v)) {
        tjob_fail(err, 422, "invalid_field", name, "%s must be a base64 string", name);
        return -1;
    }
    if ((long long)(json_string_length(v) / 4 * 3) > lim->max_input_bytes + 3) {
        tjob_fail(err, 413, "image_too_large", name, "%s is larger than the limit of %lld bytes", name,
                  lim->max_input_bytes);
        return -1;
    }
    char msg[256];
    if (tb64_decode(json_string_value(v), json_string_length(v), &im->buf, &im->len, msg, sizeof msg)) {
        tjob_fail(err, 422, "invalid_field", name, "%s is not valid base64: %s", name, msg);
        return -1;
    }
    if ((long long)im->len > lim->max_input_bytes) {
        tjob_fail(err, 413, "image_too_large", name, "%s is %zu bytes; the limit is %lld", name, im->len,
                  lim->max_input_bytes);
        return -1;
    }
    if (ti_probe(im->buf, im->len, &im->fmt, &im->w, &im->h, &im->alpha, msg, sizeof msg)) {
        tjob_fail(err, 422, "invalid_field", name, "%s is not a readable PNG, JPEG or WebP: %s", name, msg);
        return -1;
    }
    if (im->w > lim->max_width || im->h > lim->max_height || (long long)im->w * im->h > lim->max_pixels) {
        tjob_fail(err, 422, "invalid_field", name, "%s is %dx%d; the limits are %dx%d and %lld pixels", name, im->w,
                  im->h, lim->max_width, lim->max_height, lim->max_pixels);
        return -1;
    }
    /* only now, with the size known to be acceptable, read the whole container */
    if (ti_check_complete(im->buf, im->len, msg, sizeof msg)) {
        tjob_fail(err, 422, "invalid_field", name, "%s is damaged or incomplete: %s", name, msg);
        return -1;
    }
    return 0;
}

static json_t *image_desc(const sd_image *im) {
    return json_pack("{s:s, s:i, s:i, s:b}", "format", ti_format_name(im->fmt), "width", im->w, "height", im->h,
                     "alpha", im->alpha);
}

static int round_default(int v) {
    v = v / 8 * 8;
    return v < 64 ? 64 : v;
}

static int inpaint_scalars(const json_t *body, json_t *spec, tjob_error *err) {
    long long bx, by, i;
    int b;
    if (get_int(body, "mask_blur_x", 4, 0, 64, &bx, err) || get_int(body, "mask_blur_y", 4, 0, 64, &by, err))
        return -1;
    if (field(body, "mask_blur")) { /* A1111's property: sets both, wins over _x/_y */
        if (get_int(body, "mask_blur", 4, 0, 64, &i, err)) return -1;
        bx = by = i;
    }
    json_object_set_new(spec, "mask_blur_x", json_integer(bx));
    json_object_set_new(spec, "mask_blur_y", json_integer(by));
    if (get_bool(body, "mask_round", 1, &b, err)) return -1;
    json_object_set_new(spec, "mask_round", json_boolean(b));
    if (get_int(body, "inpainting_fill", 1, 0, 3, &i, err)) return -1;
    json_object_set_new(spec, "inpainting_fill", json_integer(i));
    if (get_bool(body, "inpaint_full_res", 0, &b, err)) return -1;
    json_object_set_new(spec, "inpaint_full_res", json_boolean(b));
    if (get_int(body, "inpaint_full_res_padding", 32, 0, 256, &i, err)) return -1;
    json_object_set_new(spec, "inpaint_full_res_padding", json_integer(i));
    if (get_int(body, "inpainting_mask_invert", 0, 0, 1, &i, err)) return -1;
    json_object_set_new(spec, "inpainting_mask_invert", json_integer(i));
    return 0;
}

static int sd_img(const json_t *body, const tjob_limits *lim, json_t *spec, tjob_submission *out, int inpaint,
                  tjob_error *err) {
    if (inpaint) {
        if (check_known(body, common_fields, img2img_fields, inpaint_fields, err)) return -1;
    } else {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)body, key, v) {
            if (in_list(key, inpaint_fields)) {
                tjob_fail(err, 422, "invalid_field", key, "%.64s applies to inpaint jobs only (give a mask)", key);
                return -1;
            }
        }
        if (check_known(body, common_fields, img2img_fields, NULL, err)) return -1;
    }
    if (sd_common(body, lim, 1, spec, err) || sd_tiled(body, 1, spec, err)) return -1;
    long long i;
    double d;
    if (get_num(body, "denoising_strength", 0.75, 0, 1, &d, err)) return -1;
    json_object_set_new(spec, "denoising_strength", json_real(d));
    if (get_int(body, "resize_mode", 0, 0, 3, &i, err)) return -1;
    json_object_set_new(spec, "resize_mode", json_integer(i));
    if (get_num(body, "initial_noise_multiplier", 1.0, 0, 2, &d, err)) return -1;
    json_object_set_new(spec, "initial_noise_multiplier", json_real(d));
    if (inpaint && inpaint_scalars(body, spec, err)) return -1;

    sd_image img, mask;
    memset(&mask, 0, sizeof mask);
    int rc = -1;
    if (sd_decode_image(body, "image", 1, lim, &img, err)) goto done;
    if (inpaint) {
        if (sd_decode_image(body, "mask", 1, lim, &mask, err)) goto done;
        if (mask.w != img.w || mask.h != img.h) {
            tjob_fail(err, 422, "invalid_field", "mask", "mask is %dx%d; it must have the image's size, %dx%d",
                      mask.w, mask.h, img.w, img.h);
            goto done;
        }
    }
    if (sd_size(body, lim, spec, round_default(img.w), round_default(img.h), err)) goto done;
    const uint8_t *blobs[2] = {img.buf, mask.buf};
    size_t lens[2] = {img.len, mask.len};
    uint8_t *packed;
    size_t plen;
    if (tjob_inputs_pack(blobs, lens, inpaint ? 2 : 1, &packed, &plen)) {
        tjob_fail(err, 500, "internal", NULL, "cannot pack the input images");
        goto done;
    }
    free(out->input);
    out->input = packed;
    out->input_len = plen;
    json_object_set_new(spec, "input", image_desc(&img));
    if (inpaint) json_object_set_new(spec, "mask", image_desc(&mask));
    rc = 0;
done:
    free(img.buf);
    free(mask.buf);
    return rc;
}

int tjob_validate_img2img(const json_t *body, const tjob_limits *lim, json_t *spec, tjob_submission *out,
                          tjob_error *err) {
    if (field(body, "mask")) { /* an img2img with a mask is an inpaint */
        snprintf(out->type, sizeof out->type, "inpaint");
        json_object_set_new(spec, "type", json_string("inpaint"));
        return sd_img(body, lim, spec, out, 1, err);
    }
    return sd_img(body, lim, spec, out, 0, err);
}

int tjob_validate_inpaint(const json_t *body, const tjob_limits *lim, json_t *spec, tjob_submission *out,
                          tjob_error *err) {
    return sd_img(body, lim, spec, out, 1, err);
}

/* ---- sd_upscale ------------------------------------------------------------------ */

/* A1111's "SD upscale" img2img script (tiling.md 4.1) as a job: the image is
 * upscaled by scale_factor with `upscaler`, split into a grid of
 * width x height tiles overlapping by `overlap` px, each tile is an img2img
 * of its crop (seed + tile index), and the results are combined with
 * A1111's combine_grid blend. The grid is computed here (proto/tile_grid.h)
 * and stored in the spec as "grid", so an oversized job is refused before it
 * is queued.
 * Decisions: batch_size and n_iter must be 1 (A1111 batches tiles and
 * shifts seeds per batch; one tile per task keeps every tile independent);
 * resize_mode, mask, tiled_diffusion and preview_every are not accepted;
 * the tile must fit in the upscaled image (A1111 would crop outside it and
 * denoise black padding). */
static const char *const upscale_fields[] = {
    "prompt", "negative_prompt", "seed", "subseed", "subseed_strength", "seed_resize_from_w", "seed_resize_from_h",
    "sampler_name", "scheduler", "steps", "cfg_scale", "width", "height", "batch_size", "n_iter", "eta", "s_churn",
    "s_tmin", "s_tmax", "s_noise", "clip_skip", "model", "vae", "rng", "ensd", "emphasis", "image",
    "denoising_strength", "initial_noise_multiplier", "scale_factor", "upscaler", "overlap", NULL};

int tjob_validate_sd_upscale(const json_t *body, const tjob_limits *lim, json_t *spec, tjob_submission *out,
                             tjob_error *err) {
    if (check_known(body, upscale_fields, NULL, NULL, err)) return -1;
    static const char *const one[] = {"batch_size", "n_iter"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = field(body, one[k]);
        if (v && !(json_is_integer(v) && json_integer_value(v) == 1)) {
            tjob_fail(err, 422, "invalid_field", one[k], "%s must be 1 for sd_upscale (one image per tile)", one[k]);
            return -1;
        }
    }
    if (sd_common(body, lim, 1, spec, err)) return -1;
    double d;
    if (get_num(body, "denoising_strength", 0.75, 0, 1, &d, err)) return -1;
    json_object_set_new(spec, "denoising_strength", json_real(d));
    json_object_set_new(spec, "resize_mode", json_integer(0));
    if (get_num(body, "initial_noise_multiplier", 1.0, 0, 2, &d, err)) return -1;
    json_object_set_new(spec, "initial_noise_multiplier", json_real(d));
    if (sd_size(body, lim, spec, 512, 512, err)) return -1;

    const json_t *sf = field(body, "scale_factor");
    double scale = 2.0;
    if (sf) {
        if (!json_is_number(sf) || !(json_number_value(sf) > 0 && json_number_value(sf) <= 8)) {
            tjob_fail(err, 422, "invalid_field", "scale_factor", "scale_factor must be a number in (0, 8]");
            return -1;
        }
        scale = json_number_value(sf);
    }
    json_object_set_new(spec, "scale_factor", json_real(scale));
    const char *up;
    if (get_str(body, "upscaler", "None", 128, &up, err)) return -1;
    static const char *const builtin[] = {"None", "Lanczos", "Nearest", NULL};
    if (!up[0]) up = "None";
    for (int i = 0; builtin[i]; i++)
        if (!strcasecmp(up, builtin[i])) up = builtin[i];
    for (const char *c = up; *c; c++)
        if (*c == '/' || *c == '\\' || (c[0] == '.' && c[1] == '.') || (unsigned char)*c < 0x20) {
            tjob_fail(err, 422, "invalid_field", "upscaler", "bad upscaler name");
            return -1;
        }
    if (!strncasecmp(up, "Latent", 6)) {
        tjob_fail(err, 422, "invalid_field", "upscaler", "sd_upscale needs a pixel upscaler, not a latent mode");
        return -1;
    }
    json_object_set_new(spec, "upscaler", json_string(up));
    long long ov;
    if (get_int(body, "overlap", 64, 0, 256, &ov, err)) return -1;
    json_object_set_new(spec, "overlap", json_integer(ov));
    int tw = (int)json_integer_value(json_object_get(spec, "width"));
    int th = (int)json_integer_value(json_object_get(spec, "height"));
    if (ov >= tw || ov >= th) {
        tjob_fail(err, 422, "invalid_field", "overlap", "overlap (%lld) must be smaller than the %dx%d tile", ov, tw, th);
        return -1;
    }

    sd_image img;
    if (sd_decode_image(body, "image", 1, lim, &img, err)) {
        free(img.buf);
        return -1;
    }
    int rc = -1, uw, uh;
    tgrid_upscaled_size(up, img.w, img.h, scale, &uw, &uh);
    if (uw < 1 || uh < 1 || uw > lim->max_width || uh > lim->max_height || (long long)uw * uh > lim->max_pixels) {
        tjob_fail(err, 422, "invalid_field", "scale_factor",
                  "the upscaled image would be %dx%d; the limits are %dx%d and %lld pixels", uw, uh, lim->max_width,
                  lim->max_height, lim->max_pixels);
        goto done;
    }
    if (tw > uw || th > uh) {
        tjob_fail(err, 422, "invalid_field", tw > uw ? "width" : "height",
                  "the %dx%d tile is larger than the upscaled image (%dx%d): use smaller tiles or a larger "
                  "scale_factor",
                  tw, th, uw, uh);
        goto done;
    }
    tgrid g;
    char msg[256];
    if (tgrid_make(uw, uh, tw, th, (int)ov, &g, msg, sizeof msg)) {
        tjob_fail(err, 422, "invalid_field", "overlap", "%s", msg);
        goto done;
    }
    int max_tiles = limit_or(lim->max_tiles, 1024);
    if (tgrid_count(&g) > max_tiles) {
        tjob_fail(err, 422, "invalid_field", "width",
                  "the grid has %d tiles (%d x %d of %dx%d over the %dx%d upscaled image); the limit is %d: use "
                  "larger tiles or a smaller scale_factor",
                  tgrid_count(&g), g.cols, g.rows, tw, th, uw, uh, max_tiles);
        goto done;
    }
    json_object_set_new(spec, "grid",
                        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "image_width", uw, "image_height", uh,
                                  "tile_width", tw, "tile_height", th, "overlap", (int)ov, "cols", g.cols, "rows",
                                  g.rows, "tiles", tgrid_count(&g)));
    const uint8_t *blobs[1] = {img.buf};
    size_t lens[1] = {img.len};
    uint8_t *packed;
    size_t plen;
    if (tjob_inputs_pack(blobs, lens, 1, &packed, &plen)) {
        tjob_fail(err, 500, "internal", NULL, "cannot pack the input image");
        goto done;
    }
    free(out->input);
    out->input = packed;
    out->input_len = plen;
    json_object_set_new(spec, "input", image_desc(&img));
    rc = 0;
done:
    free(img.buf);
    return rc;
}
