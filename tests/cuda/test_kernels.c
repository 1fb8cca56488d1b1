/* test_kernels.c - the CUDA kernels (cuda/kernels, compiled with g++ under
 * the host emulator) against the engine's CPU backend on the same random
 * inputs, sizes not multiples of the block size included.
 *
 * Usage: tcu_emu_test_kernels <group>; ctest runs each group as
 * cuda_emu_<group>. Every case runs under several emulator schedules (1..4
 * OS threads, grid order and shuffled block/warp order); reductions must give
 * bit-identical results under all of them. f32 metric as in tests/engine:
 * max|got - ref| / max|ref| <= 1e-5 (CPU backend as the reference). */
#include <stdint.h>
#include "tcu_emu_ctl.h"
#include "tcu_kernels.h"
#include "te_half.h"
#include "te_test.h"

static te_backend *be;

static const struct { int threads; uint64_t seed; } cfgs[] = {{1, 0}, {2, 0}, {2, 0x5eed}, {4, 77}};
#define NCFG ((int)(sizeof cfgs / sizeof cfgs[0]))

static double rel_err(const float *got, const float *ref, int64_t n) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= md)) md = d;
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return md / (mr > 0 ? mr : 1.0);
}

#define TCU_OK(expr) do { tcu_err e_ = (expr); if (e_) { tt_failures++; \
    fprintf(stderr, "FAIL %s:%d: %s -> %s\n", __FILE__, __LINE__, #expr, tcu_err_str(e_)); } } while (0)

/* Compare `got` (n floats) with `ref` under config c; bitwise against the
 * first config's result `first` when `first` is non-NULL and c > 0. */
static void judge(const char *name, int c, const float *got, const float *ref, const float *first, int64_t n, double tol) {
    double e = rel_err(got, ref, n);
    TT_CHECK(e <= tol, "%s [threads=%d shuffle=%llu]: error %.3g > %.3g", name, cfgs[c].threads,
             (unsigned long long)cfgs[c].seed, e, tol);
    if (first && c > 0)
        TT_CHECK(memcmp(got, first, (size_t)n * sizeof(float)) == 0, "%s [threads=%d shuffle=%llu]: result depends on the schedule",
                 name, cfgs[c].threads, (unsigned long long)cfgs[c].seed);
    if (getenv("TT_VERBOSE") && c == 0) printf("  %-44s err %.3g\n", name, e);
}

static void cfg(int c) { tcu_emu_configure(cfgs[c].threads, cfgs[c].seed); }
static float *buf(int64_t n) { float *p = aligned_alloc(64, (size_t)((n + 16) * sizeof(float))); return p; }

/* ---- elementwise ---------------------------------------------------------- */
static void unary_case(int64_t n) {
    te_tensor x = tt_rand_tensor(be, 1, TT_SHAPE(n), 10.0), y = TT_T(be, 1, n);
    float *g = buf(n);
    for (int op = TCU_SILU; op <= TCU_QUICK_GELU; op++) {
        TT_OK(op == 0 ? te_silu(&y, &x) : op == 1 ? te_gelu(&y, &x) : te_quick_gelu(&y, &x), be);
        for (int c = 0; c < NCFG; c++) {
            cfg(c);
            TCU_OK(tcu_unary_f32(g, x.data, n, op, NULL));
            char name[64];
            snprintf(name, sizeof name, "unary op%d n=%lld", op, (long long)n);
            judge(name, c, g, y.data, NULL, n, 1e-5);
        }
    }
    TT_OK(te_scale(&y, &x, 0.18215f, -0.5f), be);
    for (int c = 0; c < NCFG; c++) {
        cfg(c);
        memcpy(g, x.data, n * sizeof(float));
        TCU_OK(tcu_scale_f32(g, g, n, 0.18215f, -0.5f, NULL));   /* in place */
        judge("scale (in place)", c, g, y.data, NULL, n, 1e-6);
    }
    free(g); tt_free(&x); tt_free(&y);
}

static void binary_case(int and_, const int64_t *ane, int bnd, const int64_t *bne) {
    te_tensor a = tt_rand_tensor(be, and_, ane, 2.0), b = tt_rand_tensor(be, bnd, bne, 2.0);
    te_tensor y = tt_tensor(be, TE_F32, and_, ane);
    int64_t n = te_tensor_numel(&a);
    float *g = buf(n);
    char sa[64], sb[64], name[160];
    te_tensor_shape_str(&a, sa, sizeof sa);
    te_tensor_shape_str(&b, sb, sizeof sb);
    for (int op = TCU_ADD; op <= TCU_MUL; op++) {
        TT_OK(op == TCU_ADD ? te_add(&y, &a, &b) : te_mul(&y, &a, &b), be);
        snprintf(name, sizeof name, "%s %s %s", op ? "mul" : "add", sa, sb);
        for (int c = 0; c < NCFG; c++) {
            cfg(c);
            TCU_OK(tcu_binary_f32(g, a.data, b.data, a.ne, a.ndim, b.ne, b.ndim, op, NULL));
            judge(name, c, g, y.data, NULL, n, 0);
        }
    }
    int64_t bad_ne[5] = {3};
    TT_CHECK(tcu_binary_f32(g, a.data, b.data, a.ne, a.ndim, bad_ne, 1, TCU_ADD, NULL) != 0 || a.ne[a.ndim - 1] == 3,
             "binary: a shape mismatch was accepted");
    free(g); tt_free(&a); tt_free(&b); tt_free(&y);
}

static void group_elementwise(void) {
    unary_case(100003);          /* scalar path, odd tail */
    unary_case(4 * 12345);       /* float4 path */
    unary_case(5);
    binary_case(4, TT_SHAPE(2, 9, 7, 40), 4, TT_SHAPE(2, 9, 7, 40));   /* same shape */
    binary_case(4, TT_SHAPE(2, 9, 7, 40), 1, TT_SHAPE(40));            /* bias over channels */
    binary_case(4, TT_SHAPE(2, 9, 7, 40), 4, TT_SHAPE(2, 1, 1, 40));   /* time embedding into NHWC */
    binary_case(4, TT_SHAPE(2, 9, 7, 40), 3, TT_SHAPE(9, 1, 40));      /* middle broadcast */
    binary_case(3, TT_SHAPE(3, 77, 33), 1, TT_SHAPE(1));               /* scalar */
    binary_case(5, TT_SHAPE(2, 3, 4, 5, 6), 5, TT_SHAPE(2, 1, 4, 1, 6));
    binary_case(3, TT_SHAPE(4, 5, 6), 2, TT_SHAPE(5, 1));
}

/* ---- group norm ------------------------------------------------------------ */
static void group_norm_case(int N, int H, int W, int C, int G, int silu, int affine) {
    te_tensor x = tt_rand_tensor(be, 4, TT_SHAPE(N, H, W, C), 3.0), y = TT_T(be, 4, N, H, W, C);
    te_tensor ga = TT_R(be, 1, C), bt = TT_R(be, 1, C);
    int64_t n = te_tensor_numel(&x), P = (int64_t)H * W;
    float *xp = x.data;
    for (int64_t i = 0; i < n; i++) xp[i] += 2.0f;   /* non-zero mean */
    TT_OK(te_group_norm(&y, &x, affine ? &ga : NULL, affine ? &bt : NULL, G, 1e-5f, silu), be);
    size_t wsb = tcu_group_norm_workspace(N, P, C, G);
    TT_CHECK(wsb > 0, "group_norm workspace size");
    void *ws = malloc(wsb);
    float *g = buf(n), *first = buf(n);
    char name[96];
    snprintf(name, sizeof name, "group_norm N%d %dx%d C%d G%d silu%d aff%d", N, H, W, C, G, silu, affine);
    for (int c = 0; c < NCFG; c++) {
        cfg(c);
        int inplace = c == NCFG - 1;
        if (inplace) memcpy(g, xp, n * sizeof(float));
        TCU_OK(tcu_group_norm_f32(g, inplace ? g : xp, affine ? ga.data : NULL, affine ? bt.data : NULL, N, P, C, G, 1e-5f,
                                  silu, ws, wsb, NULL));
        judge(name, c, g, y.data, first, n, 1e-5);
        if (c == 0) memcpy(first, g, n * sizeof(float));
    }
    TT_CHECK(tcu_group_norm_f32(g, xp, NULL, NULL, N, P, C, G, 1e-5f, 0, ws, wsb - 1, NULL) == 1,
             "group_norm: short workspace accepted");
    free(ws); free(g); free(first);
    tt_free(&x); tt_free(&y); tt_free(&ga); tt_free(&bt);
}

static void group_group_norm(void) {
    group_norm_case(2, 7, 9, 64, 32, 0, 1);
    group_norm_case(2, 7, 9, 64, 32, 1, 1);
    group_norm_case(1, 33, 17, 96, 3, 1, 0);      /* 32 channels per group, odd spatial */
    group_norm_case(3, 5, 5, 10, 5, 0, 1);        /* tiny */
    group_norm_case(1, 64, 64, 320, 32, 1, 1);    /* SD UNet level 0 (~3 splits per group) */
    group_norm_case(1, 128, 96, 128, 32, 0, 1);   /* VAE-like: 4 channels/group, many splits */
}

/* ---- row-wise --------------------------------------------------------------- */
static void layer_norm_case(int R, int C, int affine) {
    te_tensor x = tt_rand_tensor(be, 2, TT_SHAPE(R, C), 2.0), y = TT_T(be, 2, R, C), ga = TT_R(be, 1, C), bt = TT_R(be, 1, C);
    float *xp = x.data;
    for (int64_t i = 0; i < (int64_t)R * C; i++) xp[i] += 0.5f;
    TT_OK(te_layer_norm(&y, &x, affine ? &ga : NULL, affine ? &bt : NULL, 1e-5f), be);
    float *g = buf((int64_t)R * C), *first = buf((int64_t)R * C);
    char name[64];
    snprintf(name, sizeof name, "layer_norm %dx%d aff%d", R, C, affine);
    for (int c = 0; c < NCFG; c++) {
        cfg(c);
        TCU_OK(tcu_layer_norm_f32(g, xp, affine ? ga.data : NULL, affine ? bt.data : NULL, R, C, 1e-5f, NULL));
        judge(name, c, g, y.data, first, (int64_t)R * C, 1e-5);
        if (c == 0) memcpy(first, g, (size_t)R * C * sizeof(float));
    }
    free(g); free(first); tt_free(&x); tt_free(&y); tt_free(&ga); tt_free(&bt);
}

static void softmax_case(int R, int C, float scale) {
    te_tensor x = tt_rand_tensor(be, 2, TT_SHAPE(R, C), 8.0), y = TT_T(be, 2, R, C);
    TT_OK(te_softmax(&y, &x, scale), be);
    float *g = buf((int64_t)R * C), *first = buf((int64_t)R * C);
    char name[64];
    snprintf(name, sizeof name, "softmax %dx%d scale %g", R, C, scale);
    for (int c = 0; c < NCFG; c++) {
        cfg(c);
        TCU_OK(tcu_softmax_f32(g, x.data, R, C, scale, NULL));
        judge(name, c, g, y.data, first, (int64_t)R * C, 1e-5);
        if (c == 0) memcpy(first, g, (size_t)R * C * sizeof(float));
    }
    free(g); free(first); tt_free(&x); tt_free(&y);
}

static void geglu_case(int R, int F) {
    te_tensor x = tt_rand_tensor(be, 2, TT_SHAPE(R, 2 * F), 4.0), y = TT_T(be, 2, R, F);
    TT_OK(te_geglu(&y, &x), be);
    float *g = buf((int64_t)R * F);
    char name[64];
    snprintf(name, sizeof name, "geglu %dx%d", R, F);
    for (int c = 0; c < NCFG; c++) {
        cfg(c);
        TCU_OK(tcu_geglu_f32(g, x.data, R, F, NULL));
        judge(name, c, g, y.data, NULL, (int64_t)R * F, 1e-5);
    }
    free(g); tt_free(&x); tt_free(&y);
}

static void group_layer_norm(void) {
    layer_norm_case(77, 768, 1);
    layer_norm_case(333, 320, 1);
    layer_norm_case(5, 1281, 0);
    layer_norm_case(3, 1, 1);
    layer_norm_case(2, 5000, 1);
}
static void group_softmax(void) {
    softmax_case(50, 77, 1.0f);
    softmax_case(7, 4101, 0.125f);
    softmax_case(300, 1, 1.0f);
    softmax_case(16, 255, 3.0f);
}
static void group_geglu(void) {
    geglu_case(37, 333);
    geglu_case(64, 1280);
    geglu_case(1, 1);
}

/* ---- misc ------------------------------------------------------------------- */
static void timestep_case(int B, int dim, int flip, float shift) {
    te_tensor t = TT_T(be, 1, B), y = TT_T(be, 2, B, dim);
    float *tp = t.data;
    for (int i = 0; i < B; i++) tp[i] = (float)(999 - 333 * i) + 0.25f * i;
    te_timestep_params p = te_timestep_params_sd(dim);
    p.flip_sin_to_cos = flip;
    p.downscale_freq_shift = shift;
    TT_OK(te_timestep_embedding(&y, &t, &p), be);
    float *g = buf((int64_t)B * dim);
    for (int64_t i = 0; i < (int64_t)B * dim; i++) g[i] = NAN;
    char name[64];
    snprintf(name, sizeof name, "timestep B%d dim%d flip%d", B, dim, flip);
    for (int c = 0; c < NCFG; c++) {
        cfg(c);
        TCU_OK(tcu_timestep_embedding_f32(g, tp, B, dim, flip, shift, p.scale, p.max_period, NULL));
        judge(name, c, g, y.data, NULL, (int64_t)B * dim, 1e-6);
    }
    free(g); tt_free(&t); tt_free(&y);
}
static void group_timestep(void) {
    timestep_case(2, 320, 1, 0.0f);
    timestep_case(3, 7, 0, 1.0f);
    timestep_case(1, 3, 1, 0.0f);
    timestep_case(4, 1280, 1, 0.0f);
}

static void upsample_case(int N, int H, int W, int C) {
    te_tensor x = TT_R(be, 4, N, H, W, C), y = TT_T(be, 4, N, 2 * H, 2 * W, C);
    TT_OK(te_upsample_nearest2x(&y, &x), be);
    int64_t n = te_tensor_numel(&y);
    float *g = buf(n);
    char name[64];
    snprintf(name, sizeof name, "upsample2x %dx%dx%dx%d", N, H, W, C);
    for (int c = 0; c < NCFG; c++) {
        cfg(c);
        TCU_OK(tcu_upsample_nearest2x_f32(g, x.data, N, H, W, C, NULL));
        judge(name, c, g, y.data, NULL, n, 0);
    }
    free(g); tt_free(&x); tt_free(&y);
}
static void group_upsample(void) {
    upsample_case(2, 5, 7, 12);    /* float4 */
    upsample_case(1, 3, 4, 5);     /* scalar */
    upsample_case(1, 8, 8, 1280);
}

static void concat_case(int R, int Ca, int Cb) {
    te_tensor a = TT_R(be, 2, R, Ca), b = TT_R(be, 2, R, Cb), y = TT_T(be, 2, R, Ca + Cb);
    TT_OK(te_concat_channels(&y, &a, &b), be);
    int64_t n = (int64_t)R * (Ca + Cb);
    float *g = buf(n);
    char name[64];
    snprintf(name, sizeof name, "concat %dx(%d+%d)", R, Ca, Cb);
    for (int c = 0; c < NCFG; c++) {
        cfg(c);
        TCU_OK(tcu_concat_channels_f32(g, a.data, b.data, R, Ca, Cb, NULL));
        judge(name, c, g, y.data, NULL, n, 0);
    }
    free(g); tt_free(&a); tt_free(&b); tt_free(&y);
}
static void group_concat(void) {
    concat_case(35, 8, 12);
    concat_case(35, 3, 5);
    concat_case(64, 1280, 640);
    concat_case(3, 0, 7);
}

/* ---- conversion: bitwise against the CPU backend (te_half RNE); a NaN must
 * stay a NaN (the device writes the canonical 0x7fff, te_half keeps the
 * payload) ----------------------------------------------------------------- */
static int is_nan16(uint16_t h, int bf) { return bf ? ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) : ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)); }

