/* metrics_format.c - Prometheus text format writer (see metrics_format.h). */
#include "metrics_format.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void td_mbuf_init(td_mbuf *b) { memset(b, 0, sizeof *b); }

void td_mbuf_free(td_mbuf *b) {
    free(b->buf);
    memset(b, 0, sizeof *b);
}

static int reserve(td_mbuf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) {
        b->oom = 1;
        return -1;
    }
    b->buf = nb;
    b->cap = cap;
    return 0;
}

void td_mbuf_append(td_mbuf *b, const char *s, size_t n) {
    if (reserve(b, n)) return;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

void td_mbuf_printf(td_mbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        td_mbuf_append(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void td_mf_number(char *out, size_t n, double v) {
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, n, "%.0f", v);
    else /* the shortest text that reads back as the same double */
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(out, n, "%.*g", prec, v);
            if (strtod(out, NULL) == v) break;
        }
}

static void escaped(td_mbuf *b, const char *s, int quote) {
    for (; *s; s++) {
        if (*s == '\\')
            td_mbuf_append(b, "\\\\", 2);
        else if (*s == '\n')
            td_mbuf_append(b, "\\n", 2);
        else if (quote && *s == '"')
            td_mbuf_append(b, "\\\"", 2);
        else
            td_mbuf_append(b, s, 1);
    }
}

void td_mf_family(td_mbuf *b, const char *name, const char *type, const char *help) {
    td_mbuf_printf(b, "# HELP %s ", name);
    escaped(b, help, 0);
    td_mbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void labels_out(td_mbuf *b, const char *const *labels, const char *le) {
    int any = 0;
    if (labels)
        for (int i = 0; labels[i] && labels[i + 1]; i += 2) {
            td_mbuf_append(b, any ? "," : "{", 1);
            td_mbuf_printf(b, "%s=\"", labels[i]);
            escaped(b, labels[i + 1], 1);
            td_mbuf_append(b, "\"", 1);
            any = 1;
        }
    if (le) {
        td_mbuf_append(b, any ? "," : "{", 1);
        td_mbuf_printf(b, "le=\"%s\"", le);
        any = 1;
    }
    if (any) td_mbuf_append(b, "}", 1);
}

void td_mf_sample(td_mbuf *b, const char *name, const char *const *labels, double value) {
    char num[48];
    td_mf_number(num, sizeof num, value);
    td_mbuf_printf(b, "%s", name);
    labels_out(b, labels, NULL);
    td_mbuf_printf(b, " %s\n", num);
}

void td_mf_histogram(td_mbuf *b, const char *name, const char *const *labels, const double *bounds,
                     const double *counts, int n, double sum, double count) {
    char le[48], num[48];
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += counts[i];
        td_mf_number(le, sizeof le, bounds[i]);
        td_mf_number(num, sizeof num, acc);
        td_mbuf_printf(b, "%s_bucket", name);
        labels_out(b, labels, le);
        td_mbuf_printf(b, " %s\n", num);
    }
    td_mf_number(num, sizeof num, count);
    td_mbuf_printf(b, "%s_bucket", name);
    labels_out(b, labels, "+Inf");
    td_mbuf_printf(b, " %s\n", num);
    td_mf_number(num, sizeof num, sum);
    td_mbuf_printf(b, "%s_sum", name);
    labels_out(b, labels, NULL);
    td_mbuf_printf(b, " %s\n", num);
    td_mf_number(num, sizeof num, count);
    td_mbuf_printf(b, "%s_count", name);
    labels_out(b, labels, NULL);
    td_mbuf_printf(b, " %s\n", num);
}
