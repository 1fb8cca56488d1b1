/* te_ops.c - shape/dtype validation and dispatch of every op to the backend.
 *
 * Keeping validation here means backends (CPU, CUDA) contain only compute,
 * and plan mode (data == NULL outputs) is handled once for all of them. */
#include "te_ops.h"
#include <math.h>
#include <stdio.h>

#define SHP(t, buf) te_tensor_shape_str((t), buf, sizeof buf)

static te_status bad(const char *op, const te_tensor *a, const te_tensor *b, const char *why) {
    char s1[96], s2[96] = "";
    SHP(a, s1);
    if (b) SHP(b, s2);
    return te_backend_fail(a->be, TE_ERR_ARG, "%s: %s (%s%s%s)", op, why, s1, b ? " vs " : "", s2);
}

static int f32(const te_tensor *t) { return !t || t->dtype == TE_F32; }
/* conv/linear weights: f32, or bf16 (bf16 compute with f32 accumulation) */
static int mat_w(const te_tensor *t) { return t->dtype == TE_F32 || t->dtype == TE_BF16; }
static int same_be(const te_tensor *y, const te_tensor *x) { return !x || x->be == y->be; }
static int planned(const te_tensor *y) { return y->data == NULL; }
static int vec_of(const te_tensor *t, int64_t n) { return !t || (te_tensor_numel(t) == n && t->ne[t->ndim - 1] == n); }

#define CHECK_BE(op, y, x) do { if (!(y)->be) return TE_ERR_STATE; if (!same_be(y, x)) return bad(op, y, x, "tensors on different backends"); } while (0)

te_status te_conv2d(te_tensor *y, const te_tensor *x, te_tensor *w, const te_tensor *b,
                    const te_tensor *res, const te_conv2d_params *p) {
    CHECK_BE("conv2d", y, x); CHECK_BE("conv2d", y, w); CHECK_BE("conv2d", y, b); CHECK_BE("conv2d", y, res);
    if (!f32(y) || !f32(x) || !mat_w(w) || !f32(b) || !f32(res)) return bad("conv2d", y, w, "f32 only, bf16 weights allowed");
    if (x->ndim != 4 || y->ndim != 4 || w->ndim != 4) return bad("conv2d", x, w, "need x[N,H,W,C], w[K,C,kh,kw]");
    int pt, pb, pl, pr;
    te_conv2d_pads(p, &pt, &pb, &pl, &pr);
    int asym = p->pad_top | p->pad_bottom | p->pad_left | p->pad_right;
    if (p->stride_h < 1 || p->stride_w < 1 || p->pad_h < 0 || p->pad_w < 0 || pt < 0 || pb < 0 || pl < 0 || pr < 0 ||
        (asym && (p->pad_h || p->pad_w)))
        return bad("conv2d", x, w, "bad stride/padding");
    int64_t N = x->ne[0], H = x->ne[1], W = x->ne[2], C = x->ne[3], K = w->ne[0];
    if (w->ne[1] != C) return bad("conv2d", x, w, "channel mismatch");
    if (H + pt + pb < w->ne[2] || W + pl + pr < w->ne[3]) return bad("conv2d", x, w, "kernel larger than the padded input");
    int64_t Ho = (H + pt + pb - w->ne[2]) / p->stride_h + 1;
    int64_t Wo = (W + pl + pr - w->ne[3]) / p->stride_w + 1;
    if (y->ne[0] != N || y->ne[1] != Ho || y->ne[2] != Wo || y->ne[3] != K) return bad("conv2d", y, x, "output shape");
    if (!vec_of(b, K)) return bad("conv2d", b, w, "bias must be [K]");
    if (res && !te_tensor_same_shape(res, y)) return bad("conv2d", res, y, "residual shape");
    if (planned(y)) return TE_OK;
    return y->be->ops->conv2d(y->be, y, x, w, b, res, p);
}

te_status te_linear(te_tensor *y, const te_tensor *x, te_tensor *w, const te_tensor *b, const te_tensor *res) {
    CHECK_BE("linear", y, x); CHECK_BE("linear", y, w); CHECK_BE("linear", y, b); CHECK_BE("linear", y, res);
    if (!f32(y) || !f32(x) || !mat_w(w) || !f32(b) || !f32(res)) return bad("linear", y, w, "f32 only, bf16 weights allowed");
    if (w->ndim != 2 || x->ne[x->ndim - 1] != w->ne[1]) return bad("linear", x, w, "need x[..., K], w[N, K]");
    if (y->ne[y->ndim - 1] != w->ne[0] || te_tensor_rows(y) != te_tensor_rows(x)) return bad("linear", y, x, "output shape");
    if (!vec_of(b, w->ne[0])) return bad("linear", b, w, "bias must be [N]");
    if (res && te_tensor_numel(res) != te_tensor_numel(y)) return bad("linear", res, y, "residual shape");
    if (planned(y)) return TE_OK;
    return y->be->ops->linear(y->be, y, x, w, b, res);
}

