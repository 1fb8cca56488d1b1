/* conditioning.c - A1111 prompt -> conditioning tensor (see conditioning.h).
 *
 * Glue over the pieces that already match the reference one by one: the
 * prompt language (worker/text/prompt_*.c), the tokenizer, and the CLIP text
 * encoder. What lives here is the order A1111 runs them in, the weight
 * arithmetic of sd_emphasis.py and the token-axis concatenation. */
#include "conditioning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tcd_opts tcd_default_opts(void) {
    tcd_opts o = {.pad_id = -1, .comma_backtrack = -1, .emphasis = TCD_EMPHASIS_ORIGINAL, .sd2_clip_skip = 0};
    return o;
}

void tcd_cond_free(tcd_cond *c) {
    if (!c) return;
    free(c->hidden);
    free(c->ids);
    free(c->mult);
    tpr_extra_list_free(&c->extra);
    memset(c, 0, sizeof *c);
}

void tcd_apply_emphasis(float *z, const float *mult, int n_chunks, int C, tcd_emphasis mode) {
    if (mode != TCD_EMPHASIS_ORIGINAL && mode != TCD_EMPHASIS_NO_NORM) return;
    size_t slab = (size_t)TPR_CHUNK_LEN * C;
    for (int k = 0; k < n_chunks; k++) {
        float *zk = z + k * slab;
        const float *mk = mult + (size_t)k * TPR_CHUNK_LEN;
        double m0 = 0, m1 = 0;
        for (size_t i = 0; i < slab; i++) m0 += zk[i];
        for (int t = 0; t < TPR_CHUNK_LEN; t++)
            for (int c = 0; c < C; c++) {
                float v = zk[(size_t)t * C + c] * mk[t];
                zk[(size_t)t * C + c] = v;
                m1 += v;
            }
        if (mode == TCD_EMPHASIS_NO_NORM) continue;
        m0 /= (double)slab;
        m1 /= (double)slab;
        /* torch: z * (original_mean / new_mean), the ratio in f32 */
        float r = (float)m0 / (float)m1;
        for (size_t i = 0; i < slab; i++) zk[i] *= r;
    }
}

