/* clip_text.h - the CLIP text transformer of Stable Diffusion 1.x (OpenAI
 * CLIP ViT-L/14, quick_gelu) and 2.x (OpenCLIP ViT-H, gelu, penultimate
 * layer), on the engine (te_ops.h), numerically equal to transformers'
 * CLIPTextModel on the same weights.
 *
 * Architecture comes from the tensors: hidden size from the token embedding,
 * layer count by probing, intermediate size from fc1. Heads: a folder's
 * text_encoder/config.json (num_attention_heads, hidden_act,
 * num_hidden_layers), else options.n_heads, else hidden/64 (all real CLIP
 * text models use 64-wide heads).
 *
 * SD2 single files hold the full OpenCLIP stack (cond_stage_model.model.*,
 * q/k/v fused in attn.in_proj_*); SD2 uses the penultimate layer, so the last
 * resblock is not loaded and "the last layer" below means the penultimate one
 * - exactly what a diffusers SD2 folder (converted with the last layer
 * dropped) holds.
 *
 * Clip skip (A1111 CLIP_stop_at_last_layers N): N <= 1 gives the output of the
 * last layer through final_layer_norm (last_hidden_state); N >= 2 stops after
 * layer count-(N-1) and applies final_layer_norm to that (hidden_states[-N]).
 * A1111 ignores the setting for SD2: callers matching A1111 pass 1 there.
 *
 * The causal mask: te_attention has none, so self-attention runs on the host
 * in f32 (double accumulation) over the 77 tokens (tiny next to the
 * projections); q/k/v are downloaded and the result uploaded, so any backend
 * works. */
#ifndef TESSERA_CLIP_TEXT_H
#define TESSERA_CLIP_TEXT_H

#include "checkpoint.h"
#include "te_backend.h"

#include <stddef.h>
#include <stdint.h>

#define TMT_TOKENS 77

typedef struct tmt_options {
    te_backend *be;     /* required */
    int n_heads;        /* 0 = config.json, else hidden/64 */
    size_t arena_cap;   /* activation cap in bytes, 0 = unlimited */
} tmt_options;

typedef struct tmt_encoder tmt_encoder;

int tmt_load(const tck_model *m, tmt_encoder **out, const tmt_options *opt, char *err, size_t errlen);
/* ids: B*77 token ids; out: B*77*hidden floats (host). clip_skip as above. */
int tmt_encode(tmt_encoder *e, const int32_t *ids, int B, int clip_skip, float *out, char *err, size_t errlen);
void tmt_free(tmt_encoder *e);

int tmt_hidden_size(const tmt_encoder *e);
int tmt_layers(const tmt_encoder *e);     /* layers used (SD2 single file: resblocks - 1) */
int tmt_heads(const tmt_encoder *e);
int tmt_family(const tmt_encoder *e);     /* 1 SD1 (quick_gelu), 2 SD2 (gelu) */

/* diffusers name within the text encoder -> LDM name within the component
 * (SD1: identity under cond_stage_model.transformer.; SD2: OpenCLIP names under
 * cond_stage_model.model., q/k/v_proj -> attn.in_proj_*). tck_mapper-shaped. */
int tmt_map_sd1(const char *diffusers_name, char *out, size_t outlen);
int tmt_map_sd2(const char *diffusers_name, char *out, size_t outlen);

#endif
