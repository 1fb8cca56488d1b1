/* run_extras.c - the "extras" job (A1111 Extras tab, single image): decode
 * the input, resize it with the chosen filter to the size the daemon
 * validated (proto/job_extras.c), centre-crop when asked, and encode a PNG.
 * The input's own "parameters" infotext is carried over, and a
 * "postprocessing" text records what was done, as A1111 does. */
#include "image_io.h"
#include "resize.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_int(const json_t *o, const char *a, const char *b) {
    return (int)json_integer_value(json_object_get(json_object_get(o, a), b));
}

static tw_run_status fail(tw_result *r, const char *code, const char *msg) {
    snprintf(r->code, sizeof r->code, "%s", code);
    snprintf(r->message, sizeof r->message, "%s", msg);
    return TW_RUN_FAILED;
}

/* PNG encoding is the long stage of a big upscale: report and check for
 * cancel between bands of rows. */
static int on_encode_rows(void *ctx, int done, int total) {
    tw_progress *p = ctx;
    return tw_progress_report(p, 0.6 + 0.4 * done / total, 2, 3, "encoding", 0) != TW_RUN_OK;
}

tw_run_status tw_run_extras(tw_progress *p, const json_t *spec, const uint8_t *input, size_t input_len,
                            int threads, int png_level, tw_result *r) {
    char err[512];
    const char *upscaler = json_string_value(json_object_get(spec, "upscaler"));
    tr_filter filter;
    if (!upscaler || tr_filter_from_name(upscaler, &filter)) return fail(r, "bad_spec", "unknown upscaler");
    int sw = get_int(spec, "scaled", "width"), sh = get_int(spec, "scaled", "height");
    int ow = get_int(spec, "output", "width"), oh = get_int(spec, "output", "height");
    if (sw < 1 || sh < 1 || ow < 1 || oh < 1 || ow > sw || oh > sh) return fail(r, "bad_spec", "bad output size");
    if (!input) return fail(r, "missing_input", "the job's input image is gone (expired?)");

    ti_image src = {0}, scaled = {0}, out = {0};
    if (ti_decode(input, input_len, (uint64_t)p->w->s->max_pixels, &src, err, sizeof err))
        return fail(r, "bad_image", err);
    tw_run_status st = tw_progress_report(p, 0.1, 1, 3, "decoded", 0);
    if (st != TW_RUN_OK) goto done;

    if (tr_resize_threads(&src, sw, sh, filter, threads, &scaled, err, sizeof err)) {
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

    char post[256];
    json_t *rs = json_object_get(spec, "resize");
    if (json_is_number(rs))
        snprintf(post, sizeof post, "Postprocess upscale by: %g, Postprocess upscaler: %s", json_number_value(rs),
                 upscaler);
    else
        snprintf(post, sizeof post, "Postprocess upscale to: %dx%d, Postprocess crop to: %dx%d, Postprocess upscaler: %s",
                 sw, sh, ow, oh, upscaler);
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
