/*
 * schedule.c -- SD noise schedule, sigma <-> t, A1111 sigma schedulers and
 * the eps / v denoiser wrapper.  See schedule.h for the rules; the formulas
 * follow k-diffusion (MIT) and the descriptions of A1111's sd_schedulers.py.
 */
#include "schedule.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* torch.linspace(start, end, n)[i]: the first half counts up from start,
 * the second half down from end (keeps the end points exact). */
static double lin(double start, double end, int n, int i)
{
    if (n <= 1) return start;
    double step = (end - start) / (double)(n - 1);
    return (i < n / 2) ? start + step * i : end - step * (n - 1 - i);
}

int tsm_schedule_init(tsm_model_schedule *m, double beta_start, double beta_end,
                      tsm_prediction pred)
{
    if (!m || beta_start <= 0 || beta_end <= 0 || beta_end >= 1) return TSM_ERR_ARG;
    memset(m, 0, sizeof *m);
    m->prediction = pred;
    double a = sqrt(beta_start), b = sqrt(beta_end), ac = 1.0;
    for (int t = 0; t < TSM_TRAIN_STEPS; t++) {
        double s = lin(a, b, TSM_TRAIN_STEPS, t);
        ac *= 1.0 - s * s;
        m->alphas_cumprod[t] = ac;
        m->sigmas[t] = sqrt((1.0 - ac) / ac);
        m->log_sigmas[t] = log(m->sigmas[t]);
    }
    return TSM_OK;
}

int tsm_schedule_init_sd(tsm_model_schedule *m, tsm_prediction pred)
{
    return tsm_schedule_init(m, 0.00085, 0.012, pred);
}

double tsm_sigma_min(const tsm_model_schedule *m) { return m->sigmas[0]; }
double tsm_sigma_max(const tsm_model_schedule *m) { return m->sigmas[TSM_TRAIN_STEPS - 1]; }

double tsm_sigma_to_t(const tsm_model_schedule *m, double sigma)
{
    double ls = log(sigma);
    /* low = last index with log_sigmas[i] <= ls (0 if none), at most N-2 */
    int cnt = 0;
    while (cnt < TSM_TRAIN_STEPS && m->log_sigmas[cnt] <= ls) cnt++;
    int low = cnt > 0 ? cnt - 1 : 0;
    if (low > TSM_TRAIN_STEPS - 2) low = TSM_TRAIN_STEPS - 2;
    double lo = m->log_sigmas[low], hi = m->log_sigmas[low + 1];
    double w = (lo - ls) / (lo - hi);
    if (w < 0) w = 0;
    if (w > 1) w = 1;
    return (1.0 - w) * low + w * (low + 1);
}

double tsm_t_to_sigma(const tsm_model_schedule *m, double t)
{
    if (t < 0) t = 0;
    if (t > TSM_TRAIN_STEPS - 1) t = TSM_TRAIN_STEPS - 1;
    double fl = floor(t);
    int lo = (int)fl, hi = (int)ceil(t);
    double w = t - fl;
    return exp((1.0 - w) * m->log_sigmas[lo] + w * m->log_sigmas[hi]);
}

double tsm_c_in(double sigma) { return 1.0 / sqrt(sigma * sigma + 1.0); }

int tsm_output_to_denoised(tsm_prediction pred, const float *x, const float *model_out,
                           double sigma, float *denoised, size_t n)
{
    if (!x || !model_out || !denoised) return TSM_ERR_ARG;
    if (pred == TSM_PRED_EPS) {
        for (size_t i = 0; i < n; i++)
            denoised[i] = (float)((double)x[i] - sigma * (double)model_out[i]);
    } else if (pred == TSM_PRED_V) {
        double s2 = sigma * sigma + 1.0;
        double c_skip = 1.0 / s2, c_out = -sigma / sqrt(s2);
        for (size_t i = 0; i < n; i++)
            denoised[i] = (float)((double)model_out[i] * c_out + (double)x[i] * c_skip);
    } else {
        return TSM_ERR_ARG;
    }
    return TSM_OK;
}

/* ---- scheduler table ---- */

static const tsm_scheduler_info SCHEDS[TSM_SCHED_COUNT] = {
    {"automatic", "Automatic", {NULL, NULL}, -1, 0},
    {"uniform", "Uniform", {NULL, NULL}, -1, 1},
    {"karras", "Karras", {NULL, NULL}, 7.0, 0},
    {"exponential", "Exponential", {NULL, NULL}, -1, 0},
    {"polyexponential", "Polyexponential", {NULL, NULL}, 1.0, 0},
    {"sgm_uniform", "SGM Uniform", {"SGMUniform", NULL}, -1, 1},
    {"kl_optimal", "KL Optimal", {NULL, NULL}, -1, 0},
    {"align_your_steps", "Align Your Steps", {NULL, NULL}, -1, 0},
    {"simple", "Simple", {NULL, NULL}, -1, 1},
    {"normal", "Normal", {NULL, NULL}, -1, 1},
    {"ddim", "DDIM", {NULL, NULL}, -1, 1},
    {"beta", "Beta", {NULL, NULL}, -1, 1},
};

