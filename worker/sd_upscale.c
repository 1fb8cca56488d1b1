/* sd_upscale.c - the sd_upscale job (sd_upscale.h): the split, one tile and
 * the stitch as farm tasks (tw_run_sd_upscale; the Redis side is queue.c
 * and proto/lua/split.lua, tile_*.lua, docs/redis.md), and the whole job in
 * one process for `tessera render` (tw_sd_upscale_local). Both share the
 * pieces below, so the farm and the local run give the same pixels. */
#include "sd_upscale.h"

#include "generate.h"
#include "grid.h"
#include "image_io.h"
#include "infotext.h"
#include "job.h"
#include "te_cpu.h"
#include "upscale.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* PNG level of the intermediate tiles (inputs and rendered): lossless at any
 * level, so the fastest one */
#define TILE_PNG_LEVEL 1

/* ---- infotext ---------------------------------------------------------------------- */

/* The keys of A1111 1.10 create_infotext's generation_params literal, which
 * come before **p.extra_generation_params (where the script's entries go). */
static const char *const fixed_keys[] = {"Steps", "Sampler", "Schedule type", "CFG scale", "Image CFG scale", "Seed",
                                         "Face restoration", "Size", "Model hash", "Model", "FP8 weight",
                                         "Cache FP16 weight for LoRA", "VAE hash", "VAE", "Variation seed",
                                         "Variation seed strength", "Seed resize from", "Denoising strength",
                                         "Conditional mask weight", "Clip skip", "ENSD", "Token merging ratio",
                                         "Token merging ratio hr", "Init image hash", "RNG", "Tiling", NULL};

static int fixed_key(const char *entry, size_t n) {
    size_t k = 0;
    while (k + 1 < n && !(entry[k] == ':' && entry[k + 1] == ' ')) k++;
    if (k + 1 >= n) k = n; /* a bare key */
    for (int i = 0; fixed_keys[i]; i++)
        if (strlen(fixed_keys[i]) == k && !memcmp(entry, fixed_keys[i], k)) return 1;
    return 0;
}

char *tw_sd_upscale_infotext(const char *infotext, int overlap, const char *upscaler) {
    if (!infotext) infotext = "";
    char *q = tinf_quote(upscaler ? upscaler : "None");
    if (!q) return NULL;
    char add[600];
    snprintf(add, sizeof add, "SD upscale overlap: %d, SD upscale upscaler: %.500s", overlap, q);
    free(q);
    const char *last = strrchr(infotext, '\n');
    last = last ? last + 1 : infotext;
    /* entries of the last line are ", "-separated outside JSON-quoted values */
    const char *at = NULL, *e = last;
    int inq = 0;
    for (const char *c = last;; c++) {
        if (*c == 0 || (!inq && c[0] == ',' && c[1] == ' ')) {
            if (!fixed_key(e, (size_t)(c - e))) {
                at = e;
                break;
            }
            if (*c == 0) break;
            e = c + 2;
            c++;
            continue;
        }
        if (inq && *c == '\\' && c[1]) {
            c++;
            continue;
        }
        if (*c == '"') inq = !inq;
    }
    size_t n = strlen(infotext) + strlen(add) + 4;
    char *out = malloc(n);
    if (!out) return NULL;
    if (!at) /* every entry is a fixed one: append */
        snprintf(out, n, "%s%s%s", infotext, *last ? ", " : "", add);
    else
        snprintf(out, n, "%.*s%s, %s", (int)(at - infotext), infotext, add, at);
    return out;
}

/* ---- shared steps ------------------------------------------------------------------ */

