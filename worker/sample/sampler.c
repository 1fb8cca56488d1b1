/*
 * sampler.c -- sampler table (A1111 1.10 names, aliases, options), name
 * resolution (aliases, legacy combined "<sampler> <scheduler>" names,
 * get_sampler_and_scheduler rules), JSON for /sdapi/v1/samplers, default
 * parameters and the tsm_sample driver that builds the schedule, scales the
 * initial noise and dispatches to sampler_kdiff.c / sampler_timesteps.c /
 * sampler_unipc.c.
 *
 * Not implemented (not listed): DPM fast, DPM adaptive, Restart,
 * DDIM CFG++ (needs the unconditional prediction separately).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sampler_internal.h"

#define K TSM_SCHED_KARRAS
#define E TSM_SCHED_EXPONENTIAL
#define A TSM_SCHED_AUTOMATIC

/* name, aliases, scheduler, discard, uses_ensd, second_order, brownian,
 * solver_type, timesteps, has_eta, has_churn */
static const tsm_sampler_info SAMPLERS[TSM_SAMPLER_COUNT] = {
    [TSM_DPMPP_2M] = {"DPM++ 2M", {"k_dpmpp_2m", NULL}, K, 0, 0, 0, 0, NULL, 0, 0, 0},
    [TSM_DPMPP_SDE] = {"DPM++ SDE", {"k_dpmpp_sde", NULL}, K, 0, 0, 1, 1, NULL, 0, 1, 0},
    [TSM_DPMPP_2M_SDE] = {"DPM++ 2M SDE", {"k_dpmpp_2m_sde", NULL}, E, 0, 0, 0, 1, NULL, 0, 1, 0},
    [TSM_DPMPP_2M_SDE_HEUN] = {"DPM++ 2M SDE Heun", {"k_dpmpp_2m_sde_heun", NULL}, E, 0, 0, 0, 1,
                               "heun", 0, 1, 0},
    [TSM_DPMPP_2S_A] = {"DPM++ 2S a", {"k_dpmpp_2s_a", NULL}, K, 0, 1, 1, 0, NULL, 0, 1, 0},
    [TSM_DPMPP_3M_SDE] = {"DPM++ 3M SDE", {"k_dpmpp_3m_sde", NULL}, E, 1, 0, 0, 1, NULL, 0, 1, 0},
    [TSM_EULER_A] = {"Euler a", {"k_euler_a", "k_euler_ancestral", NULL}, A, 0, 1, 0, 0, NULL, 0, 1, 0},
    [TSM_EULER] = {"Euler", {"k_euler", NULL}, A, 0, 0, 0, 0, NULL, 0, 0, 1},
    [TSM_LMS] = {"LMS", {"k_lms", NULL}, A, 0, 0, 0, 0, NULL, 0, 0, 0},
    [TSM_HEUN] = {"Heun", {"k_heun", NULL}, A, 0, 0, 1, 0, NULL, 0, 0, 1},
    [TSM_DPM2] = {"DPM2", {"k_dpm_2", NULL}, K, 1, 0, 1, 0, NULL, 0, 0, 1},
    [TSM_DPM2_A] = {"DPM2 a", {"k_dpm_2_a", NULL}, K, 1, 1, 1, 0, NULL, 0, 1, 0},
    [TSM_DDIM] = {"DDIM", {"ddim", NULL}, A, 0, 0, 0, 0, NULL, 1, 1, 0},
    [TSM_PLMS] = {"PLMS", {"plms", NULL}, A, 0, 0, 0, 0, NULL, 1, 0, 0},
    [TSM_UNIPC] = {"UniPC", {"unipc", NULL}, A, 0, 0, 0, 0, NULL, 1, 0, 0},
    [TSM_LCM] = {"LCM", {"k_lcm", NULL}, A, 0, 0, 0, 0, NULL, 0, 0, 0},
};
#undef K
#undef E
#undef A