/* view a tensor as [B, R, C] */
static int as3(const te_tensor *t, int64_t *B, int64_t *R, int64_t *C) {
    if (t->ndim < 2) return 0;
    *C = t->ne[t->ndim - 1];
    *R = t->ne[t->ndim - 2];
    *B = te_tensor_numel(t) / (((*C) * (*R)) != 0 ? (*C) * (*R) : 1);
    return 1;
}

te_status te_matmul(te_tensor *c, const te_tensor *a, const te_tensor *b, int ta, int tb, float alpha) {
    CHECK_BE("matmul", c, a); CHECK_BE("matmul", c, b);
    if (!f32(a) || !f32(b) || !f32(c)) return bad("matmul", a, b, "f32 only");
    int64_t Ba, Ra, Ca, Bb, Rb, Cb, Bc, Rc, Cc;
    if (!as3(a, &Ba, &Ra, &Ca) || !as3(b, &Bb, &Rb, &Cb) || !as3(c, &Bc, &Rc, &Cc)) return bad("matmul", a, b, "need >= 2-D");
    int64_t M = ta ? Ca : Ra, K = ta ? Ra : Ca, Kb = tb ? Cb : Rb, N = tb ? Rb : Cb;
    if (K != Kb) return bad("matmul", a, b, "inner dims differ");
    if (Rc != M || Cc != N) return bad("matmul", c, a, "output shape");
    if ((Ba != Bc && Ba != 1) || (Bb != Bc && Bb != 1)) return bad("matmul", a, b, "batch mismatch");
    if (planned(c)) return TE_OK;
    return c->be->ops->matmul(c->be, c, a, b, ta, tb, alpha);
}

te_status te_group_norm(te_tensor *y, const te_tensor *x, const te_tensor *g, const te_tensor *bt,
                        int groups, float eps, int fuse_silu) {
    CHECK_BE("group_norm", y, x); CHECK_BE("group_norm", y, g); CHECK_BE("group_norm", y, bt);
    if (!f32(y) || !f32(x) || !f32(g) || !f32(bt)) return bad("group_norm", y, x, "f32 only");
    if (!te_tensor_same_shape(x, y) || x->ndim < 2) return bad("group_norm", y, x, "shapes");
    int64_t C = x->ne[x->ndim - 1];
    if (groups < 1 || C % groups) return bad("group_norm", x, NULL, "channels not divisible by groups");
    if (!vec_of(g, C) || !vec_of(bt, C)) return bad("group_norm", x, g, "gamma/beta must be [C]");
    if (planned(y)) return TE_OK;
    return y->be->ops->group_norm(y->be, y, x, g, bt, groups, eps, fuse_silu);
}

te_status te_layer_norm(te_tensor *y, const te_tensor *x, const te_tensor *g, const te_tensor *bt, float eps) {
    CHECK_BE("layer_norm", y, x); CHECK_BE("layer_norm", y, g); CHECK_BE("layer_norm", y, bt);
    if (!f32(y) || !f32(x) || !f32(g) || !f32(bt)) return bad("layer_norm", y, x, "f32 only");
    if (!te_tensor_same_shape(x, y)) return bad("layer_norm", y, x, "shapes");
    int64_t C = x->ne[x->ndim - 1];
    if (!vec_of(g, C) || !vec_of(bt, C)) return bad("layer_norm", x, g, "gamma/beta must be [C]");
    if (planned(y)) return TE_OK;
    return y->be->ops->layer_norm(y->be, y, x, g, bt, eps);
}

static te_status unary(te_tensor *y, const te_tensor *x, te_unary_op op) {
    CHECK_BE("unary", y, x);
    if (!f32(y) || !f32(x) || te_tensor_numel(x) != te_tensor_numel(y)) return bad("unary", y, x, "f32, same size");
    if (planned(y)) return TE_OK;
    return y->be->ops->unary(y->be, y, x, op);
}
te_status te_silu(te_tensor *y, const te_tensor *x) { return unary(y, x, TE_UNARY_SILU); }
te_status te_gelu(te_tensor *y, const te_tensor *x) { return unary(y, x, TE_UNARY_GELU); }
te_status te_quick_gelu(te_tensor *y, const te_tensor *x) { return unary(y, x, TE_UNARY_QUICK_GELU); }

