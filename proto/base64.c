/*
 * base64.c -- base64 encode / tolerant-but-strict decode (see base64.h).
 *
 * Hand-written rather than OpenSSL's EVP_DecodeBlock because that one
 * neither skips whitespace nor reports where the input went wrong, and
 * mis-sizes its output when padding is present.  Decoding is two passes:
 * the first validates and counts significant characters (so the output is
 * allocated once, at its exact size), the second converts.
 */
#include "base64.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ENC[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Value of a base64 digit, -1 for anything else. */
static int dec_digit(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t tb64_encoded_len(size_t n) {
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4) return SIZE_MAX;
    return groups * 4;
}

int tb64_encode(const uint8_t *in, size_t len, char **out, size_t *outlen,
                char *err, size_t errlen) {
    *out = NULL;
    if (outlen) *outlen = 0;
    if (!in && len) {
        seterr(err, errlen, "base64: NULL input");
        return -1;
    }
    size_t n = tb64_encoded_len(len);
    if (n == SIZE_MAX) {
        seterr(err, errlen, "base64: input too large");
        return -1;
    }
    char *o = malloc(n + 1);
    if (!o) {
        seterr(err, errlen, "base64: out of memory");
        return -1;
    }
    size_t i = 0, j = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        o[j++] = ENC[v >> 18];
        o[j++] = ENC[(v >> 12) & 63];
        o[j++] = ENC[(v >> 6) & 63];
        o[j++] = ENC[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        o[j++] = ENC[v >> 18];
        o[j++] = ENC[(v >> 12) & 63];
        o[j++] = '=';
        o[j++] = '=';
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        o[j++] = ENC[v >> 18];
        o[j++] = ENC[(v >> 12) & 63];
        o[j++] = ENC[(v >> 6) & 63];
        o[j++] = '=';
    }
    o[j] = '\0';
    *out = o;
    if (outlen) *outlen = j;
    return 0;
}

/* Length of a "data:...;base64," prefix at in, 0 if none, -1 if malformed. */
static long data_url_prefix(const char *in, size_t len) {
    if (len < 5 || strncmp(in, "data:", 5) != 0) return 0;
    /* The media type is short; refuse to scan megabytes for the comma. */
    size_t lim = len < 512 ? len : 512;
    for (size_t i = 5; i < lim; i++) {
        if (in[i] == ',') {
            if (i >= 12 && memcmp(in + i - 7, ";base64", 7) == 0) return (long)i + 1;
            return -1;
        }
    }
    return -1;
}

int tb64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen,
                char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    if (!in && len) {
        seterr(err, errlen, "base64: NULL input");
        return -1;
    }
    long skip = data_url_prefix(in, len);
    if (skip < 0) {
        seterr(err, errlen, "base64: malformed data URL prefix (expected \"data:<type>;base64,\")");
        return -1;
    }

    /* Pass 1: validate, count digits and padding. */
    size_t ndig = 0, npad = 0;
    for (size_t i = (size_t)skip; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_space(c)) continue;
        if (c == '=') {
            npad++;
            continue;
        }
        if (dec_digit(c) < 0) {
            if (c >= 32 && c < 127)
                seterr(err, errlen, "base64: invalid character '%c' at offset %zu", c, i);
            else
                seterr(err, errlen, "base64: invalid byte 0x%02x at offset %zu", c, i);
            return -1;
        }
        if (npad) {
            seterr(err, errlen, "base64: data after '=' padding at offset %zu", i);
            return -1;
        }
        ndig++;
    }
    size_t rem = ndig % 4;
    if (rem == 1) {
        seterr(err, errlen, "base64: truncated input (%zu digits is not a valid length)", ndig);
        return -1;
    }
    if (npad && (npad > 2 || (ndig + npad) % 4 != 0)) {
        seterr(err, errlen, "base64: wrong amount of '=' padding (%zu)", npad);
        return -1;
    }

    size_t n = ndig / 4 * 3 + (rem ? rem - 1 : 0);
    uint8_t *o = malloc(n ? n : 1);
    if (!o) {
        seterr(err, errlen, "base64: out of memory");
        return -1;
    }

    /* Pass 2: convert (input is known valid). */
    uint32_t acc = 0;
    int nacc = 0;
    size_t j = 0;
    for (size_t i = (size_t)skip; i < len; i++) {
        int d = dec_digit((unsigned char)in[i]);
        if (d < 0) continue;
        acc = (acc << 6) | (uint32_t)d;
        if (++nacc == 4) {
            o[j++] = (uint8_t)(acc >> 16);
            o[j++] = (uint8_t)(acc >> 8);
            o[j++] = (uint8_t)acc;
            acc = 0;
            nacc = 0;
        }
    }
    if (nacc == 2) {
        o[j++] = (uint8_t)(acc >> 4);
    } else if (nacc == 3) {
        o[j++] = (uint8_t)(acc >> 10);
        o[j++] = (uint8_t)(acc >> 2);
    }
    *out = o;
    *outlen = j;
    return 0;
}
