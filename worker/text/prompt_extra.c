/* prompt_extra.c - extra-network tags (<lora:name:w>) and AND sub-prompts.
 *
 * tpr_extra_networks follows extra_networks.parse_prompt: every match of
 * <(\w+):([^>]+)> (Python Unicode \w) is removed from the prompt and its
 * argument string split on ':' (so <lora:name:0.8:0.5> has items name, 0.8,
 * 0.5; "k=v" items are kept as written for the caller to interpret).
 *
 * tpr_split_and follows get_multicond_prompt_list for one prompt: split on
 * \bAND\b, then each part matched against
 * ^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$
 * i.e. the shortest text such that the rest is an optional ":weight" and
 * trailing whitespace. The text is not stripped on the left, as in A1111.
 */
#include "prompt_parse.h"
#include "prompt_util.h"

#include <stdlib.h>
#include <string.h>

void tpr_extra_list_free(tpr_extra_list *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].kind);
        for (size_t k = 0; k < l->v[i].nitems; k++) free(l->v[i].items[k]);
        free(l->v[i].items);
    }
    free(l->v);
    free(l->prompt);
    memset(l, 0, sizeof *l);
}

/* Matches <(\w+):([^>]+)> at s[i]; returns the end or 0. */
static size_t match_tag(const char *s, size_t n, size_t i, size_t *ke, size_t *as) {
    if (s[i] != '<') return 0;
    size_t j = i + 1, l;
    while (j < n && tpr_is_word(tpr_cp_at(s, n, j, &l))) j += l;
    if (j == i + 1 || j >= n || s[j] != ':') return 0;
    *ke = j;
    *as = j + 1;
    size_t e = j + 1;
    while (e < n && s[e] != '>') e++;
    if (e == j + 1 || e >= n) return 0;
    return e + 1;
}

int tpr_extra_networks(const char *prompt, tpr_extra_list *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!prompt) prompt = "";
    size_t n = strlen(prompt), i = 0, cap = 0;
    tpr_buf b = {0};
    int oom = 0;
    while (i < n && !oom) {
        size_t ke, as, e;
        if (prompt[i] != '<' || !(e = match_tag(prompt, n, i, &ke, &as))) {
            size_t l;
            tpr_cp_at(prompt, n, i, &l);
            tpr_buf_add(&b, prompt + i, l);
            i += l;
            continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 4;
            tpr_extra *v = realloc(out->v, cap * sizeof *v);
            if (!v) { oom = 1; break; }
            out->v = v;
        }
        tpr_extra *x = &out->v[out->n++];
        memset(x, 0, sizeof *x);
        x->kind = tpr_strndup(prompt + i + 1, ke - i - 1);
        size_t cnt = 1;
        for (size_t k = as; k < e - 1; k++) cnt += prompt[k] == ':';
        x->items = calloc(cnt, sizeof *x->items);
        if (!x->kind || !x->items) { oom = 1; break; }
        size_t st = as;
        for (size_t k = as; k <= e - 1; k++) {
            if (k == e - 1 || prompt[k] == ':') {
                char *it = tpr_strndup(prompt + st, k - st);
                if (!it) { oom = 1; break; }
                x->items[x->nitems++] = it;
                st = k + 1;
            }
        }
        i = e;
    }
    out->prompt = tpr_buf_take(&b);
    if (oom || b.oom || !out->prompt) {
        tpr_extra_list_free(out);
        tpr_seterr(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void tpr_and_list_free(tpr_and_list *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) free(l->v[i].text);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Does s[i..n) match \s*:\s*([-+]?(?:\d+\.?|\d*\.\d+))\s*$ ? */
static int weight_tail(const char *s, size_t n, size_t i, double *w) {
    size_t l;
    while (i < n && tpr_is_space(tpr_cp_at(s, n, i, &l))) i += l;
    if (i >= n || s[i] != ':') return 0;
    i++;
    while (i < n && tpr_is_space(tpr_cp_at(s, n, i, &l))) i += l;
    size_t ns = i;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t d1 = 0, dot = 0, d2 = 0;
    while (i < n && tpr_digit(tpr_cp_at(s, n, i, &l)) >= 0) { d1++; i += l; }
    if (i < n && s[i] == '.') { dot = 1; i++; }
    while (dot && i < n && tpr_digit(tpr_cp_at(s, n, i, &l)) >= 0) { d2++; i += l; }
    if (!(d1 > 0 && (!dot || d2 == 0)) && !(dot && d2 > 0)) return 0;
    size_t ne = i;
    while (i < n && tpr_is_space(tpr_cp_at(s, n, i, &l))) i += l;
    /* $ also matches before a final "\n", which \s* has consumed anyway */
    if (i != n) return 0;
    return tpr_parse_float(s + ns, ne - ns, w) == 0;
}

static int trailing_space(const char *s, size_t n, size_t i) {
    size_t l;
    while (i < n && tpr_is_space(tpr_cp_at(s, n, i, &l))) i += l;
    return i == n;
}

static int add_sub(tpr_and_list *out, size_t *cap, const char *s, size_t n) {
    double w = 1.0;
    size_t cut = n, i = 0, l;
    for (;;) { /* the lazy text: the first cut where the rest matches */
        if (weight_tail(s, n, i, &w)) { cut = i; break; }
        if (trailing_space(s, n, i)) { cut = i; w = 1.0; break; }
        if (i >= n) break;
        tpr_cp_at(s, n, i, &l);
        i += l;
    }
    if (out->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        tpr_subprompt *v = realloc(out->v, *cap * sizeof *v);
        if (!v) return -1;
        out->v = v;
    }
    char *t = tpr_strndup(s, cut);
    if (!t) return -1;
    out->v[out->n++] = (tpr_subprompt){t, w};
    return 0;
}

int tpr_split_and(const char *prompt, tpr_and_list *out, char *err, size_t errlen) {
    out->v = NULL;
    out->n = 0;
    if (!prompt) prompt = "";
    size_t n = strlen(prompt), i = 0, part = 0, cap = 0, l;
    while (i + 3 <= n) {
        int ok = memcmp(prompt + i, "AND", 3) == 0;
        if (ok && i > 0) ok = !tpr_is_word(tpr_cp_before(prompt, i, &l));
        if (ok && i + 3 < n) ok = !tpr_is_word(tpr_cp_at(prompt, n, i + 3, &l));
        if (ok) {
            if (add_sub(out, &cap, prompt + part, i - part) < 0) goto oom;
            part = i = i + 3;
            continue;
        }
        tpr_cp_at(prompt, n, i, &l);
        i += l;
    }
    if (add_sub(out, &cap, prompt + part, n - part) < 0) goto oom;
    return 0;
oom:
    tpr_and_list_free(out);
    tpr_seterr(err, errlen, "out of memory");
    return -1;
}
