/* model_hash.c - SHA-256 of model files (OpenSSL EVP) and its JSON cache.
 *
 * The cache file looks like
 *   {"version": 1, "files": {"/abs/path/model.safetensors":
 *       {"size": 2132625894, "mtime_ns": 1700000000123456789, "sha256": "6ce0..."}}}
 * An entry is used only when the file's current size and mtime both match.
 * The file is stat'ed before and after hashing; if it changed meanwhile the
 * hash is returned but not cached. Concurrent writers (two workers sharing a
 * models folder) each rename a complete file into place, so the cache is
 * never torn; at worst one entry is lost and computed again later.
 */
#include "model_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#define TMH_BLOCK (1u << 20)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void tmh_short(const char hex[TMH_HEX_LEN + 1], char out[TMH_SHORT_LEN + 1]) {
    memcpy(out, hex, TMH_SHORT_LEN);
    out[TMH_SHORT_LEN] = '\0';
}

/* Hash an open descriptor to the end. */
static int hash_fd(int fd, const char *path, char hex[TMH_HEX_LEN + 1], char *err, size_t errlen) {
    int rc = -1;
    unsigned char *buf = malloc(TMH_BLOCK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!buf || !ctx) {
        seterr(err, errlen, "out of memory");
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        seterr(err, errlen, "SHA-256 init failed");
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf, TMH_BLOCK);
        if (r < 0) {
            if (errno == EINTR) continue;
            seterr(err, errlen, "%.400s: read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0) break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1) {
            seterr(err, errlen, "SHA-256 update failed");
            goto out;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        seterr(err, errlen, "SHA-256 final failed");
        goto out;
    }
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[TMH_HEX_LEN] = '\0';
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

static int open_regular(const char *path, struct stat *st, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%.400s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        seterr(err, errlen, "%.400s: not a regular file", path);
        close(fd);
        return -1;
    }
    return fd;
}

int tmh_sha256_file(const char *path, char hex[TMH_HEX_LEN + 1], char *err, size_t errlen) {
    if (!path || !hex) {
        seterr(err, errlen, "tmh_sha256_file: bad arguments");
        return -1;
    }
    struct stat st;
    int fd = open_regular(path, &st, err, errlen);
    if (fd < 0) return -1;
    int rc = hash_fd(fd, path, hex, err, errlen);
    close(fd);
    return rc;
}

static long long mtime_ns(const struct stat *st) {
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int is_hex64(const char *s) {
    if (strlen(s) != TMH_HEX_LEN) return 0;
    for (int i = 0; i < TMH_HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* Write root to cache_path atomically. Returns 0 or -1 (errors are not reported:
 * a cache that cannot be written only costs a recomputation later). */
static int save_cache(const char *cache_path, json_t *root) {
    size_t n = strlen(cache_path);
    char *tmp = malloc(n + 16);
    if (!tmp) return -1;
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", cache_path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    (void)fchmod(fd, 0644);
    int rc = json_dumpfd(root, fd, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (rc == 0 && write(fd, "\n", 1) != 1) rc = -1;
    if (close(fd) != 0) rc = -1;
    if (rc == 0 && rename(tmp, cache_path) != 0) rc = -1;
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

int tmh_cached(const char *cache_path, const char *file_path, char hex[TMH_HEX_LEN + 1], char *err,
               size_t errlen) {
    if (!cache_path || !file_path || !hex) {
        seterr(err, errlen, "tmh_cached: bad arguments");
        return -1;
    }
    char abs[PATH_MAX];
    if (!realpath(file_path, abs)) {
        seterr(err, errlen, "%.400s: %s", file_path, strerror(errno));
        return -1;
    }
    struct stat st;
    int fd = open_regular(abs, &st, err, errlen);
    if (fd < 0) return -1;

    /* look up */
    json_t *root = json_load_file(cache_path, JSON_REJECT_DUPLICATES, NULL);
    json_t *files = root ? json_object_get(root, "files") : NULL;
    if (!json_is_object(root) || json_integer_value(json_object_get(root, "version")) != 1 ||
        !json_is_object(files)) {
        json_decref(root); /* missing, corrupt or another version: start afresh */
        root = json_pack("{s:i, s:{}}", "version", 1, "files");
        files = root ? json_object_get(root, "files") : NULL;
    }
    if (!root || !files) {
        json_decref(root);
        close(fd);
        seterr(err, errlen, "out of memory");
        return -1;
    }
    json_t *e = json_object_get(files, abs);
    const char *h = json_string_value(json_object_get(e, "sha256"));
    if (json_is_object(e) && h && is_hex64(h) &&
        json_is_integer(json_object_get(e, "size")) &&
        json_integer_value(json_object_get(e, "size")) == (json_int_t)st.st_size &&
        json_is_integer(json_object_get(e, "mtime_ns")) &&
        json_integer_value(json_object_get(e, "mtime_ns")) == (json_int_t)mtime_ns(&st)) {
        memcpy(hex, h, TMH_HEX_LEN + 1);
        json_decref(root);
        close(fd);
        return 0;
    }

    /* compute */
    int rc = hash_fd(fd, abs, hex, err, errlen);
    struct stat after;
    int changed = fstat(fd, &after) != 0 || after.st_size != st.st_size ||
                  mtime_ns(&after) != mtime_ns(&st);
    close(fd);
    if (rc != 0) {
        json_decref(root);
        return -1;
    }
    if (!changed) {
        json_t *ne = json_pack("{s:I, s:I, s:s}", "size", (json_int_t)st.st_size, "mtime_ns",
                               (json_int_t)mtime_ns(&st), "sha256", hex);
        if (ne && json_object_set_new(files, abs, ne) == 0) (void)save_cache(cache_path, root);
    }
    json_decref(root);
    return 0;
}
