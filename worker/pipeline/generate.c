/* generate.c - txt2img / img2img / inpaint (generate.h). */
#include "generate.h"

#include "cfg_denoiser.h"
#include "inpaint.h"
#include "latent_resize.h"
#include "mem_plan.h"
#include "tiled_diffusion.h"
#include "resize.h"
#include "upscale.h"
#include "infotext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- params from the canonical spec ---- */

static int get_int(const json_t *s, const char *k, int def) {
    json_t *v = json_object_get(s, k);
    if (json_is_integer(v)) return (int)json_integer_value(v);
    if (json_is_real(v)) return (int)json_real_value(v);
    if (json_is_boolean(v)) return json_is_true(v);
    return def;
}

static double get_num(const json_t *s, const char *k, double def) {
    json_t *v = json_object_get(s, k);
    return json_is_number(v) ? json_number_value(v) : def;
}

static const char *get_str(const json_t *s, const char *k, const char *def) {
    json_t *v = json_object_get(s, k);
    return json_is_string(v) ? json_string_value(v) : def;
}

int tpl_params_from_spec(const json_t *spec, tpl_params *p, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    const char *type = get_str(spec, "type", "txt2img");
    p->kind = !strcmp(type, "inpaint") ? TPL_INPAINT : !strcmp(type, "img2img") ? TPL_IMG2IMG : TPL_TXT2IMG;
    if (p->kind == TPL_IMG2IMG && json_object_get(spec, "mask") && !json_is_null(json_object_get(spec, "mask")))
        p->kind = TPL_INPAINT;
    p->prompt = strdup(get_str(spec, "prompt", ""));
    p->negative_prompt = strdup(get_str(spec, "negative_prompt", ""));
    if (!p->prompt || !p->negative_prompt) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_t *sd = json_object_get(spec, "seed"), *ss = json_object_get(spec, "subseed");
    p->seed = json_is_integer(sd) && json_integer_value(sd) >= 0 ? (uint64_t)json_integer_value(sd) : 0;
    p->subseed = json_is_integer(ss) && json_integer_value(ss) >= 0 ? (uint64_t)json_integer_value(ss) : 0;
    p->subseed_strength = get_num(spec, "subseed_strength", 0);
    p->seed_resize_from_w = get_int(spec, "seed_resize_from_w", 0);
    p->seed_resize_from_h = get_int(spec, "seed_resize_from_h", 0);
    if (tsm_resolve(get_str(spec, "sampler_name", "DPM++ 2M"), get_str(spec, "scheduler", "Automatic"), &p->sampler,
                    &p->scheduler)) {
        snprintf(err, errlen, "unknown sampler '%s'", get_str(spec, "sampler_name", ""));
        return -1;
    }
    snprintf(p->sampler_name, sizeof p->sampler_name, "%s", tsm_sampler_get(p->sampler)->name);
    /* the infotext names the scheduler used: Automatic with a sampler default
     * (DPM++ 2M -> Karras) is written as that default, as A1111 does */
    tsm_scheduler shown = p->scheduler;
    if (shown == TSM_SCHED_AUTOMATIC && tsm_sampler_get(p->sampler)->scheduler != TSM_SCHED_AUTOMATIC)
        shown = tsm_sampler_get(p->sampler)->scheduler;
    snprintf(p->scheduler_label, sizeof p->scheduler_label, "%s", tsm_scheduler_get(shown)->label);
    p->steps = get_int(spec, "steps", 20);
    p->cfg_scale = get_num(spec, "cfg_scale", 7);
    p->width = get_int(spec, "width", 512);
    p->height = get_int(spec, "height", 512);
    p->batch_size = get_int(spec, "batch_size", 1);
    p->n_iter = get_int(spec, "n_iter", 1);
    p->eta = get_num(spec, "eta", -1);
    p->s_churn = get_num(spec, "s_churn", 0);
    p->s_tmin = get_num(spec, "s_tmin", 0);
    p->s_tmax = get_num(spec, "s_tmax", 0);
    p->s_noise = get_num(spec, "s_noise", 1);
    p->clip_skip = get_int(spec, "clip_skip", 1);
    snprintf(p->model, sizeof p->model, "%s", get_str(spec, "model", ""));
    snprintf(p->vae, sizeof p->vae, "%s", get_str(spec, "vae", "Automatic"));
    if (trng_kind_from_name(get_str(spec, "rng", "GPU"), &p->rng) != TRNG_OK) p->rng = TRNG_GPU;
    json_t *en = json_object_get(spec, "ensd");
    p->ensd = json_is_integer(en) ? json_integer_value(en) : 0;
    const char *em = get_str(spec, "emphasis", "Original");
    p->emphasis = !strcasecmp(em, "No norm") ? TCD_EMPHASIS_NO_NORM
                  : !strcasecmp(em, "Ignore") ? TCD_EMPHASIS_IGNORE
                  : !strcasecmp(em, "None")   ? TCD_EMPHASIS_NONE
                                              : TCD_EMPHASIS_ORIGINAL;
    p->preview_every = get_int(spec, "preview_every", 0);
    p->denoising_strength = get_num(spec, "denoising_strength", 0.75);
    p->resize_mode = get_int(spec, "resize_mode", 0);
    p->initial_noise_multiplier = get_num(spec, "initial_noise_multiplier", 1.0);
    p->mask_blur_x = get_int(spec, "mask_blur_x", 4);
    p->mask_blur_y = get_int(spec, "mask_blur_y", 4);
    p->mask_round = get_int(spec, "mask_round", 1);
    p->inpainting_fill = get_int(spec, "inpainting_fill", 1);
    p->inpaint_full_res = get_int(spec, "inpaint_full_res", 0);
    p->inpaint_full_res_padding = get_int(spec, "inpaint_full_res_padding", 32);
    p->mask_invert = get_int(spec, "inpainting_mask_invert", 0);
    json_t *td = json_object_get(spec, "tiled_diffusion");
    if (json_is_object(td)) {
        p->td_enabled = 1;
        p->td_method = tpl_td_method_find(get_str(td, "method", "MultiDiffusion"));
        if (p->td_method < 0) p->td_method = TPL_TD_MULTIDIFFUSION;
        p->td_tile_w = get_int(td, "tile_width", 96);
        p->td_tile_h = get_int(td, "tile_height", 96);
        p->td_overlap = get_int(td, "overlap", 48);
        p->td_batch = get_int(td, "tile_batch_size", 4);
    }
    json_t *hr = json_object_get(spec, "hires");
    if (json_is_object(hr) && p->kind == TPL_TXT2IMG) {
        p->enable_hr = 1;
        p->hr_scale = get_num(hr, "scale", 2.0);
        p->hr_denoise = get_num(hr, "denoising_strength", 0.7);
        p->hr_resize_x = get_int(hr, "resize_x", 0);
        p->hr_resize_y = get_int(hr, "resize_y", 0);
        p->hr_steps = get_int(hr, "steps", 0);
        const char *hu = get_str(hr, "upscaler", NULL);
        p->hr_upscaler_given = hu != NULL;
        snprintf(p->hr_upscaler, sizeof p->hr_upscaler, "%s", hu ? hu : "Latent");
        const char *hs = get_str(hr, "sampler_name", NULL), *hsch = get_str(hr, "scheduler", NULL);
        if (hs) {
            if (tsm_resolve(hs, hsch, &p->hr_sampler, &p->hr_scheduler)) {
                snprintf(err, errlen, "unknown hires sampler '%s'", hs);
                return -1;
            }
            p->hr_sampler_set = 1;
            p->hr_scheduler_set = hsch != NULL;
        } else if (hsch) {
            if (tsm_scheduler_find(hsch, &p->hr_scheduler)) {
                snprintf(err, errlen, "unknown hires scheduler '%s'", hsch);
                return -1;
            }
            p->hr_scheduler_set = 1;
        }
        p->hr_prompt = strdup(get_str(hr, "prompt", ""));
        p->hr_negative = strdup(get_str(hr, "negative_prompt", ""));
        /* A1111 calculate_target_resolution */
        int w = p->width, h = p->height, rx = p->hr_resize_x, ry = p->hr_resize_y;
        if (rx == 0 && ry == 0) {
            p->hr_upscale_w = (int)(w * p->hr_scale);
            p->hr_upscale_h = (int)(h * p->hr_scale);
        } else if (ry == 0) {
            p->hr_upscale_w = rx;
            p->hr_upscale_h = rx * h / w;
        } else if (rx == 0) {
            p->hr_upscale_w = ry * w / h;
            p->hr_upscale_h = ry;
        } else {
            if ((double)w / h < (double)rx / ry) {
                p->hr_upscale_w = rx;
                p->hr_upscale_h = rx * h / w;
            } else {
                p->hr_upscale_w = ry * w / h;
                p->hr_upscale_h = ry;
            }
            /* in pixels here; A1111 cuts (to - target) // opt_f latent pixels */
            p->hr_trunc_x = p->hr_upscale_w - rx;
            p->hr_trunc_y = p->hr_upscale_h - ry;
        }
        if (!p->hr_prompt || !p->hr_negative) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (p->steps < 1 || p->width < 8 || p->height < 8 || p->batch_size < 1 || p->n_iter < 1) {
        snprintf(err, errlen, "bad spec: steps/width/height/batch_size/n_iter out of range");
        return -1;
    }
    return 0;
}

void tpl_params_free(tpl_params *p) {
    free(p->prompt);
    free(p->negative_prompt);
    free(p->hr_prompt);
    free(p->hr_negative);
    p->prompt = p->negative_prompt = p->hr_prompt = p->hr_negative = NULL;
}

static int img2img_t_enc(const tpl_params *p) {
    double d = p->denoising_strength < 0.999 ? p->denoising_strength : 0.999;
    return (int)(d * p->steps);
}

static int executed_steps(const tpl_params *p) {
    int s = p->kind == TPL_TXT2IMG ? p->steps : img2img_t_enc(p) + 1;
    const tsm_sampler_info *si = tsm_sampler_get(p->sampler);
    if (p->kind != TPL_TXT2IMG && si->timesteps) s = img2img_t_enc(p) - 1;
    else if (p->kind == TPL_TXT2IMG && si->timesteps) {
        /* DDIM/PLMS make len(timesteps)-1 steps, UniPC len(timesteps) */
        int ts[TSM_TRAIN_STEPS + 1];
        size_t L = 0;
        tsm_ddim_timesteps(p->steps, si->discard_next_to_last_sigma, ts, TSM_TRAIN_STEPS + 1, &L);
        s = p->sampler == TSM_UNIPC ? (int)L : (int)L - 1;
    }
    return s < 1 ? 1 : s;
}

static int hires_steps_executed(const tpl_params *p);
int tpl_total_steps(const tpl_params *p) { return p->n_iter * (executed_steps(p) + hires_steps_executed(p)); }

/* ---- infotext ---- */

static void fmt_num(double v, char *buf, size_t n) { tinf_fmt_float(v, buf, n); }

char *tpl_infotext(const tpl_model *m, const tpl_params *p, uint64_t seed, uint64_t subseed) {
    tinf_params *ip = tinf_params_new();
    if (!ip) return NULL;
    char b[64];
    const tsm_sampler_info *si = tsm_sampler_get(p->sampler);
    tinf_params_addf(ip, "Steps", "%d", p->steps);
    tinf_params_add(ip, "Sampler", p->sampler_name);
    tinf_params_add(ip, "Schedule type", p->scheduler_label);
    fmt_num(p->cfg_scale, b, sizeof b);
    tinf_params_add(ip, "CFG scale", b);
    tinf_params_addf(ip, "Seed", "%llu", (unsigned long long)seed);
    tinf_params_addf(ip, "Size", "%dx%d", p->width, p->height);
    if (m->shorthash[0]) tinf_params_add(ip, "Model hash", m->shorthash);
    tinf_params_add(ip, "Model", m->name);
    if (m->vae_name[0]) {
        if (m->vae_shorthash[0]) tinf_params_add(ip, "VAE hash", m->vae_shorthash);
        tinf_params_add(ip, "VAE", m->vae_name);
    }
    if (p->subseed_strength != 0) {
        tinf_params_addf(ip, "Variation seed", "%llu", (unsigned long long)subseed);
        fmt_num(p->subseed_strength, b, sizeof b);
        tinf_params_add(ip, "Variation seed strength", b);
    }
    if (p->seed_resize_from_w > 0 && p->seed_resize_from_h > 0)
        tinf_params_addf(ip, "Seed resize from", "%dx%d", p->seed_resize_from_w, p->seed_resize_from_h);
    if (p->kind != TPL_TXT2IMG || p->enable_hr) {
        fmt_num(p->kind != TPL_TXT2IMG ? p->denoising_strength : p->hr_denoise, b, sizeof b);
        tinf_params_add(ip, "Denoising strength", b);
    }
    if (m->inpainting) tinf_params_add(ip, "Conditional mask weight", "1.0");
    if (p->clip_skip > 1) tinf_params_addf(ip, "Clip skip", "%d", p->clip_skip);
    if (p->ensd != 0 && si->uses_ensd) tinf_params_addf(ip, "ENSD", "%lld", (long long)p->ensd);
    if (p->rng != TRNG_GPU) tinf_params_add(ip, "RNG", trng_kind_name(p->rng));
    if (p->enable_hr) {
        /* A1111's insertion order: sampler and prompts (setup), then upscale or
         * resize, steps, upscaler (init), then the hires schedule type (when
         * the hires pass computes its sigmas) */
        if (p->hr_sampler_set && p->hr_sampler != p->sampler)
            tinf_params_add(ip, "Hires sampler", tsm_sampler_get(p->hr_sampler)->name);
        if (p->hr_prompt && p->hr_prompt[0] && strcmp(p->hr_prompt, p->prompt)) tinf_params_add(ip, "Hires prompt", p->hr_prompt);
        if (p->hr_negative && p->hr_negative[0] && strcmp(p->hr_negative, p->negative_prompt))
            tinf_params_add(ip, "Hires negative prompt", p->hr_negative);
        if (p->hr_resize_x == 0 && p->hr_resize_y == 0) {
            fmt_num(p->hr_scale, b, sizeof b);
            tinf_params_add(ip, "Hires upscale", b);
        } else
            tinf_params_addf(ip, "Hires resize", "%dx%d", p->hr_resize_x, p->hr_resize_y);
        if (p->hr_steps) tinf_params_addf(ip, "Hires steps", "%d", p->hr_steps);
        if (p->hr_upscaler_given) tinf_params_add(ip, "Hires upscaler", p->hr_upscaler);
        /* the scheduler the hires pass used, when its label differs from the first pass's */
        tsm_sampler_id hs = p->hr_sampler_set ? p->hr_sampler : p->sampler;
        tsm_scheduler hsch = p->hr_scheduler_set ? p->hr_scheduler : p->scheduler;
        if (hsch == TSM_SCHED_AUTOMATIC && tsm_sampler_get(hs)->scheduler != TSM_SCHED_AUTOMATIC)
            hsch = tsm_sampler_get(hs)->scheduler;
        if (!tsm_sampler_get(hs)->timesteps && hsch != TSM_SCHED_AUTOMATIC &&
            strcmp(tsm_scheduler_get(hsch)->label, p->scheduler_label))
            tinf_params_add(ip, "Hires schedule type", tsm_scheduler_get(hsch)->label);
    }
    if (p->kind == TPL_INPAINT) {
        /* A1111 order: Mask mode (invert), then Mask blur = p.mask_blur, which
         * is None (not written) when x and y differ */
        if (p->mask_invert) tinf_params_add(ip, "Mask mode", "Inpaint not masked");
        if ((p->mask_blur_x > 0 || p->mask_blur_y > 0) && p->mask_blur_x == p->mask_blur_y)
            tinf_params_addf(ip, "Mask blur", "%d", p->mask_blur_x);
        static const char *const fills[] = {"fill", "original", "latent noise", "latent nothing"};
        if (p->inpainting_fill != 1) tinf_params_add(ip, "Masked content", fills[p->inpainting_fill & 3]);
        if (p->inpaint_full_res) {
            tinf_params_add(ip, "Inpaint area", "Only masked");
            tinf_params_addf(ip, "Masked area padding", "%d", p->inpaint_full_res_padding);
        }
    }
    if (p->td_enabled) {
        char td[256];
        snprintf(td, sizeof td,
                 "{\"Method\": \"%s\", \"Tile tile width\": %d, \"Tile tile height\": %d, \"Tile Overlap\": %d, "
                 "\"Tile batch size\": %d}",
                 p->td_method == TPL_TD_MIXTURE ? "Mixture of Diffusers" : "MultiDiffusion", p->td_tile_w, p->td_tile_h,
                 p->td_overlap, p->td_batch);
        tinf_params_add(ip, "Tiled Diffusion", td);
    }
    if (p->kind != TPL_TXT2IMG && p->initial_noise_multiplier != 1.0) {
        fmt_num(p->initial_noise_multiplier, b, sizeof b);
        tinf_params_add(ip, "Noise multiplier", b);
    }
    if (p->emphasis != TCD_EMPHASIS_ORIGINAL) {
        static const char *const em[] = {"Original", "No norm", "Ignore", "None"};
        tinf_params_add(ip, "Emphasis", em[p->emphasis & 3]);
    }
    if (p->eta >= 0 && ((si->timesteps && p->eta != 0) || (!si->timesteps && si->has_eta && p->eta != 1.0))) {
        fmt_num(p->eta, b, sizeof b);
        tinf_params_add(ip, "Eta", b);
    }
    tinf_params_add(ip, "Version", "tessera");
    char *s = tinf_build(p->prompt, p->negative_prompt, ip);
    tinf_params_free(ip);
    return s;
}

/* ---- helpers ---- */

static void to_uint8(const float *img, int H, int W, ti_image *out) {
    /* A1111: clamp((x+1)/2, 0, 1), 255*x in float32, astype(uint8) truncates */
    size_t plane = (size_t)H * W;
    for (size_t q = 0; q < plane; q++)
        for (int ch = 0; ch < 3; ch++) {
            float v = (img[(size_t)ch * plane + q] + 1.0f) / 2.0f;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            float s = 255.0f * v;
            out->pixels[q * 3 + (size_t)ch] = (uint8_t)s;
        }
}

static void from_uint8(const ti_image *in, float *img) {
    size_t plane = (size_t)in->width * in->height;
    for (size_t q = 0; q < plane; q++)
        for (int ch = 0; ch < 3; ch++)
            img[(size_t)ch * plane + q] = (float)in->pixels[q * (size_t)in->channels + (size_t)ch] / 255.0f * 2.0f - 1.0f;
}

/* A1111 "Approx cheap" latent -> RGB (sd_vae_approx.cheap_approximation, SD1/SD2) */
static int make_preview(const float *lat, int lc, int lh, int lw, ti_image *out) {
    static const float coef[4][3] = {
        {0.298f, 0.207f, 0.208f}, {0.187f, 0.286f, 0.173f}, {-0.158f, 0.189f, 0.264f}, {-0.184f, -0.271f, -0.473f}};
    if (lc != 4 || ti_image_alloc(out, lw, lh, 3, NULL, 0)) return -1;
    size_t plane = (size_t)lh * lw;
    for (size_t q = 0; q < plane; q++)
        for (int r = 0; r < 3; r++) {
            float v = 0;
            for (int c = 0; c < 4; c++) v += lat[(size_t)c * plane + q] * coef[c][r];
            v = (v + 1) / 2;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            out->pixels[q * 3 + (size_t)r] = (uint8_t)(v * 255);
        }
    return 0;
}

typedef struct {
    trng_gen **gens;     /* per image of the batch */
    int B;
    size_t n1;
    const tpl_callbacks *cb;
    int done0, total, preview_every, lc, lh, lw;
    int stop;
} run_ctx;

typedef struct {
    tpl_denoiser d;
    run_ctx r;
} sample_ctx;

static int cb_denoise(void *ctx, const float *x, float sigma, float *out, size_t n) {
    sample_ctx *s = ctx;
    return tpl_denoise(&s->d, x, sigma, out, n);
}

static int cb_noise(void *ctx, float *out, size_t n) {
    sample_ctx *s = ctx;
    if (n != s->r.n1 * (size_t)s->r.B) return -1;
    for (int b = 0; b < s->r.B; b++)
        if (trng_randn(s->r.gens[b], out + (size_t)b * s->r.n1, s->r.n1) != TRNG_OK) return -1;
    return 0;
}

static int cb_progress(void *ctx, int step, int total, double sigma, const float *x, const float *denoised,
                       size_t n) {
    (void)total;
    (void)sigma;
    (void)x;
    (void)n;
    sample_ctx *s = ctx;
    const tpl_callbacks *cb = s->r.cb;
    int done = s->r.done0 + step + 1;
    if (cb && cb->preview && s->r.preview_every > 0 && (step + 1) % s->r.preview_every == 0 && denoised) {
        ti_image pv = {0};
        if (make_preview(denoised, s->r.lc, s->r.lh, s->r.lw, &pv) == 0) cb->preview(cb->ctx, &pv);
        ti_image_free(&pv);
    }
    if (cb && cb->progress && cb->progress(cb->ctx, done, s->r.total)) {
        s->r.stop = 1;
        return 1;
    }
    return 0;
}

static int push_image(tpl_result *r, ti_image *img, char *info, uint64_t seed, uint64_t subseed) {
    int n = r->n + 1;
    ti_image *im = realloc(r->images, (size_t)n * sizeof *im);
    if (im) r->images = im;
    char **it = realloc(r->infotexts, (size_t)n * sizeof *it);
    if (it) r->infotexts = it;
    uint64_t *se = realloc(r->seeds, (size_t)n * sizeof *se);
    if (se) r->seeds = se;
    uint64_t *su = realloc(r->subseeds, (size_t)n * sizeof *su);
    if (su) r->subseeds = su;
    if (!im || !it || !se || !su) return -1;
    r->images[r->n] = *img;
    r->infotexts[r->n] = info;
    r->seeds[r->n] = seed;
    r->subseeds[r->n] = subseed;
    r->n = n;
    memset(img, 0, sizeof *img);
    return 0;
}

/* VAE encode an RGB image (size = multiple of the downscale) -> scaled posterior mean [lc*lh*lw] */
static int encode_image(tpl_model *m, const ti_image *img, float *lat, char *err, size_t errlen) {
    int W = img->width, H = img->height;
    size_t nlat = (size_t)m->latent_channels * (H / m->downscale) * (W / m->downscale);
    float *x = malloc((size_t)3 * W * H * sizeof(float));
    float *sd = malloc(nlat * sizeof(float));
    int rc = -1;
    if (!x || !sd) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    from_uint8(img, x);
    char e2[512];
    if (tmv_encode(m->vae, x, 1, H, W, lat, sd, e2, sizeof e2)) {
        snprintf(err, errlen, "vae encode: %s", e2);
        goto done;
    }
    float sf = tmv_scaling_factor(m->vae);
    for (size_t q = 0; q < nlat; q++) lat[q] *= sf;
    rc = 0;
done:
    free(x);
    free(sd);
    return rc;
}

/* resize_mode 3 ("just resize (latent upscale)"): the image is encoded at
 * its own size (cut to a multiple of the VAE factor) and the latent resized
 * bilinearly (torch interpolate, align_corners=False) to the target. */
static int latent_upscale_init(tpl_model *m, const ti_image *img, int lw, int lh, float *out, char *err,
                               size_t errlen) {
    int f = m->downscale, lc = m->latent_channels;
    int W = img->width / f * f, H = img->height / f * f;
    if (W < f || H < f) {
        snprintf(err, errlen, "the init image is too small");
        return -1;
    }
    ti_image c = {0};
    if (ti_image_alloc(&c, W, H, 3, err, errlen)) return -1;
    for (int y = 0; y < H; y++)
        memcpy(c.pixels + (size_t)y * W * 3, img->pixels + (size_t)y * img->width * img->channels, (size_t)W * 3);
    int sw = W / f, sh = H / f;
    float *src = malloc((size_t)lc * sw * sh * sizeof(float));
    int rc = -1;
    if (src && encode_image(m, &c, src, err, errlen) == 0) {
        double sx = (double)sw / lw, sy = (double)sh / lh;
        for (int ch = 0; ch < lc; ch++)
            for (int y = 0; y < lh; y++) {
                double fy = (y + 0.5) * sy - 0.5;
                if (fy < 0) fy = 0;
                int y0 = (int)fy, y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
                double wy = fy - y0;
                for (int x = 0; x < lw; x++) {
                    double fx = (x + 0.5) * sx - 0.5;
                    if (fx < 0) fx = 0;
                    int x0 = (int)fx, x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
                    double wx = fx - x0;
                    const float *s = src + (size_t)ch * sw * sh;
                    double v = (1 - wy) * ((1 - wx) * s[(size_t)y0 * sw + x0] + wx * s[(size_t)y0 * sw + x1]) +
                               wy * ((1 - wx) * s[(size_t)y1 * sw + x0] + wx * s[(size_t)y1 * sw + x1]);
                    out[(size_t)ch * lw * lh + (size_t)y * lw + x] = (float)v;
                }
            }
        rc = 0;
    } else if (!src)
        snprintf(err, errlen, "out of memory");
    free(src);
    ti_image_free(&c);
    return rc;
}

/* ---- one sampling pass ---- */

typedef enum {
    PASS_TXT2IMG,   /* from unit noise */
    PASS_IMG2IMG,   /* A1111 img2img: t_enc = int(min(d,0.999)*steps) of `steps` */
    PASS_HIRES      /* steps given explicitly: total = int(steps/min(d,0.999)), t_enc = steps-1 */
} pass_mode;

typedef struct {
    tpl_model *m;
    const tpl_params *p;
    const tpl_conds *conds;
    tsm_sampler_id sampler;
    tsm_scheduler scheduler;
    pass_mode mode;
    int steps;
    double denoise, noise_mult;
    int B, lc, lh, lw;
    const float *init_batch, *nmask, *c_concat;
    const tpl_td_grid *grid;
    trng_gen **gens;
    const tpl_callbacks *cb;
    int done0, total;
} pass_def;

/* x: the unit noise in, the sampled latent out. 0, 1 cancelled, -1 error. */
static int run_pass(const pass_def *d, float *x, char *err, size_t errlen) {
    const tpl_params *p = d->p;
    const tsm_sampler_info *si = tsm_sampler_get(d->sampler);
    size_t n1 = (size_t)d->lc * d->lh * d->lw, n = n1 * (size_t)d->B;
    tsm_sample_params sp;
    tsm_sample_params_init(&sp);
    sp.sampler = d->sampler;
    sp.scheduler = d->scheduler;
    sp.steps = d->steps;
    sp.eta = p->eta;
    sp.s_churn = p->s_churn;
    sp.s_tmin = p->s_tmin;
    sp.s_tmax = p->s_tmax;
    sp.s_noise = p->s_noise;
    int t_enc = 0;
    if (d->mode != PASS_TXT2IMG) {
        double dn = d->denoise < 0.999 ? d->denoise : 0.999;
        if (d->mode == PASS_HIRES) {
            sp.steps = dn > 0 ? (int)(d->steps / dn) : d->steps;
            t_enc = d->steps - 1;
        } else {
            t_enc = (int)(dn * d->steps);
        }
    }
    sample_ctx sc;
    memset(&sc, 0, sizeof sc);
    sc.d = (tpl_denoiser){.m = d->m,
                          .c = d->conds,
                          .cfg = p->cfg_scale,
                          .B = d->B,
                          .lc = d->lc,
                          .lh = d->lh,
                          .lw = d->lw,
                          .step = 0,
                          .init_latent = d->nmask ? d->init_batch : NULL,
                          .nmask = d->nmask,
                          .timesteps = si->timesteps,
                          .c_concat = d->c_concat,
                          .grid = d->grid,
                          .budget = p->mem_budget,
                          .err = err,
                          .errlen = errlen};
    sc.r = (run_ctx){.gens = d->gens,
                     .B = d->B,
                     .n1 = n1,
                     .cb = d->cb,
                     .done0 = d->done0,
                     .total = d->total,
                     .preview_every = p->preview_every,
                     .lc = d->lc,
                     .lh = d->lh,
                     .lw = d->lw};
    tsm_callbacks tc = {.denoise = cb_denoise, .noise = cb_noise, .interval_noise = NULL,
                        .progress = cb_progress, .ctx = &sc};
    int src;
    err[0] = 0;
    if (d->mode == PASS_TXT2IMG) {
        src = tsm_sample(&d->m->sched, &sp, &tc, x, n);
    } else if (si->timesteps) {
        /* A1111 timestep img2img: x = sqrt(a)*init + sqrt(1-a)*noise, a = ac[ts[t_enc]] */
        int ts[TSM_TRAIN_STEPS + 1];
        size_t L = 0;
        tsm_ddim_timesteps(sp.steps, si->discard_next_to_last_sigma, ts, TSM_TRAIN_STEPS + 1, &L);
        int ti = t_enc < (int)L ? t_enc : (int)L - 1;
        double a = d->m->sched.alphas_cumprod[ts[ti]];
        float sa = (float)sqrt(a), s1a = (float)sqrt(1.0 - a);
        for (size_t q = 0; q < n; q++) x[q] = sa * d->init_batch[q] + s1a * x[q] * (float)d->noise_mult;
        src = tsm_run_timesteps_img2img(&d->m->sched, &sp, t_enc, &tc, x, n);
    } else {
        /* A1111 img2img: sigma_sched = sigmas[steps - t_enc - 1:], x = init + noise*sigma */
        size_t cap = (size_t)sp.steps + 4;
        double *sig = malloc(cap * sizeof(double));
        size_t nsig = 0;
        if (!sig || tsm_sample_sigmas(&d->m->sched, &sp, sig, cap, &nsig) != TSM_OK) {
            free(sig);
            snprintf(err, errlen, "cannot compute the sigma schedule");
            return -1;
        }
        size_t start = (size_t)(sp.steps - t_enc - 1);
        if (nsig > (size_t)sp.steps + 1) start += nsig - ((size_t)sp.steps + 1); /* discard: one longer */
        if (start >= nsig) start = nsig - 1;
        double s0 = sig[start];
        for (size_t q = 0; q < n; q++) x[q] = d->init_batch[q] + x[q] * (float)d->noise_mult * (float)s0;
        src = tsm_run_k_sampler(&sp, sig + start, nsig - start, &tc, x, n);
        free(sig);
    }
    for (int b = 0; b < d->B; b++) {
        trng_free(d->gens[b]);
        d->gens[b] = NULL;
    }
    if (src == TSM_ERR_CANCELLED || sc.r.stop) return 1;
    if (src != TSM_OK) {
        if (!err[0]) snprintf(err, errlen, "sampler failed (%d)", src);
        return -1;
    }
    return 0;
}

/* 9-channel conditioning for B images: [mask (nearest to the latent size),
 * latent of image*(1-mask)]; image NULL: all-ones mask and the latent of a
 * 0.5-grey (0 in [-1, 1]) W x H image (txt2img, the hires pass). */
static int make_c_concat(tpl_model *m, const ti_image *image, const ti_image *mask, int mask_round, int B, int W,
                         int H, float **out, char *err, size_t errlen) {
    int f = m->downscale, lc = m->latent_channels, lh = H / f, lw = W / f;
    size_t plane = (size_t)lh * lw, n1 = (size_t)lc * plane, pp = (size_t)W * H;
    float *cc = malloc((size_t)B * 5 * plane * sizeof(float));
    float *mlat = malloc(n1 * sizeof(float)), *sd = malloc(n1 * sizeof(float));
    float *src = calloc(3 * pp, sizeof(float)), *cmask = malloc(plane * sizeof(float));
    int rc = -1;
    char e2[512];
    if (!cc || !mlat || !sd || !src || !cmask) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (!image || !mask) {
        for (size_t q = 0; q < plane; q++) cmask[q] = 1.0f;
    } else {
        from_uint8(image, src);
        for (size_t q = 0; q < pp; q++) {
            float mv = mask->pixels[q * (size_t)mask->channels] / 255.0f;
            if (mask_round) mv = roundf(mv);
            for (int ch = 0; ch < 3; ch++) src[(size_t)ch * pp + q] *= 1.0f - mv;
        }
        tpl_mask_to_latent_nearest(mask, mask_round, lw, lh, cmask);
    }
    if (tmv_encode(m->vae, src, 1, H, W, mlat, sd, e2, sizeof e2)) {
        snprintf(err, errlen, "vae encode: %s", e2);
        goto done;
    }
    float sf = tmv_scaling_factor(m->vae);
    for (size_t q = 0; q < n1; q++) mlat[q] *= sf;
    for (int b = 0; b < B; b++) {
        memcpy(cc + (size_t)b * 5 * plane, cmask, plane * sizeof(float));
        memcpy(cc + (size_t)b * 5 * plane + plane, mlat, n1 * sizeof(float));
    }
    *out = cc;
    cc = NULL;
    rc = 0;
done:
    free(cc);
    free(mlat);
    free(sd);
    free(src);
    free(cmask);
    return rc;
}

/* ---- hires fix ---- */

static int hires_steps_executed(const tpl_params *p) {
    if (!p->enable_hr) return 0;
    int steps = p->hr_steps > 0 ? p->hr_steps : p->steps;
    tsm_sampler_id sid = p->hr_sampler_set ? p->hr_sampler : p->sampler;
    return tsm_sampler_get(sid)->timesteps ? (steps > 2 ? steps - 2 : 1) : steps;
}

/* Pixel upscalers of the hires fix: A1111 resize_image(0, img, w, h, upscaler):
 * when the needed scale is > 1 the upscaler runs (worker/upscale.h, A1111's
 * Upscaler.upscale), then, if the size still differs, Lanczos to the exact
 * size ("None" is only that Lanczos resize). */
static int upscale_pixels(const ti_image *in, int w, int h, const char *upscaler, ti_image *out, char *err,
                          size_t errlen) {
    double sc = (double)w / in->width > (double)h / in->height ? (double)w / in->width : (double)h / in->height;
    ti_image up = {0};
    const ti_image *cur = in;
    if (sc > 1.0 && strcasecmp(upscaler, "None")) {
        if (tw_upscale_image(NULL, upscaler, in, sc, &up, err, errlen)) return -1;
        cur = &up;
    }
    int rc;
    if (cur->width != w || cur->height != h) {
        rc = tr_resize(cur, w, h, TR_LANCZOS, out, err, errlen);
    } else {
        rc = ti_image_alloc(out, w, h, cur->channels, err, errlen);
        if (!rc) memcpy(out->pixels, cur->pixels, (size_t)w * h * cur->channels);
    }
    ti_image_free(&up);
    return rc;
}

/* The hires pass of iteration it on the first-pass latents x [B][lc][lh][lw]:
 * upscale (latent mode or decode/upscale/encode), crop for hr_resize_x/y,
 * fresh noise from the same seeds at the new size, conds of the hires
 * prompts with hires schedules, img2img with the steps given explicitly. */
static int hires_pass(tpl_model *m, const tpl_params *p, const trng_noise_params *np0, int it, const float *x,
                      int lh, int lw, trng_gen **gens, const tpl_callbacks *cb, int done0, int total, float **out,
                      int *olh, int *olw, char *err, size_t errlen) {
    int f = m->downscale, lc = m->latent_channels, B = p->batch_size;
    int uw = p->hr_upscale_w / f, uh = p->hr_upscale_h / f;
    size_t n1 = (size_t)lc * lh * lw, un1 = (size_t)lc * uh * uw;
    int tx = p->hr_trunc_x / f, ty = p->hr_trunc_y / f;
    int y0 = ty / 2, y1 = uh - (ty + 1) / 2, x0 = tx / 2, x1 = uw - (tx + 1) / 2;
    if (uw < 1 || uh < 1 || y1 <= y0 || x1 <= x0) {
        snprintf(err, errlen, "bad hires size");
        return -1;
    }
    int hh = y1 - y0, hw = x1 - x0;
    size_t hn1 = (size_t)lc * hh * hw;
    float *up = malloc((size_t)B * un1 * sizeof(float));
    float *init = malloc((size_t)B * hn1 * sizeof(float));
    float *hx = malloc((size_t)B * hn1 * sizeof(float));
    float *img = NULL, *cc = NULL;
    char **prompts = calloc((size_t)B, sizeof *prompts), **negs = calloc((size_t)B, sizeof *negs);
    tpl_conds conds = {0};
    int rc = -1;
    if (!up || !init || !hx || !prompts || !negs) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    int lm = tpl_latent_mode_find(p->hr_upscaler);
    if (lm >= 0) {
        for (int b = 0; b < B; b++)
            if (tpl_latent_resize(x + (size_t)b * n1, lc, lh, lw, up + (size_t)b * un1, uh, uw, (tpl_latent_mode)lm)) {
                snprintf(err, errlen, "latent upscale failed");
                goto done;
            }
    } else {
        img = malloc((size_t)3 * lh * f * lw * f * sizeof(float));
        if (!img) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        for (int b = 0; b < B; b++) {
            char e2[512];
            if (tmv_decode(m->vae, x + (size_t)b * n1, 1, lh, lw, img, e2, sizeof e2)) {
                snprintf(err, errlen, "vae decode: %s", e2);
                goto done;
            }
            ti_image first = {0}, big = {0};
            if (ti_image_alloc(&first, lw * f, lh * f, 3, err, errlen)) goto done;
            to_uint8(img, lh * f, lw * f, &first);
            int urc = upscale_pixels(&first, uw * f, uh * f, p->hr_upscaler, &big, err, errlen);
            ti_image_free(&first);
            if (urc) goto done;
            urc = encode_image(m, &big, up + (size_t)b * un1, err, errlen);
            ti_image_free(&big);
            if (urc) goto done;
        }
    }
    /* hr_resize_x and _y both given: the cover-scaled latent cropped to the target */
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < lc; ch++)
            for (int y = 0; y < hh; y++)
                memcpy(init + (size_t)b * hn1 + ((size_t)ch * hh + y) * hw,
                       up + (size_t)b * un1 + ((size_t)ch * uh + y + y0) * uw + x0, (size_t)hw * sizeof(float));
    trng_noise_params np = *np0;
    np.width = hw * f;
    np.height = hh * f;
    for (int b = 0; b < B; b++) {
        trng_free(gens[b]);
        gens[b] = NULL;
        if (trng_image_noise(&np, (size_t)it * B + b, hx + (size_t)b * hn1, &gens[b]) != TRNG_OK) {
            snprintf(err, errlen, "noise: bad parameters for the hires size");
            goto done;
        }
    }
    tsm_sampler_id sid = p->hr_sampler_set ? p->hr_sampler : p->sampler;
    int steps = p->hr_steps > 0 ? p->hr_steps : p->steps;
    const tsm_sampler_info *si = tsm_sampler_get(sid);
    for (int b = 0; b < B; b++) {
        prompts[b] = p->hr_prompt && p->hr_prompt[0] ? p->hr_prompt : p->prompt;
        negs[b] = p->hr_negative && p->hr_negative[0] ? p->hr_negative : p->negative_prompt;
    }
    int base = tsm_sampler_get(p->sampler)->second_order ? p->steps * 2 : p->steps;
    if (tpl_conds_build(m, p, prompts, negs, B, base, si->second_order ? steps * 2 : steps, &conds, err, errlen))
        goto done;
    if (m->inpainting && make_c_concat(m, NULL, NULL, 1, B, hw * f, hh * f, &cc, err, errlen)) goto done;
    pass_def pd = {.m = m,
                   .p = p,
                   .conds = &conds,
                   .sampler = sid,
                   .scheduler = p->hr_scheduler_set ? p->hr_scheduler : p->scheduler,
                   .mode = PASS_HIRES,
                   .steps = steps,
                   .denoise = p->hr_denoise,
                   .noise_mult = 1.0,
                   .B = B, .lc = lc, .lh = hh, .lw = hw,
                   .init_batch = init,
                   .nmask = NULL,
                   .c_concat = cc,
                   .gens = gens,
                   .cb = cb,
                   .done0 = done0,
                   .total = total};
    rc = run_pass(&pd, hx, err, errlen);
    if (rc == 0) {
        *out = hx;
        hx = NULL;
        *olh = hh;
        *olw = hw;
    }
done:
    free(up);
    free(init);
    free(hx);
    free(img);
    free(cc);
    free(prompts);
    free(negs);
    tpl_conds_free(&conds);
    return rc;
}

