/* vae_tiled.c - tiled VAE decode/encode (vae.h, docs/engine.md "Tiled VAE").
 *
 * Why: an untiled decode keeps whole feature maps in the activation arena
 * (~2.5 KiB per output pixel: ~10 GiB at 2048²). Here the arena only ever
 * holds one tile's working set, and the result still equals the untiled
 * network, because every GroupNorm is normalised with statistics of the WHOLE
 * map and every convolution sees its true neighbourhood.
 *
 * How (tiling.md 3.3/3.4, re-designed):
 * - The network is flattened into a list of ops on one "current activation"
 *   plus a saved-residual register (SAVE, NORM, CONV, CONV_RES = conv + 1x1
 *   shortcut of the saved input, UP, DOWN, ATTN).
 * - Tiles: a grid of core rectangles on the latent grid (so a core is whole
 *   at every resolution level); cores partition the map.
 * - A sweep runs every tile from the last parked activation (the checkpoint)
 *   through the ops until the next NORM whose statistics are unknown, and
 *   accumulates that norm's per-channel sum and sum of squares (double) over
 *   the tile's core region only. Then mean/var per group = whole-map
 *   statistics (E[x²] - mean², biased, like torch), and the next sweep can
 *   apply the norm. So there are #norms + 1 sweeps (31 for the SD decoder).
 * - Parking: at a checkpoint norm, each tile's core of the activation (and
 *   of the saved residual when it differs) is copied to a host blob (f32 or
 *   f16). Parked blobs of all tiles form the full map exactly once (no
 *   overlap). The next sweep gathers core + halo from the neighbours' blobs,
 *   where the halo is the receptive field of the convolutions of that sweep
 *   (1-3 px at that sweep's resolution): convs zero-pad at the region edge,
 *   which is exact at the image border and wrong only within the halo
 *   elsewhere. A blob is freed as soon as the last tile needing it ran, so
 *   the host peak is about max(map in, map out) + one tile row.
 * - Policies: recompute = 0 parks every norm's input (and the block input as
 *   residual at the second norm of a ResNet block); recompute = 1 parks only
 *   block inputs and recomputes norm1 + conv1 for the second norm's sweep.
 * - Attention (mid block, latent resolution, one head): keys and values of
 *   the whole map are built first (each tile's core tokens, stacked in tile
 *   order: attention is invariant to the key order) in the arena; queries
 *   run per tile. Exact.
 * - Fast mode (tiling.md 3.5): the input is downsampled (nearest-exact) to
 *   about one tile, its per-channel statistics matched to the input's, and
 *   the network run on it once (one tile, exact) collecting every norm's
 *   statistics; norms above latent resolution then use those, so everything
 *   above latent resolution runs in one sweep per tile with nothing parked
 *   (halo = the receptive field of that whole part). The latent-resolution
 *   norms (mid block) stay exact: parking there is cheap and the attention
 *   needs the whole map anyway. A non-finite estimate falls back to exact.
 * - Arena: every sweep is planned (shapes only) then run; a plan-only drive
 *   of the whole job gives the arena peak up front, which also picks the tile
 *   size for a budget. Host <-> arena copies go through row views of the
 *   tile tensors and a small staging buffer (backend-agnostic: on a GPU the
 *   parked maps are host RAM and only tiles move).
 *
 * Errors are values (0 / -1 with err). No global state. */
#include "vae.h"

#include "te_arena.h"
#include "te_half.h"
#include "te_ops.h"
#include "vae_impl.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { P_CONV, P_CONV_RES, P_DOWN, P_UP, P_SAVE, P_NORM, P_ATTN };
/* saved-register states: none, the current activation itself, the sweep's
 * input activation (since replaced), the sweep's input residual, a computed
 * tensor */
enum { S_NONE, S_CUR, S_IN_CUR, S_IN_RES, S_OWN };

#define STAGE_BYTES ((size_t)8 << 20)
#define BIG_BLOB ((size_t)1 << 20)

typedef struct {
    int kind;
    const te_tensor *w, *b;       /* CONV, CONV_RES (3x3), DOWN: weight [K, C, kh, kw] and bias */
    const te_tensor *scw, *scb;   /* CONV_RES: 1x1 shortcut of the saved input, or NULL */
    int k;                        /* CONV kernel size */
    const tmv_attn_w *aw;         /* ATTN */
    int norm, silu;               /* NORM: index of the statistics, fused SiLU */
    int ck;                       /* NORM: its input is a block input (no separate residual pending): where
                                   * the recompute policy parks; the other policy parks at every norm */
    int lin, lout, cin, cout;     /* level (size = latent << level) and channels, before and after */
} pop;

typedef struct {
    pop *ops;
    int n, cap, n_norms;
    float **gam, **bet;           /* per norm: host copies of gamma/beta */
    int level, c, saved;          /* builder state */
} prog;

typedef struct {                  /* a feature map parked on the host, one core blob per tile */
    int level, c, f16;
    void **blob;
    size_t *bytes;                /* 0 = no blob */
} pmap;

typedef struct {
    tmv_vae *v;
    te_arena *a;
    const prog *P;
    int enc, L;
    int h, w;                     /* latent grid */
    int ny, nx, nt;
    int *ys, *xs;                 /* tile bounds on the latent grid, [ny+1] / [nx+1] */
    int f16, recompute, pad, plan_only, planning;
    int inl;                      /* one tile: norms resolved inline (statistics of the tile = the map) */
    const float *in;              /* NCHW network input (level of ops[0]) */
    float in_scale;
    float *out;                   /* NCHW output */
    /* statistics */
    unsigned char *known;         /* per norm */
    double **mean, **var;         /* per norm [groups] */
    float **A, **B;               /* per norm [C]: y = x * A + B (gamma, beta and the statistics folded) */
    double *sum, *sq;             /* current sweep, per channel */
    /* checkpoint */
    int ck_op;
    pmap *cur, *res;              /* cur NULL = the network input */
    int res_alias;
    /* accounting */
    size_t parked, parked_peak, arena_peak;
    int sweeps, max_halo;
    /* staging */
    void *stage;
    size_t stage_cap;
    int f16c;
    char *err;
    size_t errlen;
} tctx;

typedef struct {
    int s, e, halo, attn;          /* attn: ATTN op whose keys/values are built before the tiles, or -1 */
    int end_src, replace, park;
    int move_cur, move_res;       /* the old cur/res map becomes the new residual map */
    pmap *ncur, *nres;
    int nres_alias;
    int *last;
    int64_t *tok;                 /* ATTN: first key row of each tile */
    te_tensor K, V;
} sweep;

/* ---- small helpers -------------------------------------------------------- */

