/* test_metrics_format.c - daemon/metrics_format.c: the Prometheus text
 * exposition format (0.0.4) writer: number formatting, label escaping,
 * HELP/TYPE lines, and histograms accumulated from non-cumulative buckets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_format.h"

static int failures;

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                            \
        }                                                                          \
    } while (0)

static void expect_text(td_mbuf *b, const char *want) {
    if (!b->buf || strcmp(b->buf, want)) {
        fprintf(stderr, "got:\n%s\nwant:\n%s\n", b->buf ? b->buf : "(null)", want);
        failures++;
    }
}

static void test_numbers(void) {
    char s[48];
    td_mf_number(s, sizeof s, 0);
    CHECK(!strcmp(s, "0"));
    td_mf_number(s, sizeof s, 42);
    CHECK(!strcmp(s, "42"));
    td_mf_number(s, sizeof s, -7);
    CHECK(!strcmp(s, "-7"));
    td_mf_number(s, sizeof s, 0.005);
    CHECK(!strcmp(s, "0.005"));
    td_mf_number(s, sizeof s, 2.5);
    CHECK(!strcmp(s, "2.5"));
    td_mf_number(s, sizeof s, 1.0 / 3.0);
    CHECK(strtod(s, NULL) == 1.0 / 3.0);
    td_mf_number(s, sizeof s, 1e20);
    CHECK(strtod(s, NULL) == 1e20);
    td_mf_number(s, sizeof s, INFINITY);
    CHECK(!strcmp(s, "+Inf"));
    td_mf_number(s, sizeof s, -INFINITY);
    CHECK(!strcmp(s, "-Inf"));
    td_mf_number(s, sizeof s, NAN);
    CHECK(!strcmp(s, "NaN"));
}

static void test_family_and_samples(void) {
    td_mbuf b;
    td_mbuf_init(&b);
    td_mf_family(&b, "x_total", "counter", "line one\nback\\slash");
    td_mf_sample(&b, "x_total", NULL, 3);
    const char *l[] = {"route", "/v1/jobs/{id}", "code", "200", NULL};
    td_mf_sample(&b, "x_total", l, 1.5);
    const char *esc[] = {"v", "a\"b\\c\nd", NULL};
    td_mf_sample(&b, "x_total", esc, 0);
    expect_text(&b, "# HELP x_total line one\\nback\\\\slash\n"
                    "# TYPE x_total counter\n"
                    "x_total 3\n"
                    "x_total{route=\"/v1/jobs/{id}\",code=\"200\"} 1.5\n"
                    "x_total{v=\"a\\\"b\\\\c\\nd\"} 0\n");
    CHECK(!b.oom);
    td_mbuf_free(&b);
}

static void test_histogram(void) {
    td_mbuf b;
    td_mbuf_init(&b);
    const double bounds[] = {0.1, 1, 10};
    const double counts[] = {2, 0, 3}; /* not cumulative; 1 more above 10 */
    const char *l[] = {"type", "extras", NULL};
    td_mf_histogram(&b, "h_seconds", l, bounds, counts, 3, 31.25, 6);
    expect_text(&b, "h_seconds_bucket{type=\"extras\",le=\"0.1\"} 2\n"
                    "h_seconds_bucket{type=\"extras\",le=\"1\"} 2\n"
                    "h_seconds_bucket{type=\"extras\",le=\"10\"} 5\n"
                    "h_seconds_bucket{type=\"extras\",le=\"+Inf\"} 6\n"
                    "h_seconds_sum{type=\"extras\"} 31.25\n"
                    "h_seconds_count{type=\"extras\"} 6\n");
    td_mbuf_free(&b);

    td_mbuf_init(&b);
    td_mf_histogram(&b, "empty", NULL, NULL, NULL, 0, 0, 0);
    expect_text(&b, "empty_bucket{le=\"+Inf\"} 0\nempty_sum 0\nempty_count 0\n");
    td_mbuf_free(&b);
}

static void test_growth(void) {
    td_mbuf b;
    td_mbuf_init(&b);
    for (int i = 0; i < 5000; i++) td_mbuf_printf(&b, "line_%d %d\n", i, i);
    CHECK(!b.oom);
    CHECK(b.len == strlen(b.buf));
    CHECK(strstr(b.buf, "line_4999 4999\n") != NULL);
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    td_mbuf_printf(&b, "%s", big); /* longer than the printf fast path */
    CHECK(b.len == strlen(b.buf));
    td_mbuf_free(&b);
}

int main(void) {
    test_numbers();
    test_family_and_samples();
    test_histogram();
    test_growth();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("metrics_format: all checks passed\n");
    return 0;
}
