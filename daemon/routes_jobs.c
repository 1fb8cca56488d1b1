/* routes_jobs.c - the /v1/jobs routes: submit, get, list, cancel, images.
 *
 * The submit path (td_job_submit: id, script arguments, the submit script;
 * td_job_submit_outcome: its answer) is shared with the /sdapi/v1 render
 * routes (sdapi_render.c), so both queue jobs exactly the same way.
 *
 * Every state change goes through a proto/lua script (submit, cancel), so
 * several daemons can serve one Redis; reads are plain commands or the
 * daemon's read-only scripts (routes_misc.c). Handlers answer from their
 * Redis callback; a Redis that is down answers 503 at once.
 *
 * Times in job bodies: ISO-8601 UTC with milliseconds ("created_at") and the
 * same instant as integer ms since the epoch ("created_at_ms"); null when the
 * job has not reached that point.
 */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "server.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
    const char *k[40];
    const char *v[40];
    size_t vl[40];
    int n;
} fields;

static void fields_from(fields *f, const redisReply *h) {
    f->n = 0;
    for (size_t i = 0; i + 1 < h->elements && f->n < 40; i += 2) {
        if (!h->element[i]->str || !h->element[i + 1]->str) continue;
        f->k[f->n] = h->element[i]->str;
        f->v[f->n] = h->element[i + 1]->str;
        f->vl[f->n] = h->element[i + 1]->len;
        f->n++;
    }
}

static const char *fget(const fields *f, const char *k) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->k[i], k)) return f->v[i];
    return NULL;
}

static json_t *str_or_null(const char *s) {
    if (!s || !s[0]) return json_null();
    json_t *j = json_string(s);
    return j ? j : json_null();
}

static json_t *int_or_null(const char *s) {
    if (!s || !s[0]) return json_null();
    return json_integer(atoll(s));
}

static void add_time(json_t *o, const char *name, const char *ms) {
    char key[48];
    snprintf(key, sizeof key, "%s_ms", name);
    if (!ms || !ms[0]) {
        json_object_set_new(o, name, json_null());
        json_object_set_new(o, key, json_null());
        return;
    }
    long long v = atoll(ms);
    char iso[32];
    td_iso_ms(v, iso);
    json_object_set_new(o, name, json_string(iso));
    json_object_set_new(o, key, json_integer(v));
}

static json_t *priority_json(const char *p) {
    int v = p ? atoi(p) : 1;
    return json_string(tjob_priority_name(v));
}

static json_t *error_json(const char *code, const char *msg) {
    if (!code || !code[0]) return json_null();
    return json_pack("{s:o, s:o}", "code", str_or_null(code), "message", str_or_null(msg));
}

static json_t *links_json(const td_server *s, const char *id) {
    char self[512], ev[512];
    td_link(s, self, sizeof self, "/v1/jobs/%s", id);
    td_link(s, ev, sizeof ev, "/v1/jobs/%s/events", id);
    return json_pack("{s:s, s:s, s:s}", "self", self, "events", ev, "cancel", self);
}

static json_t *images_json(const td_server *s, const char *id, const char *state, const char *images) {
    json_t *a = json_array();
    int n = images ? atoi(images) : 0;
    if (!state || strcmp(state, "succeeded")) return a;
    for (int i = 0; i < n && i < 10000; i++) {
        char l[512];
        td_link(s, l, sizeof l, "/v1/jobs/%s/images/%d", id, i);
        json_array_append_new(a, json_string(l));
    }
    return a;
}

static double num(const char *s) { return s && s[0] ? atof(s) : 0.0; }

/* ---- GET /v1/jobs/{id} --------------------------------------------------- */

