/* te_backend.h - the backend interface: one table of function pointers that
 * every compute backend (CPU now, CUDA later) fills in.
 *
 * Semantics: ops are *enqueued in call order* on the backend's single stream.
 * A backend may run them asynchronously; results are only guaranteed visible
 * to the host after synchronize() (or download(), which synchronizes). The
 * CPU backend runs each op to completion before returning, so its
 * synchronize() is a no-op; a CUDA backend would launch kernels on a stream.
 * Tensors passed to ops have already been validated by te_ops.c (shapes,
 * dtypes), so backends trust their arguments. Backend functions never see
 * planned (data == NULL) tensors.
 *
 * Models are written once against te_ops.h, which dispatches here. */
#ifndef TE_BACKEND_H
#define TE_BACKEND_H
#include <stddef.h>
#include "te_status.h"
#include "te_tensor.h"

typedef struct te_backend te_backend;

typedef struct te_conv2d_params {
    int stride_h, stride_w;
    int pad_h, pad_w;            /* symmetric zero padding */
    /* Asymmetric zero padding (e.g. the VAE downsample's F.pad (0,1,0,1) then
     * a stride-2 conv: {2, 2, 0, 0, .pad_bottom = 1, .pad_right = 1}). When
     * any of these four is non-zero they replace pad_h/pad_w (which must then
     * be 0); all zero = the symmetric pad_h/pad_w above. */
    int pad_top, pad_bottom, pad_left, pad_right;
} te_conv2d_params;

/* The four paddings a conv2d_params stands for (see above). */
static inline void te_conv2d_pads(const te_conv2d_params *p, int *top, int *bottom, int *left, int *right) {
    if (p->pad_top | p->pad_bottom | p->pad_left | p->pad_right) {
        *top = p->pad_top, *bottom = p->pad_bottom, *left = p->pad_left, *right = p->pad_right;
    } else {
        *top = *bottom = p->pad_h;
        *left = *right = p->pad_w;
    }
}

typedef enum te_unary_op { TE_UNARY_SILU, TE_UNARY_GELU, TE_UNARY_QUICK_GELU } te_unary_op;
typedef enum te_binary_op { TE_BINARY_ADD, TE_BINARY_MUL } te_binary_op;

typedef enum te_interp_mode {
    TE_INTERP_NEAREST,        /* torch mode='nearest' (floor(dst*scale)) */
    TE_INTERP_NEAREST_EXACT,  /* torch mode='nearest-exact' (floor((dst+0.5)*scale)) */
    TE_INTERP_BILINEAR,       /* align_corners=False */
    TE_INTERP_BICUBIC         /* A=-0.75, align_corners=False; antialias uses A=-0.5 like torch */
} te_interp_mode;

typedef enum te_attn_layout {
    TE_ATTN_TOKENS,   /* q [B, Nq, heads*d], k/v [B, Nk, heads*d], out like q */
    TE_ATTN_BHND      /* q [B, heads, Nq, d], k/v [B, heads, Nk, d], out like q */
} te_attn_layout;

typedef struct te_attn_params {
    int n_heads;            /* used by TE_ATTN_TOKENS (BHND reads it from the shape) */
    float scale;            /* 0 -> 1/sqrt(d) */
    te_attn_layout layout;
} te_attn_params;

typedef struct te_timestep_params {
    int dim;                       /* embedding size */
    int flip_sin_to_cos;           /* SD UNet: 1 */
    float downscale_freq_shift;    /* SD UNet: 0 */
    float scale;                   /* 1 */
    float max_period;              /* 10000 */
} te_timestep_params;

