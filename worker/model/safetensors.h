/* safetensors.h - read and write .safetensors checkpoint files.
 *
 * A .safetensors file is: 8 bytes little-endian header length N, N bytes of
 * JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * optionally "__metadata__": {string: string}}), then the raw tensor bytes.
 * It holds only data, never code, which is why Tessera loads checkpoints in
 * this format and refuses pickles (see checkpoint_format.h).
 *
 * The reader maps the file read-only and validates the whole header against
 * the file size before handing out a single pointer: dtypes known, shapes of
 * at most TST_MAX_DIMS non-negative dims whose byte size matches the offsets
 * (overflow-checked), offsets inside the data section, no two tensors
 * overlapping. A truncated or hostile file is an error message naming the
 * tensor and the problem, never a crash or an out-of-bounds read. (One limit
 * that no reader of a mapping can avoid: a file truncated by someone else
 * *while* it is mapped raises SIGBUS on access.)
 *
 * Tensors of dtypes Tessera cannot compute with (F64, integers, BOOL, FP8)
 * are listed with supported == 0 so that tools can name them; only asking for
 * their data as floats (tst_to_f32) fails.
 *
 * Errors: functions returning int return 0 on success and -1 on failure, with
 * a human-readable message written to err (errlen bytes, may be 0).
 */
#ifndef TESSERA_SAFETENSORS_H
#define TESSERA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define TST_MAX_DIMS 8
/* Header sizes above this are refused (the reference library uses 100 MB). */
#define TST_MAX_HEADER (100u * 1024u * 1024u)

typedef enum {
    TST_F32 = 0,
    TST_F16,
    TST_BF16,
    /* known, listed, but not usable as data by Tessera */
    TST_F64,
    TST_I64,
    TST_I32,
    TST_I16,
    TST_I8,
    TST_U64,
    TST_U32,
    TST_U16,
    TST_U8,
    TST_BOOL,
    TST_F8_E4M3,
    TST_F8_E5M2,
    TST_DTYPE_COUNT
} tst_dtype;

typedef struct tst_tensor {
    const char *name;
    tst_dtype dtype;
    int supported;                 /* 1 for F32, F16, BF16 */
    int ndim;                      /* 0 for a scalar */
    int64_t shape[TST_MAX_DIMS];
    const void *data;              /* inside the mapping; NOT necessarily aligned */
    size_t nbytes;                 /* elements * dtype size */
    size_t numel;                  /* product of shape (1 for a scalar) */
} tst_tensor;

typedef struct tst_file tst_file;

/* Map and validate path. On success *out owns the mapping; free with tst_close. */
int tst_open(const char *path, tst_file **out, char *err, size_t errlen);
/* Validate a buffer already in memory (tests, the fuzzer). The buffer is not
 * copied: it must outlive the returned file. */
int tst_open_memory(const void *buf, size_t len, tst_file **out, char *err, size_t errlen);
void tst_close(tst_file *f);

/* Tensors, sorted by name. tst_at returns NULL for i >= tst_count. */
size_t tst_count(const tst_file *f);
const tst_tensor *tst_at(const tst_file *f, size_t i);
/* NULL when there is no tensor called name. */
const tst_tensor *tst_find(const tst_file *f, const char *name);

/* "__metadata__" entries, sorted by key. tst_metadata_get returns NULL if absent. */
size_t tst_metadata_count(const tst_file *f);
const char *tst_metadata_get(const tst_file *f, const char *key);
int tst_metadata_at(const tst_file *f, size_t i, const char **key, const char **value);

/* "F32", "BF16", ...; "?" for an out-of-range value. */
const char *tst_dtype_name(tst_dtype d);
/* Bytes per element (0 for an out-of-range value). */
size_t tst_dtype_size(tst_dtype d);
/* Parse a dtype name; -1 when unknown. */
int tst_dtype_parse(const char *name, tst_dtype *out);

/* Convert t's data (F32, F16 or BF16) to n floats, n == t->numel. Exact. */
int tst_to_f32(const tst_tensor *t, float *out, size_t n, char *err, size_t errlen);

/* Exact scalar conversions (the reader's own, so it depends on jansson only). */
float tst_f16_to_f32(uint16_t h);
float tst_bf16_to_f32(uint16_t h);
/* Round to nearest even; overflow to inf; NaN stays NaN. */
uint16_t tst_f32_to_f16(float f);

typedef struct {
    const char *key;
    const char *value;
} tst_meta;

/* Write tensors (name, dtype, ndim, shape, data, nbytes are read; numel,
 * supported ignored) and metadata (may be NULL when nmeta == 0) to path, the
 * way the reference library does: tensors laid out by dtype width then name,
 * header padded with spaces to a multiple of 8. Any known dtype can be
 * written; nbytes must match the shape. The file is written to a temporary
 * name and renamed into place. */
int tst_write(const char *path, const tst_tensor *tensors, size_t n, const tst_meta *meta,
              size_t nmeta, char *err, size_t errlen);

#endif
