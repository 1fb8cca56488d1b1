/* test_linalg.c - conv2d, linear and batched matmul against float64
 * references on random data, odd sizes, bias/residual fusion, strides. */
#include "test_refs.h"
#include "te_weights.h"

static double conv_tol = 1e-5;
static void conv_case(te_backend *be, int N, int H, int W, int C, int K, int ks, int stride, int pad, int bias, int res) {
    te_tensor x = TT_R(be, 4, N, H, W, C), w = TT_R(be, 4, K, C, ks, ks), b = TT_R(be, 1, K);
    int Ho = (H + 2 * pad - ks) / stride + 1, Wo = (W + 2 * pad - ks) / stride + 1;
    te_tensor y = TT_T(be, 4, N, Ho, Wo, K), r = TT_R(be, 4, N, Ho, Wo, K);
    te_conv2d_params p = { .stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad };
    int64_t n = te_tensor_numel(&y);
    double *ref = tt_ref(n);
    ref_conv2d(ref, x.data, w.data, bias ? b.data : NULL, res ? r.data : NULL, N, H, W, C, K, ks, ks, stride, pad, Ho, Wo);
    char name[128];
    for (int rep = 0; rep < 2; rep++) {   /* second call hits the primitive cache and prepared weights */
        TT_OK(te_conv2d(&y, &x, &w, bias ? &b : NULL, res ? &r : NULL, &p), be);
        snprintf(name, sizeof name, "conv N%d %dx%d C%d K%d k%d s%d p%d b%d r%d #%d", N, H, W, C, K, ks, stride, pad, bias, res, rep);
        TT_CLOSE(name, y.data, ref, n, conv_tol);
    }
    free(ref);
    tt_free(&x); tt_free(&w); tt_free(&b); tt_free(&y); tt_free(&r);
}

/* Asymmetric padding (VAE downsample: F.pad(x, (0,1,0,1)) then a stride-2
 * 3x3 conv == pad_bottom = pad_right = 1), against the float64 reference. */
static void conv_asym_case(te_backend *be, int N, int H, int W, int C, int K, int kh, int kw, int sh, int sw, int pt,
                           int pb, int pl, int pr, int bias, int res) {
    te_tensor x = TT_R(be, 4, N, H, W, C), w = TT_R(be, 4, K, C, kh, kw), b = TT_R(be, 1, K);
    int Ho = (H + pt + pb - kh) / sh + 1, Wo = (W + pl + pr - kw) / sw + 1;
    te_tensor y = TT_T(be, 4, N, Ho, Wo, K), r = TT_R(be, 4, N, Ho, Wo, K);
    te_conv2d_params p = { .stride_h = sh, .stride_w = sw, .pad_top = pt, .pad_bottom = pb, .pad_left = pl,
                           .pad_right = pr };
    int64_t n = te_tensor_numel(&y);
    double *ref = tt_ref(n);
    ref_conv2d_pads(ref, x.data, w.data, bias ? b.data : NULL, res ? r.data : NULL, N, H, W, C, K, kh, kw, sh, sw, pt,
                    pl, Ho, Wo);
    char name[160];
    for (int rep = 0; rep < 2; rep++) {
        TT_OK(te_conv2d(&y, &x, &w, bias ? &b : NULL, res ? &r : NULL, &p), be);
        snprintf(name, sizeof name, "conv asym N%d %dx%d C%d K%d k%dx%d s%d,%d pads t%d b%d l%d r%d b%d r%d #%d", N, H,
                 W, C, K, kh, kw, sh, sw, pt, pb, pl, pr, bias, res, rep);
        TT_CLOSE(name, y.data, ref, n, conv_tol);
    }
    free(ref);
    tt_free(&x); tt_free(&w); tt_free(&b); tt_free(&y); tt_free(&r);
}

/* Weights-store tensors lose their plain copy once packed; the packed form
 * must then serve every later call, including a re-layout for another shape
 * (different spatial size / batch -> possibly another blocked format). With
 * bf16 = 1 the weights are bf16 (compute bf16, f32 accumulation): tolerance
 * 1e-2 of max|y| (bf16 has 8 significant bits; sums of C*9 products). */
