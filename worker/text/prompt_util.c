/* prompt_util.c - helpers for the prompt language (see prompt_util.h). */
#include "prompt_util.h"
#include "unicode_tables.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tpr_buf_add(tpr_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->n + n + 1) c *= 2;
        char *p = realloc(b->p, c);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

char *tpr_buf_take(tpr_buf *b) {
    tpr_buf_add(b, "", 0);
    if (b->oom) { free(b->p); b->p = NULL; return NULL; }
    char *p = b->p;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

char *tpr_strndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void tpr_seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint32_t tpr_cp_at(const char *s, size_t n, size_t i, size_t *len) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) { *len = 1; return c; }
    size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (k > n - i) k = n - i;
    uint32_t cp[4];
    size_t m = ut_utf8_decode(s + i, k, cp);
    /* valid only if the whole k bytes are one code point */
    if (m == 1 && cp[0] != 0xFFFD) { *len = k; return cp[0]; }
    *len = 1;
    return 0xFFFD;
}

uint32_t tpr_cp_before(const char *s, size_t i, size_t *len) {
    size_t b = i - 1;
    while (b > 0 && i - b < 4 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
    size_t l;
    uint32_t cp = tpr_cp_at(s, i, b, &l);
    if (b + l == i) { *len = l; return cp; }
    *len = 1;
    return 0xFFFD;
}

int tpr_is_space(uint32_t cp) { return UT_IN(ut_py_space, cp); }
int tpr_is_word(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    return UT_IN(ut_py_word, cp);
}
int tpr_digit(uint32_t cp) { return ut_py_digit(cp); }

int tpr_parse_float(const char *s, size_t n, double *out) {
    char buf[512];
    size_t o = 0, i = 0;
    int digits = 0, dots = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) buf[o++] = s[i++];
    while (i < n) {
        size_t l;
        uint32_t cp = tpr_cp_at(s, n, i, &l);
        int d;
        if (cp == '.') { if (++dots > 1) return -1; buf[o++] = '.'; }
        else if ((d = tpr_digit(cp)) >= 0) { digits++; buf[o++] = (char)('0' + d); }
        else return -1;
        i += l;
        if (o >= sizeof buf - 1) return -1;
    }
    if (!digits) return -1;
    buf[o] = 0;
    *out = strtod(buf, NULL);
    return 0;
}
