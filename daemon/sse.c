/* sse.c - GET /v1/jobs/{id}/events: a job's events as Server-Sent Events.
 *
 * Every daemon holds ONE subscription to the P events channel (redis_async.c)
 * and fans messages out by job id to its connected clients (a hash of lists).
 * A new client is registered with the hub first and only then reads the
 * backlog (XRANGE P job:<id>:events, after Last-Event-ID when given): live
 * messages that arrive while the backlog is loading are held and replayed
 * after it, and every event is sent only when its stream id is newer than the
 * last one sent, so the backlog/subscribe race can neither lose nor repeat an
 * event. When the subscriber reconnects (events may have been missed), every
 * client catches up the same way from its last id.
 *
 * Frames: "id: <stream id>\nevent: <event>\ndata: <json>\n\n", a comment
 * every 15 s as keepalive; the stream ends after the final state event
 * (succeeded, failed, canceled). A client that disconnects is noticed through
 * evhttp_connection_set_closecb; a client that stops reading is dropped once
 * 8 MiB are queued for it. Client records are freed when the stream has ended
 * AND no Redis call still refers to them (the pending count).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define BUCKETS 256
#define KEEPALIVE_S 15
#define MAX_QUEUED_BYTES (8u << 20)
#define BACKLOG_BATCH 500

typedef struct held_msg {
    char *sid, *event, *data;
    struct held_msg *next;
} held_msg;

typedef struct sse_client {
    td_sse_hub *hub;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    char id[TJOB_ID_LEN + 1];
    char last[48]; /* last stream id sent, "" = none */
    int loading, pending, closed, known_final;
    held_msg *held, *held_tail;
    struct sse_client *prev, *next;
} sse_client;

struct td_sse_hub {
    td_server *srv;
    sse_client *bucket[BUCKETS];
    int count;
    struct event *keepalive_ev;
};

static unsigned hash_id(const char *id) {
    unsigned h = 2166136261u;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return h % BUCKETS;
}

static int parse_sid(const char *s, unsigned long long *ms, unsigned long long *seq) {
    char *end;
    if (!s || !*s) return -1;
    *ms = strtoull(s, &end, 10);
    if (end == s || *end != '-') return -1;
    const char *q = end + 1;
    *seq = strtoull(q, &end, 10);
    if (end == q || *end) return -1;
    return 0;
}

/* a newer than b ("" is older than everything) */
static int sid_newer(const char *a, const char *b) {
    unsigned long long am, as, bm, bs;
    if (parse_sid(a, &am, &as)) return 0;
    if (!b[0] || parse_sid(b, &bm, &bs)) return 1;
    return am > bm || (am == bm && as > bs);
}

static void free_held(sse_client *c) {
    while (c->held) {
        held_msg *m = c->held;
        c->held = m->next;
        free(m->sid);
        free(m->event);
        free(m->data);
        free(m);
    }
    c->held_tail = NULL;
}

static void unlink_client(sse_client *c) {
    td_sse_hub *h = c->hub;
    if (!h) return;
    unsigned b = hash_id(c->id);
    if (c->prev) c->prev->next = c->next;
    else if (h->bucket[b] == c) h->bucket[b] = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    h->count--;
    c->hub = NULL;
}

static void maybe_free(sse_client *c) {
    if (c->closed && c->pending == 0) {
        free_held(c);
        free(c);
    }
}

/* End the stream from our side (final event, shutdown, slow client). */
static void end_stream(sse_client *c) {
    if (c->closed) return;
    c->closed = 1;
    unlink_client(c);
    free_held(c);
    if (c->evcon) evhttp_connection_set_closecb(c->evcon, NULL, NULL);
    evhttp_send_reply_end(c->req);
    c->req = NULL;
    maybe_free(c);
}

static void on_client_close(struct evhttp_connection *evcon, void *arg) {
    sse_client *c = arg;
    if (c->closed) return;
    c->closed = 1;
    unlink_client(c);
    free_held(c);
    /* evhttp has detached the request from the dying connection: ending it
     * frees it. If it is still attached, the connection frees it. */
    if (c->req && evhttp_request_get_connection(c->req) == NULL) evhttp_send_reply_end(c->req);
    c->req = NULL;
    c->evcon = NULL;
    maybe_free(c);
}

static int is_final_event(const char *event, const char *data) {
    if (strcmp(event, "state")) return 0;
    json_t *j = json_loads(data, 0, NULL);
    const char *st = json_string_value(json_object_get(j, "state"));
    int fin = st && (!strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "canceled"));
    json_decref(j);
    return fin;
}

