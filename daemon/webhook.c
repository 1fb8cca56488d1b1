/* webhook.c - the webhook dispatcher thread (see webhook.h, docs/webhooks.md).
 *
 * One thread per daemon, with its own synchronous Redis connection and a curl
 * multi handle. Every poll_ms it runs webhook_take.lua, which leases up to
 * the number of free slots of due deliveries (re-scored to now + lease so no
 * other daemon sends the same attempt), starts one POST per delivery, and
 * reports each outcome with webhook_result.lua (delivered / retry with
 * backoff / given up / refused). Delivery is at least once: if the daemon
 * dies, or Redis is unreachable for longer than the lease, the attempt is
 * made again once the lease runs out; receivers dedupe on Tessera-Delivery.
 *
 * SSRF: the dispatcher resolves the host itself, refuses the delivery when
 * any address is not public (unless allow_private), and pins the checked
 * addresses with CURLOPT_RESOLVE; an OPENSOCKETFUNCTION checks again the
 * address actually connected to. No proxy from the environment, no
 * redirects, http and https only.
 *
 * Redis down: the thread reconnects with backoff (100 ms doubling to 5 s),
 * keeping finished outcomes until they can be reported. twh_stop sets a flag
 * and wakes curl_multi_poll; the thread lets running attempts finish (they
 * are bounded by timeout_ms), reports what it can and exits.
 */
#include "webhook.h"

#include "redis.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REDIS_TIMEOUT_MS 5000
#define LEASE_MARGIN_MS 15000
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000
#define TAKE_FIELDS 9
#define MAX_PINNED 16

typedef enum { SLOT_FREE, SLOT_SENDING, SLOT_REPORT } slot_state;
typedef enum { OUT_DELIVERED, OUT_RETRY, OUT_REFUSED } outcome;

typedef struct slot {
    twh_dispatcher *d;
    slot_state state;
    CURL *easy;
    CURLU *url;
    struct curl_slist *headers, *resolve;
    char *id, *event, *urlstr, *secret, *body, *lease;
    size_t body_len;
    char errbuf[CURL_ERROR_SIZE];
    int socket_refused;
    outcome result;
    long status;
    char error[512];
} slot;

