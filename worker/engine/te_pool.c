/* te_pool.c - fork-join pool: generation counter + spin-then-sleep workers. */
#include "te_pool.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SPIN_ITERS 20000

struct te_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int pending;
    int stop;
    te_pool_fn fn;
    void *arg;
    int64_t items;
    int active;     /* threads taking part in the current job */
};

typedef struct { te_pool *p; int tid; } worker_arg;

static void run_chunk(te_pool *p, int tid) {
    if (tid >= p->active) return;
    int64_t b = p->items * tid / p->active, e = p->items * (tid + 1) / p->active;
    if (e > b) p->fn(p->arg, b, e, tid);
}

static void *worker(void *va) {
    worker_arg *wa = va;
    te_pool *p = wa->p;
    int tid = wa->tid;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && spins < SPIN_ITERS) {
            __builtin_ia32_pause();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (p->stop) return NULL;
        seen = g;
        run_chunk(p, tid);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
    }
}

te_pool *te_pool_create(int n) {
    if (n < 1) n = 1;
    te_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->th = calloc((size_t)n, sizeof(pthread_t));
    if (!p->th) { free(p); return NULL; }
    for (int i = 1; i < n; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { p->n = i; te_pool_destroy(p); return NULL; }
        wa->p = p; wa->tid = i;
        if (pthread_create(&p->th[i], NULL, worker, wa) != 0) { free(wa); p->n = i; te_pool_destroy(p); return NULL; }
    }
    return p;
}

void te_pool_destroy(te_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->th);
    free(p);
}

int te_pool_threads(const te_pool *p) { return p->n; }

void te_pool_for(te_pool *p, int64_t n, te_pool_fn fn, void *arg) {
    if (n <= 0) return;
    if (p->n == 1 || n == 1) { fn(arg, 0, n, 0); return; }
    p->fn = fn;
    p->arg = arg;
    p->items = n;
    p->active = n < p->n ? (int)n : p->n;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, 0);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) __builtin_ia32_pause();
}
