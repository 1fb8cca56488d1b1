/* sdapi_render.c - POST /sdapi/v1/txt2img, /img2img, /extra-single-image:
 * A1111's synchronous render calls on top of the farm's queue.
 *
 * A request becomes a native job (proto/a1111.h, with the current
 * /sdapi/v1/options for txt2img/img2img), is validated by tjob_validate with
 * the limits of POST /v1/jobs and queued by the same submit path
 * (td_job_submit). The HTTP request is then held open - never blocking the
 * event loop - until the job reaches a final state:
 *
 *   - the server's one P events subscription hands every job event to
 *     td_sdapi_on_message; the final state event of a held job starts the
 *     answer. The hold (tsd_wait) is listed before the submit script runs,
 *     so no event can slip past it;
 *   - after the job is created its state is read once (a job that finished
 *     before its event could be seen, e.g. while the subscription was
 *     reconnecting), again every 5 seconds and after every
 *     resubscription (td_sdapi_on_ready): lost events cost a few seconds,
 *     never a hung request;
 *   - the answer reads the job's images (GET job:<id>:image:<attempt>:<n>,
 *     one MGET) and its result info, and builds A1111's response. A canceled
 *     job (/interrupt) answers with the images it has, if any; a failed job
 *     with A1111's error body (500; 422 for a validation failure).
 *
 * The client hanging up cancels the job (as DELETE /v1/jobs/{id} does), as
 * do the sdapi_timeout_s timeout (504) and daemon shutdown (503): nobody is
 * left to receive the result. evhttp stops reading a connection once it has
 * a request's body (and must not read one that waits for its answer), so it
 * would notice a hang-up only when the answer is written; instead the socket
 * is peeked (recv MSG_PEEK) every second and a connection whose peer has
 * closed is freed, which runs the close callback. While held, the
 * connection's idle timeout is raised past sdapi_timeout_s; it is put back
 * before the answer.
 *
 * Lifetime: a tsd_wait lives until it has answered (r == NULL) and no Redis
 * call refers to it any more (pending == 0); the td_req ends at the answer or
 * when the client goes away.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "a1111.h"
#include "base64.h"
#include "sdapi.h"

#define TICK_MS 1000   /* connection check */
#define POLL_TICKS 5   /* job state read, in ticks */
#define MAX_RESULT_IMAGES 1000

struct tsd_wait {
    td_sdapi *api;
    td_req *r;                       /* the held request; NULL once answered or gone */
    struct evhttp_connection *evcon; /* its connection while held (closecb set) */
    tsd_kind kind;
    json_t *body;                    /* the A1111 request */
    td_submit_args *sub;             /* until the submit script answered */
    char id[TJOB_ID_LEN + 1];        /* "" before submission */
    int pending;                     /* Redis calls that will call back with this */
    int submitted;                   /* the job exists */
    int looking;                     /* a state read is in flight */
    int answering;                   /* the job is final: its result is being read */
    int cancel_sent;
    struct event *timeout_ev, *tick_ev;
    int ticks;
    /* the result being read */
    int nimages;
    char **keys; /* MGET argv: "MGET", key... */
    json_t *info;
    char state[16];
    tsd_wait *prev, *next;
};

static const char *kind_name(tsd_kind k) {
    return k == TSD_TXT2IMG ? "txt2img" : k == TSD_IMG2IMG ? "img2img" : "extra-single-image";
}

static void noop_cb(redisReply *rep, void *priv) {}

/* ---- lifetime ------------------------------------------------------------ */

static void free_keys(tsd_wait *w) {
    if (!w->keys) return;
    for (int i = 0; i <= w->nimages; i++) free(w->keys[i]);
    free(w->keys);
    w->keys = NULL;
}

static void stop_timers(tsd_wait *w) {
    if (w->timeout_ev) event_free(w->timeout_ev);
    if (w->tick_ev) event_free(w->tick_ev);
    w->timeout_ev = w->tick_ev = NULL;
}

