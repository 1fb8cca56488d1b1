/* net_util.h - shared helpers for the networks (clip_text.c, vae.c, unet*.c):
 * take a named tensor from a checkpoint (tck_get) and put it into a
 * te_weights store as f32 (f16/bf16/f32 source, converted exactly), checking
 * its shape, with an error naming the tensor and both shapes.
 *
 * Shapes: `shape` lists the expected dims; -1 accepts any size there. With
 * TNU_SQUEEZE a tensor whose dims equal `shape` after dropping trailing 1s is
 * accepted too (LDM stores the VAE attention q/k/v as 1x1 convs [C,C,1,1]
 * where diffusers has linears [C,C]); the loaded tensor gets `shape`. */
#ifndef TESSERA_NET_UTIL_H
#define TESSERA_NET_UTIL_H

#include "checkpoint.h"
#include "te_weights.h"

#include <stddef.h>
#include <stdint.h>

#define TNU_SQUEEZE 1
/* A conv / linear weight: stored in the backend's matrix dtype
 * (te_weights_matrix_dtype: f32, or bf16 when the backend was created with
 * bf16 weights); other tensors (norms, biases, embeddings) stay f32. */
#define TNU_MATRIX 2

/* Where a network's tensors come from: a component of a model, the mapper to
 * LDM names for single files, and optionally a prefix (e.g. "text_model.")
 * that folders may omit (transformers 5 saves CLIP without it). */
typedef struct tnu_src {
    const tck_model *m;
    tck_component c;
    tck_mapper map;
    const char *strip;   /* NULL or a prefix retried without when the name is missing */
} tnu_src;

/* The source tensor, or NULL with err set. */
const tst_tensor *tnu_get(const tnu_src *s, const char *name, char *err, size_t errlen);
/* 1 if the tensor exists (no error). */
int tnu_has(const tnu_src *s, const char *name);

/* Check t's shape against shape[ndim] (see above); 0 ok, -1 with err. */
int tnu_check_shape(const tst_tensor *t, const char *name, int ndim, const int64_t *shape, int flags, char *err,
                    size_t errlen);
/* Rows [row0, row0+shape[0]) of t's leading dim, as an f32 weight of shape
 * shape[ndim] (no -1 here). Used for fused tensors (OpenCLIP in_proj). */
int tnu_add_rows(te_weights *w, const tst_tensor *t, const char *name, int64_t row0, int ndim,
                 const int64_t *shape, te_tensor **out, char *err, size_t errlen);
/* The same with flags (TNU_MATRIX). When the whole tensor was loaded, the
 * checkpoint's pages under it are handed back to the system (tnu_release),
 * so a loaded model does not keep the mapped file resident besides its
 * weights. */
int tnu_add_rows_f(te_weights *w, const tst_tensor *t, const char *name, int64_t row0, int ndim,
                   const int64_t *shape, int flags, te_tensor **out, char *err, size_t errlen);
/* madvise(MADV_DONTNEED) the whole pages inside t's bytes. Only for tensors of
 * a checkpoint (tck_*: a read-only private file mapping, so the pages are
 * re-read from the file if touched again; never for tst_open_memory data). */
void tnu_release(const tst_tensor *t);

/* Load name with the expected shape; -1 dims take the stored size. */
int tnu_load(te_weights *w, const tnu_src *s, const char *name, int ndim, const int64_t *shape, int flags,
             te_tensor **out, char *err, size_t errlen);
/* prefix.weight [n_out, n_in] (TNU_MATRIX implied) and prefix.bias [n_out] (bias skipped if b == NULL). */
int tnu_linear(te_weights *w, const tnu_src *s, const char *prefix, int64_t n_out, int64_t n_in, int flags,
               te_tensor **W, te_tensor **b, char *err, size_t errlen);
/* prefix.weight [k, c, kh, kw] (TNU_MATRIX) and prefix.bias [k]. */
int tnu_conv(te_weights *w, const tnu_src *s, const char *prefix, int64_t k, int64_t c, int kh, int kw,
             te_tensor **W, te_tensor **b, char *err, size_t errlen);
/* prefix.weight and prefix.bias, both [c] (norm layers). */
int tnu_norm(te_weights *w, const tnu_src *s, const char *prefix, int64_t c, te_tensor **g, te_tensor **b,
             char *err, size_t errlen);

/* The size of dim d of a tensor (for inferring architecture), or -1 with err. */
int64_t tnu_dim(const tnu_src *s, const char *name, int d, char *err, size_t errlen);

#endif
