/*
 * resize.c -- Pillow-compatible resampling (see resize.h).
 *
 * This follows Pillow's libImaging/Resample.c arithmetic step by step so that
 * results agree with Image.resize to the level:
 *   - per axis, coefficients are computed in double for each output pixel
 *     (centre = (i + 0.5) * scale, support = filter support * max(scale, 1),
 *     window [(int)(centre - support + 0.5), (int)(centre + support + 0.5))),
 *     normalised to sum 1, then rounded to 22-bit fixed point;
 *   - the horizontal pass runs first, over the source rows the vertical pass
 *     will need, into an 8-bit intermediate image (rounded and clamped);
 *   - the vertical pass then produces the output, rounded and clamped.
 * The vertical pass is organised row-wise (accumulate whole source rows into
 * an int32 row) so the compiler can vectorise it; integer sums are exact, so
 * this ordering gives bit-identical results.
 *
 * Work is split by rows over a few pthreads.  Threads only read shared
 * inputs and write disjoint output rows; there is no shared mutable state.
 */
#include "resize.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PRECISION_BITS (32 - 8 - 2)
#define MAX_THREADS 64
/* Below this many output samples per pass threads cost more than they save. */
#define MIN_WORK_PER_THREAD (64 * 1024)

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- names --------------------------------------------------------------------- */

int tr_filter_from_name(const char *name, tr_filter *out) {
    static const struct { const char *name; tr_filter f; } map[] = {
        {"nearest", TR_NEAREST}, {"bilinear", TR_BILINEAR}, {"bicubic", TR_BICUBIC},
        {"lanczos", TR_LANCZOS}, {"none", TR_LANCZOS},
    };
    if (!name) return -1;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcasecmp(name, map[i].name) == 0) {
            *out = map[i].f;
            return 0;
        }
    }
    return -1;
}

const char *tr_filter_name(tr_filter f) {
    switch (f) {
    case TR_NEAREST: return "Nearest";
    case TR_BILINEAR: return "Bilinear";
    case TR_BICUBIC: return "Bicubic";
    case TR_LANCZOS: return "Lanczos";
    default: return "unknown";
    }
}

/* ---- kernels (Pillow's definitions) ------------------------------------------------ */

static double k_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double k_bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double k_lanczos(double x) {
    if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3);
    return 0.0;
}

/* ---- coefficient tables ------------------------------------------------------------ */

typedef struct {
    int ksize;      /* taps allocated per output pixel */
    int *bounds;    /* per output pixel: first source index, tap count */
    int32_t *k;     /* out * ksize fixed-point weights */
} coeffs;

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
}

static int coeffs_build(int in_size, int out_size, tr_filter f, coeffs *c) {
    double (*fn)(double);
    double fsupport;
    switch (f) {
    case TR_BILINEAR: fn = k_bilinear; fsupport = 1.0; break;
    case TR_BICUBIC: fn = k_bicubic; fsupport = 2.0; break;
    default: fn = k_lanczos; fsupport = 3.0; break;
    }
    memset(c, 0, sizeof(*c));
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = fsupport * filterscale;
    double ks = ceil(support) * 2 + 1;
    if (ks > (double)in_size + 2) ks = (double)in_size + 2; /* taps never exceed the input */
    c->ksize = (int)ks;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    c->k = malloc(sizeof(int32_t) * (size_t)c->ksize * (size_t)out_size);
    double *w = malloc(sizeof(double) * (size_t)c->ksize);
    if (!c->bounds || !c->k || !w) {
        free(w);
        coeffs_free(c);
        return -1;
    }
    double ss = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > c->ksize) xmax = c->ksize; /* cannot happen; keeps writes in bounds */
        if (xmax < 0) xmax = 0;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = fn((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = c->k + (size_t)xx * c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    free(w);
    return 0;
}

static inline uint8_t clip8(int32_t v) {
    if (v < 0) return 0;
    v >>= PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/* ---- passes --------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *in;       /* source image, in_w * ch bytes per row */
    int in_w;
    uint8_t *out;            /* destination, out_w * ch bytes per row */
    int out_w;
    int ch;
    int row_offset;          /* horizontal: output row r reads source row r + row_offset */
    const coeffs *c;
} pass_args;

/* Horizontal pass over output rows [r0, r1). */
static void pass_horizontal(const pass_args *a, int r0, int r1) {
    const int ch = a->ch, ksize = a->c->ksize;
    for (int r = r0; r < r1; r++) {
        const uint8_t *src = a->in + (size_t)(r + a->row_offset) * a->in_w * ch;
        uint8_t *dst = a->out + (size_t)r * a->out_w * ch;
        for (int xx = 0; xx < a->out_w; xx++) {
            const int xmin = a->c->bounds[xx * 2], n = a->c->bounds[xx * 2 + 1];
            const int32_t *k = a->c->k + (size_t)xx * ksize;
            const uint8_t *s = src + (size_t)xmin * ch;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0, s3 = s0;
            if (ch == 3) {
                for (int x = 0; x < n; x++, s += 3) {
                    s0 += s[0] * k[x];
                    s1 += s[1] * k[x];
                    s2 += s[2] * k[x];
                }
                dst[xx * 3] = clip8(s0);
                dst[xx * 3 + 1] = clip8(s1);
                dst[xx * 3 + 2] = clip8(s2);
            } else {
                for (int x = 0; x < n; x++, s += 4) {
                    s0 += s[0] * k[x];
                    s1 += s[1] * k[x];
                    s2 += s[2] * k[x];
                    s3 += s[3] * k[x];
                }
                dst[xx * 4] = clip8(s0);
                dst[xx * 4 + 1] = clip8(s1);
                dst[xx * 4 + 2] = clip8(s2);
                dst[xx * 4 + 3] = clip8(s3);
            }
        }
    }
}

/* Vertical pass over output rows [r0, r1); in and out have the same width. */
static void pass_vertical(const pass_args *a, int r0, int r1) {
    enum { BLOCK = 2048 };
    int32_t acc[BLOCK];
    const size_t row = (size_t)a->out_w * a->ch;
    const int ksize = a->c->ksize;
    for (int r = r0; r < r1; r++) {
        const int ymin = a->c->bounds[r * 2], n = a->c->bounds[r * 2 + 1];
        const int32_t *k = a->c->k + (size_t)r * ksize;
        uint8_t *dst = a->out + (size_t)r * row;
        for (size_t b0 = 0; b0 < row; b0 += BLOCK) {
            const size_t bn = row - b0 < BLOCK ? row - b0 : BLOCK;
            for (size_t i = 0; i < bn; i++) acc[i] = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < n; y++) {
                const uint8_t *s = a->in + (size_t)(ymin + y) * row + b0;
                const int32_t kv = k[y];
                for (size_t i = 0; i < bn; i++) acc[i] += s[i] * kv;
            }
            for (size_t i = 0; i < bn; i++) dst[b0 + i] = clip8(acc[i]);
        }
    }
}

