/* test_mem_plan.c - the memory planner (worker/pipeline/mem_plan.c): its
 * predictions against what a real UNet forward takes, on the tiny golden
 * model.
 *   - the planned arena bytes equal the arena's measured high-water mark of
 *     the real forward (te_arena_peak after the run pass), for several batch
 *     sizes and shapes;
 *   - the process's peak resident memory grows by the prediction within 15%
 *     when a large forward runs (measured from /proc/self/status VmHWM in a
 *     child process, after a small warm-up forward);
 *   - the row choice under a budget and the refusal with the numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem_plan.h"
#include "model_test_util.h"

#ifndef TESSERA_GOLDEN_DIR
#define TESSERA_GOLDEN_DIR "tests/golden"
#endif

static tpl_model *load(te_backend *be) {
    char path[1024], vocab[1024], err[1024];
    snprintf(path, sizeof path, "%s/models/sd1-tiny", TESSERA_GOLDEN_DIR);
    mtu_clip_vocab_path(vocab, sizeof vocab);
    tpl_load_opts lo = {.be = be, .vocab = vocab, .want_hash = 0, .arena_cap = 0};
    tpl_model *m = NULL;
    if (tpl_model_load(path, NULL, &lo, &m, err, sizeof err)) fail_msg("%s", err);
    return m;
}

static int forward(tpl_model *m, int B, int h, int w, int T) {
    int C = tmu_get_config(m->unet)->context_dim, in = tmu_get_config(m->unet)->in_channels;
    float *x = calloc((size_t)B * in * h * w, sizeof *x), *ctx = calloc((size_t)B * T * C, sizeof *ctx);
    float *out = malloc((size_t)B * 4 * h * w * sizeof *out), *t = calloc((size_t)B, sizeof *t);
    char err[512];
    for (int b = 0; b < B; b++) t[b] = 500;
    int rc = tmu_forward_nchw(m->unet, m->arena, x, B, h, w, t, ctx, T, out, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    free(x);
    free(ctx);
    free(out);
    free(t);
    return rc;
}

static void test_plan_equals_arena(void **st) {
    (void)st;
    te_backend *be = mtu_backend();
    tpl_model *m = load(be);
    const int shapes[][4] = {{1, 16, 16, 77}, {2, 32, 24, 77}, {4, 16, 32, 154}, {3, 40, 40, 77}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        size_t planned;
        char err[512];
        assert_int_equal(tmu_plan_bytes(m->unet, m->arena, s[0], s[1], s[2], s[3], &planned, err, sizeof err), 0);
        assert_int_equal(forward(m, s[0], s[1], s[2], s[3]), 0);
        size_t measured = te_arena_peak(m->arena);
        printf("B=%d %dx%d T=%d: planned %zu measured %zu bytes\n", s[0], s[1], s[2], s[3], planned, measured);
        assert_int_equal(planned, measured);
    }
    tpl_model_free(m);
    te_backend_destroy(be);
}

static long vm_hwm_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

/* The measurement runs in a fresh process (this program re-executed with
 * --peak-child): its peak RSS carries nothing of the parent's, and no OpenMP
 * thread team is inherited across fork. */
static int peak_child(void) {
    {
        te_backend *be = mtu_backend_try(NULL, 0);
        if (!be) return 3;
        tpl_model *m = load(be);
        if (forward(m, 1, 8, 8, 77)) return 4; /* warm: weights packed, pools up */
        long before = vm_hwm_kib();
        const int B = 2, h = 128, w = 128, T = 77;
        size_t planned;
        char err[512];
        if (tmu_plan_bytes(m->unet, m->arena, B, h, w, T, &planned, err, sizeof err)) return 5;
        /* host buffers of the call itself: x, ctx, out */
        size_t host = (size_t)B * (4 * h * w * 2 + T * 32) * sizeof(float);
        if (forward(m, B, h, w, T)) return 6;
        long after = vm_hwm_kib();
        double grown = (double)(after - before) * 1024.0, pred = (double)(planned + host);
        printf("child: predicted %.1f MiB, peak RSS grew %.1f MiB (ratio %.3f)\n", pred / 1048576, grown / 1048576,
               grown / pred);
        fflush(stdout);
        return grown > pred * 1.15 || grown < pred * 0.85 ? 1 : 0;
    }
}

static void test_process_peak(void **st) {
    (void)st;
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_mem_plan", "--peak-child", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_budget(void **st) {
    (void)st;
    te_backend *be = mtu_backend();
    tpl_model *m = load(be);
    tpl_mem_plan p;
    char err[512];
    assert_int_equal(tpl_plan_unet(m, 32, 32, 77, 4, 0, &p, err, sizeof err), 0);
    assert_int_equal(p.rows, 4);
    size_t two;
    assert_int_equal(tmu_plan_bytes(m->unet, m->arena, 2, 32, 32, 77, &two, err, sizeof err), 0);
    assert_int_equal(tpl_plan_unet(m, 32, 32, 77, 4, m->bytes + two, &p, err, sizeof err), 0);
    assert_int_equal(p.rows, 2);
    assert_true(p.peak <= m->bytes + two);
    assert_int_equal(tpl_plan_unet(m, 32, 32, 77, 4, m->bytes + p.unet_row1 - 1, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "memory budget"));
    tpl_model_free(m);
    te_backend_destroy(be);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--peak-child")) return peak_child();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_plan_equals_arena), cmocka_unit_test(test_process_peak),
                                       cmocka_unit_test(test_budget)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
