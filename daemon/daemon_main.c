/* daemon_main.c - tesserad: the HTTP/JSON front of Tessera.
 *
 * The settings table below is the single description of every option: it
 * fills td_settings from defaults, the INI file (--config), TESSERA_* and
 * --flags (proto/config.h), and prints --help. config/tesserad.ini documents
 * the same keys. main() wires the event loop: the HTTP server and Redis
 * (server.c), the webhook dispatcher thread (webhook.c) and the signals that
 * stop it all gracefully.
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "server.h"
#include "settings.h"
#include "webhook.h"

#define O(sec, key, type, field, def, help) {sec, key, type, offsetof(td_settings, field), def, help}

static const tcfg_option options[] = {
    O("http", "listen", TCFG_STRING, listen, "127.0.0.1:7860", "address to listen on, HOST:PORT or [v6]:PORT"),
    O("http", "max_body", TCFG_BYTES, max_body, "50M", "largest request body accepted (413 above)"),
    O("http", "public_url", TCFG_STRING, public_url, "", "base URL of links in answers; empty: relative links"),
    O("http", "http_timeout", TCFG_INT, http_timeout, "60", "seconds a connection may stall mid-request"),
    O("redis", "redis", TCFG_STRING, redis, "redis://127.0.0.1:6379/0",
      "Redis URL: redis://[:password@]host[:port][/db] or unix:///path.sock[?db=N]"),
    O("redis", "key_prefix", TCFG_STRING, key_prefix, "tessera:", "prefix of every Redis key"),
    O("jobs", "max_width", TCFG_INT, max_width, "8192", "largest image width"),
    O("jobs", "max_height", TCFG_INT, max_height, "8192", "largest image height"),
    O("jobs", "max_pixels", TCFG_INT, max_pixels, "67108864", "largest width*height of any image"),
    O("jobs", "max_batch", TCFG_INT, max_batch, "16", "most images per forward pass (batch_size)"),
    O("jobs", "max_images", TCFG_INT, max_images, "64", "most images per job (batch_size * n_iter)"),
    O("jobs", "max_steps", TCFG_INT, max_steps, "150", "most sampling steps of a job"),
    O("jobs", "max_tiles", TCFG_INT, max_tiles, "1024", "most tiles of an sd_upscale job"),
    O("jobs", "max_input_bytes", TCFG_BYTES, max_input_bytes, "32M", "largest decoded input image"),
    O("jobs", "max_metadata_bytes", TCFG_BYTES, max_metadata_bytes, "16K", "largest client metadata object"),
    O("jobs", "max_queue_depth", TCFG_INT, max_queue_depth, "1000", "queued jobs per pool before 429; 0 = unlimited"),
    O("jobs", "max_attempts", TCFG_INT, max_attempts, "3", "runs of a job before it fails (lost workers)"),
    O("jobs", "retention", TCFG_INT, retention, "86400", "seconds a finished job and its images are kept"),
    O("jobs", "idempotency_ttl", TCFG_INT, idempotency_ttl, "86400", "seconds an Idempotency-Key is remembered"),
    O("jobs", "pools", TCFG_STRING, pools, "default", "comma-separated pools jobs may name"),
    O("jobs", "default_pool", TCFG_STRING, default_pool, "default", "pool of jobs that name none"),
    O("auth", "api_keys", TCFG_STRING, api_keys, "", "comma-separated name:key pairs; none: loopback only, no auth"),
    O("auth", "api_keys_file", TCFG_STRING, api_keys_file, "", "file of name:key lines (# comments)"),
    O("auth", "open_metrics", TCFG_BOOL, open_metrics, "true", "serve /metrics without an API key"),
    O("auth", "open_healthz", TCFG_BOOL, open_healthz, "true", "serve /healthz and /readyz without an API key"),
    O("webhooks", "webhooks", TCFG_BOOL, webhooks, "true", "run the webhook dispatcher in this daemon"),
    O("webhooks", "allow_private_webhooks", TCFG_BOOL, allow_private_webhooks, "false",
      "allow webhooks to private/loopback/link-local addresses"),
    O("webhooks", "webhook_timeout_ms", TCFG_INT, webhook_timeout_ms, "10000", "timeout of one delivery attempt"),
    O("webhooks", "webhook_retry_window_s", TCFG_INT, webhook_retry_window_s, "86400",
      "give up on a delivery this long after it was created"),
    O("webhooks", "webhook_base_backoff_ms", TCFG_INT, webhook_base_backoff_ms, "1000", "first retry delay"),
    O("webhooks", "webhook_max_backoff_ms", TCFG_INT, webhook_max_backoff_ms, "600000", "longest retry delay"),
    O("webhooks", "webhook_poll_ms", TCFG_INT, webhook_poll_ms, "250", "how often to look for due deliveries"),
    O("webhooks", "webhook_concurrency", TCFG_INT, webhook_concurrency, "8", "deliveries in flight at once"),
    O("sdapi", "models", TCFG_STRING, models, "",
      "models directory the workers share (/sdapi/v1/sd-models, sd-vae, loras, embeddings); empty: none"),
    O("sdapi", "sdapi_timeout_s", TCFG_INT, sdapi_timeout_s, "3600",
      "seconds a /sdapi/v1 render request waits for its job before 504 (the job is canceled)"),
    O("log", "log_level", TCFG_STRING, log_level, "info", "debug, info, warn or error"),
};

static const tcfg_spec spec = {"tesserad", "the HTTP/JSON front of Tessera, a Stable Diffusion render farm", options,
                               (int)(sizeof options / sizeof options[0])};

static int check_settings(const td_settings *c, char *err, size_t n) {
#define NEED(cond, ...)                                                                                         \
    if (!(cond)) {                                                                                              \
        snprintf(err, n, __VA_ARGS__);                                                                          \
        return -1;                                                                                              \
    }
    NEED(c->max_body > 0, "max_body must be positive");
    NEED(c->max_width > 0 && c->max_width <= 65535, "max_width must be 1..65535");
    NEED(c->max_height > 0 && c->max_height <= 65535, "max_height must be 1..65535");
    NEED(c->max_pixels > 0, "max_pixels must be positive");
    NEED(c->max_batch > 0 && c->max_batch <= 1000, "max_batch must be 1..1000");
    NEED(c->max_images > 0 && c->max_images <= 10000, "max_images must be 1..10000");
    NEED(c->max_steps > 0 && c->max_steps <= 10000, "max_steps must be 1..10000");
    NEED(c->max_tiles > 0 && c->max_tiles <= 100000, "max_tiles must be 1..100000");
    NEED(c->max_queue_depth >= 0, "max_queue_depth must be 0 (unlimited) or more");
    NEED(c->max_attempts > 0 && c->max_attempts <= 100, "max_attempts must be 1..100");
    NEED(c->retention > 0, "retention must be positive");
    NEED(c->idempotency_ttl > 0, "idempotency_ttl must be positive");
    NEED(c->key_prefix[0], "key_prefix must not be empty");
    NEED(c->pools[0], "pools must name at least one pool");
    NEED(c->sdapi_timeout_s > 0 && c->sdapi_timeout_s <= 7 * 86400, "sdapi_timeout_s must be 1..604800");
    NEED(c->webhook_concurrency > 0 && c->webhook_poll_ms > 0, "webhook_concurrency and webhook_poll_ms must be positive");
#undef NEED
    return 0;
}

static void on_signal(evutil_socket_t sig, short ev, void *arg) {
    td_server *s = arg;
    tlog_write(&s->log, TLOG_INFO, "signal %d received", (int)sig);
    td_server_shutdown(s);
}

int main(int argc, char **argv) {
    td_settings cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[1024];
    tcfg_result lr = tcfg_load(&spec, &cfg, argc, argv, NULL, NULL, err, sizeof err);
    if (lr == TCFG_HELP) {
        tcfg_free(&spec, &cfg);
        return 0;
    }
    tlog log = {"tesserad", TLOG_INFO};
    if (lr == TCFG_ERROR) {
        fprintf(stderr, "tesserad: %s\n", err);
        tcfg_free(&spec, &cfg);
        return 2;
    }
    if (tlog_level_from_name(cfg.log_level, &log.threshold)) {
        fprintf(stderr, "tesserad: log_level '%s' is not one of debug, info, warn, error\n", cfg.log_level);
        tcfg_free(&spec, &cfg);
        return 2;
    }
    if (check_settings(&cfg, err, sizeof err)) {
        fprintf(stderr, "tesserad: %s\n", err);
        tcfg_free(&spec, &cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    /* epoll with a changelist: the read/write interest changes libevent makes
     * while serving a request are folded into one epoll_ctl per descriptor
     * per loop iteration instead of one system call each */
    struct event_config *ecfg = event_config_new();
    if (ecfg) event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = ecfg ? event_base_new_with_config(ecfg) : NULL;
    if (ecfg) event_config_free(ecfg);
    if (!base) base = event_base_new();
    if (!base) {
        fprintf(stderr, "tesserad: cannot create the event loop\n");
        tcfg_free(&spec, &cfg);
        return 1;
    }
    td_server srv;
    int rc = 0;
    twh_dispatcher *wh = NULL;
    if (td_server_init(&srv, base, &cfg, &log, err, sizeof err) || td_server_listen(&srv, err, sizeof err)) {
        tlog_write(&log, TLOG_ERROR, "%s", err);
        rc = 2;
        goto out;
    }
    if (cfg.webhooks) {
        twh_config wc = {cfg.redis,
                         cfg.key_prefix,
                         cfg.allow_private_webhooks,
                         (int)cfg.webhook_timeout_ms,
                         (int)cfg.webhook_retry_window_s,
                         (int)cfg.webhook_base_backoff_ms,
                         (int)cfg.webhook_max_backoff_ms,
                         (int)cfg.webhook_poll_ms,
                         (int)cfg.webhook_concurrency};
        wh = twh_start(&wc, err, sizeof err);
        if (!wh) {
            tlog_write(&log, TLOG_ERROR, "webhook dispatcher: %s", err);
            rc = 2;
            goto out;
        }
    }
    srv.sigterm_ev = evsignal_new(base, SIGTERM, on_signal, &srv);
    srv.sigint_ev = evsignal_new(base, SIGINT, on_signal, &srv);
    if (srv.sigterm_ev) event_add(srv.sigterm_ev, NULL);
    if (srv.sigint_ev) event_add(srv.sigint_ev, NULL);
    tlog_write(&log, TLOG_INFO, "ready: redis %s, prefix %s, pools %s%s", cfg.redis, cfg.key_prefix, cfg.pools,
               wh ? ", webhooks on" : "");
    event_base_dispatch(base);
    tlog_write(&log, TLOG_INFO, "stopped accepting; cleaning up");
out:
    if (wh) twh_stop(wh);
    if (srv.sigterm_ev) event_free(srv.sigterm_ev);
    if (srv.sigint_ev) event_free(srv.sigint_ev);
    srv.sigterm_ev = srv.sigint_ev = NULL;
    td_server_free(&srv);
    event_base_free(base);
    libevent_global_shutdown();
    tcfg_free(&spec, &cfg);
    if (rc == 0) tlog_write(&log, TLOG_INFO, "bye");
    return rc;
}