te_status te_leaky_relu(te_tensor *y, const te_tensor *x, float slope) {
    CHECK_BE("leaky_relu", y, x);
    if (!f32(y) || !f32(x) || te_tensor_numel(x) != te_tensor_numel(y)) return bad("leaky_relu", y, x, "f32, same size");
    if (!y->be->ops->leaky_relu)
        return te_backend_fail(y->be, TE_ERR_UNSUPPORTED, "leaky_relu: not implemented by the %s backend",
                               te_backend_name(y->be));
    if (planned(y)) return TE_OK;
    return y->be->ops->leaky_relu(y->be, y, x, slope);
}

te_status te_geglu(te_tensor *y, const te_tensor *x) {
    CHECK_BE("geglu", y, x);
    if (!f32(y) || !f32(x) || x->ndim != y->ndim) return bad("geglu", y, x, "f32, same rank");
    for (int i = 0; i < x->ndim - 1; i++) if (x->ne[i] != y->ne[i]) return bad("geglu", y, x, "leading dims");
    if (x->ne[x->ndim - 1] != 2 * y->ne[y->ndim - 1]) return bad("geglu", y, x, "last dim must halve");
    if (planned(y)) return TE_OK;
    return y->be->ops->geglu(y->be, y, x);
}

te_status te_softmax(te_tensor *y, const te_tensor *x, float scale) {
    CHECK_BE("softmax", y, x);
    if (!f32(y) || !f32(x) || !te_tensor_same_shape(x, y)) return bad("softmax", y, x, "f32, same shape");
    if (planned(y)) return TE_OK;
    return y->be->ops->softmax(y->be, y, x, scale);
}

te_status te_attention(te_tensor *o, const te_tensor *q, const te_tensor *k, const te_tensor *v,
                       const te_attn_params *p) {
    CHECK_BE("attention", o, q); CHECK_BE("attention", o, k); CHECK_BE("attention", o, v);
    if (!f32(o) || !f32(q) || !f32(k) || !f32(v)) return bad("attention", q, k, "f32 only");
    if (!te_tensor_same_shape(o, q) || !te_tensor_same_shape(k, v)) return bad("attention", q, k, "o like q, v like k");
    if (p->layout == TE_ATTN_TOKENS) {
        if (q->ndim != 3 || k->ndim != 3 || q->ne[0] != k->ne[0] || q->ne[2] != k->ne[2])
            return bad("attention", q, k, "tokens layout needs q[B,Nq,H*d], k[B,Nk,H*d]");
        if (p->n_heads < 1 || q->ne[2] % p->n_heads) return bad("attention", q, k, "width not divisible by heads");
        if (q->ne[2] / p->n_heads > 512) return bad("attention", q, k, "head dim > 512");
    } else {
        if (q->ndim != 4 || k->ndim != 4 || q->ne[0] != k->ne[0] || q->ne[1] != k->ne[1] || q->ne[3] != k->ne[3])
            return bad("attention", q, k, "BHND layout needs q[B,H,Nq,d], k[B,H,Nk,d]");
        if (q->ne[3] > 512) return bad("attention", q, k, "head dim > 512");
    }
    if (k->ne[k->ndim - 2] < 1) return bad("attention", q, k, "no keys");
    if (planned(o)) return TE_OK;
    return o->be->ops->attention(o->be, o, q, k, v, p);
}

static te_status binary(te_tensor *y, const te_tensor *a, const te_tensor *b, te_binary_op op) {
    CHECK_BE("binary", y, a); CHECK_BE("binary", y, b);
    if (!f32(y) || !f32(a) || !f32(b) || !te_tensor_same_shape(y, a)) return bad("binary", y, a, "f32, y like a");
    if (b->ndim > a->ndim) return bad("binary", a, b, "b has more dims");
    for (int i = 0; i < b->ndim; i++) {
        int64_t db = b->ne[b->ndim - 1 - i], da = a->ne[a->ndim - 1 - i];
        if (db != 1 && db != da) return bad("binary", a, b, "not broadcastable");
    }
    if (planned(y)) return TE_OK;
    return y->be->ops->binary(y->be, y, a, b, op);
}
te_status te_add(te_tensor *y, const te_tensor *a, const te_tensor *b) { return binary(y, a, b, TE_BINARY_ADD); }
te_status te_mul(te_tensor *y, const te_tensor *a, const te_tensor *b) { return binary(y, a, b, TE_BINARY_MUL); }

te_status te_scale(te_tensor *y, const te_tensor *x, float s, float bias) {
    CHECK_BE("scale", y, x);
    if (!f32(y) || !f32(x) || te_tensor_numel(x) != te_tensor_numel(y)) return bad("scale", y, x, "f32, same size");
    if (planned(y)) return TE_OK;
    return y->be->ops->scale(y->be, y, x, s, bias);
}

