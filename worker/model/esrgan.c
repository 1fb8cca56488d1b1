/* esrgan.c - RRDBNet upscalers on the engine and A1111's tiled upscale (see
 * esrgan.h).
 *
 * Forward pass (channels-last [1,H,W,C], one arena plan + run per tile):
 *   x -> (host: reflect pad + pixel-unshuffle) -> conv_first = feat
 *   RDB(x):  x1 = lrelu(conv1(x)); c = cat(x, x1); x2 = lrelu(conv2(c)); c = cat(c, x2) ...
 *            y = conv5'(c) + x, where conv5' holds 0.2 * conv5's weights and bias
 *            (the RDB's x5 * 0.2 + x with the residual fused into the conv)
 *   RRDB(x): y = 0.2 * RDB3(RDB2(RDB1(x))) + x  (te_scale, te_add in place)
 *   trunk = conv_body(RRDBs(feat)) + feat (fused residual)
 *   n_up x: lrelu(conv_up(upsample_nearest2x(.)))
 *   out = conv_last(lrelu(conv_hr(.)))
 * Pre-scaling conv5 changes the result by float rounding only (~1e-7
 * relative); the golden tests compare against torch in float64.
 *
 * Image side: split_grid / combine_grid of A1111 1.10 modules/images.py with
 * Pillow's paste semantics (clipping at the canvas edges, mask blend
 * (out*(255-m) + in*m) / 255 rounded as Pillow's DIV255). */
#include "esrgan.h"

#include "checkpoint_format.h"
#include "net_util.h"
#include "resize.h"
#include "safetensors.h"
#include "te_arena.h"
#include "te_ops.h"
#include "te_weights.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_NB 256
#define MAX_UP 3
#define LRELU 0.2f

typedef struct { te_tensor *w, *b; } conv_w;

struct tme_model {
    te_backend *be;
    te_weights *w;
    te_arena *arena;
    tme_info info;
    conv_w first, trunk, up[MAX_UP], hr, last;
    conv_w *rdb; /* [nb][3][5] */
    float *hin, *hout;
    size_t hin_n, hout_n;
};

/* ---- names ------------------------------------------------------------------ */

typedef struct { const char *a1111, *dir, *stem; } builtin;
static const builtin builtins[] = {
    {"ESRGAN_4x", "ESRGAN", "ESRGAN_4x"},
    {"R-ESRGAN 4x+", "RealESRGAN", "RealESRGAN_x4plus"},
    {"R-ESRGAN 4x+ Anime6B", "RealESRGAN", "RealESRGAN_x4plus_anime_6B"},
    {"R-ESRGAN 2x+", "RealESRGAN", "RealESRGAN_x2plus"},
};
static const char *const dirs[] = {"ESRGAN", "RealESRGAN"};
#define NBUILTIN (sizeof builtins / sizeof builtins[0])
#define STEM_MAX 100

static int stem_ok(const char *s, size_t n) {
    if (n < 1 || n > STEM_MAX || s[0] == '.' || s[0] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr(" _-.+()[]", c)) return 0;
    }
    return 1;
}

int tme_name_parse(const char *name, char *canon, size_t canon_len) {
    if (!name) return 0;
    for (size_t i = 0; i < NBUILTIN; i++)
        if (!strcasecmp(name, builtins[i].a1111)) {
            if (canon) snprintf(canon, canon_len, "%s", builtins[i].a1111);
            return 1;
        }
    for (size_t d = 0; d < 2; d++) {
        size_t n = strlen(dirs[d]);
        if (strncasecmp(name, dirs[d], n) || name[n] != '/') continue;
        const char *stem = name + n + 1;
        size_t sl = strlen(stem);
        if (sl > 12 && !strcasecmp(stem + sl - 12, ".safetensors")) sl -= 12;
        if (!stem_ok(stem, sl)) return 0;
        if (canon) snprintf(canon, canon_len, "%s/%.*s", dirs[d], (int)sl, stem);
        return 1;
    }
    return 0;
}