static void store_conv_case(te_backend *be, int C, int K, int bf16) {
    te_weights *ws;
    TT_OK(te_weights_create(be, &ws), be);
    te_tensor hw = TT_R(be, 4, K, C, 3, 3), hb = TT_R(be, 1, K), *w, *b;
    te_dtype wd = bf16 ? TE_BF16 : TE_F32;
    TT_OK(te_weights_add(ws, &w, wd, 4, hw.ne, hw.data, TE_F32), be);
    TT_OK(te_weights_add(ws, &b, TE_F32, 1, hb.ne, hb.data, TE_F32), be);
    if (bf16) {   /* the reference sees the bf16-rounded weights: what remains is the activations' rounding */
        float *f = hw.data;
        for (int64_t i = 0; i < te_tensor_numel(&hw); i++) {
            uint16_t h;
            te_convert_host(&h, TE_BF16, &f[i], TE_F32, 1);
            te_convert_host(&f[i], TE_F32, &h, TE_BF16, 1);
        }
    }
    int sizes[][2] = { { 1, 16 }, { 2, 5 }, { 1, 33 }, { 1, 16 } };
    for (int i = 0; i < 4; i++) {
        int N = sizes[i][0], H = sizes[i][1];
        te_tensor x = TT_R(be, 4, N, H, H, C), y = TT_T(be, 4, N, H, H, K);
        te_conv2d_params p = { .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1 };
        double *ref = tt_ref(te_tensor_numel(&y));
        ref_conv2d(ref, x.data, hw.data, hb.data, NULL, N, H, H, C, K, 3, 3, 1, 1, H, H);
        TT_OK(te_conv2d(&y, &x, w, b, NULL, &p), be);
        char name[128];
        snprintf(name, sizeof name, "store conv %s C%d K%d N%d %dx%d (plain %s)", bf16 ? "bf16" : "f32", C, K, N, H, H,
                 w->data ? "kept" : "dropped");
        TT_CLOSE(name, y.data, ref, te_tensor_numel(&y), bf16 ? 1e-2 : 1e-5);
        TT_CHECK(w->data == NULL && w->prep != NULL, "%s: plain copy not dropped after packing", name);
        TT_CHECK(b->data != NULL, "%s: bias lost its data", name);
        free(ref);
        tt_free(&x); tt_free(&y);
    }
    /* linear weights likewise */
    te_tensor hl = TT_R(be, 2, 24, C), *l;
    TT_OK(te_weights_add(ws, &l, wd, 2, hl.ne, hl.data, TE_F32), be);
    if (bf16) {
        float *f = hl.data;
        for (int64_t i = 0; i < te_tensor_numel(&hl); i++) {
            uint16_t h;
            te_convert_host(&h, TE_BF16, &f[i], TE_F32, 1);
            te_convert_host(&f[i], TE_F32, &h, TE_BF16, 1);
        }
    }
    int rows[] = { 7, 300, 7 };
    for (int i = 0; i < 3; i++) {
        int M = rows[i];
        te_tensor x = TT_R(be, 2, M, C), y = TT_T(be, 2, M, 24);
        double *ref = tt_ref((int64_t)M * 24);
        const float *xp = x.data, *wp = hl.data;
        for (int r = 0; r < M; r++)
            for (int j = 0; j < 24; j++) {
                double a = 0;
                for (int k = 0; k < C; k++) a += (double)xp[r * C + k] * wp[j * C + k];
                ref[r * 24 + j] = a;
            }
        TT_OK(te_linear(&y, &x, l, NULL, NULL), be);
        char name[96];
        snprintf(name, sizeof name, "store linear %s %dx%dx24", bf16 ? "bf16" : "f32", M, C);
        TT_CLOSE(name, y.data, ref, (int64_t)M * 24, bf16 ? 1e-2 : 1e-5);
        TT_CHECK(l->data == NULL, "%s: plain copy not dropped", name);
        free(ref);
        tt_free(&x); tt_free(&y);
    }
    uint16_t tmp;
    TT_CHECK(te_tensor_download(w, &tmp) == TE_ERR_STATE, "download of a dropped weight must fail cleanly");
    te_weights_destroy(ws);
    tt_free(&hw); tt_free(&hb); tt_free(&hl);
}

