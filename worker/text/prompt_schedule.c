/* prompt_schedule.c - A1111 prompt editing [from:to:when] and alternation [a|b].
 *
 * The grammar (a1111-compat.md 3.2, A1111's lark grammar) is parsed by hand:
 *
 *   start:       (prompt | raw)*             raw = one of [ ] ( ) : kept as text
 *   prompt:      (emphasized | scheduled | alternate | plain | WHITESPACE)*
 *   emphasized:  "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
 *   scheduled:   "[" [prompt ":"] prompt ":" [WS] NUMBER [WS] "]"
 *   alternate:   "[" prompt ("|" [prompt])+ "]"
 *   plain:       ([^\\[]():|] | \\.)+
 *
 * Where the reference's Earley parser has several parses, we take the one
 * it resolves to: a bracket construct wins over raw text when it parses,
 * except for the top-level cases raw_wins() approximates. (lark resolves a
 * top-level construct followed by stray ] ) : characters by the insertion
 * order of its SPPF families, which depends on the whole raw run and on the
 * constructs around it; raw_wins() reproduces it for a construct followed by
 * plain stray characters, the residue is described in tests/unit/test_prompt.c.)
 * Anything the grammar rejects ('|' outside brackets, a trailing
 * backslash) makes the whole prompt plain text for every step. Construct
 * results are memoized per position, so parsing is linear even on hostile
 * input; nesting is capped at TPR_MAX_DEPTH.
 *
 * Steps: each scheduled node's NUMBER becomes `when` exactly as A1111
 * computes it (fraction vs absolute step, hires offsets, old scheduling),
 * alternation adds every step, and the text is rendered once per distinct
 * end step.
 */
#include "prompt_parse.h"
#include "prompt_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { N_TEXT, N_SEQ, N_SCHED, N_ALT };

typedef struct {
    int type;
    size_t off, len;     /* N_TEXT: span; N_SCHED: the NUMBER */
    size_t first, count; /* N_SEQ / N_ALT: children in kids[] (-1 = empty) */
    int before, after;   /* N_SCHED: nodes, before may be -1 */
    int when;
    size_t end;          /* first byte after the construct */
} node;

typedef struct {
    const char *s;
    size_t n;
    node *nodes;
    size_t nn, capn;
    int *kids;
    size_t nk, capk;
    int32_t *memo; /* per byte: 0 unknown, -1 failed, k+1 node k */
    int depth, too_deep, oom;
} parser;

static int new_node(parser *p, node nd) {
    if (p->nn == p->capn) {
        size_t c = p->capn ? p->capn * 2 : 64;
        node *v = realloc(p->nodes, c * sizeof *v);
        if (!v) { p->oom = 1; return -1; }
        p->nodes = v;
        p->capn = c;
    }
    p->nodes[p->nn] = nd;
    return (int)p->nn++;
}

/* Appends a contiguous child list; returns its first index. */
static size_t add_kids(parser *p, const int *k, size_t n) {
    if (p->nk + n > p->capk) {
        size_t c = p->capk ? p->capk : 64;
        while (c < p->nk + n) c *= 2;
        int *v = realloc(p->kids, c * sizeof *v);
        if (!v) { p->oom = 1; return 0; }
        p->kids = v;
        p->capk = c;
    }
    size_t f = p->nk;
    if (n) memcpy(p->kids + f, k, n * sizeof *k);
    p->nk += n;
    return f;
}

typedef struct {
    int *v;
    size_t n, cap;
} ivec;

static void ipush(parser *p, ivec *v, int x) {
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 8;
        int *nv = realloc(v->v, c * sizeof *nv);
        if (!nv) { p->oom = 1; return; }
        v->v = nv;
        v->cap = c;
    }
    v->v[v->n++] = x;
}

static int text_node(parser *p, size_t off, size_t len) {
    return new_node(p, (node){.type = N_TEXT, .off = off, .len = len, .before = -1, .after = -1});
}

