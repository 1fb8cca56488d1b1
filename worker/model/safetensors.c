/* safetensors.c - the .safetensors reader (mmap + validated header) and writer.
 *
 * Why this file is paranoid: checkpoints come from the internet. Everything in
 * the header is checked against the real file size before any pointer into
 * the data is handed out; every size computation is overflow-checked; the
 * JSON nesting depth is bounded before jansson sees the text. The only
 * dependency is jansson, so the fuzzer (tests/fuzz/) can build this file
 * alone. See safetensors.h for the format and the API contract.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

/* The real format needs depth 3 (root, tensor entry, shape array). */
#define TST_MAX_JSON_DEPTH 8

typedef struct {
    char *key;
    char *value;
} meta_entry;

struct tst_file {
    const uint8_t *base;  /* whole file */
    size_t size;
    int mapped;           /* 1: munmap(base, size) on close */
    tst_tensor *tensors;  /* sorted by name; names owned */
    size_t ntensors;
    meta_entry *meta;     /* sorted by key; strings owned */
    size_t nmeta;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- dtypes ------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
    int rank; /* the reference writer's order: wider dtypes first (descending rank) */
} dtype_info[TST_DTYPE_COUNT] = {
    [TST_F32] = {"F32", 4, 11},       [TST_F16] = {"F16", 2, 7},
    [TST_BF16] = {"BF16", 2, 8},      [TST_F64] = {"F64", 8, 12},
    [TST_I64] = {"I64", 8, 13},       [TST_I32] = {"I32", 4, 9},
    [TST_I16] = {"I16", 2, 5},        [TST_I8] = {"I8", 1, 2},
    [TST_U64] = {"U64", 8, 14},       [TST_U32] = {"U32", 4, 10},
    [TST_U16] = {"U16", 2, 6},        [TST_U8] = {"U8", 1, 1},
    [TST_BOOL] = {"BOOL", 1, 0},      [TST_F8_E4M3] = {"F8_E4M3", 1, 4},
    [TST_F8_E5M2] = {"F8_E5M2", 1, 3},
};

const char *tst_dtype_name(tst_dtype d) {
    return (unsigned)d < TST_DTYPE_COUNT ? dtype_info[d].name : "?";
}

size_t tst_dtype_size(tst_dtype d) {
    return (unsigned)d < TST_DTYPE_COUNT ? dtype_info[d].size : 0;
}

int tst_dtype_parse(const char *name, tst_dtype *out) {
    for (int i = 0; i < TST_DTYPE_COUNT; i++)
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (tst_dtype)i;
            return 0;
        }
    return -1;
}

static int dtype_supported(tst_dtype d) { return d == TST_F32 || d == TST_F16 || d == TST_BF16; }

/* ---- half / bfloat16 ---------------------------------------------------------- */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float tst_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000 | (mant << 13)); /* inf, NaN */
    if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return bits_to_f32(sign);
    /* subnormal: normalise */
    int e = -1;
    do {
        mant <<= 1;
        e++;
    } while (!(mant & 0x400));
    return bits_to_f32(sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13));
}

float tst_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t tst_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffff;
    if (ax >= 0x7f800000) /* inf stays inf; NaN stays a quiet NaN, payload truncated */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to inf */
    if (ax >= 0x38800000) {                                 /* normal half */
        uint32_t h = ((((ax >> 23) - 112) << 10) | ((ax & 0x7fffff) >> 13));
        uint32_t rem = ax & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into exponent */
        return (uint16_t)(sign | h);
    }
    if (ax < 0x33000000) return (uint16_t)sign; /* below half the smallest subnormal */
    uint32_t e = ax >> 23;                      /* 102..112 */
    uint32_t mant = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t h = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

int tst_to_f32(const tst_tensor *t, float *out, size_t n, char *err, size_t errlen) {
    if (!t || (!out && n)) {
        seterr(err, errlen, "tst_to_f32: no tensor or no output buffer");
        return -1;
    }
    if (!t->supported) {
        seterr(err, errlen, "tensor %.200s has dtype %s, which Tessera cannot use", t->name,
               tst_dtype_name(t->dtype));
        return -1;
    }
    if (n != t->numel) {
        seterr(err, errlen, "tensor %.200s has %zu elements, the output buffer %zu", t->name,
               t->numel, n);
        return -1;
    }
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case TST_F32:
        if (n) memcpy(out, p, n * 4); /* little-endian host assumed (x86-64, arm64) */
        break;
    case TST_F16:
        for (size_t i = 0; i < n; i++) out[i] = tst_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case TST_BF16:
        for (size_t i = 0; i < n; i++) out[i] = tst_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    default:
        seterr(err, errlen, "tensor %.200s: unexpected dtype", t->name);
        return -1;
    }
    return 0;
}

