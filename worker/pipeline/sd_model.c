/* sd_model.c - loading a checkpoint for rendering, finding checkpoints and
 * VAEs by the names users give, and the LRU model cache (sd_model.h). */
#include "sd_model.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcasecmp(s + n - m, suf);
}

static int load_tokenizer(const tck_model *m, const char *vocab, ttok_tokenizer **tok, char *err, size_t errlen) {
    char v[4200], mg[4200], e2[512];
    const char *dir = tck_tokenizer_dir(m);
    if (!vocab && dir) {
        snprintf(v, sizeof v, "%s/vocab.json", dir);
        snprintf(mg, sizeof mg, "%s/merges.txt", dir);
        if (is_file(v) && is_file(mg)) {
            if (ttok_load_json(v, mg, tok, e2, sizeof e2) == 0) return 0;
            snprintf(err, errlen, "tokenizer %s: %s", dir, e2);
            return -1;
        }
    }
    const char *e = getenv("TESSERA_CLIP_VOCAB"), *d = getenv("TESSERA_DATA");
    if (vocab) snprintf(v, sizeof v, "%s", vocab);
    else if (e && *e) snprintf(v, sizeof v, "%s", e);
    else if (d && *d) snprintf(v, sizeof v, "%s/bpe_simple_vocab_16e6.txt.gz", d);
    else
        snprintf(v, sizeof v, "%s/.cache/tessera/bpe_simple_vocab_16e6.txt.gz",
                 getenv("HOME") ? getenv("HOME") : ".");
    if (ttok_load_bpe_gz(v, tok, e2, sizeof e2) == 0) return 0;
    snprintf(err, errlen, "CLIP vocabulary: %s (run scripts/fetch-clip-vocab.sh or set TESSERA_CLIP_VOCAB)", e2);
    return -1;
}

static void stem_of(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    size_t l = strlen(out);
    while (l > 0 && out[l - 1] == '/') out[--l] = 0;
    if (ends_with(out, ".vae.safetensors")) out[strlen(out) - 16] = 0;
    else if (ends_with(out, ".safetensors")) out[strlen(out) - 12] = 0;
}

int tpl_model_load(const char *path, const char *vae_path, const tpl_load_opts *o, tpl_model **out, char *err,
                   size_t errlen) {
    *out = NULL;
    tpl_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    stem_of(path, m->name, sizeof m->name);
    if (vae_path && vae_path[0]) {
        snprintf(m->vae_path, sizeof m->vae_path, "%s", vae_path);
        stem_of(vae_path, m->vae_name, sizeof m->vae_name);
    }
    char cache[4200], e2[1024];
    tmi_default_hash_cache(path, cache, sizeof cache);
    if (tmi_inspect(path, vae_path && vae_path[0] ? vae_path : NULL, o->want_hash, cache, &m->info, e2,
                    sizeof e2)) {
        snprintf(err, errlen, "%s: %s", path, e2);
        goto fail;
    }
    snprintf(m->sha256, sizeof m->sha256, "%s", m->info.sha256);
    snprintf(m->shorthash, sizeof m->shorthash, "%s", m->info.shorthash);
    if (vae_path && vae_path[0] && o->want_hash) {
        char hex[TMH_HEX_LEN + 1];
        tmi_default_hash_cache(vae_path, cache, sizeof cache);
        if (tmh_cached(cache, vae_path, hex, e2, sizeof e2) == 0) tmh_short(hex, m->vae_shorthash);
    }
    m->family = m->info.text_family == 2 ? 2 : 1;
    m->inpainting = m->info.unet_in == 9;
    if (tck_open(path, vae_path && vae_path[0] ? vae_path : NULL, &m->ck, e2, sizeof e2)) {
        snprintf(err, errlen, "%s", e2);
        goto fail;
    }
    if (load_tokenizer(m->ck, o->vocab, &m->tok, err, errlen)) goto fail;
    tmt_options to = {.be = o->be, .n_heads = 0, .arena_cap = o->arena_cap};
    if (tmt_load(m->ck, &m->text, &to, e2, sizeof e2)) {
        snprintf(err, errlen, "text encoder: %s", e2);
        goto fail;
    }
    if (tmu_load(m->ck, o->be, NULL, &m->unet, e2, sizeof e2)) {
        snprintf(err, errlen, "unet: %s", e2);
        goto fail;
    }
    tmv_options vo = {.be = o->be, .norm_groups = 0, .scaling_factor = 0, .arena_cap = o->arena_cap};
    if (tmv_load(m->ck, &m->vae, &vo, e2, sizeof e2)) {
        snprintf(err, errlen, "vae: %s", e2);
        goto fail;
    }
    if (te_arena_create(o->be, o->arena_cap, 0, &m->arena) != TE_OK) {
        snprintf(err, errlen, "cannot create the UNet arena");
        goto fail;
    }
    tsm_schedule_init_sd(&m->sched, strcmp(m->info.prediction, "v_prediction") ? TSM_PRED_EPS : TSM_PRED_V);
    m->latent_channels = tmv_latent_channels(m->vae);
    m->downscale = tmv_downscale(m->vae);
    m->bytes = tmu_weight_bytes(m->unet) + 2 * (size_t)m->info.text_hidden * m->info.text_hidden * 12 *
                                               (size_t)(m->info.text_layers > 0 ? m->info.text_layers : 1) +
               ((size_t)160 << 20);
    *out = m;
    return 0;
fail:
    tpl_model_free(m);
    return -1;
}

