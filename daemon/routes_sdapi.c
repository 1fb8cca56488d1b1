/* routes_sdapi.c - the AUTOMATIC1111-compatible API, /sdapi/v1/... (A1111 1.10
 * shapes; docs/api.md "AUTOMATIC1111-compatible API").
 *
 * server.c routes /sdapi/v1/<path> through td_sdapi_match (the route table is
 * TD_SDAPI_ROUTES in server.h, so metrics label each path) and td_h_sdapi.
 * Here: the listings (samplers, schedulers, upscalers, models ...), options,
 * progress, interrupt/skip and png-info. The render routes (txt2img, img2img,
 * extra-single-image) hold their request until the job is done:
 * sdapi_render.c. The models directory listings: sdapi_models.c.
 *
 * Farm semantics of A1111's global state:
 *   - options live in Redis (P sdapi:options, one JSON value per option), so
 *     every daemon serves and applies the same ones; GET overlays them on
 *     ta1_default_options().
 *   - progress describes the running job that started last, farm-wide;
 *     state.job_count counts running + queued jobs.
 *   - interrupt and skip cancel every running job that was submitted
 *     through /sdapi/v1 (the P sdapi:jobs set); queued ones keep their turn.
 *   - cmd-flags answers {}: the daemon's settings are never shown.
 *
 * Errors are A1111's {"error","detail","body","errors"} (proto/a1111.h) with
 * A1111's statuses; a body that is not a JSON object is 422, as FastAPI
 * answers a body it cannot parse.
 */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "a1111.h"
#include "base64.h"
#include "infotext.h"
#include "sampler.h"
#include "schedule.h"
#include "sdapi.h"

#define MAX_OPTIONS 500
#define MAX_OPTION_KEY 200
#define MAX_OPTION_VALUE (64 << 10)

/* ---- scripts --------------------------------------------------------------- */

/* ARGV: 1 prefix. The running job that started last and the farm's counts:
 * {now ms, running, queued[, id, progress, step, steps, text, started_at, preview]} */
static const char progress_lua[] =
    "local P = ARGV[1]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local nrun = redis.call('ZCARD', P .. 'jobs:state:running')\n"
    "local nq = redis.call('ZCARD', P .. 'jobs:state:queued')\n"
    "for _, id in ipairs(redis.call('ZREVRANGE', P .. 'jobs:state:running', 0, 9)) do\n"
    "  local h = redis.call('HMGET', P .. 'job:' .. id, 'state', 'progress', 'step', 'steps', 'progress_text',\n"
    "    'started_at')\n"
    "  if h[1] == 'running' then\n"
    "    local pv = redis.call('GET', P .. 'job:' .. id .. ':preview')\n"
    "    return {now, nrun, nq, id, h[2] or '', h[3] or '', h[4] or '', h[5] or '', h[6] or '', pv or ''}\n"
    "  end\n"
    "end\n"
    "return {now, nrun, nq}\n";

/* ARGV: 1 prefix. The running jobs submitted through /sdapi/v1; ids of
 * finished or expired ones leave the set. */
static const char interrupt_lua[] =
    "local P = ARGV[1]\n"
    "local out = {}\n"
    "for _, id in ipairs(redis.call('SMEMBERS', P .. 'sdapi:jobs')) do\n"
    "  local st = redis.call('HGET', P .. 'job:' .. id, 'state')\n"
    "  if st == 'running' then out[#out + 1] = id\n"
    "  elseif st ~= 'queued' then redis.call('SREM', P .. 'sdapi:jobs', id) end\n"
    "end\n"
    "return out\n";

void tsd_scripts_init(td_sdapi *a) {
    td_script_init(&a->s_progress, "tesserad_sdapi_progress", progress_lua);
    td_script_init(&a->s_interrupt, "tesserad_sdapi_interrupt", interrupt_lua);
}

/* ---- helpers ---------------------------------------------------------------- */

void td_sdapi_reply_error(td_req *r, int status, const char *error_class, const char *fmt, ...) {
    ta1_error e;
    memset(&e, 0, sizeof e);
    e.http_status = status;
    snprintf(e.error, sizeof e.error, "%s", error_class);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.detail, sizeof e.detail, fmt, ap);
    va_end(ap);
    td_reply_json(r, status, ta1_error_body(&e));
}

static void reply_redis_down(td_req *r) {
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
    td_sdapi_reply_error(r, 503, "HTTPException", "the job store (Redis) is not reachable; try again shortly");
}

