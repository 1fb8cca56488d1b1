/* te_cpu_elem.c - CPU drivers for the memory-bound ops: norms, activations,
 * softmax, broadcast arithmetic, concat, upsample, layout, dtype conversion.
 * Each splits rows/elements across the backend's pool and calls the per-ISA
 * kernels in te_cpu_kernels (scalar / AVX2 / AVX-512). */
#include "te_cpu_impl.h"
#include <math.h>
#include <string.h>

#define CHUNK 4096   /* elements per work item for flat element-wise ops */

typedef struct job {
    te_cpu *c;
    const float *x, *x2;
    float *y;
    const float *g, *b;
    int64_t n, inner, c1, c2;
    float f1, f2;
    int op;
    const void *vx;
    void *vy;
    const int64_t *shape;   /* broadcast helpers */
    const int64_t *bstride;
    int nd;
} job;

/* ---- flat element-wise -------------------------------------------------- */
static void unary_fn(void *a, int64_t b, int64_t e, int tid) {
    job *j = a;
    int64_t s = b * CHUNK, t = e * CHUNK < j->n ? e * CHUNK : j->n;
    switch (j->op) {
    case TE_UNARY_SILU: j->c->k.silu(j->y + s, j->x + s, t - s); break;
    case TE_UNARY_GELU: j->c->k.gelu(j->y + s, j->x + s, t - s); break;
    case TE_UNARY_QUICK_GELU: j->c->k.quick_gelu(j->y + s, j->x + s, t - s); break;
    case 100: j->c->k.scale(j->y + s, j->x + s, t - s, j->f1, j->f2); break;
    case 101: memcpy((char *)j->vy + s, (const char *)j->vx + s, (size_t)(t - s)); break;
    case 102: /* leaky relu: a plain loop the compiler vectorises (memory-bound) */
        for (int64_t i = s; i < t; i++) j->y[i] = j->x[i] > 0.f ? j->x[i] : j->x[i] * j->f1;
        break;
    }
}

static void flat(te_cpu *c, job *j) { te_pool_for(c->pool, (j->n + CHUNK - 1) / CHUNK, unary_fn, j); }

te_status te_cpu_unary(te_backend *be, te_tensor *y, const te_tensor *x, te_unary_op op) {
    job j = { .c = te_cpu_of(be), .x = x->data, .y = y->data, .n = te_tensor_numel(x), .op = op };
    flat(j.c, &j);
    return TE_OK;
}

te_status te_cpu_leaky_relu(te_backend *be, te_tensor *y, const te_tensor *x, float slope) {
    job j = { .c = te_cpu_of(be), .x = x->data, .y = y->data, .n = te_tensor_numel(x), .op = 102, .f1 = slope };
    flat(j.c, &j);
    return TE_OK;
}

te_status te_cpu_scale(te_backend *be, te_tensor *y, const te_tensor *x, float s, float bias) {
    job j = { .c = te_cpu_of(be), .x = x->data, .y = y->data, .n = te_tensor_numel(x), .op = 100, .f1 = s, .f2 = bias };
    flat(j.c, &j);
    return TE_OK;
}

te_status te_cpu_copy(te_backend *be, te_tensor *y, const te_tensor *x) {
    if (y->data == x->data) return TE_OK;
    job j = { .c = te_cpu_of(be), .vx = x->data, .vy = y->data, .n = (int64_t)te_tensor_nbytes(x), .op = 101 };
    flat(j.c, &j);
    return TE_OK;
}

static void convert_fn(void *a, int64_t b, int64_t e, int tid) {
    job *j = a;
    int64_t s = b * CHUNK, t = e * CHUNK < j->n ? e * CHUNK : j->n, n = t - s;
    te_cpu_kernels *k = &j->c->k;
    te_dtype from = (te_dtype)j->c1, to = (te_dtype)j->c2;
    float *tmp = j->c->scratch[tid];
    const uint16_t *xs = (const uint16_t *)j->vx + s;
    uint16_t *ys = (uint16_t *)j->vy + s;
    if (from == TE_F32) {
        if (to == TE_F16) k->f32_to_f16(ys, (const float *)j->vx + s, n);
        else k->f32_to_bf16(ys, (const float *)j->vx + s, n);
    } else if (to == TE_F32) {
        if (from == TE_F16) k->f16_to_f32((float *)j->vy + s, xs, n);
        else k->bf16_to_f32((float *)j->vy + s, xs, n);
    } else { /* f16 <-> bf16 through f32 */
        if (from == TE_F16) k->f16_to_f32(tmp, xs, n); else k->bf16_to_f32(tmp, xs, n);
        if (to == TE_F16) k->f32_to_f16(ys, tmp, n); else k->f32_to_bf16(ys, tmp, n);
    }
}