static json_t *job_json(const td_server *s, const char *id, const fields *f) {
    json_t *o = json_object();
    const char *state = fget(f, "state");
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "type", str_or_null(fget(f, "type")));
    json_object_set_new(o, "state", str_or_null(state));
    json_object_set_new(o, "pool", str_or_null(fget(f, "pool")));
    json_object_set_new(o, "priority", priority_json(fget(f, "priority")));
    json_object_set_new(o, "attempts", json_integer(atoll(fget(f, "attempts") ? fget(f, "attempts") : "0")));
    json_object_set_new(o, "max_attempts", int_or_null(fget(f, "max_attempts")));
    json_object_set_new(o, "worker", str_or_null(fget(f, "worker")));
    json_object_set_new(o, "progress",
                        json_pack("{s:f, s:o, s:o, s:o}", "fraction", num(fget(f, "progress")), "step",
                                  int_or_null(fget(f, "step")), "steps", int_or_null(fget(f, "steps")), "text",
                                  str_or_null(fget(f, "progress_text"))));
    const char *tiles = fget(f, "tiles_total"); /* an sd_upscale job past its split (docs/redis.md) */
    if (tiles && tiles[0]) {
        const char *done = fget(f, "tiles_done");
        json_object_set_new(o, "tiles",
                            json_pack("{s:I, s:I, s:o}", "total", (json_int_t)atoll(tiles), "done",
                                      (json_int_t)(done ? atoll(done) : 0), "phase", str_or_null(fget(f, "phase"))));
    }
    const char *cancel = fget(f, "cancel");
    json_object_set_new(o, "cancel_requested", json_boolean(cancel && !strcmp(cancel, "1")));
    add_time(o, "created_at", fget(f, "created_at"));
    add_time(o, "started_at", fget(f, "started_at"));
    add_time(o, "finished_at", fget(f, "finished_at"));
    json_object_set_new(o, "error", error_json(fget(f, "error_code"), fget(f, "error")));
    json_object_set_new(o, "images", images_json(s, id, state, fget(f, "images")));
    const char *meta = fget(f, "metadata");
    json_t *m = meta && meta[0] ? json_loads(meta, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "metadata", m ? m : json_null());
    const char *spec = fget(f, "spec");
    json_t *sp = spec && spec[0] ? json_loads(spec, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "spec", sp ? sp : json_null());
    const char *info = fget(f, "info");
    json_t *inf = info && info[0] ? json_loads(info, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "info", inf ? inf : json_null());
    json_object_set_new(o, "links", links_json(s, id));
    return o;
}

static void on_job_get(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        td_reply_redis_down(r);
        return;
    }
    if (rep->elements == 0) {
        td_reply_error(r, 404, "not_found", "id", "no job %s (unknown or expired)", r->id);
        return;
    }
    fields f;
    fields_from(&f, rep);
    td_reply_json(r, 200, job_json(r->srv, r->id, &f));
}

void td_h_job_get(td_req *r) {
    td_server *s = r->srv;
    if (td_redis_cmd(s->redis, on_job_get, r, "HGETALL %sjob:%s", s->cfg->key_prefix, r->id))
        td_reply_redis_down(r);
}

/* ---- POST /v1/jobs ------------------------------------------------------- */

void td_submit_args_free(void *p) {
    td_submit_args *a = p;
    if (!a) return;
    tjob_submission_free(&a->sub);
    free(a);
}

int td_job_submit(td_server *s, td_submit_args *c, td_redis_cb *cb, void *priv) {
    if (tjob_new_id(c->id)) return -2;
    snprintf(c->prio, sizeof c->prio, "%d", c->sub.priority);
    snprintf(c->max_attempts, sizeof c->max_attempts, "%lld", s->cfg->max_attempts);
    snprintf(c->max_depth, sizeof c->max_depth, "%lld", s->cfg->max_queue_depth);
    snprintf(c->idem_ttl, sizeof c->idem_ttl, "%lld", s->cfg->idempotency_ttl);
    const char *a[13] = {c->id,
                         c->sub.type,
                         c->sub.pool,
                         c->prio,
                         c->sub.spec_json ? c->sub.spec_json : "{}",
                         c->sub.webhook_json ? c->sub.webhook_json : "",
                         c->sub.metadata_json ? c->sub.metadata_json : "",
                         c->max_attempts,
                         c->max_depth,
                         c->idem,
                         c->idem_ttl,
                         c->sub.input ? (const char *)c->sub.input : "",
                         c->owner};
    for (int i = 0; i < 13; i++) {
        c->argv[i] = a[i];
        c->lens[i] = strlen(a[i]);
    }
    c->lens[11] = c->sub.input ? c->sub.input_len : 0;
    return td_redis_script(s->redis, &s->s_submit, cb, priv, 13, c->argv, c->lens) ? -1 : 0;
}

