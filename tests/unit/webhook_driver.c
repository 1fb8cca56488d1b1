/* webhook_driver.c - runs the webhook dispatcher alone, for
 * tests/integration/test_webhook_dispatch.py (and valgrind).
 *
 *   webhook-driver --redis URL [--prefix P] [--seconds N] [--allow-private]
 *                  [--timeout-ms N] [--retry-window-s N] [--base-backoff-ms N]
 *                  [--max-backoff-ms N] [--poll-ms N] [--concurrency N]
 *
 * Runs until N seconds have passed (default: until SIGTERM/SIGINT), stops the
 * dispatcher, prints its counters (read just before the stop) as one JSON line
 * on stdout, exits 0. Prints "started" once the dispatcher runs.
 */
#include "webhook.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static int int_arg(const char *name, const char *v, int *out) {
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || n < 0 || n > 1000000000) {
        fprintf(stderr, "webhook-driver: %s needs a non-negative number\n", name);
        return -1;
    }
    *out = (int)n;
    return 0;
}

int main(int argc, char **argv) {
    twh_config cfg = {0};
    cfg.key_prefix = "tessera:";
    int seconds = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "--redis") && v) cfg.redis_url = v, i++;
        else if (!strcmp(a, "--prefix") && v) cfg.key_prefix = v, i++;
        else if (!strcmp(a, "--allow-private")) cfg.allow_private = 1;
        else if (!strcmp(a, "--seconds")) rc = int_arg(a, v, &seconds), i++;
        else if (!strcmp(a, "--timeout-ms")) rc = int_arg(a, v, &cfg.timeout_ms), i++;
        else if (!strcmp(a, "--retry-window-s")) rc = int_arg(a, v, &cfg.retry_window_s), i++;
        else if (!strcmp(a, "--base-backoff-ms")) rc = int_arg(a, v, &cfg.base_backoff_ms), i++;
        else if (!strcmp(a, "--max-backoff-ms")) rc = int_arg(a, v, &cfg.max_backoff_ms), i++;
        else if (!strcmp(a, "--poll-ms")) rc = int_arg(a, v, &cfg.poll_ms), i++;
        else if (!strcmp(a, "--concurrency")) rc = int_arg(a, v, &cfg.concurrency), i++;
        else {
            fprintf(stderr, "webhook-driver: unknown argument %s\n", a);
            return 2;
        }
        if (rc) return 2;
    }
    if (!cfg.redis_url) {
        fprintf(stderr, "usage: webhook-driver --redis URL [--seconds N] [--allow-private] ...\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        fprintf(stderr, "webhook-driver: curl_global_init failed\n");
        return 1;
    }
    char err[512];
    twh_dispatcher *d = twh_start(&cfg, err, sizeof err);
    if (!d) {
        fprintf(stderr, "webhook-driver: %s\n", err);
        curl_global_cleanup();
        return 1;
    }
    printf("started\n");
    fflush(stdout);
    struct timespec start, now, tick = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!got_signal) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (seconds && now.tv_sec - start.tv_sec + (now.tv_nsec - start.tv_nsec) / 1e9 >= seconds) break;
        nanosleep(&tick, NULL);
    }
    twh_stats st;
    twh_get_stats(d, &st); /* before stop: the dispatcher is freed by twh_stop */
    twh_stop(d);
    curl_global_cleanup();
    printf("{\"taken\":%lld,\"delivered\":%lld,\"retried\":%lld,\"failed\":%lld,\"refused\":%lld,"
           "\"stale\":%lld,\"redis_errors\":%lld}\n",
           st.taken, st.delivered, st.retried, st.failed, st.refused, st.stale, st.redis_errors);
    return 0;
}
