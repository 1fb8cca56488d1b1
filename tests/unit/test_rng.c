/*
 * test_rng.c -- worker/sample/rng*.c against golden data made by
 * tests/golden/make_rng_golden.py (real torch CPU randn, a numpy port of
 * A1111's NV Philox generator, and a Python model of A1111's image noise):
 *   - torch.manual_seed + randn, bit-exact (FNV-1a hash of every float32 of
 *     every draw), many seeds and sizes, consecutive draws on one generator;
 *   - NV/GPU Philox draws bit-exact, and A1111's documented seed-0 vector;
 *   - A1111 image noise (batch seeds, subseed slerp, seed resize, ENSD):
 *     bit-exact, except slerp, which is within 4e-6 (torch reduces float32 in
 *     its own order); the sampler generator's next draw is always bit-exact;
 *   - API: errors as values, names, reseed, batch seed rules, paste offsets.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rng.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif
#define CASES TESSERA_GOLDEN_DIR "/rng/cases.txt"

static uint64_t fnv1a64(const float *v, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    const unsigned char *b = (const unsigned char *)v;  /* little-endian host */
    for (size_t i = 0; i < n * 4; i++) {
        h ^= b[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static FILE *open_cases(void)
{
    FILE *f = fopen(CASES, "r");
    if (!f)
        fail_msg("cannot open %s (run tests/golden/make_rng_golden.py)", CASES);
    return f;
}

/* ---- golden draws --------------------------------------------------------- */

static void test_golden_draws(void **state)
{
    (void)state;
    FILE *f = open_cases();
    char line[4096], kname[32], hex[256];
    trng_gen *gen = NULL;
    int draws = 0, gens = 0;
    unsigned long long seed = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long hash;
        size_t n;
        if (sscanf(line, "gen %31s %llu", kname, &seed) == 2) {
            trng_kind kind;
            assert_int_equal(trng_kind_from_name(kname, &kind), TRNG_OK);
            trng_free(gen);
            assert_int_equal(trng_create(kind, seed, &gen), TRNG_OK);
            gens++;
        } else if (sscanf(line, "draw %zu %llx %255s", &n, &hash, hex) == 3) {
            assert_non_null(gen);
            float *v = malloc(n * sizeof *v);
            assert_non_null(v);
            assert_int_equal(trng_randn(gen, v, n), TRNG_OK);
            char *p = hex;
            for (size_t i = 0; i < n && i < 8; i++) {
                uint32_t want = (uint32_t)strtoul(p, &p, 16);
                if (fbits(v[i]) != want)
                    fail_msg("%s seed %llu n %zu: value %zu is %08x (%.9g), want %08x", kname,
                             (unsigned long long)0, n, i, fbits(v[i]), v[i], want);
                if (*p == ',')
                    p++;
            }
            if (fnv1a64(v, n) != hash)
                fail_msg("%s seed %llu draw of %zu: hash %016llx, want %016llx", kname, seed, n,
                         (unsigned long long)fnv1a64(v, n), hash);
            free(v);
            draws++;
        }
    }
    trng_free(gen);
    fclose(f);
    assert_true(gens >= 15);
    assert_true(draws >= 30);
}

/* ---- NV documented vector -------------------------------------------------- */

static void test_nv_documented_vector(void **state)
{
    (void)state;
    /* A1111's documentation, seed 0, shape (3, 4), first call. */
    static const float doc[12] = {-0.92466259f, -0.42534415f, -2.6438457f, 0.14518388f,
                                  -0.12086647f, -0.57972564f, -0.62285122f, -0.32838709f,
                                  -1.07454231f, -0.36314407f, -1.67105067f, 2.26550497f};
    float v[12], g[12];
    trng_gen *nv, *gpu;
    assert_int_equal(trng_create(TRNG_NV, 0, &nv), TRNG_OK);
    assert_int_equal(trng_create(TRNG_GPU, 0, &gpu), TRNG_OK);
    assert_int_equal(trng_randn(nv, v, 12), TRNG_OK);
    assert_int_equal(trng_randn(gpu, g, 12), TRNG_OK);
    for (int i = 0; i < 12; i++) {
        assert_true(fabsf(v[i] - doc[i]) <= 3e-7f);
        assert_int_equal(fbits(v[i]), fbits(g[i]));
    }
    /* stateless form, second call = offset 1 */
    float a[5], b[5];
    trng_nv_randn_at(0, 1, a, 5);
    assert_int_equal(trng_randn(nv, b, 5), TRNG_OK);
    assert_memory_equal(a, b, sizeof a);
    trng_free(nv);
    trng_free(gpu);
}

/* ---- golden A1111 noise ---------------------------------------------------- */

static void test_golden_noise(void **state)
{
    (void)state;
    FILE *f = open_cases();
    char line[4096], kname[32], file[128];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long seed, subseed;
        long long ensd;
        double strength, tol;
        int w, h, rw, rh;
        size_t index;
        if (sscanf(line, "noise %31s %llu %llu %lf %d %d %d %d %lld %zu %lf %127s", kname, &seed,
                   &subseed, &strength, &w, &h, &rw, &rh, &ensd, &index, &tol, file) != 12)
            continue;
        trng_noise_params p = {0};
        assert_int_equal(trng_kind_from_name(kname, &p.source), TRNG_OK);
        p.seed = seed;
        p.subseed = subseed;
        p.subseed_strength = strength;
        p.width = w;
        p.height = h;
        p.seed_resize_from_w = rw;
        p.seed_resize_from_h = rh;
        p.ensd = ensd;
        size_t n = trng_latent_count(&p);
        assert_int_equal(n, (size_t)4 * (h / 8) * (w / 8));

        char path[512];
        snprintf(path, sizeof path, "%s/rng/%s", TESSERA_GOLDEN_DIR, file);
        FILE *g = fopen(path, "rb");
        assert_non_null(g);
        float *want = malloc(2 * n * sizeof *want), *got = malloc(2 * n * sizeof *got);
        assert_non_null(want);
        assert_non_null(got);
        assert_int_equal(fread(want, sizeof *want, 2 * n, g), 2 * n);
        fclose(g);

        trng_gen *sg = NULL;
        assert_int_equal(trng_image_noise(&p, index, got, &sg), TRNG_OK);
        assert_non_null(sg);
        assert_int_equal(trng_randn(sg, got + n, n), TRNG_OK);
        trng_free(sg);

        double worst = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)got[i] - want[i]);
            if (tol == 0.0 && fbits(got[i]) != fbits(want[i]))
                fail_msg("%s: element %zu is %.9g, want %.9g", file, i, got[i], want[i]);
            if (d > worst)
                worst = d;
        }
        if (tol > 0.0)
            print_message("%s (slerp): max |diff| %.3g, tolerance %.3g\n", file, worst, tol);
        if (worst > tol)
            fail_msg("%s: max diff %.3g > %.3g", file, worst, tol);
        if (memcmp(got + n, want + n, n * sizeof *got) != 0)
            fail_msg("%s: sampler generator's next draw differs", file);
        free(want);
        free(got);
        cases++;
    }
    fclose(f);
    assert_true(cases >= 10);
}

