/* server.c - evhttp setup, routing, authentication and replies.
 *
 * Routing is by path shape, not by evhttp_set_cb, so that every answer -
 * 404 for unknown paths, 405 with Allow for a wrong method, 401 - is our JSON
 * error body and is counted under a route pattern (never the raw path, which
 * would give unbounded label values).
 *
 * /sdapi/v1/... (routes_sdapi.c) answers these errors in A1111's shape instead
 * and also takes HTTP Basic (A1111 --api-auth) with an API key as password.
 *
 * Authentication: Authorization: Bearer <key>. Keys are kept as SHA-256
 * digests and compared with CRYPTO_memcmp over the fixed digest length against
 * every configured key, so timing reveals neither the key nor which one
 * matched. With no key configured the daemon only listens on loopback
 * (enforced in td_server_listen).
 *
 * Bodies: evhttp refuses a body larger than max_body + 1 MiB by itself (its
 * own HTML 413, after reading and discarding the body: lingering close);
 * between max_body and that, the route answers our JSON 413 body_too_large.
 */
#include "server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base64.h"
#include "webhook.h"

#define SDAPI_NAME(id, path, methods) "/sdapi/v1/" path,
#define SDAPI_METHODS(id, path, methods) methods,

const char *const td_route_names[TD_ROUTE_COUNT] = {
    "unmatched",          "/healthz",      "/readyz", "/metrics", "/v1/jobs", "/v1/jobs/{id}",
    "/v1/jobs/{id}/events", "/v1/jobs/{id}/images/{n}", "/v1/workers", TD_SDAPI_ROUTES(SDAPI_NAME)
};

#define M_GET TD_M_GET
static const int route_methods[TD_ROUTE_COUNT] = {
    0, M_GET, M_GET, M_GET, M_GET | EVHTTP_REQ_POST, M_GET | EVHTTP_REQ_DELETE, EVHTTP_REQ_GET, M_GET, M_GET,
    TD_SDAPI_ROUTES(SDAPI_METHODS)
};

#define BODY_SLACK (1 << 20)
#define DRAIN_LIMIT_S 10

static double elapsed_s(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static const char *method_name(enum evhttp_cmd_type m) {
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

void td_req_free(td_req *r) {
    if (!r) return;
    if (r->data && r->data_free) r->data_free(r->data);
    free(r);
}

static void unlink_req(td_req *r) {
    td_server *s = r->srv;
    if (r->prev) r->prev->next = r->next;
    else if (s->inflight == r) s->inflight = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    s->ninflight--;
}

static void finish(td_req *r, int status) {
    td_server *s = r->srv;
    double secs = elapsed_s(&r->t0);
    td_metrics_observe(s->metrics, r->route, status, secs);
    tlog_write(&s->log, TLOG_DEBUG, "%s %s %d %.1fms id=%s", method_name(evhttp_request_get_command(r->req)),
               td_route_names[r->route], status, secs * 1000, r->rid);
    unlink_req(r);
}

void td_req_detach(td_req *r, int status) {
    finish(r, status);
    td_req_free(r);
}

void td_reply_raw(td_req *r, int status, const char *ctype, const void *data, size_t len) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "X-Request-Id", r->rid);
    if (ctype) evhttp_add_header(h, "Content-Type", ctype);
    /* the request's own output buffer: no evbuffer to make and free */
    if (len) evbuffer_add(evhttp_request_get_output_buffer(r->req), data, len);
    evhttp_send_reply(r->req, status, NULL, NULL);
    finish(r, status);
    td_req_free(r);
}

