/* test_tokenizer.c - CLIP BPE tokenizer against the reference's ids.
 *
 * tests/golden/text/tokenizer_cases.json holds prompts (as hex bytes, some
 * deliberately invalid UTF-8) and the ids transformers' slow CLIPTokenizer
 * gives for them (made by tests/golden/make_text_golden.py). The vocabulary
 * is bpe_simple_vocab_16e6.txt.gz from $TESSERA_CLIP_VOCAB or
 * ${TESSERA_DATA:-$HOME/.cache/tessera}/; a missing file is a failure that
 * says to run scripts/install-deps.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "clip_tokenizer.h"
#include "text_norm.h"
#include "unicode_tables.h"

static ttok_tokenizer *g_tok;

static void vocab_path(char *out, size_t n) {
    const char *e = getenv("TESSERA_CLIP_VOCAB");
    if (e && *e) { snprintf(out, n, "%s", e); return; }
    const char *d = getenv("TESSERA_DATA");
    if (d && *d) snprintf(out, n, "%s/bpe_simple_vocab_16e6.txt.gz", d);
    else snprintf(out, n, "%s/.cache/tessera/bpe_simple_vocab_16e6.txt.gz", getenv("HOME") ? getenv("HOME") : ".");
}

static int setup(void **state) {
    char path[4096], err[256];
    vocab_path(path, sizeof path);
    if (ttok_load_bpe_gz(path, &g_tok, err, sizeof err) < 0) {
        fprintf(stderr, "CLIP vocabulary not loadable (%s).\nRun scripts/install-deps.sh "
                        "(or scripts/fetch-clip-vocab.sh) or set TESSERA_CLIP_VOCAB.\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    ttok_free(g_tok);
    return 0;
}

static size_t unhex(const char *h, char *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

static json_t *load_cases_file(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/text/%s", TESSERA_GOLDEN_DIR, name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) fail_msg("%s: %s", name, je.text);
    return root;
}

static json_t *load_cases(void) { return load_cases_file("tokenizer_cases.json"); }

static int check_all_mode(const ttok_tokenizer *tok, ttok_mode mode, json_t *cases, int verbose) {
    size_t i, bad = 0;
    json_t *c;
    int ids[8192];
    char buf[65536];
    json_array_foreach(cases, i, c) {
        const char *hex = json_string_value(json_object_get(c, "hex"));
        json_t *want = json_object_get(c, "ids");
        size_t len = unhex(hex, buf), n;
        char err[128];
        assert_int_equal(ttok_encode_mode(tok, mode, buf, len, ids, 8192, &n, err, sizeof err), 0);
        int ok = n == json_array_size(want);
        for (size_t k = 0; ok && k < n; k++) ok = ids[k] == json_integer_value(json_array_get(want, k));
        if (!ok) {
            if (verbose && bad < 5) {
                fprintf(stderr, "case %zu (%s): got", i, hex);
                for (size_t k = 0; k < n && k < 40; k++) fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, "\n  want");
                for (size_t k = 0; k < json_array_size(want) && k < 40; k++)
                    fprintf(stderr, " %d", (int)json_integer_value(json_array_get(want, k)));
                fprintf(stderr, "\n");
            }
            bad++;
        }
    }
    return (int)bad;
}

static int check_all(const ttok_tokenizer *tok, json_t *cases, int verbose) {
    return check_all_mode(tok, TTOK_MODE_BASIC, cases, verbose);
}

static void test_golden_ids(void **state) {
    json_t *root = load_cases();
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_array_size(cases) >= 300);
    int bad = check_all(g_tok, cases, 1);
    json_decref(root);
    assert_int_equal(bad, 0);
}

/* ftfy mode (the default): ftfy.fix_text against the recorded "fixed" text,
 * then the ids of the whole pipeline. */
