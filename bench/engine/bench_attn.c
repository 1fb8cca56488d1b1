/* bench_attn.c - fused attention (te_attention) at the SD1.5 self-attention
 * shapes: 4096 tokens x 8 heads x d 40 (64x64 latent) and 1024 x 8 x 80
 * (32x32), plus cross-attention 4096 x 77. Reports time, GFLOP/s, fraction
 * of the FMA ceiling, the memory the op needs, and the ratio to the
 * unfused reference in the same run: per head S = Q K^T and O = S V as two
 * oneDNN matmuls (same FLOPs, N x N scores in memory, softmax not even
 * counted). Usage: bench_attn [threads] */
#include "bench_util.h"
#include "te_cpu_impl.h"
#include <unistd.h>

typedef struct { te_tensor *o, *q, *k, *v; te_attn_params *p; } attn_arg;
static void run_attn(void *a) { attn_arg *x = a; te_attention(x->o, x->q, x->k, x->v, x->p); }
typedef struct { te_tensor *qh, *kh, *vh, *s, *oh; int H; } ref_arg;
static void run_ref(void *a) {
    ref_arg *r = a;
    for (int h = 0; h < r->H; h++) {
        te_matmul(r->s, r->qh, r->kh, 0, 1, 1.0f);
        te_matmul(r->oh, r->s, r->vh, 0, 0, 1.0f);
    }
}

static void one(te_backend *be, double peak0, int N, int Nk, int H, int d) {
    te_tensor q = bu_tensor(be, 3, BU_SHAPE(1, N, H * d)), k = bu_tensor(be, 3, BU_SHAPE(1, Nk, H * d));
    te_tensor v = bu_tensor(be, 3, BU_SHAPE(1, Nk, H * d)), o = bu_tensor(be, 3, BU_SHAPE(1, N, H * d));
    te_attn_params p = { H, 0, TE_ATTN_TOKENS };
    int nt = te_cpu_backend_threads(be);
    double peak = peak0 > 0 ? peak0 : bu_fma_peak(nt);
    double fl = 4.0 * N * Nk * d * H;
    te_attention(&o, &q, &k, &v, &p);
    attn_arg aa = { &o, &q, &k, &v, &p };
    double best = bu_best(run_attn, &aa, 5, 2.0);
    /* unfused matmul reference, per head, BHND copies of the inputs */
    te_tensor qh = bu_tensor(be, 2, BU_SHAPE(N, d)), kh = bu_tensor(be, 2, BU_SHAPE(Nk, d)), vh = bu_tensor(be, 2, BU_SHAPE(Nk, d));
    te_tensor s = bu_tensor(be, 2, BU_SHAPE(N, Nk)), oh = bu_tensor(be, 2, BU_SHAPE(N, d));
    te_matmul(&s, &qh, &kh, 0, 1, 1.0f);
    te_matmul(&oh, &s, &vh, 0, 0, 1.0f);
    ref_arg ra = { &qh, &kh, &vh, &s, &oh, H };
    double bm = bu_best(run_ref, &ra, 5, 2.0);
    size_t scratch = (size_t)nt * sizeof(float) * (2 * TE_ATTN_BR * TE_ATTN_DMAX + 2 * TE_ATTN_DMAX * TE_ATTN_BC + TE_ATTN_BR * TE_ATTN_BC + 128);
    size_t io = 4 * (size_t)N * H * d * 4;
    double p2 = bu_fma_peak(nt);
    if (p2 > peak) peak = p2;
    printf("attn N=%-5d Nk=%-5d heads=%d d=%-3d  %8.2f ms %7.1f GFLOP/s %4.0f%% of FMA | matmul-only ref %8.2f ms (%5.1f GFLOP/s), fused/ref time %.2fx\n",
           N, Nk, H, d, best * 1e3, fl / best * 1e-9, 100 * fl / best * 1e-9 / peak, bm * 1e3, fl / bm * 1e-9, best / bm);
    printf("   FMA ceiling %.1f GFLOP/s; memory: fused op needs %.2f MiB preallocated scratch (all threads) beyond q,k,v,o (%.1f MiB); "
           "unfused scores would need %.1f MiB per head, %.1f MiB for all heads\n", peak,
           scratch / 1048576.0, io / 1048576.0, (double)N * Nk * 4 / 1048576.0, (double)N * Nk * 4 * H / 1048576.0);
    bu_free(&q); bu_free(&k); bu_free(&v); bu_free(&o); bu_free(&qh); bu_free(&kh); bu_free(&vh); bu_free(&s); bu_free(&oh);
}

int main(int argc, char **argv) {
    te_cpu_prepare_env(argc, argv);
    int threads = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    te_backend *be = bu_backend(threads);
    printf("threads %d, isa %s, FMA ceiling measured before each case and after it (max used)\n", threads, te_cpu_isa_name(te_cpu_backend_isa(be)));
    long rss0 = bu_maxrss_kb();
    one(be, 0, 4096, 4096, 8, 40);
    one(be, 0, 1024, 1024, 8, 80);
    one(be, 0, 4096, 77, 8, 40);
    one(be, 0, 256, 256, 8, 160);
    printf("max RSS %.1f MiB (start of runs %.1f MiB; includes the unfused reference's score matrix)\n", bu_maxrss_kb() / 1024.0, rss0 / 1024.0);
    te_backend_destroy(be);
    return 0;
}
