/* te_weights.c - weights store: a growable list of backend allocations
 * (grows only at model load, never on the hot path). */
#include "te_weights.h"
#include "te_half.h"
#include <stdlib.h>
#include <string.h>

struct te_weights {
    te_backend *be;
    te_tensor **t;
    int n, cap;
    size_t bytes;
    int keep_plain;
};

te_status te_weights_create(te_backend *be, te_weights **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return te_backend_fail(be, TE_ERR_OOM, "weights: out of host memory");
    (*out)->be = be;
    return TE_OK;
}

void te_weights_destroy(te_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        if (w->t[i]->prep) w->be->ops->release_prep(w->be, w->t[i]->prep);
        if (w->t[i]->data) w->be->ops->free(w->be, w->t[i]->data);
        free(w->t[i]);
    }
    free(w->t);
    free(w);
}

size_t te_weights_bytes(const te_weights *w) { return w->bytes; }
void te_weights_keep_plain(te_weights *w, int keep) { w->keep_plain = keep; }
te_dtype te_weights_matrix_dtype(const te_weights *w) { return w->be->matrix_dtype; }
int te_weights_count(const te_weights *w) { return w->n; }

void te_convert_host(void *dst, te_dtype ddt, const void *src, te_dtype sdt, size_t n) {
    if (ddt == sdt) { memcpy(dst, src, n * te_dtype_size(ddt)); return; }
    for (size_t i = 0; i < n; i++) {
        float f;
        switch (sdt) {
        case TE_F32: f = ((const float *)src)[i]; break;
        case TE_F16: f = te_f16_to_f32(((const uint16_t *)src)[i]); break;
        default: f = te_bf16_to_f32(((const uint16_t *)src)[i]); break;
        }
        switch (ddt) {
        case TE_F32: ((float *)dst)[i] = f; break;
        case TE_F16: ((uint16_t *)dst)[i] = te_f32_to_f16(f); break;
        default: ((uint16_t *)dst)[i] = te_f32_to_bf16(f); break;
        }
    }
}

te_status te_weights_add(te_weights *w, te_tensor **out, te_dtype dt, int ndim, const int64_t *ne,
                         const void *host, te_dtype host_dt) {
    *out = NULL;
    te_tensor *t = calloc(1, sizeof *t);
    if (!t) return te_backend_fail(w->be, TE_ERR_OOM, "weights: out of host memory");
    if (!te_tensor_set_shape(t, dt, ndim, ne)) {
        free(t);
        return te_backend_fail(w->be, TE_ERR_ARG, "weights: bad shape");
    }
    size_t nb = te_tensor_nbytes(t);
    t->be = w->be;
    t->flags = w->keep_plain ? 0 : TE_TENSOR_PLAIN_DROPPABLE;
    t->data = w->be->ops->alloc(w->be, nb ? nb : 64);
    if (!t->data) {
        free(t);
        return te_backend_fail(w->be, TE_ERR_OOM, "weights: allocation of %zu bytes failed", nb);
    }
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 64;
        te_tensor **nt = realloc(w->t, (size_t)nc * sizeof *nt);
        if (!nt) { w->be->ops->free(w->be, t->data); free(t); return te_backend_fail(w->be, TE_ERR_OOM, "weights: out of host memory"); }
        w->t = nt; w->cap = nc;
    }
    w->t[w->n++] = t;
    w->bytes += nb;
    if (host) {
        te_status s;
        if (host_dt == dt) {
            s = w->be->ops->upload(w->be, t->data, host, nb);
        } else {
            size_t n = (size_t)te_tensor_numel(t);
            void *tmp = malloc(nb ? nb : 1);
            if (!tmp) return te_backend_fail(w->be, TE_ERR_OOM, "weights: out of host memory");
            te_convert_host(tmp, dt, host, host_dt, n);
            s = w->be->ops->upload(w->be, t->data, tmp, nb);
            free(tmp);
        }
        if (s != TE_OK) return s;
    }
    *out = t;
    return TE_OK;
}
