/* prompt_tokens.c - weighted fragments -> 77-token chunks for the text encoder.
 *
 * Follows A1111's tokenize_line (a1111-compat.md 3.5): each fragment is
 * tokenized on its own (no BOS/EOS, no truncation) and every token carries
 * the fragment's weight; a BREAK fragment (text "BREAK", weight exactly -1)
 * closes the chunk; a chunk is 75 tokens, and when it is full and the next
 * token is not a comma, the tokens after the last comma move to the next
 * chunk if that comma is within comma_backtrack tokens of the end. Each chunk
 * becomes [BOS] + 75 tokens padded with EOS + [EOS] with multiplier 1.0 on
 * BOS/EOS/padding; with a pad id other than EOS (SD2/OpenCLIP), everything
 * after the first EOS of a chunk becomes the pad id, as A1111 does before
 * encoding. Textual-inversion embeddings are not handled here.
 */
#include "prompt_parse.h"
#include "prompt_util.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int ids[TPR_CHUNK_TOKENS];
    double mult[TPR_CHUNK_TOKENS];
    size_t n;
} cur_chunk;

typedef struct {
    tpr_chunks *out;
    size_t cap;
    int bos, eos, pad;
    size_t token_count;
    long last_comma;
    int oom;
} chunker;

static void next_chunk(chunker *c, cur_chunk *ch, int is_last) {
    c->token_count += is_last ? ch->n : TPR_CHUNK_TOKENS;
    tpr_chunks *o = c->out;
    if (o->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 4;
        int (*ids)[TPR_CHUNK_LEN] = realloc(o->ids, nc * sizeof *ids);
        if (ids) o->ids = ids;
        float (*m)[TPR_CHUNK_LEN] = realloc(o->mult, nc * sizeof *m);
        if (m) o->mult = m;
        if (!ids || !m) { c->oom = 1; return; }
        c->cap = nc;
    }
    int *ids = o->ids[o->n];
    float *m = o->mult[o->n];
    ids[0] = c->bos;
    m[0] = 1.0f;
    for (size_t k = 0; k < TPR_CHUNK_TOKENS; k++) {
        ids[k + 1] = k < ch->n ? ch->ids[k] : c->eos;
        m[k + 1] = k < ch->n ? (float)ch->mult[k] : 1.0f;
    }
    ids[TPR_CHUNK_LEN - 1] = c->eos;
    m[TPR_CHUNK_LEN - 1] = 1.0f;
    if (c->pad != c->eos) {
        size_t k = 0;
        while (ids[k] != c->eos) k++;
        for (k++; k < TPR_CHUNK_LEN; k++) ids[k] = c->pad;
    }
    o->n++;
    c->last_comma = -1;
    ch->n = 0;
}

void tpr_chunks_free(tpr_chunks *c) {
    if (!c) return;
    free(c->ids);
    free(c->mult);
    memset(c, 0, sizeof *c);
}

int tpr_chunks_build(const ttok_tokenizer *tok, const tpr_frags *frags, const tpr_chunk_opts *opts,
                     tpr_chunks *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    chunker c = {.out = out, .bos = ttok_bos_id(tok), .eos = ttok_eos_id(tok), .last_comma = -1};
    c.pad = opts ? opts->pad_id : c.eos;
    int backtrack = opts ? opts->comma_backtrack : 20;
    int comma = ttok_token_id(tok, ",</w>");
    cur_chunk ch = {.n = 0};
    int *ids = NULL;
    size_t idcap = 0;
    for (size_t f = 0; f < frags->n && !c.oom; f++) {
        const tpr_frag *fr = &frags->v[f];
        if (fr->weight == -1.0 && strcmp(fr->text, "BREAK") == 0) {
            next_chunk(&c, &ch, 0);
            continue;
        }
        size_t nt;
        const char *t = fr->text ? fr->text : "";
        int r = ttok_encode(tok, t, strlen(t), ids, idcap, &nt, err, errlen);
        if (r < 0 && ids && nt <= idcap) goto fail; /* a real error, not a short buffer */
        if (!ids || nt > idcap) {
            free(ids);
            idcap = nt + 1;
            ids = malloc(idcap * sizeof *ids);
            if (!ids) { c.oom = 1; break; }
            if (ttok_encode(tok, t, strlen(t), ids, idcap, &nt, err, errlen) < 0) goto fail;
        }
        for (size_t p = 0; p < nt && !c.oom; p++) {
            int token = ids[p];
            if (token == comma) {
                c.last_comma = (long)ch.n;
            } else if (backtrack != 0 && ch.n == TPR_CHUNK_TOKENS && c.last_comma != -1 &&
                       (long)ch.n - c.last_comma <= backtrack) {
                size_t brk = (size_t)c.last_comma + 1;
                cur_chunk rest = {.n = ch.n - brk};
                memcpy(rest.ids, ch.ids + brk, rest.n * sizeof *rest.ids);
                memcpy(rest.mult, ch.mult + brk, rest.n * sizeof *rest.mult);
                ch.n = brk;
                next_chunk(&c, &ch, 0);
                ch = rest;
            }
            if (ch.n == TPR_CHUNK_TOKENS) next_chunk(&c, &ch, 0);
            ch.ids[ch.n] = token;
            ch.mult[ch.n] = fr->weight;
            ch.n++;
        }
    }
    if (!c.oom && (ch.n || out->n == 0)) next_chunk(&c, &ch, 1);
    free(ids);
    if (c.oom) { tpr_chunks_free(out); tpr_seterr(err, errlen, "out of memory"); return -1; }
    out->token_count = c.token_count;
    return 0;
fail:
    free(ids);
    tpr_chunks_free(out);
    return -1;
}

int tpr_chunks_from_text(const ttok_tokenizer *tok, const char *text, const tpr_chunk_opts *opts,
                         tpr_chunks *out, char *err, size_t errlen) {
    tpr_frags f;
    memset(out, 0, sizeof *out);
    if (!text) text = "";
    if (tpr_parse_attention(text, strlen(text), &f, err, errlen) < 0) return -1;
    int rc = tpr_chunks_build(tok, &f, opts, out, err, errlen);
    tpr_frags_free(&f);
    return rc;
}
