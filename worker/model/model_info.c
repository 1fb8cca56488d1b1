/* model_info.c - describe a checkpoint without loading it (see model_info.h).
 *
 * Everything is read from the safetensors headers (names and shapes), the
 * metadata and, for diffusers folders, the components' config.json: no
 * weight is converted, so it is instant even for multi-GB files (hashing
 * aside, which tmh_cached remembers). The UNet block layout of a single file
 * is found from the LDM input_blocks numbering the same way unet_load.c does,
 * then diffusers names are mapped with tmu_map_name. */
#include "model_info.h"

#include "checkpoint.h"
#include "clip_text.h"
#include "net_util.h"
#include "unet.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int ident(const char *n, char *o, size_t l) {
    int k = snprintf(o, l, "%s", n);
    return k < 0 || (size_t)k >= l ? -1 : 0;
}

typedef struct {
    tck_model *m;
    int single;
    tmu_layout lay;
} probe;

/* A tensor by name: raw (LDM name within the component, or the folder's
 * diffusers name) when raw, else a UNet diffusers name mapped for single files. */
static const tst_tensor *get(probe *p, tck_component c, int raw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static const tst_tensor *get(probe *p, tck_component c, int raw, const char *fmt, ...) {
    char name[256], ldm[512], tmp[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (!raw && p->single && c == TCK_UNET) {
        if (tmu_map_name(&p->lay, name, ldm, sizeof ldm)) return NULL;
        return tck_get(p->m, c, ldm, ident, tmp, sizeof tmp);
    }
    return tck_get(p->m, c, name, ident, tmp, sizeof tmp);
}

static json_t *load_json(const char *dir, const char *rel) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return json_load_file(path, 0, NULL);
}

static int unet_info(probe *p, tmi_info *o, char *err, size_t errlen) {
    tmu_layout *y = &p->lay;
    memset(y, 0, sizeof *y);
    if (!p->single) {
        while (y->levels < TMI_MAX_LEVELS && get(p, TCK_UNET, 1, "down_blocks.%d.resnets.0.conv1.weight", y->levels))
            y->levels++;
        while (y->layers_per_block < TMU_MAX_LAYERS &&
               get(p, TCK_UNET, 1, "down_blocks.0.resnets.%d.conv1.weight", y->layers_per_block))
            y->layers_per_block++;
    } else {
        int n = 0, first_op = 0;
        for (int k = 1; k < 64; k++) {
            int res = get(p, TCK_UNET, 1, "input_blocks.%d.0.in_layers.0.weight", k) != NULL;
            int op = get(p, TCK_UNET, 1, "input_blocks.%d.0.op.weight", k) != NULL;
            if (!res && !op) break;
            if (op && !first_op) first_op = k;
            n = k;
        }
        y->layers_per_block = first_op ? first_op - 1 : n;
        y->levels = first_op ? (n + 1) / (y->layers_per_block + 1) : 1;
    }
    if (y->levels < 1 || y->layers_per_block < 1 || y->levels > TMI_MAX_LEVELS) {
        snprintf(err, errlen, "no UNet found (no down blocks)");
        return -1;
    }
    const tst_tensor *t = get(p, TCK_UNET, 0, "conv_in.weight");
    if (!t || t->ndim != 4) {
        snprintf(err, errlen, "no UNet conv_in.weight");
        return -1;
    }
    o->unet_in = (int)t->shape[1];
    o->inpainting = o->unet_in == 9;
    if ((t = get(p, TCK_UNET, 0, "conv_out.weight")) && t->ndim == 4) o->unet_out = (int)t->shape[0];
    if ((t = get(p, TCK_UNET, 0, "time_embedding.linear_1.weight")) && t->ndim == 2)
        o->time_embed_dim = (int)t->shape[0];
    o->levels = y->levels;
    o->layers_per_block = y->layers_per_block;
    char attn0[64] = "";
    for (int i = 0; i < y->levels; i++) {
        if ((t = get(p, TCK_UNET, 0, "down_blocks.%d.resnets.0.conv1.weight", i)) && t->ndim == 4)
            o->channels[i] = (int)t->shape[0];
        o->down_attn[i] = get(p, TCK_UNET, 0, "down_blocks.%d.attentions.0.norm.weight", i) != NULL;
        if (o->down_attn[i] && !attn0[0]) snprintf(attn0, sizeof attn0, "down_blocks.%d.attentions.0", i);
    }
    /* up-level attention is what the single-file mapping needs; down levels are what users read */
    for (int i = 0; i < y->levels; i++)
        y->up_attn[i] = p->single ? get(p, TCK_UNET, 1, "output_blocks.%d.1.norm.weight", i * (y->layers_per_block + 1)) != NULL
                                  : get(p, TCK_UNET, 1, "up_blocks.%d.attentions.0.norm.weight", i) != NULL;
    o->mid_attn = get(p, TCK_UNET, 0, "mid_block.attentions.0.norm.weight") != NULL;
    if (!attn0[0] && o->mid_attn) snprintf(attn0, sizeof attn0, "mid_block.attentions.0");
    if (attn0[0]) {
        if ((t = get(p, TCK_UNET, 0, "%s.proj_in.weight", attn0))) o->linear_proj = t->ndim == 2;
        while (o->depth < 16 && get(p, TCK_UNET, 0, "%s.transformer_blocks.%d.norm1.weight", attn0, o->depth))
            o->depth++;
        if ((t = get(p, TCK_UNET, 0, "%s.transformer_blocks.0.attn2.to_k.weight", attn0)) && t->ndim == 2)
            o->context_dim = (int)t->shape[1];
    }
    return 0;
}

static void vae_info(probe *p, tmi_info *o, const char *vae_path) {
    snprintf(o->vae_source, sizeof o->vae_source, "%s", vae_path ? "file" : p->single ? "checkpoint" : "folder");
    while (o->vae_levels < 8 && (get(p, TCK_VAE, 1, "encoder.down.%d.block.0.conv1.weight", o->vae_levels) ||
                                 get(p, TCK_VAE, 1, "encoder.down_blocks.%d.resnets.0.conv1.weight", o->vae_levels)))
        o->vae_levels++;
    const tst_tensor *t = get(p, TCK_VAE, 1, "post_quant_conv.weight");
    if (t && t->ndim >= 1) o->vae_latent_channels = (int)t->shape[0];
    o->vae_scaling_factor = 0.18215f;
    if (!p->single && !vae_path) {
        json_t *j = load_json(o->path, "vae/config.json"), *v;
        if (j && (v = json_object_get(j, "scaling_factor")) && json_is_number(v))
            o->vae_scaling_factor = (float)json_number_value(v);
        json_decref(j);
    }
}

static void text_info(probe *p, tmi_info *o) {
    int fam = tck_text_family(p->m);
    int heads = 0, quick = fam != 2;
    if (!p->single) {
        json_t *j = load_json(o->path, "text_encoder/config.json"), *v;
        if (j) {
            if ((v = json_object_get(j, "num_attention_heads")) && json_is_integer(v)) heads = (int)json_integer_value(v);
            if ((v = json_object_get(j, "hidden_act")) && json_is_string(v))
                quick = !strcmp(json_string_value(v), "quick_gelu");
            json_decref(j);
        }
        fam = quick ? 1 : 2;
    }
    if (fam == 0) return;
    o->text_family = fam;
    snprintf(o->text_act, sizeof o->text_act, "%s", quick ? "quick_gelu" : "gelu");
    tnu_src s = {p->m, TCK_TEXT, fam == 2 ? tmt_map_sd2 : tmt_map_sd1, "text_model."};
    char err[600];
    int64_t h = tnu_dim(&s, "text_model.embeddings.token_embedding.weight", 1, err, sizeof err);
    o->text_hidden = h > 0 ? (int)h : 0;
    int n = 0;
    for (;; n++) {
        char name[160];
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.layer_norm1.weight", n);
        if (!tnu_has(&s, name)) break;
    }
    o->text_layers = p->single && fam == 2 && n > 0 ? n - 1 : n;
    o->text_heads = heads > 0 ? heads : o->text_hidden / 64;
}

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n)) return 1;
    return 0;
}

