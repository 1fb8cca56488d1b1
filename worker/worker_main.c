/* worker_main.c - tessera-worker: claims jobs from Redis and renders them.
 *
 *   tessera-worker --config FILE --redis URL --name NAME --device cpu|cuda:N --models DIR
 *
 * One process per GPU (or one on the CPU). See worker.h for the threads and
 * docs/redis.md for the queue protocol. */
#include "config.h"
#include "te_cpu.h"
#include "worker.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OPT(sec, key, type, field, def, help) {sec, key, type, offsetof(tw_settings, field), def, help}
static const tcfg_option options[] = {
    OPT("redis", "redis", TCFG_STRING, redis, "redis://127.0.0.1:6379/0",
        "Redis URL: redis://[:password@]host[:port][/db] or unix:///path.sock"),
    OPT("redis", "key_prefix", TCFG_STRING, key_prefix, "tessera:", "prefix of every Redis key"),
    OPT("worker", "name", TCFG_STRING, name, "", "worker name, unique in the farm (default: host-pid)"),
    OPT("worker", "device", TCFG_STRING, device, "cpu", "cpu or cuda:N"),
    OPT("worker", "models", TCFG_STRING, models, "models", "directory of checkpoints, VAEs, LoRAs, upscalers"),
    OPT("worker", "pools", TCFG_STRING, pools, "default", "comma-separated pools to take jobs from, in order"),
    OPT("worker", "threads", TCFG_INT, threads, "0", "CPU threads for rendering (0 = all cores)"),
    OPT("worker", "memory_budget", TCFG_BYTES, memory_budget, "0",
        "memory a job may use (RAM or VRAM), e.g. 8G; 0 = 80% of physical RAM"),
    OPT("worker", "max_pixels", TCFG_INT, max_pixels, "268435456", "largest image the worker decodes"),
    OPT("worker", "png_compression", TCFG_INT, png_compression, "6", "zlib level of result PNGs, 0-9"),
    OPT("queue", "lease_ms", TCFG_INT, lease_ms, "30000",
        "a running job is retried elsewhere when its worker has not renewed it for this long"),
    OPT("queue", "heartbeat_ms", TCFG_INT, heartbeat_ms, "5000", "how often the worker registers itself"),
    OPT("queue", "retention", TCFG_INT, retention, "86400", "seconds a finished job and its images are kept"),
    OPT("queue", "drain_timeout_s", TCFG_INT, drain_timeout_s, "30",
        "on SIGTERM, time the current job gets to finish before it is handed back"),
    OPT("queue", "stall_timeout_s", TCFG_INT, stall_timeout_s, "600",
        "a job that reports no progress for this long loses its lease"),
    OPT("log", "log_level", TCFG_STRING, log_level, "info", "debug, info, warn or error"),
};

static const tcfg_spec spec = {"tessera-worker", "renders Tessera jobs taken from Redis", options,
                               sizeof options / sizeof options[0]};

