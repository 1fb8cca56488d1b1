/* te_tensor.h - the engine's tensor: a typed, contiguous, up-to-5-D array in
 * backend memory.
 *
 * Shape convention (row-major, like torch): ne[0] is the outermost dimension,
 * ne[ndim-1] the innermost (contiguous) one. Dimension 0 is the batch.
 * Image activations are CHANNELS-LAST: [N, H, W, C]. That is the layout the
 * oneDNN brgemm convolutions run fastest on (measured, see docs/engine.md) and
 * it is bit-for-bit the transformer token layout [N, H*W, C], so going from
 * the conv blocks to attention blocks is a free reshape (te_tensor_reshape).
 * te_nchw_to_nhwc / te_nhwc_to_nchw convert from/to torch's NCHW for I/O.
 * Weights keep torch's layouts (conv: [K, C, kh, kw]; linear: [out, in]).
 *
 * A te_tensor is a small value (pass by pointer, copy freely); it does not own
 * its memory. `data` belongs to the backend `be` (host RAM for the CPU
 * backend, device memory for CUDA). data == NULL marks a *planned* tensor:
 * ops on it only check shapes (see te_arena.h, plan mode).
 * `prep` is a backend-private prepared form of a weight (e.g. oneDNN blocked
 * reorder), created lazily, owned by the backend, dropped by te_weights.
 * Weights-store tensors may lose their plain `data` once `prep` exists (see
 * TE_TENSOR_PLAIN_DROPPABLE). */
#ifndef TE_TENSOR_H
#define TE_TENSOR_H
#include <stddef.h>
#include <stdint.h>

#define TE_MAX_DIMS 5

typedef enum te_dtype { TE_F32 = 0, TE_F16 = 1, TE_BF16 = 2 } te_dtype;

struct te_backend;
struct te_prep;

typedef struct te_tensor {
    te_dtype dtype;
    int ndim;
    int64_t ne[TE_MAX_DIMS];
    void *data;
    struct te_backend *be;
    struct te_prep *prep;
    size_t slot;              /* arena-private: 1 + offset in the arena, 0 if none */
    unsigned flags;           /* TE_TENSOR_* below; 0 for ordinary tensors */
} te_tensor;

/* A weights-store tensor whose plain `data` the backend may free once it has
 * a prepared form that can stand in for it (the form then serves as the
 * source of any later re-layout). After that data == NULL and the tensor can
 * only be used as the weight of te_conv2d / te_linear. Views never carry it. */
#define TE_TENSOR_PLAIN_DROPPABLE 1u

size_t te_dtype_size(te_dtype t);
const char *te_dtype_name(te_dtype t);
int64_t te_tensor_numel(const te_tensor *t);
size_t te_tensor_nbytes(const te_tensor *t);
/* Fill the shape of *t (data/be/prep untouched). Returns 0 on bad ndim. */
int te_tensor_set_shape(te_tensor *t, te_dtype dt, int ndim, const int64_t *ne);
/* A view of the same memory with another shape of equal element count. */
int te_tensor_reshape(te_tensor *view, const te_tensor *t, int ndim, const int64_t *ne);
int te_tensor_same_shape(const te_tensor *a, const te_tensor *b);
/* Shape as "[2, 64, 64, 320] f32" into buf. */
const char *te_tensor_shape_str(const te_tensor *t, char *buf, size_t n);
/* Product of dims [from, ndim). */
int64_t te_tensor_rows(const te_tensor *t);   /* numel / last dim */

#endif