const char *tme_display_name(const char *canon) {
    const char *s = strchr(canon, '/');
    return s ? s + 1 : canon;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int tme_model_path(const char *models_dir, const char *name, char *path, size_t pathlen, char *err,
                   size_t errlen) {
    char canon[TME_NAME_MAX + 16];
    if (!tme_name_parse(name, canon, sizeof canon)) {
        snprintf(err, errlen, "'%s' is not an upscaler model name (ESRGAN/<name>, RealESRGAN/<name>, ESRGAN_4x, "
                              "R-ESRGAN 4x+, R-ESRGAN 4x+ Anime6B, R-ESRGAN 2x+)", name ? name : "");
        return -1;
    }
    const char *dir = NULL, *stem = NULL;
    char buf[TME_NAME_MAX + 16];
    for (size_t i = 0; i < NBUILTIN; i++)
        if (!strcmp(canon, builtins[i].a1111)) dir = builtins[i].dir, stem = builtins[i].stem;
    if (!dir) {
        snprintf(buf, sizeof buf, "%s", canon);
        char *sl = strchr(buf, '/');
        *sl = 0;
        dir = buf;
        stem = sl + 1;
    }
    const char *md = models_dir && *models_dir ? models_dir : ".";
    if ((size_t)snprintf(path, pathlen, "%s/%s/%s.safetensors", md, dir, stem) >= pathlen) {
        snprintf(err, errlen, "upscaler %s: models path too long", canon);
        return -1;
    }
    if (file_exists(path)) return 0;
    static const char *const pk[] = {".pth", ".pt", ".ckpt", ".bin"};
    char alt[4200];
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++) {
        snprintf(alt, sizeof alt, "%s/%s/%s%s", md, dir, stem, pk[i]);
        if (file_exists(alt)) {
            /* short enough for a job's error message (the generic one of
             * checkpoint_format.h is longer and lacks Real-ESRGAN's params_ema) */
            snprintf(err, errlen,
                     "upscaler %s: %s is a PyTorch pickle, which Tessera does not load (unpickling can run "
                     "arbitrary code); convert it once, in that folder: python3 -c \"import torch, "
                     "safetensors.torch as st; sd = torch.load('%s%s', map_location='cpu', weights_only=True); "
                     "sd = sd.get('params_ema', sd.get('params', sd)); st.save_file({k: v.contiguous() for k, v in "
                     "sd.items()}, '%s.safetensors')\"",
                     canon, alt, stem, pk[i], stem);
            return -1;
        }
    }
    snprintf(err, errlen, "upscaler %s: model file %s not found on this worker", canon, path);
    return -1;
}

/* ---- load ------------------------------------------------------------------- */

typedef struct {
    const tst_file *f;
    tme_info *in;
} names;

