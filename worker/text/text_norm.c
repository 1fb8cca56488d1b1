/* text_norm.c - ftfy.fix_text (6.1.1 defaults) over code points; see text_norm.h.
 *
 * Every fixer is a function from one code-point buffer to another, mirroring
 * the Python function of the same name in ftfy/fixes.py or ftfy/__init__.py.
 * Byte-level steps of fix_encoding (restore_byte_a0, replace_lossy_sequences,
 * utf-8 / utf-8-variants decoding) work on byte buffers.
 *
 * ftfy 6.3.1 differs from 6.1.1 only in fix_encoding's heuristics (badness
 * categories, more mojibake recognized): on the golden corpus 15 of 1228
 * texts come out differently. This file follows 6.1.1, what A1111's
 * requirements resolved to in the transformers 4.30 era.
 */
#include "text_norm.h"
#include "text_norm_tables.h"
#include "unicode_tables.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t *p;
    size_t n, cap;
    int oom;
} cpbuf;

static void cb_push(cpbuf *b, uint32_t c) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        uint32_t *np = realloc(b->p, nc * sizeof *np);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    b->p[b->n++] = c;
}

static void cb_append(cpbuf *b, const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) cb_push(b, s[i]);
}

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} bbuf;

static void bb_push(bbuf *b, unsigned char c) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        unsigned char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    b->p[b->n++] = c;
}

static int eq(const cpbuf *a, const uint32_t *s, size_t n) {
    return a->n == n && (n == 0 || memcmp(a->p, s, n * sizeof *s) == 0);
}

static int in_sorted(const uint32_t *tab, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (tab[m] < c) lo = m + 1;
        else hi = m;
    }
    return lo < n && tab[lo] == c;
}

/* maps {cp, o0, o1, o2}: returns the row or NULL */
static const uint32_t *map4(const uint32_t (*tab)[4], size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (tab[m][0] < c) lo = m + 1;
        else hi = m;
    }
    return lo < n && tab[lo][0] == c ? tab[lo] : NULL;
}

static int is_space(uint32_t c) { return UT_IN(ut_py_space, c); }
static int is_word(uint32_t c) { return UT_IN(ut_py_word, c); }

/* ---------------------------------------------------------------- badness */

static void cls_mask(uint32_t c, uint32_t m[3]) {
    m[0] = m[1] = m[2] = 0;
    size_t lo = 0, hi = tn_cls_n;
    while (lo < hi) {
        size_t k = lo + (hi - lo) / 2;
        if (tn_cls[k][0] < c) lo = k + 1;
        else hi = k;
    }
    if (lo < tn_cls_n && tn_cls[lo][0] == c) {
        m[0] = tn_cls[lo][1];
        m[1] = tn_cls[lo][2];
        m[2] = tn_cls[lo][3];
    }
}

static int has_cls(const uint32_t m[3], unsigned id) { return (m[id >> 5] >> (id & 31)) & 1; }

static int alt_match(const unsigned char *code, const uint32_t *s, const uint32_t (*masks)[3], size_t n,
                     size_t i) {
    for (;; code += 2) {
        switch (code[0]) {
        case TN_OP_END: return 1;
        case TN_OP_BOL:
            if (i != 0) return 0;
            continue;
        case TN_OP_OPTSPACE:
            if (i < n && is_space(s[i]) && alt_match(code + 2, s, masks, n, i + 1)) return 1;
            continue;
        default: break;
        }
        if (i >= n) return 0;
        int ok;
        switch (code[0]) {
        case TN_OP_SET: ok = has_cls(masks[i], code[1]); break;
        case TN_OP_NOT: ok = !has_cls(masks[i], code[1]); break;
        case TN_OP_SPACE: ok = is_space(s[i]); break;
        case TN_OP_WORD: ok = is_word(s[i]); break;
        default: ok = s[i] != '\n'; break; /* ANY */
        }
        if (!ok) return 0;
        i++;
    }
}

