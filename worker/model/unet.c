/* unet.c - the UNet forward pass (diffusers UNet2DConditionModel semantics)
 * written against te_ops only.
 *
 * Everything is channels-last: a ResNet block's [B, H, W, C] is the
 * transformer's [B, H*W, C] without a copy, and 1x1-conv projections are
 * plain linears. The same code runs in the arena's plan pass (shapes only)
 * and run pass; every activation is released as soon as its last reader has
 * been enqueued, so the peak is about: the skip tensors of the down path +
 * the widest transformer feed-forward ([B, N, 2F] + [B, N, F] at level 0).
 *
 * Fusions used: GroupNorm+SiLU, conv bias + residual (the ResNet shortcut is
 * the second conv's residual), linear bias + residual (attention output
 * projections, feed-forward out, proj_out adds the block's input). */
#include "unet_impl.h"

#include "te_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ST_OTHER, ST_RES, ST_PROJ, ST_SELF, ST_CROSS, ST_FF, ST_SAMPLE };

typedef struct {
    tmu_unet *u;
    te_arena *a;
    te_backend *be;
    char where[96];      /* the block being built, for messages */
    int stage, timing;   /* profiling (tmu_set_profile): current stage, timing this pass */
    double t_last;
    char *err;
    size_t errlen;
} fw;

static int fail(fw *f) {
    snprintf(f->err, f->errlen, "unet: %s: %s", f->where, te_backend_error(f->be));
    return -1;
}

#define CK(expr)                                                                                                   \
    do {                                                                                                           \
        if ((expr) != TE_OK) return fail(f);                                                                \
    } while (0)

static te_status alloc(fw *f, te_tensor *t, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t ne[4] = {a, b, c, d};
    return te_arena_tensor(f->a, t, TE_F32, ndim, ne);
}
static void rel(fw *f, te_tensor *t) { te_arena_release(f->a, t); }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Switch the profiling stage; when timing, charge the time since the last
 * switch (after the backend has finished the enqueued work) to the old one. */
static void stage(fw *f, int s) {
    if (f->timing) {
        te_backend_synchronize(f->be);
        double t = now_s();
        f->u->st_time[f->stage] += t - f->t_last;
        f->t_last = t;
    }
    f->stage = s;
}

static void count(fw *f, double flops) {
    f->u->flops += flops;
    f->u->st_flops[f->stage] += flops;
}

static te_status conv(fw *f, te_tensor *y, const te_tensor *x, const tmu_lin *l, const te_tensor *res, int stride,
                      int pad) {
    te_conv2d_params p = {.stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad};
    count(f, 2.0 * te_tensor_numel(y) * l->w->ne[1] * l->w->ne[2] * l->w->ne[3]);
    return te_conv2d(y, x, l->w, l->b, res, &p);
}

static te_status lin(fw *f, te_tensor *y, const te_tensor *x, const tmu_lin *l, const te_tensor *res) {
    count(f, 2.0 * te_tensor_numel(y) * l->w->ne[1]);
    return te_linear(y, x, l->w, l->b, res);
}

/* ---- blocks -------------------------------------------------------------------- */

/* ResnetBlock2D: y = conv2(silu(gn(conv1(silu(gn(x))) + proj(silu(temb))))) + shortcut(x).
 * temb is already silu-activated. Releases x when consume. */
static int resnet(fw *f, const tmu_res *r, te_tensor *x, int consume, const te_tensor *temb, te_tensor *y) {
    const int g = f->u->cfg.groups;
    const int64_t B = x->ne[0], H = x->ne[1], W = x->ne[2];
    te_tensor h, h2, e, e4, s;
    stage(f, ST_RES);
    CK(alloc(f, &h, 4, B, H, W, r->cin));
    CK(te_group_norm(&h, x, r->n1.g, r->n1.b, g, 1e-5f, 1));
    CK(alloc(f, &h2, 4, B, H, W, r->cout));
    CK(conv(f, &h2, &h, &r->c1, NULL, 1, 1));
    rel(f, &h);
    CK(alloc(f, &e, 2, B, r->cout, 0, 0));
    CK(lin(f, &e, temb, &r->temb, NULL));
    te_tensor_reshape(&e4, &e, 4, (int64_t[]){B, 1, 1, r->cout});
    CK(te_add(&h2, &h2, &e4));
    rel(f, &e);
    CK(te_group_norm(&h2, &h2, r->n2.g, r->n2.b, g, 1e-5f, 1));
    const te_tensor *res = x;
    if (r->skip.w) {
        CK(alloc(f, &s, 4, B, H, W, r->cout));
        CK(conv(f, &s, x, &r->skip, NULL, 1, 0));
        if (consume) rel(f, x);
        res = &s;
    }
    CK(alloc(f, y, 4, B, H, W, r->cout));
    CK(conv(f, y, &h2, &r->c2, res, 1, 1));
    rel(f, &h2);
    if (r->skip.w) rel(f, &s);
    else if (consume) rel(f, x);
    return 0;
}

