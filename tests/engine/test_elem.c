/* test_elem.c - norms, activations, softmax, broadcast arithmetic, concat,
 * upsample, NCHW<->NHWC, timestep embedding vs float64 references, odd sizes. */
#include "test_refs.h"

static void group_norm_case(te_backend *be, int N, int H, int W, int C, int G, int silu, int affine) {
    te_tensor x = tt_rand_tensor(be, 4, TT_SHAPE(N, H, W, C), 3.0), y = TT_T(be, 4, N, H, W, C);
    te_tensor g = TT_R(be, 1, C), b = TT_R(be, 1, C);
    float *xp = x.data;
    for (int64_t i = 0; i < te_tensor_numel(&x); i++) xp[i] += 2.0f;   /* non-zero mean */
    int64_t n = te_tensor_numel(&x), P = (int64_t)H * W, cg = C / G;
    double *ref = tt_ref(n);
    const float *gp = g.data, *bp = b.data;
    for (int in = 0; in < N; in++)
        for (int gi = 0; gi < G; gi++) {
            double s = 0, ss = 0;
            for (int64_t p = 0; p < P; p++) for (int64_t c = gi * cg; c < (gi + 1) * cg; c++) s += xp[(in * P + p) * C + c];
            double mean = s / (P * cg);
            for (int64_t p = 0; p < P; p++) for (int64_t c = gi * cg; c < (gi + 1) * cg; c++) { double d = xp[(in * P + p) * C + c] - mean; ss += d * d; }
            double rstd = 1 / sqrt(ss / (P * cg) + 1e-5);
            for (int64_t p = 0; p < P; p++)
                for (int64_t c = gi * cg; c < (gi + 1) * cg; c++) {
                    int64_t o = (in * P + p) * C + c;
                    double t = (xp[o] - mean) * rstd;
                    if (affine) t = t * gp[c] + bp[c];
                    ref[o] = silu ? ref_silu(t) : t;
                }
        }
    TT_OK(te_group_norm(&y, &x, affine ? &g : NULL, affine ? &b : NULL, G, 1e-5f, silu), be);
    char name[96];
    snprintf(name, sizeof name, "group_norm N%d %dx%d C%d G%d silu%d", N, H, W, C, G, silu);
    TT_CLOSE(name, y.data, ref, n, 1e-5);
    TT_OK(te_group_norm(&x, &x, affine ? &g : NULL, affine ? &b : NULL, G, 1e-5f, silu), be);  /* in place */
    TT_CLOSE("group_norm in place", x.data, ref, n, 1e-5);
    free(ref);
    tt_free(&x); tt_free(&y); tt_free(&g); tt_free(&b);
}

static void layer_norm_case(te_backend *be, int R, int C) {
    te_tensor x = TT_R(be, 2, R, C), y = TT_T(be, 2, R, C), g = TT_R(be, 1, C), b = TT_R(be, 1, C);
    double *ref = tt_ref((int64_t)R * C);
    const float *xp = x.data, *gp = g.data, *bp = b.data;
    for (int r = 0; r < R; r++) {
        double s = 0, ss = 0;
        for (int c = 0; c < C; c++) s += xp[r * C + c] + 0.5;
        double mean = s / C;
        for (int c = 0; c < C; c++) { double d = xp[r * C + c] + 0.5 - mean; ss += d * d; }
        double rstd = 1 / sqrt(ss / C + 1e-6);
        for (int c = 0; c < C; c++) ref[r * C + c] = (xp[r * C + c] + 0.5 - mean) * rstd * gp[c] + bp[c];
    }
    float *xw = x.data;
    for (int i = 0; i < R * C; i++) xw[i] += 0.5f;
    TT_OK(te_layer_norm(&y, &x, &g, &b, 1e-6f), be);
    char name[64];
    snprintf(name, sizeof name, "layer_norm %dx%d", R, C);
    TT_CLOSE(name, y.data, ref, (int64_t)R * C, 1e-5);
    free(ref);
    tt_free(&x); tt_free(&y); tt_free(&g); tt_free(&b);
}

