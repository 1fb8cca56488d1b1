/*
 * sampler_unipc.c -- UniPC as AUTOMATIC1111 1.10 runs it
 * (sd_samplers_timesteps_impl.unipc over modules/models/diffusion/uni_pc,
 * the UniPC authors' code), re-implemented from the paper: Zhao et al. 2023,
 * "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
 * Diffusion Models".  Reference: tests/golden/make_unipc_golden.py (float64,
 * validated against diffusers' UniPCMultistepScheduler to 1e-14).
 *
 * Noise schedule (NoiseScheduleVP('discrete', alphas_cumprod)): continuous
 * time t in [1/1000, 1]; log alpha_t is piecewise linear in t through the
 * knots t_j = (j + 1) / 1000, log alpha = 0.5 * log(alphas_cumprod[j]);
 * sigma_t = sqrt(1 - alpha_t^2), lambda_t = log(alpha_t / sigma_t).
 *
 * Time grid (skip type time_uniform, A1111's default): M + 1 points
 * t_i = linspace(1, 1/1000, M + 1).  A1111 passes steps = len(timesteps),
 * its DDIM timestep list (tsm_ddim_timesteps, with +1 step when
 * always_discard_next_to_last_sigma is set; UniPC has no discard option of
 * its own), so M is 20 for 20 steps but 31 for 30 and 8 for 7.  A1111 asserts
 * M >= order ("UniPC order must be < sampling steps"): TSM_ERR_ARG here.
 *
 * Model: an eps model at t_input = (t - 1/1000) * 1000 (fractional), turned
 * into the data prediction m(x, t) = (x - sigma_t * eps) / alpha_t
 * (predict_x0=True, no thresholding; CFG is inside the denoise callback).
 *
 * Multistep loop (method "multistep", order p_max = uni_pc_order, default 3):
 *   m_0 = m(x_T, t_0), x_T = the unit noise as is (VP space, no scaling);
 *   step i = 1..M goes from t_{i-1} to t_i with order
 *     p = i                                  while i < p_max (warm-up),
 *     p = min(p_max, M + 1 - i)              after, with lower_order_final,
 *     p = p_max                              after, without;
 *   h = lambda_{t_i} - lambda_{t_{i-1}}, z = -h, r_k = (lambda of the k-th
 *   earlier history point - lambda_{t_{i-1}}) / h (k = 1..p-1), r_p = 1,
 *   D_k = (m_k - m_s) / r_k (m_s: the newest history value);
 *   B(z) = z (variant bh1, default) or e^z - 1 (bh2);
 *   b_j = j! * z * phi_{j+1}(z) / B(z), j = 1..p (phi_1 = (e^z - 1)/z,
 *   phi_{j+1} = (phi_j - 1/j!)/z), R[j][k] = r_k^j (j = 0..p-1);
 *   base  = sigma_t / sigma_s * x - alpha_t * (e^z - 1) * m_s
 *   UniP:  x_pred = base - alpha_t B sum_{k<p} a_k D_k,
 *          a = R[:-1,:-1]^-1 b[:-1] (a = 0.5 when p = 2; nothing when p = 1)
 *   UniC:  m_t = m(x_pred, t_i);
 *          x = base - alpha_t B (sum_{k<p} c_k D_k + c_p (m_t - m_s)),
 *          c = R^-1 b (c = 0.5 when p = 1)
 *   and m_t (the model at the PREDICTED point, not at the corrected x) is
 *   the history value of t_i for the next steps.  The last step (i = M)
 *   skips the corrector and so the model call: M model calls in all.
 *   The warm-up ignores lower_order_final (A1111's code; diffusers instead
 *   takes min(order, M + 1 - i, i): different only for order >= 4, M < 2p-1).
 *   The result is x at t_M = 1/1000 (no denoise_to_zero), returned as is.
 *
 * The sigma-space bridge: A1111 feeds the UNet the VP latent x at the
 * fractional timestep t_input.  Our callback gets (x_k, sigma) and the
 * pipeline runs the UNet on x_k * c_in(sigma) at tsm_sigma_to_t(sigma).  We
 * pass sigma_k = tsm_t_to_sigma(t_input) (k-diffusion's log-sigma
 * interpolation, whose inverse is exactly sigma_to_t, so the UNet time is
 * t_input) and x_k = x * sqrt(1 + sigma_k^2) (so the UNet input is x), and
 * read eps = (x_k - D) / sigma_k.  The solver itself uses the VP schedule's
 * alpha_t/sigma_t above.  The VP schedule's own sigma_t/alpha_t differs from
 * sigma_k at fractional times by up to 4.7e-5 relative; handing the callback
 * that sigma would move the UNet's timestep by up to 0.0028 (measured by the
 * golden script for M in {5,10,20,31,50}), hence sigma_k.  At integer times
 * both equal the model's sigmas[t].
 *
 * Known differences from A1111:
 *   - v-prediction models: A1111 converts v to eps with
 *     alphas_cumprod[int(t_input)] (truncated); the pipeline converts with
 *     the exact sigma_k, so eps differs by O(beta_t) * v (up to ~0.6% of v
 *     at high noise).  Eps models are reproduced exactly (up to float32).
 *   - A1111 computes in float32 (incl. the 3x3 solves); this file keeps the
 *     latents in float and the schedule/coefficients in double.
 *   - Only time_uniform skip type and the bh1/bh2 variants are available
 *     (tsm_sample_params has no field for uni_pc_skip_type or vary_coeff).
 *   - img2img (t_start) is not handled here (see sampler_timesteps.c).
 * Progress: one report per step (M in all) with the sigma the callback gets
 * at t_i and the newest model estimate as "denoised" (the last step has no
 * new one; the previous is passed).  No noise is drawn.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler_internal.h"

#define UNI_N TSM_TRAIN_STEPS /* NoiseScheduleVP total_N */