static int seq_node(parser *p, ivec *k, size_t end) {
    size_t f = add_kids(p, k->v, k->n);
    return new_node(p, (node){.type = N_SEQ, .first = f, .count = k->n, .before = -1, .after = -1, .end = end});
}

static int is_plain_stop(char c) {
    return c == '\\' || c == '[' || c == ']' || c == '(' || c == ')' || c == ':' || c == '|';
}

/* plain/WHITESPACE run from i; returns its end (== i if none). A backslash
 * must escape one character other than a newline. */
static size_t plain_run(parser *p, size_t i) {
    while (i < p->n) {
        char c = p->s[i];
        if (c == '\\') {
            if (i + 1 >= p->n || p->s[i + 1] == '\n') break;
            size_t l;
            tpr_cp_at(p->s, p->n, i + 1, &l);
            i += 1 + l;
            continue;
        }
        if (is_plain_stop(c)) break;
        i++;
    }
    return i;
}

static int parse_construct(parser *p, size_t i);

/* prompt: returns an N_SEQ node; *end is where it stopped. */
static int parse_prompt(parser *p, size_t i, size_t *end) {
    ivec k = {0};
    while (i < p->n && !p->oom) {
        char c = p->s[i];
        if (c == '(' || c == '[') {
            int r = parse_construct(p, i);
            if (r < 0) break;
            ipush(p, &k, r);
            i = p->nodes[r].end;
            continue;
        }
        size_t j = plain_run(p, i);
        if (j == i) break;
        ipush(p, &k, text_node(p, i, j - i));
        i = j;
    }
    *end = i;
    int r = seq_node(p, &k, i);
    free(k.v);
    return r;
}

static size_t digits_end(const char *s, size_t n, size_t j) {
    while (j < n && s[j] >= '0' && s[j] <= '9') j++;
    return j;
}

/* ":" already consumed: [WS] NUMBER [WS] "]" from i. On success returns 1
 * with the NUMBER span and the position after ']'. */
static int number_tail(parser *p, size_t i, size_t *ns, size_t *ne, size_t *end) {
    const char *s = p->s;
    size_t n = p->n, l;
    while (i < n && tpr_is_space(tpr_cp_at(s, n, i, &l))) i += l;
    *ns = i;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
#define DIGITS(j) digits_end(s, n, (j))
    size_t d = DIGITS(i), e = 0;
    int ok = 0;
    /* FLOAT: INT _EXP | DECIMAL _EXP? ; then INT (first alternative that matches) */
    if (d > i && d < n && (s[d] == 'e' || s[d] == 'E')) {
        size_t x = d + 1;
        if (x < n && (s[x] == '+' || s[x] == '-')) x++;
        size_t y = DIGITS(x);
        if (y > x) { e = y; ok = 1; }
    }
    if (!ok) {
        size_t x = 0;
        if (d > i && d < n && s[d] == '.') x = DIGITS(d + 1);
        else if (d == i && i < n && s[i] == '.' && DIGITS(i + 1) > i + 1) x = DIGITS(i + 1);
        if (x) {
            e = x;
            ok = 1;
            if (e < n && (s[e] == 'e' || s[e] == 'E')) {
                size_t y = e + 1;
                if (y < n && (s[y] == '+' || s[y] == '-')) y++;
                size_t z = DIGITS(y);
                if (z > y) e = z;
            }
        }
    }
    if (!ok && d > i) { e = d; ok = 1; }
#undef DIGITS
    if (!ok) return 0;
    *ne = e;
    i = e;
    while (i < n && tpr_is_space(tpr_cp_at(s, n, i, &l))) i += l;
    if (i >= n || s[i] != ']') return 0;
    *end = i + 1;
    return 1;
}

