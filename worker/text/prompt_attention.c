/* prompt_attention.c - A1111 emphasis: (a) x1.1, [a] /1.1, (a:1.3), BREAK.
 *
 * Follows parse_prompt_attention as described in a1111-compat.md 3.4: the
 * text is cut into tokens by re_attention (escapes, brackets, ":N)" weight
 * closers, runs of plain text, lone ':'), brackets push the index of the
 * next fragment, closers multiply every fragment from there on (including
 * BREAK markers, as A1111 does), unmatched closers and stray weights are
 * plain text, brackets left open apply at the end, and adjacent fragments of
 * equal weight merge. Weights are doubles multiplied in the same order as
 * A1111, so they are bit-identical to its Python floats.
 */
#include "prompt_parse.h"
#include "prompt_util.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    tpr_frag *v;
    size_t n, cap;
    int oom;
} fvec;

static void fpush(fvec *f, const char *s, size_t n, double w) {
    if (f->oom) return;
    if (f->n == f->cap) {
        size_t c = f->cap ? f->cap * 2 : 16;
        tpr_frag *nv = realloc(f->v, c * sizeof *nv);
        if (!nv) { f->oom = 1; return; }
        f->v = nv;
        f->cap = c;
    }
    /* NUL bytes are dropped: fragments are C strings, and the tokenizer
     * removes U+0000 anyway, so the tokens are the same */
    char *t = malloc(n + 1);
    if (!t) { f->oom = 1; return; }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) if (s[i]) t[o++] = s[i];
    t[o] = 0;
    f->v[f->n++] = (tpr_frag){t, w};
}

typedef struct {
    size_t *v;
    size_t n, cap;
} stack;

static int spush(stack *s, size_t x) {
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 16;
        size_t *nv = realloc(s->v, c * sizeof *nv);
        if (!nv) return -1;
        s->v = nv;
        s->cap = c;
    }
    s->v[s->n++] = x;
    return 0;
}

static int special(char c) {
    return c == '\\' || c == '(' || c == ')' || c == '[' || c == ']' || c == ':';
}

static void multiply(fvec *f, size_t from, double m) {
    for (size_t p = from; p < f->n; p++) f->v[p].weight *= m;
}

/* re.split(r"\s*\bBREAK\b\s*", text): parts with BREAK markers between. */
static void add_text(fvec *f, const char *s, size_t n) {
    size_t part = 0, i = 0;
    while (i < n) {
        /* a match starts at i: \s*, then BREAK at a word boundary */
        size_t j = i, l;
        while (j < n && tpr_is_space(tpr_cp_at(s, n, j, &l))) j += l;
        int ok = n - j >= 5 && memcmp(s + j, "BREAK", 5) == 0;
        if (ok && j > 0) ok = !tpr_is_word(tpr_cp_before(s, j, &l));
        if (ok && j + 5 < n) ok = !tpr_is_word(tpr_cp_at(s, n, j + 5, &l));
        if (!ok) { tpr_cp_at(s, n, i, &l); i += l; continue; }
        size_t e = j + 5;
        while (e < n && tpr_is_space(tpr_cp_at(s, n, e, &l))) e += l;
        fpush(f, s + part, i - part, 1.0);
        fpush(f, "BREAK", 5, -1.0);
        part = i = e;
    }
    fpush(f, s + part, n - part, 1.0);
}

void tpr_frags_free(tpr_frags *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->v[i].text);
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

int tpr_parse_attention(const char *s, size_t n, tpr_frags *out, char *err, size_t errlen) {
    fvec f = {0};
    stack round = {0}, square = {0};
    int rc = 0;
    out->v = NULL;
    out->n = 0;
    if (!s) n = 0;
    size_t i = 0;
    while (i < n && !f.oom) {
        char c = s[i];
        if (c == '\\') {
            if (i + 1 < n && special(s[i + 1]) && s[i + 1] != ':') { fpush(&f, s + i + 1, 1, 1.0); i += 2; }
            else { fpush(&f, "", 0, 1.0); i += 1; }
            continue;
        }
        if (c == '(') { if (spush(&round, f.n) < 0) f.oom = 1; i++; continue; }
        if (c == '[') { if (spush(&square, f.n) < 0) f.oom = 1; i++; continue; }
        if (c == ':') {
            /* :\s*([+-]?[.\d]+)\s*\) */
            size_t j = i + 1, l, ns, ne;
            while (j < n && tpr_is_space(tpr_cp_at(s, n, j, &l))) j += l;
            ns = j;
            if (j < n && (s[j] == '+' || s[j] == '-')) j++;
            size_t d0 = j;
            while (j < n) {
                uint32_t cp = tpr_cp_at(s, n, j, &l);
                if (cp != '.' && tpr_digit(cp) < 0) break;
                j += l;
            }
            ne = j;
            int ok = ne > d0;
            while (ok && j < n && tpr_is_space(tpr_cp_at(s, n, j, &l))) j += l;
            ok = ok && j < n && s[j] == ')';
            if (ok && round.n) {
                double w;
                if (tpr_parse_float(s + ns, ne - ns, &w) < 0) {
                    tpr_seterr(err, errlen, "could not convert string to float: '%.*s'", (int)(ne - ns), s + ns);
                    rc = -1;
                    break;
                }
                multiply(&f, round.v[--round.n], w);
                i = j + 1;
                continue;
            }
            if (ok) { add_text(&f, s + i, j + 1 - i); i = j + 1; continue; }
            add_text(&f, s + i, 1);
            i++;
            continue;
        }
        if (c == ')') {
            if (round.n) multiply(&f, round.v[--round.n], 1.1);
            else add_text(&f, s + i, 1);
            i++;
            continue;
        }
        if (c == ']') {
            if (square.n) multiply(&f, square.v[--square.n], 1 / 1.1);
            else add_text(&f, s + i, 1);
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !special(s[j])) j++;
        add_text(&f, s + i, j - i);
        i = j;
    }
    if (rc == 0) {
        for (size_t k = 0; k < round.n; k++) multiply(&f, round.v[k], 1.1);
        for (size_t k = 0; k < square.n; k++) multiply(&f, square.v[k], 1 / 1.1);
        if (f.n == 0) fpush(&f, "", 0, 1.0);
        /* merge runs of identical weights */
        size_t k = 0;
        while (!f.oom && k + 1 < f.n) {
            if (f.v[k].weight == f.v[k + 1].weight) {
                size_t a = strlen(f.v[k].text), b = strlen(f.v[k + 1].text);
                char *t = realloc(f.v[k].text, a + b + 1);
                if (!t) { f.oom = 1; break; }
                memcpy(t + a, f.v[k + 1].text, b + 1);
                f.v[k].text = t;
                free(f.v[k + 1].text);
                memmove(f.v + k + 1, f.v + k + 2, (f.n - k - 2) * sizeof *f.v);
                f.n--;
            } else {
                k++;
            }
        }
    }
    free(round.v);
    free(square.v);
    if (f.oom && rc == 0) { tpr_seterr(err, errlen, "out of memory"); rc = -1; }
    out->v = f.v;
    out->n = f.n;
    if (rc) tpr_frags_free(out);
    return rc;
}
