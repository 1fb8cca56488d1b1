/* unet_load.c - finds the UNet's architecture in a checkpoint and loads its
 * weights (see unet.h for what is read from where).
 *
 * Order: the block layout (levels, layers per block, which up levels have
 * attention) is found first, from diffusers names in a folder or from LDM
 * names in a single file, because the name mapping depends on it. From then
 * on every tensor is asked for by its diffusers name (mapped for single
 * files), its shape checked against what the architecture implies, and
 * converted to f32 into the engine's weights store (conv/linear weights:
 * TNU_MATRIX, bf16 on a bf16-weights backend), and its checkpoint pages are
 * released once copied (tnu_release). */
#include "unet_impl.h"

#include "net_util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tck_model *m;
    int single;
    tmu_layout lay;
    tmu_unet *u;
    tmu_options opt;
    int cfg_heads[TMU_MAX_LEVELS];   /* from config.json, 0 = none */
    int cfg_heads_n;
    char *err;
    size_t errlen;
} ld;

static int ident(const char *n, char *o, size_t l) {
    int k = snprintf(o, l, "%s", n);
    return k < 0 || (size_t)k >= l ? -1 : 0;
}

static const tst_tensor *find_ldm(ld *L, const char *ldm) {
    char tmp[600];
    return tck_get(L->m, TCK_UNET, ldm, ident, tmp, sizeof tmp);
}

/* By diffusers name; NULL if absent. If err is given, it says what was tried. */
static const tst_tensor *find_err(ld *L, const char *name, char *err, size_t errlen) {
    char ldm[512], tmp[600];
    if (!err) err = tmp, errlen = sizeof tmp;
    if (!L->single) return tck_get(L->m, TCK_UNET, name, NULL, err, errlen);
    if (tmu_map_name(&L->lay, name, ldm, sizeof ldm)) {
        snprintf(err, errlen, "no single-file name is known for %s", name);
        return NULL;
    }
    return tck_get(L->m, TCK_UNET, ldm, ident, err, errlen);
}

