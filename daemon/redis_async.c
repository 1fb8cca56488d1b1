/* redis_async.c - asynchronous Redis for the request path (see redis_async.h).
 *
 * Connections are hiredis async contexts attached to the daemon's event_base.
 * Their lifetime is owned by hiredis: a context is freed by hiredis after a
 * failed connect or a disconnect, and our callbacks only forget the pointer
 * and arm the reconnect timer. The watchdog is the one place that frees a
 * context on its own initiative (Redis stopped answering).
 *
 * Script calls keep their argument vector in the pending record so that a
 * NOSCRIPT answer (a restarted or flushed Redis) is retried as EVAL with the
 * same arguments, invisibly to the caller.
 */
#include "redis_async.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scripts.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCHDOG_MS 1000
#define STALL_MS 3000

struct td_redis {
    struct event_base *base;
    tred_url url;
    char *prefix;
    char *channel;
    const tlog *log;
    td_redis_sub_handlers sub_h;
    redisAsyncContext *ac, *sub;
    int ac_up, sub_up;
    long long ac_since, sub_since; /* when the connect began, ms */
    struct event *reconnect_ev, *watchdog_ev;
    int backoff_ms;
    long long errors;
    int ping_outstanding;
    long long ping_sent_ms;
    int closing;
    int was_down; /* log "reconnected" once per outage */
};

typedef struct {
    td_redis *r;
    td_redis_cb *cb;
    void *priv;
    const td_script *script; /* NULL for plain commands */
    int argc;
    const char **av;
    size_t *al;
    int retried;
} pending;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void td_script_init(td_script *s, const char *name, const char *body) {
    s->name = name;
    s->body = body;
    tscript_sha1(body, s->sha);
}

static void schedule_reconnect(td_redis *r) {
    if (r->closing) return;
    if (evtimer_pending(r->reconnect_ev, NULL)) return;
    struct timeval tv = {r->backoff_ms / 1000, (r->backoff_ms % 1000) * 1000};
    evtimer_add(r->reconnect_ev, &tv);
}

static void on_connect(const redisAsyncContext *c, int status);
static void on_disconnect(const redisAsyncContext *c, int status);
static void on_sub_reply(redisAsyncContext *c, void *reply, void *priv);

static void on_setup_reply(redisAsyncContext *c, void *reply, void *priv) {
    td_redis *r = c->data;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        r->errors++;
        tlog_write(r->log, TLOG_ERROR, "redis %s: %s", (const char *)priv, rep->str);
    }
}

static redisAsyncContext *open_ctx(td_redis *r) {
    redisAsyncContext *c = r->url.is_unix ? redisAsyncConnectUnix(r->url.host)
                                          : redisAsyncConnect(r->url.host, r->url.port);
    if (!c) return NULL;
    if (c->err) {
        if (!r->was_down)
            tlog_write(r->log, TLOG_WARN, "redis: cannot connect to %s%s: %s", r->url.is_unix ? "unix:" : "",
                       r->url.host, c->errstr);
        redisAsyncFree(c);
        return NULL;
    }
    c->data = r;
    if (redisLibeventAttach(c, r->base) != REDIS_OK) {
        redisAsyncFree(c);
        return NULL;
    }
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    if (r->url.password[0]) redisAsyncCommand(c, on_setup_reply, "AUTH", "AUTH %s", r->url.password);
    if (r->url.db) redisAsyncCommand(c, on_setup_reply, "SELECT", "SELECT %d", r->url.db);
    return c;
}

static void try_connect(td_redis *r) {
    int failed = 0;
    if (!r->ac) {
        r->ac = open_ctx(r);
        r->ac_since = now_ms();
        if (!r->ac) failed = 1;
    }
    if (!r->sub) {
        r->sub = open_ctx(r);
        r->sub_since = now_ms();
        if (!r->sub) failed = 1;
    }
    if (failed) {
        r->errors++;
        r->was_down = 1;
        r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
        schedule_reconnect(r);
    }
}

static void on_reconnect_timer(evutil_socket_t fd, short ev, void *arg) { try_connect(arg); }

