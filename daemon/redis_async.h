/* redis_async.h - the daemon's asynchronous Redis connections (hiredis +
 * libevent, on the same event_base as the HTTP server).
 *
 * Two connections: one for commands and scripts, one subscribed to the
 * P events channel for Server-Sent Events. Both reconnect with a backoff
 * timer (100 ms doubling to 2 s) after any failure; a watchdog PING every
 * second drops both when Redis stops answering for 3 s, so a hung server
 * turns into quick 503s instead of requests that wait forever. Commands
 * issued while the connection is down fail at once (the call returns -1 and
 * the callback is never run), so the HTTP layer can answer 503 immediately.
 */
#ifndef TESSERA_DAEMON_REDIS_ASYNC_H
#define TESSERA_DAEMON_REDIS_ASYNC_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

#include "log.h"
#include "redis.h"

typedef struct td_redis td_redis;

/* reply is NULL when the connection went away before answering; an error
 * reply (REDIS_REPLY_ERROR) is passed through and already counted. The reply
 * is freed by hiredis after the callback returns. */
typedef void td_redis_cb(redisReply *reply, void *priv);

/* Subscriber events: a message payload on P events; ready after every
 * (re)subscription (so listeners can catch up on what they missed). */
typedef struct {
    void (*message)(const char *payload, size_t len, void *ctx);
    void (*ready)(void *ctx);
    void *ctx;
} td_redis_sub_handlers;

/* A Lua script run by EVALSHA, with EVAL on NOSCRIPT. */
typedef struct {
    const char *name;
    const char *body;
    char sha[41];
} td_script;

void td_script_init(td_script *s, const char *name, const char *body);

td_redis *td_redis_new(struct event_base *base, const tred_url *url, const char *prefix, const tlog *log,
                       const td_redis_sub_handlers *sub);
/* Drop both connections: pending callbacks run with a NULL reply. */
void td_redis_free(td_redis *r);

int td_redis_up(const td_redis *r);
int td_redis_sub_up(const td_redis *r);
long long td_redis_errors(const td_redis *r);

/* Returns 0 when queued (cb will run exactly once), -1 when Redis is down
 * (cb is not run). argv/lens must stay valid until cb runs (script calls may
 * resend them as EVAL); lens may be NULL for C strings. */
int td_redis_argv(td_redis *r, td_redis_cb *cb, void *priv, int argc, const char **argv, const size_t *lens);
int td_redis_cmd(td_redis *r, td_redis_cb *cb, void *priv, const char *fmt, ...);
/* Run a script: ARGV[1] is the key prefix (added here), then argv. */
int td_redis_script(td_redis *r, const td_script *s, td_redis_cb *cb, void *priv, int argc, const char **argv,
                    const size_t *lens);

#endif
