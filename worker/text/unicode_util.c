/* unicode_util.c - lookups over the generated Unicode tables, UTF-8, NFC.
 *
 * Everything the tokenizer and the prompt parser need to behave like Python
 * on arbitrary text: range-table membership by binary search, Python's
 * str.lower() for one code point, UTF-8 decoding with errors="replace"
 * semantics (bad input never stops us, it becomes U+FFFD), and NFD
 * (decompose, canonical reorder; Hangul algorithmic) equal to
 * unicodedata.normalize("NFD") of the same Unicode version.
 */
#include "unicode_tables.h"

int ut_in(const uint32_t (*tab)[2], size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < tab[mid][0]) hi = mid;
        else if (cp > tab[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int ut_py_digit(uint32_t cp) {
    size_t lo = 0, hi = ut_py_digit0_n;
    while (lo < hi) { /* last zero <= cp */
        size_t mid = lo + (hi - lo) / 2;
        if (ut_py_digit0[mid] <= cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return -1;
    uint32_t z = ut_py_digit0[lo - 1];
    return cp - z <= 9 ? (int)(cp - z) : -1;
}

int ut_lower_cp(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    size_t lo = 0, hi = ut_lower_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ut_lower[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < ut_lower_n && ut_lower[lo][0] == cp) {
        int n = 0;
        for (int i = 1; i <= 3 && ut_lower[lo][i]; i++) out[n++] = ut_lower[lo][i];
        return n;
    }
    out[0] = cp;
    return 1;
}

/* ---- UTF-8 ---- */

size_t ut_utf8_decode(const char *s, size_t len, uint32_t *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) { out[n++] = c; i++; continue; }
        int need;
        uint32_t cp;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2; cp = c & 0x0F;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3; cp = c & 0x07;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else { out[n++] = 0xFFFD; i++; continue; }
        size_t j = i + 1;
        int ok = 1;
        for (int k = 0; k < need; k++, j++) {
            unsigned b = j < len ? p[j] : 0;
            unsigned blo = k == 0 ? lo : 0x80, bhi = k == 0 ? hi : 0xBF;
            if (j >= len || b < blo || b > bhi) { ok = 0; break; }
            cp = (cp << 6) | (b & 0x3F);
        }
        out[n++] = ok ? cp : 0xFFFD; /* maximal subpart -> one U+FFFD */
        i = j;
    }
    return n;
}

int ut_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- NFD ---- */

#define SBASE 0xAC00u
#define LBASE 0x1100u
#define VBASE 0x1161u
#define TBASE 0x11A7u
#define LCOUNT 19u
#define VCOUNT 21u
#define TCOUNT 28u
#define NCOUNT (VCOUNT * TCOUNT)
#define SCOUNT (LCOUNT * NCOUNT)

static int ccc_of(uint32_t cp) {
    if (cp < 0x300) return 0;
    size_t lo = 0, hi = ut_ccc_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < ut_ccc[mid][0]) hi = mid;
        else if (cp > ut_ccc[mid][1]) lo = mid + 1;
        else return (int)ut_ccc[mid][2];
    }
    return 0;
}

int ut_ccc_of(uint32_t cp) { return ccc_of(cp); }

static int decomp_of(uint32_t cp, const uint32_t **seq) {
    if (cp < 0xC0) return 0;
    size_t lo = 0, hi = ut_decomp_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ut_decomp[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < ut_decomp_n && ut_decomp[lo][0] == cp) {
        *seq = ut_decomp_pool + ut_decomp[lo][1];
        return (int)ut_decomp[lo][2];
    }
    return 0;
}

size_t ut_nfd(const uint32_t *in, size_t n, uint32_t *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = in[i];
        const uint32_t *seq;
        int k;
        if (cp >= SBASE && cp < SBASE + SCOUNT) {
            uint32_t s = cp - SBASE;
            out[m++] = LBASE + s / NCOUNT;
            out[m++] = VBASE + (s % NCOUNT) / TCOUNT;
            if (s % TCOUNT) out[m++] = TBASE + s % TCOUNT;
        } else if ((k = decomp_of(cp, &seq)) > 0) {
            for (int j = 0; j < k; j++) out[m++] = seq[j];
        } else {
            out[m++] = cp;
        }
    }
    /* canonical ordering: stable insertion sort of each run of non-starters */
    for (size_t i = 1; i < m; i++) {
        int c = ccc_of(out[i]);
        if (c == 0) continue;
        size_t j = i;
        uint32_t v = out[i];
        while (j > 0) {
            int pc = ccc_of(out[j - 1]);
            if (pc == 0 || pc <= c) break;
            out[j] = out[j - 1];
            j--;
        }
        out[j] = v;
    }
    return m;
}
