/* sd_model.h - one Stable Diffusion checkpoint loaded for rendering (text
 * encoder, tokenizer, UNet, VAE, noise schedule) and the models directory
 * that names checkpoints the way /sdapi/v1/sd-models does.
 *
 * The models directory (worker --models, tessera render --models, the
 * daemon's models setting) is shared by all three programs:
 *   <dir>/NAME.safetensors, <dir>/FOLDER/ with model_index.json checkpoints
 *   <dir>/Stable-diffusion/...                                   (A1111 layout, same)
 *   <dir>/VAE/NAME.safetensors                                   separate VAEs
 * A checkpoint is named by its file name, its stem (model_name), its path
 * relative to the directory, or A1111's title "<relpath> [<shorthash>]"; a
 * 10-hex short hash also selects it when its hash is cached.
 *
 * The model cache keeps loaded checkpoints hot: a job naming the model it
 * already holds pays nothing; loading another evicts the least recently used
 * ones until the estimated total fits the memory budget (0 = keep one).
 *
 * Errors: 0, or -1 with a message in err. No global state. */
#ifndef TESSERA_SD_MODEL_H
#define TESSERA_SD_MODEL_H

#include "checkpoint.h"
#include "clip_text.h"
#include "clip_tokenizer.h"
#include "model_info.h"
#include "schedule.h"
#include "te_arena.h"
#include "te_backend.h"
#include "unet.h"
#include "vae.h"

#include <stddef.h>

typedef struct tpl_model {
    char name[256];          /* model_name: file stem or folder name */
    char path[4096];
    char vae_name[256];      /* "" = the checkpoint's own VAE */
    char vae_path[4096];
    char sha256[TMH_HEX_LEN + 1];   /* "" for folders */
    char shorthash[TMH_SHORT_LEN + 1];
    char vae_shorthash[TMH_SHORT_LEN + 1];
    tmi_info info;
    tck_model *ck;
    ttok_tokenizer *tok;
    tmt_encoder *text;
    tmu_unet *unet;
    tmv_vae *vae;
    te_arena *arena;         /* UNet activations */
    tsm_model_schedule sched;
    int family;              /* 1 SD1, 2 SD2 */
    int inpainting;          /* 9-channel UNet */
    int latent_channels, downscale;
    size_t bytes;            /* weights estimate, for the cache */
} tpl_model;

typedef struct tpl_load_opts {
    te_backend *be;          /* required */
    const char *vocab;       /* CLIP BPE file, NULL = $TESSERA_CLIP_VOCAB / $TESSERA_DATA / ~/.cache/tessera */
    int want_hash;           /* compute (cached) A1111 hashes */
    size_t arena_cap;        /* activation cap for UNet/VAE/text, 0 = none */
} tpl_load_opts;

int tpl_model_load(const char *path, const char *vae_path, const tpl_load_opts *o, tpl_model **out, char *err,
                   size_t errlen);
void tpl_model_free(tpl_model *m);

/* Resolve a checkpoint name in dir -> absolute path (file or folder) and its
 * model_name. name NULL/"" = the first checkpoint in name order. */
int tpl_find_checkpoint(const char *dir, const char *name, char *path, size_t pathlen, char *model_name,
                        size_t mnlen, char *err, size_t errlen);
/* Resolve a VAE: NULL, "", "Automatic", "None" -> *path = "" (the
 * checkpoint's own; "Automatic" also takes <stem>.vae.safetensors beside the
 * checkpoint), else a file in dir/VAE (by file name or stem). */
int tpl_find_vae(const char *dir, const char *name, const char *ckpt_path, char *path, size_t pathlen,
                 char *err, size_t errlen);

/* ---- cache ---- */
typedef struct tpl_cache tpl_cache;
int tpl_cache_create(const char *models_dir, const tpl_load_opts *o, size_t budget_bytes, tpl_cache **out);
void tpl_cache_free(tpl_cache *c);
/* The loaded model for (checkpoint name, vae name); borrowed until the next
 * tpl_cache_get. *loaded_now (may be NULL) says whether it was loaded. */
int tpl_cache_get(tpl_cache *c, const char *ckpt, const char *vae, tpl_model **out, int *loaded_now, char *err,
                  size_t errlen);
int tpl_cache_count(const tpl_cache *c);

#endif
