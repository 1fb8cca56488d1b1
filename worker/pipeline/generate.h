/* generate.h - the Stable Diffusion pipelines as A1111 runs them: txt2img,
 * img2img and inpaint, from a canonical job spec (docs/jobs-sd.md) to RGB
 * images with their infotexts.
 *
 * What happens, per batch of batch_size images (n_iter batches):
 *   conditioning  every image prompt: extra-network tags dropped, AND split
 *                 with weights, [from:to:when] schedules over the sampler's
 *                 steps (x2 for second-order samplers); the negative prompt
 *                 scheduled the same way; each distinct text encoded once
 *                 (cond_cache), conds of one batch padded to a common length
 *                 by repeating their last token vector (A1111's batch rule);
 *   noise         per image from its seed (trng_image_noise: CPU/NV/GPU,
 *                 variation seed, seed resize, ENSD), per-step noise from
 *                 each image's own generator;
 *   sampling      tsm_sample / tsm_run_k_sampler with the CFG denoiser
 *                 (cfg_denoiser.c): UNet on [conds..., unconds] at
 *                 t = sigma_to_t(sigma), input x*c_in, eps or v to x0,
 *                 denoised = uncond + sum_k w_k*cfg*(cond_k - uncond);
 *   img2img       init image resized (resize_mode), VAE-encoded (posterior
 *                 MEAN: A1111 samples the posterior with torch's global RNG,
 *                 which no other program can reproduce; the mean keeps
 *                 renders deterministic), t_enc = int(min(d,0.999)*steps),
 *                 sampling from sigmas[steps-t_enc-1] with x = init +
 *                 noise*sigma;
 *   inpaint       mask prepared (img_ops.h), latent mask blended into the
 *                 denoised estimate at every step and pasted at the end,
 *                 9-channel models get [mask, masked-image latent];
 *   decode        VAE decode, clamp((x+1)/2), x255, truncated to uint8,
 *                 then the inpaint overlay.
 *
 * Errors: 0; 1 when cancelled (results hold the images finished so far);
 * -1 with a message in err. No global state. */
#ifndef TESSERA_GENERATE_H
#define TESSERA_GENERATE_H

#include "conditioning.h"
#include "image_io.h"
#include "rng.h"
#include "sampler.h"
#include "sd_model.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { TPL_TXT2IMG = 0, TPL_IMG2IMG = 1, TPL_INPAINT = 2 } tpl_kind;

typedef struct tpl_params {
    tpl_kind kind;
    char *prompt, *negative_prompt;
    uint64_t seed, subseed;
    double subseed_strength;
    int seed_resize_from_w, seed_resize_from_h;
    tsm_sampler_id sampler;
    tsm_scheduler scheduler;
    char sampler_name[64], scheduler_label[64];
    int steps;
    double cfg_scale;
    int width, height, batch_size, n_iter;
    double eta;                  /* < 0: sampler default */
    double s_churn, s_tmin, s_tmax, s_noise;
    int clip_skip;
    char model[512], vae[512];   /* "" = default / Automatic */
    trng_kind rng;
    int64_t ensd;
    tcd_emphasis emphasis;
    int preview_every;
    /* img2img / inpaint */
    double denoising_strength;
    int resize_mode;
    double initial_noise_multiplier;
    int mask_blur_x, mask_blur_y, mask_round, inpainting_fill, inpaint_full_res, inpaint_full_res_padding,
        mask_invert;
    /* hires fix (txt2img) */
    int enable_hr;
    double hr_scale, hr_denoise;
    int hr_resize_x, hr_resize_y, hr_steps;
    char hr_upscaler[128];
    int hr_upscaler_given;           /* A1111 writes "Hires upscaler" only then */
    int hr_sampler_set, hr_scheduler_set;
    tsm_sampler_id hr_sampler;
    tsm_scheduler hr_scheduler;
    char *hr_prompt, *hr_negative;
    int hr_upscale_w, hr_upscale_h;  /* A1111 hr_upscale_to_x/y */
    int hr_trunc_x, hr_trunc_y;      /* pixels cut (hr_resize_x and _y both set): (to - target) */
    /* Tiled Diffusion (first pass / img2img), sizes in latent pixels */
    int td_enabled, td_method, td_tile_w, td_tile_h, td_overlap, td_batch;
    /* set by the caller, not the spec: the worker's memory budget (0 = none) */
    size_t mem_budget;
} tpl_params;

/* From the canonical spec (what job_sd.c stores). */
int tpl_params_from_spec(const json_t *spec, tpl_params *p, char *err, size_t errlen);
void tpl_params_free(tpl_params *p);
/* Total sampler steps of the job (for progress): n_iter * executed steps. */
int tpl_total_steps(const tpl_params *p);

typedef struct tpl_callbacks {
    /* after each sampler step; done counts over the whole job; nonzero stops */
    int (*progress)(void *ctx, int done, int total);
    /* a live preview (cheap latent->RGB) every preview_every steps; optional */
    int (*preview)(void *ctx, const ti_image *img);
    void *ctx;
} tpl_callbacks;

typedef struct tpl_result {
    int n;                  /* images finished */
    ti_image *images;       /* RGB */
    char **infotexts;
    uint64_t *seeds, *subseeds;
    /* with keep_tensors: initial noise and final latents of every image,
     * [n][c*h*w] (latent c, h, w below) */
    float *noise, *latents;
    int lat_c, lat_h, lat_w;
    int inpainting_conditioning;
} tpl_result;

int tpl_generate(tpl_model *m, const tpl_params *p, const ti_image *init, const ti_image *mask,
                 const tpl_callbacks *cb, int keep_tensors, tpl_result *r, char *err, size_t errlen);
void tpl_result_free(tpl_result *r);

/* The result info JSON of docs/jobs-sd.md (malloc'ed). */
char *tpl_result_info_json(const tpl_model *m, const tpl_params *p, const tpl_result *r);

/* A1111 infotext of image i (malloc'ed). */
char *tpl_infotext(const tpl_model *m, const tpl_params *p, uint64_t seed, uint64_t subseed);

#endif