td_submit_outcome td_job_submit_outcome(const redisReply *rep, const char **id_out, long long *depth) {
    *id_out = NULL;
    *depth = 0;
    if (!rep) return TD_SUBMIT_DOWN;
    if (rep->type == REDIS_REPLY_ERROR) return TD_SUBMIT_REFUSED;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 || rep->element[0]->type != REDIS_REPLY_STRING)
        return TD_SUBMIT_BAD;
    const char *what = rep->element[0]->str;
    const redisReply *v = rep->element[1];
    if (!strcmp(what, "created")) return TD_SUBMIT_CREATED; /* the caller knows its id */
    if (!strcmp(what, "exists") && v->type == REDIS_REPLY_STRING && tjob_is_valid_id(v->str)) {
        *id_out = v->str;
        return TD_SUBMIT_EXISTS;
    }
    if (!strcmp(what, "full")) {
        *depth = v->type == REDIS_REPLY_INTEGER ? v->integer : 0LL;
        return TD_SUBMIT_FULL;
    }
    return TD_SUBMIT_BAD;
}

static json_t *accepted_body(const td_server *s, const char *id, const char *state) {
    json_t *links = links_json(s, id);
    char img[512];
    td_link(s, img, sizeof img, "/v1/jobs/%s/images/{n}", id);
    json_object_set_new(links, "images", json_string(img));
    return json_pack("{s:s, s:s, s:o}", "id", id, "status", state, "links", links);
}

/* The 202 answer to a new job, formatted directly: the same bytes
 * td_reply_json(accepted_body()) would give (key order included), without
 * building and dumping a jansson tree on the hottest path. Ids are hex; the
 * public URL is copied as is when it needs no JSON escaping, else the generic
 * path answers. */
static void reply_accepted(td_req *r, const char *id, const char *self) {
    int generic = strlen(self) + sizeof "/images/{n}" > 512; /* td_link would truncate */
    for (const unsigned char *p = (const unsigned char *)self; *p && !generic; p++)
        if (*p == '"' || *p == '\\' || *p < 0x20) generic = 1;
    if (generic) {
        td_reply_json(r, 202, accepted_body(r->srv, id, "queued"));
        return;
    }
    char body[4 * 512 + 160];
    int n = snprintf(body, sizeof body,
                     "{\"id\":\"%s\",\"status\":\"queued\",\"links\":{\"self\":\"%s\",\"events\":\"%s/events\","
                     "\"cancel\":\"%s\",\"images\":\"%s/images/{n}\"}}\n",
                     id, self, self, self, self);
    if (n <= 0 || (size_t)n >= sizeof body) {
        td_reply_json(r, 202, accepted_body(r->srv, id, "queued"));
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", "no-store");
    td_reply_raw(r, 202, "application/json", body, (size_t)n);
}

static void set_location(td_req *r, const char *id) {
    char self[512];
    td_link(r->srv, self, sizeof self, "/v1/jobs/%s", id);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Location", self);
}

static void on_existing_state(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        td_reply_redis_down(r);
        return;
    }
    const char *state = rep->type == REDIS_REPLY_STRING ? rep->str : "queued";
    set_location(r, r->id);
    td_reply_json(r, 200, accepted_body(r->srv, r->id, state));
}

static void on_submit(redisReply *rep, void *priv) {
    td_req *r = priv;
    td_server *s = r->srv;
    td_submit_args *c = r->data;
    const char *existing;
    long long depth;
    switch (td_job_submit_outcome(rep, &existing, &depth)) {
    case TD_SUBMIT_CREATED: {
        tlog_write(&s->log, TLOG_INFO, "job %s queued: type %s pool %s owner %s", c->id, c->sub.type, c->sub.pool,
                   r->owner);
        char self[512];
        td_link(s, self, sizeof self, "/v1/jobs/%s", c->id);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Location", self);
        reply_accepted(r, c->id, self);
        break;
    }
    case TD_SUBMIT_EXISTS:
        snprintf(r->id, sizeof r->id, "%s", existing);
        if (td_redis_cmd(s->redis, on_existing_state, r, "HGET %sjob:%s state", s->cfg->key_prefix, r->id))
            td_reply_redis_down(r);
        break;
    case TD_SUBMIT_FULL:
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "5");
        td_reply_error(r, 429, "queue_full", "pool", "the queue of pool %s is full (%lld queued); retry later",
                       c->sub.pool, depth);
        break;
    case TD_SUBMIT_REFUSED: td_reply_error(r, 500, "internal", NULL, "the job store refused the job"); break;
    case TD_SUBMIT_DOWN: td_reply_redis_down(r); break;
    case TD_SUBMIT_BAD: td_reply_error(r, 500, "internal", NULL, "unexpected answer from the submit script"); break;
    }
}

