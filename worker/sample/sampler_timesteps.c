/*
 * sampler_timesteps.c -- A1111's timestep samplers DDIM and PLMS
 * (modules/sd_samplers_timesteps_impl.py, described in
 * shared/reference/a1111-compat.md and re-implemented from the CompVis
 * DDIM/PLMS math).
 *
 * A1111 runs these in the variance-preserving space: x starts as the unit
 * noise, the model gives eps at integer timesteps
 * ts = range(0, 1000, 1000 // steps) + 1 (clipped to 999), the loop makes
 * len(ts) - 1 updates (so 20 steps make 19 model calls, 30 make 30), and the
 * result is x at ac[ts[0]] = ac[1], which is returned as the latent.
 *
 * Through the sigma-space denoise callback: at timestep t (sigma_t =
 * sqrt((1 - ac)/ac)) the callback gets x_k = x_vp / sqrt(ac) so that the
 * pipeline's UNet input x_k * c_in(sigma_t) is exactly x_vp at timestep
 * sigma_to_t(sigma_t) = t, and eps = (x_k - D) / sigma_t.  For an eps or v
 * model this is the same eps A1111 computes (CFG is linear either way).
 *
 * DDIM draws per-step noise only when eta > 0 (A1111 multiplies a draw by
 * 0 when eta = 0; nothing else reads that stream).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler_internal.h"

int tsm_ddim_timesteps(int steps, int discard, int *out, size_t cap, size_t *n_out)
{
    if (steps < 1 || !out) return TSM_ERR_ARG;
    int s = steps + (discard ? 1 : 0);
    int c = TSM_TRAIN_STEPS / s;
    if (c < 1) c = 1;
    size_t k = 0;
    for (int t = 0; t < TSM_TRAIN_STEPS; t += c) {
        if (k >= cap) return TSM_ERR_SPACE;
        int v = t + 1;
        out[k++] = v > TSM_TRAIN_STEPS - 1 ? TSM_TRAIN_STEPS - 1 : v;
    }
    if (n_out) *n_out = k;
    return TSM_OK;
}

/* eps at integer timestep t for VP state x_vp. */
static int eps_at(const tsm__run *r, const float *x_vp, int t, float *xk, float *den, float *eps)
{
    const tsm_model_schedule *m = r->m;
    double a = m->alphas_cumprod[t], sigma = m->sigmas[t];
    double inv = 1.0 / sqrt(a);
    for (size_t k = 0; k < r->n; k++) xk[k] = (float)(x_vp[k] * inv);
    int rc = tsm__denoise(r, xk, sigma, den);
    if (rc) return rc;
    for (size_t k = 0; k < r->n; k++) eps[k] = (float)(((double)xk[k] - den[k]) / sigma);
    return TSM_OK;
}

static int run_ddim_plms(const tsm__run *r, tsm_sampler_id id, float *x, int limit)
{
    const tsm_model_schedule *m = r->m;
    const size_t n = r->n;
    int ts[TSM_TRAIN_STEPS + 1];
    size_t L;
    const tsm_sampler_info *info = tsm_sampler_get(id);
    int discard = info->discard_next_to_last_sigma || r->p->always_discard_next_to_last_sigma;
    int rc = tsm_ddim_timesteps(r->p->steps, discard, ts, TSM_TRAIN_STEPS + 1, &L);
    if (rc) return rc;
    if (limit > 0 && (size_t)limit < L) L = (size_t)limit; /* img2img: timesteps[:t_enc] */
    if (L < 2) return TSM_OK;
    float *mem = malloc(sizeof(float) * n * 10);
    if (!mem) return TSM_ERR_NOMEM;
    float *xk = mem, *den = mem + n, *eps = mem + 2 * n, *nz = mem + 3 * n;
    float *x0 = mem + 4 * n, *xprev = mem + 5 * n, *eps2 = mem + 6 * n;
    float *olde[3] = {mem + 7 * n, mem + 8 * n, mem + 9 * n}; /* olde[0] newest */
    int nold = 0;
    const int total = (int)L - 1;
    const double eta = r->eta;

    for (int i = 0; i < total && rc == TSM_OK; i++) {
        int index = (int)L - 1 - i;
        int t = ts[index];
        double a = m->alphas_cumprod[t];
        double ap = m->alphas_cumprod[index > 0 ? ts[index - 1] : 0];
        if ((rc = eps_at(r, x, t, xk, den, eps))) break;
        if (id == TSM_DDIM) {
            double st = eta * sqrt((1.0 - ap) / (1.0 - a) * (1.0 - a / ap));
            double sa = sqrt(a), s1a = sqrt(1.0 - a), sap = sqrt(ap);
            double dir = sqrt(1.0 - ap - st * st);
            if (st != 0.0 && (rc = tsm__noise(r, nz))) break;
            for (size_t k = 0; k < n; k++) {
                double px0 = ((double)x[k] - s1a * eps[k]) / sa;
                x0[k] = (float)px0;
                double v = sap * px0 + dir * eps[k];
                if (st != 0.0) v += st * nz[k];
                x[k] = (float)v;
            }
        } else { /* PLMS */
            double sa = sqrt(a), s1a = sqrt(1.0 - a), sap = sqrt(ap), s1ap = sqrt(1.0 - ap);
            if (nold == 0) {
                int tn = ts[index > 0 ? index - 1 : 0];
                for (size_t k = 0; k < n; k++) {
                    double px0 = ((double)x[k] - s1a * eps[k]) / sa;
                    xprev[k] = (float)(sap * px0 + s1ap * eps[k]);
                }
                if ((rc = eps_at(r, xprev, tn, xk, den, eps2))) break;
                for (size_t k = 0; k < n; k++) eps2[k] = (float)(((double)eps[k] + eps2[k]) / 2.0);
            } else if (nold == 1) {
                for (size_t k = 0; k < n; k++)
                    eps2[k] = (float)((3.0 * eps[k] - olde[0][k]) / 2.0);
            } else if (nold == 2) {
                for (size_t k = 0; k < n; k++)
                    eps2[k] = (float)((23.0 * eps[k] - 16.0 * olde[0][k] + 5.0 * olde[1][k]) / 12.0);
            } else {
                for (size_t k = 0; k < n; k++)
                    eps2[k] = (float)((55.0 * eps[k] - 59.0 * olde[0][k] + 37.0 * olde[1][k] -
                                       9.0 * olde[2][k]) / 24.0);
            }
            for (size_t k = 0; k < n; k++) {
                double px0 = ((double)x[k] - s1a * eps2[k]) / sa;
                x0[k] = (float)px0;
                x[k] = (float)(sap * px0 + s1ap * eps2[k]);
            }
            /* push eps (the un-combined one) */
            float *last = olde[2];
            olde[2] = olde[1]; olde[1] = olde[0]; olde[0] = last;
            memcpy(olde[0], eps, sizeof(float) * n);
            if (nold < 3) nold++;
        }
        rc = tsm__report(r, i, total, m->sigmas[t], x, x0);
    }
    free(mem);
    return rc;
}

int tsm__run_timesteps(const tsm__run *r, tsm_sampler_id id, float *x)
{
    if (id == TSM_DDIM || id == TSM_PLMS) return run_ddim_plms(r, id, x, 0);
    if (id == TSM_UNIPC) return tsm__run_unipc(r, x);
    return TSM_ERR_ARG;
}

int tsm__run_timesteps_img2img(const tsm__run *r, tsm_sampler_id id, int t_enc, float *x)
{
    if (id == TSM_DDIM || id == TSM_PLMS) return run_ddim_plms(r, id, x, t_enc);
    return TSM_ERR_UNSUPPORTED;
}
