/* checkpoint.c - opens single-file checkpoints and diffusers folders and
 * answers tensor look-ups by diffusers name (see checkpoint.h). */
#include "checkpoint.h"

#include "checkpoint_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tck_model {
    int single;
    tst_file *files[3];   /* per component; in a single file all three are the same */
    int owns[3];          /* whether files[i] must be closed by us */
    tst_file *vae_override;
    char tokenizer_dir[4096];
};

static const char *ldm_prefix(const tck_model *m, tck_component c) {
    switch (c) {
    case TCK_UNET: return "model.diffusion_model.";
    case TCK_VAE: return "first_stage_model.";
    case TCK_TEXT: return tck_text_family(m) == 2 ? "cond_stage_model.model." : "cond_stage_model.transformer.";
    }
    return "";
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int open_checked(const char *path, tst_file **f, char *err, size_t errlen) {
    if (tcf_refuse_unsafe(path, err, errlen)) return -1;
    return tst_open(path, f, err, errlen);
}

/* The first existing file among a component folder's usual names. */
static int open_component(const char *dir, const char *sub, const char *const *names, tst_file **f, char *err,
                          size_t errlen) {
    char path[4200];
    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", dir, sub, names[i]);
        if (access(path, R_OK) == 0) return open_checked(path, f, err, errlen);
    }
    snprintf(err, errlen, "%s/%s: no %s (or its .fp16 variant) in the diffusers folder", dir, sub, names[0]);
    return -1;
}

int tck_open(const char *path, const char *vae_path, tck_model **out, char *err, size_t errlen) {
    *out = NULL;
    tck_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (is_dir(path)) {
        static const char *const model_names[] = {"diffusion_pytorch_model.safetensors",
                                                  "diffusion_pytorch_model.fp16.safetensors", NULL};
        static const char *const te_names[] = {"model.safetensors", "model.fp16.safetensors", NULL};
        if (open_component(path, "unet", model_names, &m->files[TCK_UNET], err, errlen) ||
            open_component(path, "vae", model_names, &m->files[TCK_VAE], err, errlen) ||
            open_component(path, "text_encoder", te_names, &m->files[TCK_TEXT], err, errlen))
            goto fail;
        m->owns[0] = m->owns[1] = m->owns[2] = 1;
        snprintf(m->tokenizer_dir, sizeof m->tokenizer_dir, "%s/tokenizer", path);
    } else {
        tst_file *f;
        if (open_checked(path, &f, err, errlen)) goto fail;
        m->single = 1;
        m->files[0] = m->files[1] = m->files[2] = f;
        m->owns[0] = 1;
    }
    if (vae_path && vae_path[0] && open_checked(vae_path, &m->vae_override, err, errlen)) goto fail;
    *out = m;
    return 0;
fail:
    tck_close(m);
    return -1;
}

void tck_close(tck_model *m) {
    if (!m) return;
    for (int i = 0; i < 3; i++)
        if (m->owns[i]) tst_close(m->files[i]);
    tst_close(m->vae_override);
    free(m);
}

int tck_is_single_file(const tck_model *m) { return m->single; }

int tck_text_family(const tck_model *m) {
    if (!m->single) return 1;
    const tst_file *f = m->files[TCK_TEXT];
    for (size_t i = 0; i < tst_count(f); i++) {
        const char *n = tst_at(f, i)->name;
        if (!strncmp(n, "cond_stage_model.transformer.", 29)) return 1;
        if (!strncmp(n, "cond_stage_model.model.", 23)) return 2;
    }
    return 0;
}

const tst_tensor *tck_get(const tck_model *m, tck_component c, const char *name, tck_mapper map, char *err,
                          size_t errlen) {
    char ldm[512], full[600];
    const tst_tensor *t;
    int mapped = map ? map(name, ldm, sizeof ldm) == 0 : 0;
    if (c == TCK_VAE && m->vae_override) {
        /* a separate VAE: diffusers names, or LDM names without the prefix */
        if ((t = tst_find(m->vae_override, name))) return t;
        if (mapped && (t = tst_find(m->vae_override, ldm))) return t;
        snprintf(err, errlen, "the VAE file has no tensor %s%s%s", name, mapped ? " or " : "", mapped ? ldm : "");
        return NULL;
    }
    if (!m->single) {
        if ((t = tst_find(m->files[c], name))) return t;
        snprintf(err, errlen, "the diffusers folder has no tensor %s", name);
        return NULL;
    }
    if (!mapped) {
        snprintf(err, errlen, "no single-file name is known for %s", name);
        return NULL;
    }
    snprintf(full, sizeof full, "%s%s", ldm_prefix(m, c), ldm);
    if ((t = tst_find(m->files[c], full))) return t;
    snprintf(err, errlen, "the checkpoint has no tensor %s (for %s)", full, name);
    return NULL;
}

const tst_file *tck_file(const tck_model *m, tck_component c) {
    if (c == TCK_VAE && m->vae_override) return m->vae_override;
    return m->files[c];
}

const char *tck_tokenizer_dir(const tck_model *m) { return m->single ? NULL : m->tokenizer_dir; }