static const tst_tensor *findf(ld *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const tst_tensor *findf(ld *L, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return find_err(L, name, NULL, 0);
}

static const tst_tensor *find_ldmf(ld *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const tst_tensor *find_ldmf(ld *L, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return find_ldm(L, name);
}

/* Load prefix+suffix with the expected shape (ndim dims) through net_util
 * (shape check, exact f16/bf16 -> f32); flags TNU_SQUEEZE also accepts the
 * shape with trailing 1s (1x1 conv proj_in/proj_out of SD1), stored 2-D. */
static int get(ld *L, te_tensor **dst, int flags, int ndim, const int64_t *shape, const char *prefix,
               const char *suffix) {
    char name[320], why[600];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    const tst_tensor *t = find_err(L, name, why, sizeof why);
    if (!t) {
        snprintf(L->err, L->errlen, "unet: missing tensor %s: %s", name, why);
        return -1;
    }
    if (tnu_check_shape(t, name, ndim, shape, flags, why, sizeof why) ||
        tnu_add_rows_f(L->u->w, t, name, 0, ndim, shape, flags, dst, why, sizeof why)) {
        snprintf(L->err, L->errlen, "unet: %s", why);
        return -1;
    }
    return 0;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static int load_norm(ld *L, tmu_norm *n, const char *p, int c) {
    char q[300];
    snprintf(q, sizeof q, "%s.", p);
    return get(L, &n->g, 0, 1, SHAPE(c), q, "weight") || get(L, &n->b, 0, 1, SHAPE(c), q, "bias");
}

static int load_lin(ld *L, tmu_lin *l, const char *p, int out, int in, int bias) {
    char q[300];
    snprintf(q, sizeof q, "%s.", p);
    if (get(L, &l->w, TNU_MATRIX, 2, SHAPE(out, in), q, "weight")) return -1;
    l->b = NULL;
    return bias ? get(L, &l->b, 0, 1, SHAPE(out), q, "bias") : 0;
}

static int load_conv(ld *L, tmu_lin *l, const char *p, int out, int in, int k) {
    char q[300];
    snprintf(q, sizeof q, "%s.", p);
    return get(L, &l->w, TNU_MATRIX, 4, SHAPE(out, in, k, k), q, "weight") || get(L, &l->b, 0, 1, SHAPE(out), q, "bias");
}

/* proj_in / proj_out: linear (SD2) or 1x1 conv (SD1), always stored 2-D. */
static int load_proj(ld *L, tmu_lin *l, const char *p, int out, int in) {
    char q[300];
    snprintf(q, sizeof q, "%s.", p);
    return get(L, &l->w, TNU_SQUEEZE | TNU_MATRIX, 2, SHAPE(out, in), q, "weight") || get(L, &l->b, 0, 1, SHAPE(out), q, "bias");
}

static int load_res(ld *L, tmu_res *r, const char *p, int cin, int cout) {
    char q[256];
    const int te = L->u->cfg.time_embed_dim;
    r->cin = cin, r->cout = cout;
#define SUB(s) (snprintf(q, sizeof q, "%s.%s", p, s), q)
    if (load_norm(L, &r->n1, SUB("norm1"), cin) || load_conv(L, &r->c1, SUB("conv1"), cout, cin, 3) ||
        load_lin(L, &r->temb, SUB("time_emb_proj"), cout, te, 1) || load_norm(L, &r->n2, SUB("norm2"), cout) ||
        load_conv(L, &r->c2, SUB("conv2"), cout, cout, 3))
        return -1;
    r->skip.w = r->skip.b = NULL;
    if (cin != cout || findf(L, "%s.conv_shortcut.weight", p))
        if (load_conv(L, &r->skip, SUB("conv_shortcut"), cout, cin, 1)) return -1;
#undef SUB
    return 0;
}

/* Heads of an attention with `inner` channels at down level `level` (-1: mid). */
static int pick_heads(ld *L, int level, int inner, const char *p, int *heads) {
    const tmu_config *c = &L->u->cfg;
    int h, hd = 0;
    if (L->opt.heads > 0) h = L->opt.heads;
    else if (L->opt.head_dim > 0) hd = L->opt.head_dim, h = inner / hd;
    else if (L->cfg_heads_n == 1) h = L->cfg_heads[0];
    else if (L->cfg_heads_n > 0) h = L->cfg_heads[level < 0 ? L->cfg_heads_n - 1 : level < L->cfg_heads_n ? level : L->cfg_heads_n - 1];
    else if (c->linear_proj || c->context_dim == 1024) hd = 64, h = inner / hd;   /* SD2 rule */
    else h = 8;                                                                     /* SD1 rule */
    if (h <= 0 || inner % h) {
        snprintf(L->err, L->errlen,
                 "unet: %s: %d channels cannot be split into %d heads%s%s; set tmu_options.heads or head_dim",
                 p, inner, h, hd ? " of " : "", hd ? "the chosen head size" : "");
        return -1;
    }
    *heads = h;
    return 0;
}

static int load_attn(ld *L, tmu_attn *a, const char *p, int c, int level) {
    char q[256];
    const int ctx = L->u->cfg.context_dim;
    const tst_tensor *t = findf(L, "%s.proj_in.weight", p);
    if (!t) {
        char why[600];
        snprintf(q, sizeof q, "%s.proj_in.weight", p);
        find_err(L, q, why, sizeof why);
        snprintf(L->err, L->errlen, "unet: missing tensor %s: %s", q, why);
        return -1;
    }
    a->present = 1;
    a->c = c;
    a->inner = (int)t->shape[0];
    a->depth = L->u->cfg.depth;
    if (pick_heads(L, level, a->inner, p, &a->heads)) return -1;
    const int in = a->inner;
#define SUB(...) (snprintf(q, sizeof q, __VA_ARGS__), q)
    if (load_norm(L, &a->norm, SUB("%s.norm", p), c) || load_proj(L, &a->pin, SUB("%s.proj_in", p), in, c) ||
        load_proj(L, &a->pout, SUB("%s.proj_out", p), c, in))
        return -1;
    for (int d = 0; d < a->depth; d++) {
        tmu_tblock *b = &a->tb[d];
        const tst_tensor *ff = findf(L, "%s.transformer_blocks.%d.ff.net.0.proj.weight", p, d);
        b->ff = ff && ff->ndim == 2 ? (int)ff->shape[0] / 2 : 4 * in;
        const char *bp = "%s.transformer_blocks.%d.%s";
        if (load_norm(L, &b->n1, SUB(bp, p, d, "norm1"), in) || load_norm(L, &b->n2, SUB(bp, p, d, "norm2"), in) ||
            load_norm(L, &b->n3, SUB(bp, p, d, "norm3"), in) ||
            load_lin(L, &b->q1, SUB(bp, p, d, "attn1.to_q"), in, in, 0) ||
            load_lin(L, &b->k1, SUB(bp, p, d, "attn1.to_k"), in, in, 0) ||
            load_lin(L, &b->v1, SUB(bp, p, d, "attn1.to_v"), in, in, 0) ||
            load_lin(L, &b->o1, SUB(bp, p, d, "attn1.to_out.0"), in, in, 1) ||
            load_lin(L, &b->q2, SUB(bp, p, d, "attn2.to_q"), in, in, 0) ||
            load_lin(L, &b->k2, SUB(bp, p, d, "attn2.to_k"), in, ctx, 0) ||
            load_lin(L, &b->v2, SUB(bp, p, d, "attn2.to_v"), in, ctx, 0) ||
            load_lin(L, &b->o2, SUB(bp, p, d, "attn2.to_out.0"), in, in, 1) ||
            load_lin(L, &b->ff1, SUB(bp, p, d, "ff.net.0.proj"), 2 * b->ff, in, 1) ||
            load_lin(L, &b->ff2, SUB(bp, p, d, "ff.net.2"), in, b->ff, 1))
            return -1;
    }
#undef SUB
    return 0;
}

/* ---- architecture ------------------------------------------------------------ */

static int find_layout(ld *L) {
    tmu_layout *y = &L->lay;
    memset(y, 0, sizeof *y);
    if (!L->single) {
        while (y->levels < TMU_MAX_LEVELS + 1 && findf(L, "down_blocks.%d.resnets.0.conv1.weight", y->levels))
            y->levels++;
        while (y->layers_per_block < TMU_MAX_LAYERS + 1 &&
               findf(L, "down_blocks.0.resnets.%d.conv1.weight", y->layers_per_block))
            y->layers_per_block++;
    } else {
        int n = 0, first_op = 0;
        for (int k = 1; k < 64; k++) {
            int res = find_ldmf(L, "input_blocks.%d.0.in_layers.0.weight", k) != NULL;
            int op = find_ldmf(L, "input_blocks.%d.0.op.weight", k) != NULL;
            if (!res && !op) break;
            if (op && !first_op) first_op = k;
            n = k;
        }
        y->layers_per_block = first_op ? first_op - 1 : n;
        y->levels = first_op ? (n + 1) / (y->layers_per_block + 1) : 1;
    }
    if (y->levels < 1 || y->layers_per_block < 1) {
        snprintf(L->err, L->errlen, "unet: no down blocks found (%s)",
                 L->single ? "no model.diffusion_model.input_blocks.1.0.in_layers.0.weight"
                           : "no down_blocks.0.resnets.0.conv1.weight");
        return -1;
    }
    if (y->levels > TMU_MAX_LEVELS || y->layers_per_block > TMU_MAX_LAYERS) {
        snprintf(L->err, L->errlen, "unet: %d levels of %d layers: more than supported (%d, %d)", y->levels,
                 y->layers_per_block, TMU_MAX_LEVELS, TMU_MAX_LAYERS);
        return -1;
    }
    for (int i = 0; i < y->levels; i++)
        y->up_attn[i] = L->single ? find_ldmf(L, "output_blocks.%d.1.norm.weight", i * (y->layers_per_block + 1)) != NULL
                                  : findf(L, "up_blocks.%d.attentions.0.norm.weight", i) != NULL;
    return 0;
}

/* unet/config.json of a diffusers folder: heads, groups, time projection. */
static void read_config(ld *L) {
    const char *tok = tck_tokenizer_dir(L->m);
    if (!tok) return;
    char path[4200];
    size_t n = strlen(tok);
    if (n < 10 || strcmp(tok + n - 10, "/tokenizer")) return;
    snprintf(path, sizeof path, "%.*s/unet/config.json", (int)(n - 10), tok);
    json_t *j = json_load_file(path, 0, NULL);
    if (!j) return;
    tmu_config *c = &L->u->cfg;
    json_t *h = json_object_get(j, "num_attention_heads");
    if (!h || json_is_null(h)) h = json_object_get(j, "attention_head_dim");
    if (json_is_integer(h)) {
        L->cfg_heads[0] = (int)json_integer_value(h);
        L->cfg_heads_n = 1;
    } else if (json_is_array(h)) {
        for (size_t i = 0; i < json_array_size(h) && i < TMU_MAX_LEVELS; i++)
            L->cfg_heads[L->cfg_heads_n++] = (int)json_integer_value(json_array_get(h, i));
    }
    json_t *g = json_object_get(j, "norm_num_groups");
    if (json_is_integer(g)) c->groups = (int)json_integer_value(g);
    json_t *f = json_object_get(j, "flip_sin_to_cos");
    if (json_is_boolean(f)) c->flip_sin_to_cos = json_is_true(f);
    json_t *s = json_object_get(j, "freq_shift");
    if (json_is_number(s)) c->freq_shift = (float)json_number_value(s);
    json_decref(j);
}

static int find_config(ld *L) {
    tmu_config *c = &L->u->cfg;
    const tmu_layout *y = &L->lay;
    char why[600];
    c->layout = *y;
    c->groups = 32;
    c->flip_sin_to_cos = 1;
    c->freq_shift = 0;
    read_config(L);
    if (L->opt.groups > 0) c->groups = L->opt.groups;
    const tst_tensor *t = find_err(L, "conv_in.weight", why, sizeof why);
    if (!t || t->ndim != 4) {
        snprintf(L->err, L->errlen, "unet: no usable conv_in.weight: %s", t ? "not a 4-D tensor" : why);
        return -1;
    }
    c->in_channels = (int)t->shape[1];
    c->channels[0] = (int)t->shape[0];
    if (!(t = find_err(L, "time_embedding.linear_1.weight", why, sizeof why)) || t->ndim != 2) {
        snprintf(L->err, L->errlen, "unet: no usable time_embedding.linear_1.weight: %s", t ? "not 2-D" : why);
        return -1;
    }
    c->time_embed_dim = (int)t->shape[0];
    if (!(t = find_err(L, "conv_out.weight", why, sizeof why)) || t->ndim != 4) {
        snprintf(L->err, L->errlen, "unet: no usable conv_out.weight: %s", t ? "not 4-D" : why);
        return -1;
    }
    c->out_channels = (int)t->shape[0];
    const char *attn0 = NULL;
    char first[128] = "";
    for (int i = 0; i < y->levels; i++) {
        if (!(t = findf(L, "down_blocks.%d.resnets.0.conv1.weight", i)) || t->ndim != 4) {
            snprintf(L->err, L->errlen, "unet: no usable down_blocks.%d.resnets.0.conv1.weight", i);
            return -1;
        }
        c->channels[i] = (int)t->shape[0];
        c->down_attn[i] = findf(L, "down_blocks.%d.attentions.0.norm.weight", i) != NULL;
        if (c->down_attn[i] && !attn0) snprintf(first, sizeof first, "down_blocks.%d.attentions.0", i), attn0 = first;
    }
    c->mid_attn = findf(L, "mid_block.attentions.0.norm.weight") != NULL;
    if (!attn0 && c->mid_attn) attn0 = "mid_block.attentions.0";
    for (int i = 0; !attn0 && i < y->levels; i++)
        if (y->up_attn[i]) snprintf(first, sizeof first, "up_blocks.%d.attentions.0", i), attn0 = first;
    c->depth = 1;
    c->context_dim = 0;
    if (attn0) {
        if (!(t = findf(L, "%s.proj_in.weight", attn0))) {
            snprintf(L->err, L->errlen, "unet: missing %s.proj_in.weight", attn0);
            return -1;
        }
        c->linear_proj = t->ndim == 2;
        c->depth = 0;
        while (c->depth < TMU_MAX_DEPTH + 1 && findf(L, "%s.transformer_blocks.%d.norm1.weight", attn0, c->depth))
            c->depth++;
        if (c->depth < 1 || c->depth > TMU_MAX_DEPTH) {
            snprintf(L->err, L->errlen, "unet: %s has %d transformer blocks (1..%d supported)", attn0, c->depth,
                     TMU_MAX_DEPTH);
            return -1;
        }
        if (!(t = findf(L, "%s.transformer_blocks.0.attn2.to_k.weight", attn0)) || t->ndim != 2) {
            snprintf(L->err, L->errlen, "unet: missing or malformed %s.transformer_blocks.0.attn2.to_k.weight",
                     attn0);
            return -1;
        }
        c->context_dim = (int)t->shape[1];
    }
    return 0;
}

/* ---- weights ----------------------------------------------------------------- */

static int load_all(ld *L) {
    tmu_unet *u = L->u;
    tmu_config *c = &u->cfg;
    const int lv = L->lay.levels, nl = L->lay.layers_per_block;
    char p[128];
    int skip[1 + TMU_MAX_LEVELS * (TMU_MAX_LAYERS + 1)], ns = 0;
    if (load_conv(L, &u->conv_in, "conv_in", c->channels[0], c->in_channels, 3) ||
        load_lin(L, &u->t1, "time_embedding.linear_1", c->time_embed_dim, c->channels[0], 1) ||
        load_lin(L, &u->t2, "time_embedding.linear_2", c->time_embed_dim, c->time_embed_dim, 1))
        return -1;
    int ch = c->channels[0];
    skip[ns++] = ch;
    for (int i = 0; i < lv; i++) {
        int out = c->channels[i];
        for (int j = 0; j < nl; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", i, j);
            if (load_res(L, &u->down_res[i][j], p, ch, out)) return -1;
            ch = out;
            if (c->down_attn[i]) {
                snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", i, j);
                if (load_attn(L, &u->down_attn[i][j], p, ch, i)) return -1;
            }
            skip[ns++] = ch;
        }
        if (i < lv - 1) {
            snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0.conv", i);
            if (load_conv(L, &u->down_conv[i], p, ch, ch, 3)) return -1;
            skip[ns++] = ch;
        }
    }
    if (load_res(L, &u->mid_res[0], "mid_block.resnets.0", ch, ch)) return -1;
    if (c->mid_attn && load_attn(L, &u->mid_attn, "mid_block.attentions.0", ch, -1)) return -1;
    if (load_res(L, &u->mid_res[1], "mid_block.resnets.1", ch, ch)) return -1;
    if (c->mid_attn) c->mid_heads = u->mid_attn.heads;
    for (int i = 0; i < lv; i++) {
        int li = lv - 1 - i, out = c->channels[li];
        for (int j = 0; j <= nl; j++) {
            int sc = skip[--ns];
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, j);
            if (load_res(L, &u->up_res[i][j], p, ch + sc, out)) return -1;
            ch = out;
            if (L->lay.up_attn[i]) {
                snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, j);
                if (load_attn(L, &u->up_attn[i][j], p, ch, li)) return -1;
            }
        }
        if (i < lv - 1) {
            snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0.conv", i);
            if (load_conv(L, &u->up_conv[i], p, ch, ch, 3)) return -1;
        }
    }
    if (load_norm(L, &u->norm_out, "conv_norm_out", ch) ||
        load_conv(L, &u->conv_out, "conv_out", c->out_channels, ch, 3))
        return -1;
    for (int i = 0; i < lv; i++)
        c->heads[i] = u->down_attn[i][0].present ? u->down_attn[i][0].heads
                      : u->up_attn[lv - 1 - i][0].present ? u->up_attn[lv - 1 - i][0].heads : 0;
    return 0;
}

int tmu_load(tck_model *m, te_backend *be, const tmu_options *opts, tmu_unet **out, char *err, size_t errlen) {
    *out = NULL;
    tmu_unet *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "unet: out of memory");
        return -1;
    }
    u->be = be;
    if (te_weights_create(be, &u->w) != TE_OK) {
        snprintf(err, errlen, "unet: %s", te_backend_error(be));
        free(u);
        return -1;
    }
    ld L = {.m = m, .single = tck_is_single_file(m), .u = u, .err = err, .errlen = errlen};
    if (opts) L.opt = *opts;
    if (find_layout(&L) || find_config(&L) || load_all(&L)) {
        tmu_free(u);
        return -1;
    }
    *out = u;
    return 0;
}

void tmu_free(tmu_unet *u) {
    if (!u) return;
    te_weights_destroy(u->w);
    free(u);
}

const tmu_config *tmu_get_config(const tmu_unet *u) { return &u->cfg; }
size_t tmu_weight_bytes(const tmu_unet *u) { return te_weights_bytes(u->w); }
int tmu_tensor_count(const tmu_unet *u) { return te_weights_count(u->w); }
double tmu_last_flops(const tmu_unet *u) { return u->flops; }

void tmu_set_profile(tmu_unet *u, int on) { u->profile = on; }

void tmu_stages(const tmu_unet *u, tmu_stage out[TMU_STAGES]) {
    static const char *const names[TMU_STAGES] = {"other",          "resnet",       "transformer proj",
                                                  "self-attention", "cross-attention", "feed-forward",
                                                  "down/upsample"};
    for (int i = 0; i < TMU_STAGES; i++) {
        out[i].name = names[i];
        out[i].seconds = u->st_time[i];
        out[i].flops = u->st_flops[i];
    }
}