static void act_cases(te_backend *be) {
    int64_t n = 100003;
    te_tensor x = tt_rand_tensor(be, 1, TT_SHAPE(n), 12.0), y = TT_T(be, 1, n);
    const float *xp = x.data;
    double *ref = tt_ref(n);
    for (int64_t i = 0; i < n; i++) ref[i] = ref_silu(xp[i]);
    TT_OK(te_silu(&y, &x), be); TT_CLOSE("silu", y.data, ref, n, 1e-5);
    for (int64_t i = 0; i < n; i++) ref[i] = ref_gelu(xp[i]);
    TT_OK(te_gelu(&y, &x), be); TT_CLOSE("gelu", y.data, ref, n, 1e-5);
    for (int64_t i = 0; i < n; i++) ref[i] = xp[i] / (1 + exp(-1.702 * xp[i]));
    TT_OK(te_quick_gelu(&y, &x), be); TT_CLOSE("quick_gelu", y.data, ref, n, 1e-5);
    for (int64_t i = 0; i < n; i++) ref[i] = xp[i] * 0.75 - 0.25;
    TT_OK(te_scale(&y, &x, 0.75f, -0.25f), be); TT_CLOSE("scale", y.data, ref, n, 1e-6);
    /* per-element relative check of silu/gelu on a moderate range too */
    te_tensor xs = tt_rand_tensor(be, 1, TT_SHAPE(4099), 3.0), ys = TT_T(be, 1, 4099);
    TT_OK(te_gelu(&ys, &xs), be);
    double worst = 0;
    for (int i = 0; i < 4099; i++) {
        double r = ref_gelu(((float *)xs.data)[i]), e = fabs(((float *)ys.data)[i] - r) / (fabs(r) + 1e-3);
        if (e > worst) worst = e;
    }
    TT_CHECK(worst < 2e-4, "gelu per-element rel err %g", worst);
    tt_free(&xs); tt_free(&ys);
    /* geglu: [R, 2F] -> [R, F] */
    int R = 37, F = 83;
    te_tensor gx = tt_rand_tensor(be, 2, TT_SHAPE(R, 2 * F), 4.0), gy = TT_T(be, 2, R, F);
    const float *gxp = gx.data;
    for (int r = 0; r < R; r++) for (int f = 0; f < F; f++) ref[r * F + f] = gxp[r * 2 * F + f] * ref_gelu(gxp[r * 2 * F + F + f]);
    TT_OK(te_geglu(&gy, &gx), be); TT_CLOSE("geglu", gy.data, ref, (int64_t)R * F, 1e-5);
    /* softmax with scale, rows of odd length */
    int SR = 13, SC = 1001;
    te_tensor sx = tt_rand_tensor(be, 2, TT_SHAPE(SR, SC), 20.0), sy = TT_T(be, 2, SR, SC);
    const float *sxp = sx.data;
    for (int r = 0; r < SR; r++) {
        double mx = -INFINITY, s = 0;
        for (int c = 0; c < SC; c++) if (sxp[r * SC + c] * 0.3 > mx) mx = sxp[r * SC + c] * 0.3;
        for (int c = 0; c < SC; c++) s += exp(sxp[r * SC + c] * 0.3 - mx);
        for (int c = 0; c < SC; c++) ref[r * SC + c] = exp(sxp[r * SC + c] * 0.3 - mx) / s;
    }
    TT_OK(te_softmax(&sy, &sx, 0.3f), be); TT_CLOSE("softmax", sy.data, ref, (int64_t)SR * SC, 1e-5);
    free(ref);
    tt_free(&x); tt_free(&y); tt_free(&gx); tt_free(&gy); tt_free(&sx); tt_free(&sy);
}

static void binary_case(te_backend *be, int nda, const int64_t *sa, int ndb, const int64_t *sb, int mul) {
    te_tensor a = tt_rand_tensor(be, nda, sa, 1.0), b = tt_rand_tensor(be, ndb, sb, 1.0), y = tt_tensor(be, TE_F32, nda, sa);
    int64_t n = te_tensor_numel(&a);
    double *ref = tt_ref(n);
    const float *ap = a.data, *bp = b.data;
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, boff = 0, bst = 1;
        for (int d = nda - 1; d >= 0; d--) {
            int64_t idx = rem % sa[d];
            rem /= sa[d];
            int bd = d - (nda - ndb);
            if (bd >= 0) { if (sb[bd] != 1) boff += idx * bst; bst *= sb[bd]; }
        }
        ref[i] = mul ? (double)ap[i] * bp[boff] : (double)ap[i] + bp[boff];
    }
    TT_OK(mul ? te_mul(&y, &a, &b) : te_add(&y, &a, &b), be);
    TT_CLOSE(mul ? "mul broadcast" : "add broadcast", y.data, ref, n, 1e-6);
    TT_OK(mul ? te_mul(&a, &a, &b) : te_add(&a, &a, &b), be);
    TT_CLOSE("binary in place", a.data, ref, n, 1e-6);
    free(ref);
    tt_free(&a); tt_free(&b); tt_free(&y);
}

