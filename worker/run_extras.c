/* run_extras.c - the "extras" job (A1111 Extras tab, single image): decode
 * the input, resize it with the chosen filter to the size the daemon
 * validated (proto/job_extras.c), centre-crop when asked, and encode a PNG.
 * The input's own "parameters" infotext is carried over, and a
 * "postprocessing" text records what was done, as A1111 does.
 *
 * AI upscalers (worker/model/esrgan.h): the model file is looked up in the
 * worker's models dir (the job fails with model_unavailable and the path
 * when it is missing, or with the conversion command when only a pickle is
 * there), loaded for the job on the worker's engine backend, and run as
 * A1111's Upscaler.upscale does (tiles of 192 px with 8 px overlap, passes
 * until the scaled size is reached, then LANCZOS to it). The model sees RGB
 * only; an input's alpha channel is resized with LANCZOS and kept (A1111
 * drops it; Tessera's classic filters keep it too). */
#include "esrgan.h"
#include "image_io.h"
#include "resize.h"
#include "te_cpu.h"
#include "worker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_int(const json_t *o, const char *a, const char *b) {
    return (int)json_integer_value(json_object_get(json_object_get(o, a), b));
}

static tw_run_status fail(tw_result *r, const char *code, const char *msg) {
    snprintf(r->code, sizeof r->code, "%s", code);
    snprintf(r->message, sizeof r->message, "%.*s", (int)sizeof r->message - 1, msg);
    return TW_RUN_FAILED;
}

/* PNG encoding is the long stage of a big upscale: report and check for
 * cancel between bands of rows. */
static int on_encode_rows(void *ctx, int done, int total) {
    tw_progress *p = ctx;
    return tw_progress_report(p, 0.6 + 0.4 * done / total, 2, 3, "encoding", 0) != TW_RUN_OK;
}

typedef struct {
    tw_progress *p;
    char text[64];
} ai_cb;

static int on_tile(void *ctx, int done, int total) {
    ai_cb *c = ctx;
    snprintf(c->text, sizeof c->text, "upscaling tile %d/%d", done, total);
    return tw_progress_report(c->p, 0.1 + 0.5 * done / (total > 0 ? total : 1), 1, 3, c->text, 0) != TW_RUN_OK;
}

/* The AI path: src -> *scaled (sw x sh, src's channel count). */
static tw_run_status ai_upscale(tw_progress *p, const json_t *spec, const char *name, const ti_image *src, int sw,
                                int sh, int threads, ti_image *scaled, tw_result *r) {
    tw_worker *w = p->w;
    char err[2048], path[4200];
    if (tme_model_path(w->s->models, name, path, sizeof path, err, sizeof err)) return fail(r, "model_unavailable", err);
    if (!w->engine) { /* the same backend the SD jobs use (run_sd.c makes it when it runs first) */
        te_cpu_options co = {.n_threads = threads, .isa = -1};
        if (te_cpu_backend_create(&co, &w->engine, err, sizeof err) != TE_OK) return fail(r, "engine_failed", err);
    }
    tw_run_status st = tw_progress_report(p, 0.1, 1, 3, "loading upscaler", 1);
    if (st != TW_RUN_OK) return st;
    /* activations get half the budget, as for SD jobs (run_sd.c: the model cache may hold the other half) */
    tme_options mo = {.be = w->engine, .arena_cap = w->s->memory_budget > 0 ? (size_t)w->s->memory_budget / 2 : 0};
    tme_model *m = NULL;
    if (tme_load(path, &mo, &m, err, sizeof err)) return fail(r, "model_unavailable", err);
    const tme_info *in = tme_get_info(m);
    tlog_write(&w->log, TLOG_INFO, "job %s: upscaler %s: %s names, nf %d, %d blocks, x%d", p->job ? p->job->id : "-",
               name, tme_naming_name(in->naming), in->nf, in->nb, in->scale);
    /* A1111 Upscaler.upscale gets the resize factor (scale mode) or
     * max(W/w, H/h) (size mode); it only matters for "== 1" */
    json_t *rs = json_object_get(spec, "resize");
    double scale = json_is_number(rs) ? json_number_value(rs)
                                      : fmax((double)json_integer_value(json_object_get(spec, "width")) / src->width,
                                             (double)json_integer_value(json_object_get(spec, "height")) / src->height);
    ai_cb cb = {.p = p};
    tme_upscale_opts o = tme_upscale_defaults();
    o.progress = on_tile;
    o.ctx = &cb;
    ti_image rgb = {0}, alpha = {0};
    long long t0 = tw_now_ms();
    int rc = tme_upscale(m, src, scale, sw, sh, &o, threads, &rgb, err, sizeof err);
    tme_free(m);
    if (rc == 1) return p->stop_reason != TW_RUN_OK ? p->stop_reason : TW_RUN_CANCELED;
    if (rc) return fail(r, "upscale_failed", err);
    tlog_write(&w->log, TLOG_INFO, "job %s: upscaled %dx%d -> %dx%d with %s in %.2f s", p->job ? p->job->id : "-",
               src->width, src->height, sw, sh, name, (tw_now_ms() - t0) / 1000.0);
    if (src->channels == 3) {
        *scaled = rgb;
        return TW_RUN_OK;
    }
    /* keep the alpha channel: LANCZOS-resized (premultiplied RGBA resize leaves alpha itself untouched) */
    if (tr_resize_threads(src, sw, sh, TR_LANCZOS, threads, &alpha, err, sizeof err) ||
        ti_image_alloc(scaled, sw, sh, 4, err, sizeof err)) {
        ti_image_free(&rgb);
        ti_image_free(&alpha);
        return fail(r, "resize_failed", err);
    }
    for (size_t i = 0; i < (size_t)sw * sh; i++) {
        memcpy(scaled->pixels + i * 4, rgb.pixels + i * 3, 3);
        scaled->pixels[i * 4 + 3] = alpha.pixels[i * 4 + 3];
    }
    ti_image_free(&rgb);
    ti_image_free(&alpha);
    return TW_RUN_OK;
}