static void unlink_wait(tsd_wait *w) {
    td_sdapi *a = w->api;
    if (!a) return;
    if (w->prev) w->prev->next = w->next;
    else if (a->waits == w) a->waits = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
    a->count--;
    w->api = NULL;
}

static void wait_destroy(tsd_wait *w) {
    unlink_wait(w);
    stop_timers(w);
    json_decref(w->body);
    json_decref(w->info);
    free_keys(w);
    td_submit_args_free(w->sub);
    free(w);
}

static void maybe_free(tsd_wait *w) {
    if (!w->r && w->pending == 0) wait_destroy(w);
}

/* Stop watching the connection (before answering or when it is gone). */
static void release_conn(tsd_wait *w, int restore_timeout) {
    if (!w->evcon) return;
    evhttp_connection_set_closecb(w->evcon, NULL, NULL);
    if (restore_timeout) {
        long long t = w->r ? w->r->srv->cfg->http_timeout : 60;
        evhttp_connection_set_timeout(w->evcon, (int)(t > 0 ? t : 60));
    }
    w->evcon = NULL;
}

/* ---- canceling ------------------------------------------------------------ */

typedef struct {
    const char *argv[2];
    char id[TJOB_ID_LEN + 1];
    char ret[24];
    td_server *srv;
} cancel_ctx;

static void on_cancel(redisReply *rep, void *priv) {
    cancel_ctx *c = priv;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 && rep->element[0]->str)
        tlog_write(&c->srv->log, TLOG_INFO, "job %s: cancel (sdapi client gone): %s", c->id, rep->element[0]->str);
    free(c);
}

/* DELETE /v1/jobs/{id} without a client: the cancel script. */
static void cancel_job(td_server *s, const char *id) {
    cancel_ctx *c = calloc(1, sizeof *c);
    if (!c) return;
    c->srv = s;
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->ret, sizeof c->ret, "%lld", s->cfg->retention);
    c->argv[0] = c->id;
    c->argv[1] = c->ret;
    if (td_redis_script(s->redis, &s->s_cancel, on_cancel, c, 2, c->argv, NULL)) {
        tlog_write(&s->log, TLOG_WARN, "job %s: cannot cancel, Redis is down", id);
        free(c);
    }
}

static void forget_job(td_server *s, const char *id) {
    td_redis_cmd(s->redis, noop_cb, NULL, "SREM %ssdapi:jobs %s", s->cfg->key_prefix, id);
}

/* ---- answering ------------------------------------------------------------ */

static void answer_json(tsd_wait *w, int status, json_t *body) {
    td_req *r = w->r;
    if (!r) {
        json_decref(body);
        return;
    }
    release_conn(w, 1);
    w->r = NULL;
    stop_timers(w);
    td_reply_json(r, status, body);
}

static void answer_error(tsd_wait *w, const ta1_error *e) {
    answer_json(w, e->http_status, ta1_error_body(e));
}

static void answer_fail(tsd_wait *w, int status, const char *cls, const char *detail) {
    ta1_error e;
    memset(&e, 0, sizeof e);
    e.http_status = status;
    snprintf(e.error, sizeof e.error, "%s", cls);
    snprintf(e.detail, sizeof e.detail, "%s", detail);
    answer_error(w, &e);
}

/* The client, the timeout or shutdown ends the wait: the job goes too. */
static void abandon(tsd_wait *w) {
    if (w->submitted && !w->answering && !w->cancel_sent && w->api) {
        w->cancel_sent = 1;
        cancel_job(w->api->srv, w->id);
    }
}