static const char *nm(const names *n, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static const char *nm(const names *n, char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    size_t p = (size_t)snprintf(buf, len, "%s", n->in->prefix);
    va_start(ap, fmt);
    vsnprintf(buf + p, len - p, fmt, ap);
    va_end(ap);
    return buf;
}

static int has(const names *n, const char *fmt, int a, int b, int c) {
    char body[200], full[256];
    snprintf(body, sizeof body, fmt, a, b, c);
    snprintf(full, sizeof full, "%s%s", n->in->prefix, body);
    return tst_find(n->f, full) != NULL;
}

/* conv names (without .weight/.bias) under the detected scheme */
static void conv_name(const tme_info *in, char *out, size_t len, const char *what, int i, int r, int j) {
    const char *p = in->prefix;
    switch (in->naming) {
    case TME_NAMES_BASICSR:
        if (!strcmp(what, "first")) snprintf(out, len, "%sconv_first", p);
        else if (!strcmp(what, "rdb")) snprintf(out, len, "%sbody.%d.rdb%d.conv%d", p, i, r, j);
        else if (!strcmp(what, "trunk")) snprintf(out, len, "%sconv_body", p);
        else if (!strcmp(what, "up")) snprintf(out, len, "%sconv_up%d", p, i + 1);
        else if (!strcmp(what, "hr")) snprintf(out, len, "%sconv_hr", p);
        else snprintf(out, len, "%sconv_last", p);
        break;
    case TME_NAMES_ESRGAN:
        if (!strcmp(what, "first")) snprintf(out, len, "%sconv_first", p);
        else if (!strcmp(what, "rdb")) snprintf(out, len, "%sRRDB_trunk.%d.RDB%d.conv%d", p, i, r, j);
        else if (!strcmp(what, "trunk")) snprintf(out, len, "%strunk_conv", p);
        else if (!strcmp(what, "up")) snprintf(out, len, "%supconv%d", p, i + 1);
        else if (!strcmp(what, "hr")) snprintf(out, len, "%sHRconv", p);
        else snprintf(out, len, "%sconv_last", p);
        break;
    case TME_NAMES_OLD:
        if (!strcmp(what, "first")) snprintf(out, len, "%smodel.0", p);
        else if (!strcmp(what, "rdb")) snprintf(out, len, "%smodel.1.sub.%d.RDB%d.conv%d.0", p, i, r, j);
        else if (!strcmp(what, "trunk")) snprintf(out, len, "%smodel.1.sub.%d", p, in->nb);
        else if (!strcmp(what, "up")) snprintf(out, len, "%smodel.%d", p, 3 + 3 * i);
        else if (!strcmp(what, "hr")) snprintf(out, len, "%smodel.%d", p, 2 + 3 * in->n_up);
        else snprintf(out, len, "%smodel.%d", p, 4 + 3 * in->n_up);
        break;
    }
}

static const tst_tensor *need(const tst_file *f, const char *name, char *err, size_t errlen) {
    const tst_tensor *t = tst_find(f, name);
    if (!t) snprintf(err, errlen, "ESRGAN: tensor %s is missing", name);
    return t;
}

/* base.weight [k, c, 3, 3] and base.bias [k], weights times `scale`. */
static int load_conv(tme_model *m, const tst_file *f, const char *base, int64_t k, int64_t c, float scale,
                     conv_w *cw, char *err, size_t errlen) {
    char wn[300], bn[300];
    snprintf(wn, sizeof wn, "%s.weight", base);
    snprintf(bn, sizeof bn, "%s.bias", base);
    const tst_tensor *tw = need(f, wn, err, errlen), *tb = tw ? need(f, bn, err, errlen) : NULL;
    int64_t ws[4] = {k, c, 3, 3}, bs[1] = {k};
    if (!tw || !tb || tnu_check_shape(tw, wn, 4, ws, 0, err, errlen) || tnu_check_shape(tb, bn, 1, bs, 0, err, errlen))
        return -1;
    float *buf = malloc(tw->numel * sizeof *buf);
    if (!buf) {
        snprintf(err, errlen, "out of memory loading %s", wn);
        return -1;
    }
    te_status st = TE_ERR_ARG;
    if (!tst_to_f32(tw, buf, tw->numel, err, errlen)) {
        if (scale != 1.0f)
            for (size_t i = 0; i < tw->numel; i++) buf[i] *= scale;
        st = te_weights_add(m->w, &cw->w, te_weights_matrix_dtype(m->w), 4, ws, buf, TE_F32);
        if (st == TE_OK && !tst_to_f32(tb, buf, tb->numel, err, errlen)) {
            if (scale != 1.0f)
                for (size_t i = 0; i < tb->numel; i++) buf[i] *= scale;
            st = te_weights_add(m->w, &cw->b, TE_F32, 1, bs, buf, TE_F32);
        } else if (st == TE_OK) {
            st = TE_ERR_ARG;
        }
        if (st != TE_OK && st != TE_ERR_ARG) snprintf(err, errlen, "cannot store weight %s: %s", wn, te_status_str(st));
    }
    free(buf);
    if (st != TE_OK) return -1;
    tnu_release(tw);
    tnu_release(tb);
    return 0;
}

/* Which scheme and prefix the file uses, and the architecture. */
static int detect(const tst_file *f, tme_info *in, char *err, size_t errlen) {
    static const char *const prefixes[] = {"", "params_ema.", "params.", "module.", "model.", "state_dict."};
    names n = {f, in};
    char a[400];
    memset(in, 0, sizeof *in);
    int found = 0;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !found; i++) {
        snprintf(in->prefix, sizeof in->prefix, "%s", prefixes[i]);
        if (tst_find(f, nm(&n, a, sizeof a, "conv_first.weight"))) {
            if (has(&n, "body.0.rdb1.conv1.weight", 0, 0, 0)) in->naming = TME_NAMES_BASICSR, found = 1;
            else if (has(&n, "RRDB_trunk.0.RDB1.conv1.weight", 0, 0, 0)) in->naming = TME_NAMES_ESRGAN, found = 1;
            else {
                snprintf(err, errlen,
                         "ESRGAN: %sconv_first.weight is there but no RRDB body (%sbody.0.rdb1.conv1 or "
                         "%sRRDB_trunk.0.RDB1.conv1): not an RRDBNet model",
                         in->prefix, in->prefix, in->prefix);
                return -1;
            }
        } else if (tst_find(f, nm(&n, a, sizeof a, "model.0.weight")) &&
                   has(&n, "model.1.sub.0.RDB1.conv1.0.weight", 0, 0, 0)) {
            in->naming = TME_NAMES_OLD, found = 1;
        }
    }
    if (!found) {
        snprintf(err, errlen,
                 "ESRGAN: not an RRDBNet (ESRGAN / Real-ESRGAN) model: no conv_first.weight with body.0.rdb1.conv1 "
                 "/ RRDB_trunk.0.RDB1.conv1, nor model.0.weight with model.1.sub.0.RDB1.conv1.0 (other "
                 "architectures - SRVGGNetCompact 'R-ESRGAN General/AnimeVideo', SwinIR, DAT, ... - are not "
                 "supported)");
        return -1;
    }
    static const char *const rdbfmt[3] = {"body.%d.rdb%d.conv%d%s", "RRDB_trunk.%d.RDB%d.conv%d%s",
                                          "model.1.sub.%d.RDB%d.conv%d%s"};
    const char *rf = rdbfmt[in->naming];
    char probe[200];
    snprintf(probe, sizeof probe, rf, 0, 1, 1, "x1.weight");
    if (tst_find(f, nm(&n, a, sizeof a, "%s", probe)) ||
        (snprintf(probe, sizeof probe, rf, 0, 1, 1, "x1.0.weight"), tst_find(f, nm(&n, a, sizeof a, "%s", probe)))) {
        snprintf(err, errlen, "ESRGAN: %s: ESRGAN+ residual dense blocks (conv1x1) are not supported", a);
        return -1;
    }
    const char *w_sfx = in->naming == TME_NAMES_OLD ? ".0.weight" : ".weight";
    for (in->nb = 0; in->nb <= MAX_NB; in->nb++) {
        snprintf(probe, sizeof probe, rf, in->nb, 1, 1, w_sfx);
        if (!tst_find(f, nm(&n, a, sizeof a, "%s", probe))) break;
    }
    if (in->nb > MAX_NB) {
        snprintf(err, errlen, "ESRGAN: more than %d RRDB blocks", MAX_NB);
        return -1;
    }
    /* upsamplers */
    for (in->n_up = 0; in->n_up < MAX_UP + 1; in->n_up++) {
        int ok = in->naming == TME_NAMES_BASICSR  ? has(&n, "conv_up%d.weight", in->n_up + 1, 0, 0)
                 : in->naming == TME_NAMES_ESRGAN ? has(&n, "upconv%d.weight", in->n_up + 1, 0, 0)
                                                  : has(&n, "model.%d.weight", 3 + 3 * in->n_up, 0, 0);
        if (!ok) break;
    }
    if (in->n_up < 1 || in->n_up > MAX_UP) {
        snprintf(err, errlen, "ESRGAN: found %d upsampling convs; 1 to %d are supported", in->n_up, MAX_UP);
        return -1;
    }
    char cn[300];
    conv_name(in, cn, sizeof cn, "first", 0, 0, 0);
    snprintf(a, sizeof a, "%s.weight", cn);
    const tst_tensor *t = need(f, a, err, errlen);
    if (!t) return -1;
    if (t->ndim != 4) {
        snprintf(err, errlen, "ESRGAN: %s has %d dims, expected 4", a, t->ndim);
        return -1;
    }
    in->nf = (int)t->shape[0];
    int cin = (int)t->shape[1];
    in->shuffle = cin == 3 ? 1 : cin == 12 ? 2 : cin == 48 ? 4 : 0;
    if (!in->shuffle) {
        snprintf(err, errlen,
                 "ESRGAN: %s takes %d input channels; only RGB models are supported (3, or 12 / 48 after a "
                 "pixel-unshuffle by 2 / 4)",
                 a, cin);
        return -1;
    }
    if ((1 << in->n_up) < in->shuffle) {
        snprintf(err, errlen, "ESRGAN: %d upsamplers after a pixel-unshuffle by %d would shrink the image", in->n_up,
                 in->shuffle);
        return -1;
    }
    in->scale = (1 << in->n_up) / in->shuffle;
    if (in->nb < 1) {
        snprintf(err, errlen, "ESRGAN: no RRDB blocks found");
        return -1;
    }
    conv_name(in, cn, sizeof cn, "rdb", 0, 1, 1);
    snprintf(a, sizeof a, "%s.weight", cn);
    if (!(t = need(f, a, err, errlen))) return -1;
    in->gc = t->ndim == 4 ? (int)t->shape[0] : 0;
    if (in->nf < 1 || in->gc < 1 || in->nf > 4096 || in->gc > 4096) {
        snprintf(err, errlen, "ESRGAN: implausible widths (nf %d, gc %d)", in->nf, in->gc);
        return -1;
    }
    return 0;
}

