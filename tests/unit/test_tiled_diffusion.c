/* test_tiled_diffusion.c - the Tiled Diffusion grid (worker/pipeline/
 * tiled_diffusion.c) against the worked examples of shared/reference/
 * tiling.md 1.3 (tile 96/96, overlap 48) and the Mixture of Diffusers
 * Gaussian of 2.1; plus the guards upstream lacks. Rendering with the grid is
 * checked end to end in tests/integration/test_sd_jobs.py (one tile equals
 * plain sampling). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>

#include "tiled_diffusion.h"

static void expect_grid(int w, int h, int cols, int rows, const int *xs, const int *ys) {
    tpl_td_grid g;
    assert_int_equal(tpl_td_grid_build(w, h, 96, 96, 48, TPL_TD_MULTIDIFFUSION, &g), 0);
    assert_int_equal(g.ntiles, cols * rows);
    for (int c = 0; c < cols; c++) assert_int_equal(g.tiles[c].x, xs[c]);
    for (int r = 0; r < rows; r++) assert_int_equal(g.tiles[r * cols].y, ys[r]);
    /* MultiDiffusion: 1 / count, every pixel covered */
    for (int q = 0; q < w * h; q++) assert_true(g.inv_wsum[q] > 0 && g.inv_wsum[q] <= 1);
    tpl_td_grid_free(&g);
}

static void test_worked_examples(void **st) {
    (void)st;
    const int a[] = {0, 32};
    expect_grid(128, 128, 2, 2, a, a);
    const int b[] = {0, 48, 96}, by[] = {0, 32};
    expect_grid(192, 128, 3, 2, b, by);
    const int c[] = {0, 40, 80, 120, 160};
    expect_grid(256, 256, 5, 5, c, c);
    const int d[] = {0, 46, 92, 138, 184, 231, 277, 323, 369, 416};
    expect_grid(512, 512, 10, 10, d, d);
}

static void test_mixture_weights(void **st) {
    (void)st;
    tpl_td_grid g;
    assert_int_equal(tpl_td_grid_build(96, 96, 96, 96, 48, TPL_TD_MIXTURE, &g), 0);
    assert_int_equal(g.ntiles, 1);
    /* per axis 1/sqrt(0.02 pi) = 3.989 at the centre; x edge 1.93e-5 of... the doc's numbers */
    double peak = 1.0 / (2 * M_PI * 0.01);
    double centre = g.tile_weight[48 * 96 + 48];
    assert_true(fabs(centre / peak - 1) < 0.01);
    /* y midpoint H/2 (upstream's asymmetry): the first row is lighter than the last */
    assert_true(g.tile_weight[0 * 96 + 48] < g.tile_weight[95 * 96 + 48]);
    /* normalised: one tile -> weight * inv_wsum == 1 */
    for (int q = 0; q < 96 * 96; q++) assert_true(fabs(g.tile_weight[q] * g.inv_wsum[q] - 1) < 1e-5);
    tpl_td_grid_free(&g);
}

static void test_guards(void **st) {
    (void)st;
    tpl_td_grid g;
    /* canvas smaller than a tile: one tile of the canvas size */
    assert_int_equal(tpl_td_grid_build(40, 30, 96, 96, 48, TPL_TD_MULTIDIFFUSION, &g), 0);
    assert_int_equal(g.ntiles, 1);
    assert_int_equal(g.tw, 40);
    assert_int_equal(g.th, 30);
    tpl_td_grid_free(&g);
    /* a side equal to the overlap: upstream divides by zero */
    assert_int_equal(tpl_td_grid_build(48, 200, 96, 96, 48, TPL_TD_MULTIDIFFUSION, &g), 0);
    assert_true(g.ntiles >= 1);
    tpl_td_grid_free(&g);
    assert_int_equal(tpl_td_grid_build(0, 10, 16, 16, 4, TPL_TD_MULTIDIFFUSION, &g), -1);
    assert_int_equal(tpl_td_method_find("Mixture of Diffusers"), TPL_TD_MIXTURE);
    assert_int_equal(tpl_td_method_find("multidiffusion"), TPL_TD_MULTIDIFFUSION);
    assert_int_equal(tpl_td_method_find("x"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_worked_examples), cmocka_unit_test(test_mixture_weights),
                                       cmocka_unit_test(test_guards)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
