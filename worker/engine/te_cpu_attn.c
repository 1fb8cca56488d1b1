/* te_cpu_attn.c - fused scaled-dot-product attention driver (CPU).
 *
 * softmax(q k^T * scale) v computed flash-attention style: a block of
 * TE_ATTN_BR queries walks over the keys TE_ATTN_BC at a time keeping a
 * running max and sum per row (online softmax, in base 2 with log2(e) folded
 * into the scale) and an output accumulator. Memory is O(BR*BC + BR*d) per
 * thread, preallocated in the backend: the N x N score matrix never exists,
 * whatever N (self-attention 4096 x 4096, or 4096 queries x 77 keys for
 * cross-attention). Work items are (batch, head, query block), split over the
 * pool; the per-ISA kernel te_cpu_kernels.attn_block does one item. */
#include "te_cpu_impl.h"
#include <math.h>

typedef struct ajob {
    te_cpu *c;
    te_attn_job base;
    int64_t heads, nqb, qchunk;
    int64_t q_bs, q_hs, k_bs, k_hs;   /* batch / head offsets (floats) */
} ajob;

static void attn_fn(void *a, int64_t b, int64_t e, int tid) {
    ajob *j = a;
    te_attn_scratch *s = &j->c->attn[tid];
    for (int64_t w = b; w < e; w++) {
        int64_t bh = w / j->nqb, qb = w % j->nqb, bi = bh / j->heads, h = bh % j->heads;
        te_attn_job job = j->base;
        job.q += bi * j->q_bs + h * j->q_hs;
        job.o += bi * j->q_bs + h * j->q_hs;
        job.k += bi * j->k_bs + h * j->k_hs;
        job.v += bi * j->k_bs + h * j->k_hs;
        int64_t q0 = qb * j->qchunk, br = job.nq - q0 < j->qchunk ? job.nq - q0 : j->qchunk;
        j->c->k.attn_block(&job, q0, br, s);
    }
}

te_status te_cpu_attention(te_backend *be, te_tensor *o, const te_tensor *q, const te_tensor *k,
                           const te_tensor *v, const te_attn_params *p) {
    te_cpu *c = te_cpu_of(be);
    ajob j = { .c = c };
    int64_t B = q->ne[0], H, Nq, Nk, d;
    if (p->layout == TE_ATTN_TOKENS) {
        H = p->n_heads; Nq = q->ne[1]; Nk = k->ne[1]; d = q->ne[2] / H;
        j.base.q_rs = j.base.o_rs = H * d;
        j.base.k_rs = j.base.v_rs = H * d;
        j.q_bs = Nq * H * d; j.q_hs = d;
        j.k_bs = Nk * H * d; j.k_hs = d;
    } else {
        H = q->ne[1]; Nq = q->ne[2]; Nk = k->ne[2]; d = q->ne[3];
        j.base.q_rs = j.base.o_rs = d;
        j.base.k_rs = j.base.v_rs = d;
        j.q_bs = H * Nq * d; j.q_hs = Nq * d;
        j.k_bs = H * Nk * d; j.k_hs = Nk * d;
    }
    float scale = p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)d);
    j.base.q = q->data; j.base.k = k->data; j.base.v = v->data; j.base.o = o->data;
    j.base.nq = Nq; j.base.nk = Nk; j.base.d = d;
    j.base.scale_log2 = scale * 1.44269504088896341f;
    j.heads = H;
    /* group query blocks per item, but keep >= 4 items per thread for balance */
    int64_t nblk = (Nq + TE_ATTN_BR - 1) / TE_ATTN_BR, g = TE_ATTN_GROUP;
    while (g > 1 && B * H * ((nblk + g - 1) / g) < 4 * c->n_threads) g--;
    j.qchunk = g * TE_ATTN_BR;
    j.nqb = (Nq + j.qchunk - 1) / j.qchunk;
    te_pool_for(c->pool, B * H * j.nqb, attn_fn, &j);
    return TE_OK;
}