static int construct_uncached(parser *p, size_t i) {
    const char *s = p->s;
    size_t e1, e2;
    int p1 = parse_prompt(p, i + 1, &e1);
    if (p1 < 0 || p->oom) return -1;
    ivec k = {0};
    int r = -1;
    if (s[i] == '(') {
        if (e1 < p->n && s[e1] == ')') {
            ipush(p, &k, text_node(p, i, 1)); ipush(p, &k, p1); ipush(p, &k, text_node(p, e1, 1));
            r = seq_node(p, &k, e1 + 1);
        } else if (e1 < p->n && s[e1] == ':') {
            int p2 = parse_prompt(p, e1 + 1, &e2);
            if (p2 >= 0 && e2 < p->n && s[e2] == ')') {
                ipush(p, &k, text_node(p, i, 1)); ipush(p, &k, p1); ipush(p, &k, text_node(p, e1, 1));
                ipush(p, &k, p2); ipush(p, &k, text_node(p, e2, 1));
                r = seq_node(p, &k, e2 + 1);
            }
        }
    } else if (e1 < p->n && s[e1] == ']') {
        ipush(p, &k, text_node(p, i, 1)); ipush(p, &k, p1); ipush(p, &k, text_node(p, e1, 1));
        r = seq_node(p, &k, e1 + 1);
    } else if (e1 < p->n && s[e1] == '|') {
        ipush(p, &k, p1);
        size_t j = e1;
        while (j < p->n && s[j] == '|' && !p->oom) {
            int pk = parse_prompt(p, j + 1, &j);
            ipush(p, &k, pk);
        }
        if (j < p->n && s[j] == ']') {
            size_t f = add_kids(p, k.v, k.n);
            r = new_node(p, (node){.type = N_ALT, .first = f, .count = k.n, .before = -1, .after = -1, .end = j + 1});
        }
    } else if (e1 < p->n && s[e1] == ':') {
        size_t ns, ne, end;
        if (number_tail(p, e1 + 1, &ns, &ne, &end)) {
            r = new_node(p, (node){.type = N_SCHED, .off = ns, .len = ne - ns, .before = -1, .after = p1, .end = end});
        } else {
            int p2 = parse_prompt(p, e1 + 1, &e2);
            if (p2 >= 0 && e2 < p->n && s[e2] == ':' && number_tail(p, e2 + 1, &ns, &ne, &end))
                r = new_node(p, (node){.type = N_SCHED, .off = ns, .len = ne - ns, .before = p1, .after = p2, .end = end});
        }
    }
    free(k.v);
    return p->oom ? -1 : r;
}

static int parse_construct(parser *p, size_t i) {
    if (p->memo[i]) return p->memo[i] < 0 ? -1 : p->memo[i] - 1;
    if (p->depth >= TPR_MAX_DEPTH) { p->too_deep = 1; return -1; }
    p->depth++;
    int r = construct_uncached(p, i);
    p->depth--;
    p->memo[i] = r < 0 ? -1 : r + 1;
    return r;
}

/* Top-level raw characters from i: ] ) : and any ( [ that opens no construct. */
static size_t raw_run(parser *p, size_t i) {
    size_t k = 0;
    while (i < p->n) {
        char c = p->s[i];
        if (c == '(' || c == '[') {
            if (parse_construct(p, i) >= 0) break;
        } else if (c != ')' && c != ']' && c != ':') break;
        i++, k++;
    }
    return k;
}

static int is_emphasis(const parser *p, const node *nd) {
    if (nd->type != N_SEQ || nd->count < 3) return 0;
    const node *f = &p->nodes[p->kids[nd->first]];
    return f->type == N_TEXT && f->len == 1 && (p->s[f->off] == '[' || p->s[f->off] == '(');
}

/* Constructs that close together at the end of r: 1 for [x:2], 2 for [[x:2]]
 * or ([x:2]), 3 for [[[x:2]]] (an emphasis whose last item is a construct
 * that ends right before its closing bracket adds one). */
static int chain_depth(const parser *p, int r) {
    const node *nd = &p->nodes[r];
    if (!is_emphasis(p, nd)) return 1;
    const node *in = &p->nodes[p->kids[nd->first + nd->count - 2]]; /* the last prompt */
    if (in->type != N_SEQ || in->count == 0) return 1;
    int last = p->kids[in->first + in->count - 1];
    const node *l = &p->nodes[last];
    int construct = l->type == N_SCHED || l->type == N_ALT || is_emphasis(p, l);
    return construct && l->end + 1 == nd->end ? 1 + chain_depth(p, last) : 1;
}

