/*
 * sampler_kdiff.c -- the k-diffusion samplers (crowsonkb/k-diffusion,
 * MIT; k_diffusion/sampling.py 0.1.1), re-implemented over flat float
 * arrays: Euler, Euler a, Heun, DPM2, DPM2 a, LMS, DPM++ 2S a, DPM++ SDE,
 * DPM++ 2M, DPM++ 2M SDE (midpoint / heun), DPM++ 3M SDE and A1111's LCM
 * (x = D; add sigma_next * noise).
 *
 * Scalars are double, latents float (A1111 runs float32 latents); every
 * element update is computed in double.  Noise draws happen in the same
 * order and number as k-diffusion's randn_like / noise_sampler calls,
 * including the unconditional per-step draw of Euler/Heun/DPM2 when
 * s_churn > 0 (k-diffusion draws even when gamma is 0 for that step).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler_internal.h"

/* get_ancestral_step: sigma_down, sigma_up. */
static void anc_step(double from, double to, double eta, double *down, double *up)
{
    if (eta == 0.0) { *down = to; *up = 0.0; return; }
    double u = eta * sqrt(to * to * (from * from - to * to) / (from * from));
    if (u > to) u = to;
    *up = u;
    *down = sqrt(to * to - u * u);
}

/* Integral over [a, b] of prod_{k != j, k < order} (tau - t[i-k]) / (t[i-j] - t[i-k]),
 * done exactly on the polynomial (scipy's quad is exact to rounding here). */
static double lms_coeff(int order, const double *t, int i, int j)
{
    double poly[8] = {1.0}; /* coefficients, ascending powers */
    int deg = 0;
    double denom = 1.0;
    for (int k = 0; k < order; k++) {
        if (k == j) continue;
        double c = t[i - k];
        /* multiply by (tau - c) */
        for (int d = deg + 1; d >= 0; d--) {
            double v = (d > 0 ? poly[d - 1] : 0.0) - c * poly[d];
            poly[d] = v;
        }
        deg++;
        denom *= t[i - j] - t[i - k];
    }
    double a = t[i], b = t[i + 1], sum = 0.0;
    for (int d = deg; d >= 0; d--) {
        double p = (double)(d + 1);
        sum += poly[d] * (pow(b, p) - pow(a, p)) / p;
    }
    return sum / denom;
}

enum { B_NOISE = 6 }; /* buffers: den, d, x2, den2, old, old2, noise, then LMS history */