/* softmax(q k^T / sqrt(d)) v with heads; releases q, k, v. */
static int attend(fw *f, te_tensor *o, te_tensor *q, te_tensor *k, te_tensor *v, int heads) {
    te_attn_params p = {.n_heads = heads, .scale = 0, .layout = TE_ATTN_TOKENS};
    CK(alloc(f, o, 3, q->ne[0], q->ne[1], q->ne[2], 0));
    count(f, 4.0 * q->ne[0] * q->ne[1] * k->ne[1] * q->ne[2]);
    CK(te_attention(o, q, k, v, &p));
    rel(f, q), rel(f, k), rel(f, v);
    return 0;
}

/* BasicTransformerBlock on cur [B, N, C] (released; *out replaces it). */
static int tblock(fw *f, const tmu_tblock *b, int heads, te_tensor *cur, const te_tensor *ctx, te_tensor *out) {
    const int64_t B = cur->ne[0], N = cur->ne[1], C = cur->ne[2], T = ctx->ne[1];
    te_tensor n, q, k, v, o, x1, x2, g2, g;
    /* self-attention */
    stage(f, ST_SELF);
    CK(alloc(f, &n, 3, B, N, C, 0));
    CK(te_layer_norm(&n, cur, b->n1.g, b->n1.b, 1e-5f));
    CK(alloc(f, &q, 3, B, N, C, 0));
    CK(lin(f, &q, &n, &b->q1, NULL));
    CK(alloc(f, &k, 3, B, N, C, 0));
    CK(lin(f, &k, &n, &b->k1, NULL));
    CK(alloc(f, &v, 3, B, N, C, 0));
    CK(lin(f, &v, &n, &b->v1, NULL));
    rel(f, &n);
    if (attend(f, &o, &q, &k, &v, heads)) return -1;
    CK(alloc(f, &x1, 3, B, N, C, 0));
    CK(lin(f, &x1, &o, &b->o1, cur));
    rel(f, &o), rel(f, cur);
    /* cross-attention */
    stage(f, ST_CROSS);
    CK(alloc(f, &n, 3, B, N, C, 0));
    CK(te_layer_norm(&n, &x1, b->n2.g, b->n2.b, 1e-5f));
    CK(alloc(f, &q, 3, B, N, C, 0));
    CK(lin(f, &q, &n, &b->q2, NULL));
    rel(f, &n);
    CK(alloc(f, &k, 3, B, T, C, 0));
    CK(lin(f, &k, ctx, &b->k2, NULL));
    CK(alloc(f, &v, 3, B, T, C, 0));
    CK(lin(f, &v, ctx, &b->v2, NULL));
    if (attend(f, &o, &q, &k, &v, heads)) return -1;
    CK(alloc(f, &x2, 3, B, N, C, 0));
    CK(lin(f, &x2, &o, &b->o2, &x1));
    rel(f, &o), rel(f, &x1);
    /* GEGLU feed-forward */
    stage(f, ST_FF);
    CK(alloc(f, &n, 3, B, N, C, 0));
    CK(te_layer_norm(&n, &x2, b->n3.g, b->n3.b, 1e-5f));
    CK(alloc(f, &g2, 3, B, N, 2 * b->ff, 0));
    CK(lin(f, &g2, &n, &b->ff1, NULL));
    rel(f, &n);
    CK(alloc(f, &g, 3, B, N, b->ff, 0));
    CK(te_geglu(&g, &g2));
    rel(f, &g2);
    CK(alloc(f, out, 3, B, N, C, 0));
    CK(lin(f, out, &g, &b->ff2, &x2));
    rel(f, &g), rel(f, &x2);
    return 0;
}

