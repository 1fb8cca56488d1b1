/* sdapi_models.c - what the shared models directory holds, as A1111 lists it:
 * /sdapi/v1/sd-models, sd-vae, loras, embeddings, and the check of
 * sd_model_checkpoint in POST /sdapi/v1/options.
 *
 * Layout (the workers' --models, worker/pipeline/sd_model.h):
 *   <dir>/<name>.safetensors, <dir>/<folder>/model_index.json   checkpoints
 *   <dir>/Stable-diffusion/...  (any depth up to 4)         checkpoints
 *   <dir>/VAE/..., <dir>/Lora/..., <dir>/embeddings/...
 * A checkpoint's relative path is taken from <dir> for top-level entries and
 * from <dir>/Stable-diffusion for the A1111 layout (as A1111 names them);
 * <stem>.vae.safetensors files are VAEs, not checkpoints.
 *
 * Listings are read from disk on every request (a directory scan; nothing is
 * remembered, so /refresh-* have nothing to do). Hashes are never computed
 * here: a checkpoint's sha256 comes from the cache the workers write through
 * tmh_cached (worker/model/model_hash.c) - $TESSERA_DATA/model-hashes.json,
 * else .tessera-hashes.json beside the file - read-only, trusted only while
 * the file's size and mtime (ns) match the entry; otherwise hash is null.
 */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sdapi.h"

#define MAX_DEPTH 4
#define MAX_ENTRIES 4096

typedef struct {
    char *rel; /* relative path, '/'-separated */
    char *abs; /* absolute path (the directory's realpath + rel) */
    int is_dir;
} entry;

typedef struct {
    entry *v;
    int n, cap;
} entries;

static void entries_free(entries *e) {
    for (int i = 0; i < e->n; i++) {
        free(e->v[i].rel);
        free(e->v[i].abs);
    }
    free(e->v);
    e->v = NULL;
    e->n = e->cap = 0;
}

static int entries_add(entries *e, const char *rel, const char *abs, int is_dir) {
    if (e->n >= MAX_ENTRIES) return -1;
    if (e->n == e->cap) {
        int nc = e->cap ? e->cap * 2 : 16;
        entry *v = realloc(e->v, sizeof *v * (size_t)nc);
        if (!v) return -1;
        e->v = v;
        e->cap = nc;
    }
    entry *x = &e->v[e->n];
    x->rel = strdup(rel);
    x->abs = strdup(abs);
    x->is_dir = is_dir;
    if (!x->rel || !x->abs) {
        free(x->rel);
        free(x->abs);
        return -1;
    }
    e->n++;
    return 0;
}

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    int c = strcasecmp(x->rel, y->rel);
    return c ? c : strcmp(x->rel, y->rel);
}

static int ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

static int has_ext(const char *name, const char *const *exts) {
    for (int i = 0; exts[i]; i++)
        if (ends_with_ci(name, exts[i]) && strlen(name) > strlen(exts[i])) return 1;
    return 0;
}

static int is_diffusers_folder(const char *abs) {
    char p[PATH_MAX];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/model_index.json", abs) >= (int)sizeof p) return 0;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* What a scan collects. */
typedef enum { SCAN_CHECKPOINTS, SCAN_FILES } scan_mode;

/* Entries under base_abs/rel (rel "" = base itself), recursing up to depth. */
static void scan(entries *out, const char *base_abs, const char *rel, int depth, scan_mode mode,
                 const char *const *exts) {
    char dpath[PATH_MAX];
    if (snprintf(dpath, sizeof dpath, "%s%s%s", base_abs, rel[0] ? "/" : "", rel) >= (int)sizeof dpath) return;
    DIR *d = opendir(dpath);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.') continue; /* ., .., hidden files (the hash cache) */
        char abs[PATH_MAX], r2[PATH_MAX];
        if (snprintf(abs, sizeof abs, "%s/%s", dpath, name) >= (int)sizeof abs) continue;
        if (snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", name) >= (int)sizeof r2) continue;
        struct stat st;
        if (stat(abs, &st)) continue; /* follows symlinks; dangling ones are skipped */
        if (S_ISDIR(st.st_mode)) {
            if (mode == SCAN_CHECKPOINTS && is_diffusers_folder(abs)) entries_add(out, r2, abs, 1);
            else if (depth > 0) scan(out, base_abs, r2, depth - 1, mode, exts);
        } else if (S_ISREG(st.st_mode) && has_ext(name, exts)) {
            if (mode == SCAN_CHECKPOINTS && ends_with_ci(name, ".vae.safetensors")) continue;
            entries_add(out, r2, abs, 0);
        }
    }
    closedir(d);
}

/* realpath of dir[/sub], or -1 when it does not exist. */
static int resolve(const char *dir, const char *sub, char out[PATH_MAX]) {
    if (!dir || !dir[0]) return -1;
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "") >= (int)sizeof p) return -1;
    return realpath(p, out) ? 0 : -1;
}