static void prediction(probe *p, tmi_info *o) {
    const char *pred = NULL, *src = NULL;
    if (p->single) {
        const char *v = tst_metadata_get(tck_file(p->m, TCK_UNET), "tessera.prediction_type");
        if (v && (!strcmp(v, "epsilon") || !strcmp(v, "v_prediction"))) pred = v, src = "metadata";
    } else {
        json_t *j = load_json(o->path, "scheduler/scheduler_config.json"), *v;
        if (j && (v = json_object_get(j, "prediction_type")) && json_is_string(v)) {
            const char *s = json_string_value(v);
            if (!strcmp(s, "v_prediction")) pred = "v_prediction", src = "scheduler config";
            else if (!strcmp(s, "epsilon")) pred = "epsilon", src = "scheduler config";
        }
        json_decref(j);
    }
    if (!pred && p->single) {
        char yaml[4200];
        const char *dot = strrchr(o->path, '.'), *slash = strrchr(o->path, '/');
        int stem = dot && (!slash || dot > slash) ? (int)(dot - o->path) : (int)strlen(o->path);
        snprintf(yaml, sizeof yaml, "%.*s.yaml", stem, o->path);
        FILE *f = fopen(yaml, "r");
        if (f) {
            char line[512];
            while (fgets(line, sizeof line, f)) {
                char *k = strstr(line, "parameterization:");
                if (!k) continue;
                k += strlen("parameterization:");
                while (*k == ' ' || *k == '"' || *k == '\'') k++;
                if (k[0] == 'v' && (k[1] == '"' || k[1] == '\'' || isspace((unsigned char)k[1]) || !k[1]))
                    pred = "v_prediction", src = "yaml";
                else if (!strncmp(k, "eps", 3))
                    pred = "epsilon", src = "yaml";
            }
            fclose(f);
        }
    }
    if (!pred) {
        const char *slash = strrchr(o->path, '/');
        const char *base = slash && slash[1] ? slash + 1 : o->path;
        if (contains_ci(base, "v-pred") || contains_ci(base, "vpred") || contains_ci(base, "v_pred") ||
            contains_ci(base, "v-parameterization") || (!strcmp(o->arch, "SD2") && contains_ci(base, "768")))
            pred = "v_prediction", src = "file name";
    }
    if (!pred) pred = "epsilon", src = "default";
    snprintf(o->prediction, sizeof o->prediction, "%s", pred);
    snprintf(o->prediction_source, sizeof o->prediction_source, "%s", src);
}

