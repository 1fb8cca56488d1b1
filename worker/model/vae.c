/* vae.c - AutoencoderKL encoder/decoder (see vae.h): loading and the untiled
 * forward. The weight structs live in vae_impl.h, shared with the tiled
 * forward (vae_tiled.c).
 *
 * Blocks (channels-last [B,H,W,C]):
 *   resnet: h = conv1(silu(gn1(x))); y = conv2(silu(gn2(h))) + shortcut(x)
 *   attn:   y = out(attention(q(gn(x)), k(gn(x)), v(gn(x)))) + x, one head
 *   down:   conv3x3(pad(x, (0,1,0,1)), stride 2): te_conv2d's asymmetric padding
 *   up:     conv3x3(upsample_nearest2x(x)) */
#include "vae.h"

#include "net_util.h"
#include "te_arena.h"
#include "te_ops.h"
#include "vae_impl.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GN_EPS TMV_GN_EPS
#define MAX_LEVELS TMV_MAX_LEVELS
#define MAX_LAYERS TMV_MAX_LAYERS

typedef tmv_res_w res_w;
typedef tmv_attn_w attn_w;
typedef tmv_conv_w conv_w;
typedef tmv_side_w side_w;

/* ---- names -------------------------------------------------------------- */

int tmv_map_levels(const char *name, int levels, char *out, size_t outlen) {
    char side[16], kind[32], rest[256];
    int i, j, n;
#define OUT(...) return (size_t)snprintf(out, outlen, __VA_ARGS__) < outlen ? 0 : -1
    if (!strncmp(name, "quant_conv.", 11) || !strncmp(name, "post_quant_conv.", 16)) OUT("%s", name);
    if (sscanf(name, "%15[^.].%n", side, &n) != 1 || (strcmp(side, "encoder") && strcmp(side, "decoder"))) return -1;
    const char *r = name + n;
    if (!strncmp(r, "conv_in.", 8) || !strncmp(r, "conv_out.", 9)) OUT("%s", name);
    if (!strncmp(r, "conv_norm_out.", 14)) OUT("%s.norm_out.%s", side, r + 14);
    /* resnet parts: only conv_shortcut is renamed */
    if (sscanf(r, "mid_block.resnets.%d.%255s", &j, rest) == 2) {
        if (!strncmp(rest, "conv_shortcut.", 14)) OUT("%s.mid.block_%d.nin_shortcut.%s", side, j + 1, rest + 14);
        OUT("%s.mid.block_%d.%s", side, j + 1, rest);
    }
    if (sscanf(r, "mid_block.attentions.0.%255s", rest) == 1) {
        static const char *const m[][2] = {{"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."},
                                           {"to_v.", "v."}, {"to_out.0.", "proj_out."}};
        for (size_t q = 0; q < 5; q++)
            if (!strncmp(rest, m[q][0], strlen(m[q][0]))) OUT("%s.mid.attn_1.%s%s", side, m[q][1], rest + strlen(m[q][0]));
        return -1;
    }
    int down = !strcmp(side, "encoder");
    if (sscanf(r, down ? "down_blocks.%d.%31[^.].%d.%255s" : "up_blocks.%d.%31[^.].%d.%255s", &i, kind, &j, rest) ==
        4) {
        int li = down ? i : levels - 1 - i;
        if (li < 0) return -1;
        if (!strcmp(kind, "resnets")) {
            if (!strncmp(rest, "conv_shortcut.", 14))
                OUT("%s.%s.%d.block.%d.nin_shortcut.%s", side, down ? "down" : "up", li, j, rest + 14);
            OUT("%s.%s.%d.block.%d.%s", side, down ? "down" : "up", li, j, rest);
        }
        if (!strcmp(kind, down ? "downsamplers" : "upsamplers") && j == 0)
            OUT("%s.%s.%d.%s.%s", side, down ? "down" : "up", li, down ? "downsample" : "upsample", rest);
    }
    return -1;
#undef OUT
}
int tmv_map_l1(const char *n, char *o, size_t l) { return tmv_map_levels(n, 1, o, l); }
int tmv_map_l2(const char *n, char *o, size_t l) { return tmv_map_levels(n, 2, o, l); }
int tmv_map_l3(const char *n, char *o, size_t l) { return tmv_map_levels(n, 3, o, l); }
int tmv_map_l4(const char *n, char *o, size_t l) { return tmv_map_levels(n, 4, o, l); }

