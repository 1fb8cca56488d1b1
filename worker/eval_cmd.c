/* eval_cmd.c - the local, model-running subcommands of `tessera` (issue 7,
 * "Proof"): run one network component on tensors kept in safetensors files,
 * and describe a checkpoint. Other tools script against these names:
 *
 *   tessera eval text       --model PATH --prompt TEXT [--clip-skip N] --out FILE
 *       writes ids [k,77] I32 (A1111 chunks as fed to the encoder), hidden
 *       [1,77k,C] F32 (weights applied, chunks concatenated) and, in addition,
 *       multipliers [k,77] F32.
 *   tessera eval unet       --model PATH --in FILE --out FILE
 *       reads x [B,Cin,h,w], t [B] (float timesteps), context [B,T,C]; writes out.
 *   tessera eval vae-decode --model PATH --in FILE --out FILE
 *       reads latent (scaled, as the sampler makes it); writes image (NCHW, unclamped).
 *   tessera eval vae-encode --model PATH --in FILE --out FILE
 *       reads image (NCHW in [-1,1]); writes the posterior mean and std.
 *   tessera model info PATH [--vae FILE] [--json] [--no-hash] [--hash-cache FILE]
 *
 * PATH: a single-file checkpoint or a diffusers folder. Common options:
 * --vae FILE (separate VAE), --threads N. For models whose single file does
 * not say what the networks need (tiny test models): --text-heads N,
 * --unet-heads N, --unet-head-dim N, --groups N (GroupNorm groups of UNet and
 * VAE). Tokenizer: a folder's tokenizer/vocab.json + merges.txt, else --vocab
 * FILE, $TESSERA_CLIP_VOCAB, $TESSERA_DATA/bpe_simple_vocab_16e6.txt.gz or
 * ~/.cache/tessera/bpe_simple_vocab_16e6.txt.gz. Input tensors may be F32,
 * F16, BF16, F64, I64 or I32. The eval commands call te_cpu_prepare_env
 * (one re-exec, see te_cpu.h); `model info` loads no engine.
 *
 * Exit status: 0 ok, 1 failure (message on stderr), 2 usage. */
#include "checkpoint.h"
#include "clip_text.h"
#include "clip_tokenizer.h"
#include "conditioning.h"
#include "model_info.h"
#include "safetensors.h"
#include "te_arena.h"
#include "te_cpu.h"
#include "unet.h"
#include "vae.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int tcli_eval_main(int argc, char **argv);
int tcli_model_main(int argc, char **argv);

typedef struct {
    const char *model, *prompt, *in, *out, *vae, *vocab, *hash_cache;
    int clip_skip, threads, text_heads, unet_heads, unet_head_dim, groups;
    int json, no_hash;
    const char *pos[4];
    int npos;
} eval_args;

static const char *const EVAL_USAGE =
    "usage: tessera eval text --model PATH --prompt TEXT [--clip-skip N] --out FILE\n"
    "       tessera eval unet --model PATH --in FILE --out FILE\n"
    "       tessera eval vae-decode --model PATH --in FILE --out FILE\n"
    "       tessera eval vae-encode --model PATH --in FILE --out FILE\n"
    "       tessera model info PATH [--vae FILE] [--json] [--no-hash] [--hash-cache FILE]\n"
    "options: --vae FILE  --threads N  --vocab FILE (CLIP bpe_simple_vocab_16e6.txt.gz)\n"
    "         --text-heads N  --unet-heads N  --unet-head-dim N  --groups N  (for single files that\n"
    "         do not follow the SD conventions, e.g. tiny test models)\n"
    "PATH is a .safetensors checkpoint or a diffusers folder. eval text writes ids [k,77] I32,\n"
    "hidden [1,77k,C] and multipliers [k,77]; unet reads x, t, context and writes out; vae-decode\n"
    "reads latent and writes image; vae-encode reads image and writes mean and std.\n";

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < -1000000 || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