/* ---- the pipeline ---- */

int tpl_generate(tpl_model *m, const tpl_params *p, const ti_image *init_in, const ti_image *mask_in,
                 const tpl_callbacks *cb, int keep_tensors, tpl_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    const tsm_sampler_info *si = tsm_sampler_get(p->sampler);
    int f = m->downscale, lc = m->latent_channels;
    if (p->width % f || p->height % f) {
        snprintf(err, errlen, "width and height must be multiples of %d for this model", f);
        return -1;
    }
    if (p->kind != TPL_TXT2IMG && !init_in) {
        snprintf(err, errlen, "img2img needs an init image");
        return -1;
    }
    if (p->kind != TPL_TXT2IMG && p->sampler == TSM_UNIPC) {
        snprintf(err, errlen, "sampler '%s' does not run img2img yet; use DDIM, PLMS or a k-diffusion sampler",
                 p->sampler_name);
        return -1;
    }
    int lh = p->height / f, lw = p->width / f, B = p->batch_size;
    size_t plane = (size_t)lh * lw, n1 = (size_t)lc * plane, n = n1 * (size_t)B;
    r->lat_c = lc;
    r->lat_h = lh;
    r->lat_w = lw;
    int rc = -1;
    float *x = NULL, *init_batch = NULL, *init_lat = NULL, *nmask = NULL, *c_concat = NULL, *img = NULL;
    char **prompts = NULL, **negs = NULL;
    trng_gen **gens = NULL;
    tpl_conds conds = {0};
    tpl_inpaint_prep prep = {0};
    tpl_td_grid grid = {0};

    x = malloc(n * sizeof(float));
    img = malloc((size_t)3 * p->width * p->height * sizeof(float));
    prompts = calloc((size_t)B, sizeof *prompts);
    negs = calloc((size_t)B, sizeof *negs);
    gens = calloc((size_t)B, sizeof *gens);
    if (!x || !img || !prompts || !negs || !gens) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (keep_tensors) {
        size_t tot = n1 * (size_t)B * p->n_iter;
        r->noise = calloc(tot, sizeof(float));
        r->latents = calloc(tot, sizeof(float));
        if (!r->noise || !r->latents) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
    }

    /* ---- image side of img2img / inpaint ---- */
    if (p->kind != TPL_TXT2IMG) {
        tpl_inpaint_opts io = {.width = p->width,
                               .height = p->height,
                               .resize_mode = p->resize_mode,
                               .mask_blur_x = p->mask_blur_x,
                               .mask_blur_y = p->mask_blur_y,
                               .mask_round = p->mask_round,
                               .invert = p->mask_invert,
                               .full_res = p->inpaint_full_res,
                               .full_res_padding = p->inpaint_full_res_padding,
                               .fill = p->inpainting_fill,
                               .latent_w = lw,
                               .latent_h = lh};
        if (tpl_inpaint_prepare(init_in, p->kind == TPL_INPAINT ? mask_in : NULL, &io, &prep, err, errlen)) goto done;
        init_lat = malloc(n1 * sizeof(float));
        if (!init_lat) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        if (prep.image.width == p->width && prep.image.height == p->height) {
            if (encode_image(m, &prep.image, init_lat, err, errlen)) goto done;
        } else if (latent_upscale_init(m, &prep.image, lw, lh, init_lat, err, errlen)) {
            goto done;
        }
        if (prep.latent_mask) {
            nmask = malloc(plane * sizeof(float));
            if (!nmask) goto done;
            memcpy(nmask, prep.latent_mask, plane * sizeof(float));
        }
    }
    if (m->inpainting) {
        r->inpainting_conditioning = 1;
        int with_mask = p->kind != TPL_TXT2IMG && prep.has_mask;
        if (make_c_concat(m, with_mask ? &prep.image : NULL, with_mask ? &prep.mask : NULL, p->mask_round, B,
                          p->width, p->height, &c_concat, err, errlen))
            goto done;
    }
    trng_noise_params np = {.source = p->rng,
                            .seed = p->seed,
                            .subseed = p->subseed,
                            .subseed_strength = p->subseed_strength,
                            .width = p->width,
                            .height = p->height,
                            .seed_resize_from_w = p->seed_resize_from_w,
                            .seed_resize_from_h = p->seed_resize_from_h,
                            .ensd = p->ensd,
                            .channels = lc,
                            .downscale = f};
    if (init_lat) {
        init_batch = malloc(n * sizeof(float));
        if (!init_batch) goto done;
        for (int b = 0; b < B; b++) memcpy(init_batch + (size_t)b * n1, init_lat, n1 * sizeof(float));
        if (nmask && (p->inpainting_fill == 2 || p->inpainting_fill == 3)) {
            /* A1111: latent noise: init*mask + randn(all_seeds[b])*nmask; latent nothing: init*mask */
            float *noise = malloc(n1 * sizeof(float));
            if (!noise) goto done;
            for (int b = 0; b < B; b++) {
                if (p->inpainting_fill == 2) {
                    uint64_t sb, ssb;
                    trng_image_seeds(&np, (size_t)b, &sb, &ssb);
                    trng_noise_params np2 = np;
                    np2.seed = sb;
                    np2.subseed_strength = 0;
                    np2.seed_resize_from_w = np2.seed_resize_from_h = 0;
                    np2.ensd = 0;
                    if (trng_image_noise(&np2, 0, noise, NULL) != TRNG_OK) {
                        free(noise);
                        snprintf(err, errlen, "noise: bad parameters");
                        goto done;
                    }
                }
                for (int ch = 0; ch < lc; ch++)
                    for (size_t q = 0; q < plane; q++) {
                        size_t i = (size_t)b * n1 + (size_t)ch * plane + q;
                        float keep = 1.0f - nmask[q];
                        init_batch[i] = init_batch[i] * keep +
                                        (p->inpainting_fill == 2 ? noise[(size_t)ch * plane + q] * nmask[q] : 0.0f);
                    }
            }
            free(noise);
        }
    }

    /* ---- conditioning (all images share the prompt: one encode) ---- */
    for (int b = 0; b < B; b++) {
        prompts[b] = p->prompt;
        negs[b] = p->negative_prompt;
    }
    int sched_steps = si->second_order ? p->steps * 2 : p->steps;
    if (tpl_conds_build(m, p, prompts, negs, B, sched_steps, 0, &conds, err, errlen)) goto done;

    if (p->td_enabled &&
        tpl_td_grid_build(lw, lh, p->td_tile_w, p->td_tile_h, p->td_overlap, (tpl_td_method)p->td_method, &grid)) {
        snprintf(err, errlen, "bad Tiled Diffusion grid");
        goto done;
    }
    if (p->mem_budget) {
        /* refuse before sampling when one UNet row cannot fit (mem_plan.h) */
        tpl_mem_plan mp;
        int ph = p->td_enabled ? grid.th : lh, pw = p->td_enabled ? grid.tw : lw;
        if (tpl_plan_unet(m, ph, pw, TMT_TOKENS, 1, p->mem_budget, &mp, err, errlen)) goto done;
        if (p->enable_hr && tpl_plan_unet(m, p->hr_upscale_h / f, p->hr_upscale_w / f, TMT_TOKENS, 1, p->mem_budget,
                                          &mp, err, errlen))
            goto done;
    }
    int per_iter = executed_steps(p) + hires_steps_executed(p);
    for (int it = 0; it < p->n_iter; it++) {
        for (int b = 0; b < B; b++) {
            size_t index = (size_t)it * B + b;
            if (trng_image_noise(&np, index, x + (size_t)b * n1, &gens[b]) != TRNG_OK) {
                snprintf(err, errlen, "noise: bad seed/size parameters");
                goto done;
            }
            if (keep_tensors) memcpy(r->noise + index * n1, x + (size_t)b * n1, n1 * sizeof(float));
        }
        pass_def pd = {.m = m,
                       .p = p,
                       .conds = &conds,
                       .sampler = p->sampler,
                       .scheduler = p->scheduler,
                       .mode = p->kind == TPL_TXT2IMG ? PASS_TXT2IMG : PASS_IMG2IMG,
                       .steps = p->steps,
                       .denoise = p->denoising_strength,
                       .noise_mult = p->kind == TPL_TXT2IMG ? 1.0 : p->initial_noise_multiplier,
                       .B = B, .lc = lc, .lh = lh, .lw = lw,
                       .init_batch = init_batch,
                       .nmask = nmask,
                       .c_concat = c_concat,
                       .grid = p->td_enabled ? &grid : NULL,
                       .gens = gens,
                       .cb = cb,
                       .done0 = it * per_iter,
                       .total = p->n_iter * per_iter};
        int prc = run_pass(&pd, x, err, errlen);
        if (prc) {
            rc = prc;
            goto done;
        }
        if (nmask && init_batch) {
            /* final paste: samples = samples*nmask + init*mask */
            for (int b = 0; b < B; b++)
                for (int ch = 0; ch < lc; ch++)
                    for (size_t q = 0; q < plane; q++) {
                        size_t i = (size_t)b * n1 + (size_t)ch * plane + q;
                        x[i] = x[i] * nmask[q] + init_batch[i] * (1.0f - nmask[q]);
                    }
        }
        if (keep_tensors)
            for (int b = 0; b < B; b++)
                memcpy(r->latents + ((size_t)it * B + b) * n1, x + (size_t)b * n1, n1 * sizeof(float));
        /* hires fix: a second img2img pass on the upscaled first-pass result */
        const float *fin = x;
        int flh = lh, flw = lw;
        float *hx = NULL;
        if (p->enable_hr) {
            int hrc = hires_pass(m, p, &np, it, x, lh, lw, gens, cb, it * per_iter + executed_steps(p),
                                 p->n_iter * per_iter, &hx, &flh, &flw, err, errlen);
            if (hrc) {
                free(hx);
                rc = hrc;
                goto done;
            }
            fin = hx;
        }
        size_t fn1 = (size_t)lc * flh * flw;
        float *fimg = fin == x ? img : malloc((size_t)3 * flh * f * flw * f * sizeof(float));
        for (int b = 0; b < B && fimg; b++) {
            size_t index = (size_t)it * B + b;
            char e2[512];
            if (tmv_decode(m->vae, fin + (size_t)b * fn1, 1, flh, flw, fimg, e2, sizeof e2)) {
                snprintf(err, errlen, "vae decode: %s", e2);
                break;
            }
            ti_image out = {0};
            if (ti_image_alloc(&out, flw * f, flh * f, 3, err, errlen)) break;
            to_uint8(fimg, flh * f, flw * f, &out);
            if (p->kind == TPL_INPAINT && prep.has_mask) {
                ti_image fi = {0};
                if (tpl_inpaint_finish(&prep, &out, &fi, err, errlen)) {
                    ti_image_free(&out);
                    break;
                }
                ti_image_free(&out);
                out = fi;
            }
            uint64_t seed, subseed;
            trng_image_seeds(&np, index, &seed, &subseed);
            char *info = tpl_infotext(m, p, seed, subseed);
            if (!info || push_image(r, &out, info, seed, subseed)) {
                free(info);
                ti_image_free(&out);
                snprintf(err, errlen, "out of memory");
                break;
            }
        }
        int ok = fimg && r->n == (it + 1) * B;
        if (!fimg) snprintf(err, errlen, "out of memory");
        if (fimg != img) free(fimg);
        free(hx);
        if (!ok) goto done;
    }
    rc = 0;
done:
    free(init_batch);
    if (gens)
        for (int b = 0; b < B; b++) trng_free(gens[b]);
    free(gens);
    free(prompts);
    free(negs);
    tpl_conds_free(&conds);
    tpl_inpaint_free(&prep);
    tpl_td_grid_free(&grid);
    free(x);
    free(img);
    free(init_lat);
    free(nmask);
    free(c_concat);
    return rc;
}