/* ---- header validation -------------------------------------------------------- */

/* Maximum nesting depth of JSON text, ignoring brackets inside strings. */
static int json_depth_ok(const uint8_t *s, size_t n, int limit) {
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > limit) return 0;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const tst_tensor *)a)->name, ((const tst_tensor *)b)->name);
}

static int cmp_meta_key(const void *a, const void *b) {
    return strcmp(((const meta_entry *)a)->key, ((const meta_entry *)b)->key);
}

typedef struct {
    size_t begin, end;
    const char *name;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int parse_metadata(tst_file *f, json_t *obj, char *err, size_t errlen) {
    if (!json_is_object(obj)) {
        seterr(err, errlen, "__metadata__ is not a JSON object");
        return -1;
    }
    size_t n = json_object_size(obj);
    if (n == 0) return 0;
    f->meta = calloc(n, sizeof *f->meta);
    if (!f->meta) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (!json_is_string(v)) {
            seterr(err, errlen, "__metadata__ entry %.200s is not a string", key);
            return -1;
        }
        meta_entry *m = &f->meta[f->nmeta];
        m->key = strdup(key);
        m->value = strdup(json_string_value(v));
        if (!m->key || !m->value) {
            free(m->key);
            free(m->value);
            m->key = m->value = NULL;
            seterr(err, errlen, "out of memory");
            return -1;
        }
        f->nmeta++;
    }
    qsort(f->meta, f->nmeta, sizeof *f->meta, cmp_meta_key);
    return 0;
}

/* Validate one tensor entry; fills t except name. */
static int parse_tensor(const char *name, json_t *e, const uint8_t *data, size_t datalen,
                        tst_tensor *t, char *err, size_t errlen) {
    if (!json_is_object(e)) {
        seterr(err, errlen, "tensor %.200s: entry is not a JSON object", name);
        return -1;
    }
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd)) {
        seterr(err, errlen, "tensor %.200s: missing or non-string \"dtype\"", name);
        return -1;
    }
    if (tst_dtype_parse(json_string_value(jd), &t->dtype) != 0) {
        seterr(err, errlen, "tensor %.200s: unknown dtype \"%.40s\"", name, json_string_value(jd));
        return -1;
    }
    t->supported = dtype_supported(t->dtype);
    if (!json_is_array(js)) {
        seterr(err, errlen, "tensor %.200s: missing or non-array \"shape\"", name);
        return -1;
    }
    size_t nd = json_array_size(js);
    if (nd > TST_MAX_DIMS) {
        seterr(err, errlen, "tensor %.200s: %zu dimensions, at most %d supported", name, nd,
               TST_MAX_DIMS);
        return -1;
    }
    t->ndim = (int)nd;
    /* The overflow check ignores zero dims, so that [huge, huge, 0] is refused
     * too: code that multiplies a subset of the dims must never overflow. */
    size_t prod = 1, nbytes;
    int has_zero = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0) {
            seterr(err, errlen, "tensor %.200s: shape[%zu] is not a non-negative integer", name, i);
            return -1;
        }
        json_int_t v = json_integer_value(d);
        t->shape[i] = (int64_t)v;
        if (v == 0) has_zero = 1;
        else if ((unsigned long long)v > SIZE_MAX || __builtin_mul_overflow(prod, (size_t)v, &prod)) {
            seterr(err, errlen, "tensor %.200s: shape overflows the element count", name);
            return -1;
        }
    }
    for (size_t i = nd; i < TST_MAX_DIMS; i++) t->shape[i] = 0;
    if (__builtin_mul_overflow(prod, tst_dtype_size(t->dtype), &nbytes)) {
        seterr(err, errlen, "tensor %.200s: shape overflows the byte size", name);
        return -1;
    }
    size_t numel = has_zero ? 0 : prod;
    if (has_zero) nbytes = 0;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1))) {
        seterr(err, errlen, "tensor %.200s: \"data_offsets\" is not [begin, end]", name);
        return -1;
    }
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t en = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || en < b) {
        seterr(err, errlen, "tensor %.200s: data_offsets [%lld, %lld] are not 0 <= begin <= end",
               name, (long long)b, (long long)en);
        return -1;
    }
    if ((unsigned long long)en > datalen) {
        seterr(err, errlen,
               "tensor %.200s: data_offsets end %lld is past the data section (%zu bytes): "
               "truncated file?",
               name, (long long)en, datalen);
        return -1;
    }
    if ((size_t)(en - b) != nbytes) {
        seterr(err, errlen,
               "tensor %.200s: shape and dtype %s need %zu bytes, data_offsets span %lld", name,
               tst_dtype_name(t->dtype), nbytes, (long long)(en - b));
        return -1;
    }
    t->numel = numel;
    t->nbytes = nbytes;
    t->data = data + (size_t)b;
    return 0;
}