static void linear_case(te_backend *be, int M, int K, int N, int bias, int res) {
    te_tensor x = TT_R(be, 3, 1, M, K), w = TT_R(be, 2, N, K), b = TT_R(be, 1, N);
    te_tensor y = TT_T(be, 3, 1, M, N), r = TT_R(be, 3, 1, M, N);
    double *ref = tt_ref((int64_t)M * N);
    const float *xp = x.data, *wp = w.data, *bp = b.data, *rp = r.data;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double a = bias ? bp[j] : 0;
            for (int k = 0; k < K; k++) a += (double)xp[i * K + k] * wp[j * K + k];
            ref[i * N + j] = a + (res ? rp[i * N + j] : 0);
        }
    TT_OK(te_linear(&y, &x, &w, bias ? &b : NULL, res ? &r : NULL), be);
    char name[96];
    snprintf(name, sizeof name, "linear %dx%dx%d b%d r%d", M, K, N, bias, res);
    TT_CLOSE(name, y.data, ref, (int64_t)M * N, 1e-5);
    free(ref);
    tt_free(&x); tt_free(&w); tt_free(&b); tt_free(&y); tt_free(&r);
}

static void matmul_case(te_backend *be, int Ba, int Bb, int M, int K, int N, int ta, int tb, float alpha) {
    int B = Ba > Bb ? Ba : Bb;
    te_tensor a = ta ? TT_R(be, 3, Ba, K, M) : TT_R(be, 3, Ba, M, K);
    te_tensor b = tb ? TT_R(be, 3, Bb, N, K) : TT_R(be, 3, Bb, K, N);
    te_tensor c = TT_T(be, 3, B, M, N);
    double *ref = tt_ref((int64_t)B * M * N);
    const float *ap = a.data, *bp = b.data;
    for (int z = 0; z < B; z++) {
        const float *az = ap + (Ba == 1 ? 0 : z) * M * K, *bz = bp + (Bb == 1 ? 0 : z) * K * N;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < K; k++)
                    s += (double)(ta ? az[k * M + i] : az[i * K + k]) * (tb ? bz[j * K + k] : bz[k * N + j]);
                ref[((int64_t)z * M + i) * N + j] = alpha * s;
            }
    }
    TT_OK(te_matmul(&c, &a, &b, ta, tb, alpha), be);
    char name[96];
    snprintf(name, sizeof name, "matmul B%d/%d %dx%dx%d t%d%d", Ba, Bb, M, K, N, ta, tb);
    TT_CLOSE(name, c.data, ref, (int64_t)B * M * N, 1e-5);
    free(ref);
    tt_free(&a); tt_free(&b); tt_free(&c);
}