static void on_connect(const redisAsyncContext *c, int status) {
    td_redis *r = c->data;
    if (status != REDIS_OK) {
        /* hiredis frees c after this callback */
        if (c == r->ac) r->ac = NULL;
        if (c == r->sub) r->sub = NULL;
        r->errors++;
        if (!r->was_down) tlog_write(r->log, TLOG_WARN, "redis: connect failed: %s", c->errstr);
        r->was_down = 1;
        r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
        schedule_reconnect(r);
        return;
    }
    if (c == r->ac) {
        r->ac_up = 1;
        r->ping_outstanding = 0;
    } else if (c == r->sub) {
        redisAsyncCommand((redisAsyncContext *)c, on_sub_reply, NULL, "SUBSCRIBE %s", r->channel);
    }
    if (r->ac_up && r->sub) {
        r->backoff_ms = BACKOFF_MIN_MS;
        if (r->was_down) tlog_write(r->log, TLOG_INFO, "redis: connected again");
        r->was_down = 0;
    }
}

static void on_disconnect(const redisAsyncContext *c, int status) {
    td_redis *r = c->data;
    if (c == r->ac) {
        r->ac = NULL;
        r->ac_up = 0;
    }
    if (c == r->sub) {
        r->sub = NULL;
        r->sub_up = 0;
    }
    if (r->closing) return;
    if (status != REDIS_OK) {
        r->errors++;
        if (!r->was_down) tlog_write(r->log, TLOG_WARN, "redis: connection lost: %s", c->errstr);
    }
    r->was_down = 1;
    schedule_reconnect(r);
}

static void on_sub_reply(redisAsyncContext *c, void *reply, void *priv) {
    td_redis *r = c->data;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) return;
    redisReply *kind = rep->element[0];
    if (kind->type != REDIS_REPLY_STRING) return;
    if (!strcmp(kind->str, "subscribe")) {
        r->sub_up = 1;
        if (r->sub_h.ready) r->sub_h.ready(r->sub_h.ctx);
    } else if (!strcmp(kind->str, "message") && rep->element[2]->type == REDIS_REPLY_STRING) {
        if (r->sub_h.message) r->sub_h.message(rep->element[2]->str, rep->element[2]->len, r->sub_h.ctx);
    }
}

/* Drop a context that stopped answering; pending callbacks get NULL. */
static void force_drop(td_redis *r, redisAsyncContext **slot, int *up) {
    redisAsyncContext *c = *slot;
    if (!c) return;
    *slot = NULL;
    *up = 0;
    r->errors++;
    r->was_down = 1;
    redisAsyncFree(c); /* on_disconnect no longer matches c: we reschedule ourselves */
    schedule_reconnect(r);
}

static void on_ping(redisAsyncContext *c, void *reply, void *priv) {
    td_redis *r = priv;
    r->ping_outstanding = 0;
}

static void on_watchdog(evutil_socket_t fd, short ev, void *arg) {
    td_redis *r = arg;
    long long now = now_ms();
    if (r->ac && !r->ac_up && now - r->ac_since > STALL_MS) {
        tlog_write(r->log, TLOG_WARN, "redis: connect timed out");
        force_drop(r, &r->ac, &r->ac_up);
    }
    if (r->sub && !r->sub_up && now - r->sub_since > STALL_MS) force_drop(r, &r->sub, &r->sub_up);
    if (r->ac_up) {
        if (r->ping_outstanding && now - r->ping_sent_ms > STALL_MS) {
            tlog_write(r->log, TLOG_WARN, "redis: no answer for %d ms, reconnecting", STALL_MS);
            r->ping_outstanding = 0;
            force_drop(r, &r->ac, &r->ac_up);
            force_drop(r, &r->sub, &r->sub_up);
        } else if (!r->ping_outstanding) {
            if (redisAsyncCommand(r->ac, on_ping, r, "PING") == REDIS_OK) {
                r->ping_outstanding = 1;
                r->ping_sent_ms = now;
            }
        }
    }
}

td_redis *td_redis_new(struct event_base *base, const tred_url *url, const char *prefix, const tlog *log,
                       const td_redis_sub_handlers *sub) {
    td_redis *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->base = base;
    r->url = *url;
    r->prefix = strdup(prefix);
    r->channel = malloc(strlen(prefix) + 8);
    if (r->channel) sprintf(r->channel, "%sevents", prefix);
    r->log = log;
    if (sub) r->sub_h = *sub;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->reconnect_ev = evtimer_new(base, on_reconnect_timer, r);
    r->watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, r);
    if (!r->prefix || !r->channel || !r->reconnect_ev || !r->watchdog_ev) {
        td_redis_free(r);
        return NULL;
    }
    struct timeval tv = {0, WATCHDOG_MS * 1000};
    evtimer_add(r->watchdog_ev, &tv);
    try_connect(r);
    return r;
}

