/* test_config.c - the layered settings of proto/config.c: defaults, INI file,
 * TESSERA_* environment, flags, in that order; clear errors otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *listen;
    long long depth;
    double ratio;
    int open;
    long long body;
} settings;

#define OPT(sec, key, type, field, def, help) {sec, key, type, offsetof(settings, field), def, help}
static const tcfg_option opts[] = {
    OPT("http", "listen", TCFG_STRING, listen, "127.0.0.1:7860", "address"),
    OPT("jobs", "max_queue_depth", TCFG_INT, depth, "1000", "depth"),
    OPT("jobs", "ratio", TCFG_DOUBLE, ratio, "0.5", "ratio"),
    OPT("auth", "open_metrics", TCFG_BOOL, open, "true", "open"),
    OPT("http", "max_body", TCFG_BYTES, body, "50M", "body"),
};
static const tcfg_spec spec = {"test", "test program", opts, 5};

static void clear_env(void) {
    unsetenv("TESSERA_LISTEN");
    unsetenv("TESSERA_MAX_QUEUE_DEPTH");
    unsetenv("TESSERA_CONFIG");
    unsetenv("TESSERA_MAX_BODY");
}

static void test_defaults(void **st) {
    (void)st;
    clear_env();
    settings s = {0};
    char err[256];
    char *argv[] = {"test", NULL};
    assert_int_equal(tcfg_load(&spec, &s, 1, argv, NULL, NULL, err, sizeof err), TCFG_OK);
    assert_string_equal(s.listen, "127.0.0.1:7860");
    assert_int_equal(s.depth, 1000);
    assert_true(s.open);
    assert_int_equal(s.body, 50LL << 20);
    tcfg_free(&spec, &s);
}

static void test_layers(void **st) {
    (void)st;
    clear_env();
    char path[] = "/tmp/tessera-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *ini = "; comment\n[http]\nlisten = 0.0.0.0:80\nmax_body = 1G\n[jobs]\nmax_queue_depth = 5\nratio=0.25\n";
    assert_int_equal(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    setenv("TESSERA_MAX_QUEUE_DEPTH", "7", 1);
    settings s = {0};
    char err[256];
    char *argv[] = {"test", "--config", path, "--listen=127.0.0.1:9", "--open-metrics", "false", NULL};
    assert_int_equal(tcfg_load(&spec, &s, 6, argv, NULL, NULL, err, sizeof err), TCFG_OK);
    assert_string_equal(s.listen, "127.0.0.1:9"); /* flag beats file */
    assert_int_equal(s.depth, 7);                 /* env beats file */
    assert_true(s.ratio == 0.25);                 /* file beats default */
    assert_int_equal(s.body, 1LL << 30);
    assert_false(s.open);
    tcfg_free(&spec, &s);
    unlink(path);
    clear_env();
}

static void test_errors(void **st) {
    (void)st;
    clear_env();
    settings s = {0};
    char err[256];
    char *a1[] = {"test", "--max-queue-depth", "lots", NULL};
    assert_int_equal(tcfg_load(&spec, &s, 3, a1, NULL, NULL, err, sizeof err), TCFG_ERROR);
    assert_non_null(strstr(err, "max_queue_depth"));
    char *a2[] = {"test", "--no-such-flag", "1", NULL};
    assert_int_equal(tcfg_load(&spec, &s, 3, a2, NULL, NULL, err, sizeof err), TCFG_ERROR);
    assert_non_null(strstr(err, "--no-such-flag"));
    char *a3[] = {"test", "--config", "/nonexistent/x.ini", NULL};
    assert_int_equal(tcfg_load(&spec, &s, 3, a3, NULL, NULL, err, sizeof err), TCFG_ERROR);
    assert_non_null(strstr(err, "/nonexistent/x.ini"));
    setenv("TESSERA_MAX_BODY", "12Q", 1);
    char *a4[] = {"test", NULL};
    assert_int_equal(tcfg_load(&spec, &s, 1, a4, NULL, NULL, err, sizeof err), TCFG_ERROR);
    assert_non_null(strstr(err, "TESSERA_MAX_BODY"));
    char *a5[] = {"test", "--listen", NULL};
    clear_env();
    assert_int_equal(tcfg_load(&spec, &s, 2, a5, NULL, NULL, err, sizeof err), TCFG_ERROR);
    tcfg_free(&spec, &s);
    /* unknown key in a file names the file and the key */
    char path[] = "/tmp/tessera-config-XXXXXX";
    int fd = mkstemp(path);
    const char *ini = "[http]\nlisten_on = 1\n";
    assert_int_equal(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    char *a6[] = {"test", "--config", path, NULL};
    assert_int_equal(tcfg_load(&spec, &s, 3, a6, NULL, NULL, err, sizeof err), TCFG_ERROR);
    assert_non_null(strstr(err, "listen_on"));
    unlink(path);
    tcfg_free(&spec, &s);
}

static void test_parsers(void **st) {
    (void)st;
    long long v;
    assert_int_equal(tcfg_parse_bytes("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(tcfg_parse_bytes("1.5K", &v), 0);
    assert_int_equal(v, 1536);
    assert_int_equal(tcfg_parse_bytes("2GiB", &v), 0);
    assert_int_equal(v, 2LL << 30);
    assert_int_equal(tcfg_parse_bytes("-1", &v), -1);
    assert_int_equal(tcfg_parse_bytes("3X", &v), -1);
    int b;
    assert_int_equal(tcfg_parse_bool("Yes", &b), 0);
    assert_true(b);
    assert_int_equal(tcfg_parse_bool("maybe", &b), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_defaults), cmocka_unit_test(test_layers),
                                       cmocka_unit_test(test_errors), cmocka_unit_test(test_parsers)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