struct twh_dispatcher {
    twh_config cfg;
    char *redis_url, *prefix;
    tred_url rurl;
    redisContext *rc;
    CURLM *multi;
    pthread_t thread;
    atomic_int stop;
    slot *slots;
    int nslots;
    uint64_t rng;
    atomic_llong taken, delivered, retried, failed, refused, stale, redis_errors;
};

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double jitter(twh_dispatcher *d) { /* xorshift64*, [0,1) */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return (double)((d->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* ---- slots ------------------------------------------------------------------ */

static void slot_reset(slot *s) {
    if (s->easy) {
        curl_multi_remove_handle(s->d->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    curl_url_cleanup(s->url);
    curl_slist_free_all(s->headers);
    curl_slist_free_all(s->resolve);
    free(s->id);
    free(s->event);
    free(s->urlstr);
    free(s->secret);
    free(s->body);
    free(s->lease);
    twh_dispatcher *d = s->d;
    memset(s, 0, sizeof *s);
    s->d = d;
    s->state = SLOT_FREE;
}

static void slot_finish(slot *s, outcome o, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void slot_finish(slot *s, outcome o, long status, const char *fmt, ...) {
    s->result = o;
    s->status = status;
    s->error[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->error, sizeof s->error, fmt, ap);
        va_end(ap);
    }
    if (s->easy) {
        curl_multi_remove_handle(s->d->multi, s->easy);
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    s->state = SLOT_REPORT;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    return size * nmemb;
}

/* The last check, on the address curl actually connects to. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a) {
    slot *s = clientp;
    if (!s->d->cfg.allow_private && !twh_address_is_public(&a->addr)) {
        s->socket_refused = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Resolve host:port, check every address, and build the CURLOPT_RESOLVE pin.
 * Returns 0, or -1 (refused, error set) or -2 (resolution failed, retry). */
static int resolve_and_pin(slot *s, const char *host, const char *port) {
    char name[256];
    size_t hl = strlen(host);
    if (hl >= sizeof name) {
        slot_finish(s, OUT_REFUSED, 0, "host name too long");
        return -1;
    }
    if (hl > 2 && host[0] == '[') { /* IPv6 literal */
        memcpy(name, host + 1, hl - 2);
        name[hl - 2] = 0;
    } else {
        memcpy(name, host, hl + 1);
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    unsigned char lit[16];
    if (inet_pton(AF_INET, name, lit) == 1 || inet_pton(AF_INET6, name, lit) == 1) {
        /* a literal: nothing to resolve or pin; checked here and in open_socket */
        hints.ai_flags = AI_NUMERICHOST;
        if (getaddrinfo(name, port, &hints, &res)) {
            slot_finish(s, OUT_REFUSED, 0, "bad address %s", name);
            return -1;
        }
        int ok = s->d->cfg.allow_private || twh_address_is_public(res->ai_addr);
        freeaddrinfo(res);
        if (!ok) {
            slot_finish(s, OUT_REFUSED, 0, "%s is not a public address", name);
            return -1;
        }
        return 0;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(name, port, &hints, &res);
    if (gai) {
        slot_finish(s, OUT_RETRY, 0, "could not resolve %s: %s", name, gai_strerror(gai));
        return -2;
    }
    char pin[2048];
    int n = snprintf(pin, sizeof pin, "+%s:%s:", name, port);
    int count = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char addr[INET6_ADDRSTRLEN + 2] = "";
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        const void *raw = ai->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (!inet_ntop(ai->ai_family, raw, addr, sizeof addr)) continue;
        if (!s->d->cfg.allow_private && !twh_address_is_public(ai->ai_addr)) {
            slot_finish(s, OUT_REFUSED, 0, "%s resolves to %s, which is not a public address", name, addr);
            freeaddrinfo(res);
            return -1;
        }
        if (count >= MAX_PINNED || strstr(pin, addr)) continue;
        int w = snprintf(pin + n, sizeof pin - (size_t)n, ai->ai_family == AF_INET6 ? "%s[%s]" : "%s%s",
                         count ? "," : "", addr);
        if (w < 0 || (size_t)w >= sizeof pin - (size_t)n) break;
        n += w;
        count++;
    }
    freeaddrinfo(res);
    if (!count) {
        slot_finish(s, OUT_RETRY, 0, "could not resolve %s: no address", name);
        return -2;
    }
    s->resolve = curl_slist_append(NULL, pin);
    if (!s->resolve) {
        slot_finish(s, OUT_RETRY, 0, "out of memory");
        return -2;
    }
    return 0;
}

static int add_header(slot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_header(slot *s, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) return -1;
    struct curl_slist *l = curl_slist_append(s->headers, line);
    if (!l) return -1;
    s->headers = l;
    return 0;
}

static int has_control(const char *p) {
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return 1;
    return 0;
}

/* Start the POST of the delivery now in s; on any failure before the transfer
 * the slot goes straight to SLOT_REPORT with its outcome. */
static void slot_start(slot *s) {
    twh_dispatcher *d = s->d;
    char err[256];
    if (has_control(s->id) || has_control(s->event)) { /* would break the header lines */
        slot_finish(s, OUT_REFUSED, 0, "delivery id or event has control characters");
        return;
    }
    if (twh_check_url(s->urlstr, d->cfg.allow_private, err, sizeof err)) {
        slot_finish(s, OUT_REFUSED, 0, "%s", err);
        return;
    }
    char *host = NULL, *port = NULL;
    s->url = curl_url();
    if (!s->url || curl_url_set(s->url, CURLUPART_URL, s->urlstr, 0) != CURLUE_OK ||
        curl_url_get(s->url, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(s->url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        slot_finish(s, OUT_REFUSED, 0, "webhook url cannot be parsed");
        goto out;
    }
    for (char *p = host; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    if (curl_url_set(s->url, CURLUPART_HOST, host, 0) != CURLUE_OK) {
        slot_finish(s, OUT_REFUSED, 0, "webhook url host cannot be used");
        goto out;
    }
    if (resolve_and_pin(s, host, port)) goto out;

    char sig[160];
    if (twh_sign(s->secret, (long long)time(NULL), s->body, s->body_len, sig, sizeof sig) ||
        add_header(s, "Content-Type: application/json") || add_header(s, "Tessera-Signature: %s", sig) ||
        add_header(s, "Tessera-Delivery: %s", s->id) || add_header(s, "Tessera-Event: %s", s->event) ||
        add_header(s, "Expect:")) {
        slot_finish(s, OUT_RETRY, 0, "could not build the request headers");
        goto out;
    }
    s->easy = curl_easy_init();
    if (!s->easy) {
        slot_finish(s, OUT_RETRY, 0, "out of memory");
        goto out;
    }
    CURL *e = s->easy;
    CURLcode c = CURLE_OK;
#define SET(opt, val) \
    if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_PRIVATE, s);
    SET(CURLOPT_CURLU, s->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)d->cfg.timeout_ms);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_RESOLVE, s->resolve);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SET(CURLOPT_OPENSOCKETDATA, s);
    SET(CURLOPT_HTTPHEADER, s->headers);
    SET(CURLOPT_USERAGENT, "Tessera-Webhook/1");
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, s->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    SET(CURLOPT_WRITEFUNCTION, discard_body);
    SET(CURLOPT_ERRORBUFFER, s->errbuf);
#undef SET
    if (c != CURLE_OK) {
        slot_finish(s, OUT_RETRY, 0, "curl setup: %s", curl_easy_strerror(c));
        goto out;
    }
    CURLMcode mc = curl_multi_add_handle(d->multi, e);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
        slot_finish(s, OUT_RETRY, 0, "curl: %s", curl_multi_strerror(mc));
        goto out;
    }
    s->state = SLOT_SENDING;
out:
    curl_free(host);
    curl_free(port);
}

/* A transfer ended: classify it. */
static void slot_done(slot *s, CURLcode res) {
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    if (s->socket_refused)
        slot_finish(s, OUT_REFUSED, 0, "connection to a non-public address refused");
    else if (res != CURLE_OK)
        slot_finish(s, OUT_RETRY, 0, "%s%s%s", curl_easy_strerror(res), s->errbuf[0] ? ": " : "", s->errbuf);
    else if (code >= 200 && code < 300)
        slot_finish(s, OUT_DELIVERED, code, NULL);
    else
        slot_finish(s, OUT_RETRY, code, "HTTP %ld", code);
}

/* ---- Redis ------------------------------------------------------------------- */

static void redis_failed(twh_dispatcher *d, const char *err) {
    atomic_fetch_add(&d->redis_errors, 1);
    if (d->rc && d->rc->err) {
        fprintf(stderr, "webhook: %s; reconnecting\n", err);
        redisFree(d->rc);
        d->rc = NULL;
    } else {
        fprintf(stderr, "webhook: %s\n", err);
    }
}

/* Report the outcome of every finished slot. Stops at the first connection error. */
static void report(twh_dispatcher *d) {
    for (int i = 0; i < d->nslots && d->rc; i++) {
        slot *s = &d->slots[i];
        if (s->state != SLOT_REPORT) continue;
        static const char *const names[] = {"delivered", "retry", "refused"};
        char status[24], base[24], max[24], window[24], jit[32];
        snprintf(status, sizeof status, "%ld", s->status);
        snprintf(base, sizeof base, "%d", d->cfg.base_backoff_ms);
        snprintf(max, sizeof max, "%d", d->cfg.max_backoff_ms);
        snprintf(window, sizeof window, "%lld", (long long)d->cfg.retry_window_s * 1000);
        snprintf(jit, sizeof jit, "%.6f", jitter(d));
        const char *argv[] = {d->prefix, s->id, s->lease, names[s->result], status, s->error,
                              base, max, window, jit};
        char err[512];
        redisReply *r = tred_script(d->rc, "webhook_result", 0, 10, argv, NULL, err, sizeof err);
        if (!r) {
            redis_failed(d, err);
            if (!d->rc) return;
            slot_reset(s); /* a script error will not go away; the lease expires */
            continue;
        }
        const char *what = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                                   r->element[0]->type == REDIS_REPLY_STRING
                               ? r->element[0]->str
                               : "";
        if (!strcmp(what, "delivered"))
            atomic_fetch_add(&d->delivered, 1);
        else if (!strcmp(what, "retried"))
            atomic_fetch_add(&d->retried, 1);
        else if (!strcmp(what, "failed"))
            atomic_fetch_add(&d->failed, 1);
        else if (!strcmp(what, "refused"))
            atomic_fetch_add(&d->refused, 1);
        else
            atomic_fetch_add(&d->stale, 1);
        freeReplyObject(r);
        slot_reset(s);
    }
}

/* Take up to the number of free slots of due deliveries and start them.
 * Returns how many were taken, or -1. */
static int take(twh_dispatcher *d) {
    int free_slots = 0;
    for (int i = 0; i < d->nslots; i++) free_slots += d->slots[i].state == SLOT_FREE;
    if (!free_slots) return 0;
    char n[16], lease[24];
    snprintf(n, sizeof n, "%d", free_slots);
    snprintf(lease, sizeof lease, "%d", d->cfg.timeout_ms + LEASE_MARGIN_MS);
    const char *argv[] = {d->prefix, n, lease};
    char err[512];
    redisReply *r = tred_script(d->rc, "webhook_take", 0, 3, argv, NULL, err, sizeof err);
    if (!r) {
        redis_failed(d, err);
        return -1;
    }
    int taken = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        int next = 0;
        for (size_t i = 0; i + TAKE_FIELDS <= r->elements; i += TAKE_FIELDS) {
            redisReply **f = r->element + i;
            int ok = 1;
            for (int k = 0; k < TAKE_FIELDS; k++) ok &= f[k]->type == REDIS_REPLY_STRING;
            while (next < d->nslots && d->slots[next].state != SLOT_FREE) next++;
            if (!ok || next >= d->nslots) continue; /* cannot happen; the lease expires */
            slot *s = &d->slots[next];
            /* f: id, job, event, url, secret, body, attempts, created_at, lease */
            s->id = dupn(f[0]->str, f[0]->len);
            s->event = dupn(f[2]->str, f[2]->len);
            s->urlstr = dupn(f[3]->str, f[3]->len);
            s->secret = dupn(f[4]->str, f[4]->len);
            s->body = dupn(f[5]->str, f[5]->len);
            s->body_len = f[5]->len;
            s->lease = dupn(f[8]->str, f[8]->len);
            taken++;
            atomic_fetch_add(&d->taken, 1);
            if (!s->id || !s->event || !s->urlstr || !s->secret || !s->body || !s->lease) {
                if (s->id && s->lease)
                    slot_finish(s, OUT_RETRY, 0, "out of memory");
                else
                    slot_reset(s);
                continue;
            }
            slot_start(s);
        }
    }
    freeReplyObject(r);
    return taken;
}

static void ensure_redis(twh_dispatcher *d, long long now, long long *next_connect, int *backoff) {
    if (d->rc || now < *next_connect) return;
    char err[512];
    d->rc = tred_connect(&d->rurl, REDIS_TIMEOUT_MS, err, sizeof err);
    if (d->rc) {
        if (*backoff) fprintf(stderr, "webhook: redis connection restored\n");
        *backoff = 0;
        return;
    }
    atomic_fetch_add(&d->redis_errors, 1);
    if (!*backoff) fprintf(stderr, "webhook: %s; retrying\n", err);
    *backoff = *backoff ? (*backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : *backoff * 2) : RECONNECT_MIN_MS;
    *next_connect = now + *backoff;
}

/* ---- the thread ---------------------------------------------------------------- */

static void *run(void *arg) {
    twh_dispatcher *d = arg;
    long long next_take = 0, next_connect = 0;
    int backoff = 0;
    for (;;) {
        int stopping = atomic_load(&d->stop);
        int sending = 0, reporting = 0;
        for (int i = 0; i < d->nslots; i++) {
            sending += d->slots[i].state == SLOT_SENDING;
            reporting += d->slots[i].state == SLOT_REPORT;
        }
        if (stopping && !sending) {
            if (reporting && d->rc) report(d);
            break;
        }
        long long now = mono_ms();
        ensure_redis(d, now, &next_connect, &backoff);
        if (d->rc) report(d);
        if (d->rc && !stopping && now >= next_take) {
            int got = take(d);
            next_take = got > 0 ? now : now + d->cfg.poll_ms;
        }
        int running = 0;
        curl_multi_perform(d->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(d->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            slot *s = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (s && s->state == SLOT_SENDING) slot_done(s, m->data.result);
        }
        if (d->rc) report(d);

        now = mono_ms();
        long long wait = 1000;
        if (!stopping && d->rc && next_take - now < wait) wait = next_take - now;
        if (!d->rc && next_connect - now < wait) wait = next_connect - now;
        if (wait < 0) wait = 0;
        if (wait > 0 || running) curl_multi_poll(d->multi, NULL, 0, (int)wait, NULL);
    }
    for (int i = 0; i < d->nslots; i++) slot_reset(&d->slots[i]);
    if (d->rc) redisFree(d->rc);
    d->rc = NULL;
    return NULL;
}

static void destroy(twh_dispatcher *d) {
    if (!d) return;
    if (d->multi) curl_multi_cleanup(d->multi);
    free(d->slots);
    free(d->redis_url);
    free(d->prefix);
    free(d);
}

twh_dispatcher *twh_start(const twh_config *cfg, char *err, size_t errlen) {
    if (!cfg || !cfg->redis_url) {
        snprintf(err, errlen, "webhook dispatcher: no redis url");
        return NULL;
    }
    twh_dispatcher *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->cfg = *cfg;
    twh_config *c = &d->cfg;
    if (c->timeout_ms <= 0) c->timeout_ms = TWH_DEFAULT_TIMEOUT_MS;
    if (c->retry_window_s <= 0) c->retry_window_s = TWH_DEFAULT_RETRY_WINDOW_S;
    if (c->base_backoff_ms <= 0) c->base_backoff_ms = TWH_DEFAULT_BASE_BACKOFF_MS;
    if (c->max_backoff_ms <= 0) c->max_backoff_ms = TWH_DEFAULT_MAX_BACKOFF_MS;
    if (c->max_backoff_ms < c->base_backoff_ms) c->max_backoff_ms = c->base_backoff_ms;
    if (c->poll_ms <= 0) c->poll_ms = TWH_DEFAULT_POLL_MS;
    if (c->concurrency <= 0) c->concurrency = TWH_DEFAULT_CONCURRENCY;
    if (c->concurrency > 1024) c->concurrency = 1024;
    if (c->timeout_ms > 600000) c->timeout_ms = 600000;
    d->redis_url = strdup(cfg->redis_url);
    d->prefix = strdup(cfg->key_prefix ? cfg->key_prefix : "tessera:");
    d->nslots = c->concurrency;
    d->slots = calloc((size_t)d->nslots, sizeof *d->slots);
    d->multi = curl_multi_init();
    if (!d->redis_url || !d->prefix || !d->slots || !d->multi) {
        snprintf(err, errlen, "out of memory");
        destroy(d);
        return NULL;
    }
    c->redis_url = d->redis_url;
    c->key_prefix = d->prefix;
    if (tred_parse_url(d->redis_url, &d->rurl, err, errlen)) {
        destroy(d);
        return NULL;
    }
    curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)d->nslots);
    for (int i = 0; i < d->nslots; i++) {
        d->slots[i].d = d;
        d->slots[i].state = SLOT_FREE;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    d->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)d ^ (uint64_t)getpid();
    if (!d->rng) d->rng = 0x9e3779b97f4a7c15ULL;
    atomic_init(&d->stop, 0);
    int e = pthread_create(&d->thread, NULL, run, d);
    if (e) {
        snprintf(err, errlen, "webhook dispatcher: pthread_create: %s", strerror(e));
        destroy(d);
        return NULL;
    }
    return d;
}

void twh_stop(twh_dispatcher *d) {
    if (!d) return;
    atomic_store(&d->stop, 1);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    destroy(d);
}

void twh_get_stats(twh_dispatcher *d, twh_stats *out) {
    memset(out, 0, sizeof *out);
    if (!d) return;
    out->taken = atomic_load(&d->taken);
    out->delivered = atomic_load(&d->delivered);
    out->retried = atomic_load(&d->retried);
    out->failed = atomic_load(&d->failed);
    out->refused = atomic_load(&d->refused);
    out->stale = atomic_load(&d->stale);
    out->redis_errors = atomic_load(&d->redis_errors);
}
