/* te_pool.h - a small fork-join thread pool owned by a backend object.
 *
 * te_pool_for(pool, n, fn, arg) splits [0, n) into one contiguous chunk per
 * thread (the caller is thread 0) and returns when all chunks are done.
 * Workers spin briefly after a job (ops come in quick succession) and then
 * sleep on a condition variable, so they do not steal cores from oneDNN's
 * OpenMP team while a convolution runs. */
#ifndef TE_POOL_H
#define TE_POOL_H
#include <stdint.h>

typedef struct te_pool te_pool;
typedef void (*te_pool_fn)(void *arg, int64_t begin, int64_t end, int tid);

te_pool *te_pool_create(int n_threads);     /* NULL on failure */
void te_pool_destroy(te_pool *p);
int te_pool_threads(const te_pool *p);
/* Run fn over [0, n) split across min(threads, n) threads. */
void te_pool_for(te_pool *p, int64_t n, te_pool_fn fn, void *arg);

#endif