/* argv from the subcommand on; 0 ok, 1 help printed, -1 usage error. */
static int parse_args(int argc, char **argv, eval_args *a) {
    memset(a, 0, sizeof *a);
    a->clip_skip = 1;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strncmp(s, "--", 2)) {
            if (a->npos == 4) {
                fprintf(stderr, "tessera: unexpected argument '%s'\n", s);
                return -1;
            }
            a->pos[a->npos++] = s;
            continue;
        }
        char key[64];
        const char *val = NULL, *eq = strchr(s, '=');
        snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - s - 2) : (int)strlen(s + 2), s + 2);
        if (!strcmp(key, "help")) {
            fputs(EVAL_USAGE, stdout);
            return 1;
        }
        if (!strcmp(key, "json")) { a->json = 1; continue; }
        if (!strcmp(key, "no-hash")) { a->no_hash = 1; continue; }
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else {
            fprintf(stderr, "tessera: --%s needs a value\n", key);
            return -1;
        }
        const char **sv = !strcmp(key, "model") ? &a->model : !strcmp(key, "prompt") ? &a->prompt
                        : !strcmp(key, "in") ? &a->in : !strcmp(key, "out") ? &a->out
                        : !strcmp(key, "vae") ? &a->vae : !strcmp(key, "vocab") ? &a->vocab
                        : !strcmp(key, "hash-cache") ? &a->hash_cache : NULL;
        int *iv = !strcmp(key, "clip-skip") ? &a->clip_skip : !strcmp(key, "threads") ? &a->threads
                : !strcmp(key, "text-heads") ? &a->text_heads : !strcmp(key, "unet-heads") ? &a->unet_heads
                : !strcmp(key, "unet-head-dim") ? &a->unet_head_dim : !strcmp(key, "groups") ? &a->groups : NULL;
        if (sv) *sv = val;
        else if (iv) {
            if (parse_int(val, iv)) {
                fprintf(stderr, "tessera: --%s: '%s' is not an integer\n", key, val);
                return -1;
            }
        } else {
            fprintf(stderr, "tessera: unknown option --%s (tessera eval --help)\n", key);
            return -1;
        }
    }
    return 0;
}

/* ---- tensors in and out ------------------------------------------------------ */

static float *read_tensor(const tst_file *f, const char *path, const char *name, int ndim, int64_t *shape) {
    char err[256];
    const tst_tensor *t = tst_find(f, name);
    if (!t) {
        fprintf(stderr, "tessera: %s has no tensor '%s'\n", path, name);
        return NULL;
    }
    if (t->ndim != ndim) {
        fprintf(stderr, "tessera: %s: '%s' has %d dims, expected %d\n", path, name, t->ndim, ndim);
        return NULL;
    }
    float *v = malloc((t->numel ? t->numel : 1) * sizeof *v);
    if (!v) return NULL;
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)ndim);
    if (t->supported) {
        if (tst_to_f32(t, v, t->numel, err, sizeof err) == 0) return v;
        fprintf(stderr, "tessera: %s: %s\n", name, err);
    } else if (t->dtype == TST_F64 || t->dtype == TST_I64 || t->dtype == TST_I32) {
        for (size_t i = 0; i < t->numel; i++) {
            const char *p = (const char *)t->data;
            if (t->dtype == TST_F64) { double d; memcpy(&d, p + 8 * i, 8); v[i] = (float)d; }
            else if (t->dtype == TST_I64) { int64_t d; memcpy(&d, p + 8 * i, 8); v[i] = (float)d; }
            else { int32_t d; memcpy(&d, p + 4 * i, 4); v[i] = (float)d; }
        }
        return v;
    } else {
        fprintf(stderr, "tessera: %s: dtype %s is not supported\n", name, tst_dtype_name(t->dtype));
    }
    free(v);
    return NULL;
}

