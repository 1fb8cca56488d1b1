/* te_test.h - tiny test helpers for the engine tests: checks, deterministic
 * random data, tensors on the CPU backend, and the error metric.
 *
 * Error metric for f32 paths: err = max_i |got_i - ref_i| / max_i |ref_i|
 * (the reference is computed in float64 in the test); pass if err <= 1e-5
 * unless a test states otherwise. The CPU ISA under test comes from
 * $TE_CPU_ISA (ctest registers every test for avx512, avx2 and scalar). */
#ifndef TE_TEST_H
#define TE_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "te_backend.h"
#include "te_cpu.h"
#include "te_ops.h"

static int tt_failures;

#define TT_CHECK(cond, ...) do { if (!(cond)) { tt_failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)
#define TT_OK(expr, be) do { te_status s_ = (expr); if (s_ != TE_OK) { tt_failures++; \
    fprintf(stderr, "FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr, te_status_str(s_), te_backend_error(be)); } } while (0)

static uint64_t tt_seed = 0x9e3779b97f4a7c15ull;
static inline double tt_rand(void) {   /* uniform [-1, 1) */
    tt_seed = tt_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(tt_seed >> 11) / (double)(1ull << 52) - 1.0;
}
static inline void tt_fill(float *x, int64_t n, double scale) { for (int64_t i = 0; i < n; i++) x[i] = (float)(tt_rand() * scale); }

static inline te_backend *tt_backend(void) {
    te_backend *be = NULL;
    char err[256];
    te_status s = te_cpu_backend_create(NULL, &be, err, sizeof err);
    if (s != TE_OK) { fprintf(stderr, "backend: %s\n", err); exit(2); }
    printf("backend cpu isa=%s threads=%d\n", te_cpu_isa_name(te_cpu_backend_isa(be)), te_cpu_backend_threads(be));
    return be;
}

/* A tensor in backend memory (tests allocate freely; models use the arena). */
static inline te_tensor tt_tensor(te_backend *be, te_dtype dt, int ndim, const int64_t *ne) {
    te_tensor t;
    memset(&t, 0, sizeof t);
    te_tensor_set_shape(&t, dt, ndim, ne);
    t.be = be;
    t.data = be->ops->alloc(be, te_tensor_nbytes(&t) + 64);
    return t;
}
static inline te_tensor tt_rand_tensor(te_backend *be, int ndim, const int64_t *ne, double scale) {
    te_tensor t = tt_tensor(be, TE_F32, ndim, ne);
    tt_fill(t.data, te_tensor_numel(&t), scale);
    return t;
}
static inline void tt_free(te_tensor *t) { if (t->prep) t->be->ops->release_prep(t->be, t->prep); t->be->ops->free(t->be, t->data); t->data = NULL; t->prep = NULL; }
#define TT_SHAPE(...) (const int64_t[]){ __VA_ARGS__ }
#define TT_T(be, nd, ...) tt_tensor(be, TE_F32, nd, TT_SHAPE(__VA_ARGS__))
#define TT_R(be, nd, ...) tt_rand_tensor(be, nd, TT_SHAPE(__VA_ARGS__), 1.0)

static inline double tt_err(const float *got, const double *ref, int64_t n) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= md)) md = d;           /* NaN propagates */
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return md / (mr > 0 ? mr : 1.0);
}

#define TT_CLOSE(name, got, ref, n, tol) do { double e_ = tt_err(got, ref, n); \
    TT_CHECK(e_ <= (tol), "%s: error %.3g > %.3g", name, e_, (double)(tol)); \
    if (getenv("TT_VERBOSE")) printf("  %-40s err %.3g\n", name, e_); } while (0)

static inline double *tt_ref(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(double)); }

static inline int tt_done(const char *name) {
    if (tt_failures) { fprintf(stderr, "%s: %d failure(s)\n", name, tt_failures); return 1; }
    printf("%s: ok\n", name);
    return 0;
}
#endif
