/* job_id.c - job ids and state names. An id is 12 hex digits of the creation
 * time in ms followed by 12 random hex digits: unique without coordination
 * between daemons, sortable by time, and safe in keys and URLs. */
#include "job.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

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

int tjob_new_id(char out[TJOB_ID_LEN + 1]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long ms = (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -1;
    snprintf(out, TJOB_ID_LEN + 1, "%012llx%02x%02x%02x%02x%02x%02x", ms & 0xffffffffffffULL, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    return 0;
}