/* ---- load --------------------------------------------------------------- */

static void read_config(const tck_model *m, int *groups, float *sf) {
    const char *tok = tck_tokenizer_dir(m);
    if (!tok) return;
    size_t n = strlen(tok);
    if (n < 9 || strcmp(tok + n - 9, "tokenizer")) return;
    char path[4200];
    snprintf(path, sizeof path, "%.*svae/config.json", (int)(n - 9), tok);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je), *v;
    if (!j) return;
    if ((v = json_object_get(j, "norm_num_groups")) && json_is_integer(v)) *groups = (int)json_integer_value(v);
    if ((v = json_object_get(j, "scaling_factor")) && json_is_number(v)) *sf = (float)json_number_value(v);
    json_decref(j);
}

static int load_res(tmv_vae *v, const tnu_src *s, const char *p, int cin, int cout, res_w *r, char *err,
                    size_t el) {
    char q[300];
#define N(x) (snprintf(q, sizeof q, "%s.%s", p, x), q)
    if (tnu_norm(v->w, s, N("norm1"), cin, &r->n1g, &r->n1b, err, el) ||
        tnu_conv(v->w, s, N("conv1"), cout, cin, 3, 3, &r->c1w, &r->c1b, err, el) ||
        tnu_norm(v->w, s, N("norm2"), cout, &r->n2g, &r->n2b, err, el) ||
        tnu_conv(v->w, s, N("conv2"), cout, cout, 3, 3, &r->c2w, &r->c2b, err, el))
        return -1;
    if (cin != cout && tnu_conv(v->w, s, N("conv_shortcut"), cout, cin, 1, 1, &r->scw, &r->scb, err, el)) return -1;
#undef N
    return 0;
}

static int load_attn(tmv_vae *v, const tnu_src *s, const char *p, int c, attn_w *a, char *err, size_t el) {
    char q[300];
#define N(x) (snprintf(q, sizeof q, "%s.%s", p, x), q)
    return tnu_norm(v->w, s, N("group_norm"), c, &a->ng, &a->nb, err, el) ||
                   tnu_linear(v->w, s, N("to_q"), c, c, TNU_SQUEEZE, &a->wq, &a->bq, err, el) ||
                   tnu_linear(v->w, s, N("to_k"), c, c, TNU_SQUEEZE, &a->wk, &a->bk, err, el) ||
                   tnu_linear(v->w, s, N("to_v"), c, c, TNU_SQUEEZE, &a->wv, &a->bv, err, el) ||
                   tnu_linear(v->w, s, N("to_out.0"), c, c, TNU_SQUEEZE, &a->wo, &a->bo, err, el)
               ? -1
               : 0;
#undef N
}

static int load_mid(tmv_vae *v, const tnu_src *s, const char *side, side_w *w, char *err, size_t el) {
    char p[128];
    int c = v->ch[v->levels - 1];
    for (int j = 0; j < 2; j++) {
        snprintf(p, sizeof p, "%s.mid_block.resnets.%d", side, j);
        if (load_res(v, s, p, c, c, &w->mid[j], err, el)) return -1;
    }
    snprintf(p, sizeof p, "%s.mid_block.attentions.0", side);
    if (load_attn(v, s, p, c, &w->attn, err, el)) return -1;
    snprintf(p, sizeof p, "%s.conv_norm_out", side);
    return tnu_norm(v->w, s, p, side[0] == 'e' ? c : v->ch[0], &w->nog, &w->nob, err, el);
}

