/* metrics_format.h - Prometheus text exposition format 0.0.4, as pure
 * functions over a growable buffer (no I/O, no global state), so that the
 * formatting can be unit-tested on its own (tests/unit/test_metrics_format.c).
 *
 *   # HELP name text          (text: \ and newline escaped)
 *   # TYPE name counter|gauge|histogram
 *   name{label="value",...} 12 (values: \ " and newline escaped)
 *
 * Numbers print as integers when they are integral, else as the shortest
 * %g text that reads back as the same double; the
 * special values are +Inf, -Inf and NaN.
 */
#ifndef TESSERA_DAEMON_METRICS_FORMAT_H
#define TESSERA_DAEMON_METRICS_FORMAT_H

#include <stddef.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int oom; /* an allocation failed: the text is incomplete */
} td_mbuf;

void td_mbuf_init(td_mbuf *b);
void td_mbuf_free(td_mbuf *b);
void td_mbuf_printf(td_mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void td_mbuf_append(td_mbuf *b, const char *s, size_t n);

/* A number as the exposition format writes it, into out (>= 32 bytes). */
void td_mf_number(char *out, size_t n, double v);

/* Write the HELP and TYPE lines of a metric family. */
void td_mf_family(td_mbuf *b, const char *name, const char *type, const char *help);

/* One sample. labels: NULL, or a NULL-terminated list of name, value, name,
 * value, ... (values are escaped here). */
void td_mf_sample(td_mbuf *b, const char *name, const char *const *labels, double value);

/* A histogram's samples (name_bucket/_sum/_count) from per-bucket counts that
 * are NOT cumulative: counts[i] observations fell in (bounds[i-1], bounds[i]].
 * bounds must be ascending; the +Inf bucket is count. labels as above (the le
 * label is appended). */
void td_mf_histogram(td_mbuf *b, const char *name, const char *const *labels, const double *bounds,
                     const double *counts, int n, double sum, double count);

#endif