static void on_client_close(struct evhttp_connection *evcon, void *arg) {
    tsd_wait *w = arg;
    td_req *r = w->r;
    w->evcon = NULL;
    if (!r) return;
    w->r = NULL;
    stop_timers(w);
    tlog_write(&r->srv->log, TLOG_INFO, "sdapi %s: client went away%s%s", kind_name(w->kind),
               w->submitted ? ", canceling job " : "", w->submitted ? w->id : "");
    abandon(w);
    /* Detached from the dying connection, the request is ours to free (a
     * reply to nobody does it); still attached, the connection frees it. */
    if (evhttp_request_get_connection(r->req) == NULL) td_reply_raw(r, 499, NULL, NULL, 0);
    else td_req_detach(r, 499);
    maybe_free(w);
}

static void on_timeout(evutil_socket_t fd, short ev, void *arg) {
    tsd_wait *w = arg;
    td_server *s = w->api ? w->api->srv : NULL;
    if (!w->r || !s) return;
    char msg[160];
    snprintf(msg, sizeof msg, "job %s did not finish within sdapi_timeout_s (%llds); it was canceled", w->id,
             s->cfg->sdapi_timeout_s);
    tlog_write(&s->log, TLOG_WARN, "sdapi %s: %s", kind_name(w->kind), msg);
    abandon(w);
    answer_fail(w, 504, "TimeoutError", msg);
    maybe_free(w);
}

/* Failed job: 422 for what validation would refuse, else 500. */
static void answer_failed_job(tsd_wait *w, const char *code, const char *message) {
    int validation = code && (!strncmp(code, "invalid", 7) || !strcmp(code, "missing_field") ||
                              !strcmp(code, "unknown_field"));
    char detail[512];
    snprintf(detail, sizeof detail, "job %s failed: %s%s%s", w->id, code ? code : "error",
             message && message[0] ? ": " : "", message ? message : "");
    answer_fail(w, validation ? 422 : 500, validation ? "RequestValidationError" : "RuntimeError", detail);
}

/* Answer with the images in rep (an MGET reply; missing ones are skipped). */
static void answer_images(tsd_wait *w, const redisReply *rep) {
    if (!w->r) return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        answer_fail(w, 503, "HTTPException", "the job store (Redis) is not reachable");
        return;
    }
    int n = 0;
    char **b64 = calloc((size_t)rep->elements + 1, sizeof *b64);
    for (size_t i = 0; b64 && i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING) continue; /* expired meanwhile */
        if (tb64_encode((const uint8_t *)e->str, e->len, &b64[n], NULL, NULL, 0) == 0) n++;
    }
    if (!b64) {
        answer_fail(w, 500, "MemoryError", "out of memory");
    } else if (w->kind == TSD_EXTRAS) {
        answer_json(w, 200, json_pack("{s:s, s:s}", "html_info", "", "image", n > 0 ? b64[0] : ""));
    } else {
        json_t *info = w->info ? w->info : json_object();
        json_t *resp = ta1_response(w->body, w->kind == TSD_IMG2IMG, info, (const char *const *)b64, n);
        if (info != w->info) json_decref(info);
        if (resp) answer_json(w, 200, resp);
        else answer_fail(w, 500, "RuntimeError", "cannot build the response");
    }
    for (int i = 0; b64 && i < n; i++) free(b64[i]);
    free(b64);
}

static void on_images(redisReply *rep, void *priv) {
    tsd_wait *w = priv;
    w->pending--;
    answer_images(w, rep);
    maybe_free(w);
}

static int wants_images(const tsd_wait *w) {
    if (w->kind == TSD_EXTRAS) return 1;
    json_t *si = json_object_get(w->body, "send_images");
    return !json_is_false(si);
}