static int valid_idem_key(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > 255) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] > 0x7e) return 0;
    return 1;
}

void td_h_jobs_post(td_req *r) {
    td_server *s = r->srv;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if ((long long)len > s->cfg->max_body) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Connection", "close");
        td_reply_error(r, 413, "body_too_large", NULL, "the request body is %zu bytes; the limit is %lld", len,
                       s->cfg->max_body);
        return;
    }
    const char *idem = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Idempotency-Key");
    if (idem && !valid_idem_key(idem)) {
        td_reply_error(r, 400, "invalid_idempotency_key", "Idempotency-Key",
                       "Idempotency-Key must be 1 to 255 printable ASCII characters");
        return;
    }
    if (!td_redis_up(s->redis)) { /* before parsing megabytes for nothing */
        td_reply_redis_down(r);
        return;
    }
    json_error_t jerr;
    const char *data = len ? (const char *)evbuffer_pullup(in, -1) : "";
    json_t *body = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        char msg[300];
        snprintf(msg, sizeof msg, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        json_t *e = td_error_obj("malformed_json", NULL, msg);
        json_object_set_new(e, "line", json_integer(jerr.line));
        json_object_set_new(e, "column", json_integer(jerr.column));
        td_reply_json(r, 400, json_pack("{s:o}", "error", e));
        return;
    }
    td_submit_args *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(body);
        td_reply_error(r, 500, "internal", NULL, "out of memory");
        return;
    }
    r->data = c;
    r->data_free = td_submit_args_free;
    tjob_error err;
    memset(&err, 0, sizeof err);
    int rc = tjob_validate(body, &s->limits, &c->sub, &err);
    json_decref(body);
    if (rc) {
        int st = err.http_status >= 400 && err.http_status < 500 ? err.http_status : 422;
        td_reply_error(r, st, err.code[0] ? err.code : "invalid_job", err.field, "%s", err.message);
        return;
    }
    evbuffer_drain(in, len); /* the decoded input now lives in c->sub */
    if (idem) {
        char both[sizeof r->owner + 260];
        int bl = snprintf(both, sizeof both, "%s\n%s", r->owner, idem);
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)both, (size_t)bl, d);
        tjob_hex(d, sizeof d, c->idem);
    }
    snprintf(c->owner, sizeof c->owner, "%s", r->owner);
    rc = td_job_submit(s, c, on_submit, r);
    if (rc == -2) td_reply_error(r, 500, "internal", NULL, "cannot make a job id");
    else if (rc) td_reply_redis_down(r);
}

/* ---- DELETE /v1/jobs/{id} ------------------------------------------------ */

static void on_cancel(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || rep->element[0]->type != REDIS_REPLY_STRING) {
        td_reply_redis_down(r);
        return;
    }
    const char *what = rep->element[0]->str;
    if (!strcmp(what, "canceled")) {
        tlog_write(&r->srv->log, TLOG_INFO, "job %s canceled while queued", r->id);
        td_reply_json(r, 200, json_pack("{s:s, s:s}", "id", r->id, "state", "canceled"));
    } else if (!strcmp(what, "requested")) {
        tlog_write(&r->srv->log, TLOG_INFO, "job %s: cancel requested while running", r->id);
        td_reply_json(r, 202, json_pack("{s:s, s:s, s:b}", "id", r->id, "state", "running", "cancel_requested", 1));
    } else if (!strcmp(what, "final") && rep->elements >= 2 && rep->element[1]->type == REDIS_REPLY_STRING) {
        char msg[128];
        snprintf(msg, sizeof msg, "job %s already finished: %s", r->id, rep->element[1]->str);
        json_t *e = td_error_obj("already_finished", NULL, msg);
        json_object_set_new(e, "state", json_string(rep->element[1]->str));
        td_reply_json(r, 409, json_pack("{s:o}", "error", e));
    } else {
        td_reply_error(r, 404, "not_found", "id", "no job %s (unknown or expired)", r->id);
    }
}