int tsm__run_kdiff(const tsm__run *r, tsm_sampler_id id, const double *sig, size_t nsig,
                   float *x)
{
    if (nsig < 2) return TSM_OK;
    const size_t n = r->n;
    const tsm_sample_params *p = r->p;
    const int steps = (int)nsig - 1;
    const double eta = r->eta;
    const double s_noise = p->s_noise;
    int nb = B_NOISE + 1 + (id == TSM_LMS ? (p->lms_order > 0 ? p->lms_order : 4) : 0);
    float *mem = malloc(sizeof(float) * n * (size_t)nb);
    if (!mem) return TSM_ERR_NOMEM;
    float *den = mem, *d = mem + n, *x2 = mem + 2 * n, *den2 = mem + 3 * n;
    float *old = mem + 4 * n, *old2 = mem + 5 * n, *nz = mem + 6 * n;
    int have_old = 0, have_old2 = 0;
    double h_1 = 0, h_2 = 0; /* previous step sizes (2M SDE / 3M SDE) */
    int rc = TSM_OK;

    int churn = (id == TSM_EULER || id == TSM_HEUN || id == TSM_DPM2);
    double s_tmax = p->s_tmax > 0 ? p->s_tmax : INFINITY;

    for (int i = 0; i < steps && rc == TSM_OK; i++) {
        double s = sig[i], sn = sig[i + 1];

        if (churn) {
            double gamma = 0.0;
            if (p->s_tmin <= s && s <= s_tmax) {
                gamma = p->s_churn / (double)steps;
                if (gamma > M_SQRT2 - 1.0) gamma = M_SQRT2 - 1.0;
            }
            if (p->s_churn > 0) {
                if ((rc = tsm__noise(r, nz))) break;
            }
            double s_hat = s * (gamma + 1.0);
            if (gamma > 0) {
                double c = sqrt(s_hat * s_hat - s * s) * s_noise;
                for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (double)nz[k] * c);
            }
            if ((rc = tsm__denoise(r, x, s_hat, den))) break;
            for (size_t k = 0; k < n; k++) d[k] = (float)(((double)x[k] - den[k]) / s_hat);
            if (id == TSM_EULER || sn == 0.0) {
                double dt = sn - s_hat;
                for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (double)d[k] * dt);
            } else if (id == TSM_HEUN) {
                double dt = sn - s_hat;
                for (size_t k = 0; k < n; k++) x2[k] = (float)(x[k] + (double)d[k] * dt);
                if ((rc = tsm__denoise(r, x2, sn, den2))) break;
                for (size_t k = 0; k < n; k++) {
                    double d2 = ((double)x2[k] - den2[k]) / sn;
                    double dp = ((double)d[k] + d2) / 2.0;
                    x[k] = (float)(x[k] + dp * dt);
                }
            } else { /* DPM2 */
                double s_mid = exp(log(s_hat) + 0.5 * (log(sn) - log(s_hat)));
                double dt1 = s_mid - s_hat, dt2 = sn - s_hat;
                for (size_t k = 0; k < n; k++) x2[k] = (float)(x[k] + (double)d[k] * dt1);
                if ((rc = tsm__denoise(r, x2, s_mid, den2))) break;
                for (size_t k = 0; k < n; k++) {
                    double d2 = ((double)x2[k] - den2[k]) / s_mid;
                    x[k] = (float)(x[k] + d2 * dt2);
                }
            }
            rc = tsm__report(r, i, steps, s, x, den);
            continue;
        }

        if ((rc = tsm__denoise(r, x, s, den))) break;

        switch (id) {
        case TSM_EULER_A: {
            double sd, su;
            anc_step(s, sn, eta, &sd, &su);
            double dt = sd - s;
            for (size_t k = 0; k < n; k++)
                x[k] = (float)(x[k] + (((double)x[k] - den[k]) / s) * dt);
            if (sn > 0) {
                if ((rc = tsm__noise(r, nz))) break;
                double c = s_noise * su;
                for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (double)nz[k] * c);
            }
            break;
        }
        case TSM_DPM2_A: {
            double sd, su;
            anc_step(s, sn, eta, &sd, &su);
            if (sd == 0.0) {
                double dt = sd - s;
                for (size_t k = 0; k < n; k++)
                    x[k] = (float)(x[k] + (((double)x[k] - den[k]) / s) * dt);
            } else {
                double s_mid = exp(log(s) + 0.5 * (log(sd) - log(s)));
                double dt1 = s_mid - s, dt2 = sd - s;
                for (size_t k = 0; k < n; k++)
                    x2[k] = (float)(x[k] + (((double)x[k] - den[k]) / s) * dt1);
                if ((rc = tsm__denoise(r, x2, s_mid, den2))) break;
                for (size_t k = 0; k < n; k++)
                    x[k] = (float)(x[k] + (((double)x2[k] - den2[k]) / s_mid) * dt2);
                if ((rc = tsm__noise(r, nz))) break;
                double c = s_noise * su;
                for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (double)nz[k] * c);
            }
            break;
        }
        case TSM_LMS: {
            int order = p->lms_order > 0 ? p->lms_order : 4;
            if (order > 4) order = 4;
            float *ds = mem + (size_t)B_NOISE * n + n; /* ring of `order` derivative buffers */
            /* ds[(i % order)] holds d_i */
            float *cur = ds + (size_t)(i % order) * n;
            for (size_t k = 0; k < n; k++) cur[k] = (float)(((double)x[k] - den[k]) / s);
            int co = i + 1 < order ? i + 1 : order;
            double coeff[4];
            for (int j = 0; j < co; j++) coeff[j] = lms_coeff(co, sig, i, j);
            for (size_t k = 0; k < n; k++) {
                double acc = 0.0;
                for (int j = 0; j < co; j++)
                    acc += coeff[j] * (double)ds[(size_t)((i - j) % order) * n + k];
                x[k] = (float)(x[k] + acc);
            }
            break;
        }
        case TSM_DPMPP_2S_A: {
            double sd, su;
            anc_step(s, sn, eta, &sd, &su);
            if (sd == 0.0) {
                double dt = sd - s;
                for (size_t k = 0; k < n; k++)
                    x[k] = (float)(x[k] + (((double)x[k] - den[k]) / s) * dt);
            } else {
                double t = -log(s), tn = -log(sd), h = tn - t, ss = t + 0.5 * h;
                double a1 = exp(-ss) / exp(-t), b1 = expm1(-h * 0.5);
                for (size_t k = 0; k < n; k++) x2[k] = (float)(a1 * x[k] - b1 * den[k]);
                if ((rc = tsm__denoise(r, x2, exp(-ss), den2))) break;
                double a2 = exp(-tn) / exp(-t), b2 = expm1(-h);
                for (size_t k = 0; k < n; k++) x[k] = (float)(a2 * x[k] - b2 * den2[k]);
            }
            if (sn > 0) {
                if ((rc = tsm__noise(r, nz))) break;
                double c = s_noise * su;
                for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (double)nz[k] * c);
            }
            break;
        }
        case TSM_DPMPP_SDE: {
            if (sn == 0.0) {
                double dt = sn - s;
                for (size_t k = 0; k < n; k++)
                    x[k] = (float)(x[k] + (((double)x[k] - den[k]) / s) * dt);
                break;
            }
            const double rr = 0.5, fac = 1.0 / (2.0 * rr);
            double t = -log(s), tn = -log(sn), h = tn - t, ss = t + h * rr;
            double sd, su;
            anc_step(exp(-t), exp(-ss), eta, &sd, &su);
            double s_ = -log(sd);
            double a1 = exp(-s_) / exp(-t), b1 = expm1(t - s_);
            for (size_t k = 0; k < n; k++) x2[k] = (float)(a1 * x[k] - b1 * den[k]);
            if ((rc = tsm__interval_noise(r, exp(-t), exp(-ss), nz))) break;
            for (size_t k = 0; k < n; k++) x2[k] = (float)(x2[k] + (double)nz[k] * s_noise * su);
            if ((rc = tsm__denoise(r, x2, exp(-ss), den2))) break;
            anc_step(exp(-t), exp(-tn), eta, &sd, &su);
            double tn_ = -log(sd);
            double a2 = exp(-tn_) / exp(-t), b2 = expm1(t - tn_);
            for (size_t k = 0; k < n; k++) {
                double dd = (1.0 - fac) * den[k] + fac * den2[k];
                x[k] = (float)(a2 * x[k] - b2 * dd);
            }
            if ((rc = tsm__interval_noise(r, exp(-t), exp(-tn), nz))) break;
            for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (double)nz[k] * s_noise * su);
            break;
        }
        case TSM_DPMPP_2M: {
            if (sn == 0.0) {
                memcpy(x, den, sizeof(float) * n);
            } else {
                double t = -log(s), tn = -log(sn), h = tn - t;
                double a = exp(-tn) / exp(-t), b = expm1(-h);
                if (!have_old) {
                    for (size_t k = 0; k < n; k++) x[k] = (float)(a * x[k] - b * den[k]);
                } else {
                    double h_last = t - (-log(sig[i - 1]));
                    double rr = h_last / h;
                    double c1 = 1.0 + 1.0 / (2.0 * rr), c2 = 1.0 / (2.0 * rr);
                    for (size_t k = 0; k < n; k++)
                        x[k] = (float)(a * x[k] - b * (c1 * den[k] - c2 * old[k]));
                }
            }
            memcpy(old, den, sizeof(float) * n);
            have_old = 1;
            break;
        }
        case TSM_DPMPP_2M_SDE:
        case TSM_DPMPP_2M_SDE_HEUN: {
            double h = 0;
            if (sn == 0.0) {
                memcpy(x, den, sizeof(float) * n);
            } else {
                double t = -log(s), sl = -log(sn);
                h = sl - t;
                double eta_h = eta * h;
                double a = sn / s * exp(-eta_h), b = -expm1(-h - eta_h);
                for (size_t k = 0; k < n; k++) x[k] = (float)(a * x[k] + b * den[k]);
                if (have_old) {
                    double rr = h_1 / h, c;
                    if (id == TSM_DPMPP_2M_SDE_HEUN)
                        c = (b / (-h - eta_h) + 1.0) * (1.0 / rr);
                    else
                        c = 0.5 * b * (1.0 / rr);
                    for (size_t k = 0; k < n; k++)
                        x[k] = (float)(x[k] + c * ((double)den[k] - old[k]));
                }
                if (eta != 0.0) {
                    if ((rc = tsm__interval_noise(r, s, sn, nz))) break;
                    double c = sn * sqrt(-expm1(-2.0 * eta_h)) * s_noise;
                    for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (double)nz[k] * c);
                }
            }
            memcpy(old, den, sizeof(float) * n);
            have_old = 1;
            h_1 = h;
            break;
        }
        case TSM_DPMPP_3M_SDE: {
            double h = 0;
            if (sn == 0.0) {
                memcpy(x, den, sizeof(float) * n);
            } else {
                double t = -log(s), sl = -log(sn);
                h = sl - t;
                double h_eta = h * (eta + 1.0);
                double a = exp(-h_eta), b = -expm1(-h_eta);
                for (size_t k = 0; k < n; k++) x[k] = (float)(a * x[k] + b * den[k]);
                if (have_old2) {
                    double r0 = h_1 / h, r1 = h_2 / h;
                    double phi2 = expm1(-h_eta) / h_eta + 1.0;
                    double phi3 = phi2 / h_eta - 0.5;
                    for (size_t k = 0; k < n; k++) {
                        double d10 = ((double)den[k] - old[k]) / r0;
                        double d11 = ((double)old[k] - old2[k]) / r1;
                        double d1 = d10 + (d10 - d11) * r0 / (r0 + r1);
                        double d2 = (d10 - d11) / (r0 + r1);
                        x[k] = (float)(x[k] + phi2 * d1 - phi3 * d2);
                    }
                } else if (have_old) {
                    double rr = h_1 / h;
                    double phi2 = expm1(-h_eta) / h_eta + 1.0;
                    for (size_t k = 0; k < n; k++)
                        x[k] = (float)(x[k] + phi2 * (((double)den[k] - old[k]) / rr));
                }
                if (eta != 0.0) {
                    if ((rc = tsm__interval_noise(r, s, sn, nz))) break;
                    double c = sn * sqrt(-expm1(-2.0 * h * eta)) * s_noise;
                    for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (double)nz[k] * c);
                }
            }
            /* denoised_1, denoised_2 = denoised, denoised_1 */
            float *tmp = old2; old2 = old; old = tmp;
            memcpy(old, den, sizeof(float) * n);
            have_old2 = have_old;
            have_old = 1;
            h_2 = h_1;
            h_1 = h;
            break;
        }
        case TSM_LCM: {
            memcpy(x, den, sizeof(float) * n);
            if (sn > 0) {
                if ((rc = tsm__noise(r, nz))) break;
                for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + sn * (double)nz[k]);
            }
            break;
        }
        default:
            rc = TSM_ERR_ARG;
            break;
        }
        if (rc) break;
        rc = tsm__report(r, i, steps, s, x, den);
    }
    free(mem);
    return rc;
}