/* The job is final: read its images (none for a failure). */
static void read_result(tsd_wait *w, const char *attempt, int nimages) {
    td_server *s = w->api->srv;
    forget_job(s, w->id);
    if (nimages > MAX_RESULT_IMAGES) nimages = MAX_RESULT_IMAGES;
    if (!wants_images(w) || !attempt || nimages <= 0) {
        redisReply empty = {.type = REDIS_REPLY_ARRAY, .elements = 0, .element = NULL};
        answer_images(w, &empty);
        return;
    }
    w->keys = calloc((size_t)nimages + 1, sizeof *w->keys);
    if (!w->keys) {
        answer_fail(w, 500, "MemoryError", "out of memory");
        return;
    }
    w->nimages = nimages;
    int ok = (w->keys[0] = strdup("MGET")) != NULL;
    for (int i = 0; ok && i < nimages; i++) {
        char k[256];
        snprintf(k, sizeof k, "%sjob:%s:image:%s:%d", s->cfg->key_prefix, w->id, attempt, i);
        ok = (w->keys[i + 1] = strdup(k)) != NULL;
    }
    if (!ok) {
        answer_fail(w, 500, "MemoryError", "out of memory");
        return;
    }
    if (td_redis_argv(s->redis, on_images, w, nimages + 1, (const char **)w->keys, NULL)) {
        answer_fail(w, 503, "HTTPException", "the job store (Redis) is not reachable");
        return;
    }
    w->pending++;
}

static int is_final(const char *st) {
    return st && (!strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "canceled"));
}

/* HMGET state result_attempt images info error_code error */
static void on_look(redisReply *rep, void *priv) {
    tsd_wait *w = priv;
    w->pending--;
    w->looking = 0;
    if (!w->r || w->answering) {
        maybe_free(w);
        return;
    }
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 6) {
        maybe_free(w); /* Redis trouble: the poll tries again */
        return;
    }
    const char *v[6];
    for (int i = 0; i < 6; i++) v[i] = rep->element[i]->type == REDIS_REPLY_STRING ? rep->element[i]->str : NULL;
    if (!v[0]) {
        answer_fail(w, 500, "RuntimeError", "the job disappeared from the job store");
        maybe_free(w);
        return;
    }
    if (!is_final(v[0])) {
        maybe_free(w);
        return;
    }
    w->answering = 1;
    snprintf(w->state, sizeof w->state, "%s", v[0]);
    if (v[3] && v[3][0]) w->info = json_loads(v[3], JSON_DECODE_ANY, NULL);
    if (!strcmp(v[0], "failed")) {
        forget_job(w->api->srv, w->id);
        answer_failed_job(w, v[4], v[5]);
    } else {
        read_result(w, v[1], v[2] ? atoi(v[2]) : 0);
    }
    maybe_free(w);
}

static void look(tsd_wait *w) {
    if (!w->r || !w->submitted || w->looking || w->answering || !w->api) return;
    td_server *s = w->api->srv;
    if (td_redis_cmd(s->redis, on_look, w, "HMGET %sjob:%s state result_attempt images info error_code error",
                     s->cfg->key_prefix, w->id))
        return; /* Redis down: the poll and on_ready try again */
    w->pending++;
    w->looking = 1;
}

/* Has the client closed its end? (EOF or a socket error; data it sent
 * ahead - a pipelined request - stays unread for evhttp.) */
static int peer_gone(struct evhttp_connection *evcon) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0) return 0;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void on_tick(evutil_socket_t fd, short ev, void *arg) {
    tsd_wait *w = arg;
    if (w->evcon && peer_gone(w->evcon)) {
        evhttp_connection_free(w->evcon); /* runs on_client_close, which frees w when it can */
        return;
    }
    if (++w->ticks % POLL_TICKS == 0) look(w);
}

/* ---- submitting ------------------------------------------------------------ */

