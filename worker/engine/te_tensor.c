/* te_tensor.c - shape helpers for te_tensor (no memory management here). */
#include "te_tensor.h"
#include <stdio.h>
#include <string.h>

size_t te_dtype_size(te_dtype t) { return t == TE_F32 ? 4 : 2; }
const char *te_dtype_name(te_dtype t) { return t == TE_F32 ? "f32" : t == TE_F16 ? "f16" : "bf16"; }

int64_t te_tensor_numel(const te_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}
size_t te_tensor_nbytes(const te_tensor *t) { return (size_t)te_tensor_numel(t) * te_dtype_size(t->dtype); }

int te_tensor_set_shape(te_tensor *t, te_dtype dt, int ndim, const int64_t *ne) {
    if (ndim < 1 || ndim > TE_MAX_DIMS) return 0;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < TE_MAX_DIMS; i++) t->ne[i] = i < ndim ? ne[i] : 1;
    for (int i = 0; i < ndim; i++) if (ne[i] < 0) return 0;
    return 1;
}

int te_tensor_reshape(te_tensor *view, const te_tensor *t, int ndim, const int64_t *ne) {
    te_tensor v = *t;
    v.prep = NULL;
    v.flags = 0;
    if (!te_tensor_set_shape(&v, t->dtype, ndim, ne)) return 0;
    if (te_tensor_numel(&v) != te_tensor_numel(t)) return 0;
    *view = v;
    return 1;
}

int te_tensor_same_shape(const te_tensor *a, const te_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++) if (a->ne[i] != b->ne[i]) return 0;
    return 1;
}

int64_t te_tensor_rows(const te_tensor *t) { return te_tensor_numel(t) / (t->ne[t->ndim - 1] ? t->ne[t->ndim - 1] : 1); }

const char *te_tensor_shape_str(const te_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    o += snprintf(buf + o, n - o, "[");
    for (int i = 0; i < t->ndim && o < n; i++)
        o += snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)t->ne[i]);
    if (o < n) snprintf(buf + o, n - o, "] %s", te_dtype_name(t->dtype));
    return buf;
}