const tsm_scheduler_info *tsm_scheduler_get(tsm_scheduler s)
{
    if ((int)s < 0 || s >= TSM_SCHED_COUNT) return NULL;
    return &SCHEDS[s];
}

int tsm_scheduler_find(const char *name, tsm_scheduler *out)
{
    if (!out) return TSM_ERR_ARG;
    if (!name || !*name) { *out = TSM_SCHED_AUTOMATIC; return TSM_OK; }
    for (int pass = 0; pass < 2; pass++) {
        int (*cmp)(const char *, const char *) = pass ? strcasecmp : strcmp;
        for (int i = 0; i < TSM_SCHED_COUNT; i++) {
            const tsm_scheduler_info *s = &SCHEDS[i];
            int hit = !cmp(name, s->name) || !cmp(name, s->label);
            for (int a = 0; !hit && a < 2 && s->aliases[a]; a++) hit = !cmp(name, s->aliases[a]);
            if (hit) { *out = (tsm_scheduler)i; return TSM_OK; }
        }
    }
    return TSM_ERR_UNKNOWN;
}

int tsm_schedulers_json(char *buf, size_t cap, size_t *len)
{
    if (!buf || cap == 0) return TSM_ERR_ARG;
    size_t o = 0;
    int w;
#define PUT(...) do { w = snprintf(buf + o, cap - o, __VA_ARGS__); \
        if (w < 0 || (size_t)w >= cap - o) { return TSM_ERR_SPACE; } \
        o += (size_t)w; } while (0)
    PUT("[");
    for (int i = 0; i < TSM_SCHED_COUNT; i++) {
        const tsm_scheduler_info *s = &SCHEDS[i];
        PUT("%s{\"name\":\"%s\",\"label\":\"%s\",\"aliases\":", i ? "," : "", s->name, s->label);
        if (!s->aliases[0]) {
            PUT("null");
        } else {
            PUT("[");
            for (int a = 0; a < 2 && s->aliases[a]; a++) PUT("%s\"%s\"", a ? "," : "", s->aliases[a]);
            PUT("]");
        }
        PUT(",\"default_rho\":%.1f,\"need_inner_model\":%s}", s->default_rho,
            s->need_inner_model ? "true" : "false");
    }
    PUT("]");
#undef PUT
    if (len) *len = o;
    return TSM_OK;
}

/* ---- beta distribution quantile (for the Beta scheduler) ---- */

/* Continued fraction of the incomplete beta function (modified Lentz). */
static double betacf(double x, double a, double b)
{
    const double tiny = 1e-300;
    double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0, d = 1.0 - qab * x / qap;
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d; if (fabs(d) < tiny) d = tiny;
        c = 1.0 + aa / c; if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d; h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d; if (fabs(d) < tiny) d = tiny;
        c = 1.0 + aa / c; if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-16) break;
    }
    return h;
}

/* Regularized incomplete beta I_x(a, b). */
static double betainc(double x, double a, double b)
{
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1.0) / (a + b + 2.0)) return exp(lbt) * betacf(x, a, b) / a;
    return 1.0 - exp(lbt) * betacf(1.0 - x, b, a) / b;
}