static void convert_pair(const void *x, int xdt, int ydt, int64_t n, const char *name) {
    te_tensor tx = tt_tensor(be, (te_dtype)xdt, 1, TT_SHAPE(n)), ty = tt_tensor(be, (te_dtype)ydt, 1, TT_SHAPE(n));
    memcpy(tx.data, x, te_tensor_nbytes(&tx));
    TT_OK(te_convert(&ty, &tx), be);
    size_t es = te_dtype_size((te_dtype)ydt);
    unsigned char *g = malloc((size_t)n * es + 64);
    for (int c = 0; c < NCFG; c += 2) {
        cfg(c);
        TCU_OK(tcu_convert(g, ydt, x, xdt, n, NULL));
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < n; i++) {
            int same;
            if (ydt == TCU_DT_F32) {
                float a = ((float *)g)[i], b = ((float *)ty.data)[i];
                same = (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0;
            } else {
                uint16_t a = ((uint16_t *)g)[i], b = ((uint16_t *)ty.data)[i];
                int bf = ydt == TCU_DT_BF16;
                same = a == b || (is_nan16(a, bf) && is_nan16(b, bf));
            }
            if (!same && first < 0) first = i;
            bad += !same;
        }
        TT_CHECK(bad == 0, "%s: %lld of %lld differ (first at %lld)", name, (long long)bad, (long long)n, (long long)first);
    }
    free(g); tt_free(&tx); tt_free(&ty);
}

