/* te_cpu_resample.c - F.interpolate for channels-last tensors (latent upscale).
 *
 * Modes follow torch (align_corners=False, scale = in/out, computed in float
 * like torch does for f32 inputs): nearest, nearest-exact, bilinear, bicubic
 * (A = -0.75) and the antialias=True variants (PIL-style filters: triangle for
 * bilinear, cubic with A = -0.5, support widened by the downscale factor).
 * Per axis we build a table of taps (index, weight) once, in the backend's
 * scratch, then each output pixel is a small weighted sum of input pixels,
 * vectorized over channels. */
#include "te_cpu_impl.h"
#include <math.h>
#include <string.h>

typedef struct axis {
    int ntaps;          /* taps per output index */
    int32_t *idx;       /* [out * ntaps] */
    float *w;           /* [out * ntaps] */
} axis;

static double cc1(double x, double A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
static double cc2(double x, double A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }
static double aa_filter(double x, int cubic) {
    x = fabs(x);
    if (!cubic) return x < 1.0 ? 1.0 - x : 0.0;
    if (x < 1.0) return cc1(x, -0.5);
    if (x < 2.0) return cc2(x, -0.5);
    return 0.0;
}

static int axis_taps(int64_t in, int64_t out, te_interp_mode mode, int aa) {
    if (mode == TE_INTERP_NEAREST || mode == TE_INTERP_NEAREST_EXACT) return 1;
    if (!aa) return mode == TE_INTERP_BILINEAR ? 2 : 4;
    float scale = (float)in / (float)out;
    double interp = mode == TE_INTERP_BILINEAR ? 2 : 4;
    double support = scale >= 1.0f ? interp * 0.5 * scale : interp * 0.5;
    return (int)ceil(support) * 2 + 1;
}

static void axis_build(axis *a, int64_t in, int64_t out, te_interp_mode mode, int aa) {
    float scale = (float)in / (float)out;
    int T = a->ntaps;
    for (int64_t o = 0; o < out; o++) {
        int32_t *ix = a->idx + o * T;
        float *w = a->w + o * T;
        for (int t = 0; t < T; t++) { ix[t] = 0; w[t] = 0; }
        if (mode == TE_INTERP_NEAREST) {
            int64_t s;
            if (out == in) s = o;
            else if (out == 2 * in) s = o >> 1;
            else { s = (int64_t)floorf((float)o * scale); if (s > in - 1) s = in - 1; }
            ix[0] = (int32_t)s; w[0] = 1;
        } else if (mode == TE_INTERP_NEAREST_EXACT) {
            int64_t s = (int64_t)floorf(((float)o + 0.5f) * scale);
            if (s > in - 1) s = in - 1;
            ix[0] = (int32_t)s; w[0] = 1;
        } else if (!aa && mode == TE_INTERP_BILINEAR) {
            float src = scale * ((float)o + 0.5f) - 0.5f;
            if (src < 0) src = 0;
            int64_t i0 = (int64_t)src;
            int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
            float l1 = src - (float)i0;
            ix[0] = (int32_t)i0; w[0] = 1.0f - l1;
            ix[1] = (int32_t)i1; w[1] = l1;
        } else if (!aa) { /* bicubic */
            float src = scale * ((float)o + 0.5f) - 0.5f;
            int64_t i = (int64_t)floorf(src);
            double t = (double)(src - (float)i), A = -0.75;
            double c[4] = { cc2(t + 1, A), cc1(t, A), cc1(1 - t, A), cc2(2 - t, A) };
            for (int k = 0; k < 4; k++) {
                int64_t j = i - 1 + k;
                if (j < 0) j = 0;
                if (j > in - 1) j = in - 1;
                ix[k] = (int32_t)j; w[k] = (float)c[k];
            }
        } else { /* antialias */
            int cubic = mode == TE_INTERP_BICUBIC;
            double interp = cubic ? 4 : 2;
            double support = scale >= 1.0f ? interp * 0.5 * scale : interp * 0.5;
            double center = (double)scale * ((double)o + 0.5);
            double invscale = scale >= 1.0f ? 1.0 / (double)scale : 1.0;
            int64_t xmin = (int64_t)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int64_t xmax = (int64_t)(center + support + 0.5);
            if (xmax > in) xmax = in;
            int64_t xs = xmax - xmin;
            if (xs > T) xs = T;
            double tw[64], total = 0;
            for (int64_t k = 0; k < xs; k++) { tw[k] = aa_filter(((double)(k + xmin) - center + 0.5) * invscale, cubic); total += tw[k]; }
            for (int64_t k = 0; k < xs; k++) { ix[k] = (int32_t)(xmin + k); w[k] = (float)(total != 0 ? tw[k] / total : tw[k]); }
        }
    }
}

typedef struct rjob {
    const float *x;
    float *y;
    int64_t H, W, C, Ho, Wo;
    const axis *ay, *ax;
} rjob;

static void rs_fn(void *a, int64_t b, int64_t e, int tid) {
    rjob *j = a;
    int64_t C = j->C;
    for (int64_t r = b; r < e; r++) {     /* r = n*Ho + oy */
        int64_t n = r / j->Ho, oy = r % j->Ho;
        for (int64_t ox = 0; ox < j->Wo; ox++) {
            float *yp = j->y + ((n * j->Ho + oy) * j->Wo + ox) * C;
            for (int64_t c = 0; c < C; c++) yp[c] = 0;
            for (int ty = 0; ty < j->ay->ntaps; ty++) {
                float wy = j->ay->w[oy * j->ay->ntaps + ty];
                if (wy == 0) continue;
                int64_t iy = j->ay->idx[oy * j->ay->ntaps + ty];
                for (int tx = 0; tx < j->ax->ntaps; tx++) {
                    float wx = j->ax->w[ox * j->ax->ntaps + tx];
                    if (wx == 0) continue;
                    int64_t ixx = j->ax->idx[ox * j->ax->ntaps + tx];
                    const float *xp = j->x + ((n * j->H + iy) * j->W + ixx) * C;
                    float w = wy * wx;
                    for (int64_t c = 0; c < C; c++) yp[c] += w * xp[c];
                }
            }
        }
    }
}

te_status te_cpu_interpolate(te_backend *be, te_tensor *y, const te_tensor *x, te_interp_mode mode, int aa) {
    te_cpu *c = te_cpu_of(be);
    rjob j = { x->data, y->data, x->ne[1], x->ne[2], x->ne[3], y->ne[1], y->ne[2], NULL, NULL };
    axis ay = { axis_taps(j.H, j.Ho, mode, aa), NULL, NULL }, ax = { axis_taps(j.W, j.Wo, mode, aa), NULL, NULL };
    int64_t need = (j.Ho * ay.ntaps + j.Wo * ax.ntaps) * 2;
    if (need > TE_CPU_SCRATCH_FLOATS || ay.ntaps > 64 || ax.ntaps > 64)
        return te_backend_fail(be, TE_ERR_UNSUPPORTED, "interpolate: resize %lldx%lld -> %lldx%lld too large for tap tables",
                               (long long)j.H, (long long)j.W, (long long)j.Ho, (long long)j.Wo);
    float *s = c->scratch[0];
    ay.idx = (int32_t *)s; ay.w = s + j.Ho * ay.ntaps;
    ax.idx = (int32_t *)(s + 2 * j.Ho * ay.ntaps); ax.w = s + 2 * j.Ho * ay.ntaps + j.Wo * ax.ntaps;
    axis_build(&ay, j.H, j.Ho, mode, aa);
    axis_build(&ax, j.W, j.Wo, mode, aa);
    j.ay = &ay; j.ax = &ax;
    /* thread 0's scratch holds the tables; rs_fn does not use scratch */
    te_pool_for(c->pool, x->ne[0] * j.Ho, rs_fn, &j);
    return TE_OK;
}