int tmv_load(const tck_model *m, tmv_vae **out, const tmv_options *opt, char *err, size_t errlen) {
    *out = NULL;
    if (!opt || !opt->be) {
        snprintf(err, errlen, "tmv_load: no backend given");
        return -1;
    }
    tmv_vae *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    v->be = opt->be;
    v->arena_cap = opt->arena_cap;
    tnu_src s = {m, TCK_VAE, tmv_map_l1, NULL};
    char n[160];
    /* encoder names do not depend on the level count: probe with any mapper */
    for (v->levels = 0; v->levels < MAX_LEVELS; v->levels++) {
        snprintf(n, sizeof n, "encoder.down_blocks.%d.resnets.0.conv1.weight", v->levels);
        if (!tnu_has(&s, n)) break;
        if ((v->ch[v->levels] = (int)tnu_dim(&s, n, 0, err, errlen)) < 0) goto fail;
    }
    if (v->levels < 1 || v->levels > 4) {
        snprintf(err, errlen, "VAE: found %d encoder levels (encoder.down_blocks.N), expected 1..4", v->levels);
        goto fail;
    }
    static const tck_mapper maps[4] = {tmv_map_l1, tmv_map_l2, tmv_map_l3, tmv_map_l4};
    s.map = maps[v->levels - 1];
    for (v->layers = 0; v->layers < MAX_LAYERS - 1; v->layers++) {
        snprintf(n, sizeof n, "encoder.down_blocks.0.resnets.%d.conv1.weight", v->layers);
        if (!tnu_has(&s, n)) break;
    }
    if ((v->z = (int)tnu_dim(&s, "post_quant_conv.weight", 0, err, errlen)) < 0) goto fail;
    v->groups = 0;
    v->sf = 0;
    read_config(m, &v->groups, &v->sf);
    if (opt->norm_groups > 0) v->groups = opt->norm_groups;
    if (opt->scaling_factor > 0) v->sf = opt->scaling_factor;
    if (v->groups <= 0) v->groups = 32;
    if (v->sf <= 0) v->sf = 0.18215f;
    for (int i = 0; i < v->levels; i++)
        if (v->ch[i] % v->groups) {
            snprintf(err, errlen, "VAE: %d channels do not split into %d norm groups", v->ch[i], v->groups);
            goto fail;
        }
    if (te_weights_create(v->be, &v->w) != TE_OK || te_arena_create(v->be, opt->arena_cap, 0, &v->arena) != TE_OK) {
        snprintf(err, errlen, "VAE: %s", te_backend_error(v->be));
        goto fail;
    }
    int L = v->levels, top = v->ch[L - 1], z = v->z;
    char p[128];
    /* encoder */
    if (tnu_conv(v->w, &s, "encoder.conv_in", v->ch[0], 3, 3, 3, &v->enc.conv_in.w, &v->enc.conv_in.b, err, errlen))
        goto fail;
    for (int i = 0; i < L; i++) {
        for (int j = 0; j < v->layers; j++) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
            if (load_res(v, &s, p, j ? v->ch[i] : v->ch[i ? i - 1 : 0], v->ch[i], &v->enc.res[i][j], err, errlen))
                goto fail;
        }
        snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0.conv", i);
        if (i < L - 1 &&
            tnu_conv(v->w, &s, p, v->ch[i], v->ch[i], 3, 3, &v->enc.resample[i].w, &v->enc.resample[i].b, err, errlen))
            goto fail;
    }
    if (load_mid(v, &s, "encoder", &v->enc, err, errlen) ||
        tnu_conv(v->w, &s, "encoder.conv_out", 2 * z, top, 3, 3, &v->enc.conv_out.w, &v->enc.conv_out.b, err,
                 errlen) ||
        tnu_conv(v->w, &s, "quant_conv", 2 * z, 2 * z, 1, 1, &v->quant.w, &v->quant.b, err, errlen) ||
        tnu_conv(v->w, &s, "post_quant_conv", z, z, 1, 1, &v->post_quant.w, &v->post_quant.b, err, errlen))
        goto fail;
    /* decoder: up block i works at channels ch[L-1-i], layers+1 resnets */
    if (tnu_conv(v->w, &s, "decoder.conv_in", top, z, 3, 3, &v->dec.conv_in.w, &v->dec.conv_in.b, err, errlen) ||
        load_mid(v, &s, "decoder", &v->dec, err, errlen))
        goto fail;
    for (int i = 0, cin = top; i < L; i++) {
        int c = v->ch[L - 1 - i];
        for (int j = 0; j <= v->layers; j++, cin = c) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            if (load_res(v, &s, p, cin, c, &v->dec.res[i][j], err, errlen)) goto fail;
        }
        snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
        if (i < L - 1 && tnu_conv(v->w, &s, p, c, c, 3, 3, &v->dec.resample[i].w, &v->dec.resample[i].b, err, errlen))
            goto fail;
    }
    if (tnu_conv(v->w, &s, "decoder.conv_out", 3, v->ch[0], 3, 3, &v->dec.conv_out.w, &v->dec.conv_out.b, err,
                 errlen))
        goto fail;
    *out = v;
    return 0;
