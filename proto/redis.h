/* redis.h - Redis addresses and the synchronous client used by workers,
 * the CLI and the daemon's background threads.
 *
 * URLs: redis://[:password@]host[:port][/db] or unix:///path/to.sock[?db=N]
 * (also redis+unix:// and a password as unix://:password@/path).
 * The daemon's request path is asynchronous (hiredis + libevent, daemon/);
 * it shares tred_url and the script table with this file.
 */
#ifndef TESSERA_REDIS_H
#define TESSERA_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct {
    int is_unix;
    char host[256];     /* host name, or socket path when is_unix */
    int port;
    int db;
    char password[256]; /* empty: no AUTH */
} tred_url;

int tred_parse_url(const char *url, tred_url *out, char *err, size_t errlen);

/* Connect, AUTH and SELECT. timeout_ms bounds connect and each command.
 * Returns NULL with err filled on failure. */
redisContext *tred_connect(const tred_url *u, int timeout_ms, char *err, size_t errlen);

/* Run an embedded script (scripts.h) by name: EVALSHA, loading it on NOSCRIPT.
 * argv are binary-safe (lens may be NULL for C strings). Returns the reply
 * (caller frees) or NULL with err filled on a connection error or a Lua error. */
redisReply *tred_script(redisContext *c, const char *name, int nkeys, int argc,
                        const char **argv, const size_t *lens, char *err, size_t errlen);

/* A command; on connection failure or an error reply returns NULL with err. */
redisReply *tred_command(redisContext *c, char *err, size_t errlen, const char *fmt, ...);

/* Redis TIME in milliseconds, or -1. */
long long tred_time_ms(redisContext *c);

#endif