void td_reply_json(td_req *r, int status, json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"field\":null}}";
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", "no-store");
        td_reply_raw(r, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", "no-store");
    size_t n = strlen(text);
    text[n] = 0;
    /* a trailing newline makes curl output readable */
    char *t2 = realloc(text, n + 2);
    if (t2) {
        text = t2;
        text[n++] = '\n';
    }
    td_reply_raw(r, status, "application/json", text, n);
    free(text);
}

void td_reply_error(td_req *r, int status, const char *code, const char *field, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    td_reply_json(r, status, json_pack("{s:o}", "error", td_error_obj(code, field, msg)));
}

json_t *td_error_obj(const char *code, const char *field, const char *message) {
    json_t *f = field && field[0] ? json_string(field) : json_null();
    json_t *m = json_string(message);
    if (!f) f = json_string("(not UTF-8)");
    if (!m) m = json_string("(message not UTF-8)");
    return json_pack("{s:s, s:o, s:o}", "code", code, "message", m, "field", f);
}

void td_reply_redis_down(td_req *r) {
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
    td_reply_error(r, 503, "redis_unavailable", NULL, "the job store (Redis) is not reachable; try again shortly");
}

void td_link(const td_server *s, char *out, size_t n, const char *fmt, ...) {
    const char *base = s->cfg->public_url ? s->cfg->public_url : "";
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/') bl--;
    int k = snprintf(out, n, "%.*s", (int)bl, base);
    if (k < 0 || (size_t)k >= n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + k, n - (size_t)k, fmt, ap);
    va_end(ap);
}

void td_iso_ms(long long ms, char out[32]) {
    if (ms < 0) ms = 0;
    if (ms > 253402300799999LL) ms = 253402300799999LL; /* 9999-12-31 */
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    snprintf(out, 32, "%.31s", tmp);
}

const char *td_query(struct evkeyvalq *q, const char *key) { return evhttp_find_header(q, key); }

/* ---- routing ------------------------------------------------------------ */

static td_route match(const char *path, td_req *r, int *bad_id) {
    *bad_id = 0;
    if (!strncmp(path, "/sdapi/v1/", 10)) return td_sdapi_match(path + 10);
    if (!strcmp(path, "/healthz")) return TD_ROUTE_HEALTHZ;
    if (!strcmp(path, "/readyz")) return TD_ROUTE_READYZ;
    if (!strcmp(path, "/metrics")) return TD_ROUTE_METRICS;
    if (!strcmp(path, "/v1/jobs")) return TD_ROUTE_JOBS;
    if (!strcmp(path, "/v1/workers")) return TD_ROUTE_WORKERS;
    if (strncmp(path, "/v1/jobs/", 9)) return TD_ROUTE_UNMATCHED;
    const char *id = path + 9;
    const char *slash = strchr(id, '/');
    size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
    if (idlen == 0) return TD_ROUTE_UNMATCHED;
    if (idlen == TJOB_ID_LEN) {
        memcpy(r->id, id, idlen);
        r->id[idlen] = 0;
    }
    if (!tjob_is_valid_id(r->id)) *bad_id = 1;
    if (!slash) return TD_ROUTE_JOB;
    if (!strcmp(slash, "/events")) return TD_ROUTE_JOB_EVENTS;
    if (!strncmp(slash, "/images/", 8)) {
        const char *n = slash + 8;
        size_t nl = strlen(n);
        if (nl == 0 || nl > 4) return TD_ROUTE_UNMATCHED;
        for (size_t i = 0; i < nl; i++)
            if (!isdigit((unsigned char)n[i])) return TD_ROUTE_UNMATCHED;
        r->n = atoi(n);
        return TD_ROUTE_JOB_IMAGE;
    }
    return TD_ROUTE_UNMATCHED;
}

static void set_request_id(td_req *r) {
    const char *in = evhttp_find_header(evhttp_request_get_input_headers(r->req), "X-Request-Id");
    if (in) {
        size_t n = strlen(in);
        int ok = n > 0 && n < sizeof r->rid;
        for (size_t i = 0; ok && i < n; i++)
            if (!(isalnum((unsigned char)in[i]) || in[i] == '-' || in[i] == '_' || in[i] == '.')) ok = 0;
        if (ok) {
            memcpy(r->rid, in, n + 1);
            return;
        }
    }
    unsigned char b[8] = {0};
    if (tjob_random_bytes(b, sizeof b)) {
        static unsigned long long ctr;
        unsigned long long v = ++ctr ^ (unsigned long long)time(NULL) << 20;
        memcpy(b, &v, sizeof b);
    }
    tjob_hex(b, sizeof b, r->rid);
}

/* The key of an "Authorization: Basic base64(user:password)" header (A1111
 * --api-auth): the password, which must be one of the API keys; the user name
 * is not checked. SHA-256 of it into d; -1 when the header is malformed. */
static int basic_digest(const char *b64, unsigned char d[SHA256_DIGEST_LENGTH]) {
    while (*b64 == ' ') b64++;
    uint8_t *raw = NULL;
    size_t n = 0;
    if (strlen(b64) > 4096 || tb64_decode(b64, strlen(b64), &raw, &n, NULL, 0)) return -1;
    const uint8_t *colon = memchr(raw, ':', n);
    if (!colon) {
        free(raw);
        return -1;
    }
    SHA256(colon + 1, (size_t)(raw + n - colon - 1), d);
    OPENSSL_cleanse(raw, n);
    free(raw);
    return 0;
}

static int check_auth(td_req *r) {
    td_server *s = r->srv;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    unsigned char d[SHA256_DIGEST_LENGTH];
    if (h && TD_ROUTE_IS_SDAPI(r->route) && !strncasecmp(h, "Basic ", 6)) {
        if (basic_digest(h + 6, d)) return -1;
    } else {
        if (!h || strncasecmp(h, "Bearer ", 7)) return -1;
        const char *tok = h + 7;
        while (*tok == ' ') tok++;
        SHA256((const unsigned char *)tok, strlen(tok), d);
    }
    int found = -1;
    for (int i = 0; i < s->nkeys; i++) {
        int same = CRYPTO_memcmp(d, s->keys[i].digest, sizeof d) == 0;
        found = same ? i : found;
    }
    if (found < 0) return -1;
    snprintf(r->owner, sizeof r->owner, "%s", s->keys[found].name);
    return 0;
}

static void allow_header(td_req *r, int methods) {
    char allow[64] = "";
    if (methods & EVHTTP_REQ_GET) strcat(allow, "GET, HEAD");
    if (methods & EVHTTP_REQ_POST) strcat(allow, allow[0] ? ", POST" : "POST");
    if (methods & EVHTTP_REQ_DELETE) strcat(allow, allow[0] ? ", DELETE" : "DELETE");
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
}

static void on_request(struct evhttp_request *req, void *arg) {
    td_server *s = arg;
    td_req *r = calloc(1, sizeof *r);
    if (!r) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    r->srv = s;
    r->req = req;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    snprintf(r->owner, sizeof r->owner, "anonymous");
    set_request_id(r);
    r->next = s->inflight;
    if (s->inflight) s->inflight->prev = r;
    s->inflight = r;
    s->ninflight++;

    if (s->stopping) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        td_reply_error(r, 503, "shutting_down", NULL, "the daemon is shutting down");
        return;
    }
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    if (!path || !path[0]) {
        td_reply_error(r, 400, "bad_request", NULL, "request target is not a path");
        return;
    }
    int bad_id;
    r->route = match(path, r, &bad_id);
    int sdapi = TD_ROUTE_IS_SDAPI(r->route);
    if (r->route == TD_ROUTE_UNMATCHED) {
        if (!strncmp(path, "/sdapi/", 7)) td_sdapi_reply_error(r, 404, "HTTPException", "Not Found");
        else td_reply_error(r, 404, "not_found", NULL, "no such route");
        return;
    }
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!(route_methods[r->route] & (int)m)) {
        allow_header(r, route_methods[r->route]);
        if (sdapi) td_sdapi_reply_error(r, 405, "HTTPException", "Method Not Allowed");
        else
            td_reply_error(r, 405, "method_not_allowed", NULL, "%s is not allowed on %s", method_name(m),
                           td_route_names[r->route]);
        return;
    }
    int open = (s->cfg->open_healthz && (r->route == TD_ROUTE_HEALTHZ || r->route == TD_ROUTE_READYZ)) ||
               (s->cfg->open_metrics && r->route == TD_ROUTE_METRICS);
    if (s->nkeys > 0 && !open && check_auth(r)) {
        if (sdapi) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Basic");
            td_sdapi_reply_error(r, 401, "HTTPException", "Incorrect username or password");
            return;
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer realm=\"tessera\"");
        td_reply_error(r, 401, "unauthorized", NULL, "a valid API key is required: Authorization: Bearer <key>");
        return;
    }
    if (bad_id) {
        td_reply_error(r, 404, "not_found", "id", "no such job");
        return;
    }
    switch (r->route) {
    case TD_ROUTE_HEALTHZ: td_h_healthz(r); break;
    case TD_ROUTE_READYZ: td_h_readyz(r); break;
    case TD_ROUTE_METRICS: td_h_metrics(r); break;
    case TD_ROUTE_JOBS:
        if (m == EVHTTP_REQ_POST) td_h_jobs_post(r);
        else td_h_jobs_list(r);
        break;
    case TD_ROUTE_JOB:
        if (m == EVHTTP_REQ_DELETE) td_h_job_delete(r);
        else td_h_job_get(r);
        break;
    case TD_ROUTE_JOB_EVENTS: td_h_job_events(r); break;
    case TD_ROUTE_JOB_IMAGE: td_h_job_image(r); break;
    case TD_ROUTE_WORKERS: td_h_workers(r); break;
    default:
        if (sdapi) td_h_sdapi(r);
        else td_reply_error(r, 404, "not_found", NULL, "no such route");
        break;
    }
}