/* Whether A1111's lark parser reads the top-level construct r as raw text
 * (its brackets become raw characters and its contents top-level text, where
 * the constructs inside are decided again). Measured against lark 1.x with
 * the grammar of a1111-compat.md 3.2, k = the raw characters that follow r
 * and d = chain_depth(r):
 *   [x:2]+k      (d 1) raw iff k is even and >= 2  ("[x:2]::" is plain text)
 *   [[x:2]]+k    (d 2) all raw iff k is odd        (the inner one sees k+1)
 *   [[[x:2]]]+k  (d 3) all raw iff k is even and >= 2
 * i.e. raw iff k >= 1 and k + d is odd (for an emphasis with no schedule
 * inside either reading gives the same text). An alternation never is (a
 * top-level '|' would not parse). Not modelled: lark's choice also depends on
 * neighbouring constructs that it turns into raw text itself, e.g.
 * "[x:2]::[x:2]::" keeps the first one (see test_prompt.c for the residue). */
static int raw_wins(parser *p, int r) {
    if (p->nodes[r].type == N_ALT) return 0;
    size_t k = raw_run(p, p->nodes[r].end);
    return k >= 1 && (k + (size_t)chain_depth(p, r)) % 2 == 1;
}

/* start: returns an N_SEQ node, or -1 when the grammar rejects the text. */
static int parse_start(parser *p) {
    ivec k = {0};
    size_t i = 0;
    int ok = 1;
    while (i < p->n && !p->oom) {
        char c = p->s[i];
        if (c == '(' || c == '[') {
            int r = parse_construct(p, i);
            if (r >= 0 && !raw_wins(p, r)) { ipush(p, &k, r); i = p->nodes[r].end; continue; }
        }
        if (c == '(' || c == '[' || c == ')' || c == ']' || c == ':') {
            ipush(p, &k, text_node(p, i, 1)); /* one raw character */
            i++;
            continue;
        }
        size_t j = plain_run(p, i);
        if (j == i) { ok = 0; break; } /* '|' or a bad backslash */
        ipush(p, &k, text_node(p, i, j - i));
        i = j;
    }
    int r = ok ? seq_node(p, &k, i) : -1;
    free(k.v);
    return r;
}

typedef struct {
    int steps, int_offset, old;
    double flt_offset;
    char *steplist; /* steplist[t] for t in 1..steps */
    int bad;        /* a when that Python's int() rejects */
} collect;

static void collect_steps(parser *p, int id, collect *c, int depth) {
    if (id < 0) return;
    node *nd = &p->nodes[id];
    if (nd->type == N_SEQ || nd->type == N_ALT) {
        if (nd->type == N_ALT) for (int t = 1; t <= c->steps; t++) c->steplist[t] = 1;
        for (size_t k = 0; k < nd->count; k++) collect_steps(p, p->kids[nd->first + k], c, depth + 1);
        return;
    }
    if (nd->type != N_SCHED) return;
    collect_steps(p, nd->before, c, depth + 1);
    collect_steps(p, nd->after, c, depth + 1);
    char buf[64];
    size_t l = nd->len < sizeof buf - 1 ? nd->len : sizeof buf - 1;
    memcpy(buf, p->s + nd->off, l);
    buf[l] = 0;
    double v = strtod(buf, NULL);
    if (nd->len >= sizeof buf - 1) v = INFINITY; /* absurdly long: treat like an overflow */
    if (c->old) {
        if (v < 1) v = v * c->steps;
    } else if (memchr(p->s + nd->off, '.', nd->len)) {
        v = (v - c->flt_offset) * c->steps;
    } else {
        v = v - c->int_offset;
    }
    if (!isfinite(v)) { c->bad = 1; return; }
    int when = v < 1 ? 0 : (v >= c->steps ? c->steps : (int)v);
    nd->when = when;
    if (when >= 1) c->steplist[when] = 1;
}