int tme_load(const char *path, const tme_options *opt, tme_model **out, char *err, size_t errlen) {
    *out = NULL;
    if (!opt || !opt->be) {
        snprintf(err, errlen, "tme_load: no backend given");
        return -1;
    }
    if (tcf_refuse_unsafe(path, err, errlen)) return -1;
    tst_file *f = NULL;
    char e2[400];
    if (tst_open(path, &f, e2, sizeof e2)) {
        snprintf(err, errlen, "ESRGAN model: %s", e2);
        return -1;
    }
    tme_model *m = calloc(1, sizeof *m);
    if (!m) {
        tst_close(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->be = opt->be;
    tme_info *in = &m->info;
    if (detect(f, in, err, errlen)) goto fail;
    m->rdb = calloc((size_t)in->nb * 15, sizeof *m->rdb);
    if (!m->rdb || te_weights_create(m->be, &m->w) != TE_OK ||
        te_arena_create(m->be, opt->arena_cap, 0, &m->arena) != TE_OK) {
        snprintf(err, errlen, "ESRGAN: %s", m->rdb ? te_backend_error(m->be) : "out of memory");
        goto fail;
    }
    int nf = in->nf, gc = in->gc;
    char cn[300];
    conv_name(in, cn, sizeof cn, "first", 0, 0, 0);
    if (load_conv(m, f, cn, nf, 3 * in->shuffle * in->shuffle, 1.f, &m->first, err, errlen)) goto fail;
    for (int b = 0; b < in->nb; b++)
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 5; j++) {
                conv_name(in, cn, sizeof cn, "rdb", b, r + 1, j + 1);
                if (load_conv(m, f, cn, j < 4 ? gc : nf, nf + j * gc, j < 4 ? 1.f : 0.2f, &m->rdb[(b * 3 + r) * 5 + j],
                              err, errlen))
                    goto fail;
            }
    conv_name(in, cn, sizeof cn, "trunk", 0, 0, 0);
    if (load_conv(m, f, cn, nf, nf, 1.f, &m->trunk, err, errlen)) goto fail;
    for (int i = 0; i < in->n_up; i++) {
        conv_name(in, cn, sizeof cn, "up", i, 0, 0);
        if (load_conv(m, f, cn, nf, nf, 1.f, &m->up[i], err, errlen)) goto fail;
    }
    conv_name(in, cn, sizeof cn, "hr", 0, 0, 0);
    if (load_conv(m, f, cn, nf, nf, 1.f, &m->hr, err, errlen)) goto fail;
    conv_name(in, cn, sizeof cn, "last", 0, 0, 0);
    if (load_conv(m, f, cn, 3, nf, 1.f, &m->last, err, errlen)) goto fail;
    tst_close(f);
    *out = m;
    return 0;
fail:
    tst_close(f);
    tme_free(m);
    return -1;
}

void tme_free(tme_model *m) {
    if (!m) return;
    te_arena_destroy(m->arena);
    te_weights_destroy(m->w);
    free(m->rdb);
    free(m->hin);
    free(m->hout);
    free(m);
}

const tme_info *tme_get_info(const tme_model *m) { return &m->info; }
size_t tme_arena_peak(const tme_model *m) { return te_arena_peak(m->arena); }

const char *tme_naming_name(tme_naming n) {
    switch (n) {
    case TME_NAMES_BASICSR: return "basicsr";
    case TME_NAMES_ESRGAN: return "esrgan";
    case TME_NAMES_OLD: return "old";
    }
    return "?";
}

/* ---- forward ------------------------------------------------------------------ */

#define CK(call)                                                                        \
    do {                                                                                \
        if ((call) != TE_OK) {                                                          \
            snprintf(err, errlen, "ESRGAN: %s", te_backend_error(m->be));                \
            return -1;                                                                  \
        }                                                                               \
    } while (0)

static te_status new4(tme_model *m, te_tensor *t, int64_t h, int64_t w, int64_t c) {
    int64_t ne[4] = {1, h, w, c};
    return te_arena_tensor(m->arena, t, TE_F32, 4, ne);
}

static const te_conv2d_params P3 = {.stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};

/* y = conv(x) (+ res), optionally LeakyReLU'd in place. */
static int conv(tme_model *m, te_tensor *y, const te_tensor *x, const conv_w *cw, const te_tensor *res, int act,
                char *err, size_t errlen) {
    CK(new4(m, y, x->ne[1], x->ne[2], cw->w->ne[0]));
    CK(te_conv2d(y, x, cw->w, cw->b, res, &P3));
    if (act) CK(te_leaky_relu(y, y, LRELU));
    return 0;
}

/* RDB: *y = conv5'(cat(x, x1..x4)) + x; x is kept. */
static int rdb(tme_model *m, te_tensor *y, const te_tensor *x, const conv_w *c, char *err, size_t errlen) {
    te_tensor cat = *x, xi, nc;
    int own = 0;
    for (int j = 0; j < 4; j++) {
        if (conv(m, &xi, &cat, &c[j], NULL, 1, err, errlen)) return -1;
        CK(new4(m, &nc, x->ne[1], x->ne[2], cat.ne[3] + xi.ne[3]));
        CK(te_concat_channels(&nc, &cat, &xi));
        te_arena_release(m->arena, &xi);
        if (own) te_arena_release(m->arena, &cat);
        cat = nc;
        own = 1;
    }
    if (conv(m, y, &cat, &c[4], x, 0, err, errlen)) return -1;
    te_arena_release(m->arena, &cat);
    return 0;
}

/* *x -> RRDB(*x); the input is released unless keep. */
static int rrdb(tme_model *m, te_tensor *x, const conv_w *c, int keep, char *err, size_t errlen) {
    te_tensor a, b, y;
    if (rdb(m, &a, x, c, err, errlen) || rdb(m, &b, &a, c + 5, err, errlen)) return -1;
    te_arena_release(m->arena, &a);
    if (rdb(m, &y, &b, c + 10, err, errlen)) return -1;
    te_arena_release(m->arena, &b);
    CK(te_scale(&y, &y, 0.2f, 0.f));
    CK(te_add(&y, &y, x));
    if (!keep) te_arena_release(m->arena, x);
    *x = y;
    return 0;
}

/* in: host [h][w][cin] already unshuffled; out: host [h*2^n_up][w*2^n_up][3] */
static int forward_pass(tme_model *m, const float *hin, int h, int w, float *hout, char *err, size_t errlen) {
    const tme_info *in = &m->info;
    te_tensor x, feat, t, u;
    CK(new4(m, &x, h, w, 3 * in->shuffle * in->shuffle));
    if (!te_arena_planning(m->arena)) CK(te_tensor_upload(&x, hin));
    if (conv(m, &feat, &x, &m->first, NULL, 0, err, errlen)) return -1;
    te_arena_release(m->arena, &x);
    t = feat;
    for (int b = 0; b < in->nb; b++)
        if (rrdb(m, &t, m->rdb + b * 15, b == 0, err, errlen)) return -1;
    if (conv(m, &u, &t, &m->trunk, &feat, 0, err, errlen)) return -1;
    if (in->nb > 0) te_arena_release(m->arena, &t);
    te_arena_release(m->arena, &feat);
    for (int i = 0; i < in->n_up; i++) {
        te_tensor up;
        CK(new4(m, &up, u.ne[1] * 2, u.ne[2] * 2, u.ne[3]));
        CK(te_upsample_nearest2x(&up, &u));
        te_arena_release(m->arena, &u);
        if (conv(m, &u, &up, &m->up[i], NULL, 1, err, errlen)) return -1;
        te_arena_release(m->arena, &up);
    }
    if (conv(m, &t, &u, &m->hr, NULL, 1, err, errlen)) return -1;
    te_arena_release(m->arena, &u);
    if (conv(m, &u, &t, &m->last, NULL, 0, err, errlen)) return -1;
    te_arena_release(m->arena, &t);
    if (!te_arena_planning(m->arena)) CK(te_tensor_download(&u, hout));
    te_arena_release(m->arena, &u);
    return 0;
}

static float *grow(float **p, size_t *have, size_t n) {
    if (n > *have) {
        free(*p);
        *p = malloc(n * sizeof(float));
        *have = *p ? n : 0;
    }
    return *p;
}

/* torch F.pad(mode="reflect") index: -1 -> 1, n -> n-2 (replicate for n == 1,
 * where torch refuses) */
static int reflect(int i, int n) {
    if (n == 1) return 0;
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return i;
}

int tme_forward(tme_model *m, const float *x, int h, int w, float *y, char *err, size_t errlen) {
    const tme_info *in = &m->info;
    int s = in->shuffle;
    if (h < 1 || w < 1 || h > 65536 || w > 65536) {
        snprintf(err, errlen, "ESRGAN: image %dx%d", w, h);
        return -1;
    }
    /* reflect-pad to a multiple of s, then pixel-unshuffle: channel c*s*s + i*s + j
     * of output pixel (Y, X) is channel c of input pixel (Y*s + i, X*s + j) */
    int hp = (h + s - 1) / s * s, wp = (w + s - 1) / s * s, hs = hp / s, ws = wp / s, cin = 3 * s * s;
    int up = 1 << in->n_up, S = in->scale;
    size_t nin = (size_t)hs * ws * cin, nout = (size_t)hs * up * ws * up * 3;
    const float *src = x;
    if (s > 1) {
        float *b = grow(&m->hin, &m->hin_n, nin);
        if (!b) goto oom;
        for (int Y = 0; Y < hs; Y++)
            for (int X = 0; X < ws; X++) {
                float *o = b + ((size_t)Y * ws + X) * cin;
                for (int i = 0; i < s; i++)
                    for (int j = 0; j < s; j++) {
                        const float *p = x + ((size_t)reflect(Y * s + i, h) * w + reflect(X * s + j, w)) * 3;
                        for (int c = 0; c < 3; c++) o[c * s * s + i * s + j] = p[c];
                    }
            }
        src = b;
    }
    float *dst = y;
    if (s > 1 && (hp != h || wp != w)) {
        dst = grow(&m->hout, &m->hout_n, nout);
        if (!dst) goto oom;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) {
            te_arena_begin_plan(m->arena);
        } else {
            if (te_arena_reserve(m->arena) != TE_OK) {
                snprintf(err, errlen, "ESRGAN: %s", te_backend_error(m->be));
                return -1;
            }
            te_arena_begin_run(m->arena);
        }
        if (forward_pass(m, src, hs, ws, dst, err, errlen)) return -1;
    }
    if (dst != y) /* crop [: h*S, : w*S] out of [hp*S, wp*S] */
        for (int r = 0; r < h * S; r++)
            memcpy(y + (size_t)r * w * S * 3, dst + (size_t)r * wp * S * 3, sizeof(float) * (size_t)w * S * 3);
    return 0;
oom:
    snprintf(err, errlen, "ESRGAN: out of memory for a %dx%d tile", w, h);
    return -1;
}

