/* server.h - the daemon's shared state, per-request context and reply helpers.
 *
 * One event_base runs everything: evhttp, the async Redis connections, the
 * SSE fan-out and timers. A request is a td_req from the moment evhttp hands
 * it over until exactly one td_reply_* (or td_req_detach for a stream) ends it;
 * every route handler either replies at once or issues one Redis call whose
 * callback replies (the /sdapi/v1 render routes hold theirs until the job is
 * done: sdapi_render.c). td_req records the route pattern (for metrics), the
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

/* The AUTOMATIC1111-compatible routes, /sdapi/v1/<path> (routes_sdapi.c):
 * X(enum suffix, path after /sdapi/v1/, allowed methods). */
#define TD_M_GET (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define TD_M_POST EVHTTP_REQ_POST
#define TD_SDAPI_ROUTES(X)                                                  \
    X(TXT2IMG, "txt2img", TD_M_POST)                                        \
    X(IMG2IMG, "img2img", TD_M_POST)                                        \
    X(EXTRA_SINGLE, "extra-single-image", TD_M_POST)                        \
    X(PNG_INFO, "png-info", TD_M_POST)                                      \
    X(PROGRESS, "progress", TD_M_GET)                                       \
    X(INTERRUPT, "interrupt", TD_M_POST)                                    \
    X(SKIP, "skip", TD_M_POST)                                              \
    X(OPTIONS, "options", TD_M_GET | TD_M_POST)                             \
    X(SD_MODELS, "sd-models", TD_M_GET)                                     \
    X(SD_VAE, "sd-vae", TD_M_GET)                                           \
    X(SAMPLERS, "samplers", TD_M_GET)                                       \
    X(SCHEDULERS, "schedulers", TD_M_GET)                                   \
    X(UPSCALERS, "upscalers", TD_M_GET)                                     \
    X(LATENT_MODES, "latent-upscale-modes", TD_M_GET)                       \
    X(LORAS, "loras", TD_M_GET)                                             \
    X(EMBEDDINGS, "embeddings", TD_M_GET)                                   \
    X(HYPERNETWORKS, "hypernetworks", TD_M_GET)                             \
    X(MEMORY, "memory", TD_M_GET)                                           \
    X(REFRESH_CHECKPOINTS, "refresh-checkpoints", TD_M_POST)                \
    X(REFRESH_VAE, "refresh-vae", TD_M_POST)                                \
    X(REFRESH_LORAS, "refresh-loras", TD_M_POST)                            \
    X(REFRESH_EMBEDDINGS, "refresh-embeddings", TD_M_POST)                  \
    X(CMD_FLAGS, "cmd-flags", TD_M_GET)                                     \
    X(PROMPT_STYLES, "prompt-styles", TD_M_GET)                             \
    X(FACE_RESTORERS, "face-restorers", TD_M_GET)                           \
    X(REALESRGAN, "realesrgan-models", TD_M_GET)                            \
    X(SCRIPTS, "scripts", TD_M_GET)

#define TD_SDAPI_ENUM(id, path, methods) TD_ROUTE_SDAPI_##id,

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
    TD_SDAPI_ROUTES(TD_SDAPI_ENUM)
    TD_ROUTE_COUNT
} td_route;

/* The /sdapi/v1 routes are the last ones of the enum. */
#define TD_ROUTE_IS_SDAPI(r) ((r) >= TD_ROUTE_SDAPI_TXT2IMG && (r) < TD_ROUTE_COUNT)

extern const char *const td_route_names[TD_ROUTE_COUNT];

typedef struct td_metrics td_metrics;
typedef struct td_sse_hub td_sse_hub;
typedef struct td_sdapi td_sdapi;

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
    td_sdapi *sdapi; /* /sdapi/v1 state: held requests waiting for their job */
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
/* Queueing a validated job through the submit script, shared by POST
 * /v1/jobs and the /sdapi/v1 render routes. The caller fills sub (tjob_validate),
 * owner and, optionally, idem (hex SHA-256 of owner + Idempotency-Key);
 * td_job_submit draws the id and runs the script. The struct must stay put
 * until cb runs (the arguments are resent as EVAL on NOSCRIPT). */
typedef struct {
    tjob_submission sub;
    char id[TJOB_ID_LEN + 1];
    char owner[64];
    char idem[65];
    /* private */
    char prio[8], max_attempts[24], max_depth[24], idem_ttl[24];
    const char *argv[13];
    size_t lens[13];
} td_submit_args;

typedef enum {
    TD_SUBMIT_CREATED, /* *id_out = the new job */
    TD_SUBMIT_EXISTS,  /* idempotency key seen: *id_out = that job */
    TD_SUBMIT_FULL,    /* the pool's queue is full: *depth = queued jobs */
    TD_SUBMIT_REFUSED, /* the script answered an error */
    TD_SUBMIT_DOWN,    /* no answer (Redis went away) */
    TD_SUBMIT_BAD      /* an answer the daemon does not understand */
} td_submit_outcome;

/* 0: queued, cb runs once with the script's reply; -1: Redis is down (cb does
 * not run); -2: no job id could be drawn. a->id is set in either case of 0. */
int td_job_submit(td_server *s, td_submit_args *a, td_redis_cb *cb, void *priv);
/* Reads the submit script's reply; *id_out / *depth as the outcome says. */
td_submit_outcome td_job_submit_outcome(const redisReply *rep, const char **id_out, long long *depth);
void td_submit_args_free(void *a); /* frees sub and a */

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

/* routes_sdapi.c, sdapi_render.c, sdapi_models.c */
td_sdapi *td_sdapi_new(td_server *s);
void td_sdapi_free(td_sdapi *a);           /* after td_redis_free */
void td_sdapi_close_all(td_sdapi *a);      /* answer every held request (shutdown) */
void td_sdapi_on_message(td_sdapi *a, const char *payload, size_t len);
void td_sdapi_on_ready(td_sdapi *a);
int td_sdapi_count(const td_sdapi *a);     /* held requests */
td_route td_sdapi_match(const char *path); /* path after "/sdapi/v1/"; UNMATCHED if unknown */
void td_h_sdapi(td_req *r);
/* An error in A1111's shape ({error, detail, body, errors}) with status. */
void td_sdapi_reply_error(td_req *r, int status, const char *error_class, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
