/* checkpoint.h - a Stable Diffusion model as it sits on disk, for the network
 * code (unet.c, vae.c, clip_text.c) to take its weights from.
 *
 * Two layouts users have:
 *   - a single-file A1111/CompVis checkpoint (.safetensors) with LDM names:
 *     model.diffusion_model.* (UNet), first_stage_model.* (VAE),
 *     cond_stage_model.transformer.* (SD1 CLIP) or cond_stage_model.model.*
 *     (SD2 OpenCLIP);
 *   - a diffusers folder: unet/, vae/, text_encoder/ with
 *     diffusion_pytorch_model.safetensors / model.safetensors (or their
 *     .fp16 variants), and tokenizer/.
 * plus an optional separate VAE file (A1111's *.vae.safetensors, LDM names
 * without the first_stage_model. prefix, or a diffusers VAE file).
 *
 * The networks always ask by the diffusers name of a tensor within their
 * component, and pass a mapper that turns it into the LDM name (without the
 * component prefix) for single files. Pickle files are refused
 * (checkpoint_format.h explains why and how to convert). */
#ifndef TESSERA_CHECKPOINT_H
#define TESSERA_CHECKPOINT_H

#include "safetensors.h"

#include <stddef.h>

typedef enum { TCK_UNET = 0, TCK_VAE = 1, TCK_TEXT = 2 } tck_component;

/* diffusers name -> LDM name within the component; 0 ok, -1 no such mapping */
typedef int (*tck_mapper)(const char *diffusers_name, char *out, size_t outlen);

typedef struct tck_model tck_model;

/* path: a .safetensors file or a diffusers folder; vae_path: NULL or a VAE file. */
int tck_open(const char *path, const char *vae_path, tck_model **out, char *err, size_t errlen);
void tck_close(tck_model *m);

int tck_is_single_file(const tck_model *m);
/* The text encoder family a single file holds: 1 = SD1 CLIP (transformer.*),
 * 2 = SD2 OpenCLIP (model.*), 0 unknown; a folder reports 1 (CLIPTextModel). */
int tck_text_family(const tck_model *m);

/* The tensor, or NULL (err says which names were tried). */
const tst_tensor *tck_get(const tck_model *m, tck_component c, const char *diffusers_name, tck_mapper map,
                          char *err, size_t errlen);

/* The file a component's tensors come from (for messages and listing). */
const tst_file *tck_file(const tck_model *m, tck_component c);

/* A diffusers folder's tokenizer files, or NULL for single files. */
const char *tck_tokenizer_dir(const tck_model *m);

#endif