/* ---- A1111 tiling ------------------------------------------------------------ */

tme_upscale_opts tme_upscale_defaults(void) {
    tme_upscale_opts o = {.tile = TME_TILE_DEFAULT, .overlap = TME_OVERLAP_DEFAULT, .rgb = 0};
    return o;
}

/* math.ceil(num / den) for den > 0 */
static int ceil_div(int num, int den) { return num > 0 ? (num + den - 1) / den : -((-num) / den); }

/* images.split_grid: tile origins along one axis (n of them, n >= 1; A1111
 * computes 0 tiles for an image smaller than the overlap and then fails: we
 * use one). */
static int grid_axis(int size, int tile, int ov, int *pos) {
    int n = ceil_div(size - ov, tile - ov);
    if (n < 1) n = 1;
    double d = n > 1 ? (double)(size - tile) / (n - 1) : 0;
    if (pos)
        for (int i = 0; i < n; i++) {
            int p = (int)(i * d);
            if (p + tile >= size) p = size - tile;
            pos[i] = p;
        }
    return n;
}

int tme_grid_tiles(int w, int h, int tile, int overlap) {
    if (tile <= 0) return 1;
    if (overlap < 0 || overlap >= tile) return 0;
    return grid_axis(w, tile, overlap, NULL) * grid_axis(h, tile, overlap, NULL);
}