int tcd_encode_ex(const ttok_tokenizer *tok, tmt_encoder *enc, const char *prompt, int clip_skip,
                  const tcd_opts *opts, tcd_cond *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    tcd_opts o = opts ? *opts : tcd_default_opts();
    if (!tok || !enc) {
        snprintf(err, errlen, "tcd_encode: no tokenizer or text encoder");
        return -1;
    }
    int family = tmt_family(enc);
    int C = tmt_hidden_size(enc);
    if (family == 2 && !o.sd2_clip_skip) clip_skip = 1;
    if (clip_skip < 1) clip_skip = 1;

    /* 1. extra networks */
    if (tpr_extra_networks(prompt ? prompt : "", &out->extra, err, errlen) < 0) return -1;
    const char *text = out->extra.prompt ? out->extra.prompt : "";

    /* 2. emphasis / BREAK */
    tpr_frags frags = {0};
    if (o.emphasis == TCD_EMPHASIS_NONE) {
        frags.v = calloc(1, sizeof *frags.v);
        if (!frags.v || !(frags.v[0].text = strdup(text))) {
            free(frags.v);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        frags.v[0].weight = 1.0;
        frags.n = 1;
    } else if (tpr_parse_attention(text, strlen(text), &frags, err, errlen) < 0) {
        goto fail;
    }

    /* 3. chunks */
    tpr_chunk_opts co = {
        .pad_id = o.pad_id >= 0 ? o.pad_id : family == 2 ? 0 : ttok_eos_id(tok),
        .comma_backtrack = o.comma_backtrack >= 0 ? o.comma_backtrack : 20,
    };
    tpr_chunks ch;
    int rc = tpr_chunks_build(tok, &frags, &co, &ch, err, errlen);
    tpr_frags_free(&frags);
    if (rc < 0) goto fail;

    int k = (int)ch.n;
    size_t nid = (size_t)k * TPR_CHUNK_LEN;
    out->ids = malloc(nid * sizeof *out->ids);
    out->mult = malloc(nid * sizeof *out->mult);
    out->hidden = malloc(nid * (size_t)C * sizeof *out->hidden);
    if (!out->ids || !out->mult || !out->hidden) {
        tpr_chunks_free(&ch);
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int c = 0; c < k; c++)
        for (int t = 0; t < TPR_CHUNK_LEN; t++) {
            out->ids[(size_t)c * TPR_CHUNK_LEN + t] = ch.ids[c][t];
            out->mult[(size_t)c * TPR_CHUNK_LEN + t] = ch.mult[c][t];
        }
    out->token_count = ch.token_count;
    tpr_chunks_free(&ch);

    /* 4. encode every chunk (one batch: rows are independent) */
    if (tmt_encode(enc, out->ids, k, clip_skip, out->hidden, err, errlen) < 0) goto fail;

    /* 5. weights; 6. the [k,77,C] buffer already is [1, 77k, C] */
    tcd_apply_emphasis(out->hidden, out->mult, k, C, o.emphasis);
    out->n_chunks = k;
    out->n_tokens = k * TPR_CHUNK_LEN;
    out->hidden_size = C;
    out->clip_skip = clip_skip;
    return 0;
fail:
    tcd_cond_free(out);
    return -1;
}

int tcd_encode(const ttok_tokenizer *tok, tmt_encoder *enc, const char *prompt, int clip_skip,
               const tcd_opts *opts, float **out, int *n_tokens, char *err, size_t errlen) {
    tcd_cond c;
    *out = NULL;
    *n_tokens = 0;
    if (tcd_encode_ex(tok, enc, prompt, clip_skip, opts, &c, err, errlen) < 0) return -1;
    *out = c.hidden;
    *n_tokens = c.n_tokens;
    c.hidden = NULL;
    tcd_cond_free(&c);
    return 0;
}

int tcd_pad_tokens(float **z, int *n_tokens, int C, int target, const float *empty77, char *err, size_t errlen) {
    int n = *n_tokens;
    if (target <= n) return 0;
    if (n < 1 && !empty77) {
        snprintf(err, errlen, "tcd_pad_tokens: nothing to repeat");
        return -1;
    }
    if (empty77 && (target - n) % TPR_CHUNK_LEN) {
        snprintf(err, errlen, "tcd_pad_tokens: %d -> %d tokens is not a whole number of 77-token chunks", n,
                 target);
        return -1;
    }
    float *p = realloc(*z, (size_t)target * C * sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t row = (size_t)C * sizeof *p;
    for (int t = n; t < target; t++) {
        const float *src = empty77 ? empty77 + (size_t)((t - n) % TPR_CHUNK_LEN) * C : p + (size_t)(n - 1) * C;
        memcpy(p + (size_t)t * C, src, row);
    }
    *z = p;
    *n_tokens = target;
    return 0;
}

/* ---- a batch of texts, as A1111 encodes the texts of one prompt schedule ---- */

int tcd_encode_batch(const ttok_tokenizer *tok, tmt_encoder *enc, const char *const *prompts, int n,
                     int clip_skip, const tcd_opts *opts, tcd_cond *out, char *err, size_t errlen) {
    tcd_opts o = opts ? *opts : tcd_default_opts();
    tcd_emphasis mode = o.emphasis;
    /* parse with the weights kept aside: emphasis is applied below, over the batch */
    o.emphasis = mode == TCD_EMPHASIS_NONE ? TCD_EMPHASIS_NONE : TCD_EMPHASIS_IGNORE;
    memset(out, 0, (size_t)n * sizeof *out);
    int kmax = 0;
    for (int i = 0; i < n; i++) {
        if (tcd_encode_ex(tok, enc, prompts[i], clip_skip, &o, &out[i], err, errlen) < 0) goto fail;
        if (out[i].n_chunks > kmax) kmax = out[i].n_chunks;
    }
    int C = tmt_hidden_size(enc);
    size_t slab = (size_t)TPR_CHUNK_LEN * C;
    float *empty = NULL;
    for (int i = 0; i < n; i++) {
        int k = out[i].n_chunks;
        if (k == kmax) continue;
        /* A1111 fills missing chunks with empty_chunk(): BOS, then EOS x 76, weights 1 */
        if (!empty) {
            int32_t ids[TPR_CHUNK_LEN];
            ids[0] = TTOK_BOS;
            for (int t = 1; t < TPR_CHUNK_LEN; t++) ids[t] = TTOK_EOS;
            empty = malloc(slab * sizeof *empty);
            if (!empty || tmt_encode(enc, ids, 1, out[i].clip_skip, empty, err, errlen) < 0) {
                if (!empty) snprintf(err, errlen, "out of memory");
                free(empty);
                goto fail;
            }
        }
        float *h = realloc(out[i].hidden, (size_t)kmax * slab * sizeof *h);
        float *m = realloc(out[i].mult, (size_t)kmax * TPR_CHUNK_LEN * sizeof *m);
        int32_t *id = realloc(out[i].ids, (size_t)kmax * TPR_CHUNK_LEN * sizeof *id);
        if (h) out[i].hidden = h;
        if (m) out[i].mult = m;
        if (id) out[i].ids = id;
        if (!h || !m || !id) {
            free(empty);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        for (int c = k; c < kmax; c++) {
            memcpy(h + (size_t)c * slab, empty, slab * sizeof *h);
            for (int t = 0; t < TPR_CHUNK_LEN; t++) {
                m[(size_t)c * TPR_CHUNK_LEN + t] = 1.0f;
                id[(size_t)c * TPR_CHUNK_LEN + t] = t == 0 ? TTOK_BOS : TTOK_EOS;
            }
        }
        out[i].n_chunks = kmax;
        out[i].n_tokens = kmax * TPR_CHUNK_LEN;
    }
    free(empty);
    if (mode == TCD_EMPHASIS_ORIGINAL || mode == TCD_EMPHASIS_NO_NORM) {
        for (int c = 0; c < kmax; c++) {
            double m0 = 0, m1 = 0;
            for (int i = 0; i < n; i++) {
                float *z = out[i].hidden + (size_t)c * slab;
                const float *mk = out[i].mult + (size_t)c * TPR_CHUNK_LEN;
                for (size_t q = 0; q < slab; q++) m0 += z[q];
                for (int t = 0; t < TPR_CHUNK_LEN; t++)
                    for (int ch = 0; ch < C; ch++) {
                        float v = z[(size_t)t * C + ch] * mk[t];
                        z[(size_t)t * C + ch] = v;
                        m1 += v;
                    }
            }
            if (mode == TCD_EMPHASIS_NO_NORM) continue;
            float r = (float)(m0 / ((double)slab * n)) / (float)(m1 / ((double)slab * n));
            for (int i = 0; i < n; i++) {
                float *z = out[i].hidden + (size_t)c * slab;
                for (size_t q = 0; q < slab; q++) z[q] *= r;
            }
        }
    }
    return 0;
fail:
    for (int i = 0; i < n; i++) tcd_cond_free(&out[i]);
    return -1;
}
