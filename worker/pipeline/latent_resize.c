/* latent_resize.c - torch interpolate modes for the hires latent upscalers
 * (latent_resize.h). Arithmetic in float, as torch does for float tensors. */
#include "latent_resize.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const names[TPL_LAT_COUNT] = {"Latent",           "Latent (antialiased)",
                                                 "Latent (bicubic)", "Latent (bicubic antialiased)",
                                                 "Latent (nearest)", "Latent (nearest-exact)"};

int tpl_latent_mode_find(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < TPL_LAT_COUNT; i++)
        if (!strcasecmp(name, names[i])) return i;
    return -1;
}

static float cubic1(float x, float A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
static float cubic2(float x, float A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

/* Per output position: up to `taps` source indices and weights. */
typedef struct {
    int *idx;    /* [out][taps] */
    float *w;    /* [out][taps] */
    int taps;
} axis_w;

static int axis_plain(int in, int out, tpl_latent_mode mode, axis_w *a) {
    int taps = mode == TPL_LAT_BICUBIC ? 4 : mode == TPL_LAT_BILINEAR ? 2 : 1;
    a->taps = taps;
    a->idx = malloc((size_t)out * taps * sizeof *a->idx);
    a->w = malloc((size_t)out * taps * sizeof *a->w);
    if (!a->idx || !a->w) return -1;
    float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        int *ix = a->idx + (size_t)o * taps;
        float *w = a->w + (size_t)o * taps;
        if (mode == TPL_LAT_NEAREST || mode == TPL_LAT_NEAREST_EXACT) {
            int s;
            if (out == in) s = o;
            else if (mode == TPL_LAT_NEAREST && out == 2 * in) s = o >> 1;
            else s = (int)floorf((mode == TPL_LAT_NEAREST ? (float)o : (float)o + 0.5f) * scale);
            ix[0] = s < in - 1 ? s : in - 1;
            w[0] = 1;
        } else if (mode == TPL_LAT_BILINEAR) {
            float src = scale * ((float)o + 0.5f) - 0.5f;
            if (src < 0) src = 0;
            int i0 = (int)src;
            int i1 = i0 + (i0 < in - 1 ? 1 : 0);
            float l1 = src - (float)i0, l0 = 1.0f - l1;
            ix[0] = i0;
            ix[1] = i1;
            w[0] = l0;
            w[1] = l1;
        } else { /* bicubic, A = -0.75 */
            float src = scale * ((float)o + 0.5f) - 0.5f;
            float fl = floorf(src);
            float t = src - fl;
            int i0 = (int)fl;
            const float A = -0.75f;
            w[0] = cubic2(t + 1.0f, A);
            w[1] = cubic1(t, A);
            w[2] = cubic1(1.0f - t, A);
            w[3] = cubic2(2.0f - t, A);
            for (int k = 0; k < 4; k++) {
                int s = i0 - 1 + k;
                ix[k] = s < 0 ? 0 : s > in - 1 ? in - 1 : s;
            }
        }
    }
    return 0;
}

static float aa_linear(float x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
}

static float aa_cubic(float x) {
    const float a = -0.5f;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

static int axis_aa(int in, int out, int cubic, axis_w *a) {
    float scale = (float)in / (float)out;
    float interp = cubic ? 4.0f : 2.0f;
    float support = scale >= 1.0f ? interp * 0.5f * scale : interp * 0.5f;
    int taps = (int)ceilf(support) * 2 + 1;
    a->taps = taps;
    a->idx = calloc((size_t)out * taps, sizeof *a->idx);
    a->w = calloc((size_t)out * taps, sizeof *a->w);
    if (!a->idx || !a->w) return -1;
    float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    for (int o = 0; o < out; o++) {
        float center = scale * ((float)o + 0.5f);
        int xmin = (int)(center - support + 0.5f);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5f);
        if (xmax > in) xmax = in;
        int xsize = xmax - xmin;
        if (xsize > taps) xsize = taps;
        float total = 0;
        float *w = a->w + (size_t)o * taps;
        int *ix = a->idx + (size_t)o * taps;
        for (int j = 0; j < xsize; j++) {
            float v = (cubic ? aa_cubic : aa_linear)(((float)(j + xmin) - center + 0.5f) * invscale);
            w[j] = v;
            ix[j] = xmin + j;
            total += v;
        }
        if (total != 0)
            for (int j = 0; j < xsize; j++) w[j] /= total;
        for (int j = xsize; j < taps; j++) {
            w[j] = 0;
            ix[j] = xmin;
        }
    }
    return 0;
}

static void axis_free(axis_w *a) {
    free(a->idx);
    free(a->w);
}

int tpl_latent_resize(const float *in, int c, int h, int w, float *out, int oh, int ow, tpl_latent_mode mode) {
    if (c < 1 || h < 1 || w < 1 || oh < 1 || ow < 1 || mode < 0 || mode >= TPL_LAT_COUNT) return -1;
    axis_w ax = {0}, ay = {0};
    int rc = -1;
    if (mode == TPL_LAT_BILINEAR_AA || mode == TPL_LAT_BICUBIC_AA) {
        int cubic = mode == TPL_LAT_BICUBIC_AA;
        if (axis_aa(w, ow, cubic, &ax) || axis_aa(h, oh, cubic, &ay)) goto done;
        /* separable: width first into tmp [c][h][ow] (skipped when the width
         * is unchanged, as torch skips a dimension it does not resize) */
        float *tmp = malloc((size_t)c * h * ow * sizeof *tmp);
        if (!tmp) goto done;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++) {
                const float *row = in + ((size_t)ch * h + y) * w;
                float *t = tmp + ((size_t)ch * h + y) * ow;
                for (int x = 0; x < ow; x++) {
                    if (ow == w) {
                        t[x] = row[x];
                        continue;
                    }
                    float s = 0;
                    for (int k = 0; k < ax.taps; k++) s += row[ax.idx[(size_t)x * ax.taps + k]] * ax.w[(size_t)x * ax.taps + k];
                    t[x] = s;
                }
            }
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    const float *t = tmp + (size_t)ch * h * ow;
                    if (oh == h) {
                        out[((size_t)ch * oh + y) * ow + x] = t[(size_t)y * ow + x];
                        continue;
                    }
                    float s = 0;
                    for (int k = 0; k < ay.taps; k++)
                        s += t[(size_t)ay.idx[(size_t)y * ay.taps + k] * ow + x] * ay.w[(size_t)y * ay.taps + k];
                    out[((size_t)ch * oh + y) * ow + x] = s;
                }
        free(tmp);
        rc = 0;
        goto done;
    }
    if (axis_plain(w, ow, mode, &ax) || axis_plain(h, oh, mode, &ay)) goto done;
    for (int ch = 0; ch < c; ch++) {
        const float *src = in + (size_t)ch * h * w;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                /* torch: the outer (height) interpolation of inner (width) ones */
                float acc = 0;
                for (int i = 0; i < ay.taps; i++) {
                    const float *row = src + (size_t)ay.idx[(size_t)y * ay.taps + i] * w;
                    float t = 0;
                    for (int j = 0; j < ax.taps; j++)
                        t += row[ax.idx[(size_t)x * ax.taps + j]] * ax.w[(size_t)x * ax.taps + j];
                    acc += t * ay.w[(size_t)y * ay.taps + i];
                }
                out[((size_t)ch * oh + y) * ow + x] = acc;
            }
    }
    rc = 0;
done:
    axis_free(&ax);
    axis_free(&ay);
    return rc;
}