static void test_golden_ftfy(void **state) {
    json_t *root = load_cases_file("tokenizer_cases_ftfy.json");
    json_t *cases = json_object_get(root, "cases"), *c;
    assert_true(json_array_size(cases) >= 1000);
    assert_int_equal(ttok_get_mode(g_tok), TTOK_MODE_FTFY);
    static char buf[65536], want[65536];
    static uint32_t cp[65536], wcp[65536];
    size_t i, badfix = 0;
    json_array_foreach(cases, i, c) {
        size_t len = unhex(json_string_value(json_object_get(c, "hex")), buf);
        size_t wl = unhex(json_string_value(json_object_get(c, "fixed")), want);
        size_t n = ut_utf8_decode(buf, len, cp), wn = ut_utf8_decode(want, wl, wcp), fn = 0;
        uint32_t *fx = tn_ftfy_fix_text(cp, n, &fn);
        assert_non_null(fx);
        if (fn != wn || memcmp(fx, wcp, fn * sizeof *fx) != 0) {
            if (badfix < 5) {
                fprintf(stderr, "fix_text case %zu (%s):\n  got ", i, json_string_value(json_object_get(c, "hex")));
                for (size_t k = 0; k < fn && k < 40; k++) fprintf(stderr, " %X", fx[k]);
                fprintf(stderr, "\n  want");
                for (size_t k = 0; k < wn && k < 40; k++) fprintf(stderr, " %X", wcp[k]);
                fprintf(stderr, "\n");
            }
            badfix++;
        }
        free(fx);
    }
    int bad = check_all_mode(g_tok, TTOK_MODE_FTFY, cases, 1);
    json_decref(root);
    assert_int_equal(badfix, 0);
    assert_int_equal(bad, 0);
}

static void test_modes(void **state) {
    int ids[32];
    size_t n;
    /* ftfy path keeps accents and punctuation runs; BASIC strips / splits them */
    const char *s = "caf\xc3\xa9 &amp; \xe2\x80\x9chi\xe2\x80\x9d!!";
    assert_int_equal(ttok_encode(g_tok, s, strlen(s), ids, 32, &n, NULL, 0), 0);
    char out[128];
    ttok_decode(g_tok, ids, n, out, sizeof out);
    assert_string_equal(out, "caf\xc3\xa9 & \" hi \"!!");
    ttok_tokenizer *t = g_tok;
    assert_int_equal(ttok_set_mode(t, TTOK_MODE_BASIC), 0);
    assert_int_equal(ttok_get_mode(t), TTOK_MODE_BASIC);
    assert_int_equal(ttok_encode(g_tok, s, strlen(s), ids, 32, &n, NULL, 0), 0);
    ttok_decode(g_tok, ids, n, out, sizeof out);
    assert_string_equal(out, "cafe & amp ; \xe2\x80\x9c hi \xe2\x80\x9d ! !");
    assert_int_equal(ttok_set_mode(t, (ttok_mode)7), -1);
    assert_int_equal(ttok_set_mode(t, TTOK_MODE_FTFY), 0);
}

static void test_basics(void **state) {
    assert_int_equal(ttok_vocab_size(g_tok), TTOK_VOCAB_SIZE);
    assert_int_equal(ttok_bos_id(g_tok), TTOK_BOS);
    assert_int_equal(ttok_eos_id(g_tok), TTOK_EOS);
    assert_int_equal(ttok_token_id(g_tok, ",</w>"), 267);
    int ids[32];
    size_t n;
    const char *s = "a photo of an astronaut riding a horse";
    assert_int_equal(ttok_encode(g_tok, s, strlen(s), ids, 32, &n, NULL, 0), 0);
    int want[] = {320, 1125, 539, 550, 18376, 6765, 320, 4558};
    assert_int_equal(n, 8);
    assert_memory_equal(ids, want, sizeof want);
    char out[128];
    ttok_decode(g_tok, ids, n, out, sizeof out);
    assert_string_equal(out, s);
    /* short buffer: error, but the count is reported */
    char err[128];
    assert_int_equal(ttok_encode(g_tok, s, strlen(s), ids, 3, &n, err, sizeof err), -1);
    assert_int_equal(n, 8);
    /* counting only */
    assert_int_equal(ttok_encode(g_tok, s, strlen(s), NULL, 0, &n, NULL, 0), 0);
    assert_int_equal(n, 8);
    assert_int_equal(ttok_encode(g_tok, "", 0, ids, 32, &n, NULL, 0), 0);
    assert_int_equal(n, 0);
}