typedef struct {
    double alpha, sigma, lambda;
} vp_point;

/* torch.linspace(start, end, n)[i] */
static double lin(double start, double end, int n, int i)
{
    if (n <= 1) return start;
    double step = (end - start) / (double)(n - 1);
    return (i < n / 2) ? start + step * i : end - step * (n - 1 - i);
}

/* NoiseScheduleVP('discrete'): log alpha piecewise linear over t_j = (j+1)/N
 * (end segments extended linearly outside [1/N, 1]). */
static vp_point vp_at(const tsm_model_schedule *m, double t)
{
    double p = t * UNI_N - 1.0;
    int j = (int)floor(p);
    if (j < 0) j = 0;
    if (j > UNI_N - 2) j = UNI_N - 2;
    double w = p - j;
    double la = (1.0 - w) * 0.5 * log(m->alphas_cumprod[j]) + w * 0.5 * log(m->alphas_cumprod[j + 1]);
    vp_point v;
    v.alpha = exp(la);
    v.sigma = sqrt(-expm1(2.0 * la));
    v.lambda = la - log(v.sigma);
    return v;
}

/* UNet time of continuous t: (t - 1/N) * 1000. */
static double model_time(double t) { return (t - 1.0 / UNI_N) * 1000.0; }

typedef struct {
    const tsm__run *r;
    size_t n;
    float *xk, *den;
} bridge;

/* Data prediction m(x, t) through the sigma-space denoiser (see top). */
static int model_x0(const bridge *b, const float *x, double t, float *out)
{
    const size_t n = b->n;
    vp_point v = vp_at(b->r->m, t);
    float sf = (float)tsm_t_to_sigma(b->r->m, model_time(t));
    double s = sf, scale = sqrt(1.0 + s * s);
    for (size_t k = 0; k < n; k++) b->xk[k] = (float)(x[k] * scale);
    int rc = tsm__denoise(b->r, b->xk, s, b->den);
    if (rc) return rc;
    for (size_t k = 0; k < n; k++) {
        double eps = ((double)b->xk[k] - b->den[k]) / s;
        out[k] = (float)(((double)x[k] - v.sigma * eps) / v.alpha);
    }
    return TSM_OK;
}

/* Solve A y = rhs (p x p, row-major, A and rhs overwritten; y in rhs) by
 * Gaussian elimination with partial pivoting. */
