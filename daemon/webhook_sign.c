/* webhook_sign.c - the Tessera-Signature header of webhook deliveries.
 *
 * "t=<unix seconds>,v1=<lower hex HMAC-SHA256(secret, "<t>.<body>")>", the
 * scheme receivers verify (docs/webhooks.md has a Python example). The
 * timestamp is inside the MAC so a captured request cannot be replayed later
 * with a new t; receivers reject old timestamps. A fresh t is signed on every
 * attempt. OpenSSL 3 EVP_MAC; no state kept between calls.
 */
#include "webhook.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

int twh_sign(const char *secret, long long t, const char *body, size_t len, char *out, size_t outlen) {
    char ts[32];
    int tl = snprintf(ts, sizeof ts, "%lld.", t);
    /* "t=" + digits + ",v1=" + 64 hex + NUL */
    if (tl <= 0 || !out || outlen < (size_t)tl + 2 + 4 + 64) return -1;
    if (!secret) secret = "";
    if (!body) len = 0;

    int rc = -1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    if (!ctx) goto done;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) != 1) goto done;
    if (EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tl) != 1) goto done;
    if (len && EVP_MAC_update(ctx, (const unsigned char *)body, len) != 1) goto done;
    if (EVP_MAC_final(ctx, mac, &maclen, sizeof mac) != 1 || maclen != 32) goto done;

    static const char hex[] = "0123456789abcdef";
    int n = snprintf(out, outlen, "t=%lld,v1=", t);
    if (n <= 0 || (size_t)n + 64 + 1 > outlen) goto done;
    for (size_t i = 0; i < maclen; i++) {
        out[n + 2 * i] = hex[mac[i] >> 4];
        out[n + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[n + 64] = 0;
    rc = 0;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    if (rc && out && outlen) out[0] = 0;
    return rc;
}
