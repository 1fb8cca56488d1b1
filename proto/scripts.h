/* scripts.h - the Redis Lua scripts that make every job state change atomic.
 *
 * The sources live in proto/lua/ (one .lua file per script) (documented in docs/redis.md); the build
 * embeds them (proto/embed_lua.cmake) with proto/lua/common.lua prepended.
 * Callers run them with tred_script (sync, proto/redis.h) or the daemon's
 * async wrapper; both use EVALSHA and fall back to EVAL on NOSCRIPT.
 */
#ifndef TESSERA_SCRIPTS_H
#define TESSERA_SCRIPTS_H

typedef struct {
    const char *name; /* file name without .lua */
    const char *body;
} tscript_def;

extern const tscript_def tscript_table[];

/* The script body by name, or NULL. */
const char *tscript_body(const char *name);

/* Lower-case hex SHA-1 of the body, as EVALSHA wants it (41 bytes with NUL). */
void tscript_sha1(const char *body, char out[41]);

#endif
