/*
 * test_samplers.c -- worker/sample/schedule.c and sampler*.c against the
 * k-diffusion / A1111-math fixtures of tests/golden/make_sampler_golden.py
 * (schedules <= 1e-6 relative, final latents <= 1e-4 relative L2), plus
 * name resolution, JSON tables and cancel between steps.
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

#include "sampler.h"
#include "schedule.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif

typedef struct {
    unsigned char *buf;
    size_t len, off;
} reader;

static int rd(reader *r, void *dst, size_t n)
{
    if (r->off + n > r->len) return -1;
    memcpy(dst, r->buf + r->off, n);
    r->off += n;
    return 0;
}

static reader load_golden(void)
{
    reader r = {0};
    FILE *f = fopen(TESSERA_GOLDEN_DIR "/samplers/samplers.bin", "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    r.len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    r.buf = malloc(r.len);
    assert_non_null(r.buf);
    assert_int_equal(fread(r.buf, 1, r.len, f), r.len);
    fclose(f);
    assert_memory_equal(r.buf, "TSG1", 4);
    r.off = 4;
    return r;
}

/* ---- analytic denoisers and the fixed noise list ---- */

typedef struct {
    int kind;
    const float *noises;
    uint32_t nnoise, used;
    size_t n;
    int calls;
    int cancel_after; /* progress returns 1 at this step index; -1 never */
    int last_step;
} ctx_t;

static double mu(size_t k) { return 0.5 * sin(0.37 * (double)k); }

static int denoise(void *vctx, const float *x, float sigma, float *out, size_t n)
{
    ctx_t *c = vctx;
    double s = sigma, s2 = 0.64;
    c->calls++;
    for (size_t k = 0; k < n; k++) {
        if (c->kind == 0)
            out[k] = (float)((x[k] * s2 + mu(k) * s * s) / (s2 + s * s));
        else
            out[k] = (float)(mu(k) + 0.7 * tanh(x[k] / sqrt(1.0 + s * s) + 0.3 * mu(k)));
    }
    return 0;
}

static int noise(void *vctx, float *out, size_t n)
{
    ctx_t *c = vctx;
    if (c->used >= c->nnoise) return 1;
    memcpy(out, c->noises + (size_t)c->used * n, sizeof(float) * n);
    c->used++;
    return 0;
}

static int progress(void *vctx, int step, int total, double sigma, const float *x,
                    const float *den, size_t n)
{
    ctx_t *c = vctx;
    c->last_step = step;
    return c->cancel_after >= 0 && step >= c->cancel_after;
}

static double rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        double d = (double)a[k] - b[k];
        num += d * d;
        den += (double)b[k] * b[k];
    }
    return sqrt(num / den);
}

