/* worker.h - the tessera-worker process: settings, the state its threads
 * share, and the pieces of its loop (queue.c, heartbeat.c, runner.c).
 *
 * Threads: the main thread claims and renders jobs; the heartbeat thread
 * registers the worker, renews the running job's lease, learns about cancel
 * requests and handles SIGTERM/SIGINT (sigtimedwait: no signal handlers and
 * no global state). They share one tw_shared, guarded by its mutex.
 */
#ifndef TESSERA_WORKER_H
#define TESSERA_WORKER_H

#include "job.h"
#include "log.h"
#include "redis.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

typedef struct {
    char *redis;
    char *key_prefix;
    char *name;
    char *device;
    char *models;
    char *pools;
    long long lease_ms;
    long long heartbeat_ms;
    long long retention;
    long long threads;
    long long memory_budget;
    long long png_compression;
    long long drain_timeout_s;
    long long stall_timeout_s;
    long long max_pixels;
    char *log_level;
} tw_settings;

#define TW_MAX_POOLS 16

typedef struct {
    pthread_mutex_t mu;
    int stopping;            /* SIGTERM/SIGINT seen: claim nothing new */
    int exiting;             /* main is done: the heartbeat thread deregisters and ends */
    long long stop_deadline_ms; /* monotonic ms after which the current job is released */
    int released;            /* the job was handed back (stopping and past the deadline) */
    char job[TJOB_ID_LEN + 1]; /* the running job, "" when idle */
    int tile;                /* the tile of job being rendered (sd_upscale), -1 for the job itself */
    int cancel;              /* cancel requested for the running job */
    int lost;                /* the running job is no longer ours (lease taken) */
    long long last_progress_ms; /* monotonic ms of the main thread's last sign of life */
    long long jobs_done;
} tw_shared;

typedef struct {
    tw_settings *s;
    tlog log;
    tred_url url;
    char *pool_names[TW_MAX_POOLS];
    int npools;
    tw_shared shared;
    redisContext *redis;     /* the main thread's connection */
    /* Stable Diffusion: the engine backend and the model cache, made on the
     * first SD job and kept (main thread only) */
    struct te_backend *engine;
    struct tpl_cache *models;
} tw_worker;

long long tw_now_ms(void); /* CLOCK_MONOTONIC */

/* queue.c */
typedef struct {
    char id[TJOB_ID_LEN + 1];
    char stream[256];
    char entry[64];
    int attempt;
    char type[32];
    json_t *spec;
    uint8_t *input;
    size_t input_len;
    /* sd_upscale (docs/redis.md): a tile task of job id (is_tile; input is
     * the tile's crop), or the job itself in phase "" (split) / "stitch" */
    int is_tile, tile;
    char phase[16];
} tw_claimed;

int tw_queue_connect(tw_worker *w, char *err, size_t errlen);
/* Waits up to wait_ms for a job; 1 = claimed (fill c), 0 = none, -1 = Redis error. */
int tw_queue_next(tw_worker *w, int wait_ms, tw_claimed *c, char *err, size_t errlen);
void tw_claimed_free(tw_claimed *c);
/* Report progress; sets *cancel. 0 ok, 1 lost (job no longer ours), -1 error. */
int tw_queue_progress(tw_worker *w, const tw_claimed *c, double fraction, int step, int steps, const char *text,
                      int *cancel, char *err, size_t errlen);
/* Store results then write the final state. 0 ok, 1 stale, -1 error. */
int tw_queue_finish(tw_worker *w, const tw_claimed *c, const char *state, const char *code, const char *message,
                    uint8_t **images, const size_t *lens, int nimages, const char *info_json, char *err,
                    size_t errlen);
int tw_queue_release(tw_worker *w, const tw_claimed *c, char *err, size_t errlen);
/* sd_upscale tiles: store the tile's PNG then tile_finish.lua. state
 * succeeded (png, info JSON of tile 0 or NULL), failed (code, message) or
 * canceled. 0 ok, 1 stale, -1 error. */
int tw_queue_tile_finish(tw_worker *w, const tw_claimed *c, const char *state, const char *code, const char *message,
                         const uint8_t *png, size_t len, const char *info_json, char *err, size_t errlen);
int tw_queue_tile_release(tw_worker *w, const tw_claimed *c, char *err, size_t errlen);
/* sd_upscale split: store the n tile inputs, then split.lua. 0 split, 1 stale
 * (no longer ours), 2 canceled, -1 error. */
int tw_queue_split(tw_worker *w, const tw_claimed *c, uint8_t *const *pngs, const size_t *lens, int n, char *err,
                   size_t errlen);
/* sd_upscale stitch: GET a rendered tile's PNG (malloc'ed) and, for want_info,
 * the tile record's info JSON (malloc'ed, NULL when none). 0, or -1 (err). */
int tw_queue_tile_image(tw_worker *w, const char *job, int tile, uint8_t **png, size_t *len, char **info, char *err,
                        size_t errlen);

/* heartbeat.c */
int tw_heartbeat_start(tw_worker *w, pthread_t *th, char *err, size_t errlen);

/* runner.c: runs one job. Progress callback returns nonzero to stop. */
/* TW_RUN_HANDED_OFF: the job goes on without this worker (an sd_upscale
 * job split into tiles); nothing to finish. */
typedef enum {
    TW_RUN_OK = 0,
    TW_RUN_FAILED,
    TW_RUN_CANCELED,
    TW_RUN_RELEASED,
    TW_RUN_LOST,
    TW_RUN_HANDED_OFF
} tw_run_status;

typedef struct {
    tw_worker *w;
    const tw_claimed *job;
    long long last_report_ms;
    tw_run_status stop_reason;
} tw_progress;

/* Returns TW_RUN_OK to continue, else why to stop. Reports at most ~5/s unless force. */
tw_run_status tw_progress_report(tw_progress *p, double fraction, int step, int steps, const char *text, int force);

typedef struct {
    uint8_t **images;
    size_t *lens;
    int n;
    char *info;            /* result info JSON (seeds, infotexts, model), or NULL */
    char code[48];
    char message[512];
} tw_result;

void tw_result_free(tw_result *r);
tw_run_status tw_run_job(tw_worker *w, const tw_claimed *c, tw_result *r);

/* job runners, one per type */
/* run_sd.c: txt2img, img2img, inpaint */
tw_run_status tw_run_sd(tw_progress *p, const tw_claimed *c, tw_result *r);
void tw_sd_shutdown(tw_worker *w);
/* The engine backend and model cache of the worker, made on first use. */
int tw_sd_ensure_engine(tw_worker *w, char *err, size_t errlen);
/* sd_upscale.c: the split, one tile, or the stitch of an sd_upscale job */
tw_run_status tw_run_sd_upscale(tw_progress *p, const tw_claimed *c, tw_result *r);

tw_run_status tw_run_extras(tw_progress *p, const json_t *spec, const uint8_t *input, size_t input_len,
                            int threads, int png_level, tw_result *r);

#endif