static void misc_cases(te_backend *be) {
    /* concat on channels */
    te_tensor a = TT_R(be, 4, 2, 5, 3, 7), b = TT_R(be, 4, 2, 5, 3, 9), y = TT_T(be, 4, 2, 5, 3, 16);
    double *ref = tt_ref(2 * 5 * 3 * 16);
    for (int p = 0; p < 30; p++)
        for (int c = 0; c < 16; c++) ref[p * 16 + c] = c < 7 ? ((float *)a.data)[p * 7 + c] : ((float *)b.data)[p * 9 + c - 7];
    TT_OK(te_concat_channels(&y, &a, &b), be); TT_CLOSE("concat", y.data, ref, 480, 0);
    free(ref);
    /* upsample nearest 2x */
    te_tensor u = TT_R(be, 4, 2, 3, 5, 11), uy = TT_T(be, 4, 2, 6, 10, 11);
    ref = tt_ref(2 * 6 * 10 * 11);
    for (int n = 0; n < 2; n++) for (int oy = 0; oy < 6; oy++) for (int ox = 0; ox < 10; ox++) for (int c = 0; c < 11; c++)
        ref[((n * 6 + oy) * 10 + ox) * 11 + c] = ((float *)u.data)[((n * 3 + oy / 2) * 5 + ox / 2) * 11 + c];
    TT_OK(te_upsample_nearest2x(&uy, &u), be); TT_CLOSE("upsample2x", uy.data, ref, 1320, 0);
    free(ref);
    /* NCHW <-> NHWC */
    te_tensor nc = TT_R(be, 4, 2, 37, 9, 7), nh = TT_T(be, 4, 2, 9, 7, 37), back = TT_T(be, 4, 2, 37, 9, 7);
    ref = tt_ref(2 * 37 * 63);
    for (int n = 0; n < 2; n++) for (int c = 0; c < 37; c++) for (int p = 0; p < 63; p++)
        ref[(n * 63 + p) * 37 + c] = ((float *)nc.data)[(n * 37 + c) * 63 + p];
    TT_OK(te_nchw_to_nhwc(&nh, &nc), be); TT_CLOSE("nchw_to_nhwc", nh.data, ref, 2 * 37 * 63, 0);
    for (int i = 0; i < 2 * 37 * 63; i++) ref[i] = ((float *)nc.data)[i];
    TT_OK(te_nhwc_to_nchw(&back, &nh), be); TT_CLOSE("nhwc_to_nchw", back.data, ref, 2 * 37 * 63, 0);
    free(ref);
    /* timestep embedding (diffusers get_timestep_embedding), SD setting and variants */
    te_tensor t = TT_T(be, 1, 3);
    float *tp = t.data;
    tp[0] = 0; tp[1] = 981; tp[2] = 499.5f;
    int dims[2] = { 320, 7 };
    for (int di = 0; di < 2; di++)
        for (int flip = 0; flip < 2; flip++) {
            int dim = dims[di], half = dim / 2;
            te_timestep_params p = te_timestep_params_sd(dim);
            p.flip_sin_to_cos = flip;
            if (di) { p.downscale_freq_shift = 1; p.scale = 2; p.max_period = 1000; }
            te_tensor e = TT_T(be, 2, 3, dim);
            ref = tt_ref(3 * dim);
            for (int bi = 0; bi < 3; bi++)
                for (int i = 0; i < half; i++) {
                    double fr = exp(-log(p.max_period) * i / (half - p.downscale_freq_shift));
                    double arg = p.scale * tp[bi] * fr;
                    ref[bi * dim + (flip ? half + i : i)] = sin(arg);
                    ref[bi * dim + (flip ? i : half + i)] = cos(arg);
                }
            TT_OK(te_timestep_embedding(&e, &t, &p), be);
            TT_CLOSE("timestep_embedding", e.data, ref, 3 * dim, 1e-6);
            free(ref);
            tt_free(&e);
        }
    tt_free(&t);
    tt_free(&a); tt_free(&b); tt_free(&y); tt_free(&u); tt_free(&uy); tt_free(&nc); tt_free(&nh); tt_free(&back);
}

int main(void) {
    te_backend *be = tt_backend();
    group_norm_case(be, 1, 8, 8, 64, 32, 0, 1);
    group_norm_case(be, 2, 5, 7, 96, 32, 1, 1);
    group_norm_case(be, 1, 3, 11, 40, 8, 1, 0);
    group_norm_case(be, 1, 64, 64, 320, 32, 1, 1);     /* SD level-0 size */
    group_norm_case(be, 1, 1, 77, 30, 3, 0, 1);        /* token-shaped */
    layer_norm_case(be, 33, 320);
    layer_norm_case(be, 5, 77);
    act_cases(be);
    binary_case(be, 4, TT_SHAPE(2, 5, 6, 33), 4, TT_SHAPE(2, 5, 6, 33), 0);
    binary_case(be, 4, TT_SHAPE(2, 5, 6, 33), 1, TT_SHAPE(33), 0);            /* bias over channels */
    binary_case(be, 4, TT_SHAPE(2, 5, 6, 33), 4, TT_SHAPE(2, 1, 1, 33), 0);   /* time embedding add */
    binary_case(be, 3, TT_SHAPE(3, 7, 9), 3, TT_SHAPE(3, 7, 1), 1);            /* scalar per row */
    binary_case(be, 3, TT_SHAPE(3, 7, 9), 3, TT_SHAPE(1, 7, 1), 1);
    binary_case(be, 2, TT_SHAPE(4, 5), 1, TT_SHAPE(1), 1);
    misc_cases(be);
    te_backend_destroy(be);
    return tt_done("engine_elem");
}