static const char *const NAMES[TSM_SAMPLER_COUNT + 1] = {
    "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
    "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DDIM", "PLMS", "UniPC", "LCM", NULL};

const tsm_sampler_info *tsm_sampler_get(tsm_sampler_id id)
{
    if ((int)id < 0 || id >= TSM_SAMPLER_COUNT) return NULL;
    return &SAMPLERS[id];
}

const char *const *tsm_sampler_names(void) { return NAMES; }

int tsm_samplers_json(char *buf, size_t cap, size_t *len)
{
    if (!buf || cap == 0) return TSM_ERR_ARG;
    size_t o = 0;
    int w;
#define PUT(...) do { w = snprintf(buf + o, cap - o, __VA_ARGS__); \
        if (w < 0 || (size_t)w >= cap - o) { return TSM_ERR_SPACE; } \
        o += (size_t)w; } while (0)
    PUT("[");
    for (int i = 0; i < TSM_SAMPLER_COUNT; i++) {
        const tsm_sampler_info *s = &SAMPLERS[i];
        PUT("%s{\"name\":\"%s\",\"aliases\":[", i ? "," : "", s->name);
        for (int a = 0; a < 3 && s->aliases[a]; a++) PUT("%s\"%s\"", a ? "," : "", s->aliases[a]);
        PUT("],\"options\":{");
        int f = 0;
        if (s->scheduler != TSM_SCHED_AUTOMATIC) {
            PUT("\"scheduler\":\"%s\"", tsm_scheduler_get(s->scheduler)->name);
            f = 1;
        }
        if (s->discard_next_to_last_sigma) { PUT("%s\"discard_next_to_last_sigma\":\"True\"", f ? "," : ""); f = 1; }
        if (s->uses_ensd) { PUT("%s\"uses_ensd\":\"True\"", f ? "," : ""); f = 1; }
        if (s->second_order) { PUT("%s\"second_order\":\"True\"", f ? "," : ""); f = 1; }
        if (s->brownian_noise) { PUT("%s\"brownian_noise\":\"True\"", f ? "," : ""); f = 1; }
        if (s->solver_type) { PUT("%s\"solver_type\":\"%s\"", f ? "," : "", s->solver_type); f = 1; }
        PUT("}}");
    }
    PUT("]");
#undef PUT
    if (len) *len = o;
    return TSM_OK;
}

/* Exact (pass 0) or case-insensitive (pass 1) match on name or alias,
 * of the first len characters of name. */
static int match_sampler(const char *name, size_t len, int pass)
{
    for (int i = 0; i < TSM_SAMPLER_COUNT; i++) {
        const char *cands[4] = {SAMPLERS[i].name, SAMPLERS[i].aliases[0], SAMPLERS[i].aliases[1],
                                SAMPLERS[i].aliases[2]};
        for (int c = 0; c < 4 && cands[c]; c++) {
            if (strlen(cands[c]) != len) continue;
            if (pass ? !strncasecmp(name, cands[c], len) : !strncmp(name, cands[c], len)) return i;
        }
    }
    return -1;
}