void td_redis_free(td_redis *r) {
    if (!r) return;
    r->closing = 1;
    if (r->reconnect_ev) event_free(r->reconnect_ev);
    if (r->watchdog_ev) event_free(r->watchdog_ev);
    r->reconnect_ev = r->watchdog_ev = NULL;
    if (r->ac) {
        redisAsyncContext *c = r->ac;
        r->ac = NULL;
        r->ac_up = 0;
        redisAsyncFree(c);
    }
    if (r->sub) {
        redisAsyncContext *c = r->sub;
        r->sub = NULL;
        r->sub_up = 0;
        redisAsyncFree(c);
    }
    free(r->prefix);
    free(r->channel);
    free(r);
}

int td_redis_up(const td_redis *r) { return r && r->ac_up && r->ac; }
int td_redis_sub_up(const td_redis *r) { return r && r->sub_up && r->sub; }
long long td_redis_errors(const td_redis *r) { return r ? r->errors : 0; }

/* A pending record and its argument vectors in one allocation. */
static pending *pending_new(int argc) {
    size_t head = (sizeof(pending) + 15) & ~(size_t)15;
    pending *p = calloc(1, head + (sizeof(const char *) + sizeof(size_t)) * (size_t)argc);
    if (!p) return NULL;
    p->argc = argc;
    if (argc > 0) { /* plain format-string commands keep av NULL */
        p->av = (const char **)((char *)p + head);
        p->al = (size_t *)(p->av + argc);
    }
    return p;
}

static void pending_free(pending *p) { free(p); }

static int send_pending(pending *p);

static void on_reply(redisAsyncContext *c, void *reply, void *priv) {
    pending *p = priv;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        if (p->script && !p->retried && !strncmp(rep->str, "NOSCRIPT", 8)) {
            p->retried = 1;
            p->av[0] = "EVAL";
            p->al[0] = 4;
            p->av[1] = p->script->body;
            p->al[1] = strlen(p->script->body);
            if (send_pending(p) == 0) return;
            p->cb(NULL, p->priv);
            pending_free(p);
            return;
        }
        p->r->errors++;
        tlog_write(p->r->log, TLOG_WARN, "redis %s: %s", p->script ? p->script->name : p->av ? p->av[0] : "command",
                   rep->str);
    }
    p->cb(rep, p->priv);
    pending_free(p);
}

static int send_pending(pending *p) {
    td_redis *r = p->r;
    if (!td_redis_up(r)) return -1;
    if (redisAsyncCommandArgv(r->ac, on_reply, p, p->argc, p->av, p->al) != REDIS_OK) return -1;
    return 0;
}

int td_redis_argv(td_redis *r, td_redis_cb *cb, void *priv, int argc, const char **argv, const size_t *lens) {
    if (!td_redis_up(r)) return -1;
    pending *p = pending_new(argc);
    if (!p) return -1;
    p->r = r;
    p->cb = cb;
    p->priv = priv;
    for (int i = 0; i < argc; i++) {
        p->av[i] = argv[i];
        p->al[i] = lens ? lens[i] : strlen(argv[i]);
    }
    if (send_pending(p)) {
        pending_free(p);
        return -1;
    }
    return 0;
}

int td_redis_cmd(td_redis *r, td_redis_cb *cb, void *priv, const char *fmt, ...) {
    if (!td_redis_up(r)) return -1;
    pending *p = pending_new(0);
    if (!p) return -1;
    p->r = r;
    p->cb = cb;
    p->priv = priv;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(r->ac, on_reply, p, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        free(p);
        return -1;
    }
    return 0;
}

int td_redis_script(td_redis *r, const td_script *s, td_redis_cb *cb, void *priv, int argc, const char **argv,
                    const size_t *lens) {
    if (!td_redis_up(r)) return -1;
    pending *p = pending_new(argc + 4);
    if (!p) return -1;
    p->r = r;
    p->cb = cb;
    p->priv = priv;
    p->script = s;
    p->av[0] = "EVALSHA";
    p->al[0] = 7;
    p->av[1] = s->sha;
    p->al[1] = 40;
    p->av[2] = "0";
    p->al[2] = 1;
    p->av[3] = r->prefix;
    p->al[3] = strlen(r->prefix);
    for (int i = 0; i < argc; i++) {
        p->av[i + 4] = argv[i];
        p->al[i + 4] = lens ? lens[i] : strlen(argv[i]);
    }
    if (send_pending(p)) {
        pending_free(p);
        return -1;
    }
    return 0;
}
