/* te_arena.c - deterministic first-fit arena over one backend block.
 *
 * Live blocks are kept in an array sorted by offset (fixed capacity, allocated
 * at create time). Allocation takes the first gap that fits, else appends at
 * the end; the end of the furthest block is the high-water mark = peak. The
 * same sequence of alloc/release calls therefore yields the same offsets in
 * the plan and in the run. */
#include "te_arena.h"
#include <stdlib.h>
#include <string.h>

typedef struct { size_t off, size; } blk;

struct te_arena {
    te_backend *be;
    size_t cap;
    int planning;
    void *base;          /* reserved block (NULL until reserve) */
    size_t size;         /* bytes of base */
    size_t peak;         /* high water of current pass */
    size_t plan_peak;    /* peak of the last plan pass */
    size_t in_use;
    blk *live;
    int n_live, max_live;
};

te_status te_arena_create(te_backend *be, size_t cap, int max_live, te_arena **out) {
    *out = NULL;
    if (max_live <= 0) max_live = 4096;
    te_arena *a = calloc(1, sizeof *a);
    if (!a) return te_backend_fail(be, TE_ERR_OOM, "arena: out of host memory");
    a->live = calloc((size_t)max_live, sizeof(blk));
    if (!a->live) { free(a); return te_backend_fail(be, TE_ERR_OOM, "arena: out of host memory"); }
    a->be = be;
    a->cap = cap;
    a->max_live = max_live;
    a->planning = 1;
    *out = a;
    return TE_OK;
}

void te_arena_destroy(te_arena *a) {
    if (!a) return;
    if (a->base) a->be->ops->free(a->be, a->base);
    free(a->live);
    free(a);
}

static void reset(te_arena *a) { a->n_live = 0; a->peak = 0; a->in_use = 0; }

void te_arena_begin_plan(te_arena *a) { reset(a); a->planning = 1; }
void te_arena_begin_run(te_arena *a) { reset(a); a->planning = 0; }
int te_arena_planning(const te_arena *a) { return a->planning; }
size_t te_arena_peak(const te_arena *a) { return a->planning ? a->peak : a->peak; }
size_t te_arena_in_use(const te_arena *a) { return a->in_use; }
size_t te_arena_size(const te_arena *a) { return a->size; }
size_t te_arena_cap(const te_arena *a) { return a->cap; }

te_status te_arena_reserve_bytes(te_arena *a, size_t bytes) {
    if (a->cap && bytes > a->cap)
        return te_backend_fail(a->be, TE_ERR_OOM,
                               "arena: need %zu bytes for activations, over the cap of %zu bytes",
                               bytes, a->cap);
    if (a->base && a->size >= bytes) return TE_OK;
    if (a->base) { a->be->ops->free(a->be, a->base); a->base = NULL; a->size = 0; }
    if (bytes == 0) return TE_OK;
    a->base = a->be->ops->alloc(a->be, bytes);
    if (!a->base)
        return te_backend_fail(a->be, TE_ERR_OOM, "arena: backend allocation of %zu bytes failed (cap %zu)",
                               bytes, a->cap);
    a->size = bytes;
    return TE_OK;
}

te_status te_arena_reserve(te_arena *a) {
    size_t need = a->planning ? a->peak : a->plan_peak;
    if (a->planning) a->plan_peak = a->peak;
    return te_arena_reserve_bytes(a, need);
}

te_status te_arena_tensor(te_arena *a, te_tensor *t, te_dtype dt, int ndim, const int64_t *ne) {
    memset(t, 0, sizeof *t);
    if (!te_tensor_set_shape(t, dt, ndim, ne))
        return te_backend_fail(a->be, TE_ERR_ARG, "arena: bad tensor shape (ndim %d)", ndim);
    size_t bytes = (te_tensor_nbytes(t) + TE_ARENA_ALIGN - 1) & ~(size_t)(TE_ARENA_ALIGN - 1);
    if (bytes == 0) bytes = TE_ARENA_ALIGN;
    if (a->n_live == a->max_live)
        return te_backend_fail(a->be, TE_ERR_OOM, "arena: more than %d live tensors", a->max_live);
    /* first fit: gaps between sorted live blocks */
    size_t off = 0;
    int pos = 0;
    for (; pos < a->n_live; pos++) {
        if (a->live[pos].off - off >= bytes) break;
        off = a->live[pos].off + a->live[pos].size;
    }
    size_t end = off + bytes;
    if (a->planning) {
        if (a->cap && end > a->cap)
            return te_backend_fail(a->be, TE_ERR_OOM,
                                   "arena: allocation of %zu bytes (arena would grow to %zu) exceeds the cap of %zu bytes",
                                   bytes, end, a->cap);
    } else if (end > a->size) {
        return te_backend_fail(a->be, TE_ERR_OOM,
                               "arena: allocation of %zu bytes at offset %zu exceeds the reserved %zu bytes (cap %zu); plan first",
                               bytes, off, a->size, a->cap);
    }
    memmove(&a->live[pos + 1], &a->live[pos], (size_t)(a->n_live - pos) * sizeof(blk));
    a->live[pos].off = off;
    a->live[pos].size = bytes;
    a->n_live++;
    a->in_use += bytes;
    if (end > a->peak) a->peak = end;
    t->be = a->be;
    t->slot = off + 1;
    t->data = a->planning ? NULL : (char *)a->base + off;
    return TE_OK;
}

void te_arena_release(te_arena *a, te_tensor *t) {
    if (!t->slot) return;
    size_t off = t->slot - 1;
    int lo = 0, hi = a->n_live - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (a->live[mid].off == off) {
            a->in_use -= a->live[mid].size;
            memmove(&a->live[mid], &a->live[mid + 1], (size_t)(a->n_live - mid - 1) * sizeof(blk));
            a->n_live--;
            break;
        }
        if (a->live[mid].off < off) lo = mid + 1; else hi = mid - 1;
    }
    t->slot = 0;
    t->data = NULL;
}