/* A JSON text as is (A1111's exact bytes, or a literal like null). */
static void reply_text(td_req *r, const char *text, size_t n) {
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", "no-store");
    struct evbuffer *b = evhttp_request_get_output_buffer(r->req);
    evbuffer_add(b, text, n);
    evbuffer_add(b, "\n", 1);
    td_reply_raw(r, 200, "application/json", NULL, 0);
}

static void reply_null(td_req *r) { reply_text(r, "null", 4); }

json_t *tsd_read_body(td_req *r) {
    td_server *s = r->srv;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if ((long long)len > s->cfg->max_body) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Connection", "close");
        td_sdapi_reply_error(r, 413, "HTTPException", "the request body is %zu bytes; the limit is %lld", len,
                             s->cfg->max_body);
        return NULL;
    }
    json_error_t jerr;
    const char *data = len ? (const char *)evbuffer_pullup(in, -1) : "";
    json_t *body = json_loadb(data, len, 0, &jerr);
    if (!body) {
        td_sdapi_reply_error(r, 422, "RequestValidationError", "malformed JSON body at line %d, column %d: %s",
                             jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        td_sdapi_reply_error(r, 422, "RequestValidationError", "the body must be a JSON object");
        return NULL;
    }
    return body;
}

json_t *tsd_options_merge(const redisReply *stored) {
    json_t *o = ta1_default_options();
    for (size_t i = 0; o && stored && i + 1 < stored->elements; i += 2) {
        const redisReply *k = stored->element[i], *v = stored->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        json_t *j = json_loadb(v->str, v->len, JSON_DECODE_ANY, NULL);
        if (j) json_object_set_new(o, k->str, j);
    }
    return o;
}

/* ---- route table ---------------------------------------------------------------- */

#define SDAPI_MATCH(id, path, methods) {path, TD_ROUTE_SDAPI_##id},
static const struct {
    const char *path;
    td_route route;
} sdapi_paths[] = {TD_SDAPI_ROUTES(SDAPI_MATCH)};

td_route td_sdapi_match(const char *path) {
    for (size_t i = 0; i < sizeof sdapi_paths / sizeof sdapi_paths[0]; i++)
        if (!strcmp(path, sdapi_paths[i].path)) return sdapi_paths[i].route;
    return TD_ROUTE_UNMATCHED;
}

/* ---- listings ------------------------------------------------------------------ */

typedef int (*json_text_fn)(char *buf, size_t cap, size_t *len);

/* samplers / schedulers: the exact A1111 text the sample library writes. */
static void reply_generated(td_req *r, json_text_fn fn) {
    size_t cap = 16 << 10, n = 0;
    for (int tries = 0; tries < 6; tries++, cap *= 2) {
        char *buf = malloc(cap);
        if (!buf) break;
        if (fn(buf, cap, &n) == 0) {
            reply_text(r, buf, n);
            free(buf);
            return;
        }
        free(buf);
    }
    td_sdapi_reply_error(r, 500, "RuntimeError", "cannot list them");
}

static json_t *upscalers(void) {
    static const char *const names[] = {"None", "Lanczos", "Nearest"};
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        json_array_append_new(a, json_pack("{s:s, s:n, s:n, s:n, s:f}", "name", names[i], "model_name", "model_path",
                                           "model_url", "scale", 4.0));
    return a;
}

static json_t *latent_modes(void) {
    static const char *const names[] = {"Latent",           "Latent (antialiased)", "Latent (bicubic)",
                                        "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)"};
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        json_array_append_new(a, json_pack("{s:s}", "name", names[i]));
    return a;
}

/* {ram: {free, used, total}} from /proc/meminfo (bytes; free = MemAvailable). */
static json_t *memory(void) {
    long long total = -1, avail = -1, freek = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            long long v;
            if (sscanf(line, "MemTotal: %lld kB", &v) == 1) total = v;
            else if (sscanf(line, "MemAvailable: %lld kB", &v) == 1) avail = v;
            else if (sscanf(line, "MemFree: %lld kB", &v) == 1) freek = v;
        }
        fclose(f);
    }
    if (avail < 0) avail = freek;
    json_t *ram;
    if (total < 0 || avail < 0)
        ram = json_pack("{s:s}", "error", "cannot read /proc/meminfo");
    else
        ram = json_pack("{s:I, s:I, s:I}", "free", (json_int_t)avail * 1024, "used",
                        (json_int_t)(total - avail) * 1024, "total", (json_int_t)total * 1024);
    return json_pack("{s:o, s:{s:s}}", "ram", ram, "cuda", "error", "no CUDA in this daemon");
}

