/* metrics.c - GET /metrics: this process's HTTP counters plus the farm-wide
 * numbers kept in Redis (P stats, histograms, queues, workers), gathered in
 * one round trip by the tesserad_stats script (routes_misc.c).
 *
 * HTTP counters and the request-duration histogram are per process (label
 * route is the route pattern, never the raw path). Everything else is shared
 * by every daemon, so any daemon answers for the whole farm. When Redis is
 * down the process metrics are still served and tessera_redis_up is 0.
 * Formatting lives in metrics_format.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics_format.h"
#include "server.h"

#define NB 11
static const double dur_bounds[NB] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define MAX_CODES 24

typedef struct {
    int code[MAX_CODES];
    unsigned long long n[MAX_CODES];
    int ncodes;
    double bucket[NB];
    double sum, count;
} route_stats;

struct td_metrics {
    route_stats route[TD_ROUTE_COUNT];
};

td_metrics *td_metrics_new(void) { return calloc(1, sizeof(td_metrics)); }
void td_metrics_free(td_metrics *m) { free(m); }

void td_metrics_observe(td_metrics *m, td_route route, int status, double seconds) {
    if (!m || (unsigned)route >= TD_ROUTE_COUNT) return;
    route_stats *r = &m->route[route];
    int i;
    for (i = 0; i < r->ncodes; i++)
        if (r->code[i] == status) break;
    if (i == r->ncodes) {
        if (r->ncodes == MAX_CODES) i = MAX_CODES - 1; /* never: a handful of codes exist */
        else r->code[r->ncodes++] = status;
    }
    r->n[i]++;
    for (int b = 0; b < NB; b++)
        if (seconds <= dur_bounds[b]) {
            r->bucket[b]++;
            break;
        }
    r->sum += seconds;
    r->count++;
}

/* ---- Redis-derived families ---------------------------------------------- */

typedef struct {
    double bound, count;
} hbucket;

static int cmp_bucket(const void *a, const void *b) {
    double x = ((const hbucket *)a)->bound, y = ((const hbucket *)b)->bound;
    return x < y ? -1 : x > y;
}

/* A histogram hash {bound: count, ..., sum, count} (bounds not cumulative). */
static void hash_histogram(td_mbuf *b, const char *name, const char *const *labels, const redisReply *h) {
    hbucket bk[64];
    int n = 0;
    double sum = 0, count = 0;
    for (size_t i = 0; h && i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str, *v = h->element[i + 1]->str;
        if (!f || !v) continue;
        if (!strcmp(f, "sum")) sum = atof(v);
        else if (!strcmp(f, "count")) count = atof(v);
        else if (!strcmp(f, "+Inf")) continue; /* part of count */
        else if (n < 64) {
            char *end;
            double bound = strtod(f, &end);
            if (end == f || *end) continue;
            bk[n].bound = bound;
            bk[n].count = atof(v);
            n++;
        }
    }
    qsort(bk, (size_t)n, sizeof bk[0], cmp_bucket);
    double bounds[64], counts[64];
    for (int i = 0; i < n; i++) {
        bounds[i] = bk[i].bound;
        counts[i] = bk[i].count;
    }
    td_mf_histogram(b, name, labels, bounds, counts, n, sum, count);
}

