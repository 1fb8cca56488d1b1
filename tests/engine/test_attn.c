/* test_attn.c - fused attention vs a float64 reference: sequence lengths
 * above the query/key tile sizes and not multiples of them, head dims 40, 64,
 * 80, 160, cross-attention (77 keys), both layouts, explicit scale, and a
 * large-magnitude case that needs the online-softmax rescaling. */
#include "test_refs.h"

static void attn_case(int bhnd, te_backend *be, int B, int H, int Nq, int Nk, int d, float scale, double mag) {
    te_tensor q, k, v, o;
    if (bhnd) {
        q = tt_rand_tensor(be, 4, TT_SHAPE(B, H, Nq, d), mag); k = tt_rand_tensor(be, 4, TT_SHAPE(B, H, Nk, d), mag);
        v = TT_R(be, 4, B, H, Nk, d); o = TT_T(be, 4, B, H, Nq, d);
    } else {
        q = tt_rand_tensor(be, 3, TT_SHAPE(B, Nq, H * d), mag); k = tt_rand_tensor(be, 3, TT_SHAPE(B, Nk, H * d), mag);
        v = TT_R(be, 3, B, Nk, H * d); o = TT_T(be, 3, B, Nq, H * d);
    }
    int64_t n = te_tensor_numel(&o);
    double *ref = tt_ref(n);
    ref_attention(ref, q.data, k.data, v.data, B, Nq, Nk, H, d, scale != 0 ? scale : 1.0 / sqrt(d), bhnd);
    te_attn_params p = { H, scale, bhnd ? TE_ATTN_BHND : TE_ATTN_TOKENS };
    TT_OK(te_attention(&o, &q, &k, &v, &p), be);
    char name[128];
    snprintf(name, sizeof name, "attn %s B%d H%d Nq%d Nk%d d%d mag%g", bhnd ? "bhnd" : "tok", B, H, Nq, Nk, d, mag);
    TT_CLOSE(name, o.data, ref, n, 1e-5);
    free(ref);
    tt_free(&q); tt_free(&k); tt_free(&v); tt_free(&o);
}

int main(void) {
    te_backend *be = tt_backend();
    attn_case(0, be, 1, 2, 300, 300, 40, 0, 1);      /* > BR (48) and > BC (128), ragged */
    attn_case(0, be, 2, 3, 97, 77, 40, 0, 1);        /* cross attention, 77 keys */
    attn_case(0, be, 1, 1, 1, 1, 8, 0, 1);           /* minimal */
    attn_case(0, be, 1, 2, 130, 257, 64, 0, 1);
    attn_case(0, be, 1, 2, 50, 129, 80, 0.05f, 1);
    attn_case(0, be, 1, 1, 49, 200, 160, 0, 1);
    attn_case(1, be, 2, 2, 100, 77, 40, 0, 1);
    attn_case(1, be, 1, 2, 64, 300, 72, 0, 1);
    attn_case(0, be, 1, 1, 60, 400, 40, 0, 6);       /* peaky softmax: large logits */
    attn_case(0, be, 1, 1, 1100, 1100, 40, 0, 1);    /* several tiles each way */
    attn_case(0, be, 1, 1, 96, 4096 + 5, 40, 0, 1);  /* long key sequence */
    te_backend_destroy(be);
    return tt_done("engine_attn");
}