/* ---- options ------------------------------------------------------------------- */

static void on_options_get(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        reply_redis_down(r);
        return;
    }
    json_t *o = tsd_options_merge(rep);
    if (!o) {
        td_sdapi_reply_error(r, 500, "MemoryError", "out of memory");
        return;
    }
    /* no checkpoint chosen: the workers render with the first one */
    const char *ck = json_string_value(json_object_get(o, "sd_model_checkpoint"));
    if (!ck || !ck[0]) {
        json_t *list = tsd_list_checkpoints(r->srv->cfg->models);
        json_t *first = json_array_get(list, 0);
        if (first) json_object_set(o, "sd_model_checkpoint", json_object_get(first, "title"));
        json_decref(list);
    }
    td_reply_json(r, 200, o);
}

typedef struct {
    int n;
    char **argv;
} argv_ctx;

static void argv_free(void *p) {
    argv_ctx *c = p;
    for (int i = 0; i < c->n; i++) free(c->argv[i]);
    free(c->argv);
    free(c);
}

static void on_options_set(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        reply_redis_down(r);
        return;
    }
    tlog_write(&r->srv->log, TLOG_INFO, "sdapi options set by %s", r->owner);
    reply_null(r); /* A1111's set_config returns None */
}

static void options_post(td_req *r) {
    td_server *s = r->srv;
    json_t *body = tsd_read_body(r);
    if (!body) return;
    size_t n = json_object_size(body);
    if (n > MAX_OPTIONS) {
        json_decref(body);
        td_sdapi_reply_error(r, 422, "RequestValidationError", "at most %d options at once", MAX_OPTIONS);
        return;
    }
    json_t *ck = json_object_get(body, "sd_model_checkpoint");
    if (ck && !json_is_null(ck) && (!json_is_string(ck) || !tsd_checkpoint_known(s->cfg->models, json_string_value(ck)))) {
        char *t = json_dumps(ck, JSON_ENCODE_ANY);
        td_sdapi_reply_error(r, 500, "RuntimeError", "model %s not found", t ? t : "?");
        free(t);
        json_decref(body);
        return;
    }
    if (n == 0) {
        json_decref(body);
        reply_null(r);
        return;
    }
    argv_ctx *c = calloc(1, sizeof *c);
    if (c) c->argv = calloc(2 + 2 * n, sizeof *c->argv);
    if (!c || !c->argv) {
        free(c);
        json_decref(body);
        td_sdapi_reply_error(r, 500, "MemoryError", "out of memory");
        return;
    }
    r->data = c;
    r->data_free = argv_free;
    char key[256];
    snprintf(key, sizeof key, "%ssdapi:options", s->cfg->key_prefix);
    c->argv[c->n++] = strdup("HSET");
    c->argv[c->n++] = strdup(key);
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!text || strlen(k) > MAX_OPTION_KEY || strlen(text) > MAX_OPTION_VALUE) {
            free(text);
            json_decref(body);
            td_sdapi_reply_error(r, 422, "RequestValidationError",
                                 "option %.64s: names up to %d bytes, values up to %d bytes of JSON", k,
                                 MAX_OPTION_KEY, MAX_OPTION_VALUE);
            return;
        }
        c->argv[c->n++] = strdup(k);
        c->argv[c->n++] = text;
    }
    json_decref(body);
    for (int i = 0; i < c->n; i++)
        if (!c->argv[i]) {
            td_sdapi_reply_error(r, 500, "MemoryError", "out of memory");
            return;
        }
    if (td_redis_argv(s->redis, on_options_set, r, c->n, (const char **)c->argv, NULL)) reply_redis_down(r);
}

/* ---- progress ------------------------------------------------------------------ */

static json_t *b64_or_null(const char *data, size_t n) {
    char *out = NULL;
    if (!n || tb64_encode((const uint8_t *)data, n, &out, NULL, NULL, 0)) return json_null();
    json_t *j = json_string(out);
    free(out);
    return j ? j : json_null();
}

