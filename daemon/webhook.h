/* webhook.h - signed webhook deliveries, persisted in Redis, with retries.
 *
 * Jobs that carry webhook {url, events, secret} get a delivery queued by the
 * Lua scripts (proto/lua/common.lua: webhook_enqueue) into P webhooks:due /
 * P webhook:<id>. Every daemon runs one dispatcher thread: it takes due
 * deliveries with a lease (so two daemons never send the same attempt at once),
 * POSTs them with libcurl, and on a non-2xx answer or a timeout schedules the
 * next attempt with exponential backoff and jitter until retry_window_s has
 * passed since the delivery was created. A daemon restart loses nothing: the
 * deliveries are in Redis.
 *
 * Each POST carries
 *   Content-Type: application/json
 *   Tessera-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *   Tessera-Delivery: <delivery id>      (unique per delivery, same on retries)
 *   Tessera-Event: <event>
 * Targets that resolve to private, loopback, link-local, multicast or
 * otherwise non-global addresses are refused unless allow_private is set (SSRF);
 * the address checked is the address connected to (pinned with CURLOPT_RESOLVE).
 */
#ifndef TESSERA_WEBHOOK_H
#define TESSERA_WEBHOOK_H

#include <stddef.h>

typedef struct twh_dispatcher twh_dispatcher;

typedef struct {
    const char *redis_url;
    const char *key_prefix;
    int allow_private;     /* allow private/loopback/link-local targets */
    int timeout_ms;        /* per attempt */
    int retry_window_s;    /* give up this long after the delivery was created */
    int base_backoff_ms;   /* first retry delay; doubles each attempt, with jitter */
    int max_backoff_ms;
    int poll_ms;           /* how often to look for due deliveries */
    int concurrency;       /* deliveries in flight at once */
} twh_config;

/* Defaults used for config fields <= 0 (docs/webhooks.md lists the keys). */
#define TWH_DEFAULT_TIMEOUT_MS 10000
#define TWH_DEFAULT_RETRY_WINDOW_S 86400
#define TWH_DEFAULT_BASE_BACKOFF_MS 5000
#define TWH_DEFAULT_MAX_BACKOFF_MS 3600000
#define TWH_DEFAULT_POLL_MS 500
#define TWH_DEFAULT_CONCURRENCY 16

/* Counters of one dispatcher since twh_start (the farm-wide ones are in P stats). */
typedef struct {
    long long taken;        /* deliveries taken from Redis */
    long long delivered;    /* 2xx */
    long long retried;      /* failed attempt, another one scheduled */
    long long failed;       /* gave up after retry_window_s */
    long long refused;      /* target not allowed */
    long long stale;        /* outcome reported after the lease ran out: ignored */
    long long redis_errors; /* failed connects and commands */
} twh_stats;

/* Start the dispatcher thread. Needs curl_global_init(CURL_GLOBAL_DEFAULT)
 * done by main before any thread starts. Redis need not be up: the thread
 * connects, and reconnects with backoff. Returns NULL with err on bad config. */
twh_dispatcher *twh_start(const twh_config *cfg, char *err, size_t errlen);
/* Stop it: in-flight attempts finish or time out; nothing is lost. NULL is a no-op. */
void twh_stop(twh_dispatcher *d);
/* A snapshot of the dispatcher's counters (safe from any thread). */
void twh_get_stats(twh_dispatcher *d, twh_stats *out);

/* "t=<t>,v1=<hex>" into out (at least 128 bytes). */
int twh_sign(const char *secret, long long t, const char *body, size_t len, char *out, size_t outlen);

/* Check a webhook URL when a job is submitted: http or https, a host, a port in
 * range, no credentials; and when the host is a literal IP address, that it is
 * allowed. Names are checked again at delivery time, after resolution. */
int twh_check_url(const char *url, int allow_private, char *err, size_t errlen);

/* Whether a resolved address (AF_INET/AF_INET6 sockaddr) is a global unicast
 * address a webhook may be sent to. */
struct sockaddr;
int twh_address_is_public(const struct sockaddr *sa);

#endif