static int check_overlaps(tst_file *f, char *err, size_t errlen) {
    if (f->ntensors < 2) return 0;
    span *s = malloc(f->ntensors * sizeof *s);
    if (!s) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < f->ntensors; i++) {
        const tst_tensor *t = &f->tensors[i];
        if (t->nbytes == 0) continue; /* empty tensors occupy no bytes */
        size_t b = (size_t)((const uint8_t *)t->data - f->base);
        s[k++] = (span){b, b + t->nbytes, t->name};
    }
    qsort(s, k, sizeof *s, cmp_span);
    size_t max_i = 0;
    for (size_t i = 1; i < k; i++) {
        if (s[i].begin < s[max_i].end) {
            seterr(err, errlen, "tensors %.200s and %.200s overlap in the data section",
                   s[max_i].name, s[i].name);
            free(s);
            return -1;
        }
        if (s[i].end > s[max_i].end) max_i = i;
    }
    free(s);
    return 0;
}

static int parse(tst_file *f, char *err, size_t errlen) {
    if (f->size < 8) {
        seterr(err, errlen, "file is %zu bytes, too small for a safetensors header", f->size);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->base[i];
    if (n > TST_MAX_HEADER) {
        seterr(err, errlen, "header length %llu is over the %u-byte limit (not a safetensors file?)",
               (unsigned long long)n, TST_MAX_HEADER);
        return -1;
    }
    if (n > f->size - 8) {
        seterr(err, errlen, "header length %llu is past the end of the %zu-byte file: truncated?",
               (unsigned long long)n, f->size);
        return -1;
    }
    if (n < 2) {
        seterr(err, errlen, "header length %llu is too small for a JSON object", (unsigned long long)n);
        return -1;
    }
    const uint8_t *hdr = f->base + 8;
    const uint8_t *data = hdr + n;
    size_t datalen = f->size - 8 - (size_t)n;
    if (!json_depth_ok(hdr, (size_t)n, TST_MAX_JSON_DEPTH)) {
        seterr(err, errlen, "header JSON is nested deeper than %d levels", TST_MAX_JSON_DEPTH);
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)hdr, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        seterr(err, errlen, "header is not valid JSON: %s (at byte %d)", je.text, je.position);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        seterr(err, errlen, "header JSON is not an object");
        goto out;
    }
    size_t cap = json_object_size(root);
    if (cap) {
        f->tensors = calloc(cap, sizeof *f->tensors);
        if (!f->tensors) {
            seterr(err, errlen, "out of memory");
            goto out;
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (parse_metadata(f, v, err, errlen) != 0) goto out;
            continue;
        }
        tst_tensor *t = &f->tensors[f->ntensors];
        if (parse_tensor(key, v, data, datalen, t, err, errlen) != 0) goto out;
        if (!(t->name = strdup(key))) {
            seterr(err, errlen, "out of memory");
            goto out;
        }
        f->ntensors++;
    }
    if (f->ntensors) qsort(f->tensors, f->ntensors, sizeof *f->tensors, cmp_tensor_name);
    rc = check_overlaps(f, err, errlen);
out:
    json_decref(root);
    return rc;
}

/* ---- open / close ------------------------------------------------------------- */

void tst_close(tst_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->ntensors; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    if (f->mapped) munmap((void *)f->base, f->size);
    free(f);
}