/* ---- a tiny parallel-for over rows -------------------------------------------------- */

typedef void (*pass_fn)(const pass_args *, int, int);

typedef struct {
    pass_fn fn;
    const pass_args *args;
    int r0, r1;
} job;

static void *job_run(void *p) {
    job *j = p;
    j->fn(j->args, j->r0, j->r1);
    return NULL;
}

static void parallel_rows(pass_fn fn, const pass_args *args, int rows, size_t work,
                          int nthreads) {
    int n = nthreads;
    if ((size_t)n > work / MIN_WORK_PER_THREAD) n = (int)(work / MIN_WORK_PER_THREAD);
    if (n > rows) n = rows;
    if (n < 1) n = 1;
    if (n == 1) {
        fn(args, 0, rows);
        return;
    }
    job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < n; t++) {
        jobs[t].fn = fn;
        jobs[t].args = args;
        jobs[t].r0 = (int)((int64_t)rows * t / n);
        jobs[t].r1 = (int)((int64_t)rows * (t + 1) / n);
    }
    /* Job 0 runs on this thread; a thread that fails to start runs inline. */
    for (int t = 1; t < n; t++)
        started[t] = pthread_create(&tid[t], NULL, job_run, &jobs[t]) == 0;
    job_run(&jobs[0]);
    for (int t = 1; t < n; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            job_run(&jobs[t]);
    }
}

/* ---- alpha ------------------------------------------------------------------------------ */

/* Pillow's RGBA -> RGBa and RGBa -> RGBA conversions (Convert.c). */
static void premultiply(uint8_t *p, size_t npx) {
    for (size_t i = 0; i < npx; i++, p += 4) {
        unsigned a = p[3], t;
        for (int c = 0; c < 3; c++) {
            t = p[c] * a + 128;
            p[c] = (uint8_t)(((t >> 8) + t) >> 8);
        }
    }
}