te_status te_cpu_convert(te_backend *be, te_tensor *y, const te_tensor *x) {
    if (x->dtype == y->dtype) return te_cpu_copy(be, y, x);
    job j = { .c = te_cpu_of(be), .vx = x->data, .vy = y->data, .n = te_tensor_numel(x), .c1 = x->dtype, .c2 = y->dtype };
    te_pool_for(j.c->pool, (j.n + CHUNK - 1) / CHUNK, convert_fn, &j);
    return TE_OK;
}

/* ---- row-wise ------------------------------------------------------------ */
static void rows_fn(void *a, int64_t b, int64_t e, int tid) {
    job *j = a;
    te_cpu_kernels *k = &j->c->k;
    for (int64_t r = b; r < e; r++) {
        switch (j->op) {
        case 0: k->layer_norm(j->y + r * j->inner, j->x + r * j->inner, j->inner, j->g, j->b, j->f1); break;
        case 1: k->softmax(j->y + r * j->inner, j->x + r * j->inner, j->inner, j->f1); break;
        case 2: k->geglu(j->y + r * j->inner, j->x + r * 2 * j->inner, j->inner); break;
        case 3:
            memcpy(j->y + r * (j->c1 + j->c2), j->x + r * j->c1, sizeof(float) * j->c1);
            memcpy(j->y + r * (j->c1 + j->c2) + j->c1, j->x2 + r * j->c2, sizeof(float) * j->c2);
            break;
        }
    }
}

te_status te_cpu_layer_norm(te_backend *be, te_tensor *y, const te_tensor *x, const te_tensor *g,
                            const te_tensor *b, float eps) {
    job j = { .c = te_cpu_of(be), .x = x->data, .y = y->data, .g = g ? g->data : NULL, .b = b ? b->data : NULL,
              .inner = x->ne[x->ndim - 1], .f1 = eps, .op = 0 };
    te_pool_for(j.c->pool, te_tensor_rows(x), rows_fn, &j);
    return TE_OK;
}

te_status te_cpu_softmax(te_backend *be, te_tensor *y, const te_tensor *x, float scale) {
    job j = { .c = te_cpu_of(be), .x = x->data, .y = y->data, .inner = x->ne[x->ndim - 1], .f1 = scale, .op = 1 };
    te_pool_for(j.c->pool, te_tensor_rows(x), rows_fn, &j);
    return TE_OK;
}

te_status te_cpu_geglu(te_backend *be, te_tensor *y, const te_tensor *x) {
    job j = { .c = te_cpu_of(be), .x = x->data, .y = y->data, .inner = y->ne[y->ndim - 1], .op = 2 };
    te_pool_for(j.c->pool, te_tensor_rows(y), rows_fn, &j);
    return TE_OK;
}

te_status te_cpu_concat(te_backend *be, te_tensor *y, const te_tensor *a, const te_tensor *b) {
    job j = { .c = te_cpu_of(be), .x = a->data, .x2 = b->data, .y = y->data, .c1 = a->ne[a->ndim - 1],
              .c2 = b->ne[b->ndim - 1], .op = 3 };
    te_pool_for(j.c->pool, te_tensor_rows(y), rows_fn, &j);
    return TE_OK;
}

/* ---- group norm (channels last) ------------------------------------------ */
#define GN_SUB 128   /* rows summed in f32 before folding into f64 */

static void gn_stat_fn(void *a, int64_t b, int64_t e, int tid) {
    job *j = a;
    int64_t C = j->inner;
    float *tmp = j->c->scratch[tid];
    double *acc = (double *)(tmp + C + (C & 1));
    for (int64_t i = 0; i < C; i++) acc[i] = 0;
    for (int64_t r = b; r < e; r += GN_SUB) {
        int64_t n = e - r < GN_SUB ? e - r : GN_SUB;
        memset(tmp, 0, sizeof(float) * C);
        if (j->op == 0) j->c->k.col_sum(tmp, j->x + r * C, n, C);
        else j->c->k.col_sqdev(tmp, j->x + r * C, n, C, j->g);
        for (int64_t i = 0; i < C; i++) acc[i] += tmp[i];
    }
}

static void gn_apply_fn(void *a, int64_t b, int64_t e, int tid) {
    job *j = a;
    int64_t C = j->inner;
    j->c->k.affine(j->y + b * C, j->x + b * C, e - b, C, j->g, j->b, j->op);
}