static void write_raw(sse_client *c, struct evbuffer *b) {
    struct bufferevent *bev = c->evcon ? evhttp_connection_get_bufferevent(c->evcon) : NULL;
    if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > MAX_QUEUED_BYTES) {
        tlog_write(&c->hub->srv->log, TLOG_WARN, "events for job %s: client is not reading, closing", c->id);
        end_stream(c);
        return;
    }
    evhttp_send_reply_chunk(c->req, b);
}

/* Send one event when it is newer than the last one sent; ends the stream
 * after a final state event. */
static void send_event(sse_client *c, const char *sid, const char *event, const char *data) {
    if (c->closed || !sid_newer(sid, c->last)) return;
    snprintf(c->last, sizeof c->last, "%s", sid);
    struct evbuffer *b = evbuffer_new();
    if (!b) return;
    evbuffer_add_printf(b, "id: %s\nevent: %s\n", sid, event);
    const char *p = data;
    for (;;) { /* one data: line per line of data (JSON from Lua has none) */
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        evbuffer_add(b, "data: ", 6);
        evbuffer_add(b, p, n);
        evbuffer_add(b, "\n", 1);
        if (!nl) break;
        p = nl + 1;
    }
    evbuffer_add(b, "\n", 1);
    write_raw(c, b);
    evbuffer_free(b);
    if (!c->closed && is_final_event(event, data)) end_stream(c);
}

static void load_backlog(sse_client *c);

static void on_backlog(redisReply *rep, void *priv) {
    sse_client *c = priv;
    c->loading = 0;
    if (c->closed) {
        c->pending--;
        maybe_free(c);
        return;
    }
    /* c->pending still counts this call, so ending the stream below cannot free c */
    size_t n = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        n = rep->elements;
        for (size_t i = 0; i < rep->elements && !c->closed; i++) {
            redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !e->element[0]->str) continue;
            redisReply *f = e->element[1];
            const char *event = NULL, *data = NULL;
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
                if (!f->element[k]->str) continue;
                if (!strcmp(f->element[k]->str, "event")) event = f->element[k + 1]->str;
                if (!strcmp(f->element[k]->str, "data")) data = f->element[k + 1]->str;
            }
            if (event && data) send_event(c, e->element[0]->str, event, data);
        }
    }
    if (c->closed) goto out;
    if (n == BACKLOG_BATCH) { /* more to read; held messages wait */
        load_backlog(c);
        if (c->loading) goto out;
    }
    while (c->held && !c->closed) {
        held_msg *m = c->held;
        c->held = m->next;
        send_event(c, m->sid, m->event, m->data);
        free(m->sid);
        free(m->event);
        free(m->data);
        free(m);
    }
    if (!c->held) c->held_tail = NULL;
    /* the job was already final and its events are gone (expired/trimmed) */
    if (!c->closed && c->known_final && rep) end_stream(c);
out:
    c->pending--;
    maybe_free(c);
}

static void load_backlog(sse_client *c) {
    if (c->loading || c->closed) return;
    td_server *s = c->hub->srv;
    char start[64];
    snprintf(start, sizeof start, c->last[0] ? "(%s" : "-", c->last);
    if (td_redis_cmd(s->redis, on_backlog, c, "XRANGE %sjob:%s:events %s + COUNT %d", s->cfg->key_prefix, c->id,
                     start, BACKLOG_BATCH) == 0) {
        c->loading = 1;
        c->pending++;
    }
    /* Redis down: the stream stays open; td_sse_on_ready catches up. */
}

static void on_job_state(redisReply *rep, void *priv) {
    td_req *r = priv;
    td_server *s = r->srv;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        td_reply_redis_down(r);
        return;
    }
    if (rep->type != REDIS_REPLY_STRING) {
        td_reply_error(r, 404, "not_found", "id", "no job %s (unknown or expired)", r->id);
        return;
    }
    sse_client *c = calloc(1, sizeof *c);
    if (!c) {
        td_reply_error(r, 500, "internal", NULL, "out of memory");
        return;
    }
    const char *st = rep->str;
    c->known_final = !strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "canceled");
    snprintf(c->id, sizeof c->id, "%s", r->id);
    const char *lei = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Last-Event-ID");
    unsigned long long a, b;
    if (lei && strlen(lei) < sizeof c->last && parse_sid(lei, &a, &b) == 0) snprintf(c->last, sizeof c->last, "%s", lei);
    c->req = r->req;
    c->evcon = evhttp_request_get_connection(r->req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_add_header(h, "X-Request-Id", r->rid);
    evhttp_send_reply_start(r->req, 200, "OK");
    td_req_detach(r, 200);
    if (c->evcon) {
        evhttp_connection_set_closecb(c->evcon, on_client_close, c);
        evhttp_connection_set_timeout(c->evcon, 24 * 3600); /* idle is normal here; keepalives detect dead peers */
    }
    td_sse_hub *hub = s->sse;
    c->hub = hub;
    unsigned bk = hash_id(c->id);
    c->next = hub->bucket[bk];
    if (c->next) c->next->prev = c;
    hub->bucket[bk] = c;
    hub->count++;
    /* a comment first, so clients see the stream open at once */
    struct evbuffer *buf = evbuffer_new();
    if (buf) {
        evbuffer_add_printf(buf, ": job %s\n\n", c->id);
        evhttp_send_reply_chunk(c->req, buf);
        evbuffer_free(buf);
    }
    load_backlog(c);
    if (!c->loading && c->known_final) end_stream(c); /* Redis went away meanwhile */
}