int tn_is_bad(const uint32_t *s, size_t n) {
    if (n == 0) return 0;
    uint32_t (*masks)[3] = malloc(n * sizeof *masks);
    if (!masks) return 0;
    for (size_t i = 0; i < n; i++) cls_mask(s[i], masks[i]);
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++)
        for (size_t a = 0; a < tn_bad_alts_n && !bad; a++) bad = alt_match(tn_bad_alts[a], s, (const uint32_t (*)[3])masks, n, i);
    free(masks);
    return bad;
}

/* ------------------------------------------------------- single-byte codecs */

static int enc_byte(int e, uint32_t c) {
    if (c < 0x80 && c != 0x1A) return (int)c;
    for (int k = 0; k < 129; k++)
        if (tn_enc_high[e][k] == c) return k == 128 ? 0x1A : 0x80 + k;
    return -1;
}

static int possible_encoding(int e, const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (enc_byte(e, s[i]) < 0) return 0;
    return 1;
}

/* strict UTF-8 (Python's), optionally with ftfy's utf-8-variants extras:
 * C0 80 -> U+0000 and CESU-8 surrogate pairs. Returns 0 or -1. */
static int utf8_decode_strict(const unsigned char *p, size_t len, int variants, cpbuf *out) {
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) { cb_push(out, c); i++; continue; }
        if (variants && c == 0xC0 && i + 1 < len && p[i + 1] == 0x80) { cb_push(out, 0); i += 2; continue; }
        if (variants && c == 0xED && i + 5 < len && p[i + 1] >= 0xA0 && p[i + 1] <= 0xAF && (p[i + 2] & 0xC0) == 0x80 &&
            p[i + 3] == 0xED && p[i + 4] >= 0xB0 && p[i + 4] <= 0xBF && (p[i + 5] & 0xC0) == 0x80) {
            uint32_t cp = (((uint32_t)p[i + 1] & 15) << 16) + (((uint32_t)p[i + 2] & 63) << 10) +
                          (((uint32_t)p[i + 4] & 15) << 6) + ((uint32_t)p[i + 5] & 63) + 0x10000;
            cb_push(out, cp);
            i += 6;
            continue;
        }
        int need;
        uint32_t cp;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2; cp = c & 0x0F;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3; cp = c & 0x07;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return -1;
        for (int k = 0; k < need; k++) {
            size_t j = i + 1 + (size_t)k;
            if (j >= len) return -1;
            unsigned b = p[j];
            if (b < (k == 0 ? lo : 0x80) || b > (k == 0 ? hi : 0xBF)) return -1;
            cp = (cp << 6) | (b & 0x3F);
        }
        cb_push(out, cp);
        i += (size_t)need + 1;
    }
    return 0;
}

/* Byte-class sequence matching for ALTERED_UTF8_RE and LOSSY_UTF8_RE. */
static int bcls(char k, unsigned b) {
    switch (k) {
    case 'a': return b == 0xC2 || b == 0xC3 || b == 0xC5 || b == 0xCE || b == 0xD0 || b == 0xD9;
    case ' ': return b == ' ';
    case 'b': return b == 0xE2 || b == 0xE3;
    case 'c': return (b >= 0x80 && b <= 0x84) || (b >= 0x86 && b <= 0x9F) || (b >= 0xA1 && b <= 0xBF);
    case 'd': return b >= 0xE0 && b <= 0xE3;
    case 'F': return b == 0xF0;
    case 'x': return b >= 0x80 && b <= 0xBF;
    case 'e': return b >= 0xC2 && b <= 0xDF;
    case 'z': return b == 0x1A;
    case 'f': return b == 0xC2 || b == 0xC3;
    case '?': return b == '?';
    case 'E': return b == 0xED;
    case 'g': return b >= 0xA0 && b <= 0xAF;
    case 'q': return b == 0x1A || b == '?';
    case 'h': return b >= 0xB0 && b <= 0xBF;
    case 'r': return b == 0x1A || b == '?' || (b >= 0x80 && b <= 0xBF);
    case 'i': return b >= 0xE0 && b <= 0xEF;
    case 's': return b == 0x1A || (b >= 0x80 && b <= 0xBF);
    case 'j': return b >= 0xF0 && b <= 0xF4;
    default: return 0;
    }
}