static void redis_families(td_mbuf *b, const redisReply *rep) {
    long long now = rep->element[0]->integer;
    const redisReply *stats = rep->element[1], *pq = rep->element[2], *qw = rep->element[3], *hr = rep->element[4];
    long long alive = rep->element[5]->integer;

    td_mf_family(b, "tessera_jobs_submitted_total", "counter", "Jobs accepted, by type (all daemons).");
    for (size_t i = 0; i + 1 < stats->elements; i += 2) {
        const char *f = stats->element[i]->str, *v = stats->element[i + 1]->str;
        if (f && v && !strncmp(f, "submitted|", 10)) {
            const char *l[] = {"type", f + 10, NULL};
            td_mf_sample(b, "tessera_jobs_submitted_total", l, atof(v));
        }
    }
    td_mf_family(b, "tessera_jobs_finished_total", "counter", "Jobs that reached a final state, by type and state.");
    for (size_t i = 0; i + 1 < stats->elements; i += 2) {
        const char *f = stats->element[i]->str, *v = stats->element[i + 1]->str;
        if (!f || !v || strncmp(f, "finished|", 9)) continue;
        char type[128];
        const char *bar = strchr(f + 9, '|');
        if (!bar || (size_t)(bar - f - 9) >= sizeof type) continue;
        memcpy(type, f + 9, (size_t)(bar - f - 9));
        type[bar - f - 9] = 0;
        const char *l[] = {"type", type, "state", bar + 1, NULL};
        td_mf_sample(b, "tessera_jobs_finished_total", l, atof(v));
    }
    td_mf_family(b, "tessera_queue_depth", "gauge", "Jobs queued and not yet running, by pool.");
    for (size_t i = 0; i < pq->elements; i++) {
        const redisReply *p = pq->element[i];
        if (p->type != REDIS_REPLY_ARRAY || p->elements != 3 || !p->element[0]->str) continue;
        const char *l[] = {"pool", p->element[0]->str, NULL};
        td_mf_sample(b, "tessera_queue_depth", l, (double)p->element[1]->integer);
    }
    td_mf_family(b, "tessera_queue_oldest_age_seconds", "gauge",
                 "Age of the oldest queued job, by pool (0 when the queue is empty).");
    for (size_t i = 0; i < pq->elements; i++) {
        const redisReply *p = pq->element[i];
        if (p->type != REDIS_REPLY_ARRAY || p->elements != 3 || !p->element[0]->str) continue;
        const char *l[] = {"pool", p->element[0]->str, NULL};
        const char *oldest = p->element[2]->str;
        double age = oldest && oldest[0] ? (double)(now - atoll(oldest)) / 1000.0 : 0;
        td_mf_sample(b, "tessera_queue_oldest_age_seconds", l, age < 0 ? 0 : age);
    }
    td_mf_family(b, "tessera_queue_wait_seconds", "histogram", "Time from submission to the first claim.");
    hash_histogram(b, "tessera_queue_wait_seconds", NULL, qw);
    td_mf_family(b, "tessera_job_run_seconds", "histogram", "Time from claim to the final state, by type.");
    for (size_t i = 0; i < hr->elements; i++) {
        const redisReply *t = hr->element[i];
        if (t->type != REDIS_REPLY_ARRAY || t->elements != 2 || !t->element[0]->str) continue;
        const char *l[] = {"type", t->element[0]->str, NULL};
        hash_histogram(b, "tessera_job_run_seconds", l, t->element[1]);
    }
    td_mf_family(b, "tessera_workers_alive", "gauge", "Workers whose heartbeat has not expired.");
    td_mf_sample(b, "tessera_workers_alive", NULL, (double)alive);
    td_mf_family(b, "tessera_webhook_deliveries_total", "counter", "Webhook delivery attempts, by outcome.");
    double lost = 0;
    for (size_t i = 0; i + 1 < stats->elements; i += 2) {
        const char *f = stats->element[i]->str, *v = stats->element[i + 1]->str;
        if (!f || !v) continue;
        if (!strncmp(f, "webhook|", 8)) {
            const char *l[] = {"outcome", f + 8, NULL};
            td_mf_sample(b, "tessera_webhook_deliveries_total", l, atof(v));
        } else if (!strcmp(f, "lost_leases"))
            lost = atof(v);
    }
    td_mf_family(b, "tessera_lease_expirations_total", "counter",
                 "Jobs reclaimed because their worker stopped renewing the lease.");
    td_mf_sample(b, "tessera_lease_expirations_total", NULL, lost);
}

