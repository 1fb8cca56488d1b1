/* run_sd.c - txt2img, img2img and inpaint jobs on the worker: the job's
 * canonical spec (proto/job_sd.c) -> the pipeline (worker/pipeline) -> PNGs
 * with the A1111 infotext, plus the result info the A1111 API answers with.
 *
 * The engine backend and the model cache live as long as the worker: the
 * first SD job makes them, later jobs naming the same checkpoint pay no load.
 * Progress goes out per sampler step (tw_progress_report rate-limits it);
 * the cancel flag is checked at every step; a live preview (A1111's cheap
 * latent approximation) is stored at job:<id>:preview every preview_every
 * steps when the job asks for it. */
#include "generate.h"
#include "image_io.h"
#include "te_cpu.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tw_run_status fail(tw_result *r, const char *code, const char *msg) {
    snprintf(r->code, sizeof r->code, "%s", code);
    snprintf(r->message, sizeof r->message, "%.*s", (int)sizeof r->message - 1, msg);
    return TW_RUN_FAILED;
}

typedef struct {
    tw_progress *p;
    int loaded;
} sd_cb;

static int on_progress(void *ctx, int done, int total) {
    sd_cb *s = ctx;
    char text[64];
    snprintf(text, sizeof text, "sampling %d/%d", done, total);
    return tw_progress_report(s->p, 0.02 + 0.93 * done / (total > 0 ? total : 1), done, total, text, 0) != TW_RUN_OK;
}

static int on_preview(void *ctx, const ti_image *img) {
    sd_cb *s = ctx;
    uint8_t *png = NULL;
    size_t len = 0;
    char err[256];
    if (ti_encode_png(img, NULL, 0, 1, &png, &len, err, sizeof err)) return 0;
    tw_worker *w = s->p->w;
    redisReply *r = redisCommand(w->redis, "SET %sjob:%s:preview %b EX %lld", w->s->key_prefix, s->p->job->id, png,
                                 len, w->s->retention);
    if (r) freeReplyObject(r);
    free(png);
    return 0;
}

int tw_sd_ensure_engine(tw_worker *w, char *err, size_t errlen) {
    if (w->engine && w->models) return 0;
    if (!w->engine) {
        te_cpu_options co = {.n_threads = (int)w->s->threads, .isa = -1};
        if (te_cpu_backend_create(&co, &w->engine, err, errlen) != TE_OK) return -1;
    }
    tpl_load_opts lo = {.be = w->engine, .vocab = NULL, .want_hash = 1, .arena_cap = 0};
    /* the cache may hold models up to half the memory budget; activations take the rest */
    if (tpl_cache_create(w->s->models, &lo, (size_t)w->s->memory_budget / 2, &w->models)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void tw_sd_shutdown(tw_worker *w) {
    tpl_cache_free(w->models);
    w->models = NULL;
    if (w->engine) te_backend_destroy(w->engine);
    w->engine = NULL;
}

tw_run_status tw_run_sd(tw_progress *p, const tw_claimed *c, tw_result *r) {
    tw_worker *w = p->w;
    char err[1024];
    tpl_params prm;
    if (tpl_params_from_spec(c->spec, &prm, err, sizeof err)) {
        tpl_params_free(&prm);
        return fail(r, "bad_spec", err);
    }
    tw_run_status st = TW_RUN_OK;
    ti_image init = {0}, mask = {0};
    tpl_result res = {0};
    if (prm.kind != TPL_TXT2IMG) {
        const uint8_t *blobs[TJOB_MAX_INPUTS];
        size_t lens[TJOB_MAX_INPUTS];
        int n = c->input ? tjob_inputs_unpack(c->input, c->input_len, blobs, lens, TJOB_MAX_INPUTS) : -1;
        if (n < 1) {
            st = fail(r, "missing_input", "the job's input image is gone or damaged");
            goto done;
        }
        if (ti_decode(blobs[0], lens[0], (uint64_t)w->s->max_pixels, &init, err, sizeof err)) {
            st = fail(r, "bad_image", err);
            goto done;
        }
        if (prm.kind == TPL_INPAINT) {
            if (n < 2) {
                st = fail(r, "missing_input", "the inpaint job has no mask");
                goto done;
            }
            if (ti_decode(blobs[1], lens[1], (uint64_t)w->s->max_pixels, &mask, err, sizeof err)) {
                st = fail(r, "bad_image", err);
                goto done;
            }
        }
    }
    if (tw_sd_ensure_engine(w, err, sizeof err)) {
        st = fail(r, "engine_failed", err);
        goto done;
    }
    st = tw_progress_report(p, 0.01, 0, tpl_total_steps(&prm), "loading model", 1);
    if (st != TW_RUN_OK) goto done;
    tpl_model *m = NULL;
    int loaded = 0;
    if (tpl_cache_get(w->models, prm.model[0] ? prm.model : NULL, prm.vae, &m, &loaded, err, sizeof err)) {
        st = fail(r, "model_unavailable", err);
        goto done;
    }
    if (loaded) tlog_write(&w->log, TLOG_INFO, "job %s: loaded model %s", c->id, m->name);
    /* what the model leaves of the budget is the activations' (mem_plan.h) */
    prm.mem_budget = (size_t)w->s->memory_budget;
    sd_cb scb = {.p = p, .loaded = loaded};
    tpl_callbacks cb = {.progress = on_progress, .preview = prm.preview_every > 0 ? on_preview : NULL, .ctx = &scb};
    int grc = tpl_generate(m, &prm, prm.kind != TPL_TXT2IMG ? &init : NULL, prm.kind == TPL_INPAINT ? &mask : NULL,
                           &cb, 0, &res, err, sizeof err);
    if (grc == 1) {
        st = p->stop_reason != TW_RUN_OK ? p->stop_reason : TW_RUN_CANCELED;
        goto done;
    }
    if (grc < 0) {
        st = fail(r, "render_failed", err);
        goto done;
    }
    st = tw_progress_report(p, 0.96, tpl_total_steps(&prm), tpl_total_steps(&prm), "encoding", 1);
    if (st != TW_RUN_OK) goto done;
    r->images = calloc((size_t)res.n, sizeof *r->images);
    r->lens = calloc((size_t)res.n, sizeof *r->lens);
    if (!r->images || !r->lens) {
        st = fail(r, "out_of_memory", "out of memory");
        goto done;
    }
    for (int i = 0; i < res.n; i++) {
        ti_png_text t = {"parameters", res.infotexts[i]};
        if (ti_encode_png(&res.images[i], &t, 1, (int)w->s->png_compression, &r->images[i], &r->lens[i], err,
                          sizeof err)) {
            st = fail(r, "encode_failed", err);
            goto done;
        }
        r->n = i + 1;
    }
    r->info = tpl_result_info_json(m, &prm, &res);
done:
    tpl_result_free(&res);
    ti_image_free(&init);
    ti_image_free(&mask);
    tpl_params_free(&prm);
    return st;
}