static void on_progress(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) {
        reply_redis_down(r);
        return;
    }
    long long now = rep->element[0]->integer;
    long long count = rep->element[1]->integer + rep->element[2]->integer;
    double progress = 0, eta = 0;
    long long step = 0, steps = 0;
    char stamp[32] = "0";
    json_t *image = json_null(), *text = json_null(), *task = json_null();
    if (rep->elements >= 10) {
        const char *v[7];
        for (int i = 0; i < 7; i++) v[i] = rep->element[3 + i]->str ? rep->element[3 + i]->str : "";
        progress = atof(v[1]);
        if (progress < 0 || progress != progress) progress = 0;
        if (progress > 1) progress = 1;
        step = atoll(v[2]);
        steps = atoll(v[3]);
        long long started = atoll(v[5]);
        double elapsed = started > 0 && now > started ? (double)(now - started) / 1000.0 : 0;
        if (progress > 0) eta = elapsed / progress - elapsed;
        if (started > 0) {
            time_t sec = (time_t)(started / 1000);
            struct tm tm;
            gmtime_r(&sec, &tm);
            strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
        }
        json_decref(task);
        task = json_string(v[0]);
        if (v[4][0]) {
            json_decref(text);
            text = json_string(v[4]);
            if (!text) text = json_null();
        }
        json_decref(image);
        image = b64_or_null(rep->element[9]->str, rep->element[9]->str ? rep->element[9]->len : 0);
    }
    json_t *state = json_pack("{s:b, s:b, s:b, s:s, s:I, s:s, s:i, s:I, s:I}", "skipped", 0, "interrupted", 0,
                              "stopping_generation", 0, "job", "", "job_count", (json_int_t)count, "job_timestamp",
                              stamp, "job_no", 0, "sampling_step", (json_int_t)step, "sampling_steps",
                              (json_int_t)steps);
    td_reply_json(r, 200,
                  json_pack("{s:f, s:f, s:o, s:o, s:o, s:o}", "progress", progress, "eta_relative", eta, "state",
                            state, "current_image", image, "textinfo", text, "current_task", task));
}

/* ---- interrupt / skip --------------------------------------------------------- */

typedef struct {
    int pending;
    char ret[24];
    struct {
        const char *argv[2];
        char id[TJOB_ID_LEN + 1];
    } *items;
} interrupt_ctx;

static void interrupt_free(void *p) {
    interrupt_ctx *c = p;
    free(c->items);
    free(c);
}

static void on_interrupt_cancel(redisReply *rep, void *priv) {
    td_req *r = priv;
    interrupt_ctx *c = r->data;
    if (--c->pending == 0) td_reply_json(r, 200, json_object());
}

static void on_interrupt_list(redisReply *rep, void *priv) {
    td_req *r = priv;
    td_server *s = r->srv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        reply_redis_down(r);
        return;
    }
    interrupt_ctx *c = calloc(1, sizeof *c);
    if (c && rep->elements) c->items = calloc(rep->elements, sizeof *c->items);
    if (!c || (rep->elements && !c->items)) {
        free(c);
        td_sdapi_reply_error(r, 500, "MemoryError", "out of memory");
        return;
    }
    r->data = c;
    r->data_free = interrupt_free;
    snprintf(c->ret, sizeof c->ret, "%lld", s->cfg->retention);
    c->pending = 1; /* this function's own hold, dropped below */
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING || !tjob_is_valid_id(e->str)) continue;
        snprintf(c->items[i].id, sizeof c->items[i].id, "%s", e->str);
        c->items[i].argv[0] = c->items[i].id;
        c->items[i].argv[1] = c->ret;
        if (td_redis_script(s->redis, &s->s_cancel, on_interrupt_cancel, r, 2, c->items[i].argv, NULL) == 0) {
            c->pending++;
            tlog_write(&s->log, TLOG_INFO, "job %s: cancel requested (sdapi %s by %s)", e->str,
                       r->route == TD_ROUTE_SDAPI_SKIP ? "skip" : "interrupt", r->owner);
        }
    }
    if (--c->pending == 0) td_reply_json(r, 200, json_object());
}

/* ---- png-info ------------------------------------------------------------------ */