te_status te_cpu_group_norm(te_backend *be, te_tensor *y, const te_tensor *x, const te_tensor *g,
                            const te_tensor *bt, int groups, float eps, int silu) {
    te_cpu *c = te_cpu_of(be);
    int64_t N = x->ne[0], C = x->ne[x->ndim - 1], P = te_tensor_numel(x) / (((N * C) != 0) ? N * C : 1), cg = C / groups;
    int nt = c->n_threads;
    if ((int64_t)(C + 2) * 3 + 16 > TE_CPU_SCRATCH_FLOATS)
        return te_backend_fail(be, TE_ERR_UNSUPPORTED, "group_norm: %lld channels exceed scratch", (long long)C);
    /* shared per-channel arrays live in thread 0's scratch after its partials */
    float *shared = c->scratch[0] + 3 * (C + 2);
    float *mean_c = shared, *ca = shared + C, *cb = shared + 2 * C;
    if ((3 * (C + 2)) + 3 * C > TE_CPU_SCRATCH_FLOATS)
        return te_backend_fail(be, TE_ERR_UNSUPPORTED, "group_norm: %lld channels exceed scratch", (long long)C);
    const float *gam = g ? g->data : NULL, *bet = bt ? bt->data : NULL;
    for (int64_t n = 0; n < N; n++) {
        const float *xn = (const float *)x->data + n * P * C;
        float *yn = (float *)y->data + n * P * C;
        double gstat[4096 / 1];
        double *gsum = gstat;   /* groups <= 4096 */
        if (groups > 4096) return te_backend_fail(be, TE_ERR_UNSUPPORTED, "group_norm: > 4096 groups");
        for (int pass = 0; pass < 2; pass++) {
            job j = { .c = c, .x = xn, .inner = C, .op = pass, .g = mean_c };
            int active = P < nt ? (int)P : nt;
            te_pool_for(c->pool, P, gn_stat_fn, &j);
            for (int gi = 0; gi < groups; gi++) gsum[gi] = 0;
            for (int t = 0; t < active; t++) {
                float *tmp = c->scratch[t];
                double *acc = (double *)(tmp + C + (C & 1));
                for (int64_t i = 0; i < C; i++) gsum[i / cg] += acc[i];
            }
            double cnt = (double)P * (double)cg;
            if (pass == 0) {
                for (int64_t i = 0; i < C; i++) mean_c[i] = (float)(gsum[i / cg] / cnt);
            } else {
                for (int64_t i = 0; i < C; i++) {
                    double rstd = 1.0 / sqrt(gsum[i / cg] / cnt + (double)eps);
                    double gm = gam ? gam[i] : 1.0, bb = bet ? bet[i] : 0.0;
                    ca[i] = (float)(rstd * gm);
                    cb[i] = (float)(bb - (double)mean_c[i] * rstd * gm);
                }
            }
        }
        job j = { .c = c, .x = xn, .y = yn, .inner = C, .g = ca, .b = cb, .op = silu };
        te_pool_for(c->pool, P, gn_apply_fn, &j);
    }
    return TE_OK;
}

/* ---- broadcast binary ------------------------------------------------------ */
static void bin_fn(void *a, int64_t b, int64_t e, int tid) {
    job *j = a;
    int mul = j->op;
    for (int64_t o = b; o < e; o++) {
        int64_t rem = o, boff = 0;
        for (int d = j->nd - 1; d >= 0; d--) {
            int64_t idx = rem % j->shape[d];
            rem /= j->shape[d];
            boff += idx * j->bstride[d];
        }
        const float *ar = j->x + o * j->inner;
        float *yr = j->y + o * j->inner;
        if (j->c1) j->c->k.vv(yr, ar, j->x2 + boff, j->inner, mul);
        else j->c->k.vs(yr, ar, j->x2[boff], j->inner, mul);
    }
}