/* ---- API and semantics ----------------------------------------------------- */

static void test_errors_and_names(void **state)
{
    (void)state;
    trng_gen *g = (trng_gen *)&g;
    float v[4];
    assert_int_equal(trng_create((trng_kind)99, 1, &g), TRNG_EINVAL);
    assert_null(g);
    assert_int_equal(trng_create(TRNG_CPU, 1, NULL), TRNG_EINVAL);
    assert_int_equal(trng_randn(NULL, v, 4), TRNG_EINVAL);
    assert_int_equal(trng_reseed(NULL, 1), TRNG_EINVAL);
    trng_free(NULL);

    trng_kind k;
    assert_int_equal(trng_kind_from_name("nv", &k), TRNG_OK);
    assert_int_equal(k, TRNG_NV);
    assert_int_equal(trng_kind_from_name("GPU", &k), TRNG_OK);
    assert_int_equal(k, TRNG_GPU);
    assert_int_equal(trng_kind_from_name("cpu", &k), TRNG_OK);
    assert_int_equal(k, TRNG_CPU);
    assert_int_equal(trng_kind_from_name("TPU", &k), TRNG_EINVAL);
    assert_string_equal(trng_kind_name(TRNG_CPU), "CPU");
    assert_string_equal(trng_kind_name(TRNG_NV), "NV");

    trng_noise_params p = {.source = TRNG_CPU, .seed = 1, .width = 4, .height = 64};
    assert_int_equal(trng_latent_count(&p), 0);
    assert_int_equal(trng_image_noise(&p, 0, v, NULL), TRNG_EINVAL);
    assert_int_equal(trng_image_noise(NULL, 0, v, NULL), TRNG_EINVAL);

    assert_int_equal(trng_resolve_seed(17, 99), 17);
    assert_true(trng_resolve_seed(-1, UINT64_MAX) < 4294967294ull);
}