static void render(parser *p, int id, int step, tpr_buf *b) {
    if (id < 0) return;
    node *nd = &p->nodes[id];
    switch (nd->type) {
    case N_TEXT: tpr_buf_add(b, p->s + nd->off, nd->len); break;
    case N_SEQ:
        for (size_t k = 0; k < nd->count; k++) render(p, p->kids[nd->first + k], step, b);
        break;
    case N_SCHED: render(p, step <= nd->when ? nd->before : nd->after, step, b); break;
    case N_ALT: render(p, p->kids[nd->first + (size_t)((step - 1) % (int)nd->count)], step, b); break;
    }
}

void tpr_schedule_free(tpr_schedule *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->v[i].text);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

int tpr_schedules(const char *prompt, int steps, tpr_schedule *out, char *err, size_t errlen) {
    return tpr_schedules_ex(prompt, steps, NULL, out, err, errlen);
}

int tpr_schedules_ex(const char *prompt, int steps, const tpr_sched_opts *opts, tpr_schedule *out,
                     char *err, size_t errlen) {
    out->v = NULL;
    out->n = 0;
    if (!prompt) prompt = "";
    collect c = {.steps = steps};
    if (opts && opts->hires_steps > 0 && !opts->use_old_scheduling) {
        c.int_offset = steps;
        c.flt_offset = 1.0;
        c.steps = opts->hires_steps;
    }
    c.old = opts && opts->use_old_scheduling;
    if (c.steps < 1 || c.steps > 1000000) {
        tpr_seterr(err, errlen, "steps must be in 1..1000000, not %d", c.steps);
        return -1;
    }
    parser p = {.s = prompt, .n = strlen(prompt)};
    p.memo = calloc(p.n + 1, sizeof *p.memo);
    c.steplist = calloc((size_t)c.steps + 1, 1);
    int rc = 0;
    if (!p.memo || !c.steplist) { rc = -1; tpr_seterr(err, errlen, "out of memory"); goto done; }
    int root = parse_start(&p);
    if (p.oom) { rc = -1; tpr_seterr(err, errlen, "out of memory"); goto done; }
    if (p.too_deep) { rc = -1; tpr_seterr(err, errlen, "prompt nesting deeper than %d", TPR_MAX_DEPTH); goto done; }
    if (root < 0) { /* not in the grammar: the prompt as is, for all steps */
        out->v = malloc(sizeof *out->v);
        char *t = tpr_strndup(prompt, p.n);
        if (!out->v || !t) { free(out->v); free(t); out->v = NULL; rc = -1; tpr_seterr(err, errlen, "out of memory"); goto done; }
        out->v[0] = (tpr_sched_entry){c.steps, t};
        out->n = 1;
        goto done;
    }
    c.steplist[c.steps] = 1;
    collect_steps(&p, root, &c, 0);
    if (c.bad) { rc = -1; tpr_seterr(err, errlen, "a prompt-editing step number is out of range"); goto done; }
    size_t cnt = 0;
    for (int t = 1; t <= c.steps; t++) cnt += c.steplist[t];
    out->v = calloc(cnt, sizeof *out->v);
    if (!out->v) { rc = -1; tpr_seterr(err, errlen, "out of memory"); goto done; }
    for (int t = 1; t <= c.steps; t++) {
        if (!c.steplist[t]) continue;
        tpr_buf b = {0};
        render(&p, root, t, &b);
        char *txt = tpr_buf_take(&b);
        if (!txt) { rc = -1; tpr_seterr(err, errlen, "out of memory"); tpr_schedule_free(out); goto done; }
        out->v[out->n++] = (tpr_sched_entry){t, txt};
    }
done:
    free(p.nodes);
    free(p.kids);
    free(p.memo);
    free(c.steplist);
    return rc;
}
