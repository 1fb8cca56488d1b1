/* bench_gemm.c - sgemm 2048^3 through the engine (oneDNN matmul via
 * te_matmul), raw dnnl_sgemm and OpenBLAS cblas_sgemm, plus the UNet GEMM
 * shapes, 1 and all threads, as a fraction of the FMA ceiling of the run. */
#include "bench_util.h"
#include <cblas.h>
#include <dnnl.h>
#include <unistd.h>

static double best_of(int reps, void (*fn)(void *), void *a) { return bu_best(fn, a, reps, 0.7); }
typedef struct { te_tensor *a, *b, *c, *w, *bias; int M, N, K; } g_arg;
static void run_te(void *p) { g_arg *g = p; te_matmul(g->c, g->a, g->b, 0, 0, 1.0f); }
static void run_dnnl(void *p) { g_arg *g = p; dnnl_sgemm('N', 'N', g->M, g->N, g->K, 1, g->a->data, g->K, g->b->data, g->N, 0, g->c->data, g->N); }
static void run_lin(void *p) { g_arg *g = p; te_linear(g->c, g->a, g->w, g->bias, NULL); }
static void run_oblas(void *p) { g_arg *g = p; cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->M, g->N, g->K, 1, g->a->data, g->K, g->b->data, g->N, 0, g->c->data, g->N); }

int main(int argc, char **argv) {
    te_cpu_prepare_env(argc, argv);
    int nt = (int)sysconf(_SC_NPROCESSORS_ONLN);
    printf("openblas core: %s (OPENBLAS_CORETYPE=%s)\n", openblas_get_corename(), getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "unset");
    int shapes[][3] = { { 2048, 2048, 2048 }, { 4096, 320, 2880 }, { 4096, 320, 320 }, { 4096, 2560, 320 }, { 4096, 320, 1280 }, { 4096, 4096, 40 }, { 4096, 40, 4096 } };
    for (int threads = 1; threads <= nt; threads += nt - 1 ? nt - 1 : 1) {
        double peak = bu_fma_peak(threads), rows[7][4];
        te_backend *be = bu_backend(threads);
        openblas_set_num_threads(threads);
        for (int s = 0; s < 7; s++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            te_tensor a = bu_tensor(be, 2, BU_SHAPE(M, K)), b = bu_tensor(be, 2, BU_SHAPE(K, N)), c = bu_tensor(be, 2, BU_SHAPE(M, N));
            te_tensor w = bu_tensor(be, 2, BU_SHAPE(N, K)), bias = bu_tensor(be, 1, BU_SHAPE(N));
            g_arg g = { &a, &b, &c, &w, &bias, M, N, K };
            double pk = bu_fma_peak(threads);
            if (pk > peak) peak = pk;
            double fl = 2.0 * M * N * K, reps = fl > 1e10 ? 3 : 6;
            run_te(&g); run_dnnl(&g); run_oblas(&g); run_lin(&g);
            double t1 = best_of(reps, run_te, &g), t2 = best_of(reps, run_dnnl, &g), t3 = best_of(reps, run_oblas, &g);
            double t4 = best_of(reps, run_lin, &g);
            rows[s][0] = fl / t1 * 1e-9; rows[s][1] = fl / t2 * 1e-9; rows[s][2] = fl / t3 * 1e-9; rows[s][3] = fl / t4 * 1e-9;
            bu_free(&w); bu_free(&bias); bu_free(&a); bu_free(&b); bu_free(&c);
        }
        double p2 = bu_fma_peak(threads);
        if (p2 > peak) peak = p2;
        printf("\n== %d thread(s), FMA ceiling %.1f GFLOP/s (max of samples taken around every shape)\n", threads, peak);
        printf("%-18s %12s %12s %12s %12s\n", "M x N x K", "te_matmul", "dnnl_sgemm", "openblas", "te_linear");
        for (int s = 0; s < 7; s++) {
            printf("%5dx%5dx%5d ", shapes[s][0], shapes[s][1], shapes[s][2]);
            for (int c = 0; c < 4; c++) printf(" %6.1f (%3.0f%%)", rows[s][c], 100 * rows[s][c] / peak);
            printf("\n");
        }
        te_backend_destroy(be);
        if (nt == 1) break;
    }
    return 0;
}