void td_h_job_delete(td_req *r) {
    td_server *s = r->srv;
    /* the arguments must outlive the call (EVAL retry on NOSCRIPT) */
    struct cancel_args {
        const char *argv[2];
        char ret[24];
    } *ca = malloc(sizeof *ca);
    if (!ca) {
        td_reply_error(r, 500, "internal", NULL, "out of memory");
        return;
    }
    snprintf(ca->ret, sizeof ca->ret, "%lld", s->cfg->retention);
    ca->argv[0] = r->id;
    ca->argv[1] = ca->ret;
    r->data = ca;
    r->data_free = free;
    if (td_redis_script(s->redis, &s->s_cancel, on_cancel, r, 2, ca->argv, NULL)) td_reply_redis_down(r);
}

/* ---- GET /v1/jobs/{id}/images/{n} ----------------------------------------- */

static void on_image_bytes(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        td_reply_redis_down(r);
        return;
    }
    if (rep->type != REDIS_REPLY_STRING) {
        td_reply_error(r, 404, "not_found", "n", "image %d of job %s is gone (expired)", r->n, r->id);
        return;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%s-%d\"", r->id, r->n);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "ETag", etag);
    evhttp_add_header(h, "Cache-Control", "public, max-age=31536000, immutable");
    td_reply_raw(r, 200, "image/png", rep->str, rep->len);
}

static void on_image_meta(redisReply *rep, void *priv) {
    td_req *r = priv;
    td_server *s = r->srv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
        td_reply_redis_down(r);
        return;
    }
    const char *state = rep->element[0]->str, *attempt = rep->element[1]->str, *images = rep->element[2]->str;
    if (!state) {
        td_reply_error(r, 404, "not_found", "id", "no job %s (unknown or expired)", r->id);
        return;
    }
    if (strcmp(state, "succeeded")) {
        char msg[128];
        snprintf(msg, sizeof msg, "job %s is %s; images exist once it has succeeded", r->id, state);
        json_t *e = td_error_obj("not_ready", NULL, msg);
        json_object_set_new(e, "state", json_string(state));
        td_reply_json(r, 409, json_pack("{s:o}", "error", e));
        return;
    }
    if (!attempt || !images || r->n >= atoi(images)) {
        td_reply_error(r, 404, "not_found", "n", "job %s has %s image(s)", r->id, images ? images : "0");
        return;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%s-%d\"", r->id, r->n);
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match");
    if (inm && strstr(inm, etag)) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
        evhttp_add_header(h, "ETag", etag);
        evhttp_add_header(h, "Cache-Control", "public, max-age=31536000, immutable");
        td_reply_raw(r, 304, NULL, NULL, 0);
        return;
    }
    if (td_redis_cmd(s->redis, on_image_bytes, r, "GET %sjob:%s:image:%s:%d", s->cfg->key_prefix, r->id, attempt,
                     r->n))
        td_reply_redis_down(r);
}

void td_h_job_image(td_req *r) {
    td_server *s = r->srv;
    if (td_redis_cmd(s->redis, on_image_meta, r, "HMGET %sjob:%s state result_attempt images", s->cfg->key_prefix,
                     r->id))
        td_reply_redis_down(r);
}

/* ---- GET /v1/jobs ------------------------------------------------------- */

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_encode(const char *in, size_t n, char *out, size_t outn) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outn; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = b64u[(v >> 18) & 63];
        out[o++] = b64u[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = b64u[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = b64u[v & 63];
    }
    out[o] = 0;
}

static int b64url_decode(const char *in, char *out, size_t outn) {
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *in; in++) {
        const char *p = strchr(b64u, *in);
        if (!p || !*in) return -1;
        acc = (acc << 6) | (unsigned)(p - b64u);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outn) return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = 0;
    return 0;
}

typedef struct {
    const char *argv[4];
    char index[96];
    char max[32];
    char cid[TJOB_ID_LEN + 1];
    char limit[8];
} list_ctx;

