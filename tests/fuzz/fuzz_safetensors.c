/* fuzz_safetensors.c - libFuzzer target for the safetensors reader.
 *
 * Every input goes through tst_open_memory (the same validation as tst_open,
 * minus the mmap). When a file is accepted, every byte of every tensor is
 * read (so ASan catches any pointer the validation let past the end), small
 * F32/F16/BF16 tensors are converted with tst_to_f32, lookups and metadata
 * are exercised, and the file is written back with tst_write and re-read:
 * what the reader accepts, the writer must reproduce. Built with clang by
 * tests/fuzz/CMakeLists.txt; run as ctest fuzz_safetensors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exact-size copy: reads past the end are heap overflows for ASan */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    tst_file *f = NULL;
    char err[512];
    if (tst_open_memory(buf, size, &f, err, sizeof err) != 0) {
        if (f || err[0] == 0) abort(); /* an error must come with a message and no file */
        free(buf);
        return 0;
    }
    volatile uint8_t sink = 0;
    size_t n = tst_count(f);
    for (size_t i = 0; i < n; i++) {
        const tst_tensor *t = tst_at(f, i);
        if (!t || tst_find(f, t->name) != t) abort();
        const uint8_t *p = t->data;
        for (size_t j = 0; j < t->nbytes; j++) sink ^= p[j];
        if (t->numel <= 4096) {
            float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
            if (out) {
                int rc = tst_to_f32(t, out, t->numel, err, sizeof err);
                if ((rc == 0) != (t->supported != 0)) abort();
                free(out);
            }
        }
    }
    for (size_t i = 0; i < tst_metadata_count(f); i++) {
        const char *k, *v;
        if (tst_metadata_at(f, i, &k, &v) != 0 || tst_metadata_get(f, k) != v) abort();
    }
    /* write back and re-read (small files only, to keep the fuzzer fast) */
    if (size < 4096 && n < 64) {
        tst_tensor *all = calloc(n ? n : 1, sizeof *all);
        size_t nm = tst_metadata_count(f);
        tst_meta *meta = calloc(nm ? nm : 1, sizeof *meta);
        if (all && meta) {
            for (size_t i = 0; i < n; i++) all[i] = *tst_at(f, i);
            for (size_t i = 0; i < nm; i++) tst_metadata_at(f, i, &meta[i].key, &meta[i].value);
            char path[64];
            snprintf(path, sizeof path, "/tmp/fuzz_safetensors.%d", (int)getpid());
            if (tst_write(path, all, n, meta, nm, err, sizeof err) != 0) abort();
            tst_file *g = NULL;
            if (tst_open(path, &g, err, sizeof err) != 0 || tst_count(g) != n) abort();
            for (size_t i = 0; i < n; i++) {
                const tst_tensor *a = tst_at(f, i), *b = tst_at(g, i);
                if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->nbytes != b->nbytes ||
                    memcmp(a->data, b->data, a->nbytes))
                    abort();
            }
            tst_close(g);
            unlink(path);
        }
        free(all);
        free(meta);
    }
    tst_close(f);
    free(buf);
    (void)sink;
    return 0;
}
