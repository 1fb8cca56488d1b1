/* server.h - the daemon's shared state, per-request context and reply helpers.
 *
 * One event_base runs everything: evhttp, the async Redis connections, the
 * SSE fan-out and timers. A request is a td_req from the moment evhttp hands
 * it over until exactly one td_reply_* (or td_req_detach for a stream) ends it;
 * every route handler either replies at once or issues one Redis call whose
 * callback replies. td_req records the route pattern (for metrics), the
 * request id and the API key name.
 */
#ifndef TESSERA_DAEMON_SERVER_H
#define TESSERA_DAEMON_SERVER_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "job.h"
#include "log.h"
#include "redis_async.h"
#include "settings.h"

typedef enum {
    TD_ROUTE_UNMATCHED,
    TD_ROUTE_HEALTHZ,
    TD_ROUTE_READYZ,
    TD_ROUTE_METRICS,
    TD_ROUTE_JOBS,
    TD_ROUTE_JOB,
    TD_ROUTE_JOB_EVENTS,
    TD_ROUTE_JOB_IMAGE,
    TD_ROUTE_WORKERS,
    TD_ROUTE_COUNT
} td_route;

extern const char *const td_route_names[TD_ROUTE_COUNT];

typedef struct td_metrics td_metrics;
typedef struct td_sse_hub td_sse_hub;

typedef struct {
    char name[64];
    unsigned char digest[32]; /* SHA-256 of the key */
} td_apikey;

typedef struct td_req td_req;

typedef struct td_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    const td_settings *cfg;
    tlog log;
    td_redis *redis;
    td_sse_hub *sse;
    td_metrics *metrics;
    tjob_limits limits;
    td_apikey *keys;
    int nkeys;
    td_script s_submit, s_cancel, s_list, s_workers, s_stats;
    struct event *sigterm_ev, *sigint_ev, *drain_ev;
    int stopping;
    int drain_ticks, drain_quiet;
    td_req *inflight; /* list of requests awaiting a reply */
    int ninflight;
    char too_large_token[33]; /* marks bodies refused before reading */
} td_server;

struct td_req {
    td_server *srv;
    struct evhttp_request *req;
    td_route route;
    struct timespec t0;
    char rid[40];
    char owner[64]; /* API key name, "anonymous" without keys */
    char id[TJOB_ID_LEN + 1];
    int n;          /* image index */
    void *data;     /* route state, freed with data_free */
    void (*data_free)(void *);
    td_req *prev, *next;
};

/* server.c */
int td_server_init(td_server *s, struct event_base *base, const td_settings *cfg, const tlog *log, char *err,
                   size_t errlen);
int td_server_listen(td_server *s, char *err, size_t errlen);
void td_server_shutdown(td_server *s); /* begin a graceful stop */
void td_server_free(td_server *s);

void td_reply_json(td_req *r, int status, json_t *body); /* steals body */
void td_reply_error(td_req *r, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void td_reply_redis_down(td_req *r);
/* {"code","message","field"} for callers that add keys before replying with
 * td_reply_json(r, status, json_pack("{s:o}", "error", obj)). */
json_t *td_error_obj(const char *code, const char *field, const char *message);
/* Raw bytes; headers may be added to evhttp_request_get_output_headers first. */
void td_reply_raw(td_req *r, int status, const char *ctype, const void *data, size_t len);
/* The request leaves the in-flight list (a stream took it over); counted as status. */
void td_req_detach(td_req *r, int status);
void td_req_free(td_req *r);

/* public_url + path into out. */
void td_link(const td_server *s, char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* ms since the epoch → "2024-05-01T12:00:00.123Z" */
void td_iso_ms(long long ms, char out[32]);
/* A query parameter, or NULL. Caller frees the evkeyvalq with evhttp_clear_headers. */
const char *td_query(struct evkeyvalq *q, const char *key);

/* routes_jobs.c */
void td_h_jobs_post(td_req *r);
void td_h_jobs_list(td_req *r);
void td_h_job_get(td_req *r);
void td_h_job_delete(td_req *r);
void td_h_job_image(td_req *r);
/* routes_misc.c */
void td_h_healthz(td_req *r);
void td_h_readyz(td_req *r);
void td_h_workers(td_req *r);
void td_server_scripts_init(td_server *s);

/* metrics.c */
td_metrics *td_metrics_new(void);
void td_metrics_free(td_metrics *m);
void td_metrics_observe(td_metrics *m, td_route route, int status, double seconds);
void td_h_metrics(td_req *r);

/* sse.c */
td_sse_hub *td_sse_new(td_server *s);
void td_sse_free(td_sse_hub *h);      /* ends every stream */
void td_sse_close_all(td_sse_hub *h); /* ends every stream (shutdown) */
void td_sse_on_message(const char *payload, size_t len, void *hub);
void td_sse_on_ready(void *hub);
int td_sse_count(const td_sse_hub *h);
void td_h_job_events(td_req *r);

#endif