static void on_submitted(redisReply *rep, void *priv) {
    tsd_wait *w = priv;
    w->pending--;
    td_server *s = w->api ? w->api->srv : NULL;
    const char *existing;
    long long depth;
    td_submit_outcome o = td_job_submit_outcome(rep, &existing, &depth);
    if (o == TD_SUBMIT_CREATED && s) {
        w->submitted = 1;
        tlog_write(&s->log, TLOG_INFO, "job %s queued: type %s pool %s owner %s (sdapi %s)", w->id,
                   w->sub->sub.type, w->sub->sub.pool, w->r ? w->r->owner : "-", kind_name(w->kind));
        td_submit_args_free(w->sub); /* the input bytes are stored */
        w->sub = NULL;
        if (!w->r) { /* the client left while the job was being stored */
            abandon(w);
            maybe_free(w);
            return;
        }
        td_redis_cmd(s->redis, noop_cb, NULL, "SADD %ssdapi:jobs %s", s->cfg->key_prefix, w->id);
        look(w); /* it may have finished before its event could be seen */
    } else if (!w->r) {
        /* gone, nothing stored */
    } else if (o == TD_SUBMIT_FULL) {
        evhttp_add_header(evhttp_request_get_output_headers(w->r->req), "Retry-After", "5");
        char msg[200];
        snprintf(msg, sizeof msg, "the queue of pool %s is full (%lld queued); retry later",
                 w->sub ? w->sub->sub.pool : "?", depth);
        answer_fail(w, 429, "HTTPException", msg);
    } else if (o == TD_SUBMIT_DOWN) {
        answer_fail(w, 503, "HTTPException", "the job store (Redis) is not reachable; try again shortly");
    } else {
        answer_fail(w, 500, "RuntimeError", "the job store refused the job");
    }
    maybe_free(w);
}

static void convert_and_submit(tsd_wait *w, const json_t *options) {
    td_server *s = w->api->srv;
    json_t *job = NULL;
    ta1_error e;
    memset(&e, 0, sizeof e);
    int rc = w->kind == TSD_TXT2IMG   ? ta1_txt2img_to_job(w->body, options, &job, &e)
             : w->kind == TSD_IMG2IMG ? ta1_img2img_to_job(w->body, options, &job, &e)
                                      : ta1_extras_to_job(w->body, &job, &e);
    if (rc) {
        if (e.http_status < 400) e.http_status = 422;
        answer_error(w, &e);
        return;
    }
    w->sub = calloc(1, sizeof *w->sub);
    if (!w->sub) {
        json_decref(job);
        answer_fail(w, 500, "MemoryError", "out of memory");
        return;
    }
    tjob_error terr;
    memset(&terr, 0, sizeof terr);
    rc = tjob_validate(job, &s->limits, &w->sub->sub, &terr);
    json_decref(job);
    if (rc) {
        ta1_from_job_error(terr.http_status, terr.field, terr.message, &e);
        answer_error(w, &e);
        return;
    }
    snprintf(w->sub->owner, sizeof w->sub->owner, "%s", w->r->owner);
    rc = td_job_submit(s, w->sub, on_submitted, w);
    if (rc == -2) {
        answer_fail(w, 500, "RuntimeError", "cannot make a job id");
        return;
    }
    if (rc) {
        answer_fail(w, 503, "HTTPException", "the job store (Redis) is not reachable; try again shortly");
        return;
    }
    w->pending++;
    snprintf(w->id, sizeof w->id, "%s", w->sub->id); /* from now on its events reach this wait */
}

static void on_options(redisReply *rep, void *priv) {
    tsd_wait *w = priv;
    w->pending--;
    if (!w->r) {
        maybe_free(w);
        return;
    }
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        answer_fail(w, 503, "HTTPException", "the job store (Redis) is not reachable; try again shortly");
        maybe_free(w);
        return;
    }
    json_t *opts = tsd_options_merge(rep);
    if (!opts) answer_fail(w, 500, "MemoryError", "out of memory");
    else convert_and_submit(w, opts);
    json_decref(opts);
    maybe_free(w);
}

