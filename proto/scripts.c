/* scripts.c - lookup and SHA-1 of the embedded Lua scripts (see scripts.h). */
#include "scripts.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

const char *tscript_body(const char *name) {
    for (const tscript_def *d = tscript_table; d->name; d++)
        if (strcmp(d->name, name) == 0) return d->body;
    return NULL;
}

void tscript_sha1(const char *body, char out[41]) {
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)body, strlen(body), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}