void tpl_result_free(tpl_result *r) {
    for (int i = 0; i < r->n; i++) {
        ti_image_free(&r->images[i]);
        free(r->infotexts[i]);
    }
    free(r->images);
    free(r->infotexts);
    free(r->seeds);
    free(r->subseeds);
    free(r->noise);
    free(r->latents);
    memset(r, 0, sizeof *r);
}

char *tpl_result_info_json(const tpl_model *m, const tpl_params *p, const tpl_result *r) {
    json_t *o = json_object();
    json_t *seeds = json_array(), *subs = json_array(), *its = json_array(), *pr = json_array(), *ng = json_array();
    for (int i = 0; i < r->n; i++) {
        json_array_append_new(seeds, json_integer((json_int_t)r->seeds[i]));
        json_array_append_new(subs, json_integer((json_int_t)r->subseeds[i]));
        json_array_append_new(its, json_string(r->infotexts[i] ? r->infotexts[i] : ""));
        json_array_append_new(pr, json_string(p->prompt));
        json_array_append_new(ng, json_string(p->negative_prompt));
    }
    json_object_set_new(o, "seeds", seeds);
    json_object_set_new(o, "subseeds", subs);
    json_object_set_new(o, "infotexts", its);
    json_object_set_new(o, "prompts", pr);
    json_object_set_new(o, "negative_prompts", ng);
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "model_hash", m->shorthash[0] ? json_string(m->shorthash) : json_null());
    json_object_set_new(o, "vae", m->vae_name[0] ? json_string(m->vae_name) : json_null());
    json_object_set_new(o, "vae_hash", m->vae_shorthash[0] ? json_string(m->vae_shorthash) : json_null());
    json_object_set_new(o, "clip_skip", json_integer(p->clip_skip));
    json_object_set_new(o, "width", json_integer(p->width));
    json_object_set_new(o, "height", json_integer(p->height));
    json_object_set_new(o, "sampler_name", json_string(p->sampler_name));
    json_object_set_new(o, "scheduler", json_string(p->scheduler_label));
    json_object_set_new(o, "steps", json_integer(p->steps));
    json_object_set_new(o, "cfg_scale", json_real(p->cfg_scale));
    json_object_set_new(o, "denoising_strength",
                        p->kind == TPL_TXT2IMG ? json_null() : json_real(p->denoising_strength));
    json_object_set_new(o, "is_using_inpainting_conditioning", json_boolean(r->inpainting_conditioning));
    char ts[32];
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    strftime(ts, sizeof ts, "%Y%m%d%H%M%S", &tmv);
    json_object_set_new(o, "job_timestamp", json_string(ts));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
