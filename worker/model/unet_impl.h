/* unet_impl.h - the UNet's weights as the loader (unet_load.c) fills them and
 * the forward pass (unet.c) uses them. Private to worker/model/unet*.c. */
#ifndef TESSERA_UNET_IMPL_H
#define TESSERA_UNET_IMPL_H

#include "te_weights.h"
#include "unet.h"

typedef struct { te_tensor *w, *b; } tmu_lin;   /* conv or linear; b may be NULL */
typedef struct { te_tensor *g, *b; } tmu_norm;

typedef struct {
    tmu_norm n1, n2;
    tmu_lin c1, c2, temb, skip;   /* skip.w == NULL: identity shortcut */
    int cin, cout;
} tmu_res;

typedef struct {
    tmu_norm n1, n2, n3;
    tmu_lin q1, k1, v1, o1;       /* self-attention */
    tmu_lin q2, k2, v2, o2;       /* cross-attention on the context */
    tmu_lin ff1, ff2;             /* GEGLU feed-forward */
    int ff;                       /* GEGLU inner width F (ff1 is [2F, inner]) */
} tmu_tblock;

typedef struct {
    int present;
    int c, inner, heads, depth;
    tmu_norm norm;
    tmu_lin pin, pout;            /* linear [out, in] (1x1 convs loaded as 2-D) */
    tmu_tblock tb[TMU_MAX_DEPTH];
} tmu_attn;

struct tmu_unet {
    tmu_config cfg;
    te_backend *be;
    te_weights *w;
    tmu_lin conv_in, t1, t2, conv_out;
    tmu_norm norm_out;
    tmu_res down_res[TMU_MAX_LEVELS][TMU_MAX_LAYERS];
    tmu_attn down_attn[TMU_MAX_LEVELS][TMU_MAX_LAYERS];
    tmu_lin down_conv[TMU_MAX_LEVELS];
    tmu_res mid_res[2];
    tmu_attn mid_attn;
    tmu_res up_res[TMU_MAX_LEVELS][TMU_MAX_LAYERS + 1];
    tmu_attn up_attn[TMU_MAX_LEVELS][TMU_MAX_LAYERS + 1];
    tmu_lin up_conv[TMU_MAX_LEVELS];
    double flops;                 /* of the last forward */
    int profile;
    double st_time[TMU_STAGES], st_flops[TMU_STAGES];
};

#endif