static const char *const safetensors_ext[] = {".safetensors", NULL};

static void collect_checkpoints(const char *dir, entries *out) {
    char root[PATH_MAX], sd[PATH_MAX];
    if (resolve(dir, NULL, root)) return;
    /* top level: files and diffusers folders, no recursion */
    scan(out, root, "", 0, SCAN_CHECKPOINTS, safetensors_ext);
    if (resolve(dir, "Stable-diffusion", sd) == 0) scan(out, sd, "", MAX_DEPTH, SCAN_CHECKPOINTS, safetensors_ext);
    qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_entry);
}

/* ---- hash cache (read-only) ------------------------------------------------ */

typedef struct {
    char path[PATH_MAX];
    json_t *files; /* the "files" object, or NULL when unusable */
    json_t *root;
} cache_file;

typedef struct {
    cache_file c[8];
    int n;
} caches;

static void caches_free(caches *cs) {
    for (int i = 0; i < cs->n; i++) json_decref(cs->c[i].root);
    cs->n = 0;
}

static json_t *cache_files(caches *cs, const char *path) {
    for (int i = 0; i < cs->n; i++)
        if (!strcmp(cs->c[i].path, path)) return cs->c[i].files;
    if (cs->n == (int)(sizeof cs->c / sizeof cs->c[0])) return NULL;
    cache_file *c = &cs->c[cs->n++];
    snprintf(c->path, sizeof c->path, "%.4095s", path);
    c->root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    c->files = NULL;
    if (json_is_object(c->root) && json_integer_value(json_object_get(c->root, "version")) == 1 &&
        json_is_object(json_object_get(c->root, "files")))
        c->files = json_object_get(c->root, "files");
    return c->files;
}

static int is_hex64(const char *s) {
    if (!s || strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
    return 1;
}

/* sha256 of the file at abs from a cache, or NULL. */
static const char *cached_sha256(caches *cs, const char *abs) {
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(abs, real) || stat(real, &st) || !S_ISREG(st.st_mode)) return NULL;
    long long mt = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    char cands[3][PATH_MAX];
    int nc = 0;
    const char *data = getenv("TESSERA_DATA");
    if (data && data[0] && snprintf(cands[nc], PATH_MAX, "%s/model-hashes.json", data) < PATH_MAX) nc++;
    const char *paths[2] = {abs, real};
    for (int i = 0; i < 2; i++) {
        const char *slash = strrchr(paths[i], '/');
        if (slash && snprintf(cands[nc], PATH_MAX, "%.*s/.tessera-hashes.json", (int)(slash - paths[i]),
                              paths[i]) < PATH_MAX)
            nc++;
    }
    for (int i = 0; i < nc; i++) {
        json_t *files = cache_files(cs, cands[i]);
        json_t *e = files ? json_object_get(files, real) : NULL;
        const char *h = json_string_value(json_object_get(e, "sha256"));
        if (is_hex64(h) && json_is_integer(json_object_get(e, "size")) &&
            json_integer_value(json_object_get(e, "size")) == (json_int_t)st.st_size &&
            json_is_integer(json_object_get(e, "mtime_ns")) &&
            json_integer_value(json_object_get(e, "mtime_ns")) == (json_int_t)mt)
            return h;
    }
    return NULL;
}

/* ---- listings ------------------------------------------------------------- */

/* A1111's model_name: the relative path without extension, '/' -> '_'. */
static void model_name(const entry *e, char *out, size_t n) {
    snprintf(out, n, "%s", e->rel);
    if (!e->is_dir) {
        char *dot = strrchr(out, '.');
        char *slash = strrchr(out, '/');
        if (dot && (!slash || dot > slash)) *dot = 0;
    }
    for (char *p = out; *p; p++)
        if (*p == '/') *p = '_';
}

static json_t *str_or_null(const char *s) {
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

json_t *tsd_list_checkpoints(const char *dir) {
    json_t *out = json_array();
    entries es = {0};
    caches cs = {0};
    collect_checkpoints(dir, &es);
    for (int i = 0; out && i < es.n; i++) {
        const entry *e = &es.v[i];
        const char *sha = e->is_dir ? NULL : cached_sha256(&cs, e->abs);
        char shorthash[11] = "", title[PATH_MAX + 16], mn[PATH_MAX];
        if (sha) snprintf(shorthash, sizeof shorthash, "%.10s", sha);
        if (sha) snprintf(title, sizeof title, "%s [%s]", e->rel, shorthash);
        else snprintf(title, sizeof title, "%s", e->rel);
        model_name(e, mn, sizeof mn);
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:n}", "title", str_or_null(title), "model_name",
                              str_or_null(mn), "hash", str_or_null(sha ? shorthash : NULL), "sha256",
                              str_or_null(sha), "filename", str_or_null(e->abs), "config");
        if (o) json_array_append_new(out, o);
    }
    caches_free(&cs);
    entries_free(&es);
    return out;
}