static void group_convert(void) {
    /* f32 sources: random bit patterns, random magnitudes across the f16 range, every rounding edge */
    int64_t n = 400000;
    uint32_t *bits = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        tt_seed = tt_seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(tt_seed >> 32);
        if (i % 4 == 0) bits[i] = r;                                        /* anything, NaNs included */
        else if (i % 4 == 1) bits[i] = (r & 0x83ffffffu) | (((r >> 26) % 40 + 97) << 23); /* 2^-30 .. 2^9 */
        else if (i % 4 == 2) bits[i] = (r & 0x807fffffu) | (((r >> 26) % 8 + 140) << 23); /* near 65504 */
        else bits[i] = (r & 0x80000000u) | (0x33000000u + (uint32_t)(i % 0x05800000));  /* subnormal edges */
    }
    const uint32_t special[] = {0, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u, 0x7f800001u,
                                0x477fe000u, 0x477ff000u, 0x477fefffu, 0x33000000u, 0x33000001u, 0x387fc000u,
                                0x38800000u, 0x3f801000u, 0x3f803000u, 0x7f7fffffu, 0x00000001u};
    memcpy(bits, special, sizeof special);
    convert_pair(bits, TCU_DT_F32, TCU_DT_F16, n, "f32->f16");
    convert_pair(bits, TCU_DT_F32, TCU_DT_BF16, n, "f32->bf16");
    free(bits);
    uint16_t *all = malloc(65536 * 2);
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    convert_pair(all, TCU_DT_F16, TCU_DT_F32, 65536, "f16->f32 (all)");
    convert_pair(all, TCU_DT_BF16, TCU_DT_F32, 65536, "bf16->f32 (all)");
    convert_pair(all, TCU_DT_F16, TCU_DT_BF16, 65536, "f16->bf16 (all)");
    convert_pair(all, TCU_DT_BF16, TCU_DT_F16, 65536, "bf16->f16 (all)");
    float *f = buf(1001);
    tt_fill(f, 1001, 100.0);
    convert_pair(f, TCU_DT_F32, TCU_DT_F32, 1001, "f32->f32");
    free(f);
    free(all);
}

int main(int argc, char **argv) {
    static const struct { const char *name; void (*fn)(void); } groups[] = {
        {"elementwise", group_elementwise}, {"group_norm", group_group_norm}, {"layer_norm", group_layer_norm},
        {"softmax", group_softmax}, {"geglu", group_geglu}, {"timestep", group_timestep},
        {"upsample", group_upsample}, {"concat", group_concat}, {"convert", group_convert},
    };
    if (argc != 2) { fprintf(stderr, "usage: %s <group>\n", argv[0]); return 2; }
    be = tt_backend();
    int found = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (!strcmp(argv[1], groups[i].name) || !strcmp(argv[1], "all")) { groups[i].fn(); found = 1; }
    if (!found) { fprintf(stderr, "unknown group %s\n", argv[1]); return 2; }
    te_backend_destroy(be);
    return tt_done(argv[1]);
}