/* ---- setup -------------------------------------------------------------- */

static int add_key(td_server *s, const char *entry, const char *where, char *err, size_t errlen) {
    while (isspace((unsigned char)*entry)) entry++;
    size_t len = strlen(entry);
    while (len > 0 && isspace((unsigned char)entry[len - 1])) len--;
    if (len == 0) return 0;
    const char *colon = memchr(entry, ':', len);
    if (!colon || colon == entry || (size_t)(colon - entry) >= sizeof s->keys[0].name || colon + 1 == entry + len) {
        snprintf(err, errlen, "%s: API keys are name:key pairs (name up to 63 characters), got '%.*s...'", where,
                 (int)(len < 8 ? len : 8), entry);
        return -1;
    }
    td_apikey *k = realloc(s->keys, sizeof *s->keys * (size_t)(s->nkeys + 1));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->keys = k;
    td_apikey *nk = &s->keys[s->nkeys];
    memset(nk, 0, sizeof *nk);
    memcpy(nk->name, entry, (size_t)(colon - entry));
    for (int i = 0; i < s->nkeys; i++)
        if (!strcmp(s->keys[i].name, nk->name)) {
            snprintf(err, errlen, "%s: API key name '%s' appears twice", where, nk->name);
            return -1;
        }
    SHA256((const unsigned char *)colon + 1, (size_t)(entry + len - colon - 1), nk->digest);
    s->nkeys++;
    return 0;
}