/* Pillow Image.paste(src.crop((rx, ry, rx+rw, ry+rh)), (dx, dy), mask) on RGB
 * buffers: clipped to dst; mask (rw x rh, stride mstride) blends with
 * DIV255(out*(255-m) + in*m). */
static void paste(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int rx, int ry, int rw, int rh, int dx,
                  int dy, const uint8_t *mask, int mstride) {
    int sx = 0, sy = 0, w = rw, h = rh;
    if (dx < 0) w += dx, sx = -dx, dx = 0;
    if (dx + w > dw) w = dw - dx;
    if (dy < 0) h += dy, sy = -dy, dy = 0;
    if (dy + h > dh) h = dh - dy;
    if (w <= 0 || h <= 0) return;
    for (int y = 0; y < h; y++) {
        uint8_t *o = dst + ((size_t)(dy + y) * dw + dx) * 3;
        const uint8_t *i = src + ((size_t)(ry + sy + y) * sw + rx + sx) * 3;
        if (!mask) {
            memcpy(o, i, (size_t)w * 3);
            continue;
        }
        const uint8_t *mk = mask + (size_t)(sy + y) * mstride + sx;
        for (int x = 0; x < w; x++) {
            unsigned m = mk[x];
            for (int c = 0; c < 3; c++) {
                unsigned t = o[3 * x + c] * (255u - m) + i[3 * x + c] * m + 128u;
                o[3 * x + c] = (uint8_t)(((t >> 8) + t) >> 8);
            }
        }
    }
}