fail:
    tmv_free(v);
    return -1;
}

void tmv_free(tmv_vae *v) {
    if (!v) return;
    te_arena_destroy(v->arena);
    te_weights_destroy(v->w);
    free(v->host);
    free(v);
}

int tmv_latent_channels(const tmv_vae *v) { return v->z; }
int tmv_downscale(const tmv_vae *v) { return 1 << (v->levels - 1); }
float tmv_scaling_factor(const tmv_vae *v) { return v->sf; }

/* ---- forward ------------------------------------------------------------ */

#define CK(call)                                                                       \
    do {                                                                               \
        if ((call) != TE_OK) {                                                         \
            snprintf(err, errlen, "VAE: %s: %s", #call, te_backend_error(v->be));      \
            return -1;                                                                 \
        }                                                                              \
    } while (0)

static te_status new4(tmv_vae *v, te_tensor *t, const te_tensor *like, int64_t h, int64_t w, int64_t c) {
    int64_t ne[4] = {like->ne[0], h, w, c};
    return te_arena_tensor(v->arena, t, TE_F32, 4, ne);
}

/* *x (released) -> conv(*x) in a new tensor; k = kernel size, pad k/2. */
static int conv(tmv_vae *v, te_tensor *x, const conv_w *cw, int k, char *err, size_t errlen) {
    te_tensor y;
    te_conv2d_params p = {.stride_h = 1, .stride_w = 1, .pad_h = k / 2, .pad_w = k / 2};
    CK(new4(v, &y, x, x->ne[1], x->ne[2], cw->w->ne[0]));
    CK(te_conv2d(&y, x, cw->w, cw->b, NULL, &p));
    te_arena_release(v->arena, x);
    *x = y;
    return 0;
}

static int resnet(tmv_vae *v, te_tensor *x, const res_w *r, char *err, size_t errlen) {
    te_tensor h, h2, sc, y;
    te_conv2d_params p3 = {.stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1}, p1 = {.stride_h = 1, .stride_w = 1};
    int64_t H = x->ne[1], W = x->ne[2], co = r->c1w->ne[0];
    CK(new4(v, &h, x, H, W, x->ne[3]));
    CK(te_group_norm(&h, x, r->n1g, r->n1b, v->groups, GN_EPS, 1));
    CK(new4(v, &h2, x, H, W, co));
    CK(te_conv2d(&h2, &h, r->c1w, r->c1b, NULL, &p3));
    te_arena_release(v->arena, &h);
    CK(te_group_norm(&h2, &h2, r->n2g, r->n2b, v->groups, GN_EPS, 1));
    const te_tensor *res = x;
    if (r->scw) {
        CK(new4(v, &sc, x, H, W, co));
        CK(te_conv2d(&sc, x, r->scw, r->scb, NULL, &p1));
        res = &sc;
    }
    CK(new4(v, &y, x, H, W, co));
    CK(te_conv2d(&y, &h2, r->c2w, r->c2b, res, &p3));
    te_arena_release(v->arena, &h2);
    if (r->scw) te_arena_release(v->arena, &sc);
    te_arena_release(v->arena, x);
    *x = y;
    return 0;
}

static int attention(tmv_vae *v, te_tensor *x, const attn_w *a, char *err, size_t errlen) {
    int64_t B = x->ne[0], N = x->ne[1] * x->ne[2], C = x->ne[3], tk[3] = {B, N, C};
    te_tensor h, ht, xt, q, k, vv, o, y, yt;
    CK(new4(v, &h, x, x->ne[1], x->ne[2], C));
    CK(te_group_norm(&h, x, a->ng, a->nb, v->groups, GN_EPS, 0));
    te_tensor_reshape(&ht, &h, 3, tk);
    te_tensor_reshape(&xt, x, 3, tk);
    CK(te_arena_tensor(v->arena, &q, TE_F32, 3, tk));
    CK(te_arena_tensor(v->arena, &k, TE_F32, 3, tk));
    CK(te_arena_tensor(v->arena, &vv, TE_F32, 3, tk));
    CK(te_linear(&q, &ht, a->wq, a->bq, NULL));
    CK(te_linear(&k, &ht, a->wk, a->bk, NULL));
    CK(te_linear(&vv, &ht, a->wv, a->bv, NULL));
    te_arena_release(v->arena, &h);
    CK(te_arena_tensor(v->arena, &o, TE_F32, 3, tk));
    te_attn_params ap = {.n_heads = 1, .scale = 0, .layout = TE_ATTN_TOKENS};
    CK(te_attention(&o, &q, &k, &vv, &ap));
    te_arena_release(v->arena, &q);
    te_arena_release(v->arena, &k);
    te_arena_release(v->arena, &vv);
    CK(new4(v, &y, x, x->ne[1], x->ne[2], C));
    te_tensor_reshape(&yt, &y, 3, tk);
    CK(te_linear(&yt, &o, a->wo, a->bo, &xt));
    te_arena_release(v->arena, &o);
    te_arena_release(v->arena, x);
    *x = y;
    return 0;
}

static int mid_and_out(tmv_vae *v, te_tensor *x, const side_w *s, char *err, size_t errlen) {
    if (resnet(v, x, &s->mid[0], err, errlen) || attention(v, x, &s->attn, err, errlen) ||
        resnet(v, x, &s->mid[1], err, errlen))
        return -1;
    return 0;
}

static int norm_out(tmv_vae *v, te_tensor *x, const side_w *s, char *err, size_t errlen) {
    CK(te_group_norm(x, x, s->nog, s->nob, v->groups, GN_EPS, 1));
    return 0;
}

/* NCHW host -> NHWC arena tensor (the upload is skipped while planning). */
static int load_input(tmv_vae *v, te_tensor *x, const float *host, int B, int C, int H, int W, char *err,
                      size_t errlen) {
    int64_t nc[4] = {B, C, H, W}, nh[4] = {B, H, W, C};
    te_tensor t;
    CK(te_arena_tensor(v->arena, &t, TE_F32, 4, nc));
    if (!te_arena_planning(v->arena)) CK(te_tensor_upload(&t, host));
    CK(te_arena_tensor(v->arena, x, TE_F32, 4, nh));
    CK(te_nchw_to_nhwc(x, &t));
    te_arena_release(v->arena, &t);
    return 0;
}

static int store_output(tmv_vae *v, te_tensor *x, float *host, char *err, size_t errlen) {
    int64_t nc[4] = {x->ne[0], x->ne[3], x->ne[1], x->ne[2]};
    te_tensor t;
    CK(te_arena_tensor(v->arena, &t, TE_F32, 4, nc));
    CK(te_nhwc_to_nchw(&t, x));
    if (!te_arena_planning(v->arena)) CK(te_tensor_download(&t, host));
    te_arena_release(v->arena, &t);
    te_arena_release(v->arena, x);
    return 0;
}

static int encode_fwd(tmv_vae *v, const float *img, int B, int H, int W, float *moments, char *err, size_t errlen) {
    te_tensor x;
    if (load_input(v, &x, img, B, 3, H, W, err, errlen) || conv(v, &x, &v->enc.conv_in, 3, err, errlen)) return -1;
    for (int i = 0; i < v->levels; i++) {
        for (int j = 0; j < v->layers; j++)
            if (resnet(v, &x, &v->enc.res[i][j], err, errlen)) return -1;
        if (i < v->levels - 1) {
            /* diffusers: F.pad(x, (0, 1, 0, 1)) then a 3x3 stride-2 conv, no padding */
            te_tensor y;
            const conv_w *cw = &v->enc.resample[i];
            te_conv2d_params p = {.stride_h = 2, .stride_w = 2, .pad_bottom = 1, .pad_right = 1};
            CK(new4(v, &y, &x, (x.ne[1] - 2) / 2 + 1, (x.ne[2] - 2) / 2 + 1, cw->w->ne[0]));
            CK(te_conv2d(&y, &x, cw->w, cw->b, NULL, &p));
            te_arena_release(v->arena, &x);
            x = y;
        }
    }
    if (mid_and_out(v, &x, &v->enc, err, errlen) || norm_out(v, &x, &v->enc, err, errlen) ||
        conv(v, &x, &v->enc.conv_out, 3, err, errlen) || conv(v, &x, &v->quant, 1, err, errlen))
        return -1;
    return store_output(v, &x, moments, err, errlen);
}

static int decode_fwd(tmv_vae *v, const float *lat, int B, int h, int w, float *img, char *err, size_t errlen) {
    te_tensor x;
    if (load_input(v, &x, lat, B, v->z, h, w, err, errlen) || conv(v, &x, &v->post_quant, 1, err, errlen) ||
        conv(v, &x, &v->dec.conv_in, 3, err, errlen) || mid_and_out(v, &x, &v->dec, err, errlen))
        return -1;
    for (int i = 0; i < v->levels; i++) {
        for (int j = 0; j <= v->layers; j++)
            if (resnet(v, &x, &v->dec.res[i][j], err, errlen)) return -1;
        if (i < v->levels - 1) {
            te_tensor y;
            CK(new4(v, &y, &x, x.ne[1] * 2, x.ne[2] * 2, x.ne[3]));
            CK(te_upsample_nearest2x(&y, &x));
            te_arena_release(v->arena, &x);
            x = y;
            if (conv(v, &x, &v->dec.resample[i], 3, err, errlen)) return -1;
        }
    }
    if (norm_out(v, &x, &v->dec, err, errlen) || conv(v, &x, &v->dec.conv_out, 3, err, errlen)) return -1;
    return store_output(v, &x, img, err, errlen);
}

static float *host_buf(tmv_vae *v, size_t n) {
    if (n > v->host_n) {
        free(v->host);
        v->host = malloc(n * sizeof(float));
        v->host_n = v->host ? n : 0;
    }
    return v->host;
}

static int run2(tmv_vae *v, int enc, const float *in, int B, int H, int W, float *out, char *err, size_t errlen) {
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) te_arena_begin_plan(v->arena);
        else {
            if (te_arena_reserve(v->arena) != TE_OK) {
                snprintf(err, errlen, "VAE: %s", te_backend_error(v->be));
                return -1;
            }
            te_arena_begin_run(v->arena);
        }
        if (enc ? encode_fwd(v, in, B, H, W, out, err, errlen) : decode_fwd(v, in, B, H, W, out, err, errlen))
            return -1;
    }
    return 0;
}