int tsm_find(const char *name, tsm_sampler_id *sampler, tsm_scheduler *scheduler)
{
    if (!name || !*name) return TSM_ERR_UNKNOWN;
    size_t len = strlen(name);
    for (int pass = 0; pass < 2; pass++) {
        int id = match_sampler(name, len, pass);
        if (id >= 0) {
            if (sampler) *sampler = (tsm_sampler_id)id;
            if (scheduler) *scheduler = TSM_SCHED_AUTOMATIC;
            return TSM_OK;
        }
    }
    /* "<sampler> <scheduler label|name|alias>", and legacy "<alias>_ka" */
    for (int pass = 0; pass < 2; pass++) {
        for (int si = 0; si < TSM_SCHED_COUNT; si++) {
            const tsm_scheduler_info *s = tsm_scheduler_get((tsm_scheduler)si);
            const char *opts[4] = {s->label, s->name, s->aliases[0], s->aliases[1]};
            for (int o = 0; o < 4 && opts[o]; o++) {
                size_t ol = strlen(opts[o]);
                if (len <= ol + 1 || name[len - ol - 1] != ' ') continue;
                const char *suf = name + len - ol;
                if (pass ? strcasecmp(suf, opts[o]) : strcmp(suf, opts[o])) continue;
                int id = match_sampler(name, len - ol - 1, pass);
                if (id < 0) continue;
                if (sampler) *sampler = (tsm_sampler_id)id;
                if (scheduler) *scheduler = (tsm_scheduler)si;
                return TSM_OK;
            }
        }
    }
    if (len > 3 && !strcasecmp(name + len - 3, "_ka")) {
        int id = match_sampler(name, len - 3, 1);
        if (id >= 0) {
            if (sampler) *sampler = (tsm_sampler_id)id;
            if (scheduler) *scheduler = TSM_SCHED_KARRAS;
            return TSM_OK;
        }
    }
    return TSM_ERR_UNKNOWN;
}

int tsm_resolve(const char *sampler_name, const char *scheduler_name, tsm_sampler_id *sampler,
                tsm_scheduler *scheduler)
{
    tsm_scheduler sch;
    if (tsm_scheduler_find(scheduler_name, &sch) != TSM_OK) sch = TSM_SCHED_AUTOMATIC;
    tsm_sampler_id id = TSM_DPMPP_2M;
    if (sampler_name && *sampler_name) {
        tsm_scheduler suf;
        int rc = tsm_find(sampler_name, &id, &suf);
        if (rc) return rc;
        if (suf != TSM_SCHED_AUTOMATIC) sch = suf;
    }
    if (SAMPLERS[id].scheduler != TSM_SCHED_AUTOMATIC && SAMPLERS[id].scheduler == sch)
        sch = TSM_SCHED_AUTOMATIC;
    if (sampler) *sampler = id;
    if (scheduler) *scheduler = sch;
    return TSM_OK;
}

tsm_scheduler tsm_effective_scheduler(tsm_sampler_id id, tsm_scheduler s)
{
    if (s != TSM_SCHED_AUTOMATIC) return s;
    if ((int)id >= 0 && id < TSM_SAMPLER_COUNT && SAMPLERS[id].scheduler != TSM_SCHED_AUTOMATIC)
        return SAMPLERS[id].scheduler;
    return TSM_SCHED_UNIFORM;
}

void tsm_sample_params_init(tsm_sample_params *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->sampler = TSM_EULER;
    p->scheduler = TSM_SCHED_AUTOMATIC;
    p->steps = 20;
    p->eta = -1.0;
    p->s_noise = 1.0;
    p->uni_pc_order = 3;
    p->uni_pc_lower_order_final = 1;
    p->lms_order = 4;
}

/* ---- callback wrappers ---- */

int tsm__denoise(const tsm__run *r, const float *x, double sigma, float *out)
{
    return r->cb->denoise(r->cb->ctx, x, (float)sigma, out, r->n) ? TSM_ERR_CALLBACK : TSM_OK;
}

int tsm__noise(const tsm__run *r, float *out)
{
    if (!r->cb->noise) return TSM_ERR_ARG;
    return r->cb->noise(r->cb->ctx, out, r->n) ? TSM_ERR_CALLBACK : TSM_OK;
}

int tsm__interval_noise(const tsm__run *r, double s, double s_next, float *out)
{
    if (r->cb->interval_noise)
        return r->cb->interval_noise(r->cb->ctx, s, s_next, out, r->n) ? TSM_ERR_CALLBACK : TSM_OK;
    return tsm__noise(r, out);
}

int tsm__report(const tsm__run *r, int i, int total, double sigma, float *x, const float *denoised)
{
    if (!r->cb->progress) return TSM_OK;
    if (r->cb->progress(r->cb->ctx, i, total, sigma, x, denoised, r->n)) {
        memcpy(x, denoised, sizeof(float) * r->n);
        return TSM_ERR_CANCELLED;
    }
    return TSM_OK;
}