static const char *const ALTERED[] = {"a ", "b c", "dc ", "F xx", "Fx x", "Fxx ", NULL};
static const char *const LOSSY[] = {"ez", "f?", "EgqEhr", "EgrEhq", "iqs", "isq", "jqss", "jsqs", "jssq", "z", NULL};

/* length of the first alternative matching at i, or 0 */
static size_t bre_at(const char *const *alts, const unsigned char *p, size_t n, size_t i) {
    for (int a = 0; alts[a]; a++) {
        size_t l = strlen(alts[a]), k;
        if (i + l > n) continue;
        for (k = 0; k < l && bcls(alts[a][k], p[i + k]); k++) {}
        if (k == l) return l;
    }
    return 0;
}

static int bre_search(const char *const *alts, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (bre_at(alts, p, n, i)) return 1;
    return 0;
}

static void restore_byte_a0(bbuf *b) {
    bbuf t = {0};
    const unsigned char *p = b->p;
    size_t n = b->n;
    /* A_GRAVE_WORD_RE = b'\xc3 (?! |quele|quela|quilo|s )' -> b'\xc3\xa0 ' */
    for (size_t i = 0; i < n;) {
        if (p[i] == 0xC3 && i + 1 < n && p[i + 1] == ' ') {
            const unsigned char *r = p + i + 2;
            size_t rl = n - i - 2;
            int neg = (rl >= 1 && r[0] == ' ') || (rl >= 5 && (!memcmp(r, "quele", 5) || !memcmp(r, "quela", 5) || !memcmp(r, "quilo", 5))) ||
                      (rl >= 2 && !memcmp(r, "s ", 2));
            if (!neg) {
                bb_push(&t, 0xC3); bb_push(&t, 0xA0); bb_push(&t, ' ');
                i += 2;
                continue;
            }
        }
        bb_push(&t, p[i++]);
    }
    /* ALTERED_UTF8_RE.sub(spaces -> 0xA0) */
    for (size_t i = 0; i < t.n;) {
        size_t l = bre_at(ALTERED, t.p, t.n, i);
        if (!l) { i++; continue; }
        for (size_t k = i; k < i + l; k++)
            if (t.p[k] == ' ') t.p[k] = 0xA0;
        i += l;
    }
    free(b->p);
    b->oom |= t.oom;
    b->p = t.p; b->n = t.n; b->cap = t.cap;
}

static void replace_lossy(bbuf *b) {
    bbuf t = {0};
    for (size_t i = 0; i < b->n;) {
        size_t l = bre_at(LOSSY, b->p, b->n, i);
        if (l) { bb_push(&t, 0xEF); bb_push(&t, 0xBF); bb_push(&t, 0xBD); i += l; }
        else bb_push(&t, b->p[i++]);
    }
    free(b->p);
    b->oom |= t.oom;
    b->p = t.p; b->n = t.n; b->cap = t.cap;
}

/* ------------------------------------------------------------- fix_encoding */

static void fix_encoding(const uint32_t *s, size_t n, cpbuf *out);

static int utf8cls(uint32_t c, int k) {
    uint32_t m[3];
    cls_mask(c, m);
    return has_cls(m, tn_utf8_cls[k]);
}

