/* test_webhook_url.c - the SSRF rules: twh_address_is_public on many
 * addresses, twh_check_url on many URLs. */
#include "webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int failures;

static int is_public(const char *text) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
    } else {
        fprintf(stderr, "bad test address %s\n", text);
        failures++;
        return -1;
    }
    return twh_address_is_public((struct sockaddr *)&ss);
}

static void test_addresses(void) {
    static const char *const refused[] = {
        "0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255",
        "172.16.0.1", "172.31.255.255", "192.168.0.1", "192.168.255.255", "169.254.169.254",
        "169.254.0.1", "100.64.0.1", "100.127.255.255", "192.0.0.8", "192.0.2.1", "198.51.100.7",
        "203.0.113.9", "198.18.0.1", "198.19.255.255", "192.88.99.1", "224.0.0.1", "239.255.255.250",
        "240.0.0.1", "255.255.255.255",
        "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "ff02::1", "ff0e::1",
        "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:192.168.1.1",
        "::ffff:0.0.0.0", "::127.0.0.1", "::8.8.8.8", "64:ff9b::a00:1", "100::1",
        "2001:db8::1", "2001:db8:ffff::1", "2001::1", "2001:0:4136:e378::1", "2001:2::1",
        "2001:10::1", "2001:20::1", "3fff::1", "2002:7f00:1::1", "2002:c0a8:101::1", "2002:a00:1::",
    };
    static const char *const allowed[] = {
        "8.8.8.8", "1.1.1.1", "93.184.216.34", "9.255.255.255", "11.0.0.0", "100.63.255.255",
        "100.128.0.0", "126.255.255.255", "128.0.0.1", "169.253.255.255", "169.255.0.1",
        "172.15.255.255", "172.32.0.0", "192.0.1.1", "192.0.3.1", "192.167.255.255", "192.169.0.0",
        "198.17.255.255", "198.20.0.0", "198.51.99.1", "198.51.101.1", "203.0.112.1", "203.0.114.1",
        "223.255.255.255",
        "2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001::1", "2001:200::1",
        "2001:db9::1", "2001:3::1", "2001:2:1::1", "3ffe::1", "3fff:1000::1",
        "::ffff:8.8.8.8", "::ffff:1.1.1.1", "2002:808:808::1",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (is_public(refused[i]) != 0) {
            fprintf(stderr, "address %s should be refused\n", refused[i]);
            failures++;
        }
    }
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (is_public(allowed[i]) != 1) {
            fprintf(stderr, "address %s should be allowed\n", allowed[i]);
            failures++;
        }
    }
    struct sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNIX;
    if (twh_address_is_public(&sa) || twh_address_is_public(NULL)) {
        fprintf(stderr, "non-IP addresses should be refused\n");
        failures++;
    }
}

static void url(const char *u, int allow_private, int want_ok) {
    char err[256] = "";
    int rc = twh_check_url(u, allow_private, err, sizeof err);
    if ((rc == 0) != want_ok) {
        fprintf(stderr, "url %s (allow_private=%d): got %s%s%s, want %s\n", u, allow_private,
                rc == 0 ? "ok" : "refused", rc ? ": " : "", rc ? err : "", want_ok ? "ok" : "refused");
        failures++;
    }
    if (rc && !err[0]) {
        fprintf(stderr, "url %s: refused without a message\n", u);
        failures++;
    }
}