void tmi_default_hash_cache(const char *path, char *out, size_t outlen) {
    const char *d = getenv("TESSERA_DATA");
    if (d && *d) {
        snprintf(out, outlen, "%s/model-hashes.json", d);
        return;
    }
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, outlen, ".tessera-hashes.json");
    else snprintf(out, outlen, "%.*s/.tessera-hashes.json", (int)(slash - path), path);
}

int tmi_inspect(const char *path, const char *vae_path, int want_hash, const char *hash_cache, tmi_info *o,
                char *err, size_t errlen) {
    memset(o, 0, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s", path);
    size_t pl = strlen(o->path);
    while (pl > 1 && o->path[pl - 1] == '/') o->path[--pl] = 0;
    probe p = {0};
    if (tck_open(o->path, vae_path, &p.m, err, errlen)) return -1;
    p.single = tck_is_single_file(p.m);
    o->single_file = p.single;
    int rc = unet_info(&p, o, err, errlen);
    if (rc == 0) {
        vae_info(&p, o, vae_path);
        text_info(&p, o);
        snprintf(o->arch, sizeof o->arch, "%s",
                 o->text_family == 2 || (!o->text_family && o->context_dim == 1024) ? "SD2" : "SD1");
        prediction(&p, o);
        const tst_file *seen[3] = {0};
        for (int c = 0; c < 3; c++) {
            const tst_file *f = tck_file(p.m, (tck_component)c);
            int dup = !f;
            for (int k = 0; k < c; k++) dup |= seen[k] == f;
            seen[c] = f;
            if (!dup) o->tensor_count += tst_count(f);
        }
    }
    tck_close(p.m);
    if (rc == 0 && want_hash && p.single) {
        char hex[TMH_HEX_LEN + 1];
        rc = hash_cache ? tmh_cached(hash_cache, o->path, hex, err, errlen)
                        : tmh_sha256_file(o->path, hex, err, errlen);
        if (rc == 0) {
            memcpy(o->sha256, hex, sizeof hex);
            tmh_short(hex, o->shorthash);
        }
    }
    return rc;
}

static void list_ints(char *out, size_t n, const int *v, int k) {
    size_t at = 0;
    out[0] = 0;
    for (int i = 0; i < k && at < n; i++) at += (size_t)snprintf(out + at, n - at, "%s%d", i ? ", " : "", v[i]);
}

void tmi_print(const tmi_info *i, FILE *f) {
    char ch[128], at[128];
    list_ints(ch, sizeof ch, i->channels, i->levels);
    list_ints(at, sizeof at, i->down_attn, i->levels);
    fprintf(f, "path:          %s (%s)\n", i->path, i->single_file ? "single file" : "diffusers folder");
    fprintf(f, "architecture:  %s%s, %s (%s)\n", i->arch, i->inpainting ? " inpainting" : "", i->prediction,
            i->prediction_source);
    if (i->sha256[0]) fprintf(f, "hash:          %s (sha256 %s)\n", i->shorthash, i->sha256);
    else fprintf(f, "hash:          none (%s)\n", i->single_file ? "not computed" : "A1111 hashes single files only");
    fprintf(f, "tensors:       %zu\n", i->tensor_count);
    fprintf(f, "unet:          in %d, out %d channels; %d levels x %d layers; channels [%s]; attention [%s], mid %d;\n"
               "               depth %d, context dim %d, %s proj, time embedding %d\n",
            i->unet_in, i->unet_out, i->levels, i->layers_per_block, ch, at, i->mid_attn, i->depth, i->context_dim,
            i->linear_proj ? "linear" : "conv", i->time_embed_dim);
    fprintf(f, "vae:           %d levels, %d latent channels, scaling factor %g (%s)\n", i->vae_levels,
            i->vae_latent_channels, i->vae_scaling_factor, i->vae_source);
    if (i->text_family)
        fprintf(f, "text encoder:  %s, hidden %d, %d layers, %d heads%s, %s\n",
                i->text_family == 2 ? "OpenCLIP (SD2)" : "CLIP (SD1)", i->text_hidden, i->text_layers, i->text_heads,
                i->text_heads ? "" : " (not 64-wide: unknown)", i->text_act);
    else
        fprintf(f, "text encoder:  none\n");
}

char *tmi_to_json(const tmi_info *i) {
    char sf[32];
    snprintf(sf, sizeof sf, "%.7g", (double)i->vae_scaling_factor);   /* 0.18215, not 0.18215000629 */
    json_t *ch = json_array(), *at = json_array();
    for (int k = 0; k < i->levels; k++) {
        json_array_append_new(ch, json_integer(i->channels[k]));
        json_array_append_new(at, json_boolean(i->down_attn[k]));
    }
    json_t *j = json_pack(
        "{s:s, s:b, s:s, s:s, s:s, s:b, s:s?, s:s?, s:I,"
        " s:{s:i, s:i, s:i, s:i, s:o, s:o, s:b, s:i, s:i, s:b, s:i},"
        " s:{s:i, s:i, s:f, s:s},"
        " s:{s:s, s:i, s:i, s:i, s:i, s:s}}",
        "path", i->path, "single_file", i->single_file, "architecture", i->arch, "prediction_type", i->prediction,
        "prediction_source", i->prediction_source, "inpainting", i->inpainting,
        "hash", i->shorthash[0] ? i->shorthash : NULL, "sha256", i->sha256[0] ? i->sha256 : NULL,
        "tensor_count", (json_int_t)i->tensor_count,
        "unet", "in_channels", i->unet_in, "out_channels", i->unet_out, "levels", i->levels, "layers_per_block",
        i->layers_per_block, "channels", ch, "attention", at, "mid_attention", i->mid_attn, "depth", i->depth,
        "context_dim", i->context_dim, "linear_proj", i->linear_proj, "time_embed_dim", i->time_embed_dim,
        "vae", "levels", i->vae_levels, "latent_channels", i->vae_latent_channels, "scaling_factor",
        strtod(sf, NULL), "source", i->vae_source,
        "text_encoder", "family", i->text_family == 2 ? "openclip" : i->text_family == 1 ? "clip" : "none",
        "family_id", i->text_family, "hidden", i->text_hidden, "layers", i->text_layers, "heads", i->text_heads,
        "activation", i->text_act);
    if (!j) return NULL;
    char *s = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}