/* decode_inconsistent_utf8: UTF8_DETECTOR_RE.sub(fix_embedded_mojibake) */
static void decode_inconsistent_utf8(const uint32_t *s, size_t n, cpbuf *out) {
    size_t i = 0;
    while (i < n) {
        if (i > 0 && utf8cls(s[i - 1], 4)) { cb_push(out, s[i++]); continue; }
        size_t j = i;
        for (;;) {
            size_t l = 0;
            for (int k = 0; k < 3 && !l; k++) {
                /* first_of_(k+2) followed by k+1 continuation characters */
                if (!utf8cls(s[j], k) || j + (size_t)k + 2 > n) continue;
                int ok = 1;
                for (int c = 1; c <= k + 1 && ok; c++) ok = utf8cls(s[j + (size_t)c], 3);
                if (ok) l = (size_t)k + 2;
            }
            if (!l) break;
            j += l;
            if (j >= n) break;
        }
        if (j == i) { cb_push(out, s[i++]); continue; }
        if (j - i < n && tn_is_bad(s + i, j - i)) fix_encoding(s + i, j - i, out);
        else cb_append(out, s + i, j - i);
        i = j;
    }
}

/* One step of _fix_encoding_one_step_and_explain; returns 1 when out holds a changed text. */
static int fix_encoding_step(const uint32_t *s, size_t n, cpbuf *out) {
    size_t k;
    for (k = 0; k < n && s[k] < 0x80; k++) {}
    if (k == n || !tn_is_bad(s, n)) return 0;
    int latin1 = 0;
    for (int e = 0; e < TN_NENC; e++) {
        if (!possible_encoding(e, s, n)) continue;
        if (e == 0) latin1 = 1;
        bbuf b = {0};
        for (size_t i = 0; i < n; i++) bb_push(&b, (unsigned char)enc_byte(e, s[i]));
        if (!b.oom && bre_search(ALTERED, b.p, b.n)) restore_byte_a0(&b);
        if (!b.oom && !strncmp(tn_enc_names[e], "sloppy", 6)) replace_lossy(&b);
        int variants = 0;
        for (size_t i = 0; i < b.n; i++) if (b.p[i] == 0xED || b.p[i] == 0xC0) variants = 1;
        out->n = 0;
        int rc = b.oom ? -1 : utf8_decode_strict(b.p, b.n, variants, out);
        free(b.p);
        if (b.oom) { out->oom = 1; return 0; }
        if (rc == 0) return !eq(out, s, n);
    }
    out->n = 0;
    decode_inconsistent_utf8(s, n, out);
    if (!eq(out, s, n)) return 1;
    if (latin1) { /* latin-1 -> windows-1252 (strict) */
        out->n = 0;
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            uint32_t c = s[i];
            if (c >= 0x80 && c < 0xA0) { c = tn_cp1252_c1[c - 0x80]; ok = c != 0; }
            cb_push(out, c);
        }
        if (ok && !eq(out, s, n)) return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80 && s[i] <= 0x9F) {
            out->n = 0;
            for (size_t j = 0; j < n; j++)
                cb_push(out, s[j] >= 0x80 && s[j] <= 0x9F ? tn_enc_high[1][s[j] - 0x80] : s[j]);
            return !eq(out, s, n);
        }
    return 0;
}

/* fix_encoding: steps until nothing changes; appends the result to out. */
static void fix_encoding(const uint32_t *s, size_t n, cpbuf *out) {
    cpbuf cur = {0}, nxt = {0};
    cb_append(&cur, s, n);
    while (!cur.oom && !nxt.oom) {
        nxt.n = 0;
        if (!fix_encoding_step(cur.p, cur.n, &nxt)) break;
        cpbuf t = cur; cur = nxt; nxt = t;
    }
    if (cur.oom || nxt.oom) out->oom = 1;
    cb_append(out, cur.p, cur.n);
    free(cur.p);
    free(nxt.p);
}

/* ------------------------------------------------------------ unescape_html */

