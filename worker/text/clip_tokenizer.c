/* clip_tokenizer.c - CLIP byte-level BPE, equal to the reference (see the header).
 *
 * Representation: every string the vocabulary or the merge list mentions is
 * interned once as a "symbol" (an index). A merge is a pair of symbols with a
 * rank and a result symbol, kept in an open-addressing hash keyed by the pair.
 * BPE of one pre-token is then integer work: a doubly linked list of symbols
 * and a binary heap of candidate pairs ordered by (rank, position), which
 * gives the reference's result (repeatedly merge every occurrence of the
 * lowest-ranked pair, left to right) in O(n log n) instead of O(n^2), with no
 * cache. All pairs of one rank are merged before pairs created by those
 * merges become candidates, exactly like the reference's full pass.
 */
#include "clip_tokenizer.h"
#include "text_norm.h"
#include "unicode_tables.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SOT "<|startoftext|>"
#define EOT "<|endoftext|>"

typedef struct {
    uint64_t key; /* (a << 32 | b) + 1; 0 = empty */
    uint32_t rank, res;
} merge_slot;

struct ttok_tokenizer {
    char **sym;          /* interned strings */
    int *sym_vocab;      /* vocabulary id of each symbol, -1 if none */
    size_t nsym, capsym;
    uint32_t *shash;     /* symbol index + 1; 0 = empty */
    size_t shcap;
    int *vocab_sym;      /* vocabulary id -> symbol, -1 if the id is unused */
    int nvocab;
    uint32_t (*merges)[2]; /* in file order */
    size_t nmerges;
    merge_slot *mhash;
    size_t mhcap;
    uint32_t byte_sym[256], byte_sym_w[256];
    int bos, eos, unk;
    ttok_mode mode;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- symbol interning ---- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h;
}

static int sh_grow(ttok_tokenizer *t) {
    size_t ncap = t->shcap ? t->shcap * 2 : 1 << 16;
    uint32_t *nh = calloc(ncap, sizeof *nh);
    if (!nh) return -1;
    for (size_t i = 0; i < t->shcap; i++) {
        uint32_t v = t->shash[i];
        if (!v) continue;
        const char *s = t->sym[v - 1];
        size_t j = hash_bytes(s, strlen(s)) & (ncap - 1);
        while (nh[j]) j = (j + 1) & (ncap - 1);
        nh[j] = v;
    }
    free(t->shash);
    t->shash = nh;
    t->shcap = ncap;
    return 0;
}

/* Finds a symbol; returns its index or -1. */
static long sym_find(const ttok_tokenizer *t, const char *s, size_t n) {
    if (!t->shcap) return -1;
    size_t j = hash_bytes(s, n) & (t->shcap - 1);
    while (t->shash[j]) {
        const char *c = t->sym[t->shash[j] - 1];
        if (strlen(c) == n && memcmp(c, s, n) == 0) return (long)t->shash[j] - 1;
        j = (j + 1) & (t->shcap - 1);
    }
    return -1;
}

/* Interns s[0..n); returns the symbol index or -1 on allocation failure. */
static long sym_intern(ttok_tokenizer *t, const char *s, size_t n) {
    long f = sym_find(t, s, n);
    if (f >= 0) return f;
    if ((t->nsym + 1) * 2 > t->shcap && sh_grow(t) < 0) return -1;
    if (t->nsym == t->capsym) {
        size_t nc = t->capsym ? t->capsym * 2 : 1024;
        char **ns = realloc(t->sym, nc * sizeof *ns);
        if (!ns) return -1;
        t->sym = ns;
        int *nv = realloc(t->sym_vocab, nc * sizeof *nv);
        if (!nv) return -1;
        t->sym_vocab = nv;
        t->capsym = nc;
    }
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    c[n] = 0;
    t->sym[t->nsym] = c;
    t->sym_vocab[t->nsym] = -1;
    size_t j = hash_bytes(s, n) & (t->shcap - 1);
    while (t->shash[j]) j = (j + 1) & (t->shcap - 1);
    t->shash[j] = (uint32_t)(t->nsym + 1);
    return (long)t->nsym++;
}

/* ---- merges ---- */

static merge_slot *mh_slot(const ttok_tokenizer *t, uint32_t a, uint32_t b) {
    uint64_t key = (((uint64_t)a << 32) | b) + 1;
    size_t j = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & (t->mhcap - 1);
    while (t->mhash[j].key && t->mhash[j].key != key) j = (j + 1) & (t->mhcap - 1);
    return &t->mhash[j];
}

