/*
 * img_blur.c -- the two Gaussian blurs of A1111 inpainting, each bit-exact
 * to the library A1111 calls (see img_ops.h):
 *
 *   - the mask blur is OpenCV's cv2.GaussianBlur on uint8.  Since OpenCV 4.0
 *     the 8-bit path is "bit-exact": the kernel is computed in (soft) double,
 *     quantised to 8 fractional bits by error diffusion so the taps sum to
 *     exactly 1.0, and applied in integer arithmetic with one rounding,
 *     (sum + 128) >> 8.  A1111 blurs with a (k,1) kernel and then, in a
 *     second call, a (1,k) kernel, so every call here is one-dimensional.
 *     OpenCV computes exp() with its own soft-float library; libm's exp can
 *     differ by an ulp, which could only matter if a quantised weight sat
 *     exactly on a rounding boundary (not seen in any tested sigma).
 *
 *   - masked content "fill" uses Pillow's ImageFilter.GaussianBlur, which is
 *     not a Gaussian convolution but three passes of an "extended" box blur
 *     per axis (Gwosdek et al., SSVM 2011): a box of integer radius plus a
 *     fractional weight on the two next pixels, in 24-bit fixed point, the
 *     box radius derived from sigma in single precision.  The code below
 *     follows Pillow's libImaging/BoxBlur.c arithmetic (HPND licence)
 *     step by step, including its unsigned wrap-around accumulators and the
 *     edge handling when the radius exceeds the line length.
 *
 * Floating-point contraction is disabled: the single-precision radius
 * formula must round after every operation, as Pillow's C does on x86-64.
 */
#include "img_ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ==== OpenCV GaussianBlur, 8-bit, bit-exact path ================================== */

int tio_blur_ksize(double sigma) {
    return 2 * (int)(2.5 * sigma + 0.5) + 1;
}

/* OpenCV's getGaussianKernelBitExact followed by its error-diffusion
 * quantisation to 8 fractional bits (smooth.dispatch.cpp).  k: n taps,
 * summing to 256. */
static int cv_kernel(int n, double sigma, int32_t *k) {
    double *w = malloc(sizeof(double) * (size_t)n);
    if (!w) return -1;
    static const double bin3[] = {0.25, 0.5, 0.25};
    static const double bin5[] = {0.0625, 0.25, 0.375, 0.25, 0.0625};
    static const double bin7[] = {0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125};
    static const double bin9[] = {4 / 256., 13 / 256., 28 / 256., 42 / 256., 50 / 256.,
                                  42 / 256., 28 / 256., 13 / 256., 4 / 256.};
    const double *table = NULL;
    if (sigma <= 0) {
        switch (n) {
        case 1: w[0] = 1.0; table = w; break;
        case 3: table = bin3; break;
        case 5: table = bin5; break;
        case 7: table = bin7; break;
        case 9: table = bin9; break;
        default: break;
        }
    }
    if (table) {
        if (table != w) memcpy(w, table, sizeof(double) * (size_t)n);
    } else {
        /* sigma <= 0: OpenCV's mulAdd(n, 0.15, 0.35) is a fused multiply-add. */
        double sx = sigma > 0 ? sigma : fma((double)n, 0.15, 0.35);
        double scale2x = -0.125 / (sx * sx); /* x below steps by 2: x^2/4 = d^2 */
        int n2 = (n - 1) / 2;
        double sum = 0.0;
        for (int i = 0, x = 1 - n; i < n2; i++, x += 2) {
            double t = exp((double)(x * x) * scale2x);
            w[i] = t;
            sum += t;
        }
        sum *= 2.0;
        sum += 1.0;
        if ((n & 1) == 0) sum += 1.0;
        double mul1 = 1.0 / sum;
        for (int i = 0; i < n2; i++) {
            w[i] = w[i] * mul1;
            w[n - 1 - i] = w[i];
        }
        w[n2] = mul1;
        if ((n & 1) == 0) w[n2 + 1] = mul1;
    }
    /* Error diffusion to multiples of 1/256 over the first half, centre takes
     * the remainder (cvRound: nearest, ties to even = rint). */
    int half = n / 2;
    double e = 0.0;
    int64_t sum = 0;
    for (int i = 0; i < half; i++) {
        double adj = w[i] * 256.0 + e;
        int64_t v = (int64_t)rint(adj);
        e = adj - (double)v;
        k[i] = (int32_t)v;
        k[n - 1 - i] = (int32_t)v;
        sum += v;
    }
    k[half] = (int32_t)(256 - 2 * sum);
    free(w);
    return 0;
}