static int is_alnum_ascii(uint32_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void push_utf8(cpbuf *out, const char *s) {
    size_t l = strlen(s);
    uint32_t tmp[16];
    size_t m = ut_utf8_decode(s, l < 16 ? l : 16, tmp);
    cb_append(out, tmp, m);
}

/* html.unescape of "&#...;" (digits = s[0..n) after '#'); returns 1 and
 * the replacement (0 or 1 code point in *cp, *has) when ftfy replaces it. */
static int numeric_ref(const uint32_t *d, size_t n, uint32_t *cp, int *has) {
    int hex = n > 0 && (d[0] == 'x' || d[0] == 'X');
    size_t st = hex ? 1 : 0;
    if (st >= n) return 0;
    unsigned long long v = 0;
    for (size_t i = st; i < n; i++) {
        unsigned x;
        if (d[i] >= '0' && d[i] <= '9') x = d[i] - '0';
        else if (hex && d[i] >= 'a' && d[i] <= 'f') x = d[i] - 'a' + 10;
        else if (hex && d[i] >= 'A' && d[i] <= 'F') x = d[i] - 'A' + 10;
        else return 0;
        v = v * (hex ? 16 : 10) + x;
        if (v > 0x10FFFFFULL) v = 0x10FFFFFULL; /* saturate: anything > 0x10FFFF is U+FFFD */
    }
    for (size_t i = 0; i < tn_html_charrefs_n; i++)
        if (tn_html_charrefs[i][0] == v) { *cp = tn_html_charrefs[i][1]; *has = 1; goto done; }
    if ((v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) { *cp = 0xFFFD; *has = 1; goto done; }
    if (in_sorted(tn_html_invalid_cp, tn_html_invalid_cp_n, (uint32_t)v)) { *has = 0; return 1; }
    *cp = (uint32_t)v;
    *has = 1;
done:
    return *cp != ';'; /* ftfy keeps the text when the result contains ';' */
}

static void unescape_html(const uint32_t *s, size_t n, cpbuf *out) {
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&') { cb_push(out, s[i++]); continue; }
        size_t j = i + 1;
        int hash = j < n && s[j] == '#';
        if (hash) j++;
        size_t l = 0;
        while (j + l < n && l < 25 && is_alnum_ascii(s[j + l])) l++;
        if (l < 1 || l > 24 || j + l >= n || s[j + l] != ';') { cb_push(out, s[i++]); continue; }
        size_t end = j + l + 1; /* the match is s[i..end) */
        if (!hash) {
            char name[32];
            for (size_t k = 0; k < l; k++) name[k] = (char)s[j + k];
            name[l] = 0;
            size_t lo = 0, hi = tn_entities_n;
            while (lo < hi) {
                size_t m = lo + (hi - lo) / 2;
                if (strcmp(tn_entities[m].name, name) < 0) lo = m + 1;
                else hi = m;
            }
            if (lo < tn_entities_n && !strcmp(tn_entities[lo].name, name)) push_utf8(out, tn_entities[lo].value);
            else cb_append(out, s + i, end - i);
        } else {
            uint32_t cp = 0;
            int has = 0;
            if (numeric_ref(s + j, l, &cp, &has)) { if (has) cb_push(out, cp); }
            else cb_append(out, s + i, end - i);
        }
        i = end;
    }
}

/* ------------------------------------------------------------- other fixes */

static void simple_fixes(const uint32_t *s, size_t n, cpbuf *out, int stage) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        const uint32_t *r;
        switch (stage) {
        case 0: /* fix_c1_controls */
            cb_push(out, c >= 0x80 && c <= 0x9F ? tn_enc_high[1][c - 0x80] : c);
            break;
        case 1: /* fix_latin_ligatures */
        case 2: /* fix_character_width */
            r = stage == 1 ? map4(tn_ligatures, tn_ligatures_n, c) : map4(tn_width, tn_width_n, c);
            if (!r) cb_push(out, c);
            else for (int k = 1; k <= 3 && r[k]; k++) cb_push(out, r[k]);
            break;
        case 3: /* uncurl_quotes */
            if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
            else if (c >= 0x201C && c <= 0x201F) c = '"';
            cb_push(out, c);
            break;
        case 4: /* fix_line_breaks */
            if (c == '\r' && i + 1 < n && s[i + 1] == '\n') { cb_push(out, '\n'); i++; break; }
            if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
            cb_push(out, c);
            break;
        case 5: /* remove_terminal_escapes: \x1b\[((?:\d|;)*)([a-zA-Z]) */
            if (c == 0x1B && i + 1 < n && s[i + 1] == '[') {
                size_t j = i + 2;
                while (j < n && (s[j] == ';' || ut_py_digit(s[j]) >= 0)) j++;
                if (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) { i = j; break; }
            }
            cb_push(out, c);
            break;
        case 6: /* remove_control_chars */
            if (!in_sorted(tn_control, tn_control_n, c)) cb_push(out, c);
            break;
        }
    }
}