static int build_merges(ttok_tokenizer *t, char *err, size_t errlen) {
    size_t cap = 16;
    while (cap < t->nmerges * 2 + 16) cap *= 2;
    t->mhash = calloc(cap, sizeof *t->mhash);
    if (!t->mhash) { seterr(err, errlen, "out of memory"); return -1; }
    t->mhcap = cap;
    char buf[1024];
    for (size_t r = 0; r < t->nmerges; r++) {
        uint32_t a = t->merges[r][0], b = t->merges[r][1];
        size_t la = strlen(t->sym[a]), lb = strlen(t->sym[b]);
        char *s = (la + lb < sizeof buf) ? buf : malloc(la + lb + 1);
        if (!s) { seterr(err, errlen, "out of memory"); return -1; }
        memcpy(s, t->sym[a], la);
        memcpy(s + la, t->sym[b], lb);
        long res = sym_intern(t, s, la + lb);
        if (s != buf) free(s);
        if (res < 0) { seterr(err, errlen, "out of memory"); return -1; }
        merge_slot *m = mh_slot(t, a, b);
        m->key = (((uint64_t)a << 32) | b) + 1;
        m->rank = (uint32_t)r; /* a repeated pair keeps its last rank, like dict(zip(...)) */
        m->res = (uint32_t)res;
    }
    return 0;
}

/* bytes_to_unicode(): the printable bytes map to themselves, the rest to
 * U+0100.. in byte order. order[] lists the bytes in the reference's
 * vocabulary order. */
static void byte_table(uint32_t map[256], int order[256]) {
    int n = 0, k = 0;
    int is_print[256] = {0};
    for (int b = '!'; b <= '~'; b++) is_print[b] = 1;
    for (int b = 0xA1; b <= 0xAC; b++) is_print[b] = 1;
    for (int b = 0xAE; b <= 0xFF; b++) is_print[b] = 1;
    for (int b = 0; b < 256; b++)
        if (is_print[b]) { map[b] = (uint32_t)b; order[k++] = b; }
    for (int b = 0; b < 256; b++)
        if (!is_print[b]) { map[b] = 256u + (uint32_t)n++; order[k++] = b; }
}

static int init_bytes(ttok_tokenizer *t, char *err, size_t errlen) {
    uint32_t map[256];
    int order[256];
    byte_table(map, order);
    for (int b = 0; b < 256; b++) {
        char s[16];
        int n = ut_utf8_encode(map[b], s);
        long a = sym_intern(t, s, (size_t)n);
        memcpy(s + n, "</w>", 4);
        long w = sym_intern(t, s, (size_t)n + 4);
        if (a < 0 || w < 0) { seterr(err, errlen, "out of memory"); return -1; }
        t->byte_sym[b] = (uint32_t)a;
        t->byte_sym_w[b] = (uint32_t)w;
    }
    return 0;
}

static int vocab_id_of(const ttok_tokenizer *t, const char *s) {
    long f = sym_find(t, s, strlen(s));
    return f < 0 ? -1 : t->sym_vocab[f];
}

static void set_specials(ttok_tokenizer *t) {
    t->bos = vocab_id_of(t, SOT);
    t->eos = vocab_id_of(t, EOT);
    t->unk = t->eos >= 0 ? t->eos : 0;
}

void ttok_free(ttok_tokenizer *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nsym; i++) free(t->sym[i]);
    free(t->sym);
    free(t->sym_vocab);
    free(t->shash);
    free(t->vocab_sym);
    free(t->merges);
    free(t->mhash);
    free(t);
}

/* Parses merge lines (already split into lines) into t->merges. Each line
 * must have exactly two whitespace-separated parts. */
static int add_merge_line(ttok_tokenizer *t, const char *line, size_t len, size_t lineno,
                          char *err, size_t errlen) {
    const char *p[3];
    size_t pl[3];
    int np = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && strchr(" \t\r\v\f", line[i])) i++;
        if (i >= len) break;
        size_t s = i;
        while (i < len && !strchr(" \t\r\v\f", line[i])) i++;
        if (np < 3) { p[np] = line + s; pl[np] = i - s; }
        np++;
    }
    if (np != 2) {
        seterr(err, errlen, "merges line %zu: expected two symbols, found %d", lineno, np);
        return -1;
    }
    long a = sym_intern(t, p[0], pl[0]), b = sym_intern(t, p[1], pl[1]);
    if (a < 0 || b < 0) { seterr(err, errlen, "out of memory"); return -1; }
    t->merges[t->nmerges][0] = (uint32_t)a;
    t->merges[t->nmerges][1] = (uint32_t)b;
    t->nmerges++;
    return 0;
}

