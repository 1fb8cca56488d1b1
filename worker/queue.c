/* queue.c - the worker's side of the Redis queue (docs/redis.md): take the
 * next job (reclaimed ones whose worker died first, then new ones by pool
 * order and priority), report progress, store results and finish, or hand
 * the job back. Every state change goes through a Lua script so it is atomic
 * with respect to daemons and other workers. The tasks of sd_upscale jobs
 * (stream entries with a "tile" field) go through the tile_* scripts, and the
 * split of such a job through split.lua. */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void stream_key(const tw_worker *w, int pool, int prio, char *out, size_t n) {
    snprintf(out, n, "%squeue:%s:%d", w->s->key_prefix, w->pool_names[pool], prio);
}

static int ensure_groups(tw_worker *w, char *err, size_t errlen) {
    for (int p = 0; p < w->npools; p++)
        for (int q = 0; q < TJOB_PRIORITIES; q++) {
            char key[256];
            stream_key(w, p, q, key, sizeof key);
            redisReply *r = redisCommand(w->redis, "XGROUP CREATE %s workers 0 MKSTREAM", key);
            if (!r) {
                snprintf(err, errlen, "redis: %s", w->redis->errstr);
                return -1;
            }
            int bad = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0;
            if (bad) snprintf(err, errlen, "redis: XGROUP CREATE %s: %s", key, r->str);
            freeReplyObject(r);
            if (bad) return -1;
        }
    return 0;
}

int tw_queue_connect(tw_worker *w, char *err, size_t errlen) {
    if (w->redis) {
        redisFree(w->redis);
        w->redis = NULL;
    }
    w->redis = tred_connect(&w->url, 10000, err, errlen);
    if (!w->redis) return -1;
    if (ensure_groups(w, err, errlen)) {
        redisFree(w->redis);
        w->redis = NULL;
        return -1;
    }
    return 0;
}

void tw_claimed_free(tw_claimed *c) {
    json_decref(c->spec);
    free(c->input);
    memset(c, 0, sizeof *c);
}

/* Run the claim script for an entry (tile_claim for a tile of an sd_upscale
 * job, tile = its index or NULL); 1 = run, 0 = skipped, -1 = error. */
static int claim_entry(tw_worker *w, const char *stream, const char *entry, const char *job, const char *tile,
                       tw_claimed *c, char *err, size_t errlen) {
    char ret[32];
    snprintf(ret, sizeof ret, "%lld", w->s->retention);
    const char *argv[] = {w->s->key_prefix, job, stream, entry, w->s->name, ret};
    const char *targv[] = {w->s->key_prefix, job, tile, stream, entry, w->s->name, ret};
    redisReply *r = tile ? tred_script(w->redis, "tile_claim", 0, 7, targv, NULL, err, errlen)
                         : tred_script(w->redis, "claim", 0, 6, argv, NULL, err, errlen);
    if (!r) return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING) {
        const char *what = r->element[0]->str;
        if (!strcmp(what, "run") && r->elements >= 4) {
            memset(c, 0, sizeof *c);
            if (r->elements >= 5 && r->element[4]->type == REDIS_REPLY_STRING)
                snprintf(c->phase, sizeof c->phase, "%s", r->element[4]->str);
            snprintf(c->id, sizeof c->id, "%s", job);
            snprintf(c->stream, sizeof c->stream, "%s", stream);
            snprintf(c->entry, sizeof c->entry, "%s", entry);
            c->attempt = (int)r->element[1]->integer;
            snprintf(c->type, sizeof c->type, "%s", r->element[2]->str);
            json_error_t je;
            c->spec = json_loads(r->element[3]->str, 0, &je);
            if (tile) {
                c->is_tile = 1;
                c->tile = atoi(tile);
            }
            rc = 1;
        } else if (!strcmp(what, "failed")) {
            tlog_write(&w->log, TLOG_WARN, "job %s failed: %s", job,
                       r->elements > 1 && r->element[1]->str ? r->element[1]->str : "");
        } else {
            tlog_write(&w->log, TLOG_DEBUG, "skipped entry %s of job %s: %s", entry, job,
                       r->elements > 1 && r->element[1]->str ? r->element[1]->str : "");
        }
    }
    freeReplyObject(r);
    if (rc != 1) return rc;
    /* the input bytes, if the job has any (a tile's own crop for a tile) */
    redisReply *in = tile ? redisCommand(w->redis, "GET %sjob:%s:tile:%s:input", w->s->key_prefix, job, tile)
                          : redisCommand(w->redis, "GET %sjob:%s:input", w->s->key_prefix, job);
    if (!in) {
        snprintf(err, errlen, "redis: %s", w->redis->errstr);
        tw_claimed_free(c);
        return -1;
    }
    if (in->type == REDIS_REPLY_STRING) {
        c->input = malloc(in->len ? in->len : 1);
        if (c->input) {
            memcpy(c->input, in->str, in->len);
            c->input_len = in->len;
        }
    }
    freeReplyObject(in);
    return 1;
}

