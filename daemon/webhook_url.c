/* webhook_url.c - which webhook targets are allowed (SSRF rules).
 *
 * A job's webhook URL is checked twice: at submit (twh_check_url: the shape
 * of the URL, and the address when the host is an IP literal) and at every
 * delivery, after the dispatcher resolved the name itself, on each address
 * (twh_address_is_public) - the address checked is then pinned for curl, so
 * a DNS answer that changes in between (rebinding) cannot redirect the POST
 * to an internal service.
 *
 * Only global unicast addresses pass. Refused, IPv4: 0/8, 10/8, 100.64/10,
 * 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24, 192.88.99/24,
 * 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4 and 240/4
 * (255.255.255.255 included). IPv6: everything outside 2000::/3 (::, ::1,
 * fc00::/7, fe80::/10, fec0::/10, ff00::/8, 64:ff9b::/96, ...), and inside it
 * 2001::/32 (Teredo), 2001:2::/48 (benchmarking), 2001:10::/28 and
 * 2001:20::/28 (ORCHID), 2001:db8::/32 and 3fff::/20 (documentation).
 * IPv4-mapped ::ffff:a.b.c.d and 6to4 2002:aabb:ccdd::/48 are judged by the
 * IPv4 address they carry.
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define TWH_URL_MAX 2048

typedef struct {
    uint32_t net, mask;
} v4net;

static int v4_is_public(uint32_t a) { /* a in host order */
    static const v4net refused[] = {
        {0x00000000, 0xff000000}, /* 0.0.0.0/8 "this network", unspecified */
        {0x0a000000, 0xff000000}, /* 10/8 */
        {0x64400000, 0xffc00000}, /* 100.64/10 CGNAT */
        {0x7f000000, 0xff000000}, /* 127/8 loopback */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local */
        {0xac100000, 0xfff00000}, /* 172.16/12 */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24 IETF protocol assignments */
        {0xc0000200, 0xffffff00}, /* 192.0.2/24 TEST-NET-1 */
        {0xc0586300, 0xffffff00}, /* 192.88.99/24 6to4 relay anycast */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 */
        {0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
        {0xc6336400, 0xffffff00}, /* 198.51.100/24 TEST-NET-2 */
        {0xcb007100, 0xffffff00}, /* 203.0.113/24 TEST-NET-3 */
        {0xe0000000, 0xf0000000}, /* 224/4 multicast */
        {0xf0000000, 0xf0000000}, /* 240/4 reserved, broadcast */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if ((a & refused[i].mask) == refused[i].net) return 0;
    return 1;
}

static uint32_t v4_at(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int v6_is_public(const unsigned char *b) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(b, mapped, 12)) return v4_is_public(v4_at(b + 12));
    if ((b[0] & 0xe0) != 0x20) return 0;               /* not 2000::/3 */
    if (b[0] == 0x20 && b[1] == 0x02) return v4_is_public(v4_at(b + 2)); /* 6to4 */
    if (b[0] == 0x20 && b[1] == 0x01) {
        unsigned w2 = (unsigned)b[2] << 8 | b[3];
        if (w2 == 0) return 0;                         /* 2001::/32 Teredo */
        if (w2 == 2 && b[4] == 0 && b[5] == 0) return 0; /* 2001:2::/48 */
        if ((w2 & 0xfff0) == 0x10 || (w2 & 0xfff0) == 0x20) return 0; /* ORCHID */
        if (w2 == 0x0db8) return 0;                    /* 2001:db8::/32 */
    }
    if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0) return 0; /* 3fff::/20 */
    return 1;
}

int twh_address_is_public(const struct sockaddr *sa) {
    if (!sa) return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return v4_is_public(ntohl(s4->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        return v6_is_public(s6->sin6_addr.s6_addr);
    }
    return 0;
}

/* A literal address in a URL host (IPv6 in brackets) -> sockaddr; 0 if it is a name. */
static int literal_address(const char *host, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        return 1;
    }
    size_t n = strlen(host);
    if (n > 2 && n < 64 && host[0] == '[' && host[n - 1] == ']') {
        char buf[64];
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = 0;
        if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            return 1;
        }
    }
    return 0;
}

int twh_check_url(const char *url, int allow_private, char *err, size_t errlen) {
    if (!url || !*url) {
        snprintf(err, errlen, "webhook url is empty");
        return -1;
    }
    if (strlen(url) > TWH_URL_MAX) {
        snprintf(err, errlen, "webhook url is longer than %d bytes", TWH_URL_MAX);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            snprintf(err, errlen, "webhook url has a space or a control or non-ASCII character");
            return -1;
        }
    }
    /* curl is lenient ("http:/x", "https:///x"); insist on the plain form */
    size_t skip = !strncasecmp(url, "http://", 7) ? 7 : !strncasecmp(url, "https://", 8) ? 8 : 0;
    if (!skip || url[skip] == '/' || url[skip] == '\\') {
        snprintf(err, errlen, "webhook url must start with http:// or https:// and a host");
        return -1;
    }
    int rc = -1;
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *pass = NULL, *zone = NULL;
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        snprintf(err, errlen, "webhook url is not a valid URL: %s", curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
        snprintf(err, errlen, "webhook url must be http:// or https://");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        snprintf(err, errlen, "webhook url must not contain credentials");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(err, errlen, "webhook url has no host");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
        snprintf(err, errlen, "webhook url must not name an IPv6 zone");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) {
        long p = strtol(port, NULL, 10);
        if (p < 1 || p > 65535) {
            snprintf(err, errlen, "webhook url port out of range");
            goto done;
        }
    }
    struct sockaddr_storage ss;
    if (!allow_private && literal_address(host, &ss) && !twh_address_is_public((struct sockaddr *)&ss)) {
        snprintf(err, errlen, "webhook url host %s is not a public address", host);
        goto done;
    }
    size_t hl = strlen(host);
    if (!allow_private && (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost.") ||
                           (hl > 10 && !strcasecmp(host + hl - 10, ".localhost")))) {
        snprintf(err, errlen, "webhook url host %s is not a public address", host);
        goto done;
    }
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(pass);
    curl_free(zone);
    curl_url_cleanup(u);
    return rc;
}
