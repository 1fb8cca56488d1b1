/* net_util.c - checkpoint tensors -> te_weights (see net_util.h).
 *
 * Conversion goes through tst_to_f32 (exact for F16/BF16/F32, and safe for
 * the unaligned data of a mapping) into a temporary host buffer, then
 * te_weights_add copies it to the backend (narrowing to bf16 for TNU_MATRIX
 * weights of a bf16 backend: one RNE rounding of the exact value). The
 * checkpoint pages of a loaded tensor are then released (tnu_release). */
#include "net_util.h"

#include <sys/mman.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tst_tensor *tnu_get(const tnu_src *s, const char *name, char *err, size_t errlen) {
    const tst_tensor *t = tck_get(s->m, s->c, name, s->map, err, errlen);
    size_t n = s->strip ? strlen(s->strip) : 0;
    if (!t && n && !tck_is_single_file(s->m) && !strncmp(name, s->strip, n)) {
        char e2[16];
        t = tck_get(s->m, s->c, name + n, s->map, e2, sizeof e2);
    }
    return t;
}

int tnu_has(const tnu_src *s, const char *name) {
    char e[8];
    return tnu_get(s, name, e, sizeof e) != NULL;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *sh) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ", %lld" : "%lld", (long long)sh[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

int tnu_check_shape(const tst_tensor *t, const char *name, int ndim, const int64_t *shape, int flags, char *err,
                    size_t errlen) {
    int tnd = t->ndim, ok = 1;
    if (flags & TNU_SQUEEZE)
        while (tnd > ndim && t->shape[tnd - 1] == 1) tnd--;
    if (tnd != ndim) ok = 0;
    for (int i = 0; ok && i < ndim; i++)
        if (shape[i] >= 0 && shape[i] != t->shape[i]) ok = 0;
    if (!t->supported) {
        snprintf(err, errlen, "tensor %s has dtype %s; only F32, F16 and BF16 weights can be used", name,
                 tst_dtype_name(t->dtype));
        return -1;
    }
    if (ok) return 0;
    char want[160], got[160];
    shape_str(want, sizeof want, ndim, shape);
    shape_str(got, sizeof got, t->ndim, t->shape);
    snprintf(err, errlen, "tensor %s has shape %s, expected %s (-1: any)", name, got, want);
    return -1;
}

void tnu_release(const tst_tensor *t) {
    if (!t || !t->data || !t->nbytes) return;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)t->data, e = a + t->nbytes;
    uintptr_t a2 = (a + pg - 1) & ~(pg - 1), e2 = e & ~(pg - 1);
    if (e2 > a2) madvise((void *)a2, e2 - a2, MADV_DONTNEED);
}

int tnu_add_rows(te_weights *w, const tst_tensor *t, const char *name, int64_t row0, int ndim,
                 const int64_t *shape, te_tensor **out, char *err, size_t errlen) {
    return tnu_add_rows_f(w, t, name, row0, ndim, shape, 0, out, err, errlen);
}

int tnu_add_rows_f(te_weights *w, const tst_tensor *t, const char *name, int64_t row0, int ndim,
                   const int64_t *shape, int flags, te_tensor **out, char *err, size_t errlen) {
    size_t per_row = t->ndim ? t->numel / (size_t)(t->shape[0] ? t->shape[0] : 1) : 1;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (t->ndim < 1 || row0 < 0 || (size_t)row0 * per_row + n > t->numel) {
        snprintf(err, errlen, "tensor %s: rows from %lld do not fit its %zu elements", name, (long long)row0,
                 t->numel);
        return -1;
    }
    float *buf = malloc(t->numel * sizeof *buf);
    if (!buf) {
        snprintf(err, errlen, "out of memory loading %s", name);
        return -1;
    }
    if (tst_to_f32(t, buf, t->numel, err, errlen)) {
        free(buf);
        return -1;
    }
    te_dtype dt = (flags & TNU_MATRIX) ? te_weights_matrix_dtype(w) : TE_F32;
    te_status st = te_weights_add(w, out, dt, ndim, shape, buf + (size_t)row0 * per_row, TE_F32);
    free(buf);
    if (st == TE_OK && row0 == 0 && n == t->numel) tnu_release(t);
    if (st != TE_OK) {
        snprintf(err, errlen, "cannot store weight %s: %s", name, te_status_str(st));
        return -1;
    }
    return 0;
}

int tnu_load(te_weights *w, const tnu_src *s, const char *name, int ndim, const int64_t *shape, int flags,
             te_tensor **out, char *err, size_t errlen) {
    const tst_tensor *t = tnu_get(s, name, err, errlen);
    if (!t || tnu_check_shape(t, name, ndim, shape, flags, err, errlen)) return -1;
    int64_t sh[TE_MAX_DIMS];
    if (ndim > TE_MAX_DIMS) {
        snprintf(err, errlen, "tensor %s: more than %d dims", name, TE_MAX_DIMS);
        return -1;
    }
    for (int i = 0; i < ndim; i++) sh[i] = shape[i] >= 0 ? shape[i] : t->shape[i];
    return tnu_add_rows_f(w, t, name, 0, ndim, sh, flags, out, err, errlen);
}

int tnu_linear(te_weights *w, const tnu_src *s, const char *prefix, int64_t n_out, int64_t n_in, int flags,
               te_tensor **W, te_tensor **b, char *err, size_t errlen) {
    char name[512];
    int64_t ws[2] = {n_out, n_in}, bs[1] = {n_out};
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (tnu_load(w, s, name, 2, ws, flags | TNU_MATRIX, W, err, errlen)) return -1;
    if (!b) return 0;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return tnu_load(w, s, name, 1, bs, 0, b, err, errlen);
}

int tnu_conv(te_weights *w, const tnu_src *s, const char *prefix, int64_t k, int64_t c, int kh, int kw,
             te_tensor **W, te_tensor **b, char *err, size_t errlen) {
    char name[512];
    int64_t ws[4] = {k, c, kh, kw}, bs[1] = {k};
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (tnu_load(w, s, name, 4, ws, TNU_MATRIX, W, err, errlen)) return -1;
    if (!b) return 0;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return tnu_load(w, s, name, 1, bs, 0, b, err, errlen);
}

int tnu_norm(te_weights *w, const tnu_src *s, const char *prefix, int64_t c, te_tensor **g, te_tensor **b,
             char *err, size_t errlen) {
    char name[512];
    int64_t sh[1] = {c};
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (tnu_load(w, s, name, 1, sh, 0, g, err, errlen)) return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return tnu_load(w, s, name, 1, sh, 0, b, err, errlen);
}

int64_t tnu_dim(const tnu_src *s, const char *name, int d, char *err, size_t errlen) {
    const tst_tensor *t = tnu_get(s, name, err, errlen);
    if (!t) return -1;
    if (d < 0 || d >= t->ndim) {
        snprintf(err, errlen, "tensor %s has %d dims, no dim %d", name, t->ndim, d);
        return -1;
    }
    return t->shape[d];
}
