/* test_resample.c - te_interpolate vs a float64 re-statement of torch's
 * F.interpolate (align_corners=False): nearest, nearest-exact, bilinear,
 * bicubic (A=-0.75), antialiased bilinear/bicubic (PIL filters, A=-0.5),
 * up and down, integer and fractional factors, odd sizes. */
#include "test_refs.h"

/* weights of output index o along one axis: taps idx[], w[]; returns count */
static int ref_axis(int in, int out, te_interp_mode mode, int aa, int o, int *idx, double *w) {
    float scale = (float)in / (float)out;
    if (mode == TE_INTERP_NEAREST) {
        int s = (int)floorf((float)o * scale);
        if (out == 2 * in) s = o / 2;
        idx[0] = s < in - 1 ? s : in - 1; w[0] = 1; return 1;
    }
    if (mode == TE_INTERP_NEAREST_EXACT) {
        int s = (int)floorf(((float)o + 0.5f) * scale);
        idx[0] = s < in - 1 ? s : in - 1; w[0] = 1; return 1;
    }
    if (!aa && mode == TE_INTERP_BILINEAR) {
        double src = (double)scale * (o + 0.5) - 0.5;
        if (src < 0) src = 0;
        int i0 = (int)src, i1 = i0 < in - 1 ? i0 + 1 : i0;
        idx[0] = i0; w[0] = 1 - (src - i0); idx[1] = i1; w[1] = src - i0; return 2;
    }
    if (!aa) {
        double src = (double)scale * (o + 0.5) - 0.5, A = -0.75;
        int i = (int)floor(src);
        double t = src - i;
        double x[4] = { t + 1, t, 1 - t, 2 - t };
        for (int k = 0; k < 4; k++) {
            double a = fabs(x[k]);
            w[k] = a <= 1 ? ((A + 2) * a - (A + 3)) * a * a + 1 : ((A * a - 5 * A) * a + 8 * A) * a - 4 * A;
            int j = i - 1 + k;
            idx[k] = j < 0 ? 0 : j > in - 1 ? in - 1 : j;
        }
        return 4;
    }
    /* antialias (torch _compute_weights_aa) */
    int cubic = mode == TE_INTERP_BICUBIC;
    double support = (scale >= 1.0 ? scale : 1.0) * (cubic ? 2.0 : 1.0);
    double center = scale * (o + 0.5), invscale = scale >= 1.0 ? 1.0 / scale : 1.0, total = 0;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in) xmax = in;
    int n = 0;
    for (int j = xmin; j < xmax; j++) {
        double x = fabs((j - center + 0.5) * invscale), f;
        if (!cubic) f = x < 1 ? 1 - x : 0;
        else f = x < 1 ? ((1.5) * x - 2.5) * x * x + 1 : x < 2 ? ((-0.5 * x + 2.5) * x - 4) * x + 2 : 0;
        idx[n] = j; w[n++] = f; total += f;
    }
    for (int k = 0; k < n; k++) w[k] /= total;
    return n;
}

static void interp_case(te_backend *be, int N, int H, int W, int C, int Ho, int Wo, te_interp_mode mode, int aa) {
    te_tensor x = TT_R(be, 4, N, H, W, C), y = TT_T(be, 4, N, Ho, Wo, C);
    int64_t n = te_tensor_numel(&y);
    double *ref = tt_ref(n);
    const float *xp = x.data;
    int iy[256], ix[256];
    double wy[256], wx[256];
    for (int b = 0; b < N; b++)
        for (int oy = 0; oy < Ho; oy++) {
            int ny = ref_axis(H, Ho, mode, aa, oy, iy, wy);
            for (int ox = 0; ox < Wo; ox++) {
                int nx = ref_axis(W, Wo, mode, aa, ox, ix, wx);
                for (int c = 0; c < C; c++) {
                    double s = 0;
                    for (int a = 0; a < ny; a++)
                        for (int bb = 0; bb < nx; bb++) s += wy[a] * wx[bb] * xp[((b * H + iy[a]) * W + ix[bb]) * C + c];
                    ref[(((int64_t)b * Ho + oy) * Wo + ox) * C + c] = s;
                }
            }
        }
    TT_OK(te_interpolate(&y, &x, mode, aa), be);
    static const char *names[] = { "nearest", "nearest-exact", "bilinear", "bicubic" };
    char name[96];
    snprintf(name, sizeof name, "interp %s%s %dx%d -> %dx%d", names[mode], aa ? "-aa" : "", H, W, Ho, Wo);
    TT_CLOSE(name, y.data, ref, n, 1e-5);
    free(ref);
    tt_free(&x); tt_free(&y);
}

int main(void) {
    te_backend *be = tt_backend();
    int sizes[][4] = { { 16, 12, 32, 24 }, { 16, 12, 24, 18 }, { 17, 13, 40, 21 }, { 32, 24, 20, 10 }, { 9, 7, 9, 7 }, { 40, 33, 13, 11 } };
    for (int m = 0; m < 4; m++)
        for (int s = 0; s < 6; s++) {
            interp_case(be, 1, sizes[s][0], sizes[s][1], 4, sizes[s][2], sizes[s][3], (te_interp_mode)m, 0);
            if (m >= TE_INTERP_BILINEAR) interp_case(be, 2, sizes[s][0], sizes[s][1], 5, sizes[s][2], sizes[s][3], (te_interp_mode)m, 1);
        }
    te_tensor x = TT_R(be, 4, 1, 4, 4, 1), y = TT_T(be, 4, 1, 8, 8, 1);
    TT_CHECK(te_interpolate(&y, &x, TE_INTERP_NEAREST, 1) == TE_ERR_ARG, "antialias nearest must be rejected");
    tt_free(&x); tt_free(&y);
    te_backend_destroy(be);
    return tt_done("engine_resample");
}