static int split_pools(tw_worker *w, char *err, size_t errlen) {
    char *save = NULL;
    for (char *t = strtok_r(w->s->pools, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (w->npools == TW_MAX_POOLS) {
            snprintf(err, errlen, "at most %d pools", TW_MAX_POOLS);
            return -1;
        }
        w->pool_names[w->npools++] = t;
    }
    if (!w->npools) {
        snprintf(err, errlen, "pools: at least one pool is needed");
        return -1;
    }
    return 0;
}

static int check_settings(tw_worker *w, char *err, size_t errlen) {
    tw_settings *s = w->s;
    if (tlog_level_from_name(s->log_level, &w->log.threshold)) {
        snprintf(err, errlen, "log_level must be debug, info, warn or error");
        return -1;
    }
    if (tred_parse_url(s->redis, &w->url, err, errlen)) return -1;
    if (strcmp(s->device, "cpu") != 0) {
        if (strncmp(s->device, "cuda:", 5) == 0) {
            snprintf(err, errlen, "device %s: this build has no CUDA backend yet; use --device cpu", s->device);
        } else {
            snprintf(err, errlen, "device must be cpu or cuda:N, not '%s'", s->device);
        }
        return -1;
    }
    if (s->lease_ms < 300 || s->heartbeat_ms < 50 || s->retention < 60 || s->png_compression < 0 ||
        s->png_compression > 9 || s->threads < 0 || s->drain_timeout_s < 0 || s->stall_timeout_s < 1) {
        snprintf(err, errlen, "out-of-range setting: lease_ms >= 300, heartbeat_ms >= 50, retention >= 60, "
                              "png_compression 0-9, threads >= 0");
        return -1;
    }
    if (!s->name[0]) {
        char host[200] = "worker";
        gethostname(host, sizeof host - 1);
        char name[256];
        snprintf(name, sizeof name, "%s-%d", host, (int)getpid());
        free(s->name);
        s->name = strdup(name);
    }
    if (s->memory_budget == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        s->memory_budget = (long long)pages * psz / 10 * 8;
    }
    return split_pools(w, err, errlen);
}

/* A tile of an sd_upscale job: its PNG and tile_finish.lua (the job itself
 * goes on: the last tile queues its stitch). */
static void finish_tile(tw_worker *w, tw_claimed *c, tw_run_status st, tw_result *r) {
    char err[512];
    const char *state = NULL, *code = "", *msg = "";
    switch (st) {
    case TW_RUN_OK: state = "succeeded"; break;
    case TW_RUN_FAILED: state = "failed"; code = r->code; msg = r->message; break;
    case TW_RUN_CANCELED: state = "canceled"; break;
    case TW_RUN_RELEASED:
        if (tw_queue_tile_release(w, c, err, sizeof err))
            tlog_write(&w->log, TLOG_WARN, "job %s tile %d: release failed (%s); its lease will expire", c->id,
                       c->tile, err);
        else
            tlog_write(&w->log, TLOG_INFO, "job %s tile %d handed back to the queue", c->id, c->tile);
        return;
    case TW_RUN_LOST:
    case TW_RUN_HANDED_OFF:
        tlog_write(&w->log, TLOG_WARN, "job %s tile %d is no longer ours (canceled, failed or taken over); dropped",
                   c->id, c->tile);
        return;
    }
    int ok = st == TW_RUN_OK && r->n == 1;
    if (st == TW_RUN_OK && !ok) {
        state = "failed";
        code = "render_failed";
        msg = "the tile rendered no image";
    }
    long long backoff = 200;
    for (int attempt = 0; attempt < 8; attempt++) {
        int rc = tw_queue_tile_finish(w, c, state, code, msg, ok ? r->images[0] : NULL, ok ? r->lens[0] : 0,
                                      ok ? r->info : NULL, err, sizeof err);
        if (rc == 0) {
            tlog_write(&w->log, TLOG_INFO, "job %s tile %d %s%s%s", c->id, c->tile, state, msg[0] ? ": " : "", msg);
            return;
        }
        if (rc == 1) {
            tlog_write(&w->log, TLOG_WARN, "job %s tile %d: finished too late (canceled or taken over); dropped",
                       c->id, c->tile);
            return;
        }
        tlog_write(&w->log, TLOG_WARN, "job %s tile %d: storing the result failed: %s (retrying)", c->id, c->tile,
                   err);
        struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        if (tw_queue_connect(w, err, sizeof err)) continue;
    }
    tlog_write(&w->log, TLOG_ERROR, "job %s tile %d: could not store its result; another worker will retry it",
               c->id, c->tile);
}

static void finish_job(tw_worker *w, tw_claimed *c, tw_run_status st, tw_result *r) {
    char err[512];
    const char *state = NULL, *code = "", *msg = "";
    if (c->is_tile) {
        finish_tile(w, c, st, r);
        return;
    }
    switch (st) {
    case TW_RUN_OK: state = "succeeded"; break;
    case TW_RUN_FAILED: state = "failed"; code = r->code; msg = r->message; break;
    case TW_RUN_CANCELED: state = "canceled"; code = "canceled"; msg = "canceled while running"; break;
    case TW_RUN_RELEASED:
        if (tw_queue_release(w, c, err, sizeof err))
            tlog_write(&w->log, TLOG_WARN, "job %s: release failed (%s); its lease will expire", c->id, err);
        else
            tlog_write(&w->log, TLOG_INFO, "job %s handed back to the queue", c->id);
        return;
    case TW_RUN_LOST:
        tlog_write(&w->log, TLOG_WARN, "job %s was taken over by another worker; result dropped", c->id);
        return;
    case TW_RUN_HANDED_OFF:
        tlog_write(&w->log, TLOG_INFO, "job %s split into tiles", c->id);
        return;
    }
    long long backoff = 200;
    for (int attempt = 0; attempt < 8; attempt++) {
        int rc = tw_queue_finish(w, c, state, code, msg, st == TW_RUN_OK ? r->images : NULL, r->lens,
                                 st == TW_RUN_OK ? r->n : 0, st == TW_RUN_OK ? r->info : NULL, err, sizeof err);
        if (rc == 0) {
            tlog_write(&w->log, TLOG_INFO, "job %s %s%s%s", c->id, state, msg[0] ? ": " : "", msg);
            return;
        }
        if (rc == 1) {
            tlog_write(&w->log, TLOG_WARN, "job %s: finished too late (taken over); result dropped", c->id);
            return;
        }
        tlog_write(&w->log, TLOG_WARN, "job %s: storing the result failed: %s (retrying)", c->id, err);
        struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        if (tw_queue_connect(w, err, sizeof err)) continue;
    }
    tlog_write(&w->log, TLOG_ERROR, "job %s: could not store its result; another worker will retry it", c->id);
}

int main(int argc, char **argv) {
    te_cpu_prepare_env(argc, argv); /* may re-exec once; see te_cpu.h */
    tw_settings s = {0};
    char err[1024];
    tcfg_result cr = tcfg_load(&spec, &s, argc, argv, NULL, NULL, err, sizeof err);
    if (cr == TCFG_HELP) return 0;
    if (cr == TCFG_ERROR) {
        fprintf(stderr, "tessera-worker: %s\n", err);
        return 2;
    }
    tw_worker w = {.s = &s, .log = {"tessera-worker", TLOG_INFO}};
    if (check_settings(&w, err, sizeof err)) {
        fprintf(stderr, "tessera-worker: %s\n", err);
        tcfg_free(&spec, &s);
        return 2;
    }
    pthread_mutex_init(&w.shared.mu, NULL);
    w.shared.tile = -1;
    /* SIGTERM/SIGINT are taken by the heartbeat thread with sigtimedwait */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    tlog_write(&w.log, TLOG_INFO, "worker %s starting: device %s, pools %s, redis %s", s.name, s.device, s.pools,
               s.redis);
    pthread_t hb;
    if (tw_heartbeat_start(&w, &hb, err, sizeof err)) {
        fprintf(stderr, "tessera-worker: %s\n", err);
        return 1;
    }
    long long backoff = 100;
    for (;;) {
        pthread_mutex_lock(&w.shared.mu);
        int stopping = w.shared.stopping;
        pthread_mutex_unlock(&w.shared.mu);
        if (stopping) break;
        tw_claimed c;
        int rc = tw_queue_next(&w, 1000, &c, err, sizeof err);
        if (rc < 0) {
            tlog_write(&w.log, TLOG_WARN, "%s (retrying in %lld ms)", err, backoff);
            if (w.redis) {
                redisFree(w.redis);
                w.redis = NULL;
            }
            struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000};
            nanosleep(&ts, NULL);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            continue;
        }
        backoff = 100;
        if (rc == 0) continue;
        if (c.is_tile)
            tlog_write(&w.log, TLOG_INFO, "job %s (%s) tile %d attempt %d started", c.id, c.type, c.tile, c.attempt);
        else
            tlog_write(&w.log, TLOG_INFO, "job %s (%s%s%s) attempt %d started", c.id, c.type, c.phase[0] ? " " : "",
                       c.phase, c.attempt);
        pthread_mutex_lock(&w.shared.mu);
        snprintf(w.shared.job, sizeof w.shared.job, "%s", c.id);
        w.shared.tile = c.is_tile ? c.tile : -1;
        w.shared.cancel = w.shared.lost = 0;
        w.shared.last_progress_ms = tw_now_ms();
        pthread_mutex_unlock(&w.shared.mu);

        tw_result r;
        tw_run_status st = tw_run_job(&w, &c, &r);
        finish_job(&w, &c, st, &r);
        tw_result_free(&r);

        pthread_mutex_lock(&w.shared.mu);
        w.shared.job[0] = 0;
        w.shared.tile = -1;
        w.shared.jobs_done++;
        pthread_mutex_unlock(&w.shared.mu);
        tw_claimed_free(&c);
    }
    pthread_mutex_lock(&w.shared.mu);
    w.shared.exiting = 1;
    pthread_mutex_unlock(&w.shared.mu);
    pthread_join(hb, NULL);
    tw_sd_shutdown(&w);
    if (w.redis) redisFree(w.redis);
    tlog_write(&w.log, TLOG_INFO, "worker %s stopped after %lld jobs", s.name, w.shared.jobs_done);
    pthread_mutex_destroy(&w.shared.mu);
    tcfg_free(&spec, &s);
    return 0;
}
