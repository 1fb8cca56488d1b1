/* model_test_util.c - see model_test_util.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model_test_util.h"

te_backend *mtu_backend_try(char *err, size_t errlen) {
    te_cpu_options o = {.n_threads = 2, .isa = -1};
    te_backend *be = NULL;
    if (te_cpu_backend_create(&o, &be, err, errlen) != TE_OK) return NULL;
    return be;
}

te_backend *mtu_backend(void) {
    char err[256];
    te_backend *be = mtu_backend_try(err, sizeof err);
    if (!be) fail_msg("backend: %s", err);
    return be;
}

tck_model *mtu_open_model(const char *path) {
    char err[1024];
    tck_model *m = NULL;
    if (tck_open(path, NULL, &m, err, sizeof err)) fail_msg("%s: %s", path, err);
    return m;
}

float *mtu_read_f32(const tst_file *f, const char *name, size_t *n, const tst_tensor **tt) {
    char err[256];
    const tst_tensor *t = tst_find(f, name);
    if (!t) fail_msg("expected file has no %s", name);
    float *p = malloc(t->numel * sizeof *p);
    assert_non_null(p);
    if (tst_to_f32(t, p, t->numel, err, sizeof err)) fail_msg("%s: %s", name, err);
    if (n) *n = t->numel;
    if (tt) *tt = t;
    return p;
}

void mtu_err_max(const float *a, const float *ref, size_t n, double *max_diff, double *max_ref) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= md) && !isnan(md)) md = d; /* NaN-safe: a NaN difference sticks */
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    *max_diff = md;
    *max_ref = mr;
}

double mtu_rel_err(const float *a, const float *ref, size_t n) {
    double md, mr;
    mtu_err_max(a, ref, n, &md, &mr);
    return md / (mr > 0 ? mr : 1);
}

void mtu_clip_vocab_path(char *path, size_t len) {
    const char *e = getenv("TESSERA_CLIP_VOCAB"), *d = getenv("TESSERA_DATA");
    if (e && *e) snprintf(path, len, "%s", e);
    else if (d && *d) snprintf(path, len, "%s/bpe_simple_vocab_16e6.txt.gz", d);
    else snprintf(path, len, "%s/.cache/tessera/bpe_simple_vocab_16e6.txt.gz", getenv("HOME") ? getenv("HOME") : ".");
}
