/* job_id.c - job ids and state names. An id is 12 hex digits of the creation
 * time in ms followed by 12 random hex digits: unique without coordination
 * between daemons, sortable by time, and safe in keys and URLs. */
#include "job.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char *state_names[] = {"queued", "running", "succeeded", "failed", "canceled"};

const char *tjob_state_name(tjob_state s) {
    return (unsigned)s < 5 ? state_names[s] : "unknown";
}

int tjob_state_from_name(const char *name, tjob_state *out) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, state_names[i])) {
            *out = (tjob_state)i;
            return 0;
        }
    return -1;
}

int tjob_is_valid_id(const char *s) {
    if (!s || strlen(s) != TJOB_ID_LEN) return 0;
    for (int i = 0; i < TJOB_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* Random bytes from getrandom(), drawn 256 at a time: one system call per
 * ~40 ids instead of one per id (the daemon makes an id and a request id per
 * submission). Per thread, and refilled after fork() so a child never
 * repeats its parent's bytes. */
int tjob_random_bytes(void *out, size_t n) {
    static __thread unsigned char pool[256];
    static __thread size_t avail;
    static __thread pid_t owner;
    if (n > sizeof pool) return getrandom(out, n, 0) == (ssize_t)n ? 0 : -1;
    pid_t pid = getpid();
    if (owner != pid) {
        avail = 0;
        owner = pid;
    }
    if (avail < n) {
        if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool) return -1;
        avail = sizeof pool;
    }
    avail -= n;
    memcpy(out, pool + avail, n);
    memset(pool + avail, 0, n); /* handed out once only */
    return 0;
}

void tjob_hex(const unsigned char *in, size_t n, char *out) {
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = 0;
}

int tjob_new_id(char out[TJOB_ID_LEN + 1]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long ms = (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
    unsigned char b[12];
    for (int i = 0; i < 6; i++) b[i] = (unsigned char)(ms >> (8 * (5 - i))); /* 48 bits of ms, big-endian */
    if (tjob_random_bytes(b + 6, 6)) return -1;
    tjob_hex(b, sizeof b, out);
    return 0;
}