static void test_urls(void) {
    url("https://example.com/hook", 0, 1);
    url("http://example.com/hook?x=1&y=2", 0, 1);
    url("https://example.com:8443/a/b", 0, 1);
    url("HTTPS://Example.COM/hook", 0, 1);
    url("https://8.8.8.8/hook", 0, 1);
    url("https://[2606:4700:4700::1111]/hook", 0, 1);
    url("https://[::ffff:8.8.8.8]/hook", 0, 1);
    url("https://localhost.example.com/", 0, 1); /* a name: checked at delivery */
    url("https://internal.corp/", 0, 1);          /* likewise */

    url("", 0, 0);
    url(NULL, 0, 0);
    url("example.com/hook", 0, 0);
    url("//example.com/hook", 0, 0);
    url("ftp://example.com/hook", 0, 0);
    url("file:///etc/passwd", 0, 0);
    url("gopher://example.com/", 0, 0);
    url("dict://example.com:11211/", 0, 0);
    url("ldap://example.com/", 0, 0);
    url("javascript:alert(1)", 0, 0);
    url("https://user:pass@example.com/", 0, 0);
    url("https://user@example.com/", 0, 0);
    url("https://:pass@example.com/", 0, 0);
    url("https:///hook", 0, 0);
    url("http:/example.com/hook", 0, 0);
    url("http:example.com/hook", 0, 0);
    url("http:\\\\example.com/hook", 0, 0);
    url("https://example.com:0/", 0, 0);
    url("https://example.com:65536/", 0, 0);
    url("https://example.com:99999/", 0, 0);
    url("https://example.com:-1/", 0, 0);
    url("https://exa mple.com/", 0, 0);
    url("https://example.com/a b", 0, 0);
    url("https://example.com/\r\nX: y", 0, 0);
    url("https://127.0.0.1/", 0, 0);
    url("http://127.0.0.1:8080/hook", 0, 0);
    url("http://10.0.0.5/", 0, 0);
    url("http://192.168.1.1/", 0, 0);
    url("http://172.20.0.1/", 0, 0);
    url("http://169.254.169.254/latest/meta-data/", 0, 0);
    url("http://100.100.100.200/", 0, 0);
    url("http://0.0.0.0/", 0, 0);
    url("http://255.255.255.255/", 0, 0);
    url("http://224.0.0.1/", 0, 0);
    url("http://192.0.2.1/", 0, 0);
    url("http://198.51.100.1/", 0, 0);
    url("http://203.0.113.1/", 0, 0);
    url("http://198.18.0.1/", 0, 0);
    url("http://[::1]/", 0, 0);
    url("http://[::]/", 0, 0);
    url("http://[fe80::1]/", 0, 0);
    url("http://[fe80::1%25eth0]/", 0, 0);
    url("http://[fd00::1]/", 0, 0);
    url("http://[::ffff:127.0.0.1]/", 0, 0);
    url("http://[::ffff:7f00:1]/", 0, 0);
    url("http://[::ffff:169.254.169.254]/", 0, 0);
    url("http://localhost/", 0, 0);
    url("http://LOCALHOST:8080/", 0, 0);
    url("http://foo.localhost/", 0, 0);
    /* other spellings of 127.0.0.1 that curl normalises to it */
    url("http://2130706433/", 0, 0);
    url("http://0x7f000001/", 0, 0);
    url("http://127.1/", 0, 0);
    url("http://0177.0.0.1/", 0, 0);

    /* allow_private lifts the address rules, not the shape rules */
    url("http://127.0.0.1:8080/hook", 1, 1);
    url("http://[::1]:8080/hook", 1, 1);
    url("http://localhost/", 1, 1);
    url("http://10.0.0.5/", 1, 1);
    url("ftp://127.0.0.1/", 1, 0);
    url("http://u:p@127.0.0.1/", 1, 0);

    char longurl[2100];
    strcpy(longurl, "https://example.com/");
    size_t n = strlen(longurl);
    memset(longurl + n, 'a', 2048 - n);
    longurl[2048] = 0;
    url(longurl, 0, 1);
    longurl[2048] = 'a';
    longurl[2049] = 0;
    url(longurl, 0, 0);
}

int main(void) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        fprintf(stderr, "curl_global_init failed\n");
        return 1;
    }
    test_addresses();
    test_urls();
    curl_global_cleanup();
    if (failures) {
        fprintf(stderr, "test_webhook_url: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_webhook_url: ok\n");
    return 0;
}