/* Transformer2DModel: y = proj_out(blocks(proj_in(gn(x)))) + x. x is kept. */
static int transformer(fw *f, const tmu_attn *at, const te_tensor *x, const te_tensor *ctx, te_tensor *y) {
    const int64_t B = x->ne[0], H = x->ne[1], W = x->ne[2], C = x->ne[3], N = H * W;
    te_tensor h, ht, cur, nxt, xt, yt;
    stage(f, ST_PROJ);
    CK(alloc(f, &h, 4, B, H, W, C));
    CK(te_group_norm(&h, x, at->norm.g, at->norm.b, f->u->cfg.groups, 1e-6f, 0));
    te_tensor_reshape(&ht, &h, 3, (int64_t[]){B, N, C});
    CK(alloc(f, &cur, 3, B, N, at->inner, 0));
    CK(lin(f, &cur, &ht, &at->pin, NULL));
    rel(f, &h);
    for (int d = 0; d < at->depth; d++) {
        if (tblock(f, &at->tb[d], at->heads, &cur, ctx, &nxt)) return -1;
        cur = nxt;
    }
    stage(f, ST_PROJ);
    CK(alloc(f, y, 4, B, H, W, C));
    te_tensor_reshape(&yt, y, 3, (int64_t[]){B, N, C});
    te_tensor_reshape(&xt, x, 3, (int64_t[]){B, N, C});
    CK(lin(f, &yt, &cur, &at->pout, &xt));
    rel(f, &cur);
    return 0;
}

/* ---- timestep embedding ----------------------------------------------------------- */

static int time_embed(fw *f, const te_tensor *t, te_tensor *temb) {
    const tmu_config *c = &f->u->cfg;
    const int64_t B = t->ne[0];
    const int dim = c->channels[0];
    te_tensor e, h;
    te_timestep_params tp = te_timestep_params_sd(dim);
    tp.flip_sin_to_cos = c->flip_sin_to_cos;
    tp.downscale_freq_shift = c->freq_shift;
    CK(alloc(f, &e, 2, B, dim, 0, 0));
    CK(te_timestep_embedding(&e, t, &tp));
    CK(alloc(f, &h, 2, B, c->time_embed_dim, 0, 0));
    CK(lin(f, &h, &e, &f->u->t1, NULL));
    rel(f, &e);
    CK(te_silu(&h, &h));
    CK(alloc(f, temb, 2, B, c->time_embed_dim, 0, 0));
    CK(lin(f, temb, &h, &f->u->t2, NULL));
    rel(f, &h);
    /* every consumer (the ResNet time projections) applies SiLU first */
    CK(te_silu(temb, temb));
    return 0;
}

/* ---- the network ------------------------------------------------------------------- */

