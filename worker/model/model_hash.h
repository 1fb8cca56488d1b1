/* model_hash.h - the model hash A1111 shows: SHA-256 of the whole file.
 *
 * A1111 prints the first 10 hex digits ("shorthash") next to a checkpoint and
 * writes them into image metadata ("Model hash: 6ce0161689"), so Tessera
 * computes the same thing. Hashing a multi-GB checkpoint takes seconds, so
 * tmh_cached keeps results in a small JSON file (the caller picks the path,
 * e.g. <models>/.tessera-hashes.json) keyed by absolute path and trusted
 * while the file's size and mtime (ns) are unchanged.
 *
 * Errors: 0 on success, -1 with a message in err (errlen bytes).
 */
#ifndef TESSERA_MODEL_HASH_H
#define TESSERA_MODEL_HASH_H

#include <stddef.h>

#define TMH_HEX_LEN 64   /* hex digits of a SHA-256 */
#define TMH_SHORT_LEN 10 /* A1111 shorthash */

/* SHA-256 of the file at path, streamed in 1 MiB blocks, as 64 lowercase hex
 * digits plus a NUL. */
int tmh_sha256_file(const char *path, char hex[TMH_HEX_LEN + 1], char *err, size_t errlen);

/* Like tmh_sha256_file, but looked up in / stored to the cache file at
 * cache_path (created if missing; an unreadable or corrupt cache is ignored
 * and rewritten). The cache is replaced atomically (temporary file + rename);
 * failing to write it is not an error, the hash is still returned. */
int tmh_cached(const char *cache_path, const char *file_path, char hex[TMH_HEX_LEN + 1], char *err,
               size_t errlen);

/* The first 10 hex digits of hex, as A1111 shows them. */
void tmh_short(const char hex[TMH_HEX_LEN + 1], char out[TMH_SHORT_LEN + 1]);

#endif