static void test_golden(void **state)
{
    (void)state;
    reader r = load_golden();
    uint32_t n = 0, nnoise = 0;
    assert_int_equal(rd(&r, &n, 4), 0);
    assert_int_equal(rd(&r, &nnoise, 4), 0);
    float *init = malloc(sizeof(float) * n), *noises = malloc(sizeof(float) * n * nnoise);
    float *x = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
    assert_int_equal(rd(&r, init, sizeof(float) * n), 0);
    assert_int_equal(rd(&r, noises, sizeof(float) * n * nnoise), 0);

    tsm_model_schedule m;
    assert_int_equal(tsm_schedule_init_sd(&m, TSM_PRED_EPS), TSM_OK);

    /* schedules */
    uint32_t ns = 0;
    assert_int_equal(rd(&r, &ns, 4), 0);
    double got[1100], ref[1100];
    double worst_sched = 0;
    for (uint32_t c = 0; c < ns; c++) {
        uint8_t si = 0, disc = 0;
        uint16_t steps = 0, cnt = 0;
        assert_int_equal(rd(&r, &si, 1), 0);
        assert_int_equal(rd(&r, &disc, 1), 0);
        assert_int_equal(rd(&r, &steps, 2), 0);
        assert_int_equal(rd(&r, &cnt, 2), 0);
        assert_int_equal(rd(&r, ref, sizeof(double) * cnt), 0);
        tsm_sigma_opts o = {0};
        o.discard_next_to_last_sigma = disc;
        size_t k = 0;
        assert_int_equal(tsm_compute_sigmas(&m, (tsm_scheduler)si, steps, &o, got, 1100, &k), TSM_OK);
        if (k != cnt) fail_msg("scheduler %d steps %d: %zu sigmas, want %u", si, steps, k, cnt);
        for (size_t i = 0; i < k; i++) {
            double e = ref[i] == 0 ? fabs(got[i]) : fabs(got[i] - ref[i]) / fabs(ref[i]);
            if (e > worst_sched) worst_sched = e;
            if (e > 1e-6)
                fail_msg("scheduler %s steps %d [%zu]: %.10g want %.10g",
                         tsm_scheduler_get((tsm_scheduler)si)->name, steps, i, got[i], ref[i]);
        }
    }
    printf("schedules: %u cases, worst relative error %.3g\n", ns, worst_sched);

    /* samplers */
    uint32_t nc = 0;
    assert_int_equal(rd(&r, &nc, 4), 0);
    for (uint32_t c = 0; c < nc; c++) {
        uint8_t sid = 0, kind = 0, sched = 0, pad = 0;
        uint16_t steps = 0;
        double eta = 0, churn = 0;
        uint32_t used = 0;
        assert_int_equal(rd(&r, &sid, 1), 0);
        assert_int_equal(rd(&r, &kind, 1), 0);
        assert_int_equal(rd(&r, &sched, 1), 0);
        assert_int_equal(rd(&r, &pad, 1), 0);
        assert_int_equal(rd(&r, &steps, 2), 0);
        assert_int_equal(rd(&r, &eta, 8), 0);
        assert_int_equal(rd(&r, &churn, 8), 0);
        assert_int_equal(rd(&r, &used, 4), 0);
        assert_int_equal(rd(&r, want, sizeof(float) * n), 0);

        tsm_sample_params p;
        tsm_sample_params_init(&p);
        p.sampler = (tsm_sampler_id)sid;
        p.scheduler = (tsm_scheduler)sched;
        p.steps = steps;
        p.eta = eta;
        p.s_churn = churn;
        ctx_t cx = {kind, noises, nnoise, 0, n, 0, -1, -1};
        tsm_callbacks cb = {denoise, noise, NULL, progress, &cx};
        memcpy(x, init, sizeof(float) * n);
        int rc = tsm_sample(&m, &p, &cb, x, n);
        const char *name = tsm_sampler_get(p.sampler)->name;
        if (rc != TSM_OK) fail_msg("%s: rc %d", name, rc);
        double e = rel_l2(x, want, n);
        printf("%-18s kind=%d sched=%-12s steps=%2d eta=%4.1f churn=%.1f: rel err %.3g\n", name,
               kind, tsm_scheduler_get(p.scheduler)->name, steps, eta, churn, e);
        if (e > 1e-4) fail_msg("%s: relative error %g > 1e-4", name, e);
        /* k-diffusion's Euler/Heun/DPM2 draw (unused) noise every step; we only when churning */
        int churn_sampler = p.sampler == TSM_EULER || p.sampler == TSM_HEUN || p.sampler == TSM_DPM2;
        uint32_t want_used = (churn_sampler && churn == 0) ? 0 : used;
        if (cx.used != want_used) fail_msg("%s: %u noises drawn, want %u", name, cx.used, want_used);
    }
    assert_int_equal(r.off, r.len);
    free(init); free(noises); free(x); free(want); free(r.buf);
}