/* cv::borderInterpolate for BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba),
 * repeated while out of range. */
static int reflect101(int p, int len) {
    if (len == 1) return 0;
    while ((unsigned)p >= (unsigned)len) {
        if (p < 0)
            p = -p;
        else
            p = 2 * len - 2 - p;
    }
    return p;
}

int tio_cv_gaussian_blur_1d(tio_mask *m, int horizontal, int ksize, double sigma,
                            char *err, size_t errlen) {
    if (!m || !m->pixels || m->width <= 0 || m->height <= 0) {
        seterr(err, errlen, "gaussian blur: invalid mask");
        return -1;
    }
    if (ksize < 1 || (ksize & 1) == 0 || ksize > (1 << 20)) {
        seterr(err, errlen, "gaussian blur: kernel size %d must be odd and positive", ksize);
        return -1;
    }
    if (!(sigma == sigma)) {
        seterr(err, errlen, "gaussian blur: sigma is NaN");
        return -1;
    }
    const int w = m->width, h = m->height;
    const int len = horizontal ? w : h;
    /* OpenCV drops the kernel along an axis of length 1 (and the 1-tap
     * kernel is the identity either way). */
    if (ksize == 1 || len == 1) return 0;

    const int r = ksize / 2;
    int32_t *k = malloc(sizeof(int32_t) * (size_t)ksize);
    int *idx = malloc(sizeof(int) * ((size_t)len + 2 * (size_t)r));
    if (!k || !idx || cv_kernel(ksize, sigma, k) != 0) {
        free(k);
        free(idx);
        seterr(err, errlen, "gaussian blur: out of memory");
        return -1;
    }
    /* idx[j] = source index of padded position j - r. */
    for (int j = 0; j < len + 2 * r; j++) idx[j] = reflect101(j - r, len);

    /* Integer sums are exact, so the order of accumulation is free: both
     * passes add one whole shifted line per tap (vectorisable). */
    int rc = 0;
    if (horizontal) {
        uint8_t *line = malloc((size_t)w + 2 * (size_t)r);
        uint32_t *acc = malloc(sizeof(uint32_t) * (size_t)w);
        if (!line || !acc) {
            rc = -1;
        } else {
            for (int y = 0; y < h; y++) {
                uint8_t *row = m->pixels + (size_t)y * w;
                for (int j = 0; j < w + 2 * r; j++) line[j] = row[idx[j]];
                for (int x = 0; x < w; x++) acc[x] = 0;
                for (int i = 0; i < ksize; i++) {
                    const uint32_t kv = (uint32_t)k[i];
                    if (kv == 0) continue;
                    const uint8_t *p = line + i;
                    for (int x = 0; x < w; x++) acc[x] += kv * p[x];
                }
                for (int x = 0; x < w; x++) {
                    uint32_t v = (acc[x] + 128) >> 8;
                    row[x] = (uint8_t)(v > 255 ? 255 : v);
                }
            }
        }
        free(line);
        free(acc);
    } else {
        uint8_t *src = malloc((size_t)w * h);
        uint32_t *acc = malloc(sizeof(uint32_t) * (size_t)w);
        if (!src || !acc) {
            rc = -1;
        } else {
            memcpy(src, m->pixels, (size_t)w * h);
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) acc[x] = 0;
                for (int i = 0; i < ksize; i++) {
                    const uint8_t *s = src + (size_t)idx[y + i] * w;
                    const uint32_t kv = (uint32_t)k[i];
                    if (kv == 0) continue;
                    for (int x = 0; x < w; x++) acc[x] += kv * s[x];
                }
                uint8_t *row = m->pixels + (size_t)y * w;
                for (int x = 0; x < w; x++) {
                    uint32_t v = (acc[x] + 128) >> 8;
                    row[x] = (uint8_t)(v > 255 ? 255 : v);
                }
            }
        }
        free(src);
        free(acc);
    }
    free(k);
    free(idx);
    if (rc != 0) seterr(err, errlen, "gaussian blur: out of memory");
    return rc;
}

