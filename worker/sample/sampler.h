/*
 * sampler.h -- the A1111 samplers (k-diffusion algorithms plus A1111's
 * timestep samplers DDIM, PLMS and UniPC) over flat float latents.
 *
 * The sampler never sees the UNet.  It calls back:
 *   denoise(ctx, x, sigma, out, n)   D(x, sigma): the denoised x0 estimate in
 *       k-diffusion's convention (x = x0 + sigma*noise).  The pipeline feeds
 *       the UNet x*tsm_c_in(sigma) at timestep tsm_sigma_to_t(sigma), applies
 *       CFG, and converts with tsm_output_to_denoised.  Nonzero = error.
 *   noise(ctx, out, n)               one N(0,1) draw for the whole latent:
 *       A1111's per-step noise (randn_like hijacked to the image RNG).
 *       Called in exactly the order k-diffusion calls randn_like /
 *       noise_sampler, so an A1111 RNG stream reproduces A1111.
 *   interval_noise(ctx, s, s_next, out, n)   optional: the Brownian-tree
 *       noise sampler of DPM++ SDE / 2M SDE / 3M SDE.  A1111 uses
 *       k-diffusion's BrownianTreeNoiseSampler (torchsde.BrownianTree seeded
 *       with each image's seed, interval [min sigma > 0, max sigma]); its
 *       exact values depend on torchsde internals and are not reproduced
 *       here.  When NULL these samplers take noise() instead (k-diffusion's
 *       default_noise_sampler behaviour): same distribution, different draws.
 *   progress(ctx, step, total, sigma, x, denoised, n)   after each step;
 *       nonzero stops sampling between steps: x then holds the last
 *       denoised estimate (as A1111 returns last_latent on interrupt) and
 *       the call returns TSM_ERR_CANCELLED.
 *
 * Input x is the unit-variance initial noise; tsm_sample scales it (by
 * sigmas[0] for k-diffusion samplers; timestep samplers use it as is) and
 * leaves the final latent in x.
 *
 * UniPC runs as A1111's (time_uniform, bh1/bh2, see sampler_unipc.c); its
 * img2img path is not implemented (tsm_run_timesteps_img2img refuses it).
 *
 * Names follow A1111 1.10 (/sdapi/v1/samplers): names, aliases, options,
 * legacy combined names ("DPM++ 2M Karras") and the "_ka" aliases.
 */
#ifndef TESSERA_SAMPLER_H
#define TESSERA_SAMPLER_H

#include <stddef.h>

#include "schedule.h"

typedef enum {
    TSM_DPMPP_2M = 0,
    TSM_DPMPP_SDE,
    TSM_DPMPP_2M_SDE,
    TSM_DPMPP_2M_SDE_HEUN,
    TSM_DPMPP_2S_A,
    TSM_DPMPP_3M_SDE,
    TSM_EULER_A,
    TSM_EULER,
    TSM_LMS,
    TSM_HEUN,
    TSM_DPM2,
    TSM_DPM2_A,
    TSM_DDIM,
    TSM_PLMS,
    TSM_UNIPC,
    TSM_LCM,
    TSM_SAMPLER_COUNT
} tsm_sampler_id;

/* One row of GET /sdapi/v1/samplers, plus how we run it. */
typedef struct {
    const char *name;             /* "DPM++ 2M" */
    const char *aliases[3];       /* NULL-terminated */
    tsm_scheduler scheduler;      /* options.scheduler, AUTOMATIC if none */
    int discard_next_to_last_sigma;
    int uses_ensd;
    int second_order;
    int brownian_noise;
    const char *solver_type;      /* "heun" for DPM++ 2M SDE Heun, else NULL */
    int timesteps;                /* DDIM/PLMS/UniPC: A1111 timestep samplers */
    int has_eta;                  /* accepts eta */
    int has_churn;                /* accepts s_churn/s_tmin/s_tmax/s_noise */
} tsm_sampler_info;

const tsm_sampler_info *tsm_sampler_get(tsm_sampler_id id);
/* NULL-terminated list of names, A1111 order. */
const char *const *tsm_sampler_names(void);
/* JSON array exactly as /sdapi/v1/samplers (option values are strings,
 * booleans as "True", as A1111's pydantic model sends them). */
int tsm_samplers_json(char *buf, size_t cap, size_t *len);

/* Name, alias or legacy combined name ("DPM++ 2M Karras", "k_dpmpp_2m_ka")
 * -> sampler.  *scheduler gets the scheduler named by the suffix, else
 * TSM_SCHED_AUTOMATIC.  Exact match first, then case-insensitive.
 * TSM_ERR_UNKNOWN when nothing matches. Either out pointer may be NULL. */