static void test_reseed_and_cache(void **state)
{
    (void)state;
    /* reseed == fresh, including torch's cached second normal (n < 16) */
    trng_kind kinds[] = {TRNG_CPU, TRNG_CPU_SCALAR, TRNG_NV};
    for (size_t k = 0; k < 3; k++) {
        trng_gen *a, *b;
        float x[40], y[40];
        assert_int_equal(trng_create(kinds[k], 5, &a), TRNG_OK);
        assert_int_equal(trng_create(kinds[k], 99, &b), TRNG_OK);
        assert_int_equal(trng_randn(b, y, 3), TRNG_OK);  /* leaves a cached value */
        assert_int_equal(trng_reseed(b, 5), TRNG_OK);
        assert_int_equal(trng_randn(a, x, 1), TRNG_OK);
        assert_int_equal(trng_randn(a, x + 1, 39), TRNG_OK);
        assert_int_equal(trng_randn(b, y, 1), TRNG_OK);
        assert_int_equal(trng_randn(b, y + 1, 39), TRNG_OK);
        assert_memory_equal(x, y, sizeof x);
        assert_int_equal(trng_randn(a, x, 0), TRNG_OK);
        trng_free(a);
        trng_free(b);
    }
    /* CPU: the mt19937 sees only the low 32 bits of the seed (as torch) */
    trng_gen *a, *b;
    float x[20], y[20];
    trng_create(TRNG_CPU, 5, &a);
    trng_create(TRNG_CPU, (1ull << 32) + 5, &b);
    trng_randn(a, x, 20);
    trng_randn(b, y, 20);
    assert_memory_equal(x, y, sizeof x);
    trng_free(a);
    trng_free(b);
    /* mt19937 reference value: 10000th output for seed 5489 */
    trng_mt19937 mt;
    trng_mt19937_seed(&mt, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++)
        v = trng_mt19937_next(&mt);
    assert_int_equal(v, 4123659995u);
}

static void test_batch_seeds(void **state)
{
    (void)state;
    trng_noise_params p = {.source = TRNG_CPU, .seed = 100, .subseed = 7, .width = 64, .height = 64};
    uint64_t s, ss;
    trng_image_seeds(&p, 3, &s, &ss);
    assert_int_equal(s, 103);
    assert_int_equal(ss, 10);
    p.subseed_strength = 0.5;
    trng_image_seeds(&p, 3, &s, &ss);
    assert_int_equal(s, 100);
    assert_int_equal(ss, 10);

    /* strength 0, no resize, no ENSD: image i = first draw of seed + i, and
     * the sampler generator continues that same stream */
    p.subseed_strength = 0.0;
    size_t n = trng_latent_count(&p);
    float *a = malloc(2 * n * sizeof *a), *b = malloc(2 * n * sizeof *b);
    trng_gen *sg, *ref;
    assert_int_equal(trng_image_noise(&p, 2, a, &sg), TRNG_OK);
    assert_int_equal(trng_randn(sg, a + n, n), TRNG_OK);
    assert_int_equal(trng_create(TRNG_CPU, 102, &ref), TRNG_OK);
    assert_int_equal(trng_randn(ref, b, n), TRNG_OK);
    assert_int_equal(trng_randn(ref, b + n, n), TRNG_OK);
    assert_memory_equal(a, b, 2 * n * sizeof *a);
    trng_free(sg);
    trng_free(ref);
    /* ENSD: sampler noise is a fresh generator of seed + ENSD */
    p.ensd = 31337;
    assert_int_equal(trng_image_noise(&p, 0, a, &sg), TRNG_OK);
    assert_int_equal(trng_randn(sg, a + n, n), TRNG_OK);
    assert_int_equal(trng_create(TRNG_CPU, 100 + 31337, &ref), TRNG_OK);
    assert_int_equal(trng_randn(ref, b + n, n), TRNG_OK);
    assert_memory_equal(a + n, b + n, n * sizeof *a);
    trng_free(sg);
    trng_free(ref);
    free(a);
    free(b);
}

static void test_paste_and_slerp(void **state)
{
    (void)state;
    /* 1 channel, noise 2x5 into 4x2: dx = floor(-3/2) = -2 -> 1 column, from
     * source column 2; dy = 1 */
    float noise[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    float x[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    trng_paste_centered(noise, 2, 5, x, 4, 2, 1);
    float want[8] = {-1, -1, 2, -1, 7, -1, -1, -1};
    assert_memory_equal(x, want, sizeof x);

    /* slerp with equal inputs takes the lerp branch with A1111's weights */
    float lo[6] = {1, 2, 3, 4, 5, 6}, out[6];
    assert_int_equal(trng_slerp(0.25, lo, lo, out, 1, 3, 2), TRNG_OK);
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(out[i] - lo[i]) < 1e-6f);
    /* orthogonal columns, val 0.5: both weights sin(pi/4)/1 */
    float a[2] = {1, 0}, b[2] = {0, 1};
    assert_int_equal(trng_slerp(0.5, a, b, out, 1, 2, 1), TRNG_OK);
    assert_true(fabsf(out[0] - 0.70710678f) < 1e-6f);
    assert_true(fabsf(out[1] - 0.70710678f) < 1e-6f);
    assert_int_equal(trng_slerp(0.5, NULL, b, out, 1, 2, 1), TRNG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_draws),
        cmocka_unit_test(test_nv_documented_vector),
        cmocka_unit_test(test_golden_noise),
        cmocka_unit_test(test_errors_and_names),
        cmocka_unit_test(test_reseed_and_cache),
        cmocka_unit_test(test_batch_seeds),
        cmocka_unit_test(test_paste_and_slerp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
