/* te_arena.h - the activation arena: one block of backend memory per run,
 * sized by a planning pass, with a hard cap.
 *
 * Usage (the model code is the same in both passes):
 *
 *     te_arena_begin_plan(a);   run_model(...);   // records sizes+lifetimes only
 *     te_arena_reserve(a);                        // ONE allocation of the peak
 *     te_arena_begin_run(a);    run_model(...);   // same alloc/free sequence
 *     size_t peak = te_arena_peak(a);
 *
 * In plan mode te_arena_tensor() returns tensors with data == NULL and every
 * op in te_ops.h only checks shapes. The allocator is deterministic first-fit
 * over a fixed table of live blocks, so the run pass gets exactly the offsets
 * the plan saw: no malloc on the hot path, no fragmentation surprises.
 * Blocks may be released in any order (UNet skip connections live long).
 *
 * The cap is the worker's memory budget: a plan whose peak would exceed it,
 * or any allocation that does not fit, fails with TE_ERR_OOM and a message
 * (te_backend_error) naming the bytes asked for and the cap. Never aborts. */
#ifndef TE_ARENA_H
#define TE_ARENA_H
#include <stddef.h>
#include "te_backend.h"

typedef struct te_arena te_arena;

#define TE_ARENA_ALIGN 64

/* cap_bytes: hard limit on the block (0 = unlimited). max_live: table size of
 * simultaneously live tensors (0 = 4096). */
te_status te_arena_create(te_backend *be, size_t cap_bytes, int max_live, te_arena **out);
void te_arena_destroy(te_arena *a);

void te_arena_begin_plan(te_arena *a);
/* Allocate the block for the last plan's peak (or keep the current block if
 * it is big enough). Fails cleanly above the cap. */
te_status te_arena_reserve(te_arena *a);
te_status te_arena_reserve_bytes(te_arena *a, size_t bytes);
void te_arena_begin_run(te_arena *a);

te_status te_arena_tensor(te_arena *a, te_tensor *t, te_dtype dt, int ndim, const int64_t *ne);
void te_arena_release(te_arena *a, te_tensor *t);

int te_arena_planning(const te_arena *a);
size_t te_arena_peak(const te_arena *a);     /* high-water bytes of the current/last pass */
size_t te_arena_in_use(const te_arena *a);
size_t te_arena_size(const te_arena *a);     /* bytes of the reserved block */
size_t te_arena_cap(const te_arena *a);

#endif
