/* runner.c - runs one claimed job: dispatches on its type, and gives every
 * job runner one progress call that reports to Redis (at most ~5 times a
 * second) and says whether to stop: canceled, lost (another worker took the
 * job), or released (the worker is shutting down and its drain time is up). */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tw_result_free(tw_result *r) {
    for (int i = 0; i < r->n; i++) free(r->images[i]);
    free(r->images);
    free(r->lens);
    r->images = NULL;
    r->lens = NULL;
    r->n = 0;
    free(r->info);
    r->info = NULL;
}

tw_run_status tw_progress_report(tw_progress *p, double fraction, int step, int steps, const char *text,
                                 int force) {
    tw_worker *w = p->w;
    long long now = tw_now_ms();
    pthread_mutex_lock(&w->shared.mu);
    w->shared.last_progress_ms = now;
    int cancel = w->shared.cancel, lost = w->shared.lost;
    int release = w->shared.stopping && now >= w->shared.stop_deadline_ms;
    pthread_mutex_unlock(&w->shared.mu);
    if (lost) return p->stop_reason = TW_RUN_LOST;
    if (cancel) return p->stop_reason = TW_RUN_CANCELED;
    if (release) return p->stop_reason = TW_RUN_RELEASED;
    if (!force && now - p->last_report_ms < 200) return TW_RUN_OK;
    p->last_report_ms = now;
    char err[256];
    int c = 0;
    int rc = tw_queue_progress(w, p->job, fraction, step, steps, text, &c, err, sizeof err);
    if (rc < 0) {
        /* Redis trouble is not the job's fault: carry on; the lease decides */
        tlog_write(&w->log, TLOG_WARN, "job %s: progress report failed: %s", p->job->id, err);
        return TW_RUN_OK;
    }
    if (rc == 1) return p->stop_reason = TW_RUN_LOST;
    if (c) {
        pthread_mutex_lock(&w->shared.mu);
        w->shared.cancel = 1;
        pthread_mutex_unlock(&w->shared.mu);
        return p->stop_reason = TW_RUN_CANCELED;
    }
    return TW_RUN_OK;
}

tw_run_status tw_run_job(tw_worker *w, const tw_claimed *c, tw_result *r) {
    memset(r, 0, sizeof *r);
    tw_progress p = {.w = w, .job = c, .last_report_ms = 0, .stop_reason = TW_RUN_OK};
    if (!c->spec) {
        snprintf(r->code, sizeof r->code, "bad_spec");
        snprintf(r->message, sizeof r->message, "the stored job spec is not valid JSON");
        return TW_RUN_FAILED;
    }
    /* sd_upscale reports its own progress: a tile's goes on the tile, the
     * job's counts tiles (a "starting" report would reset it at the stitch) */
    if (!strcmp(c->type, "sd_upscale")) return tw_run_sd_upscale(&p, c, r);
    tw_run_status st = tw_progress_report(&p, 0.0, 0, 0, "starting", 1);
    if (st != TW_RUN_OK) return st;
    if (!strcmp(c->type, "extras"))
        return tw_run_extras(&p, c->spec, c->input, c->input_len, (int)w->s->threads, (int)w->s->png_compression,
                             r);
    if (!strcmp(c->type, "txt2img") || !strcmp(c->type, "img2img") || !strcmp(c->type, "inpaint"))
        return tw_run_sd(&p, c, r);
    snprintf(r->code, sizeof r->code, "unsupported_type");
    snprintf(r->message, sizeof r->message, "this worker cannot run jobs of type '%s'", c->type);
    return TW_RUN_FAILED;
}