void td_h_job_events(td_req *r) {
    td_server *s = r->srv;
    if (s->stopping) {
        td_reply_error(r, 503, "shutting_down", NULL, "the daemon is shutting down");
        return;
    }
    if (td_redis_cmd(s->redis, on_job_state, r, "HGET %sjob:%s state", s->cfg->key_prefix, r->id))
        td_reply_redis_down(r);
}

void td_sse_on_message(const char *payload, size_t len, void *arg) {
    td_sse_hub *h = arg;
    if (!h || len > (64u << 20)) return;
    /* "<stream id> <job id> <event> <json>" */
    const char *end = payload + len;
    const char *s1 = memchr(payload, ' ', len);
    if (!s1) return;
    const char *s2 = memchr(s1 + 1, ' ', (size_t)(end - s1 - 1));
    if (!s2) return;
    const char *s3 = memchr(s2 + 1, ' ', (size_t)(end - s2 - 1));
    if (!s3) return;
    char sid[48], id[TJOB_ID_LEN + 1], event[64];
    if ((size_t)(s1 - payload) >= sizeof sid || (size_t)(s2 - s1 - 1) != TJOB_ID_LEN ||
        (size_t)(s3 - s2 - 1) >= sizeof event)
        return;
    memcpy(sid, payload, (size_t)(s1 - payload));
    sid[s1 - payload] = 0;
    memcpy(id, s1 + 1, TJOB_ID_LEN);
    id[TJOB_ID_LEN] = 0;
    memcpy(event, s2 + 1, (size_t)(s3 - s2 - 1));
    event[s3 - s2 - 1] = 0;
    char *data = strndup(s3 + 1, (size_t)(end - s3 - 1));
    if (!data) return;
    sse_client *c = h->bucket[hash_id(id)];
    while (c) {
        sse_client *next = c->next; /* send_event may end and unlink c */
        if (!strcmp(c->id, id)) {
            if (c->loading) {
                held_msg *m = calloc(1, sizeof *m);
                if (m && (m->sid = strdup(sid)) && (m->event = strdup(event)) && (m->data = strdup(data))) {
                    if (c->held_tail) c->held_tail->next = m;
                    else c->held = m;
                    c->held_tail = m;
                } else if (m) {
                    free(m->sid);
                    free(m->event);
                    free(m);
                }
            } else {
                send_event(c, sid, event, data);
            }
        }
        c = next;
    }
    free(data);
}

void td_sse_on_ready(void *arg) {
    td_sse_hub *h = arg;
    if (!h) return;
    for (int b = 0; b < BUCKETS; b++)
        for (sse_client *c = h->bucket[b]; c;) {
            sse_client *next = c->next;
            load_backlog(c);
            c = next;
        }
}

static void on_keepalive(evutil_socket_t fd, short ev, void *arg) {
    td_sse_hub *h = arg;
    for (int b = 0; b < BUCKETS; b++)
        for (sse_client *c = h->bucket[b]; c;) {
            sse_client *next = c->next;
            struct evbuffer *buf = evbuffer_new();
            if (buf) {
                evbuffer_add(buf, ": keepalive\n\n", 13);
                write_raw(c, buf);
                evbuffer_free(buf);
            }
            c = next;
        }
}

td_sse_hub *td_sse_new(td_server *s) {
    td_sse_hub *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->srv = s;
    h->keepalive_ev = event_new(s->base, -1, EV_PERSIST, on_keepalive, h);
    if (!h->keepalive_ev) {
        free(h);
        return NULL;
    }
    struct timeval tv = {KEEPALIVE_S, 0};
    event_add(h->keepalive_ev, &tv);
    return h;
}

void td_sse_close_all(td_sse_hub *h) {
    if (!h) return;
    for (int b = 0; b < BUCKETS; b++)
        while (h->bucket[b]) end_stream(h->bucket[b]);
}

void td_sse_free(td_sse_hub *h) {
    if (!h) return;
    td_sse_close_all(h);
    event_free(h->keepalive_ev);
    free(h);
}

int td_sse_count(const td_sse_hub *h) { return h ? h->count : 0; }
