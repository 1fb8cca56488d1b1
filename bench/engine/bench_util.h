/* bench_util.h - shared pieces of the engine benchmarks: clock, the FMA
 * ceiling (16 independent zmm FMA chains per thread, 1 and N threads), and
 * CPU backend setup. Header-only so each bench is one file. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "te_cpu.h"
#include "te_ops.h"

static inline double bu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* 16 independent FMA chains on zmm0-15 (2 FMA ports x 4-cycle latency needs
 * >= 8 in flight), written in asm so no spills or stores sneak into the loop.
 * Returns flops. */
__attribute__((target("avx512f"), noinline)) static double bu_fma_chains(int64_t iters) {
    int64_t n = iters;
    __asm__ volatile(
        "vpxord %%zmm0, %%zmm0, %%zmm0\n"
        "vmovaps %%zmm0, %%zmm1\n vmovaps %%zmm0, %%zmm2\n vmovaps %%zmm0, %%zmm3\n"
        "vmovaps %%zmm0, %%zmm4\n vmovaps %%zmm0, %%zmm5\n vmovaps %%zmm0, %%zmm6\n vmovaps %%zmm0, %%zmm7\n"
        "vmovaps %%zmm0, %%zmm8\n vmovaps %%zmm0, %%zmm9\n vmovaps %%zmm0, %%zmm10\n vmovaps %%zmm0, %%zmm11\n"
        "vmovaps %%zmm0, %%zmm12\n vmovaps %%zmm0, %%zmm13\n vmovaps %%zmm0, %%zmm14\n vmovaps %%zmm0, %%zmm15\n"
        "vmovaps %%zmm0, %%zmm16\n vmovaps %%zmm0, %%zmm17\n"
        "1:\n"
        "vfmadd231ps %%zmm16, %%zmm17, %%zmm0\n vfmadd231ps %%zmm16, %%zmm17, %%zmm1\n"
        "vfmadd231ps %%zmm16, %%zmm17, %%zmm2\n vfmadd231ps %%zmm16, %%zmm17, %%zmm3\n"
        "vfmadd231ps %%zmm16, %%zmm17, %%zmm4\n vfmadd231ps %%zmm16, %%zmm17, %%zmm5\n"
        "vfmadd231ps %%zmm16, %%zmm17, %%zmm6\n vfmadd231ps %%zmm16, %%zmm17, %%zmm7\n"
        "vfmadd231ps %%zmm16, %%zmm17, %%zmm8\n vfmadd231ps %%zmm16, %%zmm17, %%zmm9\n"
        "vfmadd231ps %%zmm16, %%zmm17, %%zmm10\n vfmadd231ps %%zmm16, %%zmm17, %%zmm11\n"
        "vfmadd231ps %%zmm16, %%zmm17, %%zmm12\n vfmadd231ps %%zmm16, %%zmm17, %%zmm13\n"
        "vfmadd231ps %%zmm16, %%zmm17, %%zmm14\n vfmadd231ps %%zmm16, %%zmm17, %%zmm15\n"
        "dec %0\n jnz 1b\n"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "cc");
    return (double)iters * 16 * 16 * 2;
}

typedef struct { int64_t iters; double t; } bu_fma_arg;
static void *bu_fma_thread(void *p) {
    bu_fma_arg *a = p;
    double t0 = bu_now();
    bu_fma_chains(a->iters);
    a->t = bu_now() - t0;
    return NULL;
}

/* GFLOP/s of the FMA chains on n threads (best of 5 runs of ~0.1 s). The
 * machine is a shared VM whose clock moves by +-30% between seconds, so the
 * benches take the ceiling as the best of measurements before AND after their
 * own runs (bu_fma_peak called twice, max kept) and print fractions last. */
static inline double bu_fma_peak(int n) {
    if (!__builtin_cpu_supports("avx512f")) return 0;
    int64_t iters = 15 * 1000 * 1000;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[64];
        bu_fma_arg a[64];
        double t0 = bu_now();
        for (int i = 0; i < n; i++) { a[i].iters = iters; pthread_create(&th[i], NULL, bu_fma_thread, &a[i]); }
        for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
        double t = bu_now() - t0, g = (double)n * iters * 512 / t * 1e-9;   /* 16 chains x 16 lanes x 2 */
        if (g > best) best = g;
    }
    return best;
}

/* Best (minimum) time of fn over at least min_reps runs and at least
 * budget_s seconds of running (at most 200 runs): on a shared VM the best
 * run is the one least disturbed by neighbours. */
static inline double bu_best(void (*fn)(void *), void *arg, int min_reps, double budget_s) {
    double best = 1e30, start = bu_now();
    for (int r = 0; r < 200; r++) {
        double t = bu_now();
        fn(arg);
        t = bu_now() - t;
        if (t < best) best = t;
        if (r + 1 >= min_reps && bu_now() - start >= budget_s) break;
    }
    return best;
}

static inline te_backend *bu_backend_conv(int threads, te_conv_algo conv) {
    te_cpu_options o = { .n_threads = threads, .isa = -1, .conv = conv };
    te_backend *be;
    char err[256];
    if (te_cpu_backend_create(&o, &be, err, sizeof err) != TE_OK) { fprintf(stderr, "backend: %s\n", err); exit(1); }
    return be;
}
static inline te_backend *bu_backend(int threads) { return bu_backend_conv(threads, TE_CONV_DEFAULT); }

static inline te_tensor bu_tensor(te_backend *be, int nd, const int64_t *ne) {
    te_tensor t;
    memset(&t, 0, sizeof t);
    te_tensor_set_shape(&t, TE_F32, nd, ne);
    t.be = be;
    t.data = be->ops->alloc(be, te_tensor_nbytes(&t));
    float *p = t.data;
    uint32_t s = 12345;
    for (int64_t i = 0; i < te_tensor_numel(&t); i++) { s = s * 1664525u + 1013904223u; p[i] = ((s >> 8) / 16777216.0f - 0.5f); }
    return t;
}
static inline void bu_free(te_tensor *t) { if (t->prep) t->be->ops->release_prep(t->be, t->prep); t->be->ops->free(t->be, t->data); }
#define BU_SHAPE(...) (const int64_t[]){ __VA_ARGS__ }

static inline long bu_maxrss_kb(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_maxrss;
}
#endif