/* combine_grid's masks: int(float32(i) * 255 / float32(overlap)) */
static void ramp(uint8_t *r, int ov) {
    for (int i = 0; i < ov; i++) {
        float v = (float)i * 255.0f;
        r[i] = (uint8_t)(v / (float)ov);
    }
}

/* tile (tx, ty) of size tw x th of src, black outside, -> floats in model
 * channel order -> model -> uint8 RGB [th*S][tw*S] */
static int run_tile(tme_model *m, const ti_image *src, int tx, int ty, int tw, int th, int rgb, float *fin,
                    float *fout, uint8_t *out, char *err, size_t errlen) {
    int C = src->channels, S = m->info.scale;
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++) {
            float *o = fin + ((size_t)y * tw + x) * 3;
            int X = tx + x, Y = ty + y;
            if (X < 0 || Y < 0 || X >= src->width || Y >= src->height) {
                o[0] = o[1] = o[2] = 0.f;
                continue;
            }
            const uint8_t *p = src->pixels + ((size_t)Y * src->width + X) * C;
            for (int c = 0; c < 3; c++) o[c] = (float)p[rgb ? c : 2 - c] / 255.0f;
        }
    if (tme_forward(m, fin, th, tw, fout, err, errlen)) return -1;
    size_t n = (size_t)th * S * tw * S;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            float v = fout[i * 3 + (rgb ? c : 2 - c)];
            v = v > 0.f ? (v < 1.f ? v : 1.f) : 0.f; /* NaN -> 0 */
            out[i * 3 + c] = (uint8_t)rintf(255.0f * v);
        }
    return 0;
}

typedef struct {
    int done, total;
} prog;

static int pass_impl(tme_model *m, const ti_image *src, const tme_upscale_opts *o, prog *pg, ti_image *dst,
                     char *err, size_t errlen) {
    int W = src->width, H = src->height, S = m->info.scale;
    if (src->channels != 3 && src->channels != 4) {
        snprintf(err, errlen, "ESRGAN: image with %d channels", src->channels);
        return -1;
    }
    int tile = o->tile, ov = o->overlap, untiled = tile <= 0;
    if (!untiled && (ov < 0 || ov >= tile)) {
        snprintf(err, errlen, "ESRGAN: tile overlap %d must be in [0, tile size %d)", ov, tile);
        return -1;
    }
    int tw = untiled ? W : tile, th = untiled ? H : tile;
    int ncols = untiled ? 1 : grid_axis(W, tile, ov, NULL), nrows = untiled ? 1 : grid_axis(H, tile, ov, NULL);
    if ((long long)W * S > 65536 || (long long)H * S > 65536) {
        snprintf(err, errlen, "ESRGAN: the output would be %lldx%lld", (long long)W * S, (long long)H * S);
        return -1;
    }
    int OW = W * S, OH = H * S, TW = tw * S, TH = th * S, OV = ov * S;
    int *xs = malloc(sizeof(int) * (size_t)ncols), *ys = malloc(sizeof(int) * (size_t)nrows);
    float *fin = malloc(sizeof(float) * (size_t)tw * th * 3), *fout = malloc(sizeof(float) * (size_t)TW * TH * 3);
    uint8_t *t8 = untiled ? NULL : malloc((size_t)TW * TH * 3), *row = untiled ? NULL : calloc((size_t)OW * TH, 3);
    uint8_t *mw = untiled ? NULL : malloc((size_t)(OV > 0 ? OV : 1) * (size_t)(TH > OW ? TH : OW));
    uint8_t *mh = mw, *r = NULL;
    int rc = -1;
    memset(dst, 0, sizeof *dst);
    if (!xs || !ys || !fin || !fout || (!untiled && (!t8 || !row || !mw)) ||
        ti_image_alloc(dst, OW, OH, 3, err, errlen)) {
        if (!err[0]) snprintf(err, errlen, "ESRGAN: out of memory for a %dx%d output", OW, OH);
        goto done;
    }
    if (untiled) {
        if (run_tile(m, src, 0, 0, W, H, o->rgb, fin, fout, dst->pixels, err, errlen)) goto done;
        pg->done++;
        if (o->progress && o->progress(o->ctx, pg->done, pg->total)) rc = 1;
        else rc = 0;
        goto done;
    }
    grid_axis(W, tile, ov, xs);
    grid_axis(H, tile, ov, ys);
    memset(dst->pixels, 0, (size_t)OW * OH * 3);
    /* mask_w: TH rows of ramp(OV) (stride OV); mask_h: OV rows, each OW wide
     * of one value -> built per row below into the same buffer */
    r = malloc((size_t)(OV > 0 ? OV : 1));
    if (!r) goto done;
    ramp(r, OV);
    for (int j = 0; j < nrows; j++) {
        memset(row, 0, (size_t)OW * TH * 3);
        for (int i = 0; i < ncols; i++) {
            if (run_tile(m, src, xs[i], ys[j], tile, tile, o->rgb, fin, fout, t8, err, errlen)) goto done;
            int X = xs[i] * S;
            if (X == 0) {
                paste(row, OW, TH, t8, TW, 0, 0, TW, TH, 0, 0, NULL, 0);
            } else {
                if (OV > 0) {
                    for (int y = 0; y < TH; y++) memcpy(mw + (size_t)y * OV, r, (size_t)OV);
                    paste(row, OW, TH, t8, TW, 0, 0, OV, TH, X, 0, mw, OV);
                }
                paste(row, OW, TH, t8, TW, OV, 0, TW - OV, TH, X + OV, 0, NULL, 0);
            }
            pg->done++;
            if (o->progress && o->progress(o->ctx, pg->done, pg->total)) {
                rc = 1;
                goto done;
            }
        }
        int Y = ys[j] * S;
        if (Y == 0) {
            paste(dst->pixels, OW, OH, row, OW, 0, 0, OW, TH, 0, 0, NULL, 0);
        } else {
            if (OV > 0) {
                for (int y = 0; y < OV; y++) memset(mh + (size_t)y * OW, r[y], (size_t)OW);
                paste(dst->pixels, OW, OH, row, OW, 0, 0, OW, OV, 0, Y, mh, OW);
            }
            paste(dst->pixels, OW, OH, row, OW, 0, OV, OW, TH - OV, 0, Y + OV, NULL, 0);
        }
    }
    rc = 0;
done:
    if (rc) ti_image_free(dst);
    free(xs);
    free(ys);
    free(fin);
    free(fout);
    free(t8);
    free(row);
    free(mw);
    free(r);
    return rc;
}

