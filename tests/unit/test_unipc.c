/*
 * test_unipc.c -- worker/sample/sampler_unipc.c (A1111's UniPC) against the
 * float64 reference of tests/golden/make_unipc_golden.py (validated there
 * against diffusers' UniPCMultistepScheduler): final latents <= 1e-4
 * relative L2 for A1111 steps {5,10,20} x order {1,2,3} x bh1/bh2 with the
 * analytic "gauss" and "tanh" denoisers, plus the A1111 step-count rule
 * (30 steps -> 31 model calls), order 4, lower_order_final off; the sigmas
 * handed to the denoiser (and the UNet time the pipeline derives from
 * them); errors, cancel and discard.
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

static void rd(reader *r, void *dst, size_t n)
{
    assert_true(r->off + n <= r->len);
    memcpy(dst, r->buf + r->off, n);
    r->off += n;
}

static reader load_golden(void)
{
    reader r = {0};
    FILE *f = fopen(TESSERA_GOLDEN_DIR "/samplers/unipc.bin", "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    r.len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    r.buf = malloc(r.len);
    assert_non_null(r.buf);
    assert_int_equal(fread(r.buf, 1, r.len, f), r.len);
    fclose(f);
    assert_memory_equal(r.buf, "TSU1", 4);
    r.off = 4;
    return r;
}

/* ---- analytic denoisers (as test_samplers.c / make_sampler_golden.py) ---- */

#define MAX_CALLS 256

typedef struct {
    int kind;
    int calls;
    int fail_at;      /* denoise returns 1 on this call; -1 never */
    int cancel_after; /* progress returns 1 at this step index; -1 never */
    int reports, last_step, last_total;
    double sig[MAX_CALLS];
} ctx_t;

static double mu(size_t k) { return 0.5 * sin(0.37 * (double)k); }

static int denoise(void *vctx, const float *x, float sigma, float *out, size_t n)
{
    ctx_t *c = vctx;
    if (c->calls == c->fail_at) return 1;
    if (c->calls < MAX_CALLS) c->sig[c->calls] = sigma;
    c->calls++;
    double s = sigma, s2 = 0.64;
    for (size_t k = 0; k < n; k++) {
        if (c->kind == 0)
            out[k] = (float)((x[k] * s2 + mu(k) * s * s) / (s2 + s * s));
        else
            out[k] = (float)(mu(k) + 0.7 * tanh(x[k] / sqrt(1.0 + s * s) + 0.3 * mu(k)));
    }
    return 0;
}

static int progress(void *vctx, int step, int total, double sigma, const float *x,
                    const float *den, size_t n)
{
    ctx_t *c = vctx;
    (void)sigma;
    (void)x;
    (void)den;
    (void)n;
    assert_int_equal(step, c->reports); /* one report per step, in order */
    c->reports++;
    c->last_step = step;
    c->last_total = total;
    return c->cancel_after >= 0 && step >= c->cancel_after;
}

static void init_ctx(ctx_t *c, int kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->fail_at = -1;
    c->cancel_after = -1;
    c->last_step = -1;
}

static tsm_sample_params unipc_params(int steps, int order, int bh2, int lof)
{
    tsm_sample_params p;
    tsm_sample_params_init(&p);
    p.sampler = TSM_UNIPC;
    p.steps = steps;
    p.uni_pc_order = order;
    p.uni_pc_bh2 = bh2;
    p.uni_pc_lower_order_final = lof;
    return p;
}