void tpl_model_free(tpl_model *m) {
    if (!m) return;
    if (m->arena) te_arena_destroy(m->arena);
    tmv_free(m->vae);
    tmu_free(m->unet);
    tmt_free(m->text);
    ttok_free(m->tok);
    tck_close(m->ck);
    free(m);
}

/* ---- finding checkpoints ---- */

typedef struct {
    char path[PATH_MAX];
    char rel[PATH_MAX];
    char stem[256];
} ckpt_entry;

static int is_checkpoint_dir(const char *p) {
    char mi[PATH_MAX + 32];
    snprintf(mi, sizeof mi, "%s/model_index.json", p);
    return is_file(mi);
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const ckpt_entry *)a)->rel, ((const ckpt_entry *)b)->rel);
}

/* Checkpoints at the top of dir and in dir/Stable-diffusion (sorted by relpath). */
static int list_checkpoints(const char *dir, ckpt_entry **out, int *n) {
    *out = NULL;
    *n = 0;
    int cap = 0;
    const char *subs[] = {"", "Stable-diffusion"};
    for (int s = 0; s < 2; s++) {
        char base[PATH_MAX];
        snprintf(base, sizeof base, "%s%s%s", dir, subs[s][0] ? "/" : "", subs[s]);
        DIR *d = opendir(base);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char p[PATH_MAX];
            if (snprintf(p, sizeof p, "%s/%s", base, e->d_name) >= (int)sizeof p) continue;
            int file = is_file(p) && ends_with(e->d_name, ".safetensors") && !ends_with(e->d_name, ".vae.safetensors");
            int folder = !file && is_dir(p) && is_checkpoint_dir(p);
            if (!file && !folder) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                ckpt_entry *t = realloc(*out, (size_t)cap * sizeof **out);
                if (!t) break;
                *out = t;
            }
            ckpt_entry *c = &(*out)[(*n)++];
            snprintf(c->path, sizeof c->path, "%s", p);
            snprintf(c->rel, sizeof c->rel, "%s%s%s", subs[s], subs[s][0] ? "/" : "", e->d_name);
            stem_of(e->d_name, c->stem, sizeof c->stem);
        }
        closedir(d);
    }
    if (*n > 1) qsort(*out, (size_t)*n, sizeof **out, cmp_entry);
    return 0;
}

int tpl_find_checkpoint(const char *dir, const char *name, char *path, size_t pathlen, char *model_name,
                        size_t mnlen, char *err, size_t errlen) {
    if (!dir || !dir[0]) {
        snprintf(err, errlen, "no models directory configured (--models)");
        return -1;
    }
    ckpt_entry *v;
    int n;
    list_checkpoints(dir, &v, &n);
    if (n == 0) {
        free(v);
        snprintf(err, errlen, "no checkpoints in %s (*.safetensors or diffusers folders)", dir);
        return -1;
    }
    int found = -1;
    if (!name || !name[0]) found = 0;
    /* A1111 titles look like "relpath [shorthash]": compare without the suffix */
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s", name ? name : "");
    size_t wl = strlen(want);
    if (wl > 13 && want[wl - 1] == ']' && want[wl - 12] == '[' && want[wl - 13] == ' ') want[wl - 13] = 0;
    for (int pass = 0; pass < 2 && found < 0; pass++)
        for (int i = 0; i < n && found < 0; i++) {
            int (*eq)(const char *, const char *) = pass == 0 ? strcmp : strcasecmp;
            if (!eq(want, v[i].rel) || !eq(want, v[i].stem) || !eq(want, v[i].path)) found = i;
            else {
                const char *b = strrchr(v[i].rel, '/');
                if (b && !eq(want, b + 1)) found = i;
            }
        }
    if (found < 0 && strlen(want) == TMH_SHORT_LEN) {
        /* a short hash: only checkpoints whose hash is already cached */
        for (int i = 0; i < n && found < 0; i++) {
            if (!is_file(v[i].path)) continue;
            char cache[PATH_MAX + 64];
            tmi_default_hash_cache(v[i].path, cache, sizeof cache);
            FILE *f = fopen(cache, "r");
            if (!f) continue;
            char buf[1 << 16];
            size_t k = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[k] = 0;
            const char *at = strstr(buf, v[i].path);
            if (at) {
                const char *h = strstr(at, "\"sha256\"");
                if (h && (h = strchr(h + 8, '"')) && !strncasecmp(h + 1, want, TMH_SHORT_LEN)) found = i;
            }
        }
    }
    if (found < 0) {
        snprintf(err, errlen, "model '%s' not found in %s", name, dir);
        free(v);
        return -1;
    }
    snprintf(path, pathlen, "%s", v[found].path);
    snprintf(model_name, mnlen, "%s", v[found].stem);
    free(v);
    return 0;
}

