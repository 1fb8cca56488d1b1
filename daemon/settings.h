/* settings.h - every tesserad setting, one field per row of the table in
 * daemon_main.c (proto/config.h: defaults < INI file < TESSERA_* env < --flags).
 *
 * config/tesserad.ini documents each key with its default; `tesserad --help`
 * prints the same table. Integers are long long because TCFG_INT is.
 */
#ifndef TESSERA_DAEMON_SETTINGS_H
#define TESSERA_DAEMON_SETTINGS_H

typedef struct {
    /* [http] */
    char *listen;              /* HOST:PORT, [v6]:PORT */
    long long max_body;        /* bytes of a request body */
    char *public_url;          /* base of links; "" = relative links */
    long long http_timeout;    /* seconds a connection may stay idle mid-request */
    /* [redis] */
    char *redis;               /* redis://... or unix://... */
    char *key_prefix;
    /* [jobs] */
    long long max_width, max_height, max_pixels, max_batch, max_images, max_steps, max_tiles;
    long long max_input_bytes, max_metadata_bytes;
    long long max_queue_depth, max_attempts, retention, idempotency_ttl;
    char *pools, *default_pool;
    /* [auth] */
    char *api_keys;            /* name:key,name:key */
    char *api_keys_file;       /* one name:key per line */
    int open_metrics, open_healthz;
    /* [webhooks] */
    int webhooks, allow_private_webhooks;
    long long webhook_timeout_ms, webhook_retry_window_s, webhook_base_backoff_ms,
        webhook_max_backoff_ms, webhook_poll_ms, webhook_concurrency;
    /* [sdapi] */
    char *models;              /* shared models directory ("" = none): sd-models, sd-vae, loras, embeddings */
    long long sdapi_timeout_s; /* longest wait of a /sdapi/v1 render request for its job */
    /* [log] */
    char *log_level;
} td_settings;

#endif