static int load_keys(td_server *s, char *err, size_t errlen) {
    const td_settings *c = s->cfg;
    if (c->api_keys && c->api_keys[0]) {
        char *copy = strdup(c->api_keys), *save = NULL;
        if (!copy) return -1;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (add_key(s, t, "api_keys", err, errlen)) {
                free(copy);
                return -1;
            }
        free(copy);
    }
    if (c->api_keys_file && c->api_keys_file[0]) {
        FILE *f = fopen(c->api_keys_file, "r");
        if (!f) {
            snprintf(err, errlen, "api_keys_file %s: %s", c->api_keys_file, strerror(errno));
            return -1;
        }
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            char *p = line;
            while (isspace((unsigned char)*p)) p++;
            if (*p == '#' || !*p) continue;
            if (add_key(s, p, c->api_keys_file, err, errlen)) {
                fclose(f);
                return -1;
            }
        }
        fclose(f);
    }
    return 0;
}

/* The one P events subscription feeds both the SSE streams and the /sdapi/v1
 * requests waiting for their job. */
static void on_sub_message(const char *payload, size_t len, void *ctx) {
    td_server *s = ctx;
    td_sse_on_message(payload, len, s->sse);
    td_sdapi_on_message(s->sdapi, payload, len);
}

static void on_sub_ready(void *ctx) {
    td_server *s = ctx;
    td_sse_on_ready(s->sse);
    td_sdapi_on_ready(s->sdapi);
}

static int check_webhook(const char *url, void *ctx, char *err, size_t errlen) {
    const td_server *s = ctx;
    return twh_check_url(url, s->cfg->allow_private_webhooks, err, errlen);
}