int tpl_find_vae(const char *dir, const char *name, const char *ckpt_path, char *path, size_t pathlen,
                 char *err, size_t errlen) {
    path[0] = 0;
    if (!name || !name[0] || !strcasecmp(name, "None")) return 0;
    if (!strcasecmp(name, "Automatic")) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s", ckpt_path ? ckpt_path : "");
        if (ends_with(p, ".safetensors")) {
            p[strlen(p) - 12] = 0;
            strcat(p, ".vae.safetensors");
            if (is_file(p)) snprintf(path, pathlen, "%s", p);
        }
        return 0;
    }
    if (strchr(name, '/') || strstr(name, "..")) {
        snprintf(err, errlen, "VAE '%s': give a file name from the VAE folder", name);
        return -1;
    }
    const char *cands[] = {"%s/VAE/%s", "%s/VAE/%s.safetensors", "%s/VAE/%s.vae.safetensors"};
    for (int i = 0; i < 3; i++) {
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, cands[i], dir ? dir : ".", name);
        if (is_file(p)) {
            snprintf(path, pathlen, "%s", p);
            return 0;
        }
    }
    snprintf(err, errlen, "VAE '%s' not found in %s/VAE", name, dir ? dir : ".");
    return -1;
}

/* ---- cache ---- */

#define CACHE_MAX 8

struct tpl_cache {
    char dir[PATH_MAX];
    tpl_load_opts o;
    size_t budget;
    tpl_model *m[CACHE_MAX];
    unsigned long long used[CACHE_MAX];
    unsigned long long clock;
};

int tpl_cache_create(const char *models_dir, const tpl_load_opts *o, size_t budget_bytes, tpl_cache **out) {
    tpl_cache *c = calloc(1, sizeof *c);
    if (!c) return -1;
    snprintf(c->dir, sizeof c->dir, "%s", models_dir ? models_dir : "");
    c->o = *o;
    c->budget = budget_bytes;
    *out = c;
    return 0;
}

void tpl_cache_free(tpl_cache *c) {
    if (!c) return;
    for (int i = 0; i < CACHE_MAX; i++) tpl_model_free(c->m[i]);
    free(c);
}

int tpl_cache_count(const tpl_cache *c) {
    int n = 0;
    for (int i = 0; i < CACHE_MAX; i++) n += c->m[i] != NULL;
    return n;
}

static void evict_lru(tpl_cache *c) {
    int lru = -1;
    for (int i = 0; i < CACHE_MAX; i++)
        if (c->m[i] && (lru < 0 || c->used[i] < c->used[lru])) lru = i;
    if (lru >= 0) {
        tpl_model_free(c->m[lru]);
        c->m[lru] = NULL;
    }
}

int tpl_cache_get(tpl_cache *c, const char *ckpt, const char *vae, tpl_model **out, int *loaded_now, char *err,
                  size_t errlen) {
    char path[PATH_MAX], name[256], vpath[PATH_MAX];
    if (loaded_now) *loaded_now = 0;
    if (tpl_find_checkpoint(c->dir, ckpt, path, sizeof path, name, sizeof name, err, errlen)) return -1;
    if (tpl_find_vae(c->dir, vae, path, vpath, sizeof vpath, err, errlen)) return -1;
    for (int i = 0; i < CACHE_MAX; i++)
        if (c->m[i] && !strcmp(c->m[i]->path, path) && !strcmp(c->m[i]->vae_path, vpath)) {
            c->used[i] = ++c->clock;
            *out = c->m[i];
            return 0;
        }
    /* make room: with no budget keep one model; else evict until the new one fits */
    size_t total = 0;
    for (int i = 0; i < CACHE_MAX; i++) total += c->m[i] ? c->m[i]->bytes : 0;
    size_t guess = 0;
    for (int i = 0; i < CACHE_MAX; i++)
        if (c->m[i] && c->m[i]->bytes > guess) guess = c->m[i]->bytes;
    while (tpl_cache_count(c) > 0 && (c->budget == 0 || total + guess > c->budget || tpl_cache_count(c) >= CACHE_MAX)) {
        evict_lru(c);
        total = 0;
        for (int i = 0; i < CACHE_MAX; i++) total += c->m[i] ? c->m[i]->bytes : 0;
    }
    tpl_model *m;
    if (tpl_model_load(path, vpath, &c->o, &m, err, errlen)) return -1;
    for (int i = 0; i < CACHE_MAX; i++)
        if (!c->m[i]) {
            c->m[i] = m;
            c->used[i] = ++c->clock;
            break;
        }
    if (loaded_now) *loaded_now = 1;
    *out = m;
    return 0;
}