te_status te_concat_channels(te_tensor *y, const te_tensor *a, const te_tensor *b) {
    CHECK_BE("concat", y, a); CHECK_BE("concat", y, b);
    if (!f32(y) || !f32(a) || !f32(b) || a->ndim != y->ndim || b->ndim != y->ndim) return bad("concat", a, b, "f32, same rank");
    int d = y->ndim - 1;
    for (int i = 0; i < d; i++) if (a->ne[i] != y->ne[i] || b->ne[i] != y->ne[i]) return bad("concat", a, b, "leading dims");
    if (a->ne[d] + b->ne[d] != y->ne[d]) return bad("concat", y, a, "channel sum");
    if (planned(y)) return TE_OK;
    return y->be->ops->concat_channels(y->be, y, a, b);
}

te_status te_upsample_nearest2x(te_tensor *y, const te_tensor *x) {
    CHECK_BE("upsample", y, x);
    if (!f32(y) || !f32(x) || x->ndim != 4 || y->ndim != 4 || y->ne[0] != x->ne[0] || y->ne[1] != 2 * x->ne[1] ||
        y->ne[2] != 2 * x->ne[2] || y->ne[3] != x->ne[3]) return bad("upsample_nearest2x", y, x, "need y[N,2H,2W,C]");
    if (planned(y)) return TE_OK;
    return y->be->ops->upsample_nearest2x(y->be, y, x);
}

te_status te_interpolate(te_tensor *y, const te_tensor *x, te_interp_mode mode, int antialias) {
    CHECK_BE("interpolate", y, x);
    if (!f32(y) || !f32(x) || x->ndim != 4 || y->ndim != 4 || y->ne[0] != x->ne[0] || y->ne[3] != x->ne[3] ||
        y->ne[1] < 1 || y->ne[2] < 1 || x->ne[1] < 1 || x->ne[2] < 1) return bad("interpolate", y, x, "need x[N,H,W,C], y[N,Ho,Wo,C]");
    if (antialias && (mode == TE_INTERP_NEAREST || mode == TE_INTERP_NEAREST_EXACT)) return bad("interpolate", y, x, "antialias only for bilinear/bicubic");
    if (planned(y)) return TE_OK;
    return y->be->ops->interpolate(y->be, y, x, mode, antialias);
}

te_timestep_params te_timestep_params_sd(int dim) {
    te_timestep_params p = { dim, 1, 0.0f, 1.0f, 10000.0f };
    return p;
}

te_status te_timestep_embedding(te_tensor *y, const te_tensor *t, const te_timestep_params *p) {
    CHECK_BE("timestep_embedding", y, t);
    if (!f32(y) || !f32(t) || t->ndim != 1 || y->ndim != 2 || y->ne[0] != t->ne[0] || y->ne[1] != p->dim || p->dim < 2)
        return bad("timestep_embedding", y, t, "need t[B], y[B, dim]");
    if (p->dim / 2 - p->downscale_freq_shift == 0) return bad("timestep_embedding", y, t, "half_dim - shift == 0");
    if (planned(y)) return TE_OK;
    return y->be->ops->timestep_embedding(y->be, y, t, p);
}

static te_status layout(te_tensor *y, const te_tensor *x, int to_nhwc) {
    CHECK_BE("layout", y, x);
    if (!f32(y) || !f32(x) || x->ndim != 4 || y->ndim != 4) return bad("layout", y, x, "f32 4-D");
    int ok = to_nhwc ? (y->ne[0] == x->ne[0] && y->ne[1] == x->ne[2] && y->ne[2] == x->ne[3] && y->ne[3] == x->ne[1])
                     : (y->ne[0] == x->ne[0] && y->ne[1] == x->ne[3] && y->ne[2] == x->ne[1] && y->ne[3] == x->ne[2]);
    if (!ok) return bad(to_nhwc ? "nchw_to_nhwc" : "nhwc_to_nchw", y, x, "shapes");
    if (planned(y)) return TE_OK;
    return y->be->ops->nchw_nhwc(y->be, y, x, to_nhwc);
}
te_status te_nchw_to_nhwc(te_tensor *y, const te_tensor *x) { return layout(y, x, 1); }
te_status te_nhwc_to_nchw(te_tensor *y, const te_tensor *x) { return layout(y, x, 0); }

te_status te_convert(te_tensor *y, const te_tensor *x) {
    CHECK_BE("convert", y, x);
    if (te_tensor_numel(x) != te_tensor_numel(y)) return bad("convert", y, x, "element count");
    if (planned(y)) return TE_OK;
    return y->be->ops->convert(y->be, y, x);
}

te_status te_copy(te_tensor *y, const te_tensor *x) {
    CHECK_BE("copy", y, x);
    if (x->dtype != y->dtype || te_tensor_numel(x) != te_tensor_numel(y)) return bad("copy", y, x, "dtype/size");
    if (planned(y)) return TE_OK;
    return y->be->ops->copy(y->be, y, x);
}