int tsm_find(const char *name, tsm_sampler_id *sampler, tsm_scheduler *scheduler);
/* A1111 get_sampler_and_scheduler: scheduler_name (name/label/alias,
 * unknown or NULL -> Automatic), a scheduler suffix on sampler_name
 * overrides it, and a scheduler equal to the sampler's default becomes
 * Automatic.  NULL/"" sampler_name -> "DPM++ 2M" (A1111's first sampler);
 * an unknown one -> TSM_ERR_UNKNOWN (the API answers 400). */
int tsm_resolve(const char *sampler_name, const char *scheduler_name,
                tsm_sampler_id *sampler, tsm_scheduler *scheduler);
/* Automatic -> the sampler's default (options.scheduler) -> Uniform. */
tsm_scheduler tsm_effective_scheduler(tsm_sampler_id id, tsm_scheduler s);

typedef int (*tsm_denoise_fn)(void *ctx, const float *x, float sigma, float *out_denoised,
                              size_t n);
typedef int (*tsm_noise_fn)(void *ctx, float *out, size_t n);
typedef int (*tsm_interval_noise_fn)(void *ctx, double sigma, double sigma_next, float *out,
                                     size_t n);
typedef int (*tsm_progress_fn)(void *ctx, int step, int total, double sigma, const float *x,
                               const float *denoised, size_t n);

typedef struct {
    tsm_denoise_fn denoise;               /* required */
    tsm_noise_fn noise;                   /* required by ancestral/SDE samplers, churn, eta>0 DDIM */
    tsm_interval_noise_fn interval_noise; /* optional (Brownian) */
    tsm_progress_fn progress;             /* optional */
    void *ctx;
} tsm_callbacks;

typedef struct {
    tsm_sampler_id sampler;
    tsm_scheduler scheduler;  /* Automatic -> sampler default */
    int steps;
    double eta;               /* < 0: A1111 default (eta_ancestral 1.0; eta_ddim 0.0) */
    double s_churn;           /* 0 */
    double s_tmin;            /* 0 */
    double s_tmax;            /* 0 = infinity (A1111 opts.s_tmax 0) */
    double s_noise;           /* 1 */
    tsm_sigma_opts sigma;     /* sigma_min/max/rho overrides, beta alpha/beta */
    int always_discard_next_to_last_sigma;
    int sgm_noise_multiplier; /* scale by sqrt(1 + sigma0^2) instead of sigma0 */
    int uni_pc_order;         /* 3 */
    int uni_pc_bh2;           /* 0: variant bh1 (A1111 default), 1: bh2 */
    int uni_pc_lower_order_final; /* 1 */
    int lms_order;            /* 4 */
} tsm_sample_params;

/* A1111 defaults: Euler (the API default), Automatic, 20 steps. */
void tsm_sample_params_init(tsm_sample_params *p);

/* Full txt2img sampling: x (n floats) = initial N(0,1) noise in, final
 * latent out. */
int tsm_sample(const tsm_model_schedule *m, const tsm_sample_params *p,
               const tsm_callbacks *cb, float *x, size_t n);

/* The sigma schedule tsm_sample uses for a k-diffusion sampler (steps+1
 * values normally; see tsm_compute_sigmas). */
int tsm_sample_sigmas(const tsm_model_schedule *m, const tsm_sample_params *p,
                      double *out, size_t cap, size_t *n_out);

/* Run a k-diffusion sampler on an explicit schedule (img2img etc.): x is
 * already noised to sigmas[0].  Not for DDIM/PLMS/UniPC. */
int tsm_run_k_sampler(const tsm_sample_params *p, const double *sigmas, size_t nsig,
                      const tsm_callbacks *cb, float *x, size_t n);

/* img2img with a timestep sampler (DDIM, PLMS), as A1111's
 * sd_samplers_timesteps: ts = tsm_ddim_timesteps(steps); x must already be
 * sqrt(a)*init + sqrt(1-a)*noise with a = alphas_cumprod[ts[t_enc]]; the
 * loop runs over ts[:t_enc] (t_enc - 1 model steps) and leaves the latent in
 * x. UniPC: TSM_ERR_UNSUPPORTED. */
int tsm_run_timesteps_img2img(const tsm_model_schedule *m, const tsm_sample_params *p, int t_enc,
                              const tsm_callbacks *cb, float *x, size_t n);

/* A1111 timesteps of DDIM/PLMS/UniPC for `steps`: range(0,1000,1000//s)+1
 * clipped to 999 (s = steps, +1 with discard).  Returns the count. */
int tsm_ddim_timesteps(int steps, int discard, int *out, size_t cap, size_t *n_out);

#endif