int tme_upscale_pass(tme_model *m, const ti_image *src, const tme_upscale_opts *o, ti_image *dst, char *err,
                     size_t errlen) {
    tme_upscale_opts d = tme_upscale_defaults();
    if (!o) o = &d;
    if (err && errlen) err[0] = 0;
    prog pg = {0, tme_grid_tiles(src->width, src->height, o->tile, o->overlap)};
    return pass_impl(m, src, o, &pg, dst, err, errlen);
}

int tme_upscale(tme_model *m, const ti_image *src, double scale, int dest_w, int dest_h,
                const tme_upscale_opts *o, int threads, ti_image *dst, char *err, size_t errlen) {
    tme_upscale_opts d = tme_upscale_defaults();
    if (!o) o = &d;
    if (err && errlen) err[0] = 0;
    memset(dst, 0, sizeof *dst);
    if (dest_w < 1 || dest_h < 1) {
        snprintf(err, errlen, "ESRGAN: destination %dx%d", dest_w, dest_h);
        return -1;
    }
    /* the passes A1111's loop makes (sizes only), to count the tiles */
    int S = m->info.scale, w = src->width, h = src->height, passes = 0, total = 0;
    for (int i = 0; i < TME_MAX_PASSES; i++) {
        if (w >= dest_w && h >= dest_h && (i > 0 || scale != 1.0)) break;
        total += tme_grid_tiles(w, h, o->tile, o->overlap);
        passes++;
        if (S == 1) break; /* the size did not change: A1111 stops */
        w *= S, h *= S;
    }
    prog pg = {0, total};
    ti_image cur = {0};
    const ti_image *in = src;
    for (int i = 0; i < passes; i++) {
        ti_image next;
        int rc = pass_impl(m, in, o, &pg, &next, err, errlen);
        ti_image_free(&cur);
        if (rc) return rc;
        cur = next;
        in = &cur;
    }
    if (in->width == dest_w && in->height == dest_h) {
        if (in == &cur) {
            *dst = cur;
            return 0;
        }
        /* no pass: the source's RGB */
        if (ti_image_alloc(dst, dest_w, dest_h, 3, err, errlen)) return -1;
        for (size_t i = 0; i < (size_t)dest_w * dest_h; i++)
            memcpy(dst->pixels + i * 3, src->pixels + i * src->channels, 3);
        return 0;
    }
    ti_image rgb = {0};
    if (in->channels != 3) { /* an RGBA source and no pass: drop alpha first (A1111 converts to RGB) */
        if (ti_image_alloc(&rgb, in->width, in->height, 3, err, errlen)) return -1;
        for (size_t i = 0; i < (size_t)in->width * in->height; i++)
            memcpy(rgb.pixels + i * 3, in->pixels + i * in->channels, 3);
        in = &rgb;
    }
    int rc = tr_resize_threads(in, dest_w, dest_h, TR_LANCZOS, threads, dst, err, errlen);
    ti_image_free(&rgb);
    ti_image_free(&cur);
    return rc ? -1 : 0;
}