/* ------------------------------------------------------------------- NFC */

#define SBASE 0xAC00u
#define LBASE 0x1100u
#define VBASE 0x1161u
#define TBASE 0x11A7u
#define LCOUNT 19u
#define VCOUNT 21u
#define TCOUNT 28u
#define NCOUNT (VCOUNT * TCOUNT)
#define SCOUNT (LCOUNT * NCOUNT)

static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = tn_comp_n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (tn_comp[m][0] < a || (tn_comp[m][0] == a && tn_comp[m][1] < b)) lo = m + 1;
        else hi = m;
    }
    return lo < tn_comp_n && tn_comp[lo][0] == a && tn_comp[lo][1] == b ? tn_comp[lo][2] : 0;
}

size_t tn_nfc(const uint32_t *in, size_t n, uint32_t *out) {
    size_t m = ut_nfd(in, n, out), o = 0;
    long st = -1;
    int lastcc = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t c = out[i];
        int cc = ut_ccc_of(c);
        if (st >= 0) {
            int blocked = o > (size_t)st + 1 && (lastcc == 0 || lastcc >= cc);
            uint32_t k;
            if (!blocked && (k = compose(out[st], c)) != 0) { out[st] = k; continue; }
        }
        if (cc == 0) { st = (long)o; lastcc = 0; }
        else lastcc = cc;
        out[o++] = c;
    }
    return o;
}

/* ------------------------------------------------------------- fix_text */

/* fix_and_explain(segment) with explain=False */
static void fix_segment(const uint32_t *s, size_t n, int html, cpbuf *out) {
    cpbuf a = {0}, b = {0};
    cb_append(&a, s, n);
    for (int round = 0; round < 1000 && !a.oom && !b.oom; round++) {
        cpbuf orig = {0};
        cb_append(&orig, a.p, a.n);
        if (html) { b.n = 0; unescape_html(a.p, a.n, &b); cpbuf t = a; a = b; b = t; }
        b.n = 0; fix_encoding(a.p, a.n, &b); { cpbuf t = a; a = b; b = t; }
        for (int st = 0; st <= 6; st++) { b.n = 0; simple_fixes(a.p, a.n, &b, st); cpbuf t = a; a = b; b = t; }
        b.n = 0;
        for (size_t k = 0; k < a.n * 4; k++) cb_push(&b, 0);
        if (!b.oom) { b.n = tn_nfc(a.p, a.n, b.p); cpbuf t = a; a = b; b = t; }
        int same = eq(&orig, a.p, a.n);
        if (orig.oom) a.oom = 1;
        free(orig.p);
        if (same) break;
    }
    if (a.oom || b.oom) out->oom = 1;
    cb_append(out, a.p, a.n);
    free(a.p);
    free(b.p);
}

uint32_t *tn_ftfy_fix_text(const uint32_t *in, size_t n, size_t *out_n) {
    cpbuf out = {0};
    int html = 1;
    size_t pos = 0;
    while (pos < n) {
        size_t e = pos;
        while (e < n && in[e] != '\n') e++;
        e = e < n ? e + 1 : n;
        if (e - pos > 1000000) e = pos + 1000000;
        for (size_t k = pos; k < e && html; k++) if (in[k] == '<') html = 0;
        fix_segment(in + pos, e - pos, html, &out);
        pos = e;
    }
    cb_push(&out, 0); /* never return NULL for empty text */
    if (out.oom) { free(out.p); return NULL; }
    *out_n = out.n - 1;
    return out.p;
}