int main(void) {
    te_backend *be = tt_backend();
    conv_case(be, 1, 9, 11, 5, 7, 3, 1, 1, 1, 0);
    conv_case(be, 2, 8, 8, 16, 32, 3, 1, 1, 1, 1);
    conv_case(be, 1, 13, 10, 7, 3, 3, 2, 1, 1, 0);   /* downsample conv */
    conv_case(be, 1, 7, 9, 33, 17, 1, 1, 0, 1, 1);   /* 1x1 */
    conv_case(be, 1, 6, 6, 19, 21, 1, 1, 0, 0, 0);
    conv_case(be, 1, 12, 12, 64, 48, 3, 1, 1, 0, 1);
    conv_case(be, 2, 5, 5, 3, 4, 3, 1, 0, 1, 0);     /* no padding */
    conv_asym_case(be, 1, 16, 16, 8, 8, 3, 3, 2, 2, 0, 1, 0, 1, 1, 0);   /* VAE downsample (0,1,0,1) */
    conv_asym_case(be, 2, 13, 9, 5, 7, 3, 3, 2, 2, 0, 1, 0, 1, 1, 1);    /* odd sizes, residual */
    conv_asym_case(be, 1, 10, 12, 6, 5, 3, 2, 1, 2, 2, 0, 1, 3, 0, 0);   /* all four different, kh != kw */
    conv_asym_case(be, 1, 7, 7, 4, 3, 1, 1, 1, 1, 1, 0, 0, 2, 1, 0);     /* 1x1 with padding */
    {   /* validation: asymmetric pads together with pad_h/pad_w, negative pads */
        te_tensor x = TT_R(be, 4, 1, 8, 8, 4), w = TT_R(be, 4, 4, 4, 3, 3), y = TT_T(be, 4, 1, 4, 4, 4);
        te_conv2d_params p = { .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_bottom = 1, .pad_right = 1 };
        TT_CHECK(te_conv2d(&y, &x, &w, NULL, NULL, &p) == TE_ERR_ARG, "pad_h with asymmetric pads must be refused");
        te_conv2d_params q = { .stride_h = 2, .stride_w = 2, .pad_top = -1, .pad_bottom = 2, .pad_right = 1 };
        TT_CHECK(te_conv2d(&y, &x, &w, NULL, NULL, &q) == TE_ERR_ARG, "negative pad must be refused");
        tt_free(&x); tt_free(&w); tt_free(&y);
    }
    store_conv_case(be, 16, 24, 0);
    store_conv_case(be, 19, 5, 0);
    if (te_cpu_backend_isa(be) == TE_ISA_AVX512) {   /* oneDNN's bf16 kernels need AVX-512 */
        store_conv_case(be, 16, 24, 1);
        store_conv_case(be, 19, 5, 1);
    }
    linear_case(be, 77, 33, 19, 1, 0);
    linear_case(be, 130, 64, 96, 1, 1);
    linear_case(be, 5, 7, 3, 0, 1);
    linear_case(be, 1, 320, 1280, 1, 0);
    matmul_case(be, 3, 3, 17, 9, 23, 0, 0, 1.0f);
    matmul_case(be, 2, 2, 31, 40, 29, 0, 1, 0.125f);
    matmul_case(be, 2, 2, 12, 13, 14, 1, 0, 1.0f);
    matmul_case(be, 4, 1, 8, 16, 5, 1, 1, -2.0f);
    matmul_case(be, 1, 3, 64, 33, 65, 0, 0, 1.0f);
    te_backend_destroy(be);

    /* Winograd option: 3x3 stride-1 convs (others fall back to direct). oneDNN
     * picks F(2,3) for these small shapes (error ~3e-7); F(4,3) on the SD
     * shapes measured 1.6e-6..3.8e-6 vs direct (docs/engine.md). Tolerance 2e-5. */
    setenv("TE_CONV_ALGO", "winograd-all", 1);   /* also the small test shapes */
    te_cpu_options o = { .n_threads = 0, .isa = -1, .conv = TE_CONV_WINOGRAD };
    char err[256];
    TT_CHECK(te_cpu_backend_create(&o, &be, err, sizeof err) == TE_OK, "winograd backend: %s", err);
    conv_tol = 2e-5;
    conv_case(be, 1, 32, 32, 64, 64, 3, 1, 1, 1, 0);
    conv_case(be, 2, 16, 16, 128, 64, 3, 1, 1, 1, 1);
    conv_case(be, 1, 9, 11, 5, 7, 3, 1, 1, 1, 0);      /* odd: likely direct fallback */
    conv_case(be, 1, 13, 10, 16, 16, 3, 2, 1, 1, 0);   /* stride 2: direct */
    conv_case(be, 1, 8, 8, 32, 32, 3, 1, 1, 0, 1);
    conv_case(be, 1, 64, 64, 64, 64, 3, 1, 1, 1, 1);  /* large enough for F(4,3) */
    te_backend_destroy(be);
    return tt_done("engine_linalg");
}