static void test_names(void **state)
{
    (void)state;
    tsm_sampler_id id;
    tsm_scheduler sc;
    assert_int_equal(tsm_find("Euler a", &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_EULER_A);
    assert_int_equal(sc, TSM_SCHED_AUTOMATIC);
    assert_int_equal(tsm_find("k_euler_ancestral", &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_EULER_A);
    assert_int_equal(tsm_find("k_dpmpp_2m", &id, NULL), TSM_OK);
    assert_int_equal(id, TSM_DPMPP_2M);
    assert_int_equal(tsm_find("DPM++ 2M Karras", &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_DPMPP_2M);
    assert_int_equal(sc, TSM_SCHED_KARRAS);
    assert_int_equal(tsm_find("DPM++ 2M SDE Exponential", &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_DPMPP_2M_SDE);
    assert_int_equal(sc, TSM_SCHED_EXPONENTIAL);
    assert_int_equal(tsm_find("DPM++ 2M SDE Heun", &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_DPMPP_2M_SDE_HEUN);
    assert_int_equal(sc, TSM_SCHED_AUTOMATIC);
    assert_int_equal(tsm_find("Euler SGMUniform", &id, &sc), TSM_OK);
    assert_int_equal(sc, TSM_SCHED_SGM_UNIFORM);
    assert_int_equal(tsm_find("k_dpmpp_2m_ka", &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_DPMPP_2M);
    assert_int_equal(sc, TSM_SCHED_KARRAS);
    assert_int_equal(tsm_find("euler A", &id, NULL), TSM_OK);
    assert_int_equal(id, TSM_EULER_A);
    assert_int_equal(tsm_find("DDIM", &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_DDIM);
    assert_int_equal(tsm_find("LMS Karras", &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_LMS);
    assert_int_equal(tsm_find("Nope", &id, &sc), TSM_ERR_UNKNOWN);
    assert_int_equal(tsm_find("", &id, &sc), TSM_ERR_UNKNOWN);

    /* get_sampler_and_scheduler rules */
    assert_int_equal(tsm_resolve("DPM++ 2M Karras", NULL, &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_DPMPP_2M);
    assert_int_equal(sc, TSM_SCHED_AUTOMATIC); /* karras is its default */
    assert_int_equal(tsm_resolve("Euler", "karras", &id, &sc), TSM_OK);
    assert_int_equal(sc, TSM_SCHED_KARRAS);
    assert_int_equal(tsm_resolve("Euler Exponential", "Karras", &id, &sc), TSM_OK);
    assert_int_equal(sc, TSM_SCHED_EXPONENTIAL);
    assert_int_equal(tsm_resolve("Euler", "bogus", &id, &sc), TSM_OK);
    assert_int_equal(sc, TSM_SCHED_AUTOMATIC);
    assert_int_equal(tsm_resolve(NULL, NULL, &id, &sc), TSM_OK);
    assert_int_equal(id, TSM_DPMPP_2M);
    assert_int_equal(tsm_effective_scheduler(TSM_DPMPP_2M, TSM_SCHED_AUTOMATIC), TSM_SCHED_KARRAS);
    assert_int_equal(tsm_effective_scheduler(TSM_EULER, TSM_SCHED_AUTOMATIC), TSM_SCHED_UNIFORM);

    assert_int_equal(tsm_scheduler_find("SGM Uniform", &sc), TSM_OK);
    assert_int_equal(sc, TSM_SCHED_SGM_UNIFORM);
    assert_int_equal(tsm_scheduler_find("kl_optimal", &sc), TSM_OK);
    assert_int_equal(sc, TSM_SCHED_KL_OPTIMAL);
    assert_int_equal(tsm_scheduler_find("Align Your Steps", &sc), TSM_OK);
    assert_int_equal(sc, TSM_SCHED_ALIGN_YOUR_STEPS);
    assert_int_equal(tsm_scheduler_find("zzz", &sc), TSM_ERR_UNKNOWN);

    const char *const *names = tsm_sampler_names();
    int cnt = 0;
    while (names[cnt]) cnt++;
    assert_int_equal(cnt, TSM_SAMPLER_COUNT);
    assert_string_equal(names[0], "DPM++ 2M");

    char buf[4096];
    size_t len;
    assert_int_equal(tsm_samplers_json(buf, sizeof buf, &len), TSM_OK);
    assert_int_equal(strlen(buf), len);
    assert_non_null(strstr(buf, "{\"name\":\"DPM++ 2M\",\"aliases\":[\"k_dpmpp_2m\"],"
                                "\"options\":{\"scheduler\":\"karras\"}}"));
    assert_non_null(strstr(buf, "{\"name\":\"Euler a\",\"aliases\":[\"k_euler_a\",\"k_euler_ancestral\"]"));
    assert_int_equal(tsm_samplers_json(buf, 100, &len), TSM_ERR_SPACE);
    assert_int_equal(tsm_schedulers_json(buf, sizeof buf, &len), TSM_OK);
    assert_non_null(strstr(buf, "{\"name\":\"karras\",\"label\":\"Karras\",\"aliases\":null,"
                                "\"default_rho\":7.0,\"need_inner_model\":false}"));
    assert_non_null(strstr(buf, "\"aliases\":[\"SGMUniform\"]"));
}

static void test_schedule_basics(void **state)
{
    (void)state;
    tsm_model_schedule m;
    assert_int_equal(tsm_schedule_init_sd(&m, TSM_PRED_EPS), TSM_OK);
    assert_true(fabs(tsm_sigma_max(&m) - 14.6146) < 1e-3);
    assert_true(fabs(tsm_sigma_min(&m) - 0.0292) < 1e-3);
    for (double t = 0; t <= 999; t += 12.375)
        assert_true(fabs(tsm_sigma_to_t(&m, tsm_t_to_sigma(&m, t)) - t) < 1e-9);
    /* v prediction: D = c_skip x + c_out v; with v = (x c_in - x0/c... ) check a known value */
    float x = 2.0f, v = 0.5f, d;
    assert_int_equal(tsm_output_to_denoised(TSM_PRED_V, &x, &v, 1.0, &d, 1), TSM_OK);
    assert_true(fabs(d - (2.0 / 2.0 - 0.5 / sqrt(2.0))) < 1e-6);
    assert_int_equal(tsm_output_to_denoised(TSM_PRED_EPS, &x, &v, 2.0, &d, 1), TSM_OK);
    assert_true(fabs(d - 1.0) < 1e-6);
    assert_true(fabs(tsm_beta_ppf(0.5, 0.6, 0.6) - 0.5) < 1e-12);
    int ts[1001];
    size_t k;
    assert_int_equal(tsm_ddim_timesteps(20, 0, ts, 1001, &k), TSM_OK);
    assert_int_equal(k, 20);
    assert_int_equal(ts[0], 1);
    assert_int_equal(ts[19], 951);
}

static void test_cancel(void **state)
{
    (void)state;
    tsm_model_schedule m;
    tsm_schedule_init_sd(&m, TSM_PRED_EPS);
    const size_t n = 64;
    float x[64], nz[64 * 40];
    for (size_t k = 0; k < n; k++) x[k] = (float)sin((double)k);
    for (size_t k = 0; k < sizeof nz / sizeof nz[0]; k++) nz[k] = (float)cos(0.1 * k);
    const tsm_sampler_id ids[] = {TSM_EULER, TSM_EULER_A, TSM_HEUN, TSM_DPMPP_2M, TSM_DDIM, TSM_LMS};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        tsm_sample_params p;
        tsm_sample_params_init(&p);
        p.sampler = ids[i];
        p.steps = 20;
        ctx_t cx = {0, nz, 40, 0, n, 0, 4, -1};
        tsm_callbacks cb = {denoise, noise, NULL, progress, &cx};
        float y[64];
        memcpy(y, x, sizeof y);
        assert_int_equal(tsm_sample(&m, &p, &cb, y, n), TSM_ERR_CANCELLED);
        assert_int_equal(cx.last_step, 4); /* stopped right after step 4 */
        int per = p.sampler == TSM_HEUN ? 2 : 1;
        assert_int_equal(cx.calls, 5 * per);
    }
    /* bad arguments and failing callbacks */
    tsm_sample_params p;
    tsm_sample_params_init(&p);
    p.sampler = TSM_EULER_A;
    ctx_t cx = {0, nz, 0, 0, n, 0, -1, -1}; /* empty noise list: noise() fails */
    tsm_callbacks cb = {denoise, noise, NULL, NULL, &cx};
    float y[64];
    memcpy(y, x, sizeof y);
    assert_int_equal(tsm_sample(&m, &p, &cb, y, n), TSM_ERR_CALLBACK);
    p.steps = 0;
    assert_int_equal(tsm_sample(&m, &p, &cb, y, n), TSM_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_basics),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