/* ---- drivers ---- */

static int check(const tsm_sample_params *p, const tsm_callbacks *cb, const float *x)
{
    if (!p || !cb || !cb->denoise || !x) return TSM_ERR_ARG;
    if ((int)p->sampler < 0 || p->sampler >= TSM_SAMPLER_COUNT) return TSM_ERR_ARG;
    if (p->steps < 1) return TSM_ERR_ARG;
    return TSM_OK;
}

static double resolved_eta(const tsm_sample_params *p)
{
    const tsm_sampler_info *s = &SAMPLERS[p->sampler];
    if (!s->has_eta) return 0.0;
    if (p->eta >= 0) return p->eta;
    return s->timesteps ? 0.0 : 1.0;
}

int tsm_sample_sigmas(const tsm_model_schedule *m, const tsm_sample_params *p, double *out,
                      size_t cap, size_t *n_out)
{
    if (!m || !p || (int)p->sampler < 0 || p->sampler >= TSM_SAMPLER_COUNT) return TSM_ERR_ARG;
    tsm_sigma_opts o = p->sigma;
    o.discard_next_to_last_sigma = SAMPLERS[p->sampler].discard_next_to_last_sigma ||
                                   p->always_discard_next_to_last_sigma;
    return tsm_compute_sigmas(m, tsm_effective_scheduler(p->sampler, p->scheduler), p->steps, &o,
                              out, cap, n_out);
}

int tsm_run_k_sampler(const tsm_sample_params *p, const double *sigmas, size_t nsig,
                      const tsm_callbacks *cb, float *x, size_t n)
{
    int rc = check(p, cb, x);
    if (rc) return rc;
    if (!sigmas || SAMPLERS[p->sampler].timesteps) return TSM_ERR_ARG;
    tsm__run r = {cb, p, NULL, n, resolved_eta(p)};
    return tsm__run_kdiff(&r, p->sampler, sigmas, nsig, x);
}

int tsm_sample(const tsm_model_schedule *m, const tsm_sample_params *p, const tsm_callbacks *cb,
               float *x, size_t n)
{
    int rc = check(p, cb, x);
    if (rc) return rc;
    if (!m) return TSM_ERR_ARG;
    tsm__run r = {cb, p, m, n, resolved_eta(p)};
    if (SAMPLERS[p->sampler].timesteps) return tsm__run_timesteps(&r, p->sampler, x);

    size_t cap = (size_t)p->steps + 3;
    if (cap < TSM_TRAIN_STEPS + 2) cap = TSM_TRAIN_STEPS + 2;
    double *sig = malloc(sizeof(double) * cap);
    if (!sig) return TSM_ERR_NOMEM;
    size_t nsig = 0;
    rc = tsm_sample_sigmas(m, p, sig, cap, &nsig);
    if (rc == TSM_OK && nsig > 0) {
        /* A1111: x * sigmas[0], or x * sqrt(1 + sigmas[0]^2) with the SGM multiplier */
        double scale = p->sgm_noise_multiplier ? sqrt(1.0 + sig[0] * sig[0]) : sig[0];
        for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] * scale);
        rc = tsm__run_kdiff(&r, p->sampler, sig, nsig, x);
    }
    free(sig);
    return rc;
}

int tsm_run_timesteps_img2img(const tsm_model_schedule *m, const tsm_sample_params *p, int t_enc,
                              const tsm_callbacks *cb, float *x, size_t n)
{
    int rc = check(p, cb, x);
    if (rc) return rc;
    if (!m || !SAMPLERS[p->sampler].timesteps) return TSM_ERR_ARG;
    tsm__run r = {cb, p, m, n, resolved_eta(p)};
    return tsm__run_timesteps_img2img(&r, p->sampler, t_enc, x);
}