int tmu_forward(tmu_unet *u, te_arena *a, const te_tensor *x, const te_tensor *t, const te_tensor *ctx,
                te_tensor *out, char *err, size_t errlen) {
    fw F = {.u = u, .a = a, .be = u->be, .err = err, .errlen = errlen}, *f = &F;
    const tmu_config *c = &u->cfg;
    const int lv = c->layout.levels, nl = c->layout.layers_per_block;
    u->flops = 0;
    memset(u->st_flops, 0, sizeof u->st_flops);
    f->stage = ST_OTHER;
    f->timing = u->profile && !te_arena_planning(a);
    if (f->timing) {
        memset(u->st_time, 0, sizeof u->st_time);
        te_backend_synchronize(u->be);
        f->t_last = now_s();
    }
    snprintf(f->where, sizeof f->where, "input");
    if (x->ndim != 4 || x->ne[3] != c->in_channels || t->ndim != 1 || t->ne[0] != x->ne[0] || ctx->ndim != 3 ||
        ctx->ne[0] != x->ne[0] || ctx->ne[2] != c->context_dim) {
        char sx[64], st[64], sc[64];
        snprintf(err, errlen,
                 "unet: inputs x %s, t %s, context %s; expected x [B, h, w, %d] (NHWC), t [B], context [B, T, %d]",
                 te_tensor_shape_str(x, sx, sizeof sx), te_tensor_shape_str(t, st, sizeof st),
                 te_tensor_shape_str(ctx, sc, sizeof sc), c->in_channels, c->context_dim);
        return -1;
    }
    const int64_t B = x->ne[0];
    te_tensor temb, h, y, skip[1 + TMU_MAX_LEVELS * (TMU_MAX_LAYERS + 1)];
    int ns = 0;
    snprintf(f->where, sizeof f->where, "time_embedding");
    if (time_embed(f, t, &temb)) return -1;
    snprintf(f->where, sizeof f->where, "conv_in");
    CK(alloc(f, &h, 4, B, x->ne[1], x->ne[2], c->channels[0]));
    CK(conv(f, &h, x, &u->conv_in, NULL, 1, 1));
    skip[ns++] = h;
    /* down: every block output is a skip; a resnet output feeding an attention is not */
    for (int i = 0; i < lv; i++) {
        for (int j = 0; j < nl; j++) {
            snprintf(f->where, sizeof f->where, "down_blocks.%d.resnets.%d", i, j);
            if (resnet(f, &u->down_res[i][j], &h, 0, &temb, &y)) return -1;
            h = y;
            if (u->down_attn[i][j].present) {
                snprintf(f->where, sizeof f->where, "down_blocks.%d.attentions.%d", i, j);
                if (transformer(f, &u->down_attn[i][j], &h, ctx, &y)) return -1;
                rel(f, &h);
                h = y;
            }
            skip[ns++] = h;
        }
        if (i < lv - 1) {
            snprintf(f->where, sizeof f->where, "down_blocks.%d.downsamplers.0", i);
            stage(f, ST_SAMPLE);
            CK(alloc(f, &y, 4, B, (h.ne[1] + 1) / 2, (h.ne[2] + 1) / 2, h.ne[3]));
            CK(conv(f, &y, &h, &u->down_conv[i], NULL, 2, 1));
            h = y;
            skip[ns++] = h;
        }
    }
    /* middle (its input is the last skip: kept) */
    snprintf(f->where, sizeof f->where, "mid_block.resnets.0");
    if (resnet(f, &u->mid_res[0], &h, 0, &temb, &y)) return -1;
    h = y;
    if (u->mid_attn.present) {
        snprintf(f->where, sizeof f->where, "mid_block.attentions.0");
        if (transformer(f, &u->mid_attn, &h, ctx, &y)) return -1;
        rel(f, &h);
        h = y;
    }
    snprintf(f->where, sizeof f->where, "mid_block.resnets.1");
    if (resnet(f, &u->mid_res[1], &h, 1, &temb, &y)) return -1;
    h = y;
    /* up: concatenate the skips (x first, like torch.cat([x, skip], 1)) */
    for (int i = 0; i < lv; i++) {
        for (int j = 0; j <= nl; j++) {
            te_tensor s = skip[--ns], cat;
            snprintf(f->where, sizeof f->where, "up_blocks.%d.resnets.%d", i, j);
            stage(f, ST_OTHER);
            if (s.ne[1] != h.ne[1] || s.ne[2] != h.ne[2]) {
                snprintf(err, errlen, "unet: %s: skip is %lldx%lld, the path %lldx%lld", f->where,
                         (long long)s.ne[1], (long long)s.ne[2], (long long)h.ne[1], (long long)h.ne[2]);
                return -1;
            }
            CK(alloc(f, &cat, 4, B, h.ne[1], h.ne[2], h.ne[3] + s.ne[3]));
            CK(te_concat_channels(&cat, &h, &s));
            rel(f, &h), rel(f, &s);
            if (resnet(f, &u->up_res[i][j], &cat, 1, &temb, &y)) return -1;
            h = y;
            if (u->up_attn[i][j].present) {
                snprintf(f->where, sizeof f->where, "up_blocks.%d.attentions.%d", i, j);
                if (transformer(f, &u->up_attn[i][j], &h, ctx, &y)) return -1;
                rel(f, &h);
                h = y;
            }
        }
        if (i < lv - 1) {
            /* to the size of the next skip (2x, or that size for odd latents, as diffusers) */
            const te_tensor *s = &skip[ns - 1];
            te_tensor up;
            snprintf(f->where, sizeof f->where, "up_blocks.%d.upsamplers.0", i);
            stage(f, ST_SAMPLE);
            CK(alloc(f, &up, 4, B, s->ne[1], s->ne[2], h.ne[3]));
            if (s->ne[1] == 2 * h.ne[1] && s->ne[2] == 2 * h.ne[2]) CK(te_upsample_nearest2x(&up, &h));
            else CK(te_interpolate(&up, &h, TE_INTERP_NEAREST, 0));
            rel(f, &h);
            CK(alloc(f, &y, 4, B, up.ne[1], up.ne[2], up.ne[3]));
            CK(conv(f, &y, &up, &u->up_conv[i], NULL, 1, 1));
            rel(f, &up);
            h = y;
        }
    }
    rel(f, &temb);
    snprintf(f->where, sizeof f->where, "conv_out");
    stage(f, ST_OTHER);
    CK(te_group_norm(&h, &h, u->norm_out.g, u->norm_out.b, c->groups, 1e-5f, 1));
    CK(alloc(f, out, 4, B, h.ne[1], h.ne[2], c->out_channels));
    CK(conv(f, out, &h, &u->conv_out, NULL, 1, 1));
    rel(f, &h);
    stage(f, ST_OTHER);
    return 0;
}