/* Reads lines [1, 1+TTOK_GZ_MERGES) of text (split on '\n') as merges. */
static int parse_merges(ttok_tokenizer *t, const char *text, size_t len, char *err, size_t errlen) {
    t->merges = malloc(TTOK_GZ_MERGES * sizeof *t->merges);
    if (!t->merges) { seterr(err, errlen, "out of memory"); return -1; }
    size_t line = 0, i = 0;
    while (i <= len && t->nmerges < TTOK_GZ_MERGES) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        if (line >= 1 && add_merge_line(t, text + i, e - i, line + 1, err, errlen) < 0) return -1;
        line++;
        if (!nl) break;
        i = e + 1;
    }
    return 0;
}

static ttok_tokenizer *tok_new(char *err, size_t errlen) {
    ttok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { seterr(err, errlen, "out of memory"); return NULL; }
    t->mode = TTOK_MODE_FTFY;
    if (init_bytes(t, err, errlen) < 0) { ttok_free(t); return NULL; }
    return t;
}

static int check_utf8(const char *s, size_t n) {
    uint32_t *tmp = malloc((n + 1) * sizeof *tmp);
    if (!tmp) return -1;
    size_t m = ut_utf8_decode(s, n, tmp);
    int bad = 0;
    for (size_t i = 0; i < m; i++) if (tmp[i] == 0xFFFD) bad = 1;
    free(tmp);
    return bad ? -1 : 0;
}