/* vocab.json + merges.txt written from the loaded .gz must load to the same tokenizer */
static void test_json_folder(void **state) {
    char dir[] = "/tmp/ttok-json-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char vp[256], mp[256];
    snprintf(vp, sizeof vp, "%s/vocab.json", dir);
    snprintf(mp, sizeof mp, "%s/merges.txt", dir);
    json_t *v = json_object();
    for (int i = 0; i < ttok_vocab_size(g_tok); i++) json_object_set_new(v, ttok_token_str(g_tok, i), json_integer(i));
    assert_int_equal(json_dump_file(v, vp, 0), 0);
    json_decref(v);
    FILE *f = fopen(mp, "w");
    assert_non_null(f);
    fprintf(f, "#version: 0.2\n");
    for (size_t i = 0; i < ttok_merge_count(g_tok); i++) {
        const char *a, *b;
        ttok_merge_parts(g_tok, i, &a, &b);
        fprintf(f, "%s %s\n", a, b);
    }
    fclose(f);
    ttok_tokenizer *t2;
    char err[256];
    assert_int_equal(ttok_load_json(vp, mp, &t2, err, sizeof err), 0);
    assert_int_equal(ttok_vocab_size(t2), TTOK_VOCAB_SIZE);
    assert_int_equal(ttok_bos_id(t2), TTOK_BOS);
    json_t *root = load_cases();
    int bad = check_all(t2, json_object_get(root, "cases"), 1);
    json_decref(root);
    ttok_free(t2);
    unlink(vp);
    unlink(mp);
    rmdir(dir);
    assert_int_equal(bad, 0);
}

static void test_load_errors(void **state) {
    ttok_tokenizer *t = (ttok_tokenizer *)1;
    char err[256] = "";
    assert_int_equal(ttok_load_bpe_gz("/nonexistent/x.gz", &t, err, sizeof err), -1);
    assert_null(t);
    assert_true(strlen(err) > 0);
    char p[] = "/tmp/ttok-bad-XXXXXX";
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#h\nonly_one_part\n", 17), 17);
    close(fd);
    assert_int_equal(ttok_load_bpe_gz(p, &t, err, sizeof err), -1); /* plain text is read by gzread too */
    assert_int_equal(ttok_load_json(p, p, &t, err, sizeof err), -1);
    fd = open(p, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "{\"a\": -1}", 9), 9);
    close(fd);
    assert_int_equal(ttok_load_json(p, p, &t, err, sizeof err), -1);
    unlink(p);
}

/* random bytes / invalid UTF-8: never a crash, ids always in range */
static void test_random_bytes(void **state) {
    srand(1234);
    static char buf[4096];
    static int ids[16384];
    for (int it = 0; it < 3000; it++) {
        size_t len = (size_t)(rand() % 300);
        int mode = rand() % 3;
        for (size_t i = 0; i < len; i++) {
            int r = rand();
            buf[i] = mode == 0 ? (char)r : mode == 1 ? (char)(0x80 | (r & 0x7F)) : (char)("a( ,'<|>\xc3\xa9\xe4\xbd\xa0\xf0\x9f"[r % 17]);
        }
        size_t n;
        assert_int_equal(ttok_encode(g_tok, buf, len, ids, 16384, &n, NULL, 0), 0);
        for (size_t k = 0; k < n; k++) assert_true(ids[k] >= 0 && ids[k] < TTOK_VOCAB_SIZE);
        char out[512];
        ttok_decode(g_tok, ids, n, out, sizeof out);
    }
}

/* a very long word is BPE'd in O(n log n) */
static void test_long_word(void **state) {
    size_t len = 200000;
    char *s = malloc(len);
    for (size_t i = 0; i < len; i++) s[i] = "abcdefghij"[(i * 7 + i / 3) % 10];
    size_t n;
    clock_t t0 = clock();
    assert_int_equal(ttok_encode(g_tok, s, len, NULL, 0, &n, NULL, 0), 0);
    double sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(n > 1000);
    assert_true(sec < 5.0);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_golden_ids),
        cmocka_unit_test(test_golden_ftfy),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_json_folder),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_long_word),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
