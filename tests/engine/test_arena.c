/* test_arena.c - the activation arena: plan -> reserve -> run gives the same
 * offsets, peak reported, release in any order reuses gaps, a plan over the
 * cap fails cleanly naming the bytes and the cap, running without a plan
 * fails cleanly, ops on planned tensors only check shapes. Also the weights
 * store (dtype conversion on load). */
#include "te_test.h"
#include "te_arena.h"
#include "te_weights.h"

/* A small "model": conv -> group_norm+silu -> conv with a skip, tokens view,
 * attention, back. Same code in plan and run mode. */
static te_status model(te_arena *a, te_tensor *x, te_tensor *w1, te_tensor *w2, te_tensor *out, size_t *offs) {
    te_status s;
    te_tensor h1, h2, y;
    te_conv2d_params p = { .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1 };
    if ((s = te_arena_tensor(a, &h1, TE_F32, 4, TT_SHAPE(1, 16, 16, 32))) != TE_OK) return s;
    if ((s = te_conv2d(&h1, x, w1, NULL, NULL, &p)) != TE_OK) return s;
    if ((s = te_arena_tensor(a, &h2, TE_F32, 4, TT_SHAPE(1, 16, 16, 32))) != TE_OK) return s;
    if ((s = te_group_norm(&h2, &h1, NULL, NULL, 8, 1e-5f, 1)) != TE_OK) return s;
    if ((s = te_arena_tensor(a, &y, TE_F32, 4, TT_SHAPE(1, 16, 16, 32))) != TE_OK) return s;
    if ((s = te_conv2d(&y, &h2, w2, NULL, &h1, &p)) != TE_OK) return s;   /* residual fused */
    te_arena_release(a, &h2);
    te_tensor tok, att;
    te_tensor_reshape(&tok, &y, 3, TT_SHAPE(1, 256, 32));
    if ((s = te_arena_tensor(a, &att, TE_F32, 3, TT_SHAPE(1, 256, 32))) != TE_OK) return s;
    te_attn_params ap = { 2, 0, TE_ATTN_TOKENS };
    if ((s = te_attention(&att, &tok, &tok, &tok, &ap)) != TE_OK) return s;
    offs[0] = h1.slot; offs[1] = y.slot; offs[2] = att.slot;
    te_arena_release(a, &h1);
    te_arena_release(a, &y);
    if (out->data && att.data) memcpy(out->data, att.data, te_tensor_nbytes(&att));
    te_arena_release(a, &att);
    return TE_OK;
}

int main(void) {
    te_backend *be = tt_backend();
    te_arena *a;
    TT_OK(te_arena_create(be, 1 << 20, 0, &a), be);
    te_tensor x = TT_R(be, 4, 1, 16, 16, 8), w1 = TT_R(be, 4, 32, 8, 3, 3), w2 = TT_R(be, 4, 32, 32, 3, 3);
    te_tensor out = TT_T(be, 3, 1, 256, 32);
    size_t po[3], ro[3];
    te_arena_begin_plan(a);
    TT_OK(model(a, &x, &w1, &w2, &out, po), be);
    size_t peak = te_arena_peak(a);
    TT_CHECK(peak == 3 * 32768, "plan peak %zu, want %d", peak, 3 * 32768);   /* h1, h2 then att in its gap, y */
    TT_CHECK(te_arena_size(a) == 0, "plan allocated memory");
    TT_OK(te_arena_reserve(a), be);
    TT_CHECK(te_arena_size(a) >= peak, "reserved %zu", te_arena_size(a));
    te_arena_begin_run(a);
    TT_OK(model(a, &x, &w1, &w2, &out, ro), be);
    TT_CHECK(te_arena_peak(a) == peak, "run peak %zu != plan %zu", te_arena_peak(a), peak);
    TT_CHECK(!memcmp(po, ro, sizeof po), "offsets differ between plan and run");
    TT_CHECK(te_arena_in_use(a) == 0, "leak %zu", te_arena_in_use(a));
    float *o = out.data;
    int finite = 1;
    for (int i = 0; i < 256 * 32; i++) finite &= isfinite(o[i]);
    TT_CHECK(finite, "run produced non-finite values");

    /* cap: a plan over the cap fails with a message naming bytes and cap */
    te_arena *small;
    TT_OK(te_arena_create(be, 90000, 0, &small), be);
    te_arena_begin_plan(small);
    te_status s = model(small, &x, &w1, &w2, &out, po);
    TT_CHECK(s == TE_ERR_OOM, "over-cap plan returned %s", te_status_str(s));
    TT_CHECK(strstr(te_backend_error(be), "90000") && strstr(te_backend_error(be), "32768"),
             "message lacks sizes: %s", te_backend_error(be));
    printf("  cap error: %s\n", te_backend_error(be));
    TT_CHECK(te_arena_reserve_bytes(small, 200000) == TE_ERR_OOM && strstr(te_backend_error(be), "200000"),
             "reserve over cap: %s", te_backend_error(be));
    /* run without plan */
    te_arena_begin_run(small);
    te_tensor t;
    s = te_arena_tensor(small, &t, TE_F32, 1, TT_SHAPE(10));
    TT_CHECK(s == TE_ERR_OOM, "unplanned run alloc returned %s", te_status_str(s));
    te_arena_destroy(small);

    /* gap reuse: release middle block, same-size alloc lands there */
    te_arena_begin_plan(a);
    te_tensor b1, b2, b3, b4;
    te_arena_tensor(a, &b1, TE_F32, 1, TT_SHAPE(100));
    te_arena_tensor(a, &b2, TE_F32, 1, TT_SHAPE(100));
    te_arena_tensor(a, &b3, TE_F32, 1, TT_SHAPE(100));
    te_arena_release(a, &b2);
    te_arena_tensor(a, &b4, TE_F32, 1, TT_SHAPE(50));
    TT_CHECK(b4.slot - 1 == 448, "gap reuse offset %zu", b4.slot - 1);
    TT_CHECK(te_arena_peak(a) == 3 * 448, "peak %zu", te_arena_peak(a));
    TT_CHECK(b1.data == NULL, "planned tensor has data");
    (void)b3;
    /* shape errors are caught in plan mode too */
    te_tensor bad;
    te_arena_tensor(a, &bad, TE_F32, 4, TT_SHAPE(1, 16, 16, 31));
    te_conv2d_params p = { .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1 };
    TT_CHECK(te_conv2d(&bad, &x, &w1, NULL, NULL, &p) == TE_ERR_ARG, "shape error not caught while planning");
    te_arena_destroy(a);

    /* weights store: f16 host data converted to f32 on load */
    te_weights *ws;
    TT_OK(te_weights_create(be, &ws), be);
    uint16_t hv[4] = { 0x3c00, 0xc000, 0x3555, 0x0001 };
    te_tensor *wt;
    TT_OK(te_weights_add(ws, &wt, TE_F32, 1, TT_SHAPE(4), hv, TE_F16), be);
    float *wf = wt->data;
    TT_CHECK(wf[0] == 1.0f && wf[1] == -2.0f && fabsf(wf[2] - 0.33325195f) < 1e-8f && wf[3] == ldexpf(1, -24), "f16 load");
    TT_CHECK(te_weights_bytes(ws) == 16 && te_weights_count(ws) == 1, "weights accounting");
    te_weights_destroy(ws);

    tt_free(&x); tt_free(&w1); tt_free(&w2); tt_free(&out);
    te_backend_destroy(be);
    return tt_done("engine_arena");
}