int td_server_init(td_server *s, struct event_base *base, const td_settings *cfg, const tlog *log, char *err,
                   size_t errlen) {
    memset(s, 0, sizeof *s);
    s->base = base;
    s->cfg = cfg;
    s->log = *log;
    if (load_keys(s, err, errlen)) return -1;
    tjob_limits_default(&s->limits);
    s->limits.max_width = (int)cfg->max_width;
    s->limits.max_height = (int)cfg->max_height;
    s->limits.max_pixels = cfg->max_pixels;
    s->limits.max_batch = (int)cfg->max_batch;
    s->limits.max_images = (int)cfg->max_images;
    s->limits.max_steps = (int)cfg->max_steps;
    s->limits.max_tiles = (int)cfg->max_tiles;
    s->limits.max_input_bytes = cfg->max_input_bytes;
    s->limits.max_metadata_bytes = cfg->max_metadata_bytes;
    s->limits.pools = cfg->pools;
    s->limits.default_pool = cfg->default_pool;
    s->limits.check_webhook_url = check_webhook;
    s->limits.check_ctx = s;
    td_server_scripts_init(s);

    tred_url url;
    if (tred_parse_url(cfg->redis, &url, err, errlen)) return -1;
    s->metrics = td_metrics_new();
    s->sse = td_sse_new(s);
    s->sdapi = td_sdapi_new(s);
    s->http = evhttp_new(base);
    if (!s->metrics || !s->sse || !s->sdapi || !s->http) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(s->http, 64 * 1024);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)(cfg->max_body + BODY_SLACK));
    evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_timeout(s->http, (int)(cfg->http_timeout > 0 ? cfg->http_timeout : 60));
    td_redis_sub_handlers sub = {on_sub_message, on_sub_ready, s};
    s->redis = td_redis_new(base, &url, cfg->key_prefix, &s->log, &sub);
    if (!s->redis) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int is_loopback(const char *host) {
    if (!strcmp(host, "localhost")) return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int td_server_listen(td_server *s, char *err, size_t errlen) {
    const char *l = s->cfg->listen;
    char host[256];
    const char *colon;
    if (l[0] == '[') {
        const char *close = strchr(l, ']');
        if (!close || close[1] != ':' || (size_t)(close - l - 1) >= sizeof host) goto bad;
        memcpy(host, l + 1, (size_t)(close - l - 1));
        host[close - l - 1] = 0;
        colon = close + 1;
    } else {
        colon = strrchr(l, ':');
        if (!colon || (size_t)(colon - l) >= sizeof host || colon == l) goto bad;
        memcpy(host, l, (size_t)(colon - l));
        host[colon - l] = 0;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) goto bad;
    if (s->nkeys == 0 && !is_loopback(host)) {
        snprintf(err, errlen,
                 "refusing to listen on %s without API keys: anyone who can reach it could submit jobs. "
                 "Configure api_keys or api_keys_file, or listen on a loopback address (127.0.0.1, [::1])",
                 l);
        return -1;
    }
    s->bound = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
    if (!s->bound) {
        snprintf(err, errlen, "cannot listen on %s: %s", l, strerror(errno));
        return -1;
    }
    if (s->nkeys == 0)
        tlog_write(&s->log, TLOG_WARN, "no API keys configured: serving loopback only (%s), without authentication",
                   l);
    else
        tlog_write(&s->log, TLOG_INFO, "%d API key(s) configured", s->nkeys);
    tlog_write(&s->log, TLOG_INFO, "listening on %s", l);
    return 0;
bad:
    snprintf(err, errlen, "listen: '%s' is not HOST:PORT (e.g. 127.0.0.1:7860 or [::1]:7860)", l);
    return -1;
}

/* Every 100 ms during shutdown: exit the loop once nothing has been in flight
 * for 300 ms (replies and the last chunks of ended streams sit in socket
 * buffers for a moment after they are "sent"), or after DRAIN_LIMIT_S. */
static void on_drain(evutil_socket_t fd, short ev, void *arg) {
    td_server *s = arg;
    s->drain_ticks++;
    s->drain_quiet = s->ninflight == 0 ? s->drain_quiet + 1 : 0;
    if (s->drain_quiet >= 3 || s->drain_ticks > DRAIN_LIMIT_S * 10) {
        if (s->ninflight) tlog_write(&s->log, TLOG_WARN, "%d request(s) still in flight at exit", s->ninflight);
        event_base_loopexit(s->base, NULL);
    }
}

void td_server_shutdown(td_server *s) {
    if (s->stopping) return;
    s->stopping = 1;
    tlog_write(&s->log, TLOG_INFO, "shutting down: %d request(s) in flight, %d event stream(s)", s->ninflight,
               td_sse_count(s->sse));
    if (s->bound) {
        evhttp_del_accept_socket(s->http, s->bound);
        s->bound = NULL;
    }
    td_sse_close_all(s->sse);
    td_sdapi_close_all(s->sdapi);
    s->drain_ev = event_new(s->base, -1, EV_PERSIST, on_drain, s);
    struct timeval tv = {0, 100000};
    if (s->drain_ev) event_add(s->drain_ev, &tv);
    else event_base_loopexit(s->base, NULL);
}

void td_server_free(td_server *s) {
    td_sse_close_all(s->sse);
    td_sdapi_close_all(s->sdapi);
    td_redis_free(s->redis); /* pending callbacks answer 503 and release stream records */
    s->redis = NULL;
    td_sse_free(s->sse);
    s->sse = NULL;
    td_sdapi_free(s->sdapi);
    s->sdapi = NULL;
    while (s->inflight) {
        td_req *r = s->inflight;
        unlink_req(r);
        td_req_free(r);
    }
    if (s->http) evhttp_free(s->http);
    if (s->drain_ev) event_free(s->drain_ev);
    td_metrics_free(s->metrics);
    free(s->keys);
    memset(s, 0, sizeof *s);
}