typedef struct te_backend_ops {
    const char *name;
    void (*destroy)(te_backend *be);

    /* memory: 64-byte aligned backend memory, NULL on failure */
    void *(*alloc)(te_backend *be, size_t bytes);
    void (*free)(te_backend *be, void *p);
    te_status (*upload)(te_backend *be, void *dst, const void *host, size_t bytes);
    te_status (*download)(te_backend *be, void *host, const void *src, size_t bytes);
    te_status (*synchronize)(te_backend *be);
    void (*release_prep)(te_backend *be, struct te_prep *prep);

    /* ops (already validated) */
    te_status (*conv2d)(te_backend *be, te_tensor *y, const te_tensor *x, te_tensor *w,
                        const te_tensor *b, const te_tensor *res, const te_conv2d_params *p);
    te_status (*linear)(te_backend *be, te_tensor *y, const te_tensor *x, te_tensor *w,
                        const te_tensor *b, const te_tensor *res);
    te_status (*matmul)(te_backend *be, te_tensor *c, const te_tensor *a, const te_tensor *b,
                        int trans_a, int trans_b, float alpha);
    te_status (*group_norm)(te_backend *be, te_tensor *y, const te_tensor *x, const te_tensor *gamma,
                            const te_tensor *beta, int groups, float eps, int fuse_silu);
    te_status (*layer_norm)(te_backend *be, te_tensor *y, const te_tensor *x, const te_tensor *gamma,
                            const te_tensor *beta, float eps);
    te_status (*unary)(te_backend *be, te_tensor *y, const te_tensor *x, te_unary_op op);
    te_status (*geglu)(te_backend *be, te_tensor *y, const te_tensor *x);
    te_status (*softmax)(te_backend *be, te_tensor *y, const te_tensor *x, float scale);
    te_status (*attention)(te_backend *be, te_tensor *o, const te_tensor *q, const te_tensor *k,
                           const te_tensor *v, const te_attn_params *p);
    te_status (*binary)(te_backend *be, te_tensor *y, const te_tensor *a, const te_tensor *b,
                        te_binary_op op);
    te_status (*scale)(te_backend *be, te_tensor *y, const te_tensor *x, float s, float bias);
    te_status (*concat_channels)(te_backend *be, te_tensor *y, const te_tensor *a, const te_tensor *b);
    te_status (*upsample_nearest2x)(te_backend *be, te_tensor *y, const te_tensor *x);
    te_status (*interpolate)(te_backend *be, te_tensor *y, const te_tensor *x, te_interp_mode mode,
                             int antialias);
    te_status (*timestep_embedding)(te_backend *be, te_tensor *y, const te_tensor *t,
                                    const te_timestep_params *p);
    te_status (*nchw_nhwc)(te_backend *be, te_tensor *y, const te_tensor *x, int to_nhwc);
    te_status (*convert)(te_backend *be, te_tensor *y, const te_tensor *x);
    te_status (*copy)(te_backend *be, te_tensor *y, const te_tensor *x);
    /* y = x > 0 ? x : x * slope (ESRGAN's LeakyReLU). Last so that tables
     * written before it leave it NULL: te_leaky_relu then fails cleanly. */
    te_status (*leaky_relu)(te_backend *be, te_tensor *y, const te_tensor *x, float slope);
} te_backend_ops;

struct te_backend {
    const te_backend_ops *ops;
    void *impl;               /* backend-private state (thread pool, caches...) */
    char err[512];            /* message of the last failure */
    /* dtype in which models should store conv/linear weights for this backend
     * (te_weights_matrix_dtype): TE_F32 (default, exact) or TE_BF16 (opt-in:
     * bf16 weights and activations, f32 accumulation; see te_cpu_options). */
    te_dtype matrix_dtype;
};

/* Record a failure message on the backend and return `s` (printf format). */
te_status te_backend_fail(te_backend *be, te_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *te_backend_error(const te_backend *be);
const char *te_backend_name(const te_backend *be);
void te_backend_destroy(te_backend *be);
te_status te_backend_synchronize(te_backend *be);

/* Host <-> backend copies of a whole tensor (download synchronizes first). */
te_status te_tensor_upload(te_tensor *t, const void *host);
te_status te_tensor_download(const te_tensor *t, void *host);

#endif
