/* te_weights.h - the weights store: model parameters, kept apart from the
 * activation arena.
 *
 * Each weight is its own backend allocation that lives as long as the store
 * (a model load), plus the backend's lazily prepared form (te_tensor.prep,
 * e.g. oneDNN's blocked conv weights), released with the store. The store
 * owns the te_tensor structs and hands out stable pointers: ops may attach a
 * prepared form to them. Host data may come in f32/f16/bf16 and is converted
 * on load to the dtype asked for (exact widening, RNE narrowing).
 *
 * Memory: by default a weight's plain copy is freed by the backend as soon
 * as its prepared form exists (te_conv2d / te_linear weights: oneDNN's packed
 * copy replaces it), so a loaded model costs one copy of its weights, not
 * two. Such a weight then has data == NULL and can only be used as a conv /
 * linear weight again; te_weights_keep_plain(w, 1) before adding keeps the
 * plain copies (for code that reads weights back, e.g. to merge LoRAs). */
#ifndef TE_WEIGHTS_H
#define TE_WEIGHTS_H
#include "te_backend.h"

typedef struct te_weights te_weights;

te_status te_weights_create(te_backend *be, te_weights **out);
void te_weights_destroy(te_weights *w);

/* New weight of dtype `dt` and shape ne; if host != NULL, fill it from host
 * data of dtype host_dt (converted). *out points into the store. */
te_status te_weights_add(te_weights *w, te_tensor **out, te_dtype dt, int ndim, const int64_t *ne,
                         const void *host, te_dtype host_dt);
/* Keep (1) or drop (0, default) the plain copies of weights added from now on. */
void te_weights_keep_plain(te_weights *w, int keep);
/* The dtype conv / linear weights should be stored in for this store's
 * backend: TE_F32 unless the backend was created with bf16 weights. */
te_dtype te_weights_matrix_dtype(const te_weights *w);
/* Bytes of the weights as stored (their dtype), whether or not the plain copy
 * has since been replaced by a prepared form. */
size_t te_weights_bytes(const te_weights *w);
int te_weights_count(const te_weights *w);

/* Host-side bulk conversion between dtypes (scalar reference versions). */
void te_convert_host(void *dst, te_dtype dst_dt, const void *src, te_dtype src_dt, size_t n);

#endif