te_status te_cpu_binary(te_backend *be, te_tensor *y, const te_tensor *a, const te_tensor *b, te_binary_op op) {
    int nd = a->ndim;
    int64_t bs[TE_MAX_DIMS] = {0}, bstr[TE_MAX_DIMS] = {0};
    for (int i = 0; i < nd; i++) {
        int bi = i - (nd - b->ndim);
        bs[i] = bi >= 0 ? b->ne[bi] : 1;
    }
    int64_t st = 1;
    for (int i = nd - 1; i >= 0; i--) { bstr[i] = bs[i] == 1 ? 0 : st; st *= bs[i]; }
    /* innermost run: suffix where b matches a (vector) or is all ones (scalar) */
    int k = nd, vec = bs[nd - 1] == a->ne[nd - 1] && a->ne[nd - 1] != 1;
    int64_t inner = 1;
    if (vec) { while (k > 0 && bs[k - 1] == a->ne[k - 1]) { k--; inner *= a->ne[k]; } }
    else { while (k > 0 && bs[k - 1] == 1) { k--; inner *= a->ne[k]; } }
    int64_t outer = inner ? te_tensor_numel(a) / inner : 0;
    job j = { .c = te_cpu_of(be), .x = a->data, .x2 = b->data, .y = y->data, .inner = inner, .c1 = vec,
              .op = op == TE_BINARY_MUL, .shape = a->ne, .bstride = bstr, .nd = k };
    te_pool_for(j.c->pool, outer, bin_fn, &j);
    return TE_OK;
}

/* ---- upsample, layout ----------------------------------------------------- */
static void up_fn(void *a, int64_t b, int64_t e, int tid) {
    job *j = a;
    int64_t H = j->c1, W = j->c2, C = j->inner;
    for (int64_t r = b; r < e; r++) {           /* r = n*H + iy */
        int64_t n = r / H, iy = r % H;
        const float *xr = j->x + (n * H + iy) * W * C;
        float *y0 = j->y + ((n * 2 * H) + 2 * iy) * 2 * W * C;
        for (int64_t ix = 0; ix < W; ix++) {
            memcpy(y0 + 2 * ix * C, xr + ix * C, sizeof(float) * C);
            memcpy(y0 + (2 * ix + 1) * C, xr + ix * C, sizeof(float) * C);
        }
        memcpy(y0 + 2 * W * C, y0, sizeof(float) * 2 * W * C);
    }
}

te_status te_cpu_upsample2x(te_backend *be, te_tensor *y, const te_tensor *x) {
    job j = { .c = te_cpu_of(be), .x = x->data, .y = y->data, .c1 = x->ne[1], .c2 = x->ne[2], .inner = x->ne[3] };
    te_pool_for(j.c->pool, x->ne[0] * x->ne[1], up_fn, &j);
    return TE_OK;
}

/* transpose [R, S] -> [S, R] per batch, in 32x32 tiles; work item = (n, row tile) */
static void tr_fn(void *a, int64_t b, int64_t e, int tid) {
    job *j = a;
    int64_t R = j->c1, S = j->c2, tiles = (R + 31) / 32;
    for (int64_t w = b; w < e; w++) {
        int64_t n = w / tiles, r0 = (w % tiles) * 32, r1 = r0 + 32 < R ? r0 + 32 : R;
        const float *xs = j->x + n * R * S;
        float *ys = j->y + n * R * S;
        for (int64_t s0 = 0; s0 < S; s0 += 32) {
            int64_t s1 = s0 + 32 < S ? s0 + 32 : S;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t s = s0; s < s1; s++) ys[s * R + r] = xs[r * S + s];
        }
    }
}

te_status te_cpu_layout(te_backend *be, te_tensor *y, const te_tensor *x, int to_nhwc) {
    int64_t N = x->ne[0], R, S;
    if (to_nhwc) { R = x->ne[1]; S = x->ne[2] * x->ne[3]; }      /* [C, HW] -> [HW, C] */
    else { R = x->ne[1] * x->ne[2]; S = x->ne[3]; }              /* [HW, C] -> [C, HW] */
    job j = { .c = te_cpu_of(be), .x = x->data, .y = y->data, .c1 = R, .c2 = S };
    te_pool_for(j.c->pool, N * ((R + 31) / 32), tr_fn, &j);
    return TE_OK;
}

/* ---- timestep embedding (tiny: computed in f64 on the calling thread) ------ */
te_status te_cpu_timestep(te_backend *be, te_tensor *y, const te_tensor *t, const te_timestep_params *p) {
    int64_t B = t->ne[0], half = p->dim / 2;
    const float *ts = t->data;
    float *out = y->data;
    for (int64_t bi = 0; bi < B; bi++) {
        float *row = out + bi * p->dim;
        for (int64_t i = 0; i < half; i++) {
            double ex = -log((double)p->max_period) * (double)i / ((double)half - (double)p->downscale_freq_shift);
            double arg = (double)p->scale * (double)ts[bi] * exp(ex);
            double s = sin(arg), c = cos(arg);
            if (p->flip_sin_to_cos) { row[i] = (float)c; row[half + i] = (float)s; }
            else { row[i] = (float)s; row[half + i] = (float)c; }
        }
        if (p->dim & 1) row[p->dim - 1] = 0.0f;
    }
    return TE_OK;
}