static json_t *summary_json(const td_server *s, const redisReply *it) {
    /* {id, score, state, type, pool, priority, created_at, started_at, finished_at,
     *  progress, attempts, error_code, error, images} */
    const char *v[14];
    for (int i = 0; i < 14; i++) v[i] = (size_t)i < it->elements ? it->element[i]->str : NULL;
    const char *id = v[0];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "type", str_or_null(v[3]));
    json_object_set_new(o, "state", str_or_null(v[2]));
    json_object_set_new(o, "pool", str_or_null(v[4]));
    json_object_set_new(o, "priority", priority_json(v[5]));
    add_time(o, "created_at", v[6]);
    add_time(o, "started_at", v[7]);
    add_time(o, "finished_at", v[8]);
    json_object_set_new(o, "progress", json_real(num(v[9])));
    json_object_set_new(o, "attempts", json_integer(v[10] ? atoll(v[10]) : 0));
    json_object_set_new(o, "error", error_json(v[11], v[12]));
    json_object_set_new(o, "images", images_json(s, id, v[2], v[13]));
    char self[512];
    td_link(s, self, sizeof self, "/v1/jobs/%s", id);
    json_object_set_new(o, "links", json_pack("{s:s}", "self", self));
    return o;
}

static void on_list(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) {
        td_reply_redis_down(r);
        return;
    }
    json_t *jobs = json_array();
    for (size_t i = 3; i < rep->elements; i++) {
        redisReply *it = rep->element[i];
        if (it->type != REDIS_REPLY_ARRAY || it->elements < 14 || !it->element[0]->str) continue;
        json_array_append_new(jobs, summary_json(r->srv, it));
    }
    json_t *next = json_null();
    if (rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[0]->integer == 1 && rep->element[1]->str &&
        rep->element[2]->str && rep->element[2]->len == TJOB_ID_LEN) {
        char raw[80], enc[128];
        snprintf(raw, sizeof raw, "%s:%s", rep->element[1]->str, rep->element[2]->str);
        b64url_encode(raw, strlen(raw), enc, sizeof enc);
        json_decref(next);
        next = json_string(enc);
    }
    td_reply_json(r, 200, json_pack("{s:o, s:o}", "jobs", jobs, "next_cursor", next));
}

void td_h_jobs_list(td_req *r) {
    td_server *s = r->srv;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    if (qs && evhttp_parse_query_str(qs, &q)) {
        evhttp_clear_headers(&q);
        td_reply_error(r, 422, "invalid_query", NULL, "the query string cannot be parsed");
        return;
    }
    list_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        evhttp_clear_headers(&q);
        td_reply_error(r, 500, "internal", NULL, "out of memory");
        return;
    }
    r->data = c;
    r->data_free = free;
    const char *state = td_query(&q, "state"), *limit = td_query(&q, "limit"), *cursor = td_query(&q, "cursor");
    tjob_state st;
    if (state && state[0] && tjob_state_from_name(state, &st)) {
        evhttp_clear_headers(&q);
        td_reply_error(r, 422, "invalid_field", "state",
                       "state must be one of queued, running, succeeded, failed, canceled");
        return;
    }
    snprintf(c->index, sizeof c->index, state && state[0] ? "jobs:state:%s" : "jobs", state);
    long lim = 20;
    if (limit) {
        char *end;
        lim = strtol(limit, &end, 10);
        if (end == limit || *end || lim < 1 || lim > 100) {
            evhttp_clear_headers(&q);
            td_reply_error(r, 422, "invalid_field", "limit", "limit must be an integer from 1 to 100");
            return;
        }
    }
    snprintf(c->limit, sizeof c->limit, "%ld", lim);
    snprintf(c->max, sizeof c->max, "+inf");
    if (cursor && cursor[0]) {
        char raw[96];
        char *colon;
        int ok = strlen(cursor) < 120 && b64url_decode(cursor, raw, sizeof raw) == 0 && (colon = strchr(raw, ':'));
        if (ok) {
            *colon = 0;
            size_t sl = strlen(raw);
            ok = sl > 0 && sl < 20 && tjob_is_valid_id(colon + 1);
            for (size_t i = 0; ok && i < sl; i++)
                if (!isdigit((unsigned char)raw[i])) ok = 0;
            if (ok) {
                snprintf(c->max, sizeof c->max, "%s", raw);
                snprintf(c->cid, sizeof c->cid, "%s", colon + 1);
            }
        }
        if (!ok) {
            evhttp_clear_headers(&q);
            td_reply_error(r, 422, "invalid_field", "cursor", "cursor is not one this server returned");
            return;
        }
    }
    evhttp_clear_headers(&q);
    c->argv[0] = c->index;
    c->argv[1] = c->max;
    c->argv[2] = c->cid;
    c->argv[3] = c->limit;
    if (td_redis_script(s->redis, &s->s_list, on_list, r, 4, c->argv, NULL)) td_reply_redis_down(r);
}