int ttok_load_bpe_gz(const char *path, ttok_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz) { seterr(err, errlen, "%s: cannot open", path); return -1; }
    size_t cap = 1 << 21, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) { gzclose(gz); seterr(err, errlen, "out of memory"); return -1; }
        if (len == cap) {
            if (cap >= ((size_t)1 << 30)) { free(buf); gzclose(gz); seterr(err, errlen, "%s: too large", path); return -1; }
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; continue; }
            buf = nb;
        }
        int r = gzread(gz, buf + len, (unsigned)(cap - len));
        if (r < 0) {
            int e;
            seterr(err, errlen, "%s: %s", path, gzerror(gz, &e));
            free(buf); gzclose(gz); return -1;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    gzclose(gz);
    if (check_utf8(buf, len) < 0) { free(buf); seterr(err, errlen, "%s: not UTF-8 text", path); return -1; }
    ttok_tokenizer *t = tok_new(err, errlen);
    if (!t) { free(buf); return -1; }
    int rc = parse_merges(t, buf, len, err, errlen);
    free(buf);
    if (rc < 0) { ttok_free(t); return -1; }
    if (t->nmerges == 0) { ttok_free(t); seterr(err, errlen, "%s: no merges", path); return -1; }
    if (build_merges(t, err, errlen) < 0) { ttok_free(t); return -1; }
    /* vocabulary: bytes, bytes + </w>, merges, specials */
    uint32_t map[256];
    int order[256];
    byte_table(map, order);
    t->nvocab = (int)(512 + t->nmerges + 2);
    t->vocab_sym = malloc((size_t)t->nvocab * sizeof *t->vocab_sym);
    if (!t->vocab_sym) { ttok_free(t); seterr(err, errlen, "out of memory"); return -1; }
    int id = 0;
    for (int k = 0; k < 256; k++) t->vocab_sym[id++] = (int)t->byte_sym[order[k]];
    for (int k = 0; k < 256; k++) t->vocab_sym[id++] = (int)t->byte_sym_w[order[k]];
    for (size_t r = 0; r < t->nmerges; r++) t->vocab_sym[id++] = (int)mh_slot(t, t->merges[r][0], t->merges[r][1])->res;
    long s1 = sym_intern(t, SOT, strlen(SOT)), s2 = sym_intern(t, EOT, strlen(EOT));
    if (s1 < 0 || s2 < 0) { ttok_free(t); seterr(err, errlen, "out of memory"); return -1; }
    t->vocab_sym[id++] = (int)s1;
    t->vocab_sym[id++] = (int)s2;
    /* the reference builds dict(zip(vocab, range)): a repeated string keeps its last id */
    for (int i = 0; i < t->nvocab; i++) t->sym_vocab[t->vocab_sym[i]] = i;
    set_specials(t);
    *out = t;
    return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { seterr(err, errlen, "%s: cannot open", path); return NULL; }
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        if (cap >= ((size_t)1 << 30)) { free(buf); buf = NULL; break; }
        char *nb = realloc(buf, (cap *= 2) + 1);
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) { free(buf); seterr(err, errlen, "%s: cannot read", path); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

int ttok_load_json(const char *vocab_path, const char *merges_path, ttok_tokenizer **out,
                   char *err, size_t errlen) {
    *out = NULL;
    json_error_t je;
    json_t *v = json_load_file(vocab_path, 0, &je);
    if (!v) { seterr(err, errlen, "%s:%d: %s", vocab_path, je.line, je.text); return -1; }
    if (!json_is_object(v)) { json_decref(v); seterr(err, errlen, "%s: not a JSON object", vocab_path); return -1; }
    ttok_tokenizer *t = tok_new(err, errlen);
    if (!t) { json_decref(v); return -1; }
    const char *key;
    json_t *val;
    long long maxid = -1;
    json_object_foreach(v, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 24)) {
            seterr(err, errlen, "%s: id of \"%.40s\" is not an integer in [0, 2^24)", vocab_path, key);
            json_decref(v); ttok_free(t); return -1;
        }
        if (json_integer_value(val) > maxid) maxid = json_integer_value(val);
    }
    t->nvocab = (int)(maxid + 1);
    t->vocab_sym = malloc(((size_t)t->nvocab + 1) * sizeof *t->vocab_sym);
    if (!t->vocab_sym) { json_decref(v); ttok_free(t); seterr(err, errlen, "out of memory"); return -1; }
    for (int i = 0; i < t->nvocab; i++) t->vocab_sym[i] = -1;
    json_object_foreach(v, key, val) {
        long s = sym_intern(t, key, strlen(key));
        if (s < 0) { json_decref(v); ttok_free(t); seterr(err, errlen, "out of memory"); return -1; }
        int id = (int)json_integer_value(val);
        t->vocab_sym[id] = (int)s;
        t->sym_vocab[s] = id;
    }
    json_decref(v);
    size_t len;
    char *text = read_file(merges_path, &len, err, errlen);
    if (!text) { ttok_free(t); return -1; }
    /* the reference: read().strip().split("\n")[1:48895] */
    size_t b = 0, e = len;
    while (b < e && strchr(" \t\n\r\v\f", text[b])) b++;
    while (e > b && strchr(" \t\n\r\v\f", text[e - 1])) e--;
    if (check_utf8(text + b, e - b) < 0) { free(text); ttok_free(t); seterr(err, errlen, "%s: not UTF-8 text", merges_path); return -1; }
    int rc = parse_merges(t, text + b, e - b, err, errlen);
    free(text);
    if (rc < 0 || build_merges(t, err, errlen) < 0) { ttok_free(t); return -1; }
    set_specials(t);
    *out = t;
    return 0;
}

int ttok_vocab_size(const ttok_tokenizer *t) { return t->nvocab; }
int ttok_bos_id(const ttok_tokenizer *t) { return t->bos; }
int ttok_eos_id(const ttok_tokenizer *t) { return t->eos; }
int ttok_token_id(const ttok_tokenizer *t, const char *s) { return vocab_id_of(t, s); }
const char *ttok_token_str(const ttok_tokenizer *t, int id) {
    if (id < 0 || id >= t->nvocab || t->vocab_sym[id] < 0) return NULL;
    return t->sym[t->vocab_sym[id]];
}
size_t ttok_merge_count(const ttok_tokenizer *t) { return t->nmerges; }
int ttok_merge_parts(const ttok_tokenizer *t, size_t i, const char **a, const char **b) {
    if (i >= t->nmerges) return -1;
    *a = t->sym[t->merges[i][0]];
    *b = t->sym[t->merges[i][1]];
    return 0;
}

/* ---- encoding ---- */