int tsd_checkpoint_known(const char *dir, const char *name) {
    if (!dir || !dir[0]) return 1;
    if (!name || !name[0]) return 0;
    entries es = {0};
    caches cs = {0};
    collect_checkpoints(dir, &es);
    int found = 0;
    for (int i = 0; !found && i < es.n; i++) {
        const entry *e = &es.v[i];
        const char *sha = e->is_dir ? NULL : cached_sha256(&cs, e->abs);
        char mn[PATH_MAX], title[PATH_MAX + 16];
        model_name(e, mn, sizeof mn);
        const char *base = strrchr(e->rel, '/');
        base = base ? base + 1 : e->rel;
        if (sha) snprintf(title, sizeof title, "%s [%.10s]", e->rel, sha);
        else title[0] = 0;
        size_t rl = strlen(e->rel);
        /* "<rel> [<anything>]": a title whose hash this daemon does not know */
        int titled = !strncmp(name, e->rel, rl) && !strncmp(name + rl, " [", 2) && name[strlen(name) - 1] == ']';
        found = !strcmp(name, e->rel) || !strcmp(name, mn) || !strcmp(name, base) || !strcmp(name, e->abs) ||
                (title[0] && !strcmp(name, title)) || titled ||
                (sha && (!strcmp(name, sha) || (strlen(name) == 10 && !strncmp(name, sha, 10))));
    }
    caches_free(&cs);
    entries_free(&es);
    return found;
}

json_t *tsd_list_vaes(const char *dir) {
    json_t *out = json_array();
    char root[PATH_MAX];
    if (resolve(dir, "VAE", root)) return out;
    entries es = {0};
    scan(&es, root, "", MAX_DEPTH, SCAN_FILES, safetensors_ext);
    qsort(es.v, (size_t)es.n, sizeof *es.v, cmp_entry);
    for (int i = 0; out && i < es.n; i++)
        json_array_append_new(out, json_pack("{s:o, s:o}", "model_name", str_or_null(es.v[i].rel), "filename",
                                             str_or_null(es.v[i].abs)));
    entries_free(&es);
    return out;
}

/* File name without directories and extension. */
static void stem(const char *rel, char *out, size_t n) {
    const char *base = strrchr(rel, '/');
    snprintf(out, n, "%s", base ? base + 1 : rel);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

json_t *tsd_list_loras(const char *dir) {
    json_t *out = json_array();
    char root[PATH_MAX];
    if (resolve(dir, "Lora", root)) return out;
    entries es = {0};
    scan(&es, root, "", MAX_DEPTH, SCAN_FILES, safetensors_ext);
    qsort(es.v, (size_t)es.n, sizeof *es.v, cmp_entry);
    for (int i = 0; out && i < es.n; i++) {
        char name[NAME_MAX + 1];
        stem(es.v[i].rel, name, sizeof name);
        json_array_append_new(out, json_pack("{s:o, s:o, s:o, s:{}}", "name", str_or_null(name), "alias",
                                             str_or_null(name), "path", str_or_null(es.v[i].abs), "metadata"));
    }
    entries_free(&es);
    return out;
}

json_t *tsd_list_embeddings(const char *dir) {
    json_t *skipped = json_object();
    char root[PATH_MAX];
    static const char *const exts[] = {".safetensors", ".pt", ".bin", NULL};
    if (skipped && resolve(dir, "embeddings", root) == 0) {
        entries es = {0};
        scan(&es, root, "", MAX_DEPTH, SCAN_FILES, exts);
        qsort(es.v, (size_t)es.n, sizeof *es.v, cmp_entry);
        for (int i = 0; i < es.n; i++) {
            char name[NAME_MAX + 1];
            stem(es.v[i].rel, name, sizeof name);
            json_t *o = json_pack("{s:n, s:n, s:n, s:n, s:n}", "step", "sd_checkpoint", "sd_checkpoint_name",
                                  "shape", "vectors");
            if (o && !json_object_get(skipped, name)) json_object_set_new(skipped, name, o); /* steals o */
            else json_decref(o);
        }
        entries_free(&es);
    }
    return json_pack("{s:{}, s:o}", "loaded", "skipped", skipped ? skipped : json_object());
}