static void png_info(td_req *r) {
    json_t *body = tsd_read_body(r);
    if (!body) return;
    json_t *img = json_object_get(body, "image");
    if (!json_is_string(img)) {
        json_decref(body);
        td_sdapi_reply_error(r, 422, "RequestValidationError", "image: field required (a base64 image)");
        return;
    }
    if (json_string_length(img) == 0) { /* A1111: an empty answer */
        json_decref(body);
        td_reply_json(r, 200, json_pack("{s:s, s:{}, s:{}}", "info", "", "items", "parameters"));
        return;
    }
    uint8_t *bytes = NULL;
    size_t n = 0;
    char err[256];
    if (tb64_decode(json_string_value(img), json_string_length(img), &bytes, &n, err, sizeof err)) {
        json_decref(body);
        td_sdapi_reply_error(r, 500, "HTTPException", "Invalid encoded image");
        return;
    }
    json_decref(body);
    json_t *items = NULL;
    char *info = NULL;
    if (tinf_read_image(bytes, n, &info, &items)) {
        free(bytes);
        td_sdapi_reply_error(r, 500, "HTTPException", "Invalid encoded image");
        return;
    }
    free(bytes);
    json_t *params = tinf_parse(info ? info : "");
    json_t *out = json_pack("{s:s, s:o, s:o}", "info", info ? info : "", "items", items ? items : json_object(),
                            "parameters", params ? params : json_object());
    free(info);
    if (out) td_reply_json(r, 200, out);
    else td_sdapi_reply_error(r, 500, "RuntimeError", "cannot build the answer (text not UTF-8?)");
}

/* ---- dispatch ------------------------------------------------------------------ */

void td_h_sdapi(td_req *r) {
    td_server *s = r->srv;
    const char *models = s->cfg->models;
    int post = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST;
    switch (r->route) {
    case TD_ROUTE_SDAPI_TXT2IMG: tsd_render(r, TSD_TXT2IMG); return;
    case TD_ROUTE_SDAPI_IMG2IMG: tsd_render(r, TSD_IMG2IMG); return;
    case TD_ROUTE_SDAPI_EXTRA_SINGLE: tsd_render(r, TSD_EXTRAS); return;
    case TD_ROUTE_SDAPI_PNG_INFO: png_info(r); return;
    case TD_ROUTE_SDAPI_PROGRESS:
        if (td_redis_script(s->redis, &s->sdapi->s_progress, on_progress, r, 0, NULL, NULL)) reply_redis_down(r);
        return;
    case TD_ROUTE_SDAPI_INTERRUPT:
    case TD_ROUTE_SDAPI_SKIP:
        if (td_redis_script(s->redis, &s->sdapi->s_interrupt, on_interrupt_list, r, 0, NULL, NULL))
            reply_redis_down(r);
        return;
    case TD_ROUTE_SDAPI_OPTIONS:
        if (post) options_post(r);
        else if (td_redis_cmd(s->redis, on_options_get, r, "HGETALL %ssdapi:options", s->cfg->key_prefix))
            reply_redis_down(r);
        return;
    case TD_ROUTE_SDAPI_SD_MODELS: td_reply_json(r, 200, tsd_list_checkpoints(models)); return;
    case TD_ROUTE_SDAPI_SD_VAE: td_reply_json(r, 200, tsd_list_vaes(models)); return;
    case TD_ROUTE_SDAPI_LORAS: td_reply_json(r, 200, tsd_list_loras(models)); return;
    case TD_ROUTE_SDAPI_EMBEDDINGS: td_reply_json(r, 200, tsd_list_embeddings(models)); return;
    case TD_ROUTE_SDAPI_SAMPLERS: reply_generated(r, tsm_samplers_json); return;
    case TD_ROUTE_SDAPI_SCHEDULERS: reply_generated(r, tsm_schedulers_json); return;
    case TD_ROUTE_SDAPI_UPSCALERS: td_reply_json(r, 200, upscalers()); return;
    case TD_ROUTE_SDAPI_LATENT_MODES: td_reply_json(r, 200, latent_modes()); return;
    case TD_ROUTE_SDAPI_MEMORY: td_reply_json(r, 200, memory()); return;
    case TD_ROUTE_SDAPI_REFRESH_CHECKPOINTS:
    case TD_ROUTE_SDAPI_REFRESH_VAE:
    case TD_ROUTE_SDAPI_REFRESH_LORAS:
    case TD_ROUTE_SDAPI_REFRESH_EMBEDDINGS: reply_null(r); return; /* listings are read live */
    case TD_ROUTE_SDAPI_CMD_FLAGS: td_reply_json(r, 200, json_object()); return;
    case TD_ROUTE_SDAPI_PROMPT_STYLES:
    case TD_ROUTE_SDAPI_FACE_RESTORERS:
    case TD_ROUTE_SDAPI_HYPERNETWORKS:
    case TD_ROUTE_SDAPI_REALESRGAN: td_reply_json(r, 200, json_array()); return;
    case TD_ROUTE_SDAPI_SCRIPTS:
        td_reply_json(r, 200, json_pack("{s:[], s:[]}", "txt2img", "img2img"));
        return;
    default: td_sdapi_reply_error(r, 404, "HTTPException", "Not Found"); return;
    }
}