typedef struct {
    const ttok_tokenizer *t;
    int *ids;
    size_t cap, n;
    /* BPE scratch, sized for the longest piece so far */
    uint32_t *sym;
    int32_t *prev, *next;
    struct hent { uint32_t rank, pos; } *heap, *pend;
    size_t scap, nheap, npend;
    int oom;
} enc_state;

static void emit(enc_state *st, int id) {
    if (st->n < st->cap) st->ids[st->n] = id;
    st->n++;
}

static int hless(struct hent a, struct hent b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void hpush(enc_state *st, struct hent e) {
    size_t i = st->nheap++;
    st->heap[i] = e;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hless(st->heap[i], st->heap[p])) break;
        struct hent x = st->heap[i]; st->heap[i] = st->heap[p]; st->heap[p] = x;
        i = p;
    }
}

static struct hent hpop(enc_state *st) {
    struct hent top = st->heap[0];
    st->heap[0] = st->heap[--st->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < st->nheap && hless(st->heap[l], st->heap[m])) m = l;
        if (r < st->nheap && hless(st->heap[r], st->heap[m])) m = r;
        if (m == i) break;
        struct hent x = st->heap[i]; st->heap[i] = st->heap[m]; st->heap[m] = x;
        i = m;
    }
    return top;
}

static int ensure_scratch(enc_state *st, size_t n) {
    if (n <= st->scap) return 0;
    size_t c = st->scap ? st->scap : 64;
    while (c < n) c *= 2;
    uint32_t *s = realloc(st->sym, c * sizeof *s);
    if (s) st->sym = s;
    int32_t *p = realloc(st->prev, c * sizeof *p);
    if (p) st->prev = p;
    int32_t *x = realloc(st->next, c * sizeof *x);
    if (x) st->next = x;
    struct hent *h = realloc(st->heap, c * sizeof *h);
    if (h) st->heap = h;
    struct hent *q = realloc(st->pend, 2 * c * sizeof *q);
    if (q) st->pend = q;
    if (!s || !p || !x || !h || !q) return -1;
    st->scap = c;
    return 0;
}

static int pair_rank(const ttok_tokenizer *t, uint32_t a, uint32_t b, uint32_t *rank) {
    merge_slot *m = mh_slot(t, a, b);
    if (!m->key) return 0;
    *rank = m->rank;
    return 1;
}

/* BPE of one pre-token given as bytes; emits vocabulary ids. */
static void bpe_piece(enc_state *st, const char *bytes, size_t n) {
    const ttok_tokenizer *t = st->t;
    if (n == 0) return;
    if (ensure_scratch(st, n) < 0) { st->oom = 1; return; }
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)bytes[i];
        st->sym[i] = i + 1 == n ? t->byte_sym_w[b] : t->byte_sym[b];
        st->prev[i] = (int32_t)i - 1;
        st->next[i] = i + 1 == n ? -1 : (int32_t)i + 1;
    }
    st->nheap = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r;
        if (pair_rank(t, st->sym[i], st->sym[i + 1], &r)) hpush(st, (struct hent){r, (uint32_t)i});
    }
    while (st->nheap) {
        uint32_t rank = st->heap[0].rank;
        st->npend = 0;
        while (st->nheap && st->heap[0].rank == rank) {
            struct hent e = hpop(st);
            int32_t p = (int32_t)e.pos, q;
            if (st->prev[p] == -2 || (q = st->next[p]) < 0) continue; /* dead or at the end */
            uint32_t r;
            if (!pair_rank(t, st->sym[p], st->sym[q], &r) || r != rank) continue; /* stale */
            st->sym[p] = mh_slot(t, st->sym[p], st->sym[q])->res;
            st->next[p] = st->next[q];
            if (st->next[q] >= 0) st->prev[st->next[q]] = p;
            st->prev[q] = -2;
            if (st->prev[p] >= 0 && pair_rank(t, st->sym[st->prev[p]], st->sym[p], &r))
                st->pend[st->npend++] = (struct hent){r, (uint32_t)st->prev[p]};
            if (st->next[p] >= 0 && pair_rank(t, st->sym[p], st->sym[st->next[p]], &r))
                st->pend[st->npend++] = (struct hent){r, (uint32_t)p};
        }
        for (size_t k = 0; k < st->npend; k++) hpush(st, st->pend[k]);
    }
    for (int32_t p = 0; p >= 0; p = st->next[p]) {
        int id = t->sym_vocab[st->sym[p]];
        emit(st, id >= 0 ? id : t->unk);
    }
}