static void unpremultiply(uint8_t *p, size_t npx) {
    for (size_t i = 0; i < npx; i++, p += 4) {
        unsigned a = p[3];
        if (a == 0 || a == 255) continue;
        for (int c = 0; c < 3; c++) {
            unsigned v = 255u * p[c] / a;
            p[c] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

/* ---- nearest ------------------------------------------------------------------------------ */

/* Pillow resizes NEAREST through an affine transform whose source coordinate
 * starts at scale/2 and is advanced by adding scale; we accumulate the same
 * way so that ties fall on the same side. */
static int *nearest_table(int in_size, int out_size) {
    int *t = malloc(sizeof(int) * (size_t)out_size);
    if (!t) return NULL;
    double scale = (double)in_size / out_size, pos = scale * 0.5;
    for (int i = 0; i < out_size; i++, pos += scale) {
        int v = pos < 0.0 ? 0 : (int)pos;
        t[i] = v >= in_size ? in_size - 1 : v;
    }
    return t;
}

static int resize_nearest(const ti_image *src, ti_image *dst, char *err, size_t errlen) {
    int *xt = nearest_table(src->width, dst->width);
    int *yt = nearest_table(src->height, dst->height);
    if (!xt || !yt) {
        free(xt);
        free(yt);
        seterr(err, errlen, "resize: out of memory");
        return -1;
    }
    const int ch = src->channels;
    for (int y = 0; y < dst->height; y++) {
        const uint8_t *s = src->pixels + (size_t)yt[y] * src->width * ch;
        uint8_t *d = dst->pixels + (size_t)y * dst->width * ch;
        for (int x = 0; x < dst->width; x++)
            memcpy(d + (size_t)x * ch, s + (size_t)xt[x] * ch, (size_t)ch);
    }
    free(xt);
    free(yt);
    return 0;
}

/* ---- entry points --------------------------------------------------------------------- */

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > MAX_THREADS ? MAX_THREADS : (int)n;
}

int tr_resize_threads(const ti_image *src, int dst_w, int dst_h, tr_filter f,
                      int nthreads, ti_image *dst, char *err, size_t errlen) {
    memset(dst, 0, sizeof(*dst));
    if (!src || !src->pixels || src->width <= 0 || src->height <= 0 ||
        (src->channels != 3 && src->channels != 4)) {
        seterr(err, errlen, "resize: invalid source image");
        return -1;
    }
    if (f != TR_NEAREST && f != TR_BILINEAR && f != TR_BICUBIC && f != TR_LANCZOS) {
        seterr(err, errlen, "resize: unknown filter %d", (int)f);
        return -1;
    }
    if (nthreads < 0) {
        seterr(err, errlen, "resize: negative thread count %d", nthreads);
        return -1;
    }
    if (nthreads == 0) nthreads = online_cpus();
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (ti_image_alloc(dst, dst_w, dst_h, src->channels, err, errlen) != 0) return -1;

    const int ch = src->channels;
    if (dst_w == src->width && dst_h == src->height) {
        memcpy(dst->pixels, src->pixels, (size_t)dst_w * dst_h * ch);
        return 0;
    }
    if (f == TR_NEAREST) {
        if (resize_nearest(src, dst, err, errlen) != 0) goto fail;
        return 0;
    }

    coeffs ch_h = {0}, ch_v = {0};
    uint8_t *pre = NULL, *tmp = NULL;
    int need_h = dst_w != src->width, need_v = dst_h != src->height;
    if ((need_h && coeffs_build(src->width, dst_w, f, &ch_h) != 0) ||
        (need_v && coeffs_build(src->height, dst_h, f, &ch_v) != 0)) {
        seterr(err, errlen, "resize: out of memory");
        goto fail_pass;
    }
    const uint8_t *in = src->pixels;
    if (ch == 4) {
        size_t n = (size_t)src->width * src->height * 4;
        pre = malloc(n);
        if (!pre) {
            seterr(err, errlen, "resize: out of memory");
            goto fail_pass;
        }
        memcpy(pre, src->pixels, n);
        premultiply(pre, (size_t)src->width * src->height);
        in = pre;
    }

    if (need_h) {
        /* Only the source rows the vertical pass reads. */
        int first = 0, last = src->height;
        if (need_v) {
            first = ch_v.bounds[0];
            last = ch_v.bounds[(dst_h - 1) * 2] + ch_v.bounds[(dst_h - 1) * 2 + 1];
            for (int i = 0; i < dst_h; i++) ch_v.bounds[i * 2] -= first;
        }
        uint8_t *hout = dst->pixels;
        if (need_v) {
            tmp = malloc((size_t)dst_w * (size_t)(last - first) * ch);
            if (!tmp) {
                seterr(err, errlen, "resize: out of memory");
                goto fail_pass;
            }
            hout = tmp;
        }
        pass_args ha = {in, src->width, hout, dst_w, ch, first, &ch_h};
        parallel_rows(pass_horizontal, &ha, last - first,
                      (size_t)dst_w * (size_t)(last - first) * ch_h.ksize, nthreads);
        in = tmp;
    }
    if (need_v) {
        pass_args va = {in, dst_w, dst->pixels, dst_w, ch, 0, &ch_v};
        parallel_rows(pass_vertical, &va, dst_h,
                      (size_t)dst_w * (size_t)dst_h * ch_v.ksize, nthreads);
    }
    if (ch == 4) unpremultiply(dst->pixels, (size_t)dst_w * dst_h);

    free(tmp);
    free(pre);
    coeffs_free(&ch_h);
    coeffs_free(&ch_v);
    return 0;

fail_pass:
    free(tmp);
    free(pre);
    coeffs_free(&ch_h);
    coeffs_free(&ch_v);
fail:
    ti_image_free(dst);
    return -1;
}

int tr_resize(const ti_image *src, int dst_w, int dst_h, tr_filter f, ti_image *dst,
              char *err, size_t errlen) {
    return tr_resize_threads(src, dst_w, dst_h, f, 0, dst, err, errlen);
}
