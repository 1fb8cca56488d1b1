/* unet.h - the Stable Diffusion 1.x / 2.x UNet (diffusers UNet2DConditionModel)
 * on the Tessera engine.
 *
 * The architecture is read from the checkpoint, not hard-coded: input
 * channels (4, or 9 for inpainting models), block channels and number of
 * levels, layers per block, which levels carry cross-attention, transformer
 * depth, context dim, 1x1-conv vs linear proj_in/proj_out (SD1 vs SD2), time
 * embedding size. The number of attention heads is not in the tensors: a
 * diffusers folder gives it in unet/config.json (attention_head_dim, which
 * diffusers means as a *head count*: 8 for SD1, [5,10,20,20] per level for
 * SD2); for single files the standard rule applies (SD1: 8 heads; SD2, i.e.
 * linear projections or a 1024-wide context: heads of 64 channels), and
 * tmu_options overrides both.
 *
 * Layout: activations are channels-last inside (te_tensor.h). tmu_forward
 * takes x as NHWC [B, h, w, Cin] and makes out NHWC [B, h, w, Cout], both
 * arena tensors, and runs inside the caller's plan/run passes (call it in
 * both). tmu_forward_nchw is the convenience the sampler uses: host floats in
 * torch's NCHW layout, plans, reserves and runs by itself.
 *
 * Numbers follow diffusers in f32: GroupNorm eps 1e-5 in the ResNet blocks and
 * conv_norm_out, 1e-6 in front of the transformers, LayerNorm eps 1e-5, GEGLU
 * feed-forward, attention scale 1/sqrt(head_dim); the sinusoidal timestep
 * embedding is the engine's (computed in f64, so closer to the exact function
 * than torch's f32 one, which differs by up to ~1e-4 at t ~ 1000).
 *
 * Errors: functions return 0, or -1 with a message in err. */
#ifndef TESSERA_UNET_H
#define TESSERA_UNET_H

#include "checkpoint.h"
#include "te_arena.h"
#include "te_backend.h"

#include <stddef.h>

#define TMU_MAX_LEVELS 6
#define TMU_MAX_LAYERS 4    /* layers per block (SD: 2) */
#define TMU_MAX_DEPTH 4     /* transformer blocks per attention (SD: 1) */

/* Where the blocks sit: what the diffusers -> LDM name mapping depends on. */
typedef struct tmu_layout {
    int levels;                        /* SD: 4 */
    int layers_per_block;              /* SD: 2 (the up path has one more) */
    int up_attn[TMU_MAX_LEVELS];       /* up_blocks.i has attentions (SD: 0,1,1,1) */
} tmu_layout;

typedef struct tmu_config {
    tmu_layout layout;
    int in_channels, out_channels;     /* 4/4; 9/4 for inpainting */
    int channels[TMU_MAX_LEVELS];      /* block_out_channels (SD: 320, 640, 1280, 1280) */
    int down_attn[TMU_MAX_LEVELS];     /* down_blocks.i has attentions */
    int mid_attn;
    int heads[TMU_MAX_LEVELS];         /* per down level; up level i uses heads[levels-1-i] */
    int mid_heads;
    int depth;                         /* transformer blocks per attention */
    int context_dim;                   /* 768 SD1, 1024 SD2 */
    int time_embed_dim;                /* 4 * channels[0] */
    int linear_proj;                   /* SD2: proj_in/proj_out are linear */
    int groups;                        /* GroupNorm groups (32) */
    int flip_sin_to_cos;               /* 1 */
    float freq_shift;                  /* 0 */
} tmu_config;

typedef struct tmu_options {
    int heads;       /* > 0: this many heads at every level (overrides config and rule) */
    int head_dim;    /* > 0: heads = channels / head_dim at every level */
    int groups;      /* > 0: GroupNorm groups (default: config's norm_num_groups, else 32) */
} tmu_options;

typedef struct tmu_unet tmu_unet;

/* Load the UNet of m into weights on be (converted to f32). opts may be NULL. */
int tmu_load(tck_model *m, te_backend *be, const tmu_options *opts, tmu_unet **out, char *err, size_t errlen);
void tmu_free(tmu_unet *u);

const tmu_config *tmu_get_config(const tmu_unet *u);
size_t tmu_weight_bytes(const tmu_unet *u);
int tmu_tensor_count(const tmu_unet *u);   /* tensors loaded */
/* Per-stage timing of run passes (synchronizes after each stage: for
 * benchmarks, off by default). Stages: other (time embedding, conv_in/out,
 * skip concat), resnet, transformer norm+proj_in/out, self-attention (LN,
 * q/k/v/out projections, attention), cross-attention, feed-forward,
 * down/upsampling. */
#define TMU_STAGES 7
typedef struct tmu_stage {
    const char *name;
    double seconds;   /* of the last run pass with profiling on */
    double flops;     /* of the last forward */
} tmu_stage;
void tmu_set_profile(tmu_unet *u, int on);
void tmu_stages(const tmu_unet *u, tmu_stage out[TMU_STAGES]);

/* Floating-point operations (2 x multiply-adds of the convolutions, linears
 * and attention products) of the last tmu_forward, plan or run. */
double tmu_last_flops(const tmu_unet *u);

/* One forward inside the caller's pass (plan or run): x NHWC [B, h, w, in]
 * (arena tensor), t [B] float timesteps, ctx [B, T, context_dim]; *out is
 * allocated from the arena as NHWC [B, h, w, out_channels] (the caller releases
 * it). Inputs are not released. */
int tmu_forward(tmu_unet *u, te_arena *a, const te_tensor *x, const te_tensor *t, const te_tensor *ctx,
                te_tensor *out, char *err, size_t errlen);

/* Convenience on host floats: x NCHW [B, in, h, w], t [B], ctx [B, T, C],
 * out NCHW [B, out, h, w]. Plans, reserves and runs on the arena. */
int tmu_forward_nchw(tmu_unet *u, te_arena *a, const float *x, int B, int h, int w, const float *t,
                     const float *ctx, int T, float *out, char *err, size_t errlen);

/* The activation bytes one tmu_forward_nchw of B x h x w with T context
 * tokens takes from the arena: its plan pass alone (nothing is computed or
 * allocated). The arena must not be in the middle of another pass. */
int tmu_plan_bytes(tmu_unet *u, te_arena *a, int B, int h, int w, int T, size_t *bytes, char *err, size_t errlen);

/* diffusers name (within the UNet) -> LDM name (within model.diffusion_model.)
 * for a given layout; 0 ok, -1 no mapping. */
int tmu_map_name(const tmu_layout *lay, const char *diffusers_name, char *out, size_t outlen);
/* The same for the standard SD1/SD2 layout, usable as a tck_mapper. */
int tmu_ldm_name(const char *diffusers_name, char *out, size_t outlen);
/* The standard SD1/SD2 layout (4 levels, 2 layers, attention on up levels 1-3). */
tmu_layout tmu_layout_sd(void);

#endif