enum { CL_NONE = 0, CL_L, CL_N, CL_O };

static int rx_class(uint32_t c) {
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CL_L;
        if (c >= '0' && c <= '9') return CL_N;
    }
    if (UT_IN(ut_rx_letter, c)) return CL_L;
    if (UT_IN(ut_rx_number, c)) return CL_N;
    if (UT_IN(ut_rx_other, c)) return CL_O;
    return CL_NONE;
}

/* Encodes w[s..e) as UTF-8 and runs BPE on it. */
static void piece(enc_state *st, const uint32_t *w, size_t s, size_t e, char **buf, size_t *bcap) {
    size_t need = (e - s) * 4;
    if (need > *bcap) {
        char *nb = realloc(*buf, need);
        if (!nb) { st->oom = 1; return; }
        *buf = nb;
        *bcap = need;
    }
    size_t n = 0;
    for (size_t i = s; i < e; i++) n += (size_t)ut_utf8_encode(w[i], *buf + n);
    bpe_piece(st, *buf, n);
}

/* The CLIP pattern over one piece (no whitespace; a punctuation character
 * is always a piece of its own, so the special-token and contraction
 * alternatives, which start with '<' or '\'', can never match more than the
 * single character and only the class alternatives remain). */
static void pretokenize(enc_state *st, const uint32_t *w, size_t n, char **buf, size_t *bcap) {
    size_t i = 0;
    while (i < n && !st->oom) {
        int c = rx_class(w[i]);
        if (c == CL_NONE) { i++; continue; }
        size_t j = i + 1;
        if (c != CL_N)
            while (j < n && rx_class(w[j]) == c) j++;
        piece(st, w, i, j, buf, bcap);
        i = j;
    }
}

static int is_cased(uint32_t c) { return UT_IN(ut_py_cased, c); }
static int is_case_ign(uint32_t c) { return UT_IN(ut_py_case_ignorable, c); }

/* str.lower() of w[0..n) into out (room for 3n); returns the length. */
static size_t py_lower(const uint32_t *w, size_t n, uint32_t *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0x3A3) { /* final sigma context */
            long j = (long)i - 1;
            while (j >= 0 && is_case_ign(w[j])) j--;
            int fin = j >= 0 && is_cased(w[j]);
            if (fin && i + 1 < n) {
                size_t k = i + 1;
                while (k < n && is_case_ign(w[k])) k++;
                fin = k == n || !is_cased(w[k]);
            }
            out[o++] = fin ? 0x3C2 : 0x3C3;
            continue;
        }
        uint32_t l[3];
        int k = ut_lower_cp(w[i], l);
        for (int x = 0; x < k; x++) out[o++] = l[x];
    }
    return o;
}

static int is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* BasicTokenizer on one segment of text between literal "<|endoftext|>",
 * then the CLIP pattern and BPE on every piece. */
static void encode_segment(enc_state *st, const char *s, size_t len) {
    uint32_t *cp = NULL, *low = NULL, *nfd = NULL;
    char *buf = NULL;
    size_t bcap = 0, lowcap = 0;
    cp = malloc((len + 1) * sizeof *cp);
    if (!cp) goto oom;
    size_t n = ut_utf8_decode(s, len, cp), m = 0;
    /* _clean_text: drop NUL, U+FFFD, controls; whitespace -> ' '. Then
     * _tokenize_chinese_chars puts spaces around CJK ideographs, which here
     * simply means: a CJK ideograph is a word of its own. */
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c == 0 || c == 0xFFFD || UT_IN(ut_bert_ctrl, c)) continue;
        if (UT_IN(ut_bert_ws, c)) c = ' ';
        cp[m++] = c;
    }
    n = m;
    size_t i = 0;
    while (i < n && !st->oom) {
        /* whitespace_tokenize: str.split() */
        while (i < n && UT_IN(ut_py_space, cp[i])) i++;
        size_t b = i;
        if (i < n && is_cjk(cp[i])) i++;
        else
            while (i < n && !UT_IN(ut_py_space, cp[i]) && !is_cjk(cp[i])) i++;
        if (i == b) break;
        /* lower(), then _run_strip_accents: NFD, drop Mn */
        size_t wl = i - b;
        if (wl * 12 > lowcap) {
            free(low); free(nfd);
            lowcap = wl * 12;
            low = malloc(lowcap * sizeof *low);
            nfd = malloc(lowcap * sizeof *nfd);
            if (!low || !nfd) goto oom;
        }
        size_t ll = py_lower(cp + b, wl, low);
        size_t dl = ut_nfd(low, ll, nfd), k = 0;
        for (size_t x = 0; x < dl; x++)
            if (!UT_IN(ut_py_mn, nfd[x])) nfd[k++] = nfd[x];
        /* _run_split_on_punc: every punctuation character is a piece; the
         * final whitespace_tokenize drops empty pieces. */
        size_t x = 0;
        while (x < k && !st->oom) {
            if (UT_IN(ut_bert_punct, nfd[x])) { pretokenize(st, nfd + x, 1, &buf, &bcap); x++; continue; }
            size_t y = x;
            while (y < k && !UT_IN(ut_bert_punct, nfd[y])) y++;
            pretokenize(st, nfd + x, y - x, &buf, &bcap);
            x = y;
        }
    }
    goto done;