static int fail(tctx *x, const char *what) {
    snprintf(x->err, x->errlen, "VAE tiled: %s: %s", what, te_backend_error(x->v->be));
    return -1;
}
#define CK(call) \
    do { \
        if ((call) != TE_OK) return fail(x, #call); \
    } while (0)

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

static void *blob_alloc(size_t n) {
    if (n >= BIG_BLOB) {   /* own mapping: freed memory goes back to the system at once */
        void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    return malloc(n);
}
static void blob_free(void *p, size_t n) {
    if (!p) return;
    if (n >= BIG_BLOB) munmap(p, n);
    else free(p);
}

static pmap *pmap_new(tctx *x, int level, int c, int f16) {
    pmap *m = calloc(1, sizeof *m);
    if (!m || !(m->blob = calloc((size_t)x->nt, sizeof *m->blob)) ||
        !(m->bytes = calloc((size_t)x->nt, sizeof *m->bytes))) {
        if (m) free(m->blob);
        free(m);
        return NULL;
    }
    m->level = level, m->c = c, m->f16 = f16;
    return m;
}
static void pmap_drop(tctx *x, pmap *m, int t) {
    if (!m || !m->bytes[t]) return;
    blob_free(m->blob[t], m->bytes[t]);
    x->parked -= m->bytes[t];
    m->blob[t] = NULL;
    m->bytes[t] = 0;
}
static void pmap_free(tctx *x, pmap *m) {
    if (!m) return;
    for (int t = 0; t < x->nt; t++) pmap_drop(x, m, t);
    free(m->blob);
    free(m->bytes);
    free(m);
}

/* A view of rows [r0, r0+n) of dim 1 of t (no arena slot: never released). */
static te_tensor view_rows(const te_tensor *t, int64_t r0, int64_t n) {
    te_tensor v = *t;
    int64_t row = 1;
    for (int d = 2; d < t->ndim; d++) row *= t->ne[d];
    v.ne[1] = n;
    v.slot = 0, v.flags = 0, v.prep = NULL;
    if (t->data) v.data = (char *)t->data + (size_t)(r0 * row) * te_dtype_size(t->dtype);
    return v;
}

static int stage_fit(tctx *x, size_t bytes) {
    if (bytes <= x->stage_cap) return 0;
    free(x->stage);
    x->stage = malloc(bytes);
    x->stage_cap = x->stage ? bytes : 0;
    if (!x->stage) snprintf(x->err, x->errlen, "VAE tiled: out of memory (staging %zu bytes)", bytes);
    return x->stage ? 0 : -1;
}

#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) static void to_f16_f16c(uint16_t *d, const float *s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = te_f32_to_f16(s[i]);
}
#endif
static void to_f16(const tctx *x, uint16_t *d, const float *s, size_t n) {
#if defined(__x86_64__)
    if (x->f16c) {
        to_f16_f16c(d, s, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) d[i] = te_f32_to_f16(s[i]);
}

/* ---- the program: the network as a flat op list ----------------------------- */

static int padd(prog *p, pop o) {
    if (p->n == p->cap) {
        int nc = p->cap ? 2 * p->cap : 64;
        pop *n = realloc(p->ops, (size_t)nc * sizeof *n);
        if (!n) return -1;
        p->ops = n, p->cap = nc;
    }
    o.lin = p->level, o.cin = p->c;
    if (o.kind == P_CONV || o.kind == P_CONV_RES || o.kind == P_DOWN) p->c = (int)o.w->ne[0];
    if (o.kind == P_DOWN) p->level--;
    if (o.kind == P_UP) p->level++;
    o.lout = p->level, o.cout = p->c;
    /* ck: the norm's input is a block input (no separate residual pending),
     * the only places the recompute policy parks */
    if (o.kind == P_SAVE) p->saved = S_CUR;
    else if (o.kind == P_CONV_RES || o.kind == P_ATTN) p->saved = S_NONE;
    else {
        if (o.kind == P_NORM) o.ck = p->saved != S_OWN;
        if (p->saved == S_CUR) p->saved = S_OWN;
    }
    p->ops[p->n++] = o;
    return 0;
}
static int pconv(prog *p, const tmv_conv_w *cw, int k) {
    return padd(p, (pop){.kind = P_CONV, .w = cw->w, .b = cw->b, .k = k});
}
static int pnorm(prog *p, const te_tensor *g, const te_tensor *b, int silu) {
    int k = p->n_norms;
    float **ng = realloc(p->gam, (size_t)(k + 1) * sizeof *ng), **nb;
    if (!ng) return -1;
    p->gam = ng;
    if (!(nb = realloc(p->bet, (size_t)(k + 1) * sizeof *nb))) return -1;
    p->bet = nb;
    p->gam[k] = malloc((size_t)p->c * sizeof(float));
    p->bet[k] = malloc((size_t)p->c * sizeof(float));
    p->n_norms++;
    if (!p->gam[k] || !p->bet[k] || te_tensor_download(g, p->gam[k]) != TE_OK ||
        te_tensor_download(b, p->bet[k]) != TE_OK)
        return -1;
    return padd(p, (pop){.kind = P_NORM, .norm = k, .silu = silu});
}
static int pres(prog *p, const tmv_res_w *r) {
    return padd(p, (pop){.kind = P_SAVE}) || pnorm(p, r->n1g, r->n1b, 1) ||
                   padd(p, (pop){.kind = P_CONV, .w = r->c1w, .b = r->c1b, .k = 3}) ||
                   pnorm(p, r->n2g, r->n2b, 1) ||
                   padd(p, (pop){.kind = P_CONV_RES, .w = r->c2w, .b = r->c2b, .scw = r->scw, .scb = r->scb})
               ? -1
               : 0;
}
static int pmid(prog *p, const tmv_side_w *s) {
    return pres(p, &s->mid[0]) || padd(p, (pop){.kind = P_SAVE}) || pnorm(p, s->attn.ng, s->attn.nb, 0) ||
                   padd(p, (pop){.kind = P_ATTN, .aw = &s->attn}) || pres(p, &s->mid[1])
               ? -1
               : 0;
}

static void prog_free(prog *p) {
    for (int k = 0; k < p->n_norms; k++) {
        free(p->gam[k]);
        free(p->bet[k]);
    }
    free(p->gam), free(p->bet), free(p->ops);
    memset(p, 0, sizeof *p);
}

/* The same sequence as vae.c's encode_fwd / decode_fwd. */
static int prog_build(prog *p, const tmv_vae *v, int enc) {
    int L = v->levels, rc = 0;
    const tmv_side_w *s = enc ? &v->enc : &v->dec;
    memset(p, 0, sizeof *p);
    p->level = enc ? L - 1 : 0;
    p->c = enc ? 3 : v->z;
    if (enc) {
        rc |= pconv(p, &s->conv_in, 3);
        for (int i = 0; i < L && !rc; i++) {
            for (int j = 0; j < v->layers; j++) rc |= pres(p, &s->res[i][j]);
            if (i < L - 1) rc |= padd(p, (pop){.kind = P_DOWN, .w = s->resample[i].w, .b = s->resample[i].b});
        }
        rc = rc || pmid(p, s) || pnorm(p, s->nog, s->nob, 1) || pconv(p, &s->conv_out, 3) || pconv(p, &v->quant, 1);
    } else {
        rc = pconv(p, &v->post_quant, 1) || pconv(p, &s->conv_in, 3) || pmid(p, s);
        for (int i = 0; i < L && !rc; i++) {
            for (int j = 0; j <= v->layers; j++) rc |= pres(p, &s->res[i][j]);
            if (i < L - 1) rc = rc || padd(p, (pop){.kind = P_UP}) || pconv(p, &s->resample[i], 3);
        }
        rc = rc || pnorm(p, s->nog, s->nob, 1) || pconv(p, &s->conv_out, 3);
    }
    return rc ? -1 : 0;
}

/* ---- grid -------------------------------------------------------------------- */

/* tiling.md 3.2: lb rounded up to a multiple of 32/16/8/4/2 when that stays <= ub. */
static int round_up_size(int lb, int ub) {
    static const int d[] = {32, 16, 8, 4, 2};
    for (int i = 0; i < 5; i++) {
        if (lb % d[i] == 0) return lb;
        int c = (lb + d[i] - 1) / d[i] * d[i];
        if (c <= ub) return c;
    }
    return lb;
}
/* n split into ceil(n/T) cores of a rounded common size (the last smaller). */
static int *split(int n, int T, int *cnt) {
    int k = imax(1, (n + T - 1) / T), core = round_up_size((n + k - 1) / k, T);
    int *b = malloc((size_t)(k + 1) * sizeof *b);
    if (!b) return NULL;
    for (int i = 0; i < k; i++) b[i] = imin(n, i * core);
    b[k] = n;
    *cnt = k;
    return b;
}

/* ---- context ------------------------------------------------------------------- */

static void ctx_free(tctx *x) {
    pmap_free(x, x->cur);
    pmap_free(x, x->res);
    x->cur = x->res = NULL;
    if (x->P)
        for (int k = 0; k < x->P->n_norms; k++) {
            if (x->mean) free(x->mean[k]);
            if (x->var) free(x->var[k]);
            if (x->A) free(x->A[k]);
            if (x->B) free(x->B[k]);
        }
    free(x->mean), free(x->var), free(x->A), free(x->B), free(x->known);
    free(x->sum), free(x->sq), free(x->ys), free(x->xs), free(x->stage);
}

static int ctx_init(tctx *x, tmv_vae *v, const prog *P, int enc, int h, int w, int T, const tmv_tile_options *o,
                    int plan_only, char *err, size_t errlen) {
    memset(x, 0, sizeof *x);
    x->v = v, x->a = v->arena, x->P = P, x->enc = enc, x->L = v->levels, x->h = h, x->w = w;
    x->f16 = o->park_f16, x->recompute = o->recompute, x->pad = o->pad, x->plan_only = plan_only;
    x->err = err, x->errlen = errlen, x->in_scale = 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    x->f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
#endif
    int K = P->n_norms, cmax = 1;
    for (int i = 0; i < P->n; i++) cmax = imax(cmax, imax(P->ops[i].cin, P->ops[i].cout));
    x->ys = split(h, T, &x->ny);
    x->xs = split(w, T, &x->nx);
    x->known = calloc((size_t)K + 1, 1);
    x->mean = calloc((size_t)K + 1, sizeof *x->mean);
    x->var = calloc((size_t)K + 1, sizeof *x->var);
    x->A = calloc((size_t)K + 1, sizeof *x->A);
    x->B = calloc((size_t)K + 1, sizeof *x->B);
    x->sum = calloc((size_t)cmax, sizeof *x->sum);
    x->sq = calloc((size_t)cmax, sizeof *x->sq);
    if (!x->ys || !x->xs || !x->known || !x->mean || !x->var || !x->A || !x->B || !x->sum || !x->sq) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    x->nt = x->ny * x->nx;
    return 0;
}

/* Per-group statistics of norm k -> the folded affine y = x * A + B. */
static int set_stats(tctx *x, int k, int C, const double *mean, const double *var) {
    int G = x->v->groups, cg = C / G;
    if (!x->mean[k] && !(x->mean[k] = malloc((size_t)G * sizeof(double)))) return -1;
    if (!x->var[k] && !(x->var[k] = malloc((size_t)G * sizeof(double)))) return -1;
    if (!x->A[k] && !(x->A[k] = malloc((size_t)C * sizeof(float)))) return -1;
    if (!x->B[k] && !(x->B[k] = malloc((size_t)C * sizeof(float)))) return -1;
    memcpy(x->mean[k], mean, (size_t)G * sizeof(double));
    memcpy(x->var[k], var, (size_t)G * sizeof(double));
    for (int c = 0; c < C; c++) {
        double rstd = 1.0 / sqrt(var[c / cg] + (double)TMV_GN_EPS), a = rstd * x->P->gam[k][c];
        x->A[k][c] = (float)a;
        x->B[k][c] = (float)(x->P->bet[k][c] - mean[c / cg] * a);
    }
    x->known[k] = 1;
    return 0;
}

/* ---- host <-> arena ------------------------------------------------------------ */

/* Rows [ya, ya+n) x cols [x0, x1) of a parked map into dst (NHWC, map dtype). */
static int gather_map(tctx *x, const pmap *m, int ya, int n, int x0, int x1, char *dst) {
    int l = m->level, es = m->f16 ? 2 : 4, rw = x1 - x0;
    size_t px = (size_t)m->c * es;
    for (int y = ya; y < ya + n; y++) {
        int ty = 0;
        while ((x->ys[ty + 1] << l) <= y) ty++;
        int cy0 = x->ys[ty] << l;
        for (int tx = 0; tx < x->nx; tx++) {
            int cx0 = x->xs[tx] << l, cx1 = x->xs[tx + 1] << l, a = imax(x0, cx0), b = imin(x1, cx1);
            if (a >= b) continue;
            const char *src = m->blob[ty * x->nx + tx];
            if (!src) {
                snprintf(x->err, x->errlen, "VAE tiled: internal: tile %d read after it was freed", ty * x->nx + tx);
                return -1;
            }
            memcpy(dst + ((size_t)(y - ya) * rw + (a - x0)) * px,
                   src + ((size_t)(y - cy0) * (cx1 - cx0) + (a - cx0)) * px, (size_t)(b - a) * px);
        }
    }
    return 0;
}

/* The same from the NCHW network input (times in_scale). */
static void gather_input(tctx *x, int ya, int n, int x0, int x1, float *dst) {
    const pop *o = &x->P->ops[0];
    int C = o->cin, H = x->h << o->lin, W = x->w << o->lin, rw = x1 - x0;
    for (int c = 0; c < C; c++)
        for (int y = ya; y < ya + n; y++) {
            const float *s = x->in + ((size_t)c * H + y) * W;
            float *d = dst + (size_t)(y - ya) * rw * C + c;
            for (int i = x0; i < x1; i++) d[(size_t)(i - x0) * C] = s[i] * x->in_scale;
        }
}

/* An arena tensor [1, y1-y0, x1-x0, c] f32 filled from map m (NULL: the input). */
static int load(tctx *x, te_tensor *t, const pmap *m, int c, int y0, int y1, int x0, int x1) {
    int rh = y1 - y0, rw = x1 - x0, f16 = m && m->f16;
    int64_t ne[4] = {1, rh, rw, c};
    te_tensor src;
    CK(te_arena_tensor(x->a, &src, f16 ? TE_F16 : TE_F32, 4, ne));
    if (!x->planning) {
        size_t row = (size_t)rw * c * (f16 ? 2 : 4);
        if (stage_fit(x, row > STAGE_BYTES ? row : STAGE_BYTES)) return -1;
        int chunk = (int)(x->stage_cap / row);
        for (int r = 0; r < rh; r += chunk) {
            int n = imin(chunk, rh - r);
            if (m) {
                if (gather_map(x, m, y0 + r, n, x0, x1, x->stage)) return -1;
            } else
                gather_input(x, y0 + r, n, x0, x1, x->stage);
            te_tensor vw = view_rows(&src, r, n);
            CK(te_tensor_upload(&vw, x->stage));
        }
    }
    if (f16) {
        CK(te_arena_tensor(x->a, t, TE_F32, 4, ne));
        CK(te_convert(t, &src));
        te_arena_release(x->a, &src);
    } else
        *t = src;
    return 0;
}

enum { D_STATS = 1, D_PARK = 2, D_OUT = 4 };

/* Core [cy0,cy1) x [cx0,cx1) of tile t's tensor (covering [y0,..) x [x0,..)):
 * accumulate statistics, park into m, or write to the NCHW output. */
static int drain(tctx *x, const te_tensor *t, int y0, int x0, int cy0, int cy1, int cx0, int cx1, int mode,
                 pmap *m, int tile, int level) {
    int rw = (int)t->ne[2], c = (int)t->ne[3], cw = cx1 - cx0;
    size_t es = m && m->f16 ? 2 : 4, nb = (size_t)(cy1 - cy0) * cw * c * es;
    if (m && (!x->planning || x->plan_only)) {
        m->bytes[tile] = nb;
        x->parked += nb;
        if (x->parked > x->parked_peak) x->parked_peak = x->parked;
    }
    if (x->planning) return 0;
    char *blob = NULL;
    if (m && !(blob = m->blob[tile] = blob_alloc(nb))) {
        snprintf(x->err, x->errlen, "VAE tiled: out of memory parking %zu bytes", nb);
        return -1;
    }
    size_t row = (size_t)rw * c * 4;
    if (stage_fit(x, row > STAGE_BYTES ? row : STAGE_BYTES)) return -1;
    int chunk = (int)(x->stage_cap / row);
    int Ho = x->h << level, Wo = x->w << level;
    for (int r = cy0 - y0; r < cy1 - y0; r += chunk) {
        int n = imin(chunk, cy1 - y0 - r);
        te_tensor vw = view_rows(t, r, n);
        CK(te_tensor_download(&vw, x->stage));
        for (int i = 0; i < n; i++) {
            const float *p = (const float *)x->stage + ((size_t)i * rw + (cx0 - x0)) * c;
            int y = y0 + r + i;
            if (mode & D_STATS) {
                double *s = x->sum, *q = x->sq;
                for (int px = 0; px < cw; px++, p += c)
                    for (int ch = 0; ch < c; ch++) {
                        double d = p[ch];
                        s[ch] += d;
                        q[ch] += d * d;
                    }
                p -= (size_t)cw * c;
            }
            if (m) {
                size_t ne = (size_t)cw * c, off = (size_t)(y - cy0) * ne;
                if (m->f16) {
                    uint16_t *d = (uint16_t *)blob + off;
                    to_f16(x, d, p, ne);
                    for (size_t k = 0; k < ne; k++)
                        if ((d[k] & 0x7c00) == 0x7c00) {
                            snprintf(x->err, x->errlen,
                                     "VAE tiled: activation %g outside the f16 range (park_f16 = 0 parks in f32)",
                                     (double)p[k]);
                            return -1;
                        }
                } else
                    memcpy((float *)blob + off, p, ne * sizeof(float));
            }
            if (mode & D_OUT)
                for (int ch = 0; ch < c; ch++) {
                    float *d = x->out + ((size_t)ch * Ho + y) * Wo + cx0;
                    for (int px = 0; px < cw; px++) d[px] = p[(size_t)px * c + ch];
                }
        }
    }
    return 0;
}

/* ---- ops on one tile ------------------------------------------------------------ */

static int finish_stats(tctx *x, const pop *p);

typedef struct {
    te_tensor cur, sav;
    int st, cur_in;
    int y0, y1, x0, x1;            /* region of cur at its level */
} tstate;

static te_status new4(tctx *x, te_tensor *t, int64_t h, int64_t w, int64_t c) {
    int64_t ne[4] = {1, h, w, c};
    return te_arena_tensor(x->a, t, TE_F32, 4, ne);
}

/* cur := y; the old cur is released unless the saved register holds it. */
static void set_cur(tctx *x, tstate *s, const te_tensor *y) {
    if (s->st == S_CUR) {
        s->sav = s->cur;
        s->st = s->cur_in ? S_IN_CUR : S_OWN;
    } else
        te_arena_release(x->a, &s->cur);
    s->cur = *y;
    s->cur_in = 0;
}
static void drop_saved(tctx *x, tstate *s) {
    if (s->st != S_NONE && s->st != S_CUR) te_arena_release(x->a, &s->sav);
    s->st = S_NONE;
}

static int apply(tctx *x, const sweep *w, const pop *p, tstate *s) {
    te_tensor y, *cur = &s->cur;
    int64_t rh = cur->ne[1], rw = cur->ne[2];
    switch (p->kind) {
    case P_SAVE:
        drop_saved(x, s);
        s->st = S_CUR;
        return 0;
    case P_NORM: {
        te_tensor A, B;
        int64_t nc[1] = {p->cin};
        if (x->inl && !x->planning && !x->known[p->norm]) {   /* the tile is the whole map */
            memset(x->sum, 0, sizeof(double) * (size_t)p->cin);
            memset(x->sq, 0, sizeof(double) * (size_t)p->cin);
            if (drain(x, cur, 0, 0, 0, (int)rh, 0, (int)rw, D_STATS, NULL, 0, p->lin) || finish_stats(x, p))
                return -1;
        }
        int inplace = s->st != S_CUR;   /* in place unless the saved register holds cur */
        if (inplace) y = *cur;
        else CK(new4(x, &y, rh, rw, p->cin));
        CK(te_arena_tensor(x->a, &A, TE_F32, 1, nc));
        CK(te_arena_tensor(x->a, &B, TE_F32, 1, nc));
        if (!x->planning) {
            CK(te_tensor_upload(&A, x->A[p->norm]));
            CK(te_tensor_upload(&B, x->B[p->norm]));
        }
        CK(te_mul(&y, cur, &A));
        CK(te_add(&y, &y, &B));
        if (p->silu) CK(te_silu(&y, &y));
        te_arena_release(x->a, &B);
        te_arena_release(x->a, &A);
        if (inplace) {
            s->cur_in = 0;
            return 0;
        }
        break;
    }
    case P_CONV: {
        te_conv2d_params cp = {.stride_h = 1, .stride_w = 1, .pad_h = p->k / 2, .pad_w = p->k / 2};
        CK(new4(x, &y, rh, rw, p->cout));
        CK(te_conv2d(&y, cur, (te_tensor *)p->w, p->b, NULL, &cp));
        break;
    }
    case P_DOWN: {
        /* diffusers: F.pad (0,1,0,1) then 3x3 stride 2; the region starts on an even row/column */
        te_conv2d_params cp = {.stride_h = 2, .stride_w = 2, .pad_bottom = 1, .pad_right = 1};
        CK(new4(x, &y, rh / 2, rw / 2, p->cout));
        CK(te_conv2d(&y, cur, (te_tensor *)p->w, p->b, NULL, &cp));
        s->y0 /= 2, s->y1 /= 2, s->x0 /= 2, s->x1 /= 2;
        break;
    }
    case P_UP:
        CK(new4(x, &y, rh * 2, rw * 2, p->cin));
        CK(te_upsample_nearest2x(&y, cur));
        s->y0 *= 2, s->y1 *= 2, s->x0 *= 2, s->x1 *= 2;
        break;
    case P_CONV_RES: {
        const te_tensor *r = s->st == S_CUR ? cur : &s->sav;
        te_tensor sc;
        te_conv2d_params p3 = {.stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1}, p1 = {.stride_h = 1, .stride_w = 1};
        if (s->st == S_NONE) {
            snprintf(x->err, x->errlen, "VAE tiled: internal: residual missing");
            return -1;
        }
        if (p->scw) {
            CK(new4(x, &sc, rh, rw, p->cout));
            CK(te_conv2d(&sc, r, (te_tensor *)p->scw, p->scb, NULL, &p1));
            r = &sc;
        }
        CK(new4(x, &y, rh, rw, p->cout));
        CK(te_conv2d(&y, cur, (te_tensor *)p->w, p->b, r, &p3));
        if (p->scw) te_arena_release(x->a, &sc);
        drop_saved(x, s);
        break;
    }
    case P_ATTN: {
        const tmv_attn_w *a = p->aw;
        int64_t tk[3] = {1, rh * rw, p->cin};
        te_tensor ct, rt, yt, q, o, kk, vv;
        const te_tensor *K = &w->K, *V = &w->V;
        if (s->st == S_NONE) {
            snprintf(x->err, x->errlen, "VAE tiled: internal: residual missing");
            return -1;
        }
        te_tensor_reshape(&ct, cur, 3, tk);
        te_tensor_reshape(&rt, s->st == S_CUR ? cur : &s->sav, 3, tk);
        if (w->attn < 0) {   /* one tile: its keys/values are the whole map's */
            CK(te_arena_tensor(x->a, &kk, TE_F32, 3, tk));
            CK(te_arena_tensor(x->a, &vv, TE_F32, 3, tk));
            CK(te_linear(&kk, &ct, a->wk, a->bk, NULL));
            CK(te_linear(&vv, &ct, a->wv, a->bv, NULL));
            K = &kk, V = &vv;
        }
        CK(te_arena_tensor(x->a, &q, TE_F32, 3, tk));
        CK(te_linear(&q, &ct, a->wq, a->bq, NULL));
        CK(te_arena_tensor(x->a, &o, TE_F32, 3, tk));
        te_attn_params ap = {.n_heads = 1, .scale = 0, .layout = TE_ATTN_TOKENS};
        CK(te_attention(&o, &q, K, V, &ap));
        te_arena_release(x->a, &q);
        if (w->attn < 0) {
            te_arena_release(x->a, &vv);
            te_arena_release(x->a, &kk);
        }
        CK(new4(x, &y, rh, rw, p->cin));
        te_tensor_reshape(&yt, &y, 3, tk);
        CK(te_linear(&yt, &o, a->wo, a->bo, &rt));
        te_arena_release(x->a, &o);
        drop_saved(x, s);
        break;
    }
    default:
        return -1;
    }
    set_cur(x, s, &y);
    return 0;
}

/* Tile t's region at level l with halo hl, clipped to the map. */
static void region(const tctx *x, int t, int l, int hl, tstate *s) {
    int ty = t / x->nx, tx = t % x->nx;
    s->y0 = imax(0, (x->ys[ty] << l) - hl), s->y1 = imin(x->h << l, (x->ys[ty + 1] << l) + hl);
    s->x0 = imax(0, (x->xs[tx] << l) - hl), s->x1 = imin(x->w << l, (x->xs[tx + 1] << l) + hl);
}

static int start_tile(tctx *x, const sweep *w, int t, int halo, tstate *s) {
    const pop *o = x->P->ops;
    memset(s, 0, sizeof *s);
    region(x, t, o[w->s].lin, halo, s);
    s->cur_in = 1;
    if (load(x, &s->cur, x->cur, o[w->s].cin, s->y0, s->y1, s->x0, s->x1)) return -1;
    if (x->res) {
        if (load(x, &s->sav, x->res, x->res->c, s->y0, s->y1, s->x0, s->x1)) return -1;
        s->st = S_IN_RES;
    } else
        s->st = x->res_alias ? S_CUR : S_NONE;
    return 0;
}

/* Keys and values of tile t's core tokens, into rows tok[t].. of K and V. */
static int kv_tile(tctx *x, const sweep *w, int t) {
    const pop *o = x->P->ops;
    const tmv_attn_w *a = o[w->attn].aw;
    tstate s;
    if (start_tile(x, w, t, 0, &s)) return -1;
    for (int i = w->s; i < w->attn; i++)
        if (apply(x, w, &o[i], &s)) return -1;
    int64_t n = s.cur.ne[1] * s.cur.ne[2], tk[3] = {1, n, s.cur.ne[3]};
    te_tensor ht, kv = view_rows(&w->K, w->tok[t], n), vv = view_rows(&w->V, w->tok[t], n);
    te_tensor_reshape(&ht, &s.cur, 3, tk);
    CK(te_linear(&kv, &ht, a->wk, a->bk, NULL));
    CK(te_linear(&vv, &ht, a->wv, a->bv, NULL));
    drop_saved(x, &s);
    te_arena_release(x->a, &s.cur);
    return 0;
}

static int run_tile(tctx *x, const sweep *w, int t) {
    const pop *o = x->P->ops;
    tstate s;
    if (start_tile(x, w, t, w->halo, &s)) return -1;
    for (int i = w->s; i < w->e; i++)
        if (apply(x, w, &o[i], &s)) return -1;
    int l = o[w->e - 1].lout, ty = t / x->nx, tx = t % x->nx;
    int cy0 = x->ys[ty] << l, cy1 = x->ys[ty + 1] << l, cx0 = x->xs[tx] << l, cx1 = x->xs[tx + 1] << l;
    if (x->inl && w->e < x->P->n) {   /* inline norms used the sums: restart them for the end norm */
        memset(x->sum, 0, sizeof(double) * (size_t)o[w->e].cin);
        memset(x->sq, 0, sizeof(double) * (size_t)o[w->e].cin);
    }
    if (w->e == x->P->n) {
        if (x->out && drain(x, &s.cur, s.y0, s.x0, cy0, cy1, cx0, cx1, D_OUT, NULL, t, l)) return -1;
    } else if (drain(x, &s.cur, s.y0, s.x0, cy0, cy1, cx0, cx1, D_STATS, w->park ? w->ncur : NULL, t, l))
        return -1;
    if (w->park && s.st == S_OWN && drain(x, &s.sav, s.y0, s.x0, cy0, cy1, cx0, cx1, 0, w->nres, t, l)) return -1;
    drop_saved(x, &s);
    te_arena_release(x->a, &s.cur);
    return 0;
}

/* ---- sweeps ---------------------------------------------------------------------- */

/* Halo at the sweep's input level: the receptive field of its convolutions
 * (3x3: +1; stride-2 down: 2r+1; nearest up: ceil(r/2)), rounded up so that
 * every stride-2 conv starts on an even row. */
static int sweep_halo(const tctx *x, int s, int e) {
    const pop *o = x->P->ops;
    int need = 0, downs = 0;
    for (int i = e - 1; i >= s; i--) switch (o[i].kind) {
        case P_CONV: need += o[i].k / 2; break;
        case P_CONV_RES: need += 1; break;
        case P_DOWN: need = 2 * need + 1, downs++; break;
        case P_UP: need = (need + 1) / 2; break;
        default: break;
        }
    if (x->pad > 0) {
        int j = o[s].lin, sh = x->L - 1 - j;
        need = x->enc ? (x->pad + (1 << sh) - 1) >> sh : x->pad << j;
    }
    int al = 1 << downs;
    return (need + al - 1) / al * al;
}

static int sweep_pass(tctx *x, sweep *w) {
    x->planning = te_arena_planning(x->a);
    int acct = !x->planning || x->plan_only;
    if (w->attn >= 0) {
        const pop *a = &x->P->ops[w->attn];
        int64_t tk[3] = {1, (int64_t)(x->h << a->lin) * (x->w << a->lin), a->cin};
        CK(te_arena_tensor(x->a, &w->K, TE_F32, 3, tk));
        CK(te_arena_tensor(x->a, &w->V, TE_F32, 3, tk));
        for (int t = 0; t < x->nt; t++)
            if (kv_tile(x, w, t)) return -1;
    }
    for (int t = 0; t < x->nt; t++) {
        if (run_tile(x, w, t)) return -1;
        if (acct && w->replace)   /* free the input blobs no later tile reads */
            for (int u = 0; u < x->nt; u++)
                if (w->last[u] == t) {
                    if (!w->move_cur) pmap_drop(x, x->cur, u);
                    if (!w->move_res) pmap_drop(x, x->res, u);
                }
    }
    if (w->attn >= 0) {
        te_arena_release(x->a, &w->V);
        te_arena_release(x->a, &w->K);
    }
    size_t pk = te_arena_peak(x->a);
    if (pk > x->arena_peak) x->arena_peak = pk;
    return 0;
}

static int do_sweep(tctx *x, sweep *w) {
    const pop *o = x->P->ops;
    int n = x->P->n, rc = -1;
    w->halo = x->inl ? 0 : sweep_halo(x, w->s, w->e);
    x->max_halo = imax(x->max_halo, w->halo);
    w->attn = -1;
    for (int i = w->s; i < w->e && !x->inl; i++)
        if (o[i].kind == P_ATTN) {
            for (int k = w->s; k < i; k++)
                if (o[k].kind != P_SAVE && o[k].kind != P_NORM) {
                    snprintf(x->err, x->errlen, "VAE tiled: internal: attention sweep not starting at its norm");
                    return -1;
                }
            w->attn = i;
        }
    /* what the saved register holds at the end (mirrors apply) */
    int st = x->res ? S_IN_RES : x->res_alias ? S_CUR : S_NONE, cur_in = 1, sav_c = x->res ? x->res->c : 0;
    for (int i = w->s; i < w->e; i++) {
        if (o[i].kind == P_SAVE) st = S_CUR, sav_c = o[i].cin;
        else if (o[i].kind == P_CONV_RES || o[i].kind == P_ATTN) st = S_NONE, cur_in = 0;
        else {
            if (st == S_CUR) st = cur_in ? S_IN_CUR : S_OWN;
            cur_in = 0;
        }
    }
    w->end_src = st;
    w->park = w->e < n && !x->inl && (!x->recompute || o[w->e].ck);
    w->replace = w->park || w->e == n;
    w->move_cur = w->park && st == S_IN_CUR;
    w->move_res = w->park && st == S_IN_RES;
    w->nres_alias = w->park && st == S_CUR;
    w->last = calloc((size_t)x->nt, sizeof *w->last);
    w->tok = calloc((size_t)x->nt, sizeof *w->tok);
    if (!w->last || !w->tok) goto oom;
    if (w->park) {
        if (!(w->ncur = pmap_new(x, o[w->e].lin, o[w->e].cin, x->f16))) goto oom;
        if (st == S_OWN && !(w->nres = pmap_new(x, o[w->e].lin, sav_c, x->f16))) goto oom;
    }
    /* last tile whose region reads each input core; key rows of each tile */
    int l = o[w->s].lin;
    for (int t = 0; t < x->nt; t++) {
        tstate r;
        region(x, t, l, w->halo, &r);
        for (int u = 0; u < x->nt; u++) {
            int uy = u / x->nx, ux = u % x->nx;
            if ((x->ys[uy] << l) < r.y1 && (x->ys[uy + 1] << l) > r.y0 && (x->xs[ux] << l) < r.x1 &&
                (x->xs[ux + 1] << l) > r.x0)
                w->last[u] = t;
        }
        if (w->attn >= 0 && t + 1 < x->nt) {
            int la = o[w->attn].lin, ty = t / x->nx, tx = t % x->nx;
            w->tok[t + 1] = w->tok[t] + (int64_t)((x->ys[ty + 1] - x->ys[ty]) << la) * ((x->xs[tx + 1] - x->xs[tx]) << la);
        }
    }
    memset(x->sum, 0, sizeof(double) * (size_t)(w->e < n ? o[w->e].cin : 0));
    memset(x->sq, 0, sizeof(double) * (size_t)(w->e < n ? o[w->e].cin : 0));
    te_arena_begin_plan(x->a);
    if (sweep_pass(x, w)) goto out;
    if (!x->plan_only) {
        if (te_arena_reserve(x->a) != TE_OK) {
            fail(x, "te_arena_reserve");
            goto out;
        }
        te_arena_begin_run(x->a);
        if (sweep_pass(x, w)) goto out;
    }
    x->sweeps++;
    if (w->replace) {
        pmap *oc = x->cur, *orr = x->res;
        x->cur = w->ncur, w->ncur = NULL;
        x->res = w->move_cur ? oc : w->move_res ? orr : w->nres;
        if (x->res == w->nres) w->nres = NULL;
        x->res_alias = w->nres_alias;
        if (!w->move_cur) pmap_free(x, oc);
        if (!w->move_res) pmap_free(x, orr);
        x->ck_op = w->e;
    }
    rc = 0;
    goto out;
oom:
    snprintf(x->err, x->errlen, "out of memory");
out:
    pmap_free(x, w->ncur);
    pmap_free(x, w->nres);
    free(w->last);
    free(w->tok);
    return rc;
}

/* Statistics of norm op e from the sums of the last sweep. */
static int finish_stats(tctx *x, const pop *p) {
    int G = x->v->groups, C = p->cin, cg = C / G;
    if (x->plan_only) {
        x->known[p->norm] = 1;
        return 0;
    }
    double mean[4096], var[4096], cnt = (double)(x->h << p->lin) * (double)(x->w << p->lin) * cg;
    for (int g = 0; g < G; g++) {
        double s = 0, q = 0;
        for (int c = g * cg; c < (g + 1) * cg; c++) s += x->sum[c], q += x->sq[c];
        mean[g] = s / cnt;
        var[g] = q / cnt - mean[g] * mean[g];
        if (var[g] < 0) var[g] = 0;
    }
    if (set_stats(x, p->norm, C, mean, var)) {
        snprintf(x->err, x->errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Run sweeps until the output is written (or, with stop_norm >= 0, until
 * that norm's statistics are known). */
static int drive(tctx *x, int stop_norm) {
    const pop *o = x->P->ops;
    int n = x->P->n;
    x->ck_op = 0;
    if (x->nt == 1) {   /* one sweep; each norm's statistics come from the tile itself */
        sweep w;
        memset(&w, 0, sizeof w);
        w.e = n;
        for (int i = 0; i < n && stop_norm >= 0; i++)
            if (o[i].kind == P_NORM && o[i].norm == stop_norm) w.e = i;
        x->inl = 1;
        if (do_sweep(x, &w)) return -1;
        return w.e < n ? finish_stats(x, &o[w.e]) : 0;
    }
    for (;;) {
        if (stop_norm >= 0 && x->known[stop_norm]) return 0;
        sweep w;
        memset(&w, 0, sizeof w);
        w.s = x->ck_op;
        w.e = w.s;
        while (w.e < n && !(o[w.e].kind == P_NORM && !x->known[o[w.e].norm])) w.e++;
        if (do_sweep(x, &w)) return -1;
        if (w.e == n) return 0;
        if (finish_stats(x, &o[w.e])) return -1;
    }
}

/* ---- fast mode estimate ------------------------------------------------------------ */

/* tiling.md 3.5: nearest-exact downsample of in [C,H,W] to [C,Hd,Wd], each
 * channel's mean/std (unbiased) matched to in's, clamped to in's range. */
static float *downsample_input(const float *in, int C, int H, int W, int Hd, int Wd) {
    size_t nd = (size_t)Hd * Wd, n = (size_t)H * W;
    float *zd = malloc((size_t)C * nd * sizeof *zd);
    if (!zd) return NULL;
    double lo = INFINITY, hi = -INFINITY;
    for (int c = 0; c < C; c++) {
        const float *s = in + (size_t)c * n;
        float *d = zd + (size_t)c * nd;
        for (int y = 0; y < Hd; y++) {
            int sy = imin((int)floor((y + 0.5) * H / Hd), H - 1);
            for (int x = 0; x < Wd; x++) d[(size_t)y * Wd + x] = s[(size_t)sy * W + imin((int)floor((x + 0.5) * W / Wd), W - 1)];
        }
        double m = 0, md = 0, v = 0, vd = 0;
        for (size_t i = 0; i < n; i++) {
            m += s[i];
            lo = s[i] < lo ? s[i] : lo, hi = s[i] > hi ? s[i] : hi;
        }
        for (size_t i = 0; i < nd; i++) md += d[i];
        m /= (double)n, md /= (double)nd;
        for (size_t i = 0; i < n; i++) v += (s[i] - m) * (s[i] - m);
        for (size_t i = 0; i < nd; i++) vd += (d[i] - md) * (d[i] - md);
        double sd = n > 1 ? sqrt(v / (double)(n - 1)) : 0, sdd = nd > 1 ? sqrt(vd / (double)(nd - 1)) : 0;
        for (size_t i = 0; i < nd; i++) d[i] = (float)(sdd > 0 ? (d[i] - md) / sdd * sd + m : m);
    }
    for (size_t i = 0; i < (size_t)C * nd; i++) zd[i] = (float)(zd[i] < lo ? lo : zd[i] > hi ? hi : zd[i]);
    return zd;
}

static void rep_merge(tmv_tile_report *r, const tctx *x) {
    r->sweeps += x->sweeps;
    r->max_halo = imax(r->max_halo, x->max_halo);
    if (x->arena_peak > r->arena_peak) r->arena_peak = x->arena_peak;
    if (x->parked_peak > r->parked_peak) r->parked_peak = x->parked_peak;
}

/* One image: in = NCHW network input, out = NCHW output (NULL while planning). */
static int image_run(tmv_vae *v, const prog *P, int enc, const float *in, float in_scale, int h, int w, int T,
                     const tmv_tile_options *o, int plan_only, float *out, tmv_tile_report *rep, char *err,
                     size_t errlen) {
    tctx x;
    int rc = -1;
    if (ctx_init(&x, v, P, enc, h, w, T, o, plan_only, err, errlen)) goto done;
    x.in = in, x.in_scale = in_scale, x.out = out;
    rep->tiles_y = x.ny, rep->tiles_x = x.nx;
    int fast = o->fast && x.nt > 1;
    if (fast) {
        int stop = -1, hd = imax(1, (int)((long long)h * T / imax(h, w))), wd = imax(1, (int)((long long)w * T / imax(h, w)));
        for (int i = 0; i < P->n; i++)
            if (P->ops[i].kind == P_NORM && P->ops[i].lin > 0) stop = P->ops[i].norm;
        const pop *o0 = &P->ops[0];
        float *zd = NULL;
        if (!plan_only &&
            !(zd = downsample_input(in, o0->cin, h << o0->lin, w << o0->lin, hd << o0->lin, wd << o0->lin))) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        tmv_tile_options eo = {0};
        tctx e;
        int erc = ctx_init(&e, v, P, enc, hd, wd, imax(hd, wd), &eo, plan_only, err, errlen);
        e.in = zd, e.in_scale = in_scale;
        if (!erc) erc = drive(&e, stop);
        if (!erc) {
            rep_merge(rep, &e);
            for (int i = 0; i < P->n && fast; i++) {
                const pop *p = &P->ops[i];
                if (p->kind != P_NORM || p->lin == 0 || plan_only) continue;
                for (int g = 0; g < v->groups; g++)
                    if (!isfinite(e.mean[p->norm][g]) || !isfinite(e.var[p->norm][g])) fast = 0;
            }
            for (int i = 0; i < P->n && fast; i++) {
                const pop *p = &P->ops[i];
                if (p->kind != P_NORM || p->lin == 0) continue;
                if (plan_only) x.known[p->norm] = 1;
                else if (set_stats(&x, p->norm, p->cin, e.mean[p->norm], e.var[p->norm])) {
                    snprintf(err, errlen, "out of memory");
                    erc = -1;
                }
            }
        }
        ctx_free(&e);
        free(zd);
        if (erc) goto done;
    }
    rep->fast = fast;
    if (drive(&x, -1)) goto done;
    rc = 0;
done:
    rep_merge(rep, &x);
    ctx_free(&x);
    return rc;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* in/out: per-image NCHW strides in_n / out_n; h, w: latent grid. */
static int tiled(tmv_vae *v, int enc, const float *in, size_t in_n, int B, int h, int w, float *out, size_t out_n,
                 const tmv_tile_options *opt, tmv_tile_report *rep_out, int plan_only, char *err, size_t errlen) {
    double t0 = now_s();
    tmv_tile_options o = opt ? *opt : (tmv_tile_options){0};
    tmv_tile_report rep = {0};
    prog P;
    int rc = -1, f = tmv_downscale(v), T = 0;
    if (o.tile < 0 || o.pad < 0) {
        snprintf(err, errlen, "VAE tiled: negative tile (%d) or pad (%d)", o.tile, o.pad);
        return -1;
    }
    if (prog_build(&P, v, enc)) {
        snprintf(err, errlen, "VAE tiled: building the op list: %s", te_backend_error(v->be));
        prog_free(&P);
        return -1;
    }
    if (o.tile > 0) T = enc ? imax(1, o.tile / f) : o.tile;
    else {
        size_t budget = o.budget ? o.budget : v->arena_cap ? v->arena_cap : (size_t)1 << 30;
        if (v->arena_cap && budget > v->arena_cap) budget = v->arena_cap;
        int m = imax(h, w), top = m < 8 ? m : (m + 7) / 8 * 8, step = m < 8 ? m : 8;
        size_t smallest = 0;
        for (int c = top; c >= 1 && !T; c -= step) {
            tmv_tile_report pr = {0};
            if (!image_run(v, &P, enc, NULL, 1, h, w, c, &o, 1, NULL, &pr, err, errlen) && pr.arena_peak <= budget)
                T = c;
            smallest = pr.arena_peak;
        }
        if (!T) {
            snprintf(err, errlen, "VAE tiled: no tile size fits the activation budget of %zu bytes (tile %d needs %zu)",
                     budget, imin(8, m), smallest);
            goto out;
        }
    }
    /* the whole job planned once: arena and parked peaks, one reservation */
    tmv_tile_report pr = {0};
    if (image_run(v, &P, enc, NULL, 1, h, w, T, &o, 1, NULL, &pr, err, errlen)) goto out;
    if (plan_only) rep = pr;
    else {
        if (te_arena_reserve_bytes(v->arena, pr.arena_peak) != TE_OK) {
            snprintf(err, errlen, "VAE tiled: %s", te_backend_error(v->be));
            goto out;
        }
        rep.fast = 1;
        for (int b = 0; b < B; b++) {
            tmv_tile_report r = {0};
            if (image_run(v, &P, enc, in + (size_t)b * in_n, enc ? 1.f : 1.f / v->sf, h, w, T, &o, 0,
                          out + (size_t)b * out_n, &r, err, errlen))
                goto out;
            rep.tiles_y = r.tiles_y, rep.tiles_x = r.tiles_x, rep.fast &= r.fast;
            rep.sweeps += r.sweeps, rep.max_halo = imax(rep.max_halo, r.max_halo);
            if (r.arena_peak > rep.arena_peak) rep.arena_peak = r.arena_peak;
            if (r.parked_peak > rep.parked_peak) rep.parked_peak = r.parked_peak;
        }
    }
    rep.tile = enc ? T * f : T;
    rc = 0;
out:
    prog_free(&P);
    rep.seconds = now_s() - t0;
    if (rep_out) *rep_out = rep;
    return rc;
}

int tmv_decode_tiled(tmv_vae *v, const float *latent, int B, int h, int w, float *image, const tmv_tile_options *o,
                     tmv_tile_report *rep, char *err, size_t errlen) {
    if (B < 1 || h < 1 || w < 1) {
        snprintf(err, errlen, "VAE decode: latent %dx%d (batch %d)", w, h, B);
        return -1;
    }
    int f = tmv_downscale(v);
    return tiled(v, 0, latent, (size_t)v->z * h * w, B, h, w, image, (size_t)3 * h * f * w * f, o, rep, 0, err,
                 errlen);
}

int tmv_encode_tiled(tmv_vae *v, const float *image, int B, int H, int W, float *mean, float *std,
                     const tmv_tile_options *o, tmv_tile_report *rep, char *err, size_t errlen) {
    int f = tmv_downscale(v);
    if (B < 1 || H < f || W < f || H % f || W % f) {
        snprintf(err, errlen, "VAE encode: image %dx%d (batch %d) must be a positive multiple of %d", W, H, B, f);
        return -1;
    }
    int h = H / f, w = W / f;
    size_t hw = (size_t)h * w;
    float *mom = malloc((size_t)B * 2 * v->z * hw * sizeof *mom);
    if (!mom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = tiled(v, 1, image, (size_t)3 * H * W, B, h, w, mom, 2 * v->z * hw, o, rep, 0, err, errlen);
    if (!rc) tmv__moments_to_posterior(v, mom, B, hw, mean, std);
    free(mom);
    return rc;
}

int tmv_tiled_plan(tmv_vae *v, int enc, int h, int w, const tmv_tile_options *o, tmv_tile_report *rep, char *err,
                   size_t errlen) {
    int f = tmv_downscale(v);
    if (h < 1 || w < 1 || (enc && (h % f || w % f))) {
        snprintf(err, errlen, "VAE tiled plan: size %dx%d", w, h);
        return -1;
    }
    return tiled(v, enc, NULL, 0, 1, enc ? h / f : h, enc ? w / f : w, NULL, 0, o, rep, 1, err, errlen);
}
