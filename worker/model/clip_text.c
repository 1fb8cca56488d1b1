/* clip_text.c - CLIP text encoder for SD1/SD2 (see clip_text.h).
 *
 * Per layer (pre-LN transformer):
 *   x = x + out_proj(causal_attn(q(ln1 x), k(ln1 x), v(ln1 x)))
 *   x = x + fc2(act(fc1(ln2 x)))
 * then final_layer_norm. Embedding lookup is done on the host from a copy of
 * the token table kept in its stored dtype (f16 tables stay half size). */
#include "clip_text.h"

#include "net_util.h"
#include "te_arena.h"
#include "te_ops.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5f

typedef struct tmt_layer {
    te_tensor *ln1g, *ln1b, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo, *ln2g, *ln2b, *w1, *b1, *w2, *b2;
} tmt_layer;

struct tmt_encoder {
    te_backend *be;
    te_weights *w;
    te_arena *arena;
    int C, I, heads, layers, family, quick_gelu;
    tmt_layer *layer;
    te_tensor *pos, *lnfg, *lnfb;
    unsigned char *tok;       /* [vocab, C] in tok_dtype */
    tst_dtype tok_dtype;
    int64_t vocab;
    float *hq, *hk, *hv, *ho;   /* host scratch for the causal attention */
    int host_b;
};

/* ---- names -------------------------------------------------------------- */

int tmt_map_sd1(const char *name, char *out, size_t outlen) {
    if (strncmp(name, "text_model.", 11)) return -1;
    return (size_t)snprintf(out, outlen, "%s", name) < outlen ? 0 : -1;
}