oom:
    st->oom = 1;
done:
    free(cp); free(low); free(nfd); free(buf);
}


static int ci_eq(uint32_t c, char a) {
    /* regex module IGNORECASE on lower-cased text: only U+017F also matches 's' */
    return c == (uint32_t)a || (a == 's' && c == 0x17F);
}

static size_t lit_ci(const uint32_t *w, size_t n, size_t i, const char *lit) {
    size_t l = strlen(lit);
    if (i + l > n) return 0;
    for (size_t k = 0; k < l; k++)
        if (!ci_eq(w[i + k], lit[k])) return 0;
    return l;
}

/* The full CLIP pattern (regex module, IGNORECASE) over cleaned text:
 * <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * A piece spelling a special token exactly is that token (the reference's
 * bpe() cache); a case-folded look-alike (U+017F) is BPE'd as text. */
static void pretokenize_full(enc_state *st, const uint32_t *w, size_t n, char **buf, size_t *bcap) {
    static const char *const contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", NULL};
    size_t i = 0;
    while (i < n && !st->oom) {
        size_t l = 0;
        if (w[i] == '<') {
            if ((l = lit_ci(w, n, i, SOT)) || (l = lit_ci(w, n, i, EOT))) {
                int exact = 1;
                for (size_t k = 0; k < l; k++) if (w[i + k] >= 0x80) exact = 0;
                if (exact) {
                    int id = vocab_id_of(st->t, l == strlen(SOT) ? SOT : EOT);
                    emit(st, id >= 0 ? id : st->t->unk);
                } else {
                    piece(st, w, i, i + l, buf, bcap);
                }
                i += l;
                continue;
            }
        } else if (w[i] == '\'') {
            for (int k = 0; contr[k] && !l; k++) l = lit_ci(w, n, i, contr[k]);
            if (l) { piece(st, w, i, i + l, buf, bcap); i += l; continue; }
        }
        int c = rx_class(w[i]);
        if (c == CL_NONE) { i++; continue; }
        size_t j = i + 1;
        if (c != CL_N)
            while (j < n && rx_class(w[j]) == c) j++;
        piece(st, w, i, j, buf, bcap);
        i = j;
    }
}

/* The ftfy path: whitespace_clean(ftfy.fix_text(text)).lower(), then the
 * CLIP pattern and BPE. */
static void encode_segment_ftfy(enc_state *st, const char *s, size_t len) {
    uint32_t *cp = NULL, *fx = NULL, *low = NULL;
    char *buf = NULL;
    size_t bcap = 0, n, fn = 0;
    cp = malloc((len + 1) * sizeof *cp);
    if (!cp) goto oom;
    n = ut_utf8_decode(s, len, cp);
    fx = tn_ftfy_fix_text(cp, n, &fn);
    if (!fx) goto oom;
    /* whitespace_clean: re.sub(r"\s+", " ", text).strip() */
    size_t m = 0;
    for (size_t i = 0; i < fn; i++) {
        if (UT_IN(ut_py_space, fx[i])) {
            if (m > 0 && fx[m - 1] != ' ') fx[m++] = ' ';
        } else {
            fx[m++] = fx[i];
        }
    }
    if (m > 0 && fx[m - 1] == ' ') m--;
    low = malloc((3 * m + 1) * sizeof *low);
    if (!low) goto oom;
    size_t ll = py_lower(fx, m, low);
    pretokenize_full(st, low, ll, &buf, &bcap);
    goto done;
oom:
    st->oom = 1;
done:
    free(cp); free(fx); free(low); free(buf);
}