static void test_golden(void **state)
{
    (void)state;
    reader r = load_golden();
    uint32_t n = 0;
    rd(&r, &n, 4);
    float *init = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n);
    double *want = malloc(sizeof(double) * n);
    assert_non_null(init);
    assert_non_null(x);
    assert_non_null(want);
    rd(&r, init, sizeof(float) * n);

    tsm_model_schedule m;
    assert_int_equal(tsm_schedule_init_sd(&m, TSM_PRED_EPS), TSM_OK);

    /* the bridge: sigmas the denoiser gets (20 steps, order 3) and the UNet
     * time the pipeline derives from them (tsm_sigma_to_t) = A1111's t_input */
    uint32_t nsig = 0;
    rd(&r, &nsig, 4);
    assert_true(nsig <= MAX_CALLS);
    double *rs = malloc(sizeof(double) * nsig), *rt = malloc(sizeof(double) * nsig);
    assert_non_null(rs);
    assert_non_null(rt);
    rd(&r, rs, sizeof(double) * nsig);
    rd(&r, rt, sizeof(double) * nsig);
    {
        tsm_sample_params p = unipc_params(20, 3, 0, 1);
        ctx_t cx;
        init_ctx(&cx, 0);
        tsm_callbacks cb = {denoise, NULL, NULL, progress, &cx};
        memcpy(x, init, sizeof(float) * n);
        assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_OK);
        assert_int_equal(cx.calls, (int)nsig);
        double ws = 0, wt = 0;
        for (uint32_t i = 0; i < nsig; i++) {
            double es = fabs(cx.sig[i] - rs[i]) / rs[i];
            double et = fabs(tsm_sigma_to_t(&m, cx.sig[i]) - rt[i]);
            if (es > ws) ws = es;
            if (et > wt) wt = et;
            if (es > 1e-6 || et > 1e-3)
                fail_msg("call %u: sigma %.9g want %.9g, t %.6f want %.6f", i, cx.sig[i], rs[i],
                         tsm_sigma_to_t(&m, cx.sig[i]), rt[i]);
        }
        printf("bridge: %u calls, sigma rel err %.3g, UNet time err %.3g timesteps\n", nsig, ws, wt);
    }

    uint32_t nc = 0;
    rd(&r, &nc, 4);
    double worst = 0;
    for (uint32_t c = 0; c < nc; c++) {
        uint8_t kind = 0, order = 0, bh2 = 0, lof = 0;
        uint16_t steps = 0, calls = 0;
        rd(&r, &kind, 1);
        rd(&r, &order, 1);
        rd(&r, &bh2, 1);
        rd(&r, &lof, 1);
        rd(&r, &steps, 2);
        rd(&r, &calls, 2);
        rd(&r, want, sizeof(double) * n);

        tsm_sample_params p = unipc_params(steps, order, bh2, lof);
        ctx_t cx;
        init_ctx(&cx, kind);
        tsm_callbacks cb = {denoise, NULL, NULL, progress, &cx}; /* no noise callback: none drawn */
        memcpy(x, init, sizeof(float) * n);
        int rc = tsm_sample(&m, &p, &cb, x, n);
        if (rc != TSM_OK) fail_msg("case %u: rc %d", c, rc);
        double num = 0, den = 0;
        for (uint32_t k = 0; k < n; k++) {
            double d = (double)x[k] - want[k];
            num += d * d;
            den += want[k] * want[k];
        }
        double e = sqrt(num / den);
        if (e > worst) worst = e;
        printf("UniPC %s order=%d lof=%d kind=%d steps=%2d calls=%2d: rel err %.3g\n",
               bh2 ? "bh2" : "bh1", order, lof, kind, steps, calls, e);
        if (e > 1e-4) fail_msg("case %u: relative error %g > 1e-4", c, e);
        if (cx.calls != calls) fail_msg("case %u: %d denoiser calls, want %u", c, cx.calls, calls);
        if (cx.reports != calls || cx.last_total != calls)
            fail_msg("case %u: %d progress reports (total %d), want %u", c, cx.reports, cx.last_total, calls);
    }
    assert_int_equal(r.off, r.len);
    printf("UniPC: %u cases, worst relative error %.3g\n", nc, worst);
    free(init);
    free(x);
    free(want);
    free(rs);
    free(rt);
    free(r.buf);
}

static void test_errors_and_cancel(void **state)
{
    (void)state;
    tsm_model_schedule m;
    assert_int_equal(tsm_schedule_init_sd(&m, TSM_PRED_EPS), TSM_OK);
    enum { n = 64 };
    float x0[n], x[n];
    for (size_t k = 0; k < n; k++) x0[k] = (float)sin(1.3 * (double)k);
    ctx_t cx;
    tsm_callbacks cb = {denoise, NULL, NULL, progress, &cx};

    /* A1111 asserts steps >= order: 2 steps (2 UniPC steps) with order 3 */
    tsm_sample_params p = unipc_params(2, 3, 0, 1);
    init_ctx(&cx, 0);
    memcpy(x, x0, sizeof x);
    assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_ERR_ARG);
    assert_int_equal(cx.calls, 0);
    p = unipc_params(20, 0, 0, 1);
    assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_ERR_ARG);
    /* 3 steps run 4 UniPC steps: order 3 is fine, order 4 too, 5 is not */
    p = unipc_params(3, 4, 0, 1);
    init_ctx(&cx, 0);
    assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_OK);
    assert_int_equal(cx.calls, 4);
    p = unipc_params(3, 5, 0, 1);
    assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_ERR_ARG);

    /* a failing denoiser (the initial call, a corrector call) */
    for (int at = 0; at < 3; at++) {
        p = unipc_params(20, 3, 0, 1);
        init_ctx(&cx, 1);
        cx.fail_at = at * 4;
        memcpy(x, x0, sizeof x);
        assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_ERR_CALLBACK);
    }

    /* cancel after step index 4: 1 initial + 5 corrector calls */
    p = unipc_params(20, 3, 1, 1);
    init_ctx(&cx, 1);
    cx.cancel_after = 4;
    memcpy(x, x0, sizeof x);
    assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_ERR_CANCELLED);
    assert_int_equal(cx.last_step, 4);
    assert_int_equal(cx.last_total, 20);
    assert_int_equal(cx.calls, 6);
    for (size_t k = 0; k < n; k++) assert_true(isfinite(x[k]));

    /* always_discard_next_to_last_sigma: A1111 takes 21 -> 22 timesteps */
    p = unipc_params(20, 3, 0, 1);
    p.always_discard_next_to_last_sigma = 1;
    init_ctx(&cx, 0);
    memcpy(x, x0, sizeof x);
    assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_OK);
    assert_int_equal(cx.calls, 22);
    assert_int_equal(cx.reports, 22);

    /* the first call is at t_input 999 (sigma_max), the last corrector call
     * just above the end (t = 1/1000 is never evaluated) */
    p = unipc_params(10, 3, 0, 1);
    init_ctx(&cx, 0);
    memcpy(x, x0, sizeof x);
    assert_int_equal(tsm_sample(&m, &p, &cb, x, n), TSM_OK);
    assert_int_equal(cx.calls, 10);
    assert_true(fabs(cx.sig[0] - tsm_sigma_max(&m)) < 1e-5 * tsm_sigma_max(&m));
    assert_true(fabs(tsm_sigma_to_t(&m, cx.sig[9]) - 99.9) < 1e-3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_errors_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