int tmt_map_sd2(const char *name, char *out, size_t outlen) {
    static const char *const fixed[][2] = {
        {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
        {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
        {"text_model.final_layer_norm.weight", "ln_final.weight"},
        {"text_model.final_layer_norm.bias", "ln_final.bias"}};
    static const char *const sub[][2] = {
        {"self_attn.q_proj.", "attn.in_proj_"}, {"self_attn.k_proj.", "attn.in_proj_"},
        {"self_attn.v_proj.", "attn.in_proj_"}, {"self_attn.out_proj.", "attn.out_proj."},
        {"layer_norm1.", "ln_1."},              {"layer_norm2.", "ln_2."},
        {"mlp.fc1.", "mlp.c_fc."},              {"mlp.fc2.", "mlp.c_proj."}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(name, fixed[i][0])) return (size_t)snprintf(out, outlen, "%s", fixed[i][1]) < outlen ? 0 : -1;
    const char *p = "text_model.encoder.layers.";
    if (strncmp(name, p, strlen(p))) return -1;
    char *end;
    long l = strtol(name + strlen(p), &end, 10);
    if (end == name + strlen(p) || *end != '.') return -1;
    end++;
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        size_t n = strlen(sub[i][0]);
        if (!strncmp(end, sub[i][0], n))
            return (size_t)snprintf(out, outlen, "transformer.resblocks.%ld.%s%s", l, sub[i][1], end + n) < outlen
                       ? 0
                       : -1;
    }
    return -1;
}

/* ---- config ------------------------------------------------------------- */

/* A folder's text_encoder/config.json, next to its tokenizer/ dir. */
static void read_config(const tck_model *m, int *heads, int *layers, int *quick) {
    const char *tok = tck_tokenizer_dir(m);
    if (!tok) return;
    char path[4200];
    size_t n = strlen(tok);
    if (n < 9 || strcmp(tok + n - 9, "tokenizer")) return;
    snprintf(path, sizeof path, "%.*stext_encoder/config.json", (int)(n - 9), tok);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return;
    json_t *v;
    if ((v = json_object_get(j, "num_attention_heads")) && json_is_integer(v)) *heads = (int)json_integer_value(v);
    if ((v = json_object_get(j, "num_hidden_layers")) && json_is_integer(v)) *layers = (int)json_integer_value(v);
    if ((v = json_object_get(j, "hidden_act")) && json_is_string(v))
        *quick = !strcmp(json_string_value(v), "quick_gelu");
    json_decref(j);
}

/* ---- load --------------------------------------------------------------- */

static int load_qkv_sd2(tmt_encoder *e, const tnu_src *s, int l, tmt_layer *L, char *err, size_t errlen) {
    char name[256];
    int64_t C = e->C, ws[2] = {C, C}, bs[1] = {C};
    te_tensor **W[3] = {&L->wq, &L->wk, &L->wv}, **B[3] = {&L->bq, &L->bk, &L->bv};
    snprintf(name, sizeof name, "text_model.encoder.layers.%d.self_attn.q_proj.weight", l);
    const tst_tensor *tw = tnu_get(s, name, err, errlen);
    int64_t fw[2] = {3 * C, C}, fb[1] = {3 * C};
    if (!tw || tnu_check_shape(tw, tw->name, 2, fw, 0, err, errlen)) return -1;
    snprintf(name, sizeof name, "text_model.encoder.layers.%d.self_attn.q_proj.bias", l);
    const tst_tensor *tb = tnu_get(s, name, err, errlen);
    if (!tb || tnu_check_shape(tb, tb->name, 1, fb, 0, err, errlen)) return -1;
    for (int i = 0; i < 3; i++)
        if (tnu_add_rows(e->w, tw, tw->name, i * C, 2, ws, W[i], err, errlen) ||
            tnu_add_rows(e->w, tb, tb->name, i * C, 1, bs, B[i], err, errlen))
            return -1;
    return 0;
}

static int load_layer(tmt_encoder *e, const tnu_src *s, int l, char *err, size_t errlen) {
    tmt_layer *L = &e->layer[l];
    char p[200], q[256];
    int64_t C = e->C, I = e->I;
    snprintf(p, sizeof p, "text_model.encoder.layers.%d.", l);
#define N(suffix) (snprintf(q, sizeof q, "%s%s", p, suffix), q)
    if (tnu_norm(e->w, s, N("layer_norm1"), C, &L->ln1g, &L->ln1b, err, errlen)) return -1;
    if (e->family == 2 && tck_is_single_file(s->m)) {
        if (load_qkv_sd2(e, s, l, L, err, errlen)) return -1;
    } else if (tnu_linear(e->w, s, N("self_attn.q_proj"), C, C, 0, &L->wq, &L->bq, err, errlen) ||
               tnu_linear(e->w, s, N("self_attn.k_proj"), C, C, 0, &L->wk, &L->bk, err, errlen) ||
               tnu_linear(e->w, s, N("self_attn.v_proj"), C, C, 0, &L->wv, &L->bv, err, errlen)) {
        return -1;
    }
    if (tnu_linear(e->w, s, N("self_attn.out_proj"), C, C, 0, &L->wo, &L->bo, err, errlen) ||
        tnu_norm(e->w, s, N("layer_norm2"), C, &L->ln2g, &L->ln2b, err, errlen) ||
        tnu_linear(e->w, s, N("mlp.fc1"), I, C, 0, &L->w1, &L->b1, err, errlen) ||
        tnu_linear(e->w, s, N("mlp.fc2"), C, I, 0, &L->w2, &L->b2, err, errlen))
        return -1;
#undef N
    return 0;
}

int tmt_load(const tck_model *m, tmt_encoder **out, const tmt_options *opt, char *err, size_t errlen) {
    *out = NULL;
    if (!opt || !opt->be) {
        snprintf(err, errlen, "tmt_load: no backend given");
        return -1;
    }
    tmt_encoder *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->be = opt->be;
    int fam = tck_text_family(m);
    e->family = fam == 2 ? 2 : 1;
    if (tck_is_single_file(m) && fam == 0) {
        snprintf(err, errlen, "the checkpoint has no text encoder (cond_stage_model.transformer.* or "
                              "cond_stage_model.model.*)");
        goto fail;
    }
    tnu_src s = {m, TCK_TEXT, e->family == 2 ? tmt_map_sd2 : tmt_map_sd1, "text_model."};
    int cfg_heads = 0, cfg_layers = 0, quick = e->family == 1;
    read_config(m, &cfg_heads, &cfg_layers, &quick);
    e->quick_gelu = quick;
    if (!tck_is_single_file(m) && !quick) e->family = 2;  /* a gelu folder is OpenCLIP-derived (SD2) */

    const tst_tensor *tok = tnu_get(&s, "text_model.embeddings.token_embedding.weight", err, errlen);
    int64_t any2[2] = {-1, -1};
    if (!tok || tnu_check_shape(tok, tok->name, 2, any2, 0, err, errlen)) goto fail;
    e->vocab = tok->shape[0];
    e->C = (int)tok->shape[1];
    e->tok_dtype = tok->dtype;
    if (!(e->tok = malloc(tok->nbytes))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(e->tok, tok->data, tok->nbytes);
    e->I = (int)tnu_dim(&s, "text_model.encoder.layers.0.mlp.fc1.weight", 0, err, errlen);
    if (e->I < 0) goto fail;
    int count = 0;
    for (;; count++) {
        char n[160];
        snprintf(n, sizeof n, "text_model.encoder.layers.%d.layer_norm1.weight", count);
        if (!tnu_has(&s, n)) break;
    }
    e->layers = count;
    if (tck_is_single_file(m) && e->family == 2) e->layers = count - 1;  /* penultimate */
    if (cfg_layers > 0 && cfg_layers < e->layers) e->layers = cfg_layers;
    if (e->layers < 1) {
        snprintf(err, errlen, "text encoder: no transformer layers found");
        goto fail;
    }
    e->heads = opt->n_heads > 0 ? opt->n_heads : cfg_heads > 0 ? cfg_heads : e->C / 64;
    if (e->heads < 1 || e->C % e->heads) {
        snprintf(err, errlen, "text encoder: hidden size %d is not divisible into %d heads", e->C, e->heads);
        goto fail;
    }
    if (te_weights_create(e->be, &e->w) != TE_OK ||
        te_arena_create(e->be, opt->arena_cap, 0, &e->arena) != TE_OK) {
        snprintf(err, errlen, "text encoder: %s", te_backend_error(e->be));
        goto fail;
    }
    int64_t ps[2] = {TMT_TOKENS, e->C};
    if (tnu_load(e->w, &s, "text_model.embeddings.position_embedding.weight", 2, ps, 0, &e->pos, err, errlen) ||
        tnu_norm(e->w, &s, "text_model.final_layer_norm", e->C, &e->lnfg, &e->lnfb, err, errlen))
        goto fail;
    if (!(e->layer = calloc((size_t)e->layers, sizeof *e->layer))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int l = 0; l < e->layers; l++)
        if (load_layer(e, &s, l, err, errlen)) goto fail;
    *out = e;
    return 0;
fail:
    tmt_free(e);
    return -1;
}

void tmt_free(tmt_encoder *e) {
    if (!e) return;
    te_arena_destroy(e->arena);
    te_weights_destroy(e->w);
    free(e->layer);
    free(e->tok);
    free(e->hq);
    free(e->hk);
    free(e->hv);
    free(e->ho);
    free(e);
}

int tmt_hidden_size(const tmt_encoder *e) { return e->C; }
int tmt_layers(const tmt_encoder *e) { return e->layers; }
int tmt_heads(const tmt_encoder *e) { return e->heads; }
int tmt_family(const tmt_encoder *e) { return e->family; }

/* ---- forward ------------------------------------------------------------ */

/* o = softmax(q k^T / sqrt(d) + causal mask) v, per batch and head, host f32
 * with double accumulation. q/k/v/o are [B, L, heads*d]. */
static void causal_attention_host(const float *q, const float *k, const float *v, float *o, int B, int L, int H,
                                  int d) {
    int C = H * d;
    double scale = 1.0 / sqrt((double)d), s[TMT_TOKENS];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < L; i++) {
                const float *qi = q + ((size_t)b * L + i) * C + h * d;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    const float *kj = k + ((size_t)b * L + j) * C + h * d;
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += (double)qi[c] * kj[c];
                    s[j] = dot * scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j <= i; j++) sum += (s[j] = exp(s[j] - mx));
                float *oi = o + ((size_t)b * L + i) * C + h * d;
                for (int c = 0; c < d; c++) {
                    double acc = 0;
                    for (int j = 0; j <= i; j++) acc += s[j] * v[((size_t)b * L + j) * C + h * d + c];
                    oi[c] = (float)(acc / sum);
                }
            }
}