tw_run_status tw_run_extras(tw_progress *p, const json_t *spec, const uint8_t *input, size_t input_len,
                            int threads, int png_level, tw_result *r) {
    char err[512];
    const char *upscaler = json_string_value(json_object_get(spec, "upscaler"));
    tr_filter filter = TR_LANCZOS;
    int ai = upscaler && tr_filter_from_name(upscaler, &filter) && tme_name_parse(upscaler, NULL, 0);
    if (!upscaler || (!ai && tr_filter_from_name(upscaler, &filter))) return fail(r, "bad_spec", "unknown upscaler");
    int sw = get_int(spec, "scaled", "width"), sh = get_int(spec, "scaled", "height");
    int ow = get_int(spec, "output", "width"), oh = get_int(spec, "output", "height");
    if (sw < 1 || sh < 1 || ow < 1 || oh < 1 || ow > sw || oh > sh) return fail(r, "bad_spec", "bad output size");
    if (!input) return fail(r, "missing_input", "the job's input image is gone (expired?)");

    ti_image src = {0}, scaled = {0}, out = {0};
    if (ti_decode(input, input_len, (uint64_t)p->w->s->max_pixels, &src, err, sizeof err))
        return fail(r, "bad_image", err);
    tw_run_status st = tw_progress_report(p, 0.1, 1, 3, "decoded", 0);
    if (st != TW_RUN_OK) goto done;

    if (ai) {
        st = ai_upscale(p, spec, upscaler, &src, sw, sh, threads, &scaled, r);
        if (st != TW_RUN_OK) goto done;
    } else if (tr_resize_threads(&src, sw, sh, filter, threads, &scaled, err, sizeof err)) {
        st = fail(r, "resize_failed", err);
        goto done;
    }
    st = tw_progress_report(p, 0.6, 2, 3, "resized", 0);
    if (st != TW_RUN_OK) goto done;

    const ti_image *final = &scaled;
    if (ow != sw || oh != sh) {
        /* A1111 pastes the image centred on the target canvas */
        int x0 = sw / 2 - ow / 2, y0 = sh / 2 - oh / 2;
        if (ti_image_alloc(&out, ow, oh, scaled.channels, err, sizeof err)) {
            st = fail(r, "out_of_memory", err);
            goto done;
        }
        size_t row = (size_t)ow * (size_t)scaled.channels;
        for (int y = 0; y < oh; y++)
            memcpy(out.pixels + (size_t)y * row,
                   scaled.pixels + ((size_t)(y + y0) * (size_t)sw + (size_t)x0) * (size_t)scaled.channels, row);
        final = &out;
    }

    char post[400];
    json_t *rs = json_object_get(spec, "resize");
    const char *shown = ai ? tme_display_name(upscaler) : upscaler; /* A1111 shows a model by its file stem */
    if (json_is_number(rs))
        snprintf(post, sizeof post, "Postprocess upscale by: %g, Postprocess upscaler: %s", json_number_value(rs),
                 shown);
    else
        snprintf(post, sizeof post, "Postprocess upscale to: %dx%d, Postprocess crop to: %dx%d, Postprocess upscaler: %s",
                 sw, sh, ow, oh, shown);
    ti_png_text texts[2];
    int ntexts = 0;
    char *params = NULL;
    if (ti_detect(input, input_len) == TI_FMT_PNG && ti_png_read_text(input, input_len, "parameters", &params) == 1 &&
        params)
        texts[ntexts++] = (ti_png_text){"parameters", params};
    texts[ntexts++] = (ti_png_text){"postprocessing", post};

    uint8_t *png = NULL;
    size_t png_len = 0;
    if (ti_encode_png_progress(final, texts, ntexts, png_level, on_encode_rows, p, &png, &png_len, err,
                               sizeof err)) {
        free(params);
        st = p->stop_reason != TW_RUN_OK ? p->stop_reason : fail(r, "encode_failed", err);
        goto done;
    }
    free(params);
    r->images = malloc(sizeof *r->images);
    r->lens = malloc(sizeof *r->lens);
    if (!r->images || !r->lens) {
        free(png);
        st = fail(r, "out_of_memory", "out of memory");
        goto done;
    }
    r->images[0] = png;
    r->lens[0] = png_len;
    r->n = 1;
    st = tw_progress_report(p, 1.0, 3, 3, "encoded", 1);
    if (st != TW_RUN_OK) tw_result_free(r);
done:
    ti_image_free(&src);
    ti_image_free(&scaled);
    ti_image_free(&out);
    return st;
}