static int spec_int(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

/* The grid the validation stored, for an image of the given size (-1: the
 * stored size). */
static int spec_grid(const json_t *spec, int image_w, int image_h, tgrid *g, char *err, size_t errlen) {
    const json_t *gr = json_object_get(spec, "grid");
    if (!json_is_object(gr)) {
        snprintf(err, errlen, "the spec has no grid");
        return -1;
    }
    int sw = spec_int(gr, "image_width"), sh = spec_int(gr, "image_height");
    if (image_w < 0) image_w = sw;
    if (image_h < 0) image_h = sh;
    if (image_w != sw || image_h != sh) {
        snprintf(err, errlen, "the upscaled image is %dx%d but the job was validated for %dx%d", image_w, image_h, sw,
                 sh);
        return -1;
    }
    if (tgrid_make(image_w, image_h, spec_int(gr, "tile_width"), spec_int(gr, "tile_height"), spec_int(gr, "overlap"),
                   g, err, errlen))
        return -1;
    if (g->cols != spec_int(gr, "cols") || g->rows != spec_int(gr, "rows")) {
        snprintf(err, errlen, "the grid is %dx%d tiles, the spec says %dx%d", g->cols, g->rows, spec_int(gr, "cols"),
                 spec_int(gr, "rows"));
        return -1;
    }
    return 0;
}

/* Input blob -> decoded, flattened, upscaled image and its grid. */
static int upscaled_image(const json_t *spec, const uint8_t *input, size_t input_len, const char *models,
                          uint64_t max_pixels, ti_image *out, tgrid *g, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const uint8_t *blobs[TJOB_MAX_INPUTS];
    size_t lens[TJOB_MAX_INPUTS];
    int n = input ? tjob_inputs_unpack(input, input_len, blobs, lens, TJOB_MAX_INPUTS) : -1;
    if (n < 1) {
        snprintf(err, errlen, "the job's input image is gone or damaged");
        return -1;
    }
    ti_image src = {0}, flat = {0};
    int rc = -1;
    if (ti_decode(blobs[0], lens[0], max_pixels, &src, err, errlen) || tpg_flatten(&src, &flat, err, errlen)) goto done;
    const json_t *sf = json_object_get(spec, "scale_factor");
    const char *up = json_string_value(json_object_get(spec, "upscaler"));
    if (tw_upscale_image(models, up ? up : "None", &flat, json_is_number(sf) ? json_number_value(sf) : 2.0, out, err,
                         errlen))
        goto done;
    if (spec_grid(spec, out->width, out->height, g, err, errlen)) goto done;
    rc = 0;
done:
    ti_image_free(&src);
    ti_image_free(&flat);
    if (rc) ti_image_free(out);
    return rc;
}

/* Tile index's parameters: the spec as an img2img of the tile, seed + index. */
static int tile_params(const json_t *spec, int index, tpl_params *prm, char *err, size_t errlen) {
    memset(prm, 0, sizeof *prm);
    json_t *ts = json_deep_copy(spec);
    if (!ts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object_set_new(ts, "type", json_string("img2img"));
    json_int_t seed = json_integer_value(json_object_get(spec, "seed"));
    json_object_set_new(ts, "seed", json_integer(seed + index));
    json_object_set_new(ts, "batch_size", json_integer(1));
    json_object_set_new(ts, "n_iter", json_integer(1));
    json_object_set_new(ts, "resize_mode", json_integer(0));
    json_object_del(ts, "tiled_diffusion");
    json_object_del(ts, "hires");
    int rc = tpl_params_from_spec(ts, prm, err, errlen);
    json_decref(ts);
    return rc;
}

/* Render tile index of crop: 0, 1 stopped by cb, -1 error. out gets the
 * image; infotext (with the SD upscale entries) and, when info_json is not
 * NULL, the result info JSON of the tile (its infotexts[0] replaced). */
static int render_tile(tpl_model *m, const json_t *spec, int index, const ti_image *crop, size_t mem_budget,
                       const tpl_callbacks *cb, ti_image *out, char **infotext, char **info_json, char *err,
                       size_t errlen) {
    memset(out, 0, sizeof *out);
    *infotext = NULL;
    if (info_json) *info_json = NULL;
    tpl_params prm;
    tpl_result res = {0};
    if (tile_params(spec, index, &prm, err, errlen)) {
        tpl_params_free(&prm);
        return -1;
    }
    if (crop->width != prm.width || crop->height != prm.height) {
        snprintf(err, errlen, "tile %d is %dx%d, not the job's %dx%d", index, crop->width, crop->height, prm.width,
                 prm.height);
        tpl_params_free(&prm);
        return -1;
    }
    prm.mem_budget = mem_budget;
    int rc = tpl_generate(m, &prm, crop, NULL, cb, 0, &res, err, errlen);
    if (rc == 0 && res.n < 1) {
        snprintf(err, errlen, "tile %d: no image", index);
        rc = -1;
    }
    if (rc == 0) {
        const json_t *ov = json_object_get(spec, "overlap");
        *infotext = tw_sd_upscale_infotext(res.infotexts[0], (int)json_integer_value(ov),
                                           json_string_value(json_object_get(spec, "upscaler")));
        if (!*infotext) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0 && info_json) {
        char *s = tpl_result_info_json(m, &prm, &res);
        json_t *o = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        if (o) {
            json_object_set_new(o, "infotexts", json_pack("[s]", *infotext));
            *info_json = json_dumps(o, JSON_COMPACT);
            json_decref(o);
        }
        if (!*info_json) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0) {
        *out = res.images[0]; /* moved out of the result */
        memset(&res.images[0], 0, sizeof res.images[0]);
    } else {
        free(*infotext);
        *infotext = NULL;
    }
    tpl_result_free(&res);
    tpl_params_free(&prm);
    return rc;
}

/* The job's result info: tile 0's, plus what the upscale did. */
static char *final_info(const char *tile0_info, const json_t *spec, const tgrid *g) {
    json_t *o = tile0_info ? json_loads(tile0_info, 0, NULL) : NULL;
    if (!o) o = json_object();
    json_object_set_new(
        o, "sd_upscale",
        json_pack("{s:O, s:O, s:i, s:i, s:i, s:i, s:i, s:i}", "upscaler", json_object_get(spec, "upscaler"),
                  "scale_factor", json_object_get(spec, "scale_factor"), "overlap", g->overlap, "image_width",
                  g->image_w, "image_height", g->image_h, "cols", g->cols, "rows", g->rows, "tiles", tgrid_count(g)));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* infotexts[0] of an info JSON (malloc'ed), or NULL */
static char *info_infotext(const char *info) {
    json_t *o = info ? json_loads(info, 0, NULL) : NULL;
    const char *s = json_string_value(json_array_get(json_object_get(o, "infotexts"), 0));
    char *r = s ? strdup(s) : NULL;
    json_decref(o);
    return r;
}

/* ---- the farm ------------------------------------------------------------------------ */

static tw_run_status fail(tw_result *r, const char *code, const char *msg) {
    snprintf(r->code, sizeof r->code, "%s", code);
    snprintf(r->message, sizeof r->message, "%.*s", (int)sizeof r->message - 1, msg);
    return TW_RUN_FAILED;
}

static tw_run_status run_split(tw_progress *p, const tw_claimed *c, tw_result *r) {
    tw_worker *w = p->w;
    char err[1024];
    tw_run_status st = tw_progress_report(p, 0.0, 0, 0, "upscaling", 1);
    if (st != TW_RUN_OK) return st;
    ti_image up = {0}, tile = {0};
    tgrid g;
    uint8_t **pngs = NULL;
    size_t *lens = NULL;
    int n = 0;
    long long t0 = tw_now_ms();
    if (upscaled_image(c->spec, c->input, c->input_len, w->s->models, (uint64_t)w->s->max_pixels, &up, &g, err,
                       sizeof err)) {
        st = fail(r, strstr(err, "not available") ? "model_unavailable" : "bad_image", err);
        goto done;
    }
    n = tgrid_count(&g);
    pngs = calloc((size_t)n, sizeof *pngs);
    lens = calloc((size_t)n, sizeof *lens);
    if (!pngs || !lens) {
        st = fail(r, "out_of_memory", "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if ((st = tw_progress_report(p, 0.0, 0, n, "splitting", 0)) != TW_RUN_OK) goto done;
        if (tpg_crop_tile(&up, &g, i, &tile, err, sizeof err) ||
            ti_encode_png(&tile, NULL, 0, TILE_PNG_LEVEL, &pngs[i], &lens[i], err, sizeof err)) {
            st = fail(r, "split_failed", err);
            goto done;
        }
        ti_image_free(&tile);
    }
    ti_image_free(&up);
    /* a Redis error (not a refusal) is retried on a fresh connection: the
     * inputs are keyed by attempt, and a split that did commit before its
     * reply was lost answers "stale" the second time, which also ends this
     * worker's part (nothing to finish either way) */
    int rc = -1;
    for (int tries = 0; tries < 3 && rc < 0; tries++) {
        if (tries) {
            tlog_write(&w->log, TLOG_WARN, "job %s: split: %s (retrying)", c->id, err);
            struct timespec ts = {0, 300000000L * tries};
            nanosleep(&ts, NULL);
            if (tw_queue_connect(w, err, sizeof err)) continue;
        }
        rc = tw_queue_split(w, c, pngs, lens, n, err, sizeof err);
    }
    if (rc == 0) {
        tlog_write(&w->log, TLOG_INFO, "job %s: upscaled to %dx%d and split into %d tiles (%dx%d) in %.2f s", c->id,
                   g.image_w, g.image_h, n, g.cols, g.rows, (tw_now_ms() - t0) / 1000.0);
        st = TW_RUN_HANDED_OFF;
    } else if (rc == 1)
        st = TW_RUN_LOST;
    else if (rc == 2)
        st = TW_RUN_CANCELED;
    else
        st = fail(r, "split_failed", err);
done:
    for (int i = 0; pngs && i < n; i++) free(pngs[i]);
    free(pngs);
    free(lens);
    ti_image_free(&up);
    ti_image_free(&tile);
    return st;
}

typedef struct {
    tw_progress *p;
    int index;
    char text[64];
} tile_cb;

static int on_tile_progress(void *ctx, int done, int total) {
    tile_cb *t = ctx;
    snprintf(t->text, sizeof t->text, "tile %d: sampling %d/%d", t->index, done, total);
    return tw_progress_report(t->p, (double)done / (total > 0 ? total : 1), done, total, t->text, 0) != TW_RUN_OK;
}

static tw_run_status run_tile(tw_progress *p, const tw_claimed *c, tw_result *r) {
    tw_worker *w = p->w;
    char err[1024];
    ti_image crop = {0}, out = {0};
    char *infotext = NULL, *info = NULL;
    tw_run_status st = TW_RUN_OK;
    tpl_params prm;
    memset(&prm, 0, sizeof prm);
    if (!c->input || ti_decode(c->input, c->input_len, (uint64_t)w->s->max_pixels, &crop, err, sizeof err)) {
        st = fail(r, "missing_input", c->input ? err : "the tile's input is gone");
        goto done;
    }
    if (tw_sd_ensure_engine(w, err, sizeof err)) {
        st = fail(r, "engine_failed", err);
        goto done;
    }
    if (tile_params(c->spec, c->tile, &prm, err, sizeof err)) {
        st = fail(r, "bad_spec", err);
        goto done;
    }
    st = tw_progress_report(p, 0.0, 0, tpl_total_steps(&prm), "loading model", 1);
    if (st != TW_RUN_OK) goto done;
    tpl_model *m = NULL;
    int loaded = 0;
    if (tpl_cache_get(w->models, prm.model[0] ? prm.model : NULL, prm.vae, &m, &loaded, err, sizeof err)) {
        st = fail(r, "model_unavailable", err);
        goto done;
    }
    if (loaded) tlog_write(&w->log, TLOG_INFO, "job %s: loaded model %s", c->id, m->name);
    tile_cb tcb = {.p = p, .index = c->tile};
    tpl_callbacks cb = {.progress = on_tile_progress, .preview = NULL, .ctx = &tcb};
    int grc = render_tile(m, c->spec, c->tile, &crop, (size_t)w->s->memory_budget, &cb, &out, &infotext,
                          c->tile == 0 ? &info : NULL, err, sizeof err);
    if (grc == 1) {
        st = p->stop_reason != TW_RUN_OK ? p->stop_reason : TW_RUN_CANCELED;
        goto done;
    }
    if (grc < 0) {
        st = fail(r, "render_failed", err);
        goto done;
    }
    r->images = calloc(1, sizeof *r->images);
    r->lens = calloc(1, sizeof *r->lens);
    if (!r->images || !r->lens) {
        st = fail(r, "out_of_memory", "out of memory");
        goto done;
    }
    ti_png_text t = {"parameters", infotext};
    if (ti_encode_png(&out, &t, 1, TILE_PNG_LEVEL, &r->images[0], &r->lens[0], err, sizeof err)) {
        st = fail(r, "encode_failed", err);
        goto done;
    }
    r->n = 1;
    r->info = info;
    info = NULL;
done:
    tpl_params_free(&prm);
    ti_image_free(&crop);
    ti_image_free(&out);
    free(infotext);
    free(info);
    return st;
}

typedef struct {
    tw_progress *p;
    const tw_claimed *c;
    int n;
    char *info; /* tile 0's */
    tw_run_status stop;
    char text[48];
} stitch_ctx;

static int stitch_tile(void *ctx, int i, ti_image *tile, char *err, size_t errlen) {
    stitch_ctx *s = ctx;
    tw_worker *w = s->p->w;
    if ((s->stop = tw_progress_report(s->p, 1.0, s->n, s->n, s->text, 0)) != TW_RUN_OK) {
        snprintf(err, errlen, "stopped");
        return -1;
    }
    uint8_t *png = NULL;
    size_t len = 0;
    if (tw_queue_tile_image(w, s->c->id, i, &png, &len, i == 0 ? &s->info : NULL, err, errlen)) return -1;
    int rc = ti_decode(png, len, (uint64_t)w->s->max_pixels, tile, err, errlen);
    free(png);
    return rc;
}

static tw_run_status run_stitch(tw_progress *p, const tw_claimed *c, tw_result *r) {
    tw_worker *w = p->w;
    char err[1024];
    tgrid g;
    if (spec_grid(c->spec, -1, -1, &g, err, sizeof err)) return fail(r, "bad_spec", err);
    int n = tgrid_count(&g);
    stitch_ctx s = {.p = p, .c = c, .n = n, .info = NULL, .stop = TW_RUN_OK};
    snprintf(s.text, sizeof s.text, "stitching %d tiles", n);
    tw_run_status st = tw_progress_report(p, 1.0, n, n, s.text, 1);
    if (st != TW_RUN_OK) return st;
    ti_image img = {0};
    char *infotext = NULL;
    long long t0 = tw_now_ms();
    if (tpg_combine(&g, stitch_tile, &s, &img, err, sizeof err)) {
        st = s.stop != TW_RUN_OK ? s.stop : fail(r, "stitch_failed", err);
        goto done;
    }
    infotext = info_infotext(s.info);
    r->images = calloc(1, sizeof *r->images);
    r->lens = calloc(1, sizeof *r->lens);
    if (!r->images || !r->lens) {
        st = fail(r, "out_of_memory", "out of memory");
        goto done;
    }
    ti_png_text t = {"parameters", infotext ? infotext : ""};
    if (ti_encode_png(&img, &t, infotext ? 1 : 0, (int)w->s->png_compression, &r->images[0], &r->lens[0], err,
                      sizeof err)) {
        st = fail(r, "encode_failed", err);
        goto done;
    }
    r->n = 1;
    r->info = final_info(s.info, c->spec, &g);
    tlog_write(&w->log, TLOG_INFO, "job %s: stitched %d tiles into %dx%d in %.2f s", c->id, n, g.image_w, g.image_h,
               (tw_now_ms() - t0) / 1000.0);
done:
    ti_image_free(&img);
    free(infotext);
    free(s.info);
    return st;
}

tw_run_status tw_run_sd_upscale(tw_progress *p, const tw_claimed *c, tw_result *r) {
    if (c->is_tile) return run_tile(p, c, r);
    if (!strcmp(c->phase, "stitch")) return run_stitch(p, c, r);
    if (c->phase[0]) return fail(r, "bad_state", "unexpected phase of an sd_upscale job");
    return run_split(p, c, r);
}

/* ---- tessera render ------------------------------------------------------------------ */

typedef struct {
    int tile, tiles;
    struct timespec t0;
} local_cb;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static int on_local_progress(void *ctx, int done, int total) {
    local_cb *l = ctx;
    fprintf(stderr, "\rtessera: tile %d/%d, step %d/%d (%.1f s)", l->tile + 1, l->tiles, done, total, since(&l->t0));
    if (done == total && l->tile + 1 == l->tiles) fputc('\n', stderr);
    return 0;
}

int tw_sd_upscale_local(const json_t *spec, const uint8_t *input, size_t input_len, const char *models, int threads,
                        const char *out_dir, char *err, size_t errlen) {
    te_backend *be = NULL;
    tpl_cache *cache = NULL;
    tpl_model *m = NULL;
    ti_image up = {0}, crop = {0}, img = {0};
    ti_image *tiles = NULL;
    char *infotext = NULL, *info0 = NULL, *info = NULL;
    uint8_t *png = NULL;
    size_t len = 0;
    tgrid g;
    int n = 0, rc = -1;
    tpl_params prm;
    memset(&prm, 0, sizeof prm);
    if (upscaled_image(spec, input, input_len, models, 0, &up, &g, err, errlen)) return -1;
    n = tgrid_count(&g);
    tiles = calloc((size_t)n, sizeof *tiles);
    if (!tiles) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (tile_params(spec, 0, &prm, err, errlen)) goto done;
    te_cpu_options co = {.n_threads = threads, .isa = -1};
    if (te_cpu_backend_create(&co, &be, err, errlen) != TE_OK) goto done;
    tpl_load_opts lo = {.be = be, .vocab = NULL, .want_hash = 1, .arena_cap = 0};
    if (tpl_cache_create(models, &lo, 0, &cache)) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (tpl_cache_get(cache, prm.model[0] ? prm.model : NULL, prm.vae, &m, NULL, err, errlen)) goto done;
    fprintf(stderr, "tessera: sd_upscale %dx%d -> %d tiles (%d x %d) of %dx%d\n", g.image_w, g.image_h, n, g.cols,
            g.rows, g.tile_w, g.tile_h);
    local_cb lc = {.tile = 0, .tiles = n};
    clock_gettime(CLOCK_MONOTONIC, &lc.t0);
    tpl_callbacks cb = {.progress = on_local_progress, .preview = NULL, .ctx = &lc};
    for (int i = 0; i < n; i++) {
        lc.tile = i;
        char *it = NULL;
        if (tpg_crop_tile(&up, &g, i, &crop, err, errlen)) goto done;
        int r = render_tile(m, spec, i, &crop, 0, &cb, &tiles[i], &it, i == 0 ? &info0 : NULL, err, errlen);
        ti_image_free(&crop);
        if (r) {
            if (r > 0) snprintf(err, errlen, "stopped");
            goto done;
        }
        if (i == 0)
            infotext = it;
        else
            free(it);
    }
    ti_image_free(&up);
    if (tpg_combine_tiles(&g, tiles, &img, err, errlen)) goto done;
    ti_png_text t = {"parameters", infotext};
    if (ti_encode_png(&img, &t, 1, 6, &png, &len, err, errlen)) goto done;
    if (mkdir(out_dir, 0777) && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", out_dir, strerror(errno));
        goto done;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%llu-0.png", out_dir,
             (unsigned long long)json_integer_value(json_object_get(spec, "seed")));
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(png, 1, len, f) == len;
    if (f && fclose(f)) ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot write %s", path);
        goto done;
    }
    fprintf(stderr, "tessera: wrote %s\n", path);
    info = final_info(info0, spec, &g);
    if (info) printf("%s\n", info);
    rc = 0;
done:
    for (int i = 0; tiles && i < n; i++) ti_image_free(&tiles[i]);
    free(tiles);
    ti_image_free(&up);
    ti_image_free(&crop);
    ti_image_free(&img);
    free(infotext);
    free(info0);
    free(info);
    free(png);
    tpl_params_free(&prm);
    tpl_cache_free(cache);
    if (be) te_backend_destroy(be);
    return rc;
}
