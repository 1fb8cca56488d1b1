/* model_test_util.h - helpers shared by the model-stack unit tests
 * (test_model_text.c, test_model_vae.c, test_model_unet.c,
 * test_conditioning.c): a CPU backend, opening a model, reading expected
 * tensors as f32, and the relative error the tests compare to 1e-4.
 * Failures go through cmocka (fail_msg), so call these from inside a test. */
#ifndef TESSERA_MODEL_TEST_UTIL_H
#define TESSERA_MODEL_TEST_UTIL_H

#include <stddef.h>

#include "checkpoint.h"
#include "safetensors.h"
#include "te_cpu.h"

/* A CPU backend with 2 threads; NULL (and err) on failure. */
te_backend *mtu_backend_try(char *err, size_t errlen);
/* The same, failing the test on error. */
te_backend *mtu_backend(void);

/* tck_open(path) or fail the test. */
tck_model *mtu_open_model(const char *path);

/* Tensor `name` of f as a malloc'd f32 array (fails the test when it is
 * missing or not convertible); *n gets the element count, *tt the tensor
 * (either may be NULL). */
float *mtu_read_f32(const tst_file *f, const char *name, size_t *n, const tst_tensor **tt);

/* max|a-b| (NaN counts as infinitely wrong) and max|ref| over n values. */
void mtu_err_max(const float *a, const float *ref, size_t n, double *max_diff, double *max_ref);
/* max|a-b| / max|ref| (divided by 1 when ref is all zero). */
double mtu_rel_err(const float *a, const float *ref, size_t n);

/* The CLIP vocabulary path: $TESSERA_CLIP_VOCAB, else $TESSERA_DATA/...,
 * else ~/.cache/tessera/bpe_simple_vocab_16e6.txt.gz. */
void mtu_clip_vocab_path(char *path, size_t len);

#endif
