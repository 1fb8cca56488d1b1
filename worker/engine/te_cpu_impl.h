/* te_cpu_impl.h - private state of the CPU backend and the per-ISA kernel
 * table. Kernels work on contiguous f32 runs; the drivers in te_cpu_*.c split
 * the work across the pool and call through the table, so one driver serves
 * the scalar, AVX2 and AVX-512 kernels. */
#ifndef TE_CPU_IMPL_H
#define TE_CPU_IMPL_H
#include <stdint.h>
#include <stddef.h>
#include "te_cpu.h"
#include "te_pool.h"

/* attention tile sizes (queries x keys per block) */
#define TE_ATTN_BR 48
#define TE_ATTN_BC 128
#define TE_ATTN_DMAX 512
#define TE_ATTN_GROUP 4   /* query blocks per work item (share each packed K/V block) */

typedef struct te_attn_job {
    const float *q, *k, *v;
    float *o;
    int64_t nq, nk, d;
    int64_t q_rs, k_rs, v_rs, o_rs;     /* row strides (floats) */
    float scale_log2;                   /* scale * log2(e) */
} te_attn_job;

/* per-thread attention scratch */
typedef struct te_attn_scratch {
    float *qs;    /* BR x DMAX scaled q */
    float *kt;    /* BC x DMAX packed k block */
    float *vp;    /* BC x DMAX packed, zero-padded v block */
    float *s;     /* BR x BC scores / probabilities */
    float *acc;   /* BR x DMAX output accumulator */
    float *m, *l; /* GROUP x BR running max / sum */
} te_attn_scratch;

typedef struct te_cpu_kernels {
    void (*silu)(float *y, const float *x, int64_t n);
    void (*gelu)(float *y, const float *x, int64_t n);
    void (*quick_gelu)(float *y, const float *x, int64_t n);
    void (*geglu)(float *y, const float *x, int64_t f);        /* one row */
    void (*softmax)(float *y, const float *x, int64_t n, float scale); /* one row */
    void (*layer_norm)(float *y, const float *x, int64_t n, const float *g, const float *b, float eps);
    void (*col_sum)(float *acc, const float *x, int64_t rows, int64_t c);
    void (*col_sqdev)(float *acc, const float *x, int64_t rows, int64_t c, const float *mean);
    void (*affine)(float *y, const float *x, int64_t rows, int64_t c, const float *a, const float *b, int silu);
    void (*vv)(float *y, const float *a, const float *b, int64_t n, int mul);
    void (*vs)(float *y, const float *a, float b, int64_t n, int mul);
    void (*scale)(float *y, const float *x, int64_t n, float s, float b);
    void (*f16_to_f32)(float *y, const uint16_t *x, int64_t n);
    void (*f32_to_f16)(uint16_t *y, const float *x, int64_t n);
    void (*bf16_to_f32)(float *y, const uint16_t *x, int64_t n);
    void (*f32_to_bf16)(uint16_t *y, const float *x, int64_t n);
    /* queries [q0, q0+br), br <= TE_ATTN_GROUP*TE_ATTN_BR, against all keys */
    void (*attn_block)(const te_attn_job *j, int64_t q0, int64_t br, te_attn_scratch *s);
} te_cpu_kernels;

void te_cpu_kernels_scalar(te_cpu_kernels *k);
void te_cpu_kernels_avx2(te_cpu_kernels *k);     /* overrides what it has */
void te_cpu_kernels_avx512(te_cpu_kernels *k);   /* overrides what it has */

#define TE_CPU_SCRATCH_FLOATS (1 << 16)          /* per-thread general scratch */

typedef struct te_cpu {
    te_cpu_isa isa;
    int n_threads;
    te_pool *pool;
    te_cpu_kernels k;
    te_attn_scratch *attn;        /* [n_threads] */
    float **scratch;              /* [n_threads] x TE_CPU_SCRATCH_FLOATS */
    void *dnnl;                   /* te_cpu_dnnl.c state */
    int winograd;                 /* 0 direct, 1 Winograd for 3x3 s1 with >= 256 in-channels, 2 for all 3x3 s1 */
    void (*omp_set_num_threads)(int);
} te_cpu;

static inline te_cpu *te_cpu_of(te_backend *be) { return (te_cpu *)be->impl; }

/* te_cpu_backend.c: 64-byte aligned blocks, >= 1 MiB ones mmap'ed (freed at once) */
void *te_cpu_big_alloc(size_t n);
void te_cpu_big_free(void *p);

/* te_cpu_dnnl.c */
te_status te_cpu_dnnl_init(te_backend *be);
void te_cpu_dnnl_fini(te_backend *be);
te_status te_cpu_conv2d(te_backend *be, te_tensor *y, const te_tensor *x, te_tensor *w, const te_tensor *b,
                        const te_tensor *res, const te_conv2d_params *p);
te_status te_cpu_linear(te_backend *be, te_tensor *y, const te_tensor *x, te_tensor *w, const te_tensor *b,
                        const te_tensor *res);
te_status te_cpu_matmul(te_backend *be, te_tensor *c, const te_tensor *a, const te_tensor *b, int ta, int tb,
                        float alpha);
void te_cpu_release_prep(te_backend *be, struct te_prep *prep);

/* te_cpu_elem.c */
te_status te_cpu_group_norm(te_backend *be, te_tensor *y, const te_tensor *x, const te_tensor *g,
                            const te_tensor *b, int groups, float eps, int silu);
te_status te_cpu_layer_norm(te_backend *be, te_tensor *y, const te_tensor *x, const te_tensor *g,
                            const te_tensor *b, float eps);
te_status te_cpu_unary(te_backend *be, te_tensor *y, const te_tensor *x, te_unary_op op);
te_status te_cpu_leaky_relu(te_backend *be, te_tensor *y, const te_tensor *x, float slope);
te_status te_cpu_geglu(te_backend *be, te_tensor *y, const te_tensor *x);
te_status te_cpu_softmax(te_backend *be, te_tensor *y, const te_tensor *x, float scale);
te_status te_cpu_binary(te_backend *be, te_tensor *y, const te_tensor *a, const te_tensor *b, te_binary_op op);
te_status te_cpu_scale(te_backend *be, te_tensor *y, const te_tensor *x, float s, float bias);
te_status te_cpu_concat(te_backend *be, te_tensor *y, const te_tensor *a, const te_tensor *b);
te_status te_cpu_upsample2x(te_backend *be, te_tensor *y, const te_tensor *x);
te_status te_cpu_timestep(te_backend *be, te_tensor *y, const te_tensor *t, const te_timestep_params *p);
te_status te_cpu_layout(te_backend *be, te_tensor *y, const te_tensor *x, int to_nhwc);
te_status te_cpu_convert(te_backend *be, te_tensor *y, const te_tensor *x);
te_status te_cpu_copy(te_backend *be, te_tensor *y, const te_tensor *x);
/* te_cpu_resample.c */
te_status te_cpu_interpolate(te_backend *be, te_tensor *y, const te_tensor *x, te_interp_mode mode, int aa);
/* te_cpu_attn.c */
te_status te_cpu_attention(te_backend *be, te_tensor *o, const te_tensor *q, const te_tensor *k,
                           const te_tensor *v, const te_attn_params *p);

#endif
