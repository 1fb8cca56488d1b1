/* model_info.h - what a checkpoint is, read from tensor names, shapes,
 * metadata and config files without loading any weights (`tessera model info`).
 *
 * Architecture:
 *   - UNet: levels, layers per block, block channels, which levels carry
 *     attention, transformer depth, context dim, conv vs linear proj_in/out,
 *     in/out channels (in 9 = inpainting), time embedding size;
 *   - VAE: levels, latent channels, scaling factor (a folder's
 *     vae/config.json, else SD's 0.18215);
 *   - text encoder: family (1 = OpenAI CLIP / SD1, 2 = OpenCLIP / SD2), hidden
 *     size, layers used (SD2 single files: the resblocks minus the last, as
 *     SD2 uses the penultimate layer), heads (config.json, else hidden/64),
 *     activation.
 *   SD2 when the text encoder is OpenCLIP (single file cond_stage_model.model.*,
 *   or a folder whose text_encoder/config.json says gelu); else SD1. The
 *   context dim is reported as found.
 *
 * Prediction type (epsilon / v_prediction), first source that says:
 *   1. safetensors metadata "tessera.prediction_type" (single file);
 *   2. a folder's scheduler/scheduler_config.json "prediction_type";
 *   3. an A1111-style config next to a single file, <stem>.yaml, containing
 *      `parameterization: "v"` (or v unquoted);
 *   4. the file name (case-insensitive): "v-pred", "vpred", "v_pred",
 *      "v-parameterization" -> v_prediction; for SD2 also "768" (the SD 2.x
 *      768px models are v-prediction, the 512px "base" ones epsilon);
 *   5. otherwise epsilon ("default").
 *
 * Hash: A1111's model hash is the SHA-256 of the single file (first 10 hex
 * shown). Computed through tmh_cached with the cache file chosen by the caller
 * (tmi_default_hash_cache). A diffusers folder has no A1111 hash (A1111 loads
 * single files only): sha256 stays empty.
 *
 * Tensor count: the tensors in all files the model is read from (a folder's
 * unet, vae and text encoder files; the VAE file if one is given).
 *
 * Errors: 0, or -1 with a message in err. No global state. */
#ifndef TESSERA_MODEL_INFO_H
#define TESSERA_MODEL_INFO_H

#include "model_hash.h"

#include <stddef.h>
#include <stdio.h>

#define TMI_MAX_LEVELS 6

typedef struct tmi_info {
    char path[4096];
    int single_file;
    char arch[8];                  /* "SD1", "SD2" */
    char prediction[16];           /* "epsilon", "v_prediction" */
    char prediction_source[32];    /* "metadata", "scheduler config", "yaml", "file name", "default" */

    int unet_in, unet_out;         /* 4/4; 9/4 inpainting */
    int inpainting;
    int levels, layers_per_block;
    int channels[TMI_MAX_LEVELS];
    int down_attn[TMI_MAX_LEVELS]; /* level i has cross-attention (down path) */
    int mid_attn;
    int depth;                     /* transformer blocks per attention */
    int context_dim;
    int linear_proj;
    int time_embed_dim;

    int vae_levels, vae_latent_channels;
    float vae_scaling_factor;
    char vae_source[16];           /* "checkpoint", "folder", "file" (separate VAE) */

    int text_family;               /* 1 CLIP (SD1), 2 OpenCLIP (SD2) */
    int text_hidden, text_layers, text_heads;
    char text_act[16];             /* "quick_gelu", "gelu" */

    char sha256[TMH_HEX_LEN + 1];  /* "" for folders or when hashing was skipped */
    char shorthash[TMH_SHORT_LEN + 1];
    size_t tensor_count;
} tmi_info;

/* Inspect path (file or diffusers folder), with an optional separate VAE.
 * hash_cache: the tmh_cached cache file, or NULL to hash without a cache;
 * want_hash 0 skips hashing. */
int tmi_inspect(const char *path, const char *vae_path, int want_hash, const char *hash_cache, tmi_info *out,
                char *err, size_t errlen);

/* The cache file for a model at path: $TESSERA_DATA/model-hashes.json when
 * TESSERA_DATA is set, else <directory of path>/.tessera-hashes.json. */
void tmi_default_hash_cache(const char *path, char *out, size_t outlen);

/* Human-readable report / one JSON object (malloc'ed string, caller frees). */
void tmi_print(const tmi_info *i, FILE *f);
char *tmi_to_json(const tmi_info *i);

#endif
