/* tcu_kernels.h - the hand-written kernels of the CUDA backend, as C-callable
 * launchers. Each enqueues its kernel(s) on `stream` (a cudaStream_t; NULL =
 * the default stream) and returns a cudaError_t value (0 = cudaSuccess; the
 * text via tcu_err_str). Pointers are device memory (host memory under the
 * emulator). Tensors are contiguous, images channels-last [N, H, W, C], the
 * semantics those of the engine's ops (worker/engine/te_ops.h). Invalid sizes
 * give cudaErrorInvalidValue (1) without launching.
 *
 * The same sources build with nvcc into tessera_cuda and with g++ under the
 * host emulator (tests/cuda), see docs/cuda.md. */
#ifndef TCU_KERNELS_H
#define TCU_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int tcu_err;               /* a cudaError_t value */
typedef void *tcu_stream;          /* a cudaStream_t */
enum { TCU_DT_F32 = 0, TCU_DT_F16 = 1, TCU_DT_BF16 = 2 };        /* == te_dtype */
enum { TCU_SILU = 0, TCU_GELU = 1, TCU_QUICK_GELU = 2 };          /* == te_unary_op */
enum { TCU_ADD = 0, TCU_MUL = 1 };                                /* == te_binary_op */

const char *tcu_err_str(tcu_err e);

/* elementwise.cu: y = act(x) (erf GELU; quick_gelu = x*sigmoid(1.702x));
 * y = x*s + bias; y = a (+|*) b with numpy broadcasting of b[b_nd] into
 * a's shape a[a_nd] (nd <= 5, y has a's shape). In place (y == x / a) ok. */
tcu_err tcu_unary_f32(float *y, const float *x, int64_t n, int op, tcu_stream s);
tcu_err tcu_scale_f32(float *y, const float *x, int64_t n, float scale, float bias, tcu_stream s);
tcu_err tcu_binary_f32(float *y, const float *a, const float *b, const int64_t *a_ne, int a_nd,
                       const int64_t *b_ne, int b_nd, int op, tcu_stream s);

/* group_norm.cu: x[N, P, C] (P = H*W), G groups of C/G contiguous channels,
 * statistics per (n, group); gamma/beta [C] or NULL; optional fused SiLU;
 * in place ok. Needs a device workspace of tcu_group_norm_workspace() bytes. */
size_t tcu_group_norm_workspace(int64_t N, int64_t P, int64_t C, int G);
tcu_err tcu_group_norm_f32(float *y, const float *x, const float *gamma, const float *beta, int64_t N, int64_t P,
                           int64_t C, int G, float eps, int fuse_silu, void *ws, size_t ws_bytes, tcu_stream s);

/* rows.cu: row-wise ops over x[rows, C]. layer_norm: gamma/beta [C] or NULL;
 * softmax of scale*x; geglu: x[rows, 2F] -> y[rows, F] = x[:F] * gelu(x[F:]).
 * layer_norm/softmax in place ok. */
tcu_err tcu_layer_norm_f32(float *y, const float *x, const float *gamma, const float *beta, int64_t rows, int64_t C,
                           float eps, tcu_stream s);
tcu_err tcu_softmax_f32(float *y, const float *x, int64_t rows, int64_t C, float scale, tcu_stream s);
tcu_err tcu_geglu_f32(float *y, const float *x, int64_t rows, int64_t F, tcu_stream s);

/* misc.cu: timestep embedding y[B, dim] of t[B] (diffusers
 * get_timestep_embedding, computed in f64 like the CPU backend); nearest 2x
 * upsample x[N,H,W,C] -> y[N,2H,2W,C]; channel concat y[rows, Ca+Cb];
 * dtype conversion of n elements between f32/f16/bf16 (RNE). */
tcu_err tcu_timestep_embedding_f32(float *y, const float *t, int64_t B, int dim, int flip_sin_to_cos,
                                   float downscale_freq_shift, float scale, float max_period, tcu_stream s);
tcu_err tcu_upsample_nearest2x_f32(float *y, const float *x, int64_t N, int64_t H, int64_t W, int64_t C,
                                   tcu_stream s);
tcu_err tcu_concat_channels_f32(float *y, const float *a, const float *b, int64_t rows, int64_t Ca, int64_t Cb,
                                tcu_stream s);
tcu_err tcu_convert(void *y, int y_dtype, const void *x, int x_dtype, int64_t n, tcu_stream s);

#ifdef __cplusplus
}
#endif
#endif