static int solve(double *A, double *rhs, int p)
{
    for (int c = 0; c < p; c++) {
        int piv = c;
        for (int i = c + 1; i < p; i++)
            if (fabs(A[i * p + c]) > fabs(A[piv * p + c])) piv = i;
        if (A[piv * p + c] == 0.0 || !isfinite(A[piv * p + c])) return TSM_ERR_ARG;
        if (piv != c) {
            for (int k = 0; k < p; k++) {
                double tmp = A[c * p + k];
                A[c * p + k] = A[piv * p + k];
                A[piv * p + k] = tmp;
            }
            double tmp = rhs[c];
            rhs[c] = rhs[piv];
            rhs[piv] = tmp;
        }
        for (int i = c + 1; i < p; i++) {
            double f = A[i * p + c] / A[c * p + c];
            for (int k = c; k < p; k++) A[i * p + k] -= f * A[c * p + k];
            rhs[i] -= f * rhs[c];
        }
    }
    for (int i = p - 1; i >= 0; i--) {
        double acc = rhs[i];
        for (int k = i + 1; k < p; k++) acc -= A[i * p + k] * rhs[k];
        rhs[i] = acc / A[i * p + i];
    }
    return TSM_OK;
}

typedef struct {
    bridge br;
    int order, bh2;
    float **hm;   /* history x0 values, oldest first (order of them + 1 spare) */
    double *ht;   /* their times */
    int nh;
    double *base; /* [n] */
    double *rs, *bv, *mat, *rho_p, *rho_c, *wp, *wc; /* [order] / [order^2] */
} unipc_state;

/* One UniPC-p step from the newest history point to t; x in/out.  With the
 * corrector the model value at the predicted point goes to *m_new. */
static int update(unipc_state *st, float *x, double t, int p, int corrector, float *m_new)
{
    const size_t n = st->br.n;
    const tsm_model_schedule *m = st->br.r->m;
    const float *ms = st->hm[st->nh - 1];
    vp_point vs = vp_at(m, st->ht[st->nh - 1]), vt = vp_at(m, t);
    double h = vt.lambda - vs.lambda, z = -h;
    if (!(h > 0) || !isfinite(h)) return TSM_ERR_ARG;

    for (int k = 1; k < p; k++) st->rs[k - 1] = (vp_at(m, st->ht[st->nh - 1 - k]).lambda - vs.lambda) / h;
    st->rs[p - 1] = 1.0;

    double hphi1 = expm1(z);
    double B = st->bh2 ? expm1(z) : z;
    double hphik = hphi1 / z - 1.0, fact = 1.0;
    double *bp = st->bv;
    for (int j = 1; j <= p; j++) {
        bp[j - 1] = hphik * fact / B;
        fact *= (double)(j + 1);
        hphik = hphik / z - 1.0 / fact;
    }
    /* predictor coefficients (p >= 2) */
    if (p == 2) {
        st->rho_p[0] = 0.5;
    } else if (p > 2) {
        int q = p - 1;
        for (int j = 0; j < q; j++)
            for (int k = 0; k < q; k++) st->mat[j * q + k] = pow(st->rs[k], j);
        for (int j = 0; j < q; j++) st->rho_p[j] = bp[j];
        int rc = solve(st->mat, st->rho_p, q);
        if (rc) return rc;
    }
    /* corrector coefficients */
    if (corrector) {
        if (p == 1) {
            st->rho_c[0] = 0.5;
        } else {
            for (int j = 0; j < p; j++)
                for (int k = 0; k < p; k++) st->mat[j * p + k] = pow(st->rs[k], j);
            for (int j = 0; j < p; j++) st->rho_c[j] = bp[j];
            int rc = solve(st->mat, st->rho_c, p);
            if (rc) return rc;
        }
    }

    /* weights on (m_k - m_s): alpha_t B rho_k / r_k */
    double aB = vt.alpha * B;
    for (int k = 1; k < p; k++) {
        st->wp[k - 1] = aB * st->rho_p[k - 1] / st->rs[k - 1];
        if (corrector) st->wc[k - 1] = aB * st->rho_c[k - 1] / st->rs[k - 1];
    }
    double cx = vt.sigma / vs.sigma, cm = vt.alpha * hphi1;
    for (size_t e = 0; e < n; e++) {
        double msv = ms[e];
        double bs = cx * x[e] - cm * msv;
        double v = bs;
        for (int k = 1; k < p; k++) v -= st->wp[k - 1] * ((double)st->hm[st->nh - 1 - k][e] - msv);
        st->base[e] = bs;
        x[e] = (float)v;
    }
    if (!corrector) return TSM_OK;

    int rc = model_x0(&st->br, x, t, m_new);
    if (rc) return rc;
    double wt = aB * st->rho_c[p - 1];
    for (size_t e = 0; e < n; e++) {
        double msv = ms[e];
        double v = st->base[e] - wt * ((double)m_new[e] - msv);
        for (int k = 1; k < p; k++) v -= st->wc[k - 1] * ((double)st->hm[st->nh - 1 - k][e] - msv);
        x[e] = (float)v;
    }
    return TSM_OK;
}