double tsm_beta_ppf(double p, double a, double b)
{
    if (p <= 0) return 0;
    if (p >= 1) return 1;
    double lo = 0, hi = 1;
    for (int i = 0; i < 200 && hi - lo > 1e-17; i++) {
        double mid = 0.5 * (lo + hi);
        if (betainc(mid, a, b) < p) lo = mid; else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* ---- sigma schedules ---- */

static const double AYS_SD15[11] = {14.615, 6.475, 3.861, 2.697, 1.886, 1.396,
                                    0.963, 0.652, 0.399, 0.152, 0.029};
static const double AYS_SDXL[11] = {14.615, 6.315, 3.771, 2.181, 1.342, 0.862,
                                    0.555, 0.380, 0.234, 0.113, 0.029};

/* n sigmas (no trailing zero handling) into out; returns count or <0. */
static long make_sigmas(const tsm_model_schedule *m, tsm_scheduler s, int n, double smin,
                        double smax, double rho, const tsm_sigma_opts *o, double *out, size_t cap)
{
    const int N = TSM_TRAIN_STEPS;
    size_t k = 0;
#define EMIT(v) do { if (k >= cap) return TSM_ERR_SPACE; out[k++] = (v); } while (0)
    switch (s) {
    case TSM_SCHED_AUTOMATIC:
    case TSM_SCHED_UNIFORM:
        for (int i = 0; i < n; i++) EMIT(tsm_t_to_sigma(m, lin(N - 1, 0, n, i)));
        EMIT(0.0);
        break;
    case TSM_SCHED_KARRAS: {
        double r = rho > 0 ? rho : 7.0;
        double mn = pow(smin, 1.0 / r), mx = pow(smax, 1.0 / r);
        for (int i = 0; i < n; i++) EMIT(pow(mx + lin(0, 1, n, i) * (mn - mx), r));
        EMIT(0.0);
        break;
    }
    case TSM_SCHED_EXPONENTIAL:
        for (int i = 0; i < n; i++) EMIT(exp(lin(log(smax), log(smin), n, i)));
        EMIT(0.0);
        break;
    case TSM_SCHED_POLYEXPONENTIAL: {
        double r = rho > 0 ? rho : 1.0;
        for (int i = 0; i < n; i++) {
            double ramp = pow(lin(1, 0, n, i), r);
            EMIT(exp(ramp * (log(smax) - log(smin)) + log(smin)));
        }
        EMIT(0.0);
        break;
    }
    case TSM_SCHED_SGM_UNIFORM:
    case TSM_SCHED_NORMAL: {
        double t0 = tsm_sigma_to_t(m, smax), t1 = tsm_sigma_to_t(m, smin);
        if (s == TSM_SCHED_SGM_UNIFORM)
            for (int i = 0; i < n; i++) EMIT(tsm_t_to_sigma(m, lin(t0, t1, n + 1, i)));
        else
            for (int i = 0; i < n; i++) EMIT(tsm_t_to_sigma(m, lin(t0, t1, n, i)));
        EMIT(0.0);
        break;
    }
    case TSM_SCHED_KL_OPTIMAL: {
        double amin = atan(smin), amax = atan(smax);
        for (int i = 0; i <= n; i++) {
            double f = (double)i / n;
            EMIT(tan(f * amin + (1.0 - f) * amax));
        }
        break;
    }
    case TSM_SCHED_ALIGN_YOUR_STEPS: {
        const double *tab = m->is_sdxl ? AYS_SDXL : AYS_SD15;
        if (n == 11) {
            for (int i = 0; i < 11; i++) EMIT(tab[i]);
        } else {
            /* log-linear interpolation of the reversed (ascending) table */
            double ys[11];
            for (int i = 0; i < 11; i++) ys[i] = log(tab[10 - i]);
            double tmp[TSM_TRAIN_STEPS + 2];
            if (n > TSM_TRAIN_STEPS) return TSM_ERR_ARG;
            for (int j = 0; j < n; j++) {
                double xq = lin(0, 1, n, j);
                /* np.interp over xs = linspace(0, 1, 11) */
                int seg = 0;
                while (seg < 9 && xq >= lin(0, 1, 11, seg + 1)) seg++;
                double x0 = lin(0, 1, 11, seg), x1 = lin(0, 1, 11, seg + 1);
                double y = xq >= 1.0 ? ys[10] : ys[seg] + (ys[seg + 1] - ys[seg]) * (xq - x0) / (x1 - x0);
                tmp[j] = exp(y);
            }
            for (int j = n - 1; j >= 0; j--) EMIT(tmp[j]);
        }
        EMIT(0.0);
        break;
    }
    case TSM_SCHED_SIMPLE: {
        double ss = (double)N / n;
        for (int x = 0; x < n; x++) EMIT(m->sigmas[N - 1 - (int)(x * ss)]);
        EMIT(0.0);
        break;
    }
    case TSM_SCHED_DDIM: {
        int ss = N / n;
        if (ss < 1) ss = 1;
        int cnt = 0;
        for (int x = 1; x < N; x += ss) cnt++;
        int last = 1 + (cnt - 1) * ss;
        for (int x = last; x >= 1; x -= ss) EMIT(m->sigmas[x]);
        EMIT(0.0);
        break;
    }
    case TSM_SCHED_BETA: {
        double a = (o && o->beta_alpha > 0) ? o->beta_alpha : 0.6;
        double b = (o && o->beta_beta > 0) ? o->beta_beta : 0.6;
        for (int i = 0; i < n; i++) {
            double ts = tsm_beta_ppf(1.0 - lin(0, 1, n, i), a, b);
            EMIT(smin + ts * (smax - smin));
        }
        EMIT(0.0);
        break;
    }
    default:
        return TSM_ERR_ARG;
    }
#undef EMIT
    return (long)k;
}

int tsm_compute_sigmas(const tsm_model_schedule *m, tsm_scheduler s, int steps,
                       const tsm_sigma_opts *o, double *out, size_t cap, size_t *n_out)
{
    if (!m || !out || steps < 1 || steps > 100000) return TSM_ERR_ARG;
    int discard = o && o->discard_next_to_last_sigma;
    int n = steps + (discard ? 1 : 0);
    double msmin = tsm_sigma_min(m), msmax = tsm_sigma_max(m);
    double smin = (o && o->sigma_min > 0) ? o->sigma_min : msmin;
    double smax = (o && o->sigma_max > 0) ? o->sigma_max : msmax;
    double rho = (o && o->rho > 0) ? o->rho : 0.0;
    long k = make_sigmas(m, s, n, smin, smax, rho, o, out, cap);
    if (k < 0) return (int)k;
    if (discard && k >= 2) {
        out[k - 2] = out[k - 1];
        k--;
    }
    if (n_out) *n_out = (size_t)k;
    return TSM_OK;
}
