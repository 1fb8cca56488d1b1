/*
 * schedule.h -- the Stable Diffusion noise schedule and A1111's sigma
 * schedulers ("Schedule type").
 *
 * The model schedule is the SD one: scaled-linear betas
 * (linspace(sqrt(0.00085), sqrt(0.012), 1000)^2), alphas_cumprod, and the
 * k-diffusion discrete sigmas sigma[t] = sqrt((1 - ac[t]) / ac[t]),
 * t = 0..999 (ascending).  sigma <-> t conversions follow k-diffusion's
 * DiscreteSchedule (CompVisDenoiser): t_to_sigma interpolates log sigma
 * linearly between integer timesteps, sigma_to_t inverts that (no
 * quantization).
 *
 * Schedulers are the twelve of A1111 1.10 (modules/sd_schedulers.py), with
 * the same names, labels, aliases, default rho, and the same sigma rules
 * (see tsm_compute_sigmas).  Everything is computed in double precision;
 * A1111 computes these tables in float32, so values agree to ~1e-7 relative.
 *
 * The denoiser wrapper helpers turn a raw UNet output into the denoised x0
 * for epsilon models (k-diffusion CompVisDenoiser: D = x - sigma*eps) and
 * v models (CompVisVDenoiser: D = c_skip*x + c_out*v).
 *
 * No global mutable state; functions return TSM_OK (0) or a negative
 * TSM_ERR_* code.
 */
#ifndef TESSERA_SCHEDULE_H
#define TESSERA_SCHEDULE_H

#include <stddef.h>

#define TSM_TRAIN_STEPS 1000

/* Error codes shared by schedule.c and sampler*.c. */
enum {
    TSM_OK = 0,
    TSM_ERR_ARG = -1,       /* bad argument (NULL, steps < 1, ...) */
    TSM_ERR_NOMEM = -2,
    TSM_ERR_CANCELLED = -3, /* the progress callback asked to stop */
    TSM_ERR_CALLBACK = -4,  /* a denoise/noise callback returned nonzero */
    TSM_ERR_UNKNOWN = -5,   /* unknown sampler / scheduler name */
    TSM_ERR_SPACE = -6,     /* output buffer too small */
    TSM_ERR_UNSUPPORTED = -7 /* this sampler cannot run this way (UniPC img2img) */
};

typedef enum {
    TSM_PRED_EPS = 0, /* epsilon prediction (SD 1.x, SDXL) */
    TSM_PRED_V = 1    /* v prediction (SD 2.x 768-v) */
} tsm_prediction;

typedef struct {
    double alphas_cumprod[TSM_TRAIN_STEPS];
    double sigmas[TSM_TRAIN_STEPS];     /* ascending: sigmas[0] = sigma_min */
    double log_sigmas[TSM_TRAIN_STEPS];
    tsm_prediction prediction;
    int is_sdxl; /* picks the SDXL table of Align Your Steps */
} tsm_model_schedule;

/* Scaled-linear schedule with the given beta range (SD: 0.00085, 0.012). */
int tsm_schedule_init(tsm_model_schedule *m, double beta_start, double beta_end,
                      tsm_prediction pred);
/* The SD 1.x/2.x/XL schedule: tsm_schedule_init(m, 0.00085, 0.012, pred). */
int tsm_schedule_init_sd(tsm_model_schedule *m, tsm_prediction pred);

double tsm_sigma_min(const tsm_model_schedule *m); /* sigmas[0]   ~0.0292 */
double tsm_sigma_max(const tsm_model_schedule *m); /* sigmas[999] ~14.6146 */
/* k-diffusion DiscreteSchedule.sigma_to_t (quantize=False). */
double tsm_sigma_to_t(const tsm_model_schedule *m, double sigma);
/* k-diffusion DiscreteSchedule.t_to_sigma; t is clamped to [0, 999]. */
double tsm_t_to_sigma(const tsm_model_schedule *m, double t);

/* ---- denoiser wrapper (k-diffusion CompVisDenoiser / CompVisVDenoiser) ---- */

/* The UNet input is x * c_in(sigma) at timestep tsm_sigma_to_t(sigma). */
double tsm_c_in(double sigma);
/* denoised[i] = x - sigma*eps (TSM_PRED_EPS) or
 * x/(sigma^2+1) - v*sigma/sqrt(sigma^2+1) (TSM_PRED_V).  In-place allowed
 * (denoised may alias x or model_out). */
int tsm_output_to_denoised(tsm_prediction pred, const float *x, const float *model_out,
                           double sigma, float *denoised, size_t n);

/* ---- schedulers ---- */

typedef enum {
    TSM_SCHED_AUTOMATIC = 0,
    TSM_SCHED_UNIFORM,
    TSM_SCHED_KARRAS,
    TSM_SCHED_EXPONENTIAL,
    TSM_SCHED_POLYEXPONENTIAL,
    TSM_SCHED_SGM_UNIFORM,
    TSM_SCHED_KL_OPTIMAL,
    TSM_SCHED_ALIGN_YOUR_STEPS,
    TSM_SCHED_SIMPLE,
    TSM_SCHED_NORMAL,
    TSM_SCHED_DDIM,
    TSM_SCHED_BETA,
    TSM_SCHED_COUNT
} tsm_scheduler;

/* One row of GET /sdapi/v1/schedulers. */
typedef struct {
    const char *name;        /* "karras" */
    const char *label;       /* "Karras" */
    const char *aliases[2];  /* NULL-terminated; A1111 sends null when none */
    double default_rho;      /* -1 when the scheduler has no rho */
    int need_inner_model;
} tsm_scheduler_info;

/* NULL when out of range. */
const tsm_scheduler_info *tsm_scheduler_get(tsm_scheduler s);
/* Look up by name, label or alias (exact first, then case-insensitive).
 * NULL or "" gives TSM_SCHED_AUTOMATIC. */
int tsm_scheduler_find(const char *name, tsm_scheduler *out);
/* JSON array exactly as /sdapi/v1/schedulers; *len gets strlen. */
int tsm_schedulers_json(char *buf, size_t cap, size_t *len);

typedef struct {
    double sigma_min;   /* 0: the model's (A1111 opts.sigma_min = 0) */
    double sigma_max;   /* 0: the model's */
    double rho;         /* 0: the scheduler's default (karras 7, polyexponential 1) */
    double beta_alpha;  /* 0: 0.6 (opts.beta_dist_alpha) */
    double beta_beta;   /* 0: 0.6 (opts.beta_dist_beta) */
    int discard_next_to_last_sigma; /* sampler option or opts.always_discard... */
} tsm_sigma_opts;

/* Sigmas for `steps` sampling steps, as A1111 KDiffusionSampler.get_sigmas:
 * with discard_next_to_last_sigma the schedule is made for steps+1 and the
 * next-to-last entry dropped.  TSM_SCHED_AUTOMATIC means the model's own
 * schedule (= Uniform); resolve a sampler's default before calling.
 * Every schedule ends with 0 except KL Optimal, which (as in A1111) ends at
 * sigma_min.  The DDIM scheduler returns ceil(999 / (1000/steps)) + 1
 * values, which can differ from steps+1.  out needs room for steps+2
 * doubles (more for DDIM with steps > 500: use 1001).  opts may be NULL. */
int tsm_compute_sigmas(const tsm_model_schedule *m, tsm_scheduler s, int steps,
                       const tsm_sigma_opts *opts, double *out, size_t cap, size_t *n_out);

/* Regularized incomplete beta inverse (scipy.stats.beta.ppf), exposed for tests. */
double tsm_beta_ppf(double p, double a, double b);

#endif