int tsm__run_unipc(const tsm__run *r, float *x)
{
    if (!r || !r->m || !r->p || !x) return TSM_ERR_ARG;
    const tsm_sample_params *p = r->p;
    const size_t n = r->n;
    const int order = p->uni_pc_order;
    if (order < 1) return TSM_ERR_ARG;

    /* A1111: steps = len(timesteps) of its DDIM timestep list */
    const tsm_sampler_info *info = tsm_sampler_get(TSM_UNIPC);
    int discard = info->discard_next_to_last_sigma || p->always_discard_next_to_last_sigma;
    int ts[TSM_TRAIN_STEPS + 1];
    size_t L = 0;
    int rc = tsm_ddim_timesteps(p->steps, discard, ts, TSM_TRAIN_STEPS + 1, &L);
    if (rc) return rc;
    const int M = (int)L;
    if (M < order) return TSM_ERR_ARG; /* "UniPC order must be < sampling steps" */

    unipc_state st;
    memset(&st, 0, sizeof st);
    st.order = order;
    st.bh2 = p->uni_pc_bh2 ? 1 : 0;
    st.br.r = r;
    st.br.n = n;
    size_t no = (size_t)order;
    float *fmem = malloc(sizeof(float) * n * (no + 3));
    double *dmem = malloc(sizeof(double) * (n + no * (6 + no) + 1));
    st.hm = malloc(sizeof(float *) * (no + 1));
    st.ht = malloc(sizeof(double) * (no + 1));
    if (!fmem || !dmem || !st.hm || !st.ht) {
        free(fmem);
        free(dmem);
        free(st.hm);
        free(st.ht);
        return TSM_ERR_NOMEM;
    }
    st.br.xk = fmem;
    st.br.den = fmem + n;
    for (size_t k = 0; k <= no; k++) st.hm[k] = fmem + n * (2 + k);
    st.base = dmem;
    st.rs = dmem + n;
    st.bv = st.rs + no;
    st.rho_p = st.bv + no;
    st.rho_c = st.rho_p + no;
    st.wp = st.rho_c + no;
    st.wc = st.wp + no;
    st.mat = st.wc + no;

    double t0 = lin(1.0, 1.0 / UNI_N, M + 1, 0);
    rc = model_x0(&st.br, x, t0, st.hm[0]);
    st.ht[0] = t0;
    st.nh = 1;
    for (int i = 1; i <= M && rc == TSM_OK; i++) {
        double t = lin(1.0, 1.0 / UNI_N, M + 1, i);
        int po;
        if (i < order)
            po = i;
        else if (p->uni_pc_lower_order_final)
            po = (M + 1 - i) < order ? (M + 1 - i) : order;
        else
            po = order;
        int last = i == M;
        float *m_new = st.hm[st.nh]; /* the spare buffer after the history */
        rc = update(&st, x, t, po, !last, m_new);
        if (rc) break;
        if (!last) {
            st.ht[st.nh] = t;
            st.nh++;
            if (st.nh > order) { /* drop the oldest, keep its buffer as the spare */
                float *old = st.hm[0];
                memmove(st.hm, st.hm + 1, sizeof(float *) * (size_t)order);
                memmove(st.ht, st.ht + 1, sizeof(double) * (size_t)order);
                st.hm[order] = old;
                st.nh = order;
            }
        }
        rc = tsm__report(r, i - 1, M, tsm_t_to_sigma(r->m, model_time(t)), x, st.hm[st.nh - 1]);
    }
    free(fmem);
    free(dmem);
    free(st.hm);
    free(st.ht);
    return rc;
}