static int valid_stats_reply(const redisReply *rep) {
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 6) return 0;
    return rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[1]->type == REDIS_REPLY_ARRAY &&
           rep->element[2]->type == REDIS_REPLY_ARRAY && rep->element[3]->type == REDIS_REPLY_ARRAY &&
           rep->element[4]->type == REDIS_REPLY_ARRAY && rep->element[5]->type == REDIS_REPLY_INTEGER;
}

static double rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long size = 0, res = 0;
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
    fclose(f);
    return (double)res * (double)sysconf(_SC_PAGESIZE);
}

static void render(td_req *r, const redisReply *rep) {
    td_server *s = r->srv;
    td_metrics *m = s->metrics;
    td_mbuf b;
    td_mbuf_init(&b);
    td_mf_family(&b, "tessera_http_requests_total", "counter", "HTTP requests answered by this daemon.");
    for (int i = 0; i < TD_ROUTE_COUNT; i++)
        for (int k = 0; k < m->route[i].ncodes; k++) {
            char code[8];
            snprintf(code, sizeof code, "%d", m->route[i].code[k]);
            const char *l[] = {"route", td_route_names[i], "code", code, NULL};
            td_mf_sample(&b, "tessera_http_requests_total", l, (double)m->route[i].n[k]);
        }
    td_mf_family(&b, "tessera_http_request_duration_seconds", "histogram",
                 "Time to answer an HTTP request (to the start of the stream for events).");
    for (int i = 0; i < TD_ROUTE_COUNT; i++) {
        if (m->route[i].count == 0) continue;
        const char *l[] = {"route", td_route_names[i], NULL};
        td_mf_histogram(&b, "tessera_http_request_duration_seconds", l, dur_bounds, m->route[i].bucket, NB,
                        m->route[i].sum, m->route[i].count);
    }
    if (valid_stats_reply(rep)) redis_families(&b, rep);
    td_mf_family(&b, "tessera_redis_up", "gauge", "1 when this daemon's Redis connection answers.");
    td_mf_sample(&b, "tessera_redis_up", NULL, valid_stats_reply(rep) ? 1 : 0);
    td_mf_family(&b, "tessera_redis_errors_total", "counter",
                 "Redis connection failures, disconnects and error replies seen by this daemon.");
    td_mf_sample(&b, "tessera_redis_errors_total", NULL, (double)td_redis_errors(s->redis));
    td_mf_family(&b, "tessera_sse_streams", "gauge", "Event streams open on this daemon.");
    td_mf_sample(&b, "tessera_sse_streams", NULL, td_sse_count(s->sse));
    td_mf_family(&b, "process_resident_memory_bytes", "gauge", "Resident memory of this daemon.");
    td_mf_sample(&b, "process_resident_memory_bytes", NULL, rss_bytes());
    if (b.oom) {
        td_mbuf_free(&b);
        td_reply_error(r, 500, "internal", NULL, "out of memory");
        return;
    }
    td_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.buf, b.len);
    td_mbuf_free(&b);
}

typedef struct {
    char *pools;
    const char *argv[64];
} metrics_ctx;

static void metrics_ctx_free(void *p) {
    metrics_ctx *c = p;
    free(c->pools);
    free(c);
}

static void on_stats(redisReply *rep, void *priv) { render(priv, rep); }

void td_h_metrics(td_req *r) {
    td_server *s = r->srv;
    metrics_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->pools = strdup(s->cfg->pools ? s->cfg->pools : ""))) {
        free(c);
        td_reply_error(r, 500, "internal", NULL, "out of memory");
        return;
    }
    r->data = c;
    r->data_free = metrics_ctx_free;
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(c->pools, ", ", &save); t && n < 64; t = strtok_r(NULL, ", ", &save)) c->argv[n++] = t;
    if (td_redis_script(s->redis, &s->s_stats, on_stats, r, n, c->argv, NULL)) render(r, NULL);
}