#define CK(call)                                                                               \
    do {                                                                                       \
        te_status st_ = (call);                                                                \
        if (st_ != TE_OK) {                                                                    \
            snprintf(err, errlen, "text encoder: %s: %s", #call, te_backend_error(e->be));     \
            return -1;                                                                         \
        }                                                                                      \
    } while (0)

static int embed_host(tmt_encoder *e, const int32_t *ids, int B, float *x, char *err, size_t errlen) {
    size_t es = tst_dtype_size(e->tok_dtype);
    for (int i = 0; i < B * TMT_TOKENS; i++) {
        if (ids[i] < 0 || ids[i] >= e->vocab) {
            snprintf(err, errlen, "token id %d at position %d is outside the vocabulary (%lld entries)", ids[i], i,
                     (long long)e->vocab);
            return -1;
        }
        tst_tensor row = {.name = "token_embedding", .dtype = e->tok_dtype, .supported = 1, .ndim = 1,
                          .data = e->tok + (size_t)ids[i] * e->C * es, .nbytes = (size_t)e->C * es,
                          .numel = (size_t)e->C};
        row.shape[0] = e->C;
        if (tst_to_f32(&row, x + (size_t)i * e->C, (size_t)e->C, err, errlen)) return -1;
    }
    return 0;
}

static int forward(tmt_encoder *e, const int32_t *ids, int B, int nl, float *out, char *err, size_t errlen) {
    te_arena *a = e->arena;
    int plan = te_arena_planning(a), L = TMT_TOKENS;
    int64_t sc[3] = {B, L, e->C}, si[3] = {B, L, e->I};
    te_tensor x, x2, h, q, k, v, att, f;
    CK(te_arena_tensor(a, &x, TE_F32, 3, sc));
    if (!plan) {
        if (embed_host(e, ids, B, e->ho, err, errlen)) return -1;
        CK(te_tensor_upload(&x, e->ho));
    }
    CK(te_add(&x, &x, e->pos));
    for (int l = 0; l < nl; l++) {
        tmt_layer *Y = &e->layer[l];
        CK(te_arena_tensor(a, &h, TE_F32, 3, sc));
        CK(te_layer_norm(&h, &x, Y->ln1g, Y->ln1b, LN_EPS));
        CK(te_arena_tensor(a, &q, TE_F32, 3, sc));
        CK(te_arena_tensor(a, &k, TE_F32, 3, sc));
        CK(te_arena_tensor(a, &v, TE_F32, 3, sc));
        CK(te_linear(&q, &h, Y->wq, Y->bq, NULL));
        CK(te_linear(&k, &h, Y->wk, Y->bk, NULL));
        CK(te_linear(&v, &h, Y->wv, Y->bv, NULL));
        te_arena_release(a, &h);
        CK(te_arena_tensor(a, &att, TE_F32, 3, sc));
        if (!plan) {
            CK(te_tensor_download(&q, e->hq));
            CK(te_tensor_download(&k, e->hk));
            CK(te_tensor_download(&v, e->hv));
            causal_attention_host(e->hq, e->hk, e->hv, e->ho, B, L, e->heads, e->C / e->heads);
            CK(te_tensor_upload(&att, e->ho));
        }
        te_arena_release(a, &q);
        te_arena_release(a, &k);
        te_arena_release(a, &v);
        CK(te_arena_tensor(a, &x2, TE_F32, 3, sc));
        CK(te_linear(&x2, &att, Y->wo, Y->bo, &x));
        te_arena_release(a, &att);
        te_arena_release(a, &x);
        x = x2;
        CK(te_arena_tensor(a, &h, TE_F32, 3, sc));
        CK(te_layer_norm(&h, &x, Y->ln2g, Y->ln2b, LN_EPS));
        CK(te_arena_tensor(a, &f, TE_F32, 3, si));
        CK(te_linear(&f, &h, Y->w1, Y->b1, NULL));
        te_arena_release(a, &h);
        CK(e->quick_gelu ? te_quick_gelu(&f, &f) : te_gelu(&f, &f));
        CK(te_arena_tensor(a, &x2, TE_F32, 3, sc));
        CK(te_linear(&x2, &f, Y->w2, Y->b2, &x));
        te_arena_release(a, &f);
        te_arena_release(a, &x);
        x = x2;
    }
    CK(te_layer_norm(&x, &x, e->lnfg, e->lnfb, LN_EPS));
    if (!plan) CK(te_tensor_download(&x, out));
    te_arena_release(a, &x);
    return 0;
}

int tmt_encode(tmt_encoder *e, const int32_t *ids, int B, int clip_skip, float *out, char *err, size_t errlen) {
    if (B < 1) {
        snprintf(err, errlen, "tmt_encode: batch %d", B);
        return -1;
    }
    int skip = clip_skip < 1 ? 1 : clip_skip, nl = e->layers - (skip - 1);
    if (nl < 1) {
        snprintf(err, errlen, "clip skip %d leaves no layer of the %d the text encoder has", clip_skip, e->layers);
        return -1;
    }
    if (B > e->host_b) {
        size_t n = (size_t)B * TMT_TOKENS * e->C;
        float *p[4];
        for (int i = 0; i < 4; i++) p[i] = malloc(n * sizeof(float));
        free(e->hq), free(e->hk), free(e->hv), free(e->ho);
        e->hq = p[0], e->hk = p[1], e->hv = p[2], e->ho = p[3];
        if (!p[0] || !p[1] || !p[2] || !p[3]) {
            e->host_b = 0;
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        e->host_b = B;
    }
    te_arena_begin_plan(e->arena);
    if (forward(e, ids, B, nl, out, err, errlen)) return -1;
    if (te_arena_reserve(e->arena) != TE_OK) {
        snprintf(err, errlen, "text encoder: %s", te_backend_error(e->be));
        return -1;
    }
    te_arena_begin_run(e->arena);
    return forward(e, ids, B, nl, out, err, errlen);
}