int tio_mask_blur(tio_mask *m, double blur_x, double blur_y, char *err, size_t errlen) {
    if (!m || !m->pixels || m->width <= 0 || m->height <= 0) {
        seterr(err, errlen, "mask blur: invalid mask");
        return -1;
    }
    if (!(blur_x == blur_x) || !(blur_y == blur_y) || blur_x > 1e5 || blur_y > 1e5) {
        seterr(err, errlen, "mask blur: sigma out of range");
        return -1;
    }
    if (blur_x > 0 &&
        tio_cv_gaussian_blur_1d(m, 1, tio_blur_ksize(blur_x), blur_x, err, errlen) != 0)
        return -1;
    if (blur_y > 0 &&
        tio_cv_gaussian_blur_1d(m, 0, tio_blur_ksize(blur_y), blur_y, err, errlen) != 0)
        return -1;
    return 0;
}

/* ==== Pillow ImageFilter.GaussianBlur (libImaging/BoxBlur.c) ======================= */

typedef uint8_t px4[4];

/* One line of the extended box blur: lineIn -> lineOut (distinct buffers). */
static void box_line(px4 *lineOut, const px4 *lineIn, int lastx, int radius, int edgeA,
                     int edgeB, uint32_t ww, uint32_t fw) {
    uint32_t acc[4], bulk[4];
    int x, c;

#define MOVE_ACC(sub, add)                                               \
    for (c = 0; c < 4; c++) acc[c] += (uint32_t)(lineIn[add][c] - lineIn[sub][c]);
#define ADD_FAR(left, right)                                             \
    for (c = 0; c < 4; c++)                                              \
        bulk[c] = acc[c] * ww + (uint32_t)(lineIn[left][c] + lineIn[right][c]) * fw;
#define SAVE(xx)                                                         \
    for (c = 0; c < 4; c++) lineOut[xx][c] = (uint8_t)((bulk[c] + (1u << 23)) >> 24);

    /* The sum for pixel -1: "radius + 1" copies of the first pixel, then
     * pixels 0 .. radius - 1, the missing ones replaced by the last pixel. */
    for (c = 0; c < 4; c++) acc[c] = (uint32_t)(lineIn[0][c] * (radius + 1));
    for (x = 0; x < edgeA - 1; x++)
        for (c = 0; c < 4; c++) acc[c] += lineIn[x][c];
    for (c = 0; c < 4; c++) acc[c] += (uint32_t)(lineIn[lastx][c] * (radius - edgeA + 1));

    if (edgeA <= edgeB) {
        for (x = 0; x < edgeA; x++) {
            MOVE_ACC(0, x + radius);
            ADD_FAR(0, x + radius + 1);
            SAVE(x);
        }
        for (x = edgeA; x < edgeB; x++) {
            MOVE_ACC(x - radius - 1, x + radius);
            ADD_FAR(x - radius - 1, x + radius + 1);
            SAVE(x);
        }
        for (x = edgeB; x <= lastx; x++) {
            MOVE_ACC(x - radius - 1, lastx);
            ADD_FAR(x - radius - 1, lastx);
            SAVE(x);
        }
    } else {
        for (x = 0; x < edgeB; x++) {
            MOVE_ACC(0, x + radius);
            ADD_FAR(0, x + radius + 1);
            SAVE(x);
        }
        for (x = edgeB; x < edgeA; x++) {
            MOVE_ACC(0, lastx);
            ADD_FAR(0, lastx);
            SAVE(x);
        }
        for (x = edgeA; x <= lastx; x++) {
            MOVE_ACC(x - radius - 1, lastx);
            ADD_FAR(x - radius - 1, lastx);
            SAVE(x);
        }
    }
#undef MOVE_ACC
#undef ADD_FAR
#undef SAVE
}

