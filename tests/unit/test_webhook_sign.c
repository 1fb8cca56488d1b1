/* test_webhook_sign.c - twh_sign against HMAC-SHA256 vectors.
 *
 * The primitive is checked with RFC 4231 test cases 1 and 2; the signature
 * format with values computed once with Python's hmac module:
 *   hmac.new(secret, b"%d." % t + body, hashlib.sha256).hexdigest()
 */
#include "webhook.h"

#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static int failures;
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static void hex(const unsigned char *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_rfc4231(void) {
    unsigned char mac[32];
    unsigned int n = 0;
    char h[65];
    unsigned char key1[20];
    memset(key1, 0x0b, sizeof key1);
    CHECK(HMAC(EVP_sha256(), key1, sizeof key1, (const unsigned char *)"Hi There", 8, mac, &n));
    hex(mac, n, h);
    CHECK(n == 32 && !strcmp(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
    const char *d2 = "what do ya want for nothing?";
    CHECK(HMAC(EVP_sha256(), "Jefe", 4, (const unsigned char *)d2, strlen(d2), mac, &n));
    hex(mac, n, h);
    CHECK(n == 32 && !strcmp(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
}

static void test_sign_vectors(void) {
    char out[128];
    const char *body = "{\"delivery\":\"j1-1\",\"event\":\"succeeded\"}";
    CHECK(twh_sign("whsec_test", 1700000000, body, strlen(body), out, sizeof out) == 0);
    CHECK(!strcmp(out, "t=1700000000,v1=0e7125f7ebed395001795c32b913c9ed50a6521e8113cbe6f1eb92a7afe5a394"));

    CHECK(twh_sign("", 0, "", 0, out, sizeof out) == 0);
    CHECK(!strcmp(out, "t=0,v1=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"));
    CHECK(twh_sign(NULL, 0, NULL, 0, out, sizeof out) == 0); /* same as empty */
    CHECK(!strcmp(out, "t=0,v1=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"));

    /* binary-safe body: the length counts, not a NUL */
    CHECK(twh_sign("s3cr3t", 1234567890123LL, "a\0b", 3, out, sizeof out) == 0);
    CHECK(!strcmp(out, "t=1234567890123,v1=33b97fcb20bc6083c8292d49096ef81e19e1029cfdfcbfa6ad3cb48937ddaa4b"));
}

static void test_sign_changes(void) {
    char a[128], b[128];
    CHECK(twh_sign("k", 100, "x", 1, a, sizeof a) == 0);
    CHECK(twh_sign("k", 101, "x", 1, b, sizeof b) == 0);
    CHECK(strcmp(a + 6, b + 6) != 0); /* the timestamp is signed */
    CHECK(twh_sign("K", 100, "x", 1, b, sizeof b) == 0);
    CHECK(strcmp(a, b) != 0);
    CHECK(twh_sign("k", 100, "y", 1, b, sizeof b) == 0);
    CHECK(strcmp(a, b) != 0);
}

static void test_sign_small_buffer(void) {
    char out[128];
    CHECK(twh_sign("k", 1700000000, "x", 1, out, 20) == -1);
    CHECK(twh_sign("k", 1700000000, "x", 1, out, 0) == -1);
    CHECK(twh_sign("k", 1700000000, "x", 1, NULL, 128) == -1);
    /* exactly enough: "t=1700000000,v1=" (16) + 64 + NUL */
    CHECK(twh_sign("k", 1700000000, "x", 1, out, 81) == 0);
    CHECK(strlen(out) == 80);
}

int main(void) {
    test_rfc4231();
    test_sign_vectors();
    test_sign_changes();
    test_sign_small_buffer();
    if (failures) {
        fprintf(stderr, "test_webhook_sign: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_webhook_sign: ok\n");
    return 0;
}
