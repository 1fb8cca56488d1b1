/* te_ops.h - the ops models are written against.
 *
 * Each function validates shapes/dtypes (TE_ERR_ARG with a message naming the
 * shapes), returns TE_OK without computing when the output is a planned
 * tensor (data == NULL, see te_arena.h), and otherwise enqueues the op on the
 * output's backend. All tensors of one op must share a backend. Compute dtype
 * is f32 everywhere except te_convert. Layouts: see te_tensor.h (images are
 * channels-last [N, H, W, C]; tokens [N, L, C]).
 *
 * Outputs must not alias inputs unless stated ("in place ok"). */
#ifndef TE_OPS_H
#define TE_OPS_H
#include "te_backend.h"

/* y[N,Ho,Wo,K] = conv(x[N,H,W,C], w[K,C,kh,kw]) + b[K] (+ res[N,Ho,Wo,K]).
 * b and res may be NULL. w gets a backend-prepared form attached. */
te_status te_conv2d(te_tensor *y, const te_tensor *x, te_tensor *w, const te_tensor *b,
                    const te_tensor *res, const te_conv2d_params *p);
/* y[..., N] = x[..., K] @ w[N, K]^T + b[N] (+ res[..., N]); b, res may be NULL. */
te_status te_linear(te_tensor *y, const te_tensor *x, te_tensor *w, const te_tensor *b,
                    const te_tensor *res);
/* c[B, M, N] = alpha * op(a) @ op(b); a is [B, M, K] ([B, K, M] if trans_a),
 * b is [B, K, N] ([B, N, K] if trans_b). 2-D tensors are batch 1; a batch of
 * 1 in a or b broadcasts. */
te_status te_matmul(te_tensor *c, const te_tensor *a, const te_tensor *b, int trans_a, int trans_b,
                    float alpha);
/* Group norm over x[N, ..., C] (channels last; channel groups contiguous),
 * statistics per (n, group) over all spatial positions. gamma/beta [C] or
 * NULL. fuse_silu applies SiLU to the result. In place ok. */
te_status te_group_norm(te_tensor *y, const te_tensor *x, const te_tensor *gamma, const te_tensor *beta,
                        int groups, float eps, int fuse_silu);
/* Layer norm over the last dim. gamma/beta [C] or NULL. In place ok. */
te_status te_layer_norm(te_tensor *y, const te_tensor *x, const te_tensor *gamma, const te_tensor *beta,
                        float eps);
te_status te_silu(te_tensor *y, const te_tensor *x);        /* in place ok */
te_status te_gelu(te_tensor *y, const te_tensor *x);        /* erf form; in place ok */
te_status te_quick_gelu(te_tensor *y, const te_tensor *x);  /* x*sigmoid(1.702x); in place ok */
/* torch LeakyReLU: y = x > 0 ? x : x * slope. In place ok. */
te_status te_leaky_relu(te_tensor *y, const te_tensor *x, float slope);
/* x[..., 2F] -> y[..., F] = x[..., :F] * gelu(x[..., F:]) (diffusers GEGLU). */
te_status te_geglu(te_tensor *y, const te_tensor *x);
/* Softmax over the last dim of scale*x. In place ok. */
te_status te_softmax(te_tensor *y, const te_tensor *x, float scale);
/* Fused attention softmax(q k^T * scale) v, tiled with online softmax: memory
 * O(N) whatever the sequence lengths; Nq and Nk may differ (cross-attention). */
te_status te_attention(te_tensor *o, const te_tensor *q, const te_tensor *k, const te_tensor *v,
                       const te_attn_params *p);
/* y = a (+|*) b with numpy broadcasting of b (b's dims, right-aligned, are 1
 * or equal to a's); y has a's shape. In place (y == a) ok. */
te_status te_add(te_tensor *y, const te_tensor *a, const te_tensor *b);
te_status te_mul(te_tensor *y, const te_tensor *a, const te_tensor *b);
/* y = x * s + bias. In place ok. */
te_status te_scale(te_tensor *y, const te_tensor *x, float s, float bias);
/* y[..., Ca+Cb] = cat(a[..., Ca], b[..., Cb]) along the last (channel) dim. */
te_status te_concat_channels(te_tensor *y, const te_tensor *a, const te_tensor *b);
/* y[N, 2H, 2W, C] = nearest upsample of x[N, H, W, C]. */
te_status te_upsample_nearest2x(te_tensor *y, const te_tensor *x);
/* Resize x[N, H, W, C] to y[N, Ho, Wo, C] with torch F.interpolate semantics
 * (scale = in/out, align_corners=False); antialias for bilinear/bicubic. */
te_status te_interpolate(te_tensor *y, const te_tensor *x, te_interp_mode mode, int antialias);
/* y[B, dim] = sinusoidal embedding of t[B] (diffusers get_timestep_embedding). */
te_status te_timestep_embedding(te_tensor *y, const te_tensor *t, const te_timestep_params *p);
te_timestep_params te_timestep_params_sd(int dim); /* flip_sin_to_cos=1, shift=0, scale=1, 10000 */
/* [N,C,H,W] <-> [N,H,W,C] (== tokens [N, H*W, C]). */
te_status te_nchw_to_nhwc(te_tensor *y, const te_tensor *x);
te_status te_nhwc_to_nchw(te_tensor *y, const te_tensor *x);
/* Dtype conversion between f32/f16/bf16, same shape (RNE when narrowing). */
te_status te_convert(te_tensor *y, const te_tensor *x);
te_status te_copy(te_tensor *y, const te_tensor *x);

#endif