int tst_open_memory(const void *buf, size_t len, tst_file **out, char *err, size_t errlen) {
    if (!out) {
        seterr(err, errlen, "tst_open_memory: no output pointer");
        return -1;
    }
    *out = NULL;
    if (!buf && len) {
        seterr(err, errlen, "tst_open_memory: no buffer");
        return -1;
    }
    tst_file *f = calloc(1, sizeof *f);
    if (!f) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    f->base = buf;
    f->size = len;
    if (parse(f, err, errlen) != 0) {
        tst_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

int tst_open(const char *path, tst_file **out, char *err, size_t errlen) {
    if (!out || !path) {
        seterr(err, errlen, "tst_open: no path or output pointer");
        return -1;
    }
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%.400s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        seterr(err, errlen, "%.400s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        seterr(err, errlen, "%.400s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size < 8) {
        seterr(err, errlen, "%.400s: file is %lld bytes, too small for a safetensors header", path,
               (long long)st.st_size);
        close(fd);
        return -1;
    }
    if ((unsigned long long)st.st_size > SIZE_MAX) {
        seterr(err, errlen, "%.400s: file too large to map", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (p == MAP_FAILED) {
        seterr(err, errlen, "%.400s: mmap: %s", path, strerror(merr));
        return -1;
    }
    tst_file *f = calloc(1, sizeof *f);
    if (!f) {
        munmap(p, size);
        seterr(err, errlen, "out of memory");
        return -1;
    }
    f->base = p;
    f->size = size;
    f->mapped = 1;
    char msg[512];
    if (parse(f, msg, sizeof msg) != 0) {
        seterr(err, errlen, "%.400s: %s", path, msg);
        tst_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

/* ---- lookup ------------------------------------------------------------------- */

size_t tst_count(const tst_file *f) { return f ? f->ntensors : 0; }

const tst_tensor *tst_at(const tst_file *f, size_t i) {
    return f && i < f->ntensors ? &f->tensors[i] : NULL;
}

const tst_tensor *tst_find(const tst_file *f, const char *name) {
    if (!f || !name) return NULL;
    size_t lo = 0, hi = f->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

size_t tst_metadata_count(const tst_file *f) { return f ? f->nmeta : 0; }

const char *tst_metadata_get(const tst_file *f, const char *key) {
    if (!f || !key) return NULL;
    size_t lo = 0, hi = f->nmeta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, f->meta[mid].key);
        if (c == 0) return f->meta[mid].value;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

int tst_metadata_at(const tst_file *f, size_t i, const char **key, const char **value) {
    if (!f || i >= f->nmeta) return -1;
    if (key) *key = f->meta[i].key;
    if (value) *value = f->meta[i].value;
    return 0;
}

/* ---- writer ------------------------------------------------------------------- */

typedef struct {
    const tst_tensor *t;
} wref;

static int cmp_layout(const void *a, const void *b) {
    const tst_tensor *x = ((const wref *)a)->t, *y = ((const wref *)b)->t;
    int rx = dtype_info[x->dtype].rank, ry = dtype_info[y->dtype].rank;
    if (rx != ry) return rx > ry ? -1 : 1; /* wider first, as the reference does */
    return strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int write_all(FILE *fp, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, fp) == n ? 0 : -1; }

int tst_write(const char *path, const tst_tensor *tensors, size_t n, const tst_meta *meta,
              size_t nmeta, char *err, size_t errlen) {
    if (!path || (n && !tensors) || (nmeta && !meta)) {
        seterr(err, errlen, "tst_write: bad arguments");
        return -1;
    }
    /* validate */
    for (size_t i = 0; i < n; i++) {
        const tst_tensor *t = &tensors[i];
        if (!t->name || strcmp(t->name, "__metadata__") == 0) {
            seterr(err, errlen, "tst_write: tensor %zu has no name or a reserved one", i);
            return -1;
        }
        if ((unsigned)t->dtype >= TST_DTYPE_COUNT) {
            seterr(err, errlen, "tst_write: tensor %.200s has an invalid dtype", t->name);
            return -1;
        }
        if (t->ndim < 0 || t->ndim > TST_MAX_DIMS) {
            seterr(err, errlen, "tst_write: tensor %.200s has %d dimensions", t->name, t->ndim);
            return -1;
        }
        size_t numel = 1, nbytes;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || (uint64_t)t->shape[d] > SIZE_MAX ||
                __builtin_mul_overflow(numel, (size_t)t->shape[d], &numel)) {
                seterr(err, errlen, "tst_write: tensor %.200s has a bad shape", t->name);
                return -1;
            }
        }
        if (__builtin_mul_overflow(numel, tst_dtype_size(t->dtype), &nbytes) || nbytes != t->nbytes) {
            seterr(err, errlen, "tst_write: tensor %.200s: nbytes %zu does not match its shape",
                   t->name, t->nbytes);
            return -1;
        }
        if (nbytes && !t->data) {
            seterr(err, errlen, "tst_write: tensor %.200s has no data", t->name);
            return -1;
        }
    }
    int rc = -1;
    wref *order = NULL;
    json_t *root = NULL;
    char *hdr = NULL, *tmp = NULL;
    FILE *fp = NULL;
    if (n && !(order = malloc(n * sizeof *order))) goto oom;
    for (size_t i = 0; i < n; i++) order[i].t = &tensors[i];
    if (n) qsort(order, n, sizeof *order, cmp_layout);
    if (n > 1) { /* duplicate names: sort a copy of the name pointers */
        const char **names = malloc(n * sizeof *names);
        if (!names) goto oom;
        for (size_t i = 0; i < n; i++) names[i] = tensors[i].name;
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 1; i < n; i++)
            if (strcmp(names[i - 1], names[i]) == 0) {
                seterr(err, errlen, "tst_write: two tensors named %.200s", names[i]);
                free(names);
                goto out;
            }
        free(names);
    }
    if (!(root = json_object())) goto oom;
    if (nmeta) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, "__metadata__", m) != 0) goto oom;
        for (size_t i = 0; i < nmeta; i++) {
            if (!meta[i].key || !meta[i].value) {
                seterr(err, errlen, "tst_write: metadata entry %zu has no key or value", i);
                goto out;
            }
            if (json_object_get(m, meta[i].key)) {
                seterr(err, errlen, "tst_write: metadata key %.200s given twice", meta[i].key);
                goto out;
            }
            json_t *s = json_string(meta[i].value);
            if (!s) {
                seterr(err, errlen, "tst_write: metadata %.200s is not UTF-8", meta[i].key);
                goto out;
            }
            if (json_object_set_new(m, meta[i].key, s) != 0) {
                seterr(err, errlen, "tst_write: metadata key %.200s is not UTF-8", meta[i].key);
                goto out;
            }
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const tst_tensor *t = order[i].t;
        json_t *shape = json_array();
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", tst_dtype_name(t->dtype), "shape",
                              shape, "data_offsets", (json_int_t)off, (json_int_t)(off + t->nbytes));
        if (!e) goto oom;
        for (int d = 0; d < t->ndim; d++)
            if (json_array_append_new(shape, json_integer(t->shape[d])) != 0) {
                json_decref(e);
                goto oom;
            }
        if (json_object_set_new(root, t->name, e) != 0) {
            seterr(err, errlen, "tst_write: tensor name %.200s is not UTF-8", t->name);
            goto out;
        }
        off += t->nbytes;
    }
    if (!(hdr = json_dumps(root, JSON_COMPACT))) goto oom;
    size_t hlen = strlen(hdr), pad = (8 - hlen % 8) % 8, total = hlen + pad;
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (uint8_t)((uint64_t)total >> (8 * i));

    size_t plen = strlen(path);
    if (!(tmp = malloc(plen + 16))) goto oom;
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        seterr(err, errlen, "%.400s: %s", tmp, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    (void)fchmod(fd, 0644);
    if (!(fp = fdopen(fd, "wb"))) {
        close(fd);
        goto ioerr;
    }
    static const char spaces[8] = "        ";
    if (write_all(fp, lenbuf, 8) || write_all(fp, hdr, hlen) || write_all(fp, spaces, pad)) goto ioerr;
    for (size_t i = 0; i < n; i++)
        if (write_all(fp, order[i].t->data, order[i].t->nbytes)) goto ioerr;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) goto ioerr;
    FILE *c = fp;
    fp = NULL;
    if (fclose(c) != 0) goto ioerr;
    if (rename(tmp, path) != 0) goto ioerr;
    free(tmp);
    tmp = NULL;
    rc = 0;
    goto out;
oom:
    seterr(err, errlen, "tst_write: out of memory");
    goto out;
ioerr:
    seterr(err, errlen, "%.400s: %s", path, strerror(errno));
out:
    if (fp) fclose(fp);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(hdr);
    json_decref(root);
    free(order);
    return rc;
}