void tsd_render(td_req *r, tsd_kind kind) {
    td_server *s = r->srv;
    td_sdapi *a = s->sdapi;
    if (!td_redis_up(s->redis)) { /* before parsing megabytes for nothing */
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
        td_sdapi_reply_error(r, 503, "HTTPException", "the job store (Redis) is not reachable; try again shortly");
        return;
    }
    json_t *body = tsd_read_body(r);
    if (!body) return;
    tsd_wait *w = calloc(1, sizeof *w);
    if (!w) {
        json_decref(body);
        td_sdapi_reply_error(r, 500, "MemoryError", "out of memory");
        return;
    }
    evbuffer_drain(evhttp_request_get_input_buffer(r->req), evbuffer_get_length(evhttp_request_get_input_buffer(r->req)));
    w->api = a;
    w->r = r;
    w->kind = kind;
    w->body = body;
    w->next = a->waits;
    if (a->waits) a->waits->prev = w;
    a->waits = w;
    a->count++;
    w->evcon = evhttp_request_get_connection(r->req);
    if (w->evcon) {
        evhttp_connection_set_closecb(w->evcon, on_client_close, w);
        evhttp_connection_set_timeout(w->evcon, (int)(s->cfg->sdapi_timeout_s + 60));
    }
    w->timeout_ev = evtimer_new(s->base, on_timeout, w);
    struct timeval tv = {(time_t)s->cfg->sdapi_timeout_s, 0};
    if (w->timeout_ev) evtimer_add(w->timeout_ev, &tv);
    w->tick_ev = event_new(s->base, -1, EV_PERSIST, on_tick, w);
    struct timeval tk = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
    if (w->tick_ev) event_add(w->tick_ev, &tk);
    if (kind == TSD_EXTRAS) {
        convert_and_submit(w, NULL);
    } else if (td_redis_cmd(s->redis, on_options, w, "HGETALL %ssdapi:options", s->cfg->key_prefix)) {
        answer_fail(w, 503, "HTTPException", "the job store (Redis) is not reachable; try again shortly");
    } else {
        w->pending++;
    }
    maybe_free(w);
}

/* ---- the hub side ------------------------------------------------------------ */

td_sdapi *td_sdapi_new(td_server *s) {
    td_sdapi *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->srv = s;
    tsd_scripts_init(a);
    return a;
}

void td_sdapi_close_all(td_sdapi *a) {
    if (!a) return;
    for (tsd_wait *w = a->waits, *next; w; w = next) {
        next = w->next;
        if (!w->r) continue;
        abandon(w);
        evhttp_add_header(evhttp_request_get_output_headers(w->r->req), "Connection", "close");
        answer_fail(w, 503, "HTTPException", "the daemon is shutting down; the job was canceled");
        maybe_free(w);
    }
}

void td_sdapi_free(td_sdapi *a) {
    if (!a) return;
    td_sdapi_close_all(a);
    while (a->waits) { /* Redis is gone: no callback will come */
        tsd_wait *w = a->waits;
        if (w->r) td_req_detach(w->r, 503);
        w->r = NULL;
        release_conn(w, 0);
        wait_destroy(w);
    }
    free(a);
}

int td_sdapi_count(const td_sdapi *a) { return a ? a->count : 0; }

void td_sdapi_on_message(td_sdapi *a, const char *payload, size_t len) {
    if (!a || !a->waits) return;
    /* "<stream id> <job id> state <json>": only final state events matter */
    const char *end = payload + len;
    const char *s1 = memchr(payload, ' ', len);
    if (!s1 || (size_t)(end - s1) < TJOB_ID_LEN + 8) return;
    const char *id = s1 + 1;
    if (id[TJOB_ID_LEN] != ' ' || strncmp(id + TJOB_ID_LEN + 1, "state ", 6)) return;
    const char *data = id + TJOB_ID_LEN + 7;
    for (tsd_wait *w = a->waits, *next; w; w = next) {
        next = w->next;
        if (strncmp(w->id, id, TJOB_ID_LEN) || !w->id[0]) continue;
        json_t *j = json_loadb(data, (size_t)(end - data), 0, NULL);
        int fin = is_final(json_string_value(json_object_get(j, "state")));
        json_decref(j);
        if (fin) look(w);
    }
}

void td_sdapi_on_ready(td_sdapi *a) {
    if (!a) return;
    for (tsd_wait *w = a->waits, *next; w; w = next) {
        next = w->next;
        look(w);
    }
}