/* One pass of the host-float convenience. */
static int pass_nchw(tmu_unet *u, te_arena *a, const float *x, int B, int h, int w, const float *t,
                     const float *ctx, int T, float *out, char *err, size_t errlen) {
    fw F = {.u = u, .a = a, .be = u->be, .err = err, .errlen = errlen}, *f = &F;
    const tmu_config *c = &u->cfg;
    te_tensor xc, xn, tt, cx, o, oc;
    snprintf(f->where, sizeof f->where, "input");
    CK(alloc(f, &xc, 4, B, c->in_channels, h, w));
    if (xc.data) CK(te_tensor_upload(&xc, x));
    CK(alloc(f, &xn, 4, B, h, w, c->in_channels));
    CK(te_nchw_to_nhwc(&xn, &xc));
    rel(f, &xc);
    CK(alloc(f, &tt, 1, B, 0, 0, 0));
    if (tt.data) CK(te_tensor_upload(&tt, t));
    CK(alloc(f, &cx, 3, B, T, c->context_dim, 0));
    if (cx.data) CK(te_tensor_upload(&cx, ctx));
    if (tmu_forward(u, a, &xn, &tt, &cx, &o, err, errlen)) return -1;
    rel(f, &xn), rel(f, &tt), rel(f, &cx);
    snprintf(f->where, sizeof f->where, "output");
    CK(alloc(f, &oc, 4, B, c->out_channels, h, w));
    CK(te_nhwc_to_nchw(&oc, &o));
    rel(f, &o);
    if (oc.data) CK(te_tensor_download(&oc, out));
    rel(f, &oc);
    return 0;
}

int tmu_forward_nchw(tmu_unet *u, te_arena *a, const float *x, int B, int h, int w, const float *t,
                     const float *ctx, int T, float *out, char *err, size_t errlen) {
    if (B < 1 || h < 1 || w < 1 || T < 1) {
        snprintf(err, errlen, "unet: bad sizes B=%d h=%d w=%d T=%d", B, h, w, T);
        return -1;
    }
    te_arena_begin_plan(a);
    if (pass_nchw(u, a, x, B, h, w, t, ctx, T, out, err, errlen)) return -1;
    if (te_arena_reserve(a) != TE_OK) {
        snprintf(err, errlen, "unet: %s", te_backend_error(u->be));
        return -1;
    }
    te_arena_begin_run(a);
    return pass_nchw(u, a, x, B, h, w, t, ctx, T, out, err, errlen);
}

int tmu_plan_bytes(tmu_unet *u, te_arena *a, int B, int h, int w, int T, size_t *bytes, char *err, size_t errlen) {
    if (B < 1 || h < 1 || w < 1 || T < 1) {
        snprintf(err, errlen, "unet: bad sizes B=%d h=%d w=%d T=%d", B, h, w, T);
        return -1;
    }
    /* the plan pass only: shapes and lifetimes, no memory, no arithmetic */
    te_arena_begin_plan(a);
    if (pass_nchw(u, a, NULL, B, h, w, NULL, NULL, T, NULL, err, errlen)) return -1;
    *bytes = te_arena_peak(a);
    return 0;
}