/* Pillow's _gaussian_blur_radius: the extended box radius giving the
 * variance radius^2 after `passes` passes, in single precision. */
static float pil_box_radius(float radius, int passes) {
    float sigma2, L, l, a;
    sigma2 = radius * radius / passes;
    L = (float)sqrt(12.0 * sigma2 + 1.0);
    l = (float)floor((L - 1.0) / 2.0);
    a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
    a /= 6 * (sigma2 - (l + 1) * (l + 1));
    return l + a;
}

typedef struct {
    int radius, edgeA, edgeB;
    uint32_t ww, fw;
} box_params;

/* ImagingHorizontalBoxBlur's per-call constants for a line of len pixels. */
static box_params box_setup(float fradius, int len) {
    box_params p;
    p.radius = (int)fradius;
    p.ww = (uint32_t)((float)(1u << 24) / (fradius * 2 + 1));
    p.fw = ((1u << 24) - (uint32_t)(p.radius * 2 + 1) * p.ww) / 2;
    p.edgeA = p.radius + 1 < len ? p.radius + 1 : len;
    p.edgeB = len - p.radius - 1 > 0 ? len - p.radius - 1 : 0;
    return p;
}

int tio_pil_gaussian_blur(ti_image *img, float radius, char *err, size_t errlen) {
    if (!img || !img->pixels || img->width <= 0 || img->height <= 0 || img->channels != 4) {
        seterr(err, errlen, "pil gaussian blur: need an RGBA image");
        return -1;
    }
    if (!(radius >= 0) || radius > 1e6f) {
        seterr(err, errlen, "pil gaussian blur: radius out of range");
        return -1;
    }
    const int passes = 3;
    const float br = pil_box_radius(radius, passes);
    if (br == 0) return 0; /* Pillow copies; a zero box is the identity anyway */
    const int w = img->width, h = img->height;
    const int maxlen = w > h ? w : h;
    px4 *a = malloc(sizeof(px4) * (size_t)maxlen);
    px4 *b = malloc(sizeof(px4) * (size_t)maxlen);
    if (!a || !b) {
        free(a);
        free(b);
        seterr(err, errlen, "pil gaussian blur: out of memory");
        return -1;
    }
    px4 *pix = (px4 *)img->pixels;

    /* Rows: `passes` passes each. */
    box_params ph = box_setup(br, w);
    for (int y = 0; y < h; y++) {
        px4 *row = pix + (size_t)y * w;
        memcpy(a, row, sizeof(px4) * (size_t)w);
        for (int i = 0; i < passes; i++) {
            box_line(b, a, w - 1, ph.radius, ph.edgeA, ph.edgeB, ph.ww, ph.fw);
            px4 *t = a;
            a = b;
            b = t;
        }
        memcpy(row, a, sizeof(px4) * (size_t)w);
    }
    /* Columns (Pillow transposes and blurs rows; the same per line). */
    box_params pv = box_setup(br, h);
    for (int x = 0; x < w; x++) {
        for (int y = 0; y < h; y++) memcpy(a[y], pix[(size_t)y * w + x], 4);
        for (int i = 0; i < passes; i++) {
            box_line(b, a, h - 1, pv.radius, pv.edgeA, pv.edgeB, pv.ww, pv.fw);
            px4 *t = a;
            a = b;
            b = t;
        }
        for (int y = 0; y < h; y++) memcpy(pix[(size_t)y * w + x], a[y], 4);
    }
    free(a);
    free(b);
    return 0;
}
