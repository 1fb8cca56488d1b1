/* redis.c - URL parsing, connecting and script calls for the synchronous
 * hiredis client (see redis.h). */
#include "redis.h"

#include "scripts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_db(const char *s, int *db) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > 1000000) return -1;
    *db = (int)v;
    return 0;
}

int tred_parse_url(const char *url, tred_url *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->port = 6379;
    const char *p;
    if (!strncmp(url, "unix://", 7) || !strncmp(url, "redis+unix://", 13)) {
        out->is_unix = 1;
        p = url + (url[0] == 'u' ? 7 : 13);
        const char *at = strchr(p, '@');
        if (at && p[0] == ':') {
            size_t n = (size_t)(at - p - 1);
            if (n >= sizeof out->password) goto bad;
            memcpy(out->password, p + 1, n);
            p = at + 1;
        }
        const char *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || n >= sizeof out->host || p[0] != '/') goto bad;
        memcpy(out->host, p, n);
        if (q) {
            if (strncmp(q, "?db=", 4) || parse_db(q + 4, &out->db)) goto bad;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8)) goto bad;
    p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p; /* redis://:pw@ or redis://user:pw@ (user ignored) */
        size_t n = (size_t)(at - pw);
        if (n >= sizeof out->password) goto bad;
        memcpy(out->password, pw, n);
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    char hostport[300];
    if (hl == 0 || hl >= sizeof hostport) goto bad;
    memcpy(hostport, p, hl);
    hostport[hl] = 0;
    char *colon = strrchr(hostport, ':');
    if (colon && hostport[0] != '[') {
        *colon = 0;
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || port <= 0 || port > 65535) goto bad;
        out->port = (int)port;
    }
    if (strlen(hostport) >= sizeof out->host) goto bad;
    strcpy(out->host, hostport);
    if (slash && slash[1] && parse_db(slash + 1, &out->db)) goto bad;
    return 0;
bad:
    snprintf(err, errlen,
             "bad Redis URL '%s': expected redis://[:password@]host[:port][/db] or unix:///path.sock[?db=N]",
             url);
    return -1;
}

redisReply *tred_command(redisContext *c, char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        snprintf(err, errlen, "redis: %s", c->errstr[0] ? c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisContext *tred_connect(const tred_url *u, int timeout_ms, char *err, size_t errlen) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = u->is_unix ? redisConnectUnixWithTimeout(u->host, tv)
                                 : redisConnectWithTimeout(u->host, u->port, tv);
    if (!c) {
        snprintf(err, errlen, "redis: out of memory");
        return NULL;
    }
    if (c->err) {
        if (u->is_unix)
            snprintf(err, errlen, "redis at unix:%s: %s", u->host, c->errstr);
        else
            snprintf(err, errlen, "redis at %s:%d: %s", u->host, u->port, c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r;
    if (u->password[0]) {
        r = tred_command(c, err, errlen, "AUTH %s", u->password);
        if (!r) goto fail;
        freeReplyObject(r);
    }
    if (u->db) {
        r = tred_command(c, err, errlen, "SELECT %d", u->db);
        if (!r) goto fail;
        freeReplyObject(r);
    }
    return c;
fail:
    redisFree(c);
    return NULL;
}

redisReply *tred_script(redisContext *c, const char *name, int nkeys, int argc,
                        const char **argv, const size_t *lens, char *err, size_t errlen) {
    const char *body = tscript_body(name);
    if (!body) {
        snprintf(err, errlen, "no script named %s", name);
        return NULL;
    }
    char sha[41];
    tscript_sha1(body, sha);
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    int n = argc + 3;
    const char **av = malloc(sizeof *av * (size_t)n);
    size_t *al = malloc(sizeof *al * (size_t)n);
    if (!av || !al) {
        free(av);
        free(al);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    redisReply *r = redisCommandArgv(c, n, av, al);
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        freeReplyObject(r);
        av[0] = "EVAL";
        al[0] = 4;
        av[1] = body;
        al[1] = strlen(body);
        r = redisCommandArgv(c, n, av, al);
    }
    free(av);
    free(al);
    if (!r) {
        snprintf(err, errlen, "redis: %s", c->errstr[0] ? c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis script %s: %s", name, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

long long tred_time_ms(redisContext *c) {
    redisReply *r = redisCommand(c, "TIME");
    if (!r) return -1;
    long long ms = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return ms;
}