/* Pull a field (job id, tile index) out of a stream entry reply [id, [field, value, ...]]. */
static const char *entry_field(const redisReply *e, const char *name) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY) return NULL;
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->str && !strcmp(f->element[i]->str, name)) return f->element[i + 1]->str;
    return NULL;
}

/* Try one stream: reclaim = XAUTOCLAIM stale entries, else XREADGROUP new ones. */
static int try_stream(tw_worker *w, const char *key, int reclaim, tw_claimed *c, char *err, size_t errlen) {
    redisReply *r;
    if (reclaim)
        r = redisCommand(w->redis, "XAUTOCLAIM %s workers %s %lld 0-0 COUNT 1", key, w->s->name, w->s->lease_ms);
    else
        r = redisCommand(w->redis, "XREADGROUP GROUP workers %s COUNT 1 STREAMS %s >", w->s->name, key);
    if (!r) {
        snprintf(err, errlen, "redis: %s", w->redis->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        int nogroup = !strncmp(r->str, "NOGROUP", 7);
        snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        if (nogroup) return ensure_groups(w, err, errlen) ? -1 : 0;
        return -1;
    }
    const redisReply *entries = NULL;
    if (reclaim && r->type == REDIS_REPLY_ARRAY && r->elements >= 2)
        entries = r->element[1];
    else if (!reclaim && r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2)
        entries = r->element[0]->element[1];
    int rc = 0;
    if (entries && entries->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < entries->elements && rc == 0; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 1) continue;
            const char *job = entry_field(e, "job"), *tile = entry_field(e, "tile");
            const char *id = e->element[0]->str;
            if (!job) {
                /* not one of ours (or deleted): acknowledge and drop it */
                redisReply *a = redisCommand(w->redis, "XACK %s workers %s", key, id);
                if (a) freeReplyObject(a);
                continue;
            }
            if (reclaim)
                tlog_write(&w->log, TLOG_INFO, "reclaiming job %s%s%s (its worker's lease expired)", job,
                           tile ? " tile " : "", tile ? tile : "");
            rc = claim_entry(w, key, id, job, tile, c, err, errlen);
        }
    }
    freeReplyObject(r);
    return rc;
}