int ttok_encode(const ttok_tokenizer *t, const char *utf8, size_t len, int *ids, size_t cap,
                size_t *n, char *err, size_t errlen) {
    return ttok_encode_mode(t, t->mode, utf8, len, ids, cap, n, err, errlen);
}

int ttok_set_mode(ttok_tokenizer *t, ttok_mode mode) {
    if (mode != TTOK_MODE_FTFY && mode != TTOK_MODE_BASIC) return -1;
    t->mode = mode;
    return 0;
}

ttok_mode ttok_get_mode(const ttok_tokenizer *t) { return t->mode; }

int ttok_encode_mode(const ttok_tokenizer *t, ttok_mode mode, const char *utf8, size_t len, int *ids, size_t cap,
                     size_t *n, char *err, size_t errlen) {
    enc_state st = {.t = t, .ids = ids, .cap = ids ? cap : 0};
    void (*encseg)(enc_state *, const char *, size_t) = mode == TTOK_MODE_BASIC ? encode_segment : encode_segment_ftfy;
    if (!utf8) len = 0;
    /* Added-token split. BASIC: only "<|endoftext|>" is in the no-split list
     * (transformers 4.30 from_pretrained without the `tokenizers` package,
     * as tokenizer_cases.json was made). FTFY: both specials (transformers
     * with its normal dependencies, `tokenizers` included). */
    const size_t leot = strlen(EOT), lsot = strlen(SOT);
    size_t i = 0, seg = 0;
    while (i < len && !st.oom) {
        const char *lt = memchr(utf8 + i, '<', len - i);
        if (!lt) break;
        size_t p = (size_t)(lt - utf8), l = 0;
        int id = -1;
        if (len - p >= leot && memcmp(lt, EOT, leot) == 0) { l = leot; id = t->eos; }
        else if (mode != TTOK_MODE_BASIC && len - p >= lsot && memcmp(lt, SOT, lsot) == 0) { l = lsot; id = t->bos; }
        if (!l) { i = p + 1; continue; }
        if (p > seg) encseg(&st, utf8 + seg, p - seg);
        emit(&st, id >= 0 ? id : t->unk);
        i = seg = p + l;
    }
    if (len > seg && !st.oom) encseg(&st, utf8 + seg, len - seg);
    free(st.sym); free(st.prev); free(st.next); free(st.heap); free(st.pend);
    *n = st.n;
    if (st.oom) { seterr(err, errlen, "out of memory"); return -1; }
    if (ids && st.n > cap) { seterr(err, errlen, "%zu tokens do not fit in %zu", st.n, cap); return -1; }
    return 0;
}

size_t ttok_decode(const ttok_tokenizer *t, const int *ids, size_t n, char *out, size_t cap) {
    uint32_t map[256];
    int order[256];
    byte_table(map, order);
    int inv[512];
    for (int i = 0; i < 512; i++) inv[i] = -1;
    for (int b = 0; b < 256; b++) inv[map[b]] = b;
    size_t o = 0;
#define PUT(ch) do { if (o + 1 < cap) out[o] = (char)(ch); o++; } while (0)
    for (size_t k = 0; k < n; k++) {
        const char *s = ttok_token_str(t, ids[k]);
        if (!s) continue;
        size_t sl = strlen(s);
        int eow = sl >= 4 && !memcmp(s + sl - 4, "</w>", 4);
        if (eow) sl -= 4;
        uint32_t *cps = malloc((sl + 1) * sizeof *cps);
        if (!cps) break;
        size_t m = ut_utf8_decode(s, sl, cps);
        for (size_t j = 0; j < m; j++) {
            if (cps[j] < 512 && inv[cps[j]] >= 0) {
                PUT(inv[cps[j]]);
            } else { /* not a byte symbol (e.g. a special token): copy as text */
                char e[4];
                int l = ut_utf8_encode(cps[j], e);
                for (int x = 0; x < l; x++) PUT(e[x]);
            }
        }
        free(cps);
        if (eow) PUT(' ');
    }
#undef PUT
    if (o > 0 && o < cap && out[o - 1] == ' ') o--;
    if (cap) out[o < cap ? o : cap - 1] = 0;
    return o;
}
