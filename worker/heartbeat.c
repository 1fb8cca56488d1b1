/* heartbeat.c - the worker's second thread. Every tick it
 *   - registers the worker (P worker:<name> with a TTL, P workers zset), so
 *     GET /v1/workers shows who is alive and what they run;
 *   - renews the running job's lease (renew.lua; tile_renew.lua for a tile of
 *     an sd_upscale job), unless the main thread has
 *     shown no sign of life for stall_timeout_s: a stalled worker lets its
 *     lease lapse so another worker retries the job;
 *   - learns whether the running job was canceled or taken away;
 *   - waits for SIGTERM/SIGINT with sigtimedwait (the signals are blocked in
 *     every thread), so shutdown needs no signal handler and no global state.
 * It has its own Redis connection and reconnects with backoff. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long long tw_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(tw_worker *w, int sig) {
    pthread_mutex_lock(&w->shared.mu);
    long long now = tw_now_ms();
    if (!w->shared.stopping) {
        w->shared.stopping = 1;
        w->shared.stop_deadline_ms = now + w->s->drain_timeout_s * 1000;
        tlog_write(&w->log, TLOG_INFO, "%s: finishing the current job (up to %llds), then exiting",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", w->s->drain_timeout_s);
    } else {
        w->shared.stop_deadline_ms = now; /* a second signal: hand the job back now */
        tlog_write(&w->log, TLOG_INFO, "second signal: releasing the current job now");
    }
    pthread_mutex_unlock(&w->shared.mu);
}

static int beat(tw_worker *w, redisContext *c, int exiting) {
    tw_shared snap;
    pthread_mutex_lock(&w->shared.mu);
    snap = w->shared;
    pthread_mutex_unlock(&w->shared.mu);
    const char *P = w->s->key_prefix;
    redisReply *r;
    if (exiting) {
        r = redisCommand(c, "DEL %sworker:%s", P, w->s->name);
        if (r) freeReplyObject(r);
        r = redisCommand(c, "ZREM %sworkers %s", P, w->s->name);
        if (!r) return -1;
        freeReplyObject(r);
        return 0;
    }
    long long now = tw_now_ms();
    const char *state = snap.job[0] ? "running" : (snap.stopping ? "draining" : "idle");
    char budget[32], threads[32], done[32], ttl[32], tile[16] = "";
    if (snap.job[0] && snap.tile >= 0) snprintf(tile, sizeof tile, "%d", snap.tile);
    snprintf(budget, sizeof budget, "%lld", w->s->memory_budget);
    snprintf(threads, sizeof threads, "%lld", w->s->threads);
    snprintf(done, sizeof done, "%lld", snap.jobs_done);
    snprintf(ttl, sizeof ttl, "%lld", w->s->heartbeat_ms * 3);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    r = redisCommand(c, "HSET %sworker:%s name %s device %s pools %s memory_budget %s threads %s models %s "
                        "host %s pid %d state %s job %s tile %s jobs_done %s",
                     P, w->s->name, w->s->name, w->s->device, w->s->pools, budget, threads, w->s->models, host,
                     (int)getpid(), state, snap.job, tile, done);
    if (!r) return -1;
    freeReplyObject(r);
    r = redisCommand(c, "PEXPIRE %sworker:%s %s", P, w->s->name, ttl);
    if (!r) return -1;
    freeReplyObject(r);
    long long tms = tred_time_ms(c);
    r = redisCommand(c, "ZADD %sworkers %lld %s", P, tms, w->s->name);
    if (!r) return -1;
    freeReplyObject(r);

    if (snap.job[0]) {
        if (now - snap.last_progress_ms > w->s->stall_timeout_s * 1000) {
            tlog_write(&w->log, TLOG_WARN, "job %s: no progress for %llds; letting its lease lapse", snap.job,
                       (now - snap.last_progress_ms) / 1000);
            return 0;
        }
        char err[256];
        const char *argv[] = {P, snap.job, w->s->name};
        const char *targv[] = {P, snap.job, tile, w->s->name};
        r = tile[0] ? tred_script(c, "tile_renew", 0, 4, targv, NULL, err, sizeof err)
                    : tred_script(c, "renew", 0, 3, argv, NULL, err, sizeof err);
        if (!r) {
            tlog_write(&w->log, TLOG_WARN, "renewing lease of job %s: %s", snap.job, err);
            return c->err ? -1 : 0;
        }
        pthread_mutex_lock(&w->shared.mu);
        if (!strcmp(w->shared.job, snap.job) && w->shared.tile == snap.tile) {
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && !strcmp(r->element[0]->str, "ok")) {
                if (r->element[1]->integer) w->shared.cancel = 1;
            } else {
                w->shared.lost = 1;
            }
        }
        pthread_mutex_unlock(&w->shared.mu);
        freeReplyObject(r);
    }
    return 0;
}

static void *heartbeat_main(void *arg) {
    tw_worker *w = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    redisContext *c = NULL;
    long long interval = w->s->heartbeat_ms;
    if (interval > w->s->lease_ms / 3) interval = w->s->lease_ms / 3;
    if (interval < 50) interval = 50;
    long long next = 0, backoff = 100;
    for (;;) {
        pthread_mutex_lock(&w->shared.mu);
        int exiting = w->shared.exiting;
        pthread_mutex_unlock(&w->shared.mu);
        long long now = tw_now_ms();
        if (now >= next || exiting) {
            if (!c) {
                char err[256];
                c = tred_connect(&w->url, 5000, err, sizeof err);
                if (!c) {
                    tlog_write(&w->log, TLOG_WARN, "heartbeat: %s (retrying)", err);
                    next = now + backoff;
                    backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                }
            }
            if (c) {
                if (beat(w, c, exiting)) {
                    tlog_write(&w->log, TLOG_WARN, "heartbeat: redis: %s (reconnecting)", c->errstr);
                    redisFree(c);
                    c = NULL;
                    next = now + backoff;
                } else {
                    backoff = 100;
                    next = now + interval;
                }
            }
            if (exiting) break;
        }
        long long wait = next - tw_now_ms();
        if (wait > 100) wait = 100;
        if (wait < 1) wait = 1;
        struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) on_signal(w, sig);
    }
    if (c) redisFree(c);
    return NULL;
}

int tw_heartbeat_start(tw_worker *w, pthread_t *th, char *err, size_t errlen) {
    int rc = pthread_create(th, NULL, heartbeat_main, w);
    if (rc) {
        snprintf(err, errlen, "cannot start the heartbeat thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}
