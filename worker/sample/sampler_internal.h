/*
 * sampler_internal.h -- shared plumbing of sampler*.c (not a public API):
 * the run context, callback wrappers that turn callback failures into
 * TSM_ERR_* codes, and the per-family entry points.
 */
#ifndef TESSERA_SAMPLER_INTERNAL_H
#define TESSERA_SAMPLER_INTERNAL_H

#include <stddef.h>

#include "sampler.h"

typedef struct {
    const tsm_callbacks *cb;
    const tsm_sample_params *p;
    const tsm_model_schedule *m; /* timestep samplers only */
    size_t n;
    double eta; /* resolved */
} tsm__run;

int tsm__denoise(const tsm__run *r, const float *x, double sigma, float *out);
int tsm__noise(const tsm__run *r, float *out);
int tsm__interval_noise(const tsm__run *r, double s, double s_next, float *out);
/* Progress after step i of total; on cancel copies denoised into x. */
int tsm__report(const tsm__run *r, int i, int total, double sigma, float *x,
                const float *denoised);

/* sampler_kdiff.c */
int tsm__run_kdiff(const tsm__run *r, tsm_sampler_id id, const double *sig, size_t nsig,
                   float *x);
/* sampler_timesteps.c: x = unit noise in, final latent out. */
int tsm__run_timesteps(const tsm__run *r, tsm_sampler_id id, float *x);
/* img2img: x already noised to alphas_cumprod[ts[t_enc]] (VP), runs timesteps[:t_enc]. */
int tsm__run_timesteps_img2img(const tsm__run *r, tsm_sampler_id id, int t_enc, float *x);
/* sampler_unipc.c */
int tsm__run_unipc(const tsm__run *r, float *x);

#endif