int tmv_encode(tmv_vae *v, const float *image, int B, int H, int W, float *mean, float *std, char *err,
               size_t errlen) {
    int f = tmv_downscale(v);
    if (B < 1 || H < f || W < f || H % f || W % f) {
        snprintf(err, errlen, "VAE encode: image %dx%d (batch %d) must be a positive multiple of %d", W, H, B, f);
        return -1;
    }
    size_t hw = (size_t)(H / f) * (W / f), n = (size_t)B * 2 * v->z * hw;
    float *mom = host_buf(v, n);
    if (!mom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (run2(v, 1, image, B, H, W, mom, err, errlen)) return -1;
    tmv__moments_to_posterior(v, mom, B, hw, mean, std);
    return 0;
}

void tmv__moments_to_posterior(const tmv_vae *v, const float *mom, int B, size_t hw, float *mean, float *std) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < v->z; c++)
            for (size_t i = 0; i < hw; i++) {
                size_t o = ((size_t)b * v->z + c) * hw + i;
                float lv = mom[((size_t)b * 2 * v->z + v->z + c) * hw + i];
                lv = lv < -30.f ? -30.f : lv > 20.f ? 20.f : lv;
                mean[o] = mom[((size_t)b * 2 * v->z + c) * hw + i];
                std[o] = (float)exp(0.5 * (double)lv);
            }
}

int tmv_decode(tmv_vae *v, const float *latent, int B, int h, int w, float *image, char *err, size_t errlen) {
    if (B < 1 || h < 1 || w < 1) {
        snprintf(err, errlen, "VAE decode: latent %dx%d (batch %d)", w, h, B);
        return -1;
    }
    size_t n = (size_t)B * v->z * h * w;
    float *lat = host_buf(v, n);
    if (!lat) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) lat[i] = latent[i] / v->sf;
    return run2(v, 0, lat, B, h, w, image, err, errlen);
}

/* Arena high-water mark of the last encode/decode pass (bytes). */
size_t tmv_arena_peak(const tmv_vae *v) { return te_arena_peak(v->arena); }
