/* cfg_denoiser.h - A1111's conditioning schedules and CFG denoiser.
 *
 * tpl_conds holds, for one batch of images, every prompt's AND parts with
 * their weights and [from:to:when] schedules, and the negative prompts'
 * schedules; each distinct text is encoded once. tpl_denoise is the
 * tsm_denoise_fn the samplers call: it counts its calls as A1111's
 * CFGDenoiser.step does (the schedule index), builds the UNet batch
 * [x repeated per cond part..., x per uncond], pads the conds of the batch to
 * one token length by repeating the last token vector (and the unconds
 * likewise), runs cond and uncond together when their lengths agree (else
 * separately, as A1111 without pad_cond_uncond), turns eps/v into x0 and
 * combines: denoised = uncond + sum_k (cond_k - uncond) * w_k * cfg_scale.
 * Inpainting: k-diffusion samplers blend the denoised estimate with the init
 * latent through the latent mask; timestep samplers (DDIM/PLMS/UniPC) blend
 * x before the UNet call; 9-channel models get c_concat appended to x. */
#ifndef TESSERA_CFG_DENOISER_H
#define TESSERA_CFG_DENOISER_H

#include "generate.h"
#include "tiled_diffusion.h"

typedef struct tpl_enc {
    char *text;
    float *z;        /* [T, C] */
    int T;
} tpl_enc;

typedef struct tpl_sched {
    int n;
    int *end_at;
    int *enc;        /* index into tpl_conds.enc */
} tpl_sched;

typedef struct tpl_multi {
    int n;
    tpl_sched *parts;
    double *w;
} tpl_multi;

#define TPL_MAX_KEYS 64

typedef struct tpl_conds {
    tpl_enc *enc;
    int nenc, cap;
    char *keys[TPL_MAX_KEYS];        /* (sub)prompts encoded so far */
    tpl_sched key_sched[TPL_MAX_KEYS];
    int nkeys;
    int B, C;
    tpl_multi *cond;     /* [B] */
    tpl_sched *uncond;   /* [B] */
} tpl_conds;

/* prompts/negs: B texts each; total_steps: the schedule length (the first
 * pass's steps for a hires pass); hires_steps > 0: schedules of the hires
 * pass of that many steps (A1111's get_learned_conditioning hires_steps). */
int tpl_conds_build(tpl_model *m, const tpl_params *p, char *const *prompts, char *const *negs, int B,
                    int total_steps, int hires_steps, tpl_conds *out, char *err, size_t errlen);
void tpl_conds_free(tpl_conds *c);

typedef struct tpl_denoiser {
    tpl_model *m;
    const tpl_conds *c;
    double cfg;
    int B, lc, lh, lw;
    int step;                  /* denoiser calls so far (the schedule index) */
    const float *init_latent;  /* [B][lc*lh*lw] or NULL */
    const float *nmask;        /* [lh*lw], 1 = repaint, or NULL */
    int timesteps;             /* DDIM/PLMS/UniPC: blend x before the UNet */
    const float *c_concat;     /* [B][5][lh][lw] for 9-channel UNets, or NULL */
    const tpl_td_grid *grid;   /* Tiled Diffusion, or NULL; used when it matches lh x lw */
    size_t budget;             /* memory budget (bytes) for rows per UNet forward; 0 = none */
    int plan_h, plan_w, plan_T, plan_rows; /* the last plan (mem_plan.h) */
    char *err;
    size_t errlen;
} tpl_denoiser;

/* tsm_denoise_fn; ctx is a tpl_denoiser. */
int tpl_denoise(void *ctx, const float *x, float sigma, float *out, size_t n);

#endif