static tst_tensor out_tensor(const char *name, tst_dtype dt, const void *data, int ndim, const int64_t *shape) {
    tst_tensor t = {.name = name, .dtype = dt, .ndim = ndim, .data = data};
    size_t n = 1;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], n *= (size_t)shape[i];
    t.nbytes = n * tst_dtype_size(dt);
    return t;
}

static int write_out(const char *path, const tst_tensor *t, size_t n, const char *what) {
    char err[512];
    tst_meta meta[1] = {{"tessera.eval", what}};
    if (tst_write(path, t, n, meta, 1, err, sizeof err)) {
        fprintf(stderr, "tessera: %s: %s\n", path, err);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}

/* ---- eval text --------------------------------------------------------------- */

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int load_tokenizer(const tck_model *m, const char *vocab, ttok_tokenizer **tok) {
    char err[512], v[4200], mg[4200];
    const char *dir = tck_tokenizer_dir(m);
    if (!vocab && dir) {
        snprintf(v, sizeof v, "%s/vocab.json", dir);
        snprintf(mg, sizeof mg, "%s/merges.txt", dir);
        if (file_exists(v) && file_exists(mg)) {
            if (ttok_load_json(v, mg, tok, err, sizeof err) == 0) return 0;
            fprintf(stderr, "tessera: %s: %s\n", dir, err);
            return 1;
        }
    }
    const char *e = getenv("TESSERA_CLIP_VOCAB"), *d = getenv("TESSERA_DATA");
    if (vocab) snprintf(v, sizeof v, "%s", vocab);
    else if (e && *e) snprintf(v, sizeof v, "%s", e);
    else if (d && *d) snprintf(v, sizeof v, "%s/bpe_simple_vocab_16e6.txt.gz", d);
    else snprintf(v, sizeof v, "%s/.cache/tessera/bpe_simple_vocab_16e6.txt.gz", getenv("HOME") ? getenv("HOME") : ".");
    if (ttok_load_bpe_gz(v, tok, err, sizeof err) == 0) return 0;
    fprintf(stderr, "tessera: CLIP vocabulary: %s (scripts/fetch-clip-vocab.sh, --vocab or TESSERA_CLIP_VOCAB)\n", err);
    return 1;
}

static int eval_text(const eval_args *a, tck_model *m, te_backend *be) {
    char err[1024];
    ttok_tokenizer *tok = NULL;
    tmt_encoder *e = NULL;
    tcd_cond c = {0};
    int rc = 1;
    if (load_tokenizer(m, a->vocab, &tok)) return 1;
    tmt_options o = {.be = be, .n_heads = a->text_heads};
    if (tmt_load(m, &e, &o, err, sizeof err)) {
        fprintf(stderr, "tessera: text encoder: %s\n", err);
        goto done;
    }
    if (tcd_encode_ex(tok, e, a->prompt, a->clip_skip, NULL, &c, err, sizeof err)) {
        fprintf(stderr, "tessera: %s\n", err);
        goto done;
    }
    int64_t sid[2] = {c.n_chunks, 77}, sh[3] = {1, c.n_tokens, c.hidden_size};
    tst_tensor t[3] = {out_tensor("ids", TST_I32, c.ids, 2, sid), out_tensor("hidden", TST_F32, c.hidden, 3, sh),
                       out_tensor("multipliers", TST_F32, c.mult, 2, sid)};
    rc = write_out(a->out, t, 3, "text");
    for (size_t i = 0; i < c.extra.n; i++) fprintf(stderr, "tessera: extra network <%s:%s> (not applied)\n",
                                                   c.extra.v[i].kind, c.extra.v[i].nitems ? c.extra.v[i].items[0] : "");
done:
    tcd_cond_free(&c);
    tmt_free(e);
    ttok_free(tok);
    return rc;
}

/* ---- eval unet --------------------------------------------------------------- */

static int eval_unet(const eval_args *a, tck_model *m, te_backend *be, const tst_file *in) {
    char err[1024];
    int rc = 1;
    int64_t xs[4], ts[1], cs[3];
    float *x = read_tensor(in, a->in, "x", 4, xs), *t = read_tensor(in, a->in, "t", 1, ts),
          *ctx = read_tensor(in, a->in, "context", 3, cs), *out = NULL;
    tmu_unet *u = NULL;
    te_arena *ar = NULL;
    if (!x || !t || !ctx) goto done;
    if (ts[0] != xs[0] || cs[0] != xs[0]) {
        fprintf(stderr, "tessera: batch sizes differ: x %lld, t %lld, context %lld\n", (long long)xs[0],
                (long long)ts[0], (long long)cs[0]);
        goto done;
    }
    tmu_options o = {.heads = a->unet_heads, .head_dim = a->unet_head_dim, .groups = a->groups};
    if (tmu_load(m, be, &o, &u, err, sizeof err)) {
        fprintf(stderr, "tessera: unet: %s\n", err);
        goto done;
    }
    const tmu_config *c = tmu_get_config(u);
    if (xs[1] != c->in_channels || cs[2] != c->context_dim) {
        fprintf(stderr, "tessera: the UNet takes %d input channels and context dim %d; x has %lld, context %lld\n",
                c->in_channels, c->context_dim, (long long)xs[1], (long long)cs[2]);
        goto done;
    }
    int64_t os[4] = {xs[0], c->out_channels, xs[2], xs[3]};
    out = malloc(sizeof *out * (size_t)(os[0] * os[1] * os[2] * os[3]));
    if (!out || te_arena_create(be, 0, 0, &ar) != TE_OK) {
        fprintf(stderr, "tessera: out of memory\n");
        goto done;
    }
    if (tmu_forward_nchw(u, ar, x, (int)xs[0], (int)xs[2], (int)xs[3], t, ctx, (int)cs[1], out, err, sizeof err)) {
        fprintf(stderr, "tessera: unet: %s\n", err);
        goto done;
    }
    tst_tensor ot = out_tensor("out", TST_F32, out, 4, os);
    rc = write_out(a->out, &ot, 1, "unet");
done:
    if (ar) te_arena_destroy(ar);
    tmu_free(u);
    free(x), free(t), free(ctx), free(out);
    return rc;
}

/* ---- eval vae ---------------------------------------------------------------- */

static int eval_vae(const eval_args *a, tck_model *m, te_backend *be, const tst_file *in, int decode) {
    char err[1024];
    int rc = 1;
    int64_t s[4];
    float *src = read_tensor(in, a->in, decode ? "latent" : "image", 4, s), *o1 = NULL, *o2 = NULL;
    tmv_vae *v = NULL;
    if (!src) return 1;
    tmv_options o = {.be = be, .norm_groups = a->groups};
    if (tmv_load(m, &v, &o, err, sizeof err)) {
        fprintf(stderr, "tessera: vae: %s\n", err);
        goto done;
    }
    int f = tmv_downscale(v), z = tmv_latent_channels(v);
    if (decode) {
        if (s[1] != z) {
            fprintf(stderr, "tessera: latent has %lld channels, the VAE %d\n", (long long)s[1], z);
            goto done;
        }
        int64_t os[4] = {s[0], 3, s[2] * f, s[3] * f};
        o1 = malloc(sizeof *o1 * (size_t)(os[0] * os[1] * os[2] * os[3]));
        if (!o1 || tmv_decode(v, src, (int)s[0], (int)s[2], (int)s[3], o1, err, sizeof err)) {
            fprintf(stderr, "tessera: vae decode: %s\n", o1 ? err : "out of memory");
            goto done;
        }
        tst_tensor t = out_tensor("image", TST_F32, o1, 4, os);
        rc = write_out(a->out, &t, 1, "vae-decode");
    } else {
        if (s[1] != 3 || s[2] % f || s[3] % f) {
            fprintf(stderr, "tessera: image must be [B,3,H,W] with H and W multiples of %d\n", f);
            goto done;
        }
        int64_t os[4] = {s[0], z, s[2] / f, s[3] / f};
        size_t n = (size_t)(os[0] * os[1] * os[2] * os[3]);
        o1 = malloc(sizeof *o1 * n);
        o2 = malloc(sizeof *o2 * n);
        if (!o1 || !o2 || tmv_encode(v, src, (int)s[0], (int)s[2], (int)s[3], o1, o2, err, sizeof err)) {
            fprintf(stderr, "tessera: vae encode: %s\n", o1 && o2 ? err : "out of memory");
            goto done;
        }
        tst_tensor t[2] = {out_tensor("mean", TST_F32, o1, 4, os), out_tensor("std", TST_F32, o2, 4, os)};
        rc = write_out(a->out, t, 2, "vae-encode");
    }
done:
    tmv_free(v);
    free(src), free(o1), free(o2);
    return rc;
}

/* ---- entry points ------------------------------------------------------------ */

/* argv[0] "tessera", argv[1] "eval", argv[2] the component. */
int tcli_eval_main(int argc, char **argv) {
    eval_args a;
    int pr = parse_args(argc - 2, argv + 2, &a);
    if (pr) return pr > 0 ? 0 : 2;
    const char *what = a.npos == 1 ? a.pos[0] : "";
    int text = !strcmp(what, "text"), unet = !strcmp(what, "unet"), dec = !strcmp(what, "vae-decode"),
        enc = !strcmp(what, "vae-encode");
    if (!(text || unet || dec || enc) || !a.model || !a.out || (text && !a.prompt) || (!text && !a.in)) {
        fputs(EVAL_USAGE, stderr);
        return 2;
    }
    te_cpu_prepare_env(argc, argv);   /* may re-exec once; see te_cpu.h */
    char err[1024];
    tck_model *m = NULL;
    tst_file *in = NULL;
    te_backend *be = NULL;
    int rc = 1;
    if (!text && tst_open(a.in, &in, err, sizeof err)) {
        fprintf(stderr, "tessera: %s\n", err);
        return 1;
    }
    if (tck_open(a.model, a.vae, &m, err, sizeof err)) {
        fprintf(stderr, "tessera: %s\n", err);
        goto done;
    }
    te_cpu_options co = {.n_threads = a.threads > 0 ? a.threads : 0, .isa = -1};
    if (te_cpu_backend_create(&co, &be, err, sizeof err) != TE_OK) {
        fprintf(stderr, "tessera: engine: %s\n", err);
        goto done;
    }
    rc = text ? eval_text(&a, m, be) : unet ? eval_unet(&a, m, be, in) : eval_vae(&a, m, be, in, dec);
done:
    if (be) te_backend_destroy(be);
    tck_close(m);
    tst_close(in);
    return rc;
}

/* argv[0] "tessera", argv[1] "model", argv[2] "info". */
int tcli_model_main(int argc, char **argv) {
    eval_args a;
    int pr = parse_args(argc - 2, argv + 2, &a);
    if (pr) return pr > 0 ? 0 : 2;
    if (a.npos != 2 || strcmp(a.pos[0], "info")) {
        fputs(EVAL_USAGE, stderr);
        return 2;
    }
    char cache[4200], err[1024];
    if (a.hash_cache) snprintf(cache, sizeof cache, "%s", a.hash_cache);
    else tmi_default_hash_cache(a.pos[1], cache, sizeof cache);
    tmi_info *i = malloc(sizeof *i);
    if (!i) return 1;
    int rc = 0;
    if (tmi_inspect(a.pos[1], a.vae, !a.no_hash, cache, i, err, sizeof err)) {
        fprintf(stderr, "tessera: %s: %s\n", a.pos[1], err);
        rc = 1;
    } else if (a.json) {
        char *s = tmi_to_json(i);
        if (s) printf("%s\n", s);
        else rc = 1;
        free(s);
    } else {
        tmi_print(i, stdout);
    }
    free(i);
    return rc;
}