int tw_queue_next(tw_worker *w, int wait_ms, tw_claimed *c, char *err, size_t errlen) {
    if (!w->redis && tw_queue_connect(w, err, errlen)) return -1;
    char key[256];
    for (int pass = 0; pass < 2; pass++) {
        for (int p = 0; p < w->npools; p++)
            for (int q = 0; q < TJOB_PRIORITIES; q++) {
                stream_key(w, p, q, key, sizeof key);
                int rc = try_stream(w, key, pass == 0, c, err, errlen);
                if (rc != 0) return rc;
            }
    }
    /* nothing: wait for a wake token (pushed by submit and release) */
    if (wait_ms <= 0) return 0;
    int n = w->npools + 2;
    const char **argv = calloc((size_t)n, sizeof *argv);
    char **keys = calloc((size_t)w->npools, sizeof *keys);
    if (!argv || !keys) {
        free(argv);
        free(keys);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    argv[0] = "BLPOP";
    for (int p = 0; p < w->npools; p++) {
        keys[p] = malloc(320);
        if (keys[p]) snprintf(keys[p], 320, "%swake:%s", w->s->key_prefix, w->pool_names[p]);
        argv[p + 1] = keys[p] ? keys[p] : "";
    }
    char tmo[32];
    snprintf(tmo, sizeof tmo, "%.3f", wait_ms / 1000.0);
    argv[n - 1] = tmo;
    redisReply *r = redisCommandArgv(w->redis, n, argv, NULL);
    for (int p = 0; p < w->npools; p++) free(keys[p]);
    free(keys);
    free(argv);
    if (!r) {
        snprintf(err, errlen, "redis: %s", w->redis->errstr);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

int tw_queue_progress(tw_worker *w, const tw_claimed *c, double fraction, int step, int steps, const char *text,
                      int *cancel, char *err, size_t errlen) {
    char f[32], st[16], sts[16];
    snprintf(f, sizeof f, "%.4f", fraction);
    snprintf(st, sizeof st, "%d", step);
    snprintf(sts, sizeof sts, "%d", steps);
    char tile[16];
    snprintf(tile, sizeof tile, "%d", c->tile);
    const char *argv[] = {w->s->key_prefix, c->id, w->s->name, f, st, sts, text ? text : ""};
    const char *targv[] = {w->s->key_prefix, c->id, tile, w->s->name, f, st, sts};
    redisReply *r = c->is_tile ? tred_script(w->redis, "tile_progress", 0, 7, targv, NULL, err, errlen)
                               : tred_script(w->redis, "progress", 0, 7, argv, NULL, err, errlen);
    if (!r) return -1;
    int rc = 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && !strcmp(r->element[0]->str, "ok")) {
        *cancel = (int)r->element[1]->integer;
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

int tw_queue_finish(tw_worker *w, const tw_claimed *c, const char *state, const char *code, const char *message,
                    uint8_t **images, const size_t *lens, int nimages, const char *info_json, char *err,
                    size_t errlen) {
    /* results first, with a TTL so an attempt that dies before finishing leaves nothing behind for long */
    for (int i = 0; i < nimages; i++) {
        redisReply *r = redisCommand(w->redis, "SET %sjob:%s:image:%d:%d %b EX %lld", w->s->key_prefix, c->id,
                                     c->attempt, i, images[i], lens[i], w->s->retention * 2);
        if (!r) {
            snprintf(err, errlen, "redis: %s", w->redis->errstr);
            return -1;
        }
        int bad = r->type == REDIS_REPLY_ERROR;
        if (bad) snprintf(err, errlen, "redis: storing image %d: %s", i, r->str);
        freeReplyObject(r);
        if (bad) return -1;
    }
    char n[16], att[16], ret[32];
    snprintf(n, sizeof n, "%d", nimages);
    snprintf(att, sizeof att, "%d", c->attempt);
    snprintf(ret, sizeof ret, "%lld", w->s->retention);
    const char *argv[] = {w->s->key_prefix, c->id, w->s->name, state, code ? code : "", message ? message : "",
                          n, att, ret, info_json ? info_json : ""};
    redisReply *r = tred_script(w->redis, "finish", 0, 10, argv, NULL, err, errlen);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && !strcmp(r->element[0]->str, "ok") ? 0 : 1;
    freeReplyObject(r);
    return rc;
}

int tw_queue_release(tw_worker *w, const tw_claimed *c, char *err, size_t errlen) {
    const char *argv[] = {w->s->key_prefix, c->id, w->s->name};
    redisReply *r = tred_script(w->redis, "release", 0, 3, argv, NULL, err, errlen);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

/* ---- sd_upscale tiles ---------------------------------------------------------- */

int tw_queue_tile_finish(tw_worker *w, const tw_claimed *c, const char *state, const char *code, const char *message,
                         const uint8_t *png, size_t len, const char *info_json, char *err, size_t errlen) {
    if (png) {
        redisReply *r = redisCommand(w->redis, "SET %sjob:%s:tile:%d:out:%d %b EX %lld", w->s->key_prefix, c->id,
                                     c->tile, c->attempt, png, len, w->s->retention * 2);
        if (!r) {
            snprintf(err, errlen, "redis: %s", w->redis->errstr);
            return -1;
        }
        int bad = r->type == REDIS_REPLY_ERROR;
        if (bad) snprintf(err, errlen, "redis: storing tile %d: %s", c->tile, r->str);
        freeReplyObject(r);
        if (bad) return -1;
    }
    char tile[16], att[16], ret[32];
    snprintf(tile, sizeof tile, "%d", c->tile);
    snprintf(att, sizeof att, "%d", c->attempt);
    snprintf(ret, sizeof ret, "%lld", w->s->retention);
    const char *argv[] = {w->s->key_prefix, c->id, tile, w->s->name, att, state, code ? code : "",
                          message ? message : "", ret, info_json ? info_json : ""};
    redisReply *r = tred_script(w->redis, "tile_finish", 0, 10, argv, NULL, err, errlen);
    if (!r) return -1;
    int rc = 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING) {
        if (!strcmp(r->element[0]->str, "ok"))
            rc = 0;
        else if (!strcmp(r->element[0]->str, "missing")) {
            snprintf(err, errlen, "tile %d: the stored PNG vanished before tile_finish", c->tile);
            rc = -1;
        }
    }
    freeReplyObject(r);
    return rc;
}

int tw_queue_tile_release(tw_worker *w, const tw_claimed *c, char *err, size_t errlen) {
    char tile[16];
    snprintf(tile, sizeof tile, "%d", c->tile);
    const char *argv[] = {w->s->key_prefix, c->id, tile, w->s->name};
    redisReply *r = tred_script(w->redis, "tile_release", 0, 4, argv, NULL, err, errlen);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

/* Delete the tile inputs of this attempt (a split that did not happen). */
static void drop_split_inputs(tw_worker *w, const tw_claimed *c, int n) {
    for (int i = 0; i < n; i++) {
        redisReply *r = redisCommand(w->redis, "DEL %sjob:%s:tile:%d:in:%d", w->s->key_prefix, c->id, i, c->attempt);
        if (!r) return;
        freeReplyObject(r);
    }
}

int tw_queue_split(tw_worker *w, const tw_claimed *c, uint8_t *const *pngs, const size_t *lens, int n, char *err,
                   size_t errlen) {
    /* the inputs first, pipelined, with a TTL of an hour: only split.lua
     * makes them the job's (and takes the TTL off) */
    int sent = 0, rc = 0;
    for (int i = 0; i < n; i++, sent++)
        if (redisAppendCommand(w->redis, "SET %sjob:%s:tile:%d:in:%d %b EX 3600", w->s->key_prefix, c->id, i,
                               c->attempt, pngs[i], lens[i]) != REDIS_OK) {
            snprintf(err, errlen, "redis: %s", w->redis->errstr);
            rc = -1;
            break;
        }
    for (int i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(w->redis, (void **)&r) != REDIS_OK || !r) {
            snprintf(err, errlen, "redis: %s", w->redis->errstr);
            return -1; /* the connection is unusable; the caller reconnects */
        }
        if (r->type == REDIS_REPLY_ERROR && rc == 0) {
            snprintf(err, errlen, "redis: storing tile input %d: %s", i, r->str);
            rc = -1;
        }
        freeReplyObject(r);
    }
    if (rc) {
        drop_split_inputs(w, c, n);
        return -1;
    }
    char att[16], nt[16];
    snprintf(att, sizeof att, "%d", c->attempt);
    snprintf(nt, sizeof nt, "%d", n);
    const char *argv[] = {w->s->key_prefix, c->id, w->s->name, att, nt};
    redisReply *r = tred_script(w->redis, "split", 0, 5, argv, NULL, err, errlen);
    if (!r) return -1;
    rc = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING) {
        const char *what = r->element[0]->str;
        if (!strcmp(what, "ok"))
            rc = 0;
        else if (!strcmp(what, "stale"))
            rc = 1;
        else if (!strcmp(what, "canceled"))
            rc = 2;
        else
            snprintf(err, errlen, "split: %s %lld", what,
                     r->elements > 1 && r->element[1]->type == REDIS_REPLY_INTEGER ? r->element[1]->integer : -1LL);
    } else
        snprintf(err, errlen, "split: unexpected reply");
    freeReplyObject(r);
    if (rc) drop_split_inputs(w, c, n);
    return rc;
}

int tw_queue_tile_image(tw_worker *w, const char *job, int tile, uint8_t **png, size_t *len, char **info, char *err,
                        size_t errlen) {
    *png = NULL;
    *len = 0;
    if (info) *info = NULL;
    redisReply *r = redisCommand(w->redis, "GET %sjob:%s:tile:%d:image", w->s->key_prefix, job, tile);
    if (!r) {
        snprintf(err, errlen, "redis: %s", w->redis->errstr);
        return -1;
    }
    if (r->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "tile %d has no stored image", tile);
        freeReplyObject(r);
        return -1;
    }
    *png = malloc(r->len ? r->len : 1);
    if (*png) {
        memcpy(*png, r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    if (!*png) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!info) return 0;
    r = redisCommand(w->redis, "HGET %sjob:%s:tile:%d info", w->s->key_prefix, job, tile);
    if (!r) {
        snprintf(err, errlen, "redis: %s", w->redis->errstr);
        free(*png);
        *png = NULL;
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING && r->len) *info = strndup(r->str, r->len);
    freeReplyObject(r);
    return 0;
}
